/* stream_only.c: a test plugin for stream sockets only; the loader must
 * refuse it for a datagram type. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "stream_only",
    .description = "streams only",
    .kinds = SS_STREAM,
    .handle = handle,
};
