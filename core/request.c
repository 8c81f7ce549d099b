/* request.c: one request's life (setup -> handle -> finish), its I/O, and
 * the bounded cross-thread sends (ss_send) with their background flusher. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "internal.h"

#define SS_RBUF_SIZE 4096
#define SS_DEFAULT_BACKLOG (1024 * 1024)

struct ss_request *
ss_request_new(struct ss_server *srv, int fd, const struct sockaddr *addr,
               socklen_t addrlen)
{
    struct ss_request *req = atomic_exchange_explicit(&srv->spare, NULL,
                                                      memory_order_acquire);

    if (req != NULL) {
        memset(req, 0, sizeof *req);
    } else if ((req = calloc(1, sizeof *req)) == NULL) {
        return NULL;
    }
    req->srv = srv;
    req->fd = fd;
    atomic_init(&req->refs, 1);
    if (addrlen > sizeof req->addr)
        addrlen = sizeof req->addr;
    memcpy(&req->addr, addr, addrlen);
    req->addrlen = addrlen;
    pthread_mutex_init(&req->lock, NULL);
    pthread_cond_init(&req->drained, NULL);
    return req;
}

static void
queue_drop(struct ss_request *req)
{
    struct ss_chunk *c, *next;

    for (c = req->qhead; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    req->qhead = req->qtail = NULL;
    req->queued = 0;
}

void
ss_request_hold(struct ss_request *req)
{
    atomic_fetch_add(&req->refs, 1);
}

void
ss_request_release(struct ss_request *req)
{
    struct ss_request *none = NULL;

    if (req == NULL || atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    queue_drop(req);
    if (req->rbuf_owned)
        free(req->rbuf);
    free(req->wbuf);
    pthread_mutex_destroy(&req->lock);
    pthread_cond_destroy(&req->drained);
    /* kept for the next request rather than freed: a sync or forking
     * server ends one and takes the next in the same thread, and malloc
     * and free per request cost more than one exchange (in a forking
     * parent they also write malloc's state: pages a live child still
     * shares, so each write is a page copied) */
    if (!atomic_compare_exchange_strong_explicit(&req->srv->spare, &none, req,
                                                 memory_order_release,
                                                 memory_order_relaxed))
        free(req);
}

/* ---- accessors -------------------------------------------------------- */

const struct sockaddr *
ss_request_addr(const struct ss_request *req, socklen_t *len)
{
    if (len != NULL)
        *len = req->addrlen;
    return (const struct sockaddr *)&req->addr;
}

/* The text is made on first use: most requests never need it. */
const char *
ss_request_peer(const struct ss_request *creq)
{
    struct ss_request *req = (struct ss_request *)creq;

    if (!atomic_load_explicit(&req->peer_ready, memory_order_acquire)) {
        pthread_mutex_lock(&req->lock);
        if (!atomic_load_explicit(&req->peer_ready, memory_order_relaxed)) {
            ss_addr_format((struct sockaddr *)&req->addr, req->addrlen,
                           req->peer, sizeof req->peer);
            atomic_store_explicit(&req->peer_ready, true,
                                  memory_order_release);
        }
        pthread_mutex_unlock(&req->lock);
    }
    return req->peer;
}

struct ss_server *
ss_request_server(const struct ss_request *req)
{
    return req->srv;
}

void *
ss_request_state(const struct ss_request *req)
{
    return req->srv->state;
}

void *
ss_request_data(const struct ss_request *req)
{
    return req->data;
}

void
ss_request_set_data(struct ss_request *req, void *data)
{
    req->data = data;
}

unsigned
ss_request_kind(const struct ss_request *req)
{
    return req->srv->set.transport->kind;
}

/* ---- reading ---------------------------------------------------------- */

ssize_t
ss_read(struct ss_request *req, void *buf, size_t len)
{
    size_t n;

    if (req->rpos < req->rlen) {
        n = req->rlen - req->rpos;
        if (n > len)
            n = len;
        memcpy(buf, req->rbuf + req->rpos, n);
        req->rpos += n;
        return (ssize_t)n;
    }
    if (len == 0)
        return 0;
    return req->srv->set.transport->read(req, buf, len);
}

/* Refills the read-ahead buffer (streams).  Returns bytes, 0, -1. */
static ssize_t
fill(struct ss_request *req)
{
    ssize_t n;

    if (req->fd < 0)
        return 0;               /* a datagram has nothing more */
    if (req->rbuf == NULL) {
        req->rbuf = malloc(SS_RBUF_SIZE);
        if (req->rbuf == NULL)
            return -1;
        req->rcap = SS_RBUF_SIZE;
        req->rbuf_owned = true;
    }
    n = req->srv->set.transport->read(req, req->rbuf, req->rcap);
    req->rpos = 0;
    req->rlen = n > 0 ? (size_t)n : 0;
    return n;
}

ssize_t
ss_readline(struct ss_request *req, char *buf, size_t size)
{
    size_t have = 0;

    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    while (have < size - 1) {
        if (req->rpos == req->rlen) {
            ssize_t n = fill(req);

            if (n < 0 && have == 0)
                return -1;
            if (n <= 0)
                break;
        }
        size_t avail = req->rlen - req->rpos;
        size_t want = size - 1 - have;
        const char *start = req->rbuf + req->rpos;
        const char *nl = memchr(start, '\n', avail < want ? avail : want);
        size_t take = nl ? (size_t)(nl - start) + 1
                         : (avail < want ? avail : want);

        memcpy(buf + have, start, take);
        have += take;
        req->rpos += take;
        if (nl != NULL)
            break;
    }
    buf[have] = '\0';
    return (ssize_t)have;
}

int
ss_poll(struct ss_request *req, int timeout_ms)
{
    if (req->rpos < req->rlen || atomic_load(&req->rd_shut))
        return 1;
    return req->srv->set.transport->poll(req, timeout_ms);
}

/* ---- writing ---------------------------------------------------------- */

int
ss_write(struct ss_request *req, const void *buf, size_t len)
{
    return req->srv->set.transport->write(req, buf, len);
}

/*
 * Formats into small when it fits, else into a malloc'd buffer.  Returns
 * the text (small or one to free), its length in *len, or NULL.
 */
static char *
vformat(char *small, size_t size, size_t *len, const char *fmt, va_list ap)
{
    va_list ap2;
    char *p = small;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(small, size, fmt, ap);
    if (n >= 0 && (size_t)n >= size) {
        p = malloc((size_t)n + 1);
        if (p != NULL)
            vsnprintf(p, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return p;
}

int
ss_vprintf(struct ss_request *req, const char *fmt, va_list ap)
{
    char small[1024], *p;
    size_t n;
    int rc;

    p = vformat(small, sizeof small, &n, fmt, ap);
    if (p == NULL)
        return -1;
    rc = ss_write(req, p, n);
    if (p != small)
        free(p);
    return rc;
}

int
ss_printf(struct ss_request *req, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = ss_vprintf(req, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- cross-thread sends and the flusher -------------------------------- */

static void *flusher_main(void *);

/* Marks the connection broken: no more sends, its reads and writes end. */
static void
kill_locked(struct ss_request *req)
{
    req->dead = true;
    queue_drop(req);
    if (!req->closed)
        shutdown(req->fd, SHUT_RDWR);
    pthread_cond_broadcast(&req->drained);
}

/* Sends queued bytes without blocking.  Returns 0 when drained, 1 when
 * some remain, -1 on a write error.  Called with req->lock held. */
static int
drain_locked(struct ss_request *req)
{
    while (req->qhead != NULL) {
        struct ss_chunk *c = req->qhead;
        ssize_t n = send(req->fd, c->data + c->off, c->len - c->off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 1 : -1;
        }
        c->off += (size_t)n;
        req->queued -= (size_t)n;
        if (c->off == c->len) {
            req->qhead = c->next;
            if (req->qhead == NULL)
                req->qtail = NULL;
            free(c);
        }
    }
    return 0;
}

/* Hands the connection to the flusher until its queue drains. */
static int
arm_locked(struct ss_request *req)
{
    struct ss_server *srv = req->srv;
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT,
                              .data.ptr = req };
    int rc = 0;

    if (req->armed)
        return 0;
    pthread_mutex_lock(&srv->flush_lock);
    if (!srv->flusher_started) {
        pthread_attr_t attr;

        if (srv->epfd < 0)
            srv->epfd = epoll_create1(EPOLL_CLOEXEC);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        if (srv->epfd < 0 ||
            pthread_create(&srv->flusher, &attr, flusher_main, srv) != 0)
            rc = -1;
        else
            srv->flusher_started = true;
        pthread_attr_destroy(&attr);
    }
    if (rc == 0) {
        rc = epoll_ctl(srv->epfd, req->epoll_added ? EPOLL_CTL_MOD
                                                   : EPOLL_CTL_ADD,
                       req->fd, &ev);
        if (rc == 0) {
            req->epoll_added = true;
            req->armed = true;
            ss_request_hold(req);
        }
    }
    pthread_mutex_unlock(&srv->flush_lock);
    return rc;
}

/*
 * Requests that ended while registered here: their flusher reference
 * passed to srv->flush_gc, since an event for one may already be in hand.
 * Released between batches, when no event for them can be.
 */
static void
release_gc(struct ss_server *srv)
{
    struct ss_request *gc, *next;

    pthread_mutex_lock(&srv->flush_lock);
    gc = srv->flush_gc;
    srv->flush_gc = NULL;
    pthread_mutex_unlock(&srv->flush_lock);
    for (; gc != NULL; gc = next) {
        next = gc->gc_next;
        ss_request_release(gc);
    }
}

static void *
flusher_main(void *arg)
{
    struct ss_server *srv = arg;
    struct epoll_event evs[64];

    for (;;) {
        int n = epoll_wait(srv->epfd, evs, 64, -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            ss_log(SS_LOG_ERROR, "%s: flusher: epoll_wait: %s", srv->name,
                   strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            struct ss_request *req = evs[i].data.ptr;
            bool release = true;

            if (req == NULL)
                return NULL;    /* ss_request_flush_stop */
            pthread_mutex_lock(&req->lock);
            if (!req->armed) {
                release = false;
            } else if (req->closed || req->dead) {
                req->armed = false;
            } else {
                int rc = drain_locked(req);

                if (rc < 0) {
                    kill_locked(req);
                    req->armed = false;
                } else if (rc == 0) {
                    req->armed = false;
                    pthread_cond_broadcast(&req->drained);
                } else {
                    struct epoll_event ev = {
                        .events = EPOLLOUT | EPOLLONESHOT, .data.ptr = req };

                    if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, req->fd,
                                  &ev) == 0) {
                        release = false;
                    } else {
                        kill_locked(req);
                        req->armed = false;
                    }
                }
            }
            pthread_mutex_unlock(&req->lock);
            if (release)
                ss_request_release(req);
        }
        release_gc(srv);
    }
}

/* Stops a server's flusher thread and waits for it (at close). */
void
ss_request_flush_stop(struct ss_server *srv)
{
    int pfd[2];
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

    pthread_mutex_lock(&srv->flush_lock);
    if (!srv->flusher_started) {
        pthread_mutex_unlock(&srv->flush_lock);
        return;
    }
    srv->flusher_started = false;
    pthread_mutex_unlock(&srv->flush_lock);
    /* a readable pipe registered with a NULL pointer tells it to exit */
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        ss_log(SS_LOG_ERROR, "%s: pipe: %s", srv->name, strerror(errno));
        return;
    }
    if (write(pfd[1], "x", 1) == 1 &&
        epoll_ctl(srv->epfd, EPOLL_CTL_ADD, pfd[0], &ev) == 0)
        pthread_join(srv->flusher, NULL);
    close(pfd[0]);
    close(pfd[1]);
    release_gc(srv);
}

int
ss_send(struct ss_request *to, const void *buf, size_t len)
{
    const char *p = buf;
    struct ss_chunk *c;
    size_t limit;

    if (to->fd < 0) {           /* a datagram client: one packet now */
        return ss_server_sendto(to->srv, (struct sockaddr *)&to->addr,
                                to->addrlen, buf, len);
    }
    pthread_mutex_lock(&to->lock);
    if (to->closed || to->dead || to->closing)
        goto out_pipe;
    if (to->queued == 0 && !to->owner_writing) {
        while (len > 0) {
            ssize_t n = send(to->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN)
                    break;
                kill_locked(to);
                goto out_pipe;
            }
            p += n;
            len -= (size_t)n;
        }
        if (len == 0) {
            pthread_mutex_unlock(&to->lock);
            return 0;
        }
    }
    limit = to->srv->max_backlog ? to->srv->max_backlog : SS_DEFAULT_BACKLOG;
    if (to->queued + len > limit) {
        kill_locked(to);
        pthread_mutex_unlock(&to->lock);
        ss_log(SS_LOG_WARNING, "%s: %s: output backlog over %zu bytes, "
               "disconnected", to->srv->name, ss_request_peer(to), limit);
        errno = ENOBUFS;
        return -1;
    }
    c = malloc(sizeof *c + len);
    if (c == NULL) {
        kill_locked(to);
        goto out_pipe;
    }
    c->next = NULL;
    c->len = len;
    c->off = 0;
    memcpy(c->data, p, len);
    if (to->qtail != NULL)
        to->qtail->next = c;
    else
        to->qhead = c;
    to->qtail = c;
    to->queued += len;
    if (!to->owner_writing && arm_locked(to) < 0) {
        kill_locked(to);
        goto out_pipe;
    }
    pthread_mutex_unlock(&to->lock);
    return 0;
out_pipe:
    pthread_mutex_unlock(&to->lock);
    errno = EPIPE;
    return -1;
}

int
ss_sendf(struct ss_request *to, const char *fmt, ...)
{
    char small[1024], *p;
    va_list ap;
    size_t n;
    int rc;

    va_start(ap, fmt);
    p = vformat(small, sizeof small, &n, fmt, ap);
    va_end(ap);
    if (p == NULL)
        return -1;
    rc = ss_send(to, p, n);
    if (p != small)
        free(p);
    return rc;
}

/*
 * The handler's own blocking write on a stream: waits for queued sends to
 * drain first so bytes keep their order, and holds no lock while blocked.
 */
int
ss_stream_write_owned(struct ss_request *req, const void *buf, size_t len)
{
    int rc;

    pthread_mutex_lock(&req->lock);
    while (req->queued > 0 && !req->dead && !req->closed && !req->closing)
        pthread_cond_wait(&req->drained, &req->lock);
    if (req->dead || req->closed || req->closing) {
        pthread_mutex_unlock(&req->lock);
        errno = EPIPE;
        return -1;
    }
    req->owner_writing = true;
    pthread_mutex_unlock(&req->lock);

    rc = ss_write_all(req->fd, buf, len);

    pthread_mutex_lock(&req->lock);
    req->owner_writing = false;
    if (rc < 0 && !req->dead)
        kill_locked(req);
    else if (req->queued > 0 && arm_locked(req) < 0)
        kill_locked(req);
    pthread_mutex_unlock(&req->lock);
    return rc;
}

/*
 * Sends what other threads queued for this connection before it closes,
 * waiting at most until the deadline.  Returns 0, or -1 if some was lost.
 */
int
ss_stream_flush(struct ss_request *req, double wait)
{
    double deadline = -1;       /* the clock is read only if it must wait */
    int rc = 0;

    /* alone in the process (a forked child, a sync server), nothing queued
     * stays nothing queued: no lock to write (a copied page, in a child) */
    if (__libc_single_threaded && req->queued == 0)
        return 0;
    pthread_mutex_lock(&req->lock);
    while (req->queued > 0 && !req->dead && !req->closed) {
        struct pollfd pfd = { .fd = req->fd, .events = POLLOUT };
        int ms;

        if (deadline < 0)
            deadline = ss_now() + wait;
        ms = ss_ms_until(deadline);

        rc = drain_locked(req);
        if (rc <= 0)
            break;
        pthread_mutex_unlock(&req->lock);
        rc = ms > 0 ? poll(&pfd, 1, ms) : 0;
        pthread_mutex_lock(&req->lock);
        if (rc == 0 || (rc < 0 && errno != EINTR)) {
            rc = -1;
            break;
        }
        rc = 0;
    }
    if (rc < 0 && req->queued > 0)
        kill_locked(req);
    pthread_mutex_unlock(&req->lock);
    return rc < 0 ? -1 : 0;
}

void
ss_request_close(struct ss_request *req, bool flush)
{
    if (req->fd < 0)
        return;
    atomic_store(&req->rd_shut, true);
    pthread_mutex_lock(&req->lock);
    req->closing = true;
    if (!req->closed && !req->dead) {
        if (flush)
            shutdown(req->fd, SHUT_RD);
        else
            kill_locked(req);
    }
    pthread_cond_broadcast(&req->drained);
    pthread_mutex_unlock(&req->lock);
}

/* ---- the request's life ------------------------------------------------- */

static void
default_handle_error(struct ss_server *srv, struct ss_request *req)
{
    int e = errno;

    if (e == ETIMEDOUT)
        ss_log(SS_LOG_INFO, "%s: %s: silent for %gs, closed", srv->name,
               ss_request_peer(req), srv->set.timeout);
    else
        ss_log(SS_LOG_DEBUG, "%s: %s: request failed: %s", srv->name,
               ss_request_peer(req), e ? strerror(e) : "handler returned -1");
}

/*
 * setup -> handle -> finish, as BaseRequestHandler, then the reply or the
 * flush.  The request stays the caller's.
 */
void
ss_request_handle(struct ss_request *req)
{
    struct ss_server *srv = req->srv;
    const struct ss_handler *h = srv->handler;
    int rc = 0;

    errno = 0;
    if (h->setup != NULL)
        rc = h->setup(req);
    if (rc == 0) {
        rc = h->handle(req);
        if (h->finish != NULL) {
            int e = errno;

            h->finish(req);
            errno = e;
        }
    }
    if (rc != 0) {
        if (srv->on_error != NULL)
            srv->on_error(srv, req, srv->on_error_arg);
        else
            default_handle_error(srv, req);
    }
    srv->set.transport->finish(req);
}

/* The request in this process, reachable by shutdown_now while it runs;
 * then it ends.  Consumes the caller's reference. */
void
ss_request_run(struct ss_request *req)
{
    struct ss_server *srv = req->srv;

    if (req->fd >= 0)
        ss_server_track(srv, req);     /* shutdown_now reaches it */
    ss_request_handle(req);
    if (req->fd >= 0)
        ss_server_untrack(srv, req);
    ss_request_end(req);
}

/* Closes the connection (no send can reach its fd after) and drops the
 * owner's reference. */
void
ss_request_end(struct ss_request *req)
{
    if (req->admitted) {
        req->admitted = false;
        ss_access_release(req->srv, (struct sockaddr *)&req->addr,
                          req->addrlen);
    }
    if (req->fd >= 0) {
        struct ss_server *srv = req->srv;

        pthread_mutex_lock(&req->lock);
        if (req->epoll_added) {
            pthread_mutex_lock(&srv->flush_lock);
            epoll_ctl(srv->epfd, EPOLL_CTL_DEL, req->fd, NULL);
            if (req->armed) {
                /* the flusher may hold an event for it: it releases */
                req->gc_next = srv->flush_gc;
                srv->flush_gc = req;
                req->armed = false;
            }
            pthread_mutex_unlock(&srv->flush_lock);
            req->epoll_added = false;
        }
        req->closed = true;
        queue_drop(req);
        ss_fd_untrack(req->fd);
        close(req->fd);
        pthread_cond_broadcast(&req->drained);
        pthread_mutex_unlock(&req->lock);
    }
    ss_request_release(req);
}
