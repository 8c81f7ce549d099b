/* discard.c: RFC 863 discard: everything a client sends is read and thrown
 * away; nothing is ever sent, to a stream or to a datagram. */
#include "sockserv.h"

/*
 * Reads a stream until the client closes it; a datagram is already read,
 * and with nothing written no reply goes back.  Returns 0, or -1 on a
 * read error (a timeout, a reset).
 */
static int
discard_handle(struct ss_request *req)
{
    char buf[4096];               /* small: thread stacks may be 16 KiB */
    ssize_t n;

    if (ss_request_kind(req) == SS_DGRAM)
        return 0;
    while ((n = ss_read(req, buf, sizeof buf)) > 0)
        continue;
    return n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "discard",
    .description = "RFC 863 discard: reads everything, answers nothing",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = discard_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
