/* dgram_only.c: a test plugin for datagram sockets only; the loader must
 * refuse it for a stream type. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "dgram_only",
    .description = "datagrams only",
    .kinds = SS_DGRAM,
    .handle = handle,
};
