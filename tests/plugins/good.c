/* good.c: a well-formed test plugin (both kinds) the loader must accept. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "good",
    .description = "a well-formed plugin",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = handle,
};
