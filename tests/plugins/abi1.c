/* abi1.c: a plugin as built against ABI 1 (no size, no modes): it loads
 * for sync, threading and forking, and is refused for event. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    char buf[256];
    ssize_t n;

    while ((n = ss_read(req, buf, sizeof buf)) > 0)
        if (ss_write(req, buf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = 1,
    .name = "abi1",
    .description = "an echo built for ABI 1",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = handle,
};
