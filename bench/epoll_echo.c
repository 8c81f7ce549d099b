/* epoll_echo.c: minimal single-threaded echo server, the machine's limit. */
/*
 * Usage: epoll_echo tcp PORT | udp PORT | unix PATH | unixdgram PATH
 * Binds 127.0.0.1 (PORT 0 = any) or PATH and prints the port or path on
 * stdout once it is ready.  Stream kinds: level-triggered epoll, read up to
 * 64 KiB and write it back; a short write parks the rest until EPOLLOUT.
 * Datagram kinds: a plain recvfrom/sendto loop.  Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUFSZ 65536
#define BACKLOG 128

struct conn {
    int fd;
    char *pend;                 /* unsent echo, NULL when none */
    size_t off, len;
};

static char buf[BUFSZ];

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

static int
bind_inet(int type, int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    socklen_t len = sizeof sin;
    int one = 1, fd = socket(AF_INET, type, 0);

    if (fd < 0)
        die("socket");
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        die("bind");
    if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        die("getsockname");
    printf("%d\n", ntohs(sin.sin_port));
    return fd;
}

static int
bind_unix(int type, const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, type, 0);

    if (fd < 0)
        die("socket");
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        die("bind");
    printf("%s\n", path);
    return fd;
}

static void
serve_dgram(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    ssize_t n;

    fflush(stdout);
    for (;;) {
        sl = sizeof ss;
        n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
        if (n < 0)
            continue;
        sendto(fd, buf, n, 0, (struct sockaddr *)&ss, sl);
    }
}

static void
conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pend);
    free(c);
}

/* Writes what is parked; returns 1 when all is out, 0 if some is left. */
static int
conn_flush(struct conn *c)
{
    while (c->off < c->len) {
        ssize_t n = write(c->fd, c->pend + c->off, c->len - c->off);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->off += n;
    }
    free(c->pend);
    c->pend = NULL;
    return 1;
}

static void
conn_event(int ep, struct conn *c, unsigned ev)
{
    struct epoll_event e = { .data.ptr = c };
    ssize_t n, w;
    int r;

    if (c->pend) {
        r = conn_flush(c);
        if (r < 0)
            goto out_close;
        if (r == 0)
            return;
        e.events = EPOLLIN;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    n = read(c->fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        goto out_close;
    if (n < 0)
        return;
    w = write(c->fd, buf, n);
    if (w < 0 && errno != EAGAIN)
        goto out_close;
    if (w < 0)
        w = 0;
    if (w < n) {
        c->pend = malloc(n - w);
        if (!c->pend)
            goto out_close;
        memcpy(c->pend, buf + w, n - w);
        c->off = 0;
        c->len = n - w;
        e.events = EPOLLOUT;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    }
    return;
out_close:
    conn_close(ep, c);
}

static void
serve_stream(int lfd)
{
    struct epoll_event ev[256], e = { .events = EPOLLIN, .data.ptr = NULL };
    int ep, i, n, fd;

    if (listen(lfd, BACKLOG) < 0)
        die("listen");
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    ep = epoll_create1(0);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) < 0)
        die("epoll");
    fflush(stdout);
    for (;;) {
        n = epoll_wait(ep, ev, 256, -1);
        for (i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c) {
                conn_event(ep, c, ev[i].events);
                continue;
            }
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                c = calloc(1, sizeof *c);
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                e.events = EPOLLIN;
                e.data.ptr = c;
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
                    conn_close(ep, c);
            }
        }
    }
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: epoll_echo tcp|udp PORT | unix|unixdgram PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(argv[1], "tcp"))
        serve_stream(bind_inet(SOCK_STREAM, atoi(argv[2])));
    else if (!strcmp(argv[1], "udp"))
        serve_dgram(bind_inet(SOCK_DGRAM, atoi(argv[2])));
    else if (!strcmp(argv[1], "unix"))
        serve_stream(bind_unix(SOCK_STREAM, argv[2]));
    else if (!strcmp(argv[1], "unixdgram"))
        serve_dgram(bind_unix(SOCK_DGRAM, argv[2]));
    fprintf(stderr, "epoll_echo: unknown kind %s\n", argv[1]);
    return 2;
}
