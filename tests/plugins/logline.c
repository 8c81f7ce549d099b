/* logline.c: a test plugin that logs each line it reads ("logline: TEXT")
 * before echoing it, so a client knows its line is in the log once the
 * echo is back (test_log's rotation under load). */
#include <string.h>

#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    char line[256];
    ssize_t n;

    while ((n = ss_readline(req, line, sizeof line)) > 0) {
        size_t len = (size_t)n;

        if (line[len - 1] == '\n')
            len--;
        ss_log(SS_LOG_INFO, "logline: %.*s", (int)len, line);
        if (ss_write(req, line, (size_t)n) < 0)
            return -1;
    }
    return n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .size = sizeof(struct ss_handler),
    .name = "logline",
    .description = "logs each line, then echoes it",
    .kinds = SS_STREAM,
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
    .handle = handle,
};
