/* bad_abi.c: a test plugin built for a future ABI (99); the loader must
 * refuse it. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

SOCKSERV_HANDLER = {
    .abi = 99,
    .name = "bad_abi",
    .description = "claims ABI 99",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = handle,
};
