/* fuzz_readline.c: libFuzzer target: ss_readline, ss_read and ss_poll on a
 * stream request fed through a socketpair in fuzzer-chosen pieces, and on a
 * datagram request's packet.  Checks that the reads hand back every byte
 * written, in order, and that readline respects its size and stops at the
 * first newline. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "internal.h"

#define FZ_MAX 32768
#define FZ_BIG 5000             /* over the 4 KiB read-ahead */

static int
fz_handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

static const struct ss_handler fz_handler = {
    .abi = SOCKSERV_ABI, .name = "fuzz", .kinds = SS_STREAM | SS_DGRAM,
    .handle = fz_handle,
};

static struct ss_server *stream_srv, *dgram_srv;

/* What was written and what came back. */
struct tally {
    char in[FZ_MAX], out[FZ_MAX + FZ_BIG];
    size_t nin, nout;
};

static struct tally t;
static char buf[FZ_BIG + 1];

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_readline: %s (wrote %zu, read %zu)\n", what, t.nin,
            t.nout);
    abort();
}

static void
got(const char *p, size_t n)
{
    if (t.nout + n > t.nin)
        fail("read more than was written");
    memcpy(t.out + t.nout, p, n);
    if (memcmp(t.out + t.nout, t.in + t.nout, n) != 0)
        fail("read bytes differ from those written");
    t.nout += n;
}

/* size from a 6-bit field: 1..63, or FZ_BIG */
static size_t
fz_size(unsigned v, size_t min)
{
    return v == 63 ? FZ_BIG : (v < min ? min : v);
}

static void
do_readline(struct ss_request *req, size_t size)
{
    ssize_t n;
    char *nl;

    memset(buf, 'Z', size);
    n = ss_readline(req, buf, size);
    if (n < 0)
        return;
    if ((size_t)n > size - 1)
        fail("readline returned more than size - 1");
    if (buf[n] != '\0')
        fail("readline did not end its line with NUL");
    nl = memchr(buf, '\n', (size_t)n);
    if (nl != NULL && nl != buf + n - 1)
        fail("readline went past a newline");
    got(buf, (size_t)n);
}

static void
do_read(struct ss_request *req, size_t len)
{
    ssize_t n = ss_read(req, buf, len);

    if (n < 0)
        return;
    if ((size_t)n > len)
        fail("read returned more than asked");
    got(buf, (size_t)n);
}

/* Runs op on req; returns false for a write op (the caller's business). */
static bool
run_op(struct ss_request *req, uint8_t op)
{
    switch (op >> 6) {
    case 1:
        do_readline(req, fz_size(op & 63, 1));
        return true;
    case 2:
        do_read(req, fz_size(op & 63, 0));
        return true;
    case 3:
        (void)ss_poll(req, 0);
        return true;
    default:
        return false;
    }
}

static void
drain(struct ss_request *req)
{
    for (int i = 0; i < 2 * FZ_MAX; i++) {
        size_t before = t.nout;

        do_readline(req, 100);
        if (t.nout == before) {
            do_read(req, 7);
            if (t.nout == before)
                break;
        }
    }
}

static void
fuzz_stream(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct ss_request *req;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return;
    /* an empty socket with the peer open: a read fails at once as if it
     * had timed out (EAGAIN is what SO_RCVTIMEO gives), so nothing hangs */
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    req = ss_request_new(stream_srv, sv[0], (struct sockaddr *)&sun,
                         sizeof(sa_family_t));
    if (req == NULL) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    for (size_t i = 0; i < size;) {
        uint8_t op = data[i++];

        if (run_op(req, op))
            continue;
        /* write: the next (op & 63) + 1 bytes */
        size_t k = (size_t)(op & 63) + 1, off = 0;

        if (k > size - i)
            k = size - i;
        memcpy(t.in + t.nin, data + i, k);
        while (off < k) {
            ssize_t w = write(sv[1], data + i + off, k - off);

            if (w > 0) {
                off += (size_t)w;
                continue;
            }
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                fail("write to the socketpair failed");
            do_read(req, 4096);     /* full: make room */
        }
        t.nin += k;
        i += k;
    }
    shutdown(sv[1], SHUT_WR);
    drain(req);
    if (t.nout != t.nin)
        fail("bytes written never came back");
    close(sv[1]);
    ss_request_end(req);
}

static void
fuzz_dgram(const uint8_t *data, size_t size)
{
    struct sockaddr_in in = { .sin_family = AF_INET };
    struct ss_request *req;
    char *pkt;
    uint32_t x = 2166136261u;

    if (size == 0)
        return;
    req = ss_request_new(dgram_srv, -1, (struct sockaddr *)&in, sizeof in);
    pkt = malloc(size);
    if (req == NULL || pkt == NULL) {
        free(pkt);
        if (req != NULL)
            ss_request_release(req);
        return;
    }
    memcpy(pkt, data, size);
    memcpy(t.in, data, size);
    t.nin = size;
    req->rbuf = pkt;
    req->rlen = size;
    /* the ops: a hash of the packet, so they vary with it */
    for (size_t i = 0; i < size; i++)
        x = (x ^ data[i]) * 16777619u;
    for (int i = 0; i < 64 && t.nout < t.nin; i++) {
        uint8_t op;

        x = x * 1103515245u + 12345u;
        op = (uint8_t)(x >> 16);
        run_op(req, op >> 6 == 0 ? op | 0x80 : op);
    }
    drain(req);
    if (t.nout != t.nin)
        fail("packet bytes never came back");
    ss_request_close(req, false);
    ss_request_release(req);
    free(pkt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (stream_srv == NULL) {
        ss_log_set_level((enum ss_log_level)(SS_LOG_ERROR + 1));
        stream_srv = ss_server_new("fz", &fz_handler);
        dgram_srv = ss_server_new("fzd", &fz_handler);
        if (stream_srv == NULL || dgram_srv == NULL ||
            ss_server_set(stream_srv, "type", "tcp", 0) < 0 ||
            ss_server_set(dgram_srv, "type", "udp", 0) < 0)
            abort();
    }
    if (size < 1 || size > FZ_MAX)
        return -1;
    t.nin = t.nout = 0;
    if (data[0] == 'D')
        fuzz_dgram(data + 1, size - 1);
    else
        fuzz_stream(data + 1, size - 1);
    return 0;
}
