/* gen.h: the body of gen_a.so and gen_b.so, two builds of "the same"
 * plugin: each answers a line with GEN and the line, so a test tells
 * which generation serves a connection. */
#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    char line[256];
    ssize_t n;

    while ((n = ss_readline(req, line, sizeof line)) > 0)
        if (ss_printf(req, "%s%s", GEN, line) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "gen",
    .description = "answers with its generation",
    .kinds = SS_STREAM,
    .handle = handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_THREADING | SS_MODE_FORKING | SS_MODE_EVENT,
};
