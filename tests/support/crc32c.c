/* crc32c.c: a reference CRC-32C for the tests (crc32c.h). */
#include "crc32c.h"

uint32_t
crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}
