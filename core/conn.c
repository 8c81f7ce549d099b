/* conn.c: a request's extra connections (FTP's data connections): listen,
 * accept, connect, read, write and sendfile, each wait through the mode. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "internal.h"

struct ss_conn {
    struct ss_request *req;
    int fd;
};

/*
 * Waits for events on c's descriptor as the request's own I/O waits: the
 * mode's wait_io (event mode suspends the coroutine), else poll.  A
 * non-blocking mode may return early (another of the request's
 * descriptors became ready): callers try again.
 */
static int
conn_wait(struct ss_conn *c, short events, double deadline)
{
    const struct ss_mode *m = c->req->srv->set.mode;

    return m->wait_io ? m->wait_io(c->req, c->fd, events, deadline)
                      : ss_poll_fd(c->fd, events, deadline);
}

/* A deadline timeout_ms from now; -1: the server's timeout (or none). */
static double
conn_deadline(const struct ss_request *req, int timeout_ms)
{
    if (timeout_ms < 0)
        return ss_request_deadline(req);
    return ss_now() + timeout_ms / 1000.0;
}

static struct ss_conn *
conn_new(struct ss_request *req, int fd)
{
    struct ss_conn *c = malloc(sizeof *c);

    if (c == NULL)
        return NULL;
    c->req = req;
    c->fd = fd;
    ss_fd_track(fd);            /* for forked children to close */
    return c;
}

void
ss_conn_close(struct ss_conn *c)
{
    if (c == NULL)
        return;
    ss_fd_untrack(c->fd);
    close(c->fd);
    free(c);
}

int
ss_request_sockname(const struct ss_request *req, struct sockaddr_storage *ss,
                    socklen_t *len)
{
    *len = sizeof *ss;
    if (req->fd < 0) {
        errno = ENOTCONN;
        return -1;
    }
    return getsockname(req->fd, (struct sockaddr *)ss, len);
}

static void
set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int
get_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -1;
}

/* A non-blocking TCP socket bound to local with port (0: any).  -1. */
static int
bound_socket(const struct sockaddr_storage *local, socklen_t len, int port)
{
    struct sockaddr_storage a = *local;
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);

    if (fd < 0)
        return -1;
    set_port(&a, port);
    if (bind(fd, (struct sockaddr *)&a, len) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*
 * Tries the ports of the range from a random one on, so that sessions
 * started together do not all race for the lowest.
 */
struct ss_conn *
ss_request_listen(struct ss_request *req, const struct sockaddr *local,
                  socklen_t len, int port_low, int port_high)
{
    struct sockaddr_storage a;
    struct ss_conn *c;
    long span;
    int fd = -1;

    if (local != NULL) {
        if (len > sizeof a) {
            errno = EINVAL;
            return NULL;
        }
        memset(&a, 0, sizeof a);
        memcpy(&a, local, len);
    } else if (ss_request_sockname(req, &a, &len) < 0) {
        return NULL;
    }
    if (a.ss_family != AF_INET && a.ss_family != AF_INET6) {
        errno = EAFNOSUPPORT;
        return NULL;
    }
    if (port_low <= 0 || port_high < port_low || port_high > 65535) {
        fd = bound_socket(&a, len, 0);
    } else {
        span = (long)port_high - port_low + 1;
        long start = random() % span;

        errno = EADDRINUSE;
        for (long i = 0; i < span && fd < 0; i++) {
            fd = bound_socket(&a, len, (int)(port_low + (start + i) % span));
            if (fd < 0 && errno != EADDRINUSE)
                return NULL;
        }
        if (fd < 0) {
            errno = EADDRINUSE;
            return NULL;
        }
    }
    if (fd < 0)
        return NULL;
    if (listen(fd, 1) < 0 || (c = conn_new(req, fd)) == NULL) {
        int e = errno;

        close(fd);
        errno = e;
        return NULL;
    }
    return c;
}

int
ss_conn_port(const struct ss_conn *c)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;

    if (getsockname(c->fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    return get_port(&a);
}

/* True when peer may be the request's data connection; else logged. */
static bool
peer_ok(struct ss_request *req, const struct sockaddr *peer, socklen_t len)
{
    const char *why = "not the control connection's host";
    char text[SS_ADDRSTRLEN];

    if (ss_addr_same_host(peer, len, (struct sockaddr *)&req->addr,
                          req->addrlen) &&
        ss_access_permits(req->srv, peer, len, &why))
        return true;
    ss_addr_format(peer, len, text, sizeof text);
    ss_log(SS_LOG_WARNING, "%s: %s: data connection %s refused (%s)",
           req->srv->name, ss_request_peer(req), text, why);
    return false;
}

struct ss_conn *
ss_conn_accept(struct ss_conn *l, int timeout_ms)
{
    double deadline = conn_deadline(l->req, timeout_ms);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        struct ss_conn *c;
        int fd, rc;

        fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (!peer_ok(l->req, (struct sockaddr *)&peer, len)) {
                close(fd);
                continue;
            }
            if ((c = conn_new(l->req, fd)) == NULL)
                close(fd);
            return c;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return NULL;
        if (deadline >= 0 && ss_now() >= deadline) {
            errno = ETIMEDOUT;
            return NULL;
        }
        rc = conn_wait(l, POLLIN, deadline);
        if (rc < 0)
            return NULL;
    }
}

struct ss_conn *
ss_request_connect(struct ss_request *req, const struct sockaddr *to,
                   socklen_t tolen, int timeout_ms)
{
    double deadline = conn_deadline(req, timeout_ms);
    struct sockaddr_storage local;
    socklen_t len;
    struct ss_conn *c;
    int fd, err = 0;
    socklen_t errlen = sizeof err;

    if (!peer_ok(req, to, tolen)) {
        errno = EACCES;
        return NULL;
    }
    if (ss_request_sockname(req, &local, &len) < 0)
        return NULL;
    if (local.ss_family != to->sa_family) {
        errno = EAFNOSUPPORT;
        return NULL;
    }
    if ((fd = bound_socket(&local, len, 0)) < 0)
        return NULL;
    if ((c = conn_new(req, fd)) == NULL) {
        close(fd);
        return NULL;
    }
    if (connect(fd, to, tolen) == 0)
        return c;
    if (errno != EINPROGRESS && errno != EINTR)
        goto out_close;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int rc = poll(&pfd, 1, 0);

        if (rc > 0)
            break;
        if (rc < 0 && errno != EINTR)
            goto out_close;
        if (deadline >= 0 && ss_now() >= deadline) {
            errno = ETIMEDOUT;
            goto out_close;
        }
        if (conn_wait(c, POLLOUT, deadline) < 0)
            goto out_close;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
        goto out_close;
    if (err != 0) {
        errno = err;
        goto out_close;
    }
    return c;
out_close:
    err = errno;
    ss_conn_close(c);
    errno = err;
    return NULL;
}

ssize_t
ss_conn_read(struct ss_conn *c, void *buf, size_t len)
{
    double deadline = ss_request_deadline(c->req);

    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (deadline >= 0 && ss_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (conn_wait(c, POLLIN, deadline) < 0)
            return -1;
    }
}

/* Waits until c can take more, or the deadline: 0, or -1 (ETIMEDOUT). */
static int
wait_writable(struct ss_conn *c, double deadline)
{
    if (deadline >= 0 && ss_now() >= deadline) {
        errno = ETIMEDOUT;
        return -1;
    }
    return conn_wait(c, POLLOUT, deadline) < 0 ? -1 : 0;
}

int
ss_conn_write(struct ss_conn *c, const void *buf, size_t len)
{
    const char *p = buf;
    double deadline = ss_request_deadline(c->req);

    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            deadline = ss_request_deadline(c->req);     /* progress */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_writable(c, deadline) < 0)
            return -1;
    }
    return 0;
}

/*
 * sendfile(2) raises no SIGPIPE of its own accord only when the signal is
 * ignored; the daemon and the library's servers ignore it (STYLE: ignore
 * SIGPIPE).
 */
ssize_t
ss_conn_sendfile(struct ss_conn *c, int filefd, off_t *off, size_t count)
{
    double deadline = ss_request_deadline(c->req);
    size_t sent = 0;

    while (sent < count) {
        ssize_t n = sendfile(c->fd, filefd, off, count - sent);

        if (n > 0) {
            sent += (size_t)n;
            deadline = ss_request_deadline(c->req);
            continue;
        }
        if (n == 0)
            break;              /* the file's end */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_writable(c, deadline) < 0)
            return -1;
    }
    return (ssize_t)sent;
}
