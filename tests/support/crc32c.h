/* crc32c.h: a reference CRC-32C for the tests, one bit at a time. */
#ifndef SS_TEST_CRC32C_H
#define SS_TEST_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * The CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of the n bytes
 * at p, computed bit by bit: independent of the table in core/proxy.c, so
 * that the tests check ss_proxy_crc32c against something it does not share.
 */
uint32_t crc32c_bitwise(const unsigned char *p, size_t n);

#endif
