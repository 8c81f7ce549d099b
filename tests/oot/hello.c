/* hello.c: a handler built out of tree against the installed sockserv.h,
 * with `cc -shared -fPIC hello.c $(pkg-config --cflags --libs sockserv)`. */
#include <sockserv.h>

static int
hello_handle(struct ss_request *req)
{
    char line[256];

    if (ss_readline(req, line, sizeof line) <= 0)
        return -1;
    return ss_printf(req, "hello, %s", line);
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "hello",
    .description = "greets the first line it reads",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = hello_handle,
};
