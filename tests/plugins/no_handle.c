/* no_handle.c: a test plugin without the one required hook; the loader
 * must refuse it. */
#include "sockserv.h"

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "no_handle",
    .description = "handle is NULL",
    .kinds = SS_STREAM | SS_DGRAM,
};
