/* echo.c: RFC 862 echo on streams and datagrams; `reply = TEXT` answers
 * each message with TEXT instead. */
#include <stdlib.h>
#include <string.h>

#include "sockserv.h"

struct echo {
    char *reply;                /* NULL: echo */
    size_t len;
};

/* Decodes \n, \t, \r and \\ in place; returns the new length. */
static size_t
unescape(char *s)
{
    char *out = s;

    for (const char *p = s; *p != '\0'; p++) {
        if (*p != '\\' || p[1] == '\0') {
            *out++ = *p;
            continue;
        }
        switch (*++p) {
        case 'n': *out++ = '\n'; break;
        case 't': *out++ = '\t'; break;
        case 'r': *out++ = '\r'; break;
        case '\\': *out++ = '\\'; break;
        default: *out++ = '\\'; *out++ = *p; break;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

static int
echo_init(struct ss_server *srv, void **state)
{
    const char *reply = ss_option(srv, "reply");
    struct echo *e = calloc(1, sizeof *e);

    if (e == NULL)
        return -1;
    if (reply != NULL) {
        e->reply = strdup(reply);
        if (e->reply == NULL) {
            free(e);
            return -1;
        }
        e->len = unescape(e->reply);
    }
    *state = e;
    return 0;
}

static void
echo_fini(void *state)
{
    struct echo *e = state;

    if (e != NULL)
        free(e->reply);
    free(e);
}

/*
 * Each read (a stream's chunk as it arrives, or the datagram) is one
 * message: it goes back, or the reply does.  Reads start in a small stack
 * buffer, so an idle connection's thread touches little memory; a client
 * that fills it gets a 64 KiB buffer, one read and one write per 64 KiB.
 */
static int
echo_handle(struct ss_request *req)
{
    const struct echo *e = ss_request_state(req);
    char small[2048], *buf = small, *big = NULL;
    size_t size = sizeof small;
    ssize_t n;
    int rc = 0;

    while ((n = ss_read(req, buf, size)) > 0) {
        rc = e->reply ? ss_write(req, e->reply, e->len)
                      : ss_write(req, buf, (size_t)n);
        if (rc < 0)
            break;
        if ((size_t)n == size && big == NULL &&
            (big = malloc(65536)) != NULL) {
            buf = big;
            size = 65536;
        }
    }
    free(big);
    return rc < 0 || n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "echo",
    .description = "RFC 862 echo; reply = TEXT answers every message",
    .kinds = SS_STREAM | SS_DGRAM,
    .init = echo_init,
    .fini = echo_fini,
    .handle = echo_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
