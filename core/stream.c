/* stream.c: the stream transport (tcp, unix-stream): listen, accept, and
 * request I/O on the connection. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>
#include <sys/single_threaded.h>
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
        fd = accept4(srv->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == ECONNABORTED || errno == EPROTO || errno == EWOULDBLOCK)
            errno = EAGAIN;
        return NULL;
    }
    /* tracked, for forked children to close: unless this is a forking
     * server's process with no other thread, where it is closed right
     * after its own child is forked, before any other fork */
    if (srv->set.mode != &ss_mode_fork || !__libc_single_threaded)
        ss_fd_track(fd);
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        int one = 1;

        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (srv->set.timeout > 0)
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

static ssize_t
stream_read(struct ss_request *req, void *buf, size_t len)
{
    for (;;) {
        ssize_t n;

        if (atomic_load(&req->rd_shut))
            return 0;
        n = recv(req->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            errno = ETIMEDOUT;          /* SO_RCVTIMEO: silent too long */
        return -1;
    }
}

static int
stream_write(struct ss_request *req, const void *buf, size_t len)
{
    return ss_stream_write_owned(req, buf, len);
}

static int
stream_poll(struct ss_request *req, int timeout_ms)
{
    struct pollfd pfd = { .fd = req->fd, .events = POLLIN };
    double deadline = ss_now() + timeout_ms / 1000.0;

    for (;;) {
        int rc = poll(&pfd, 1, timeout_ms);

        if (rc >= 0)
            return rc > 0 ? 1 : 0;
        if (errno != EINTR)
            return -1;
        if (timeout_ms >= 0)
            timeout_ms = ss_ms_until(deadline);
    }
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
