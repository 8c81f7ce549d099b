/* no_symbol.c: a test plugin with a handler under another name and no
 * sockserv_handler symbol; the loader must refuse it. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

__attribute__((visibility("default")))
const struct ss_handler not_the_handler = {
    .abi = SOCKSERV_ABI,
    .name = "no_symbol",
    .description = "exports the wrong name",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = handle,
};
