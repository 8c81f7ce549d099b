/* needs_symbol.c: a test plugin that calls a function nothing defines, so
 * dlopen(RTLD_NOW) fails; the loader must report dlerror()'s reason. */
#include "sockserv.h"

extern int ss_test_no_such_function(void);

static int
handle(struct ss_request *req)
{
    (void)req;
    return ss_test_no_such_function();
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "needs_symbol",
    .description = "has an unresolved symbol",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = handle,
};
