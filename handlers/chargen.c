/* chargen.c: RFC 864 character generator: lines of 72 of the 95 printable
 * ASCII characters, each line starting one character further on, sent to
 * a stream until the client closes, or a few lines in reply to a
 * datagram. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "inetd.h"
#include "sockserv.h"

#define LINE_CHARS  72              /* characters on a line, then CR LF */
#define LINE_LEN    (LINE_CHARS + 2)
#define NPRINT      95              /* ' ' (32) to '~' (126) */
#define PERIOD      (NPRINT * LINE_LEN) /* the pattern repeats after this */
#define DGRAM_MAX   512             /* RFC 864: at most 512 characters */

/* Builds one period of the pattern (95 lines), the server's state: line i
 * starts with character i mod 95. */
static int
chargen_init(struct ss_server *srv, void **state)
{
    char *p = malloc(PERIOD);

    (void)srv;
    if (p == NULL)
        return -1;
    for (int i = 0; i < NPRINT; i++) {
        char *line = p + i * LINE_LEN;

        for (int j = 0; j < LINE_CHARS; j++)
            line[j] = (char)(' ' + (i + j) % NPRINT);
        line[LINE_CHARS] = '\r';
        line[LINE_CHARS + 1] = '\n';
    }
    *state = p;
    return 0;
}

static void
chargen_fini(void *state)
{
    free(state);
}

/* True for the errors that mean the client hung up: chargen's normal end
 * (ENOTCONN: a connection shut down before the write). */
static bool
client_gone(int e)
{
    return e == EPIPE || e == ECONNRESET || e == ENOTCONN;
}

/*
 * A stream: the pattern, one period per write, until a write fails (the
 * client closed, or the server's timeout passed while it did not read).
 * ss_write blocks while the client does not read, so the client sets the
 * pace and nothing piles up here.  What the client sends is read and
 * thrown away between writes.  Returns 0 when the client hung up, else -1.
 */
static int
chargen_stream(struct ss_request *req, const char *pattern)
{
    bool input_open = true;

    for (;;) {
        if (ss_write(req, pattern, PERIOD) < 0)
            return client_gone(errno) ? 0 : -1;
        while (input_open && ss_poll(req, 0) == 1) {
            char buf[1024];
            ssize_t n = ss_read(req, buf, sizeof buf);

            if (n < 0)
                return client_gone(errno) ? 0 : -1;
            if (n == 0)
                input_open = false;     /* half-closed: keep sending */
        }
    }
}

/*
 * A datagram: 1 to 6 whole lines (74 to 444 characters; RFC 864 asks for
 * a random number up to 512, and an empty reply would not be sent), fewer
 * when max_packet_size cannot hold them.  Returns 0 or -1.
 */
static int
chargen_dgram(struct ss_request *req, const char *pattern)
{
    unsigned char r;
    int lines;

    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = 0;                  /* no entropy yet: one line will do */
    lines = 1 + r % (DGRAM_MAX / LINE_LEN);
    for (int i = 0; i < lines; i++)
        if (ss_write(req, pattern + i * LINE_LEN, LINE_LEN) < 0)
            return errno == EMSGSIZE && i > 0 ? 0 : -1;
    return 0;
}

static int
chargen_handle(struct ss_request *req)
{
    const char *pattern = ss_request_state(req);

    if (ss_request_kind(req) == SS_STREAM)
        return chargen_stream(req, pattern);
    if (!inetd_may_reply(req))
        return 0;
    return chargen_dgram(req, pattern);
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "chargen",
    .description = "RFC 864 character generator",
    .kinds = SS_STREAM | SS_DGRAM,
    .init = chargen_init,
    .fini = chargen_fini,
    .handle = chargen_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
