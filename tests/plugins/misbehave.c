/* misbehave.c: a handler that misbehaves on request, for event mode's
 * defences.  Each line: "deep" recurses until its stack is gone, "block"
 * holds the thread for 150 ms without a request call, anything else is
 * echoed. */
#include <string.h>
#include <time.h>

#include "sockserv.h"

/* Recursion the compiler cannot flatten: each frame 4 KiB, touched. */
static int __attribute__((noinline))
dig(volatile char *prev, unsigned depth)
{
    volatile char frame[4096];

    frame[0] = (char)depth;
    frame[sizeof frame - 1] = prev ? prev[0] : 0;
    if (depth == 0)
        return frame[0];
    return dig(frame, depth - 1) + frame[sizeof frame - 1];
}

static int
handle(struct ss_request *req)
{
    char line[256];
    ssize_t n;

    while ((n = ss_readline(req, line, sizeof line)) > 0) {
        if (strncmp(line, "deep", 4) == 0) {
            (void)dig(NULL, 1u << 20);
        } else if (strncmp(line, "block", 5) == 0) {
            struct timespec ts = { 0, 150 * 1000000L };

            while (nanosleep(&ts, &ts) != 0)
                ;
            if (ss_write(req, "blocked\n", 8) < 0)
                return -1;
        } else if (ss_write(req, line, (size_t)n) < 0) {
            return -1;
        }
    }
    return n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "misbehave",
    .description = "overflows its stack or blocks, on request",
    .kinds = SS_STREAM,
    .handle = handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_THREADING | SS_MODE_EVENT,
};
