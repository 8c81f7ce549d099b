/* uv_echo.c: an echo server on libuv's loop, a peer of sockserv's event mode. */
/*
 * Usage: uv_echo tcp PORT | udp PORT | unix PATH
 * Same shape as epoll_echo.c: binds 127.0.0.1 (PORT 0 = any) or PATH and
 * prints the port or path on stdout once it is ready; runs until killed.
 * One uv_loop in one thread.  Stream kinds: reads land in one shared
 * 64 KiB buffer (the loop runs one callback at a time, and each read is
 * written out before the next), uv_try_write sends it back, and what the
 * socket does not take is copied into a uv_write while reading stops
 * until it is out, as epoll_echo parks it.  So an idle connection costs
 * its uv_tcp_t / uv_pipe_t and nothing else.  udp: uv_udp_recv_start into
 * the shared buffer, uv_udp_try_send back (a full socket drops, as
 * epoll_echo's sendto does).  libuv has no unix datagram sockets.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define BUFSZ 65536
#define BACKLOG 128

union conn {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
};

struct pending {
    uv_write_t req;
    char data[];
};

static char buf[BUFSZ];
static uv_loop_t *loop;
static int is_pipe;

static void
die(const char *what, int err)
{
    fprintf(stderr, "uv_echo: %s: %s\n", what, uv_strerror(err));
    exit(1);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    *b = uv_buf_init(buf, sizeof buf);
}

static void
close_cb(uv_handle_t *h)
{
    free(h);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void
write_cb(uv_write_t *req, int status)
{
    uv_stream_t *s = req->handle;

    free(req);
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    uv_read_start(s, alloc_cb, read_cb);
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct pending *p;
    uv_buf_t rest;
    int w;

    if (n < 0) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    if (n == 0)
        return;
    rest = uv_buf_init(b->base, n);
    w = uv_try_write(s, &rest, 1);
    if (w == n)
        return;
    if (w < 0 && w != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    if (w < 0)
        w = 0;
    p = malloc(sizeof *p + (n - w));
    if (!p) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    memcpy(p->data, b->base + w, n - w);
    rest = uv_buf_init(p->data, n - w);
    uv_read_stop(s);
    if (uv_write(&p->req, s, &rest, 1, write_cb) < 0) {
        free(p);
        uv_close((uv_handle_t *)s, close_cb);
    }
}

static void
accept_cb(uv_stream_t *server, int status)
{
    union conn *c;

    if (status < 0)
        return;
    c = malloc(sizeof *c);
    if (!c)
        return;
    if (is_pipe)
        uv_pipe_init(loop, &c->pipe, 0);
    else
        uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, &c->s) < 0) {
        uv_close(&c->h, close_cb);
        return;
    }
    uv_read_start(&c->s, alloc_cb, read_cb);
}

static void
udp_cb(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *sa,
       unsigned flags)
{
    uv_buf_t out;

    (void)flags;
    if (n < 0 || sa == NULL)
        return;
    out = uv_buf_init(b->base, n);
    uv_udp_try_send(u, &out, 1, sa);
}

int
main(int argc, char **argv)
{
    static uv_tcp_t tcp;
    static uv_pipe_t pipe_;
    static uv_udp_t udp;
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    int len = sizeof ss, r;

    if (argc != 3) {
        fprintf(stderr, "usage: uv_echo tcp|udp PORT | unix PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    if (!strcmp(argv[1], "tcp") || !strcmp(argv[1], "udp")) {
        uv_ip4_addr("127.0.0.1", atoi(argv[2]), &sin);
        if (argv[1][0] == 't') {
            uv_tcp_init(loop, &tcp);
            if ((r = uv_tcp_bind(&tcp, (struct sockaddr *)&sin, 0)) < 0)
                die("bind", r);
            if ((r = uv_listen((uv_stream_t *)&tcp, BACKLOG, accept_cb)) < 0)
                die("listen", r);
            uv_tcp_getsockname(&tcp, (struct sockaddr *)&ss, &len);
        } else {
            uv_udp_init(loop, &udp);
            if ((r = uv_udp_bind(&udp, (struct sockaddr *)&sin,
                                 UV_UDP_REUSEADDR)) < 0)
                die("bind", r);
            if ((r = uv_udp_recv_start(&udp, alloc_cb, udp_cb)) < 0)
                die("recv", r);
            uv_udp_getsockname(&udp, (struct sockaddr *)&ss, &len);
        }
        printf("%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    } else if (!strcmp(argv[1], "unix")) {
        is_pipe = 1;
        unlink(argv[2]);
        uv_pipe_init(loop, &pipe_, 0);
        if ((r = uv_pipe_bind(&pipe_, argv[2])) < 0)
            die("bind", r);
        if ((r = uv_listen((uv_stream_t *)&pipe_, BACKLOG, accept_cb)) < 0)
            die("listen", r);
        printf("%s\n", argv[2]);
    } else {
        fprintf(stderr, "uv_echo: unknown kind %s (tcp, udp, unix)\n",
                argv[1]);
        return 2;
    }
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
