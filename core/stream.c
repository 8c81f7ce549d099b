/* stream.c: the stream transport (tcp, unix-stream): listen, accept, and
 * request I/O on the connection. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "internal.h"

static int
stream_bind(struct ss_server *srv, const struct sockaddr *sa, socklen_t len)
{
    (void)sa;
    (void)len;
    return listen(srv->fd, (int)srv->set.request_queue_size);
}

static void
set_timeouts(int fd, double seconds)
{
    struct timeval tv;

    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/*
 * Accepts one connection.  NULL with errno EAGAIN when none is ready (a
 * connection that was reset before accept counts as none), or with the
 * accept error (EMFILE, ENFILE, ...) for the serve loop to back off.
 */
static struct ss_request *
stream_get_request(struct ss_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct ss_request *req;
    int fd;

    for (;;) {
        len = sizeof ss;
        fd = accept4(srv->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC |
                     (srv->set.mode->nonblocking ? SOCK_NONBLOCK : 0));
        if (fd >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == ECONNABORTED || errno == EPROTO || errno == EWOULDBLOCK)
            errno = EAGAIN;
        return NULL;
    }
    if (srv->set.mode->conn_opened != NULL)
        srv->set.mode->conn_opened(srv, fd);
    else
        ss_fd_track(fd);        /* for forked children to close */
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        int one = 1;

        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    /* a blocking mode's timeout is the kernel's; a non-blocking mode
     * keeps deadlines (ss_request_deadline) */
    if (srv->set.timeout > 0 && !srv->set.mode->nonblocking)
        set_timeouts(fd, srv->set.timeout);
    req = ss_request_new(srv, fd, (struct sockaddr *)&ss, len);
    if (req == NULL) {
        int e = errno;

        ss_fd_untrack(fd);
        close(fd);
        errno = e;
    }
    return req;
}

/*
 * Reads what has arrived: a blocking socket waits in the kernel (its
 * SO_RCVTIMEO says silent too long), a non-blocking one through the mode,
 * until the server's timeout.  A non-blocking read that came back short
 * emptied the socket: the next one waits first (for the edge that new
 * bytes make) instead of asking the kernel for an EAGAIN, unless the mode
 * saw bytes arrive meanwhile (it clears rd_empty) or the peer's end has
 * arrived already (rd_hup: a read stops short before the end, whose edge
 * has come and gone).
 */
static ssize_t
stream_read(struct ss_request *req, void *buf, size_t len)
{
    bool nb = req->srv->set.mode->nonblocking;
    double deadline = 0;

    for (;;) {
        ssize_t n;
        int rc;

        if (atomic_load(&req->rd_shut))
            return 0;
        if (!req->rd_empty) {
            n = recv(req->fd, buf, len, 0);
            if (n >= 0) {
                req->rd_empty = nb && n > 0 && (size_t)n < len &&
                                !req->rd_hup;
                if (n > 0)
                    ss_stats_add(&req->srv->stats->bytes_in, (size_t)n);
                return n;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            if (!nb) {
                errno = ETIMEDOUT;
                return -1;
            }
        }
        req->rd_empty = false;
        if (deadline == 0)
            deadline = ss_request_deadline(req);
        rc = ss_request_wait(req, POLLIN, deadline);
        if (rc <= 0) {
            if (rc == 0)
                errno = ETIMEDOUT;
            return -1;
        }
    }
}

static int
stream_write(struct ss_request *req, const void *buf, size_t len)
{
    return ss_stream_write_owned(req, buf, len);
}

/* A non-blocking mode's wait is for what comes next (edge-triggered):
 * what has arrived already is looked for first. */
static int
stream_poll(struct ss_request *req, int timeout_ms)
{
    double deadline = timeout_ms < 0 ? -1 : ss_now() + timeout_ms / 1000.0;

    if (req->srv->set.mode->nonblocking) {
        int rc = ss_poll_fd(req->fd, POLLIN, 0);

        if (rc != 0 || timeout_ms == 0)
            return rc;
    }
    return ss_request_wait(req, POLLIN, deadline);
}

/* Sends what others queued for this client before the connection closes. */
static void
stream_finish(struct ss_request *req)
{
    double wait = req->srv->set.timeout > 0 ? req->srv->set.timeout
                                            : req->srv->set.shutdown_timeout;

    (void)ss_stream_flush(req, wait);   /* locks; cheap if empty */
}

const struct ss_transport ss_stream_transport = {
    .kind = SS_STREAM,
    .bind = stream_bind,
    .get_request = stream_get_request,
    .read = stream_read,
    .write = stream_write,
    .poll = stream_poll,
    .finish = stream_finish,
};
