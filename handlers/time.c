/* time.c: RFC 868 time: the seconds since 1900-01-01 00:00 UTC as 32 bits,
 * big-endian, on a stream (then the connection closes) or as the reply to
 * any datagram. */
#include <stdint.h>
#include <time.h>

#include "inetd.h"
#include "sockserv.h"

/* Seconds from 1900-01-01 to 1970-01-01 (RFC 868). */
#define TIME_EPOCH_1900 2208988800u

/*
 * Sends the time.  The count is taken modulo 2^32, as RFC 868 leaves it:
 * it wraps in February 2036 and goes on from 0.  Returns 0 or -1.
 */
static int
time_handle(struct ss_request *req)
{
    time_t now = time(NULL);
    uint32_t t;
    unsigned char buf[4];

    if (!inetd_may_reply(req))
        return 0;
    if (now == (time_t)-1)
        return -1;
    t = (uint32_t)((uint64_t)now + TIME_EPOCH_1900);
    buf[0] = (unsigned char)(t >> 24);
    buf[1] = (unsigned char)(t >> 16);
    buf[2] = (unsigned char)(t >> 8);
    buf[3] = (unsigned char)t;
    return ss_write(req, buf, sizeof buf);
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "time",
    .description = "RFC 868 time: 32-bit seconds since 1900, big-endian",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = time_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
