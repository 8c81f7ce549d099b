/* sendq.c: the bounded cross-thread send queue of a stream request
 * (ss_send), the handler's own writes that keep their order with it, and
 * the background flusher thread that drains what could not be sent at
 * once. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "internal.h"

#define SS_DEFAULT_BACKLOG (1024 * 1024)

/* A server's flusher: one thread, made when a backlog first needs it. */
struct ss_sendq {
    pthread_mutex_t lock;
    int epfd;
    bool started;
    pthread_t thread;
    struct ss_request *gc;      /* ended while armed, under lock */
};

static struct ss_sendq *
sendq(struct ss_server *srv)
{
    struct ss_sendq *q = atomic_load(&srv->sendq);

    if (q != NULL)
        return q;
    pthread_mutex_lock(&srv->lock);
    if (atomic_load(&srv->sendq) == NULL &&
        (q = calloc(1, sizeof *q)) != NULL) {
        pthread_mutex_init(&q->lock, NULL);
        q->epfd = -1;
        atomic_store(&srv->sendq, q);
    }
    q = atomic_load(&srv->sendq);
    pthread_mutex_unlock(&srv->lock);
    return q;
}

/* Drops what is queued for req (under req->lock, or when it is alone). */
void
ss_sendq_drop(struct ss_request *req)
{
    struct ss_chunk *c, *next;

    for (c = req->qhead; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    req->qhead = req->qtail = NULL;
    req->queued = 0;
}

/* Marks the connection broken: no more sends, its reads and writes end.
 * Keeps errno. */
void
ss_sendq_kill_locked(struct ss_request *req)
{
    int saved = errno;          /* the error that broke it, for the caller */

    req->dead = true;
    ss_sendq_drop(req);
    if (!req->closed)
        shutdown(req->fd, SHUT_RDWR);
    errno = saved;
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
        ss_stats_add(&req->srv->stats->bytes_out, (size_t)n);
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

static void *flusher_main(void *);

/* Hands the connection to the flusher until its queue drains. */
static int
arm_locked(struct ss_request *req)
{
    struct ss_sendq *q = sendq(req->srv);
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT,
                              .data.ptr = req };
    int rc = 0;

    if (req->armed)
        return 0;
    if (q == NULL)
        return -1;
    pthread_mutex_lock(&q->lock);
    if (!q->started) {
        pthread_attr_t attr;

        if (q->epfd < 0)
            q->epfd = epoll_create1(EPOLL_CLOEXEC);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        if (q->epfd < 0 ||
            pthread_create(&q->thread, &attr, flusher_main, req->srv) != 0)
            rc = -1;
        else
            q->started = true;
        pthread_attr_destroy(&attr);
    }
    if (rc == 0) {
        rc = epoll_ctl(q->epfd, req->epoll_added ? EPOLL_CTL_MOD
                                                 : EPOLL_CTL_ADD,
                       req->fd, &ev);
        if (rc == 0) {
            req->epoll_added = true;
            req->armed = true;
            ss_request_hold(req);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

/*
 * Requests that ended while registered here: their flusher reference
 * passed to q->gc, since an event for one may already be in hand.
 * Released between batches, when no event for them can be.
 */
static void
release_gc(struct ss_sendq *q)
{
    struct ss_request *gc, *next;

    pthread_mutex_lock(&q->lock);
    gc = q->gc;
    q->gc = NULL;
    pthread_mutex_unlock(&q->lock);
    for (; gc != NULL; gc = next) {
        next = gc->gc_next;
        ss_request_release(gc);
    }
}

/* One flusher event: drains req, re-arms it, or lets it go.  True when
 * the flusher's reference is to be released. */
static bool
flush_one(struct ss_sendq *q, struct ss_request *req)
{
    bool release = true;

    pthread_mutex_lock(&req->lock);
    if (!req->armed) {
        release = false;
    } else if (req->closed || req->dead) {
        req->armed = false;
    } else {
        int rc = drain_locked(req);
        struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT,
                                  .data.ptr = req };

        if (rc > 0 && epoll_ctl(q->epfd, EPOLL_CTL_MOD, req->fd, &ev) == 0) {
            release = false;
        } else {
            if (rc != 0)
                ss_sendq_kill_locked(req);
            req->armed = false;
        }
    }
    pthread_mutex_unlock(&req->lock);
    return release;
}

static void *
flusher_main(void *arg)
{
    struct ss_server *srv = arg;
    struct ss_sendq *q = atomic_load(&srv->sendq);
    struct epoll_event evs[64];

    for (;;) {
        int n = epoll_wait(q->epfd, evs, 64, -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            ss_log(SS_LOG_ERROR, "%s: flusher: epoll_wait: %s", srv->name,
                   strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            struct ss_request *req = evs[i].data.ptr;

            if (req == NULL)
                return NULL;    /* ss_sendq_stop */
            if (flush_one(q, req))
                ss_request_release(req);
        }
        release_gc(q);
    }
}

/* Stops a server's flusher thread and waits for it; frees the queue's
 * state when free is true (ss_server_free). */
static void
stop(struct ss_server *srv)
{
    struct ss_sendq *q = atomic_load(&srv->sendq);
    int pfd[2];
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    if (!q->started) {
        pthread_mutex_unlock(&q->lock);
        return;
    }
    q->started = false;
    pthread_mutex_unlock(&q->lock);
    /* a readable pipe registered with a NULL pointer tells it to exit */
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        ss_log(SS_LOG_ERROR, "%s: pipe: %s", srv->name, strerror(errno));
        return;
    }
    if (write(pfd[1], "x", 1) == 1 &&
        epoll_ctl(q->epfd, EPOLL_CTL_ADD, pfd[0], &ev) == 0)
        pthread_join(q->thread, NULL);
    close(pfd[0]);
    close(pfd[1]);
    release_gc(q);
}

void
ss_sendq_stop(struct ss_server *srv)
{
    stop(srv);
}

/* Frees the flusher's state (its thread stopped first). */
void
ss_sendq_free(struct ss_server *srv)
{
    struct ss_sendq *q = atomic_load(&srv->sendq);

    if (q == NULL)
        return;
    stop(srv);
    if (q->epfd >= 0)
        close(q->epfd);
    pthread_mutex_destroy(&q->lock);
    free(q);
    atomic_store(&srv->sendq, NULL);
}

/* In a forked child: the flusher thread stayed in the parent.  Writes
 * only when there is one (a page not written is a page not copied). */
void
ss_sendq_forget(struct ss_server *srv)
{
    if (atomic_load_explicit(&srv->sendq, memory_order_relaxed) != NULL)
        atomic_store_explicit(&srv->sendq, NULL, memory_order_relaxed);
}

/* A request that ends: off the flusher's set (its reference passes to
 * the flusher's next batch if an event for it may be in hand).  Under
 * req->lock. */
void
ss_sendq_detach(struct ss_request *req)
{
    struct ss_sendq *q = atomic_load(&req->srv->sendq);

    if (!req->epoll_added || q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    epoll_ctl(q->epfd, EPOLL_CTL_DEL, req->fd, NULL);
    if (req->armed) {
        req->gc_next = q->gc;
        q->gc = req;
        req->armed = false;
    }
    pthread_mutex_unlock(&q->lock);
    req->epoll_added = false;
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
                ss_sendq_kill_locked(to);
                goto out_pipe;
            }
            ss_stats_add(&to->srv->stats->bytes_out, (size_t)n);
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
        ss_sendq_kill_locked(to);
        pthread_mutex_unlock(&to->lock);
        ss_log(SS_LOG_WARNING, "%s: %s: output backlog over %zu bytes, "
               "disconnected", to->srv->name, ss_request_peer(to), limit);
        errno = ENOBUFS;
        return -1;
    }
    c = malloc(sizeof *c + len);
    if (c == NULL) {
        ss_sendq_kill_locked(to);
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
        ss_sendq_kill_locked(to);
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
    p = ss_vformat(small, sizeof small, &n, fmt, ap);
    va_end(ap);
    if (p == NULL)
        return -1;
    rc = ss_send(to, p, n);
    if (p != small)
        free(p);
    return rc;
}

/*
 * Sends what is queued before the caller's own bytes, waiting (through
 * the mode) while the client is slow, until the deadline.  0 when
 * drained, -1 when the connection broke or the deadline passed (errno).
 * Called with req->lock held; drops it while waiting.
 */
static int
drain_wait_locked(struct ss_request *req, double deadline)
{
    while (req->queued > 0 && !req->dead && !req->closed) {
        int rc = drain_locked(req);

        if (rc == 0)
            return 0;
        if (rc > 0) {
            pthread_mutex_unlock(&req->lock);
            rc = ss_request_wait(req, POLLOUT, deadline);
            pthread_mutex_lock(&req->lock);
            if (rc > 0)
                continue;
            if (rc == 0)
                errno = ETIMEDOUT;
        }
        return -1;
    }
    return 0;
}

/* Writes all of buf on the request's own connection: a blocking socket
 * blocks in the kernel (SO_SNDTIMEO), a non-blocking one waits through
 * the mode, each wait at most the server's timeout. */
static int
send_all(struct ss_request *req, const char *p, size_t len)
{
    bool nb = req->srv->set.mode->nonblocking;

    while (len > 0) {
        ssize_t n = send(req->fd, p, len, MSG_NOSIGNAL);

        if (n >= 0) {
            ss_stats_add(&req->srv->stats->bytes_out, (size_t)n);
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -1;
        if (!nb) {
            errno = ETIMEDOUT;          /* SO_SNDTIMEO expired */
            return -1;
        }
        int rc = ss_request_wait(req, POLLOUT, ss_request_deadline(req));

        if (rc <= 0) {
            if (rc == 0)
                errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/*
 * The handler's own write on a stream: sends what others queued first,
 * so bytes keep their order, and holds no lock while it waits.
 */
int
ss_stream_write_owned(struct ss_request *req, const void *buf, size_t len)
{
    int rc;

    pthread_mutex_lock(&req->lock);
    if (req->queued > 0 && !req->closing &&
        drain_wait_locked(req, ss_request_deadline(req)) < 0 &&
        !req->dead && !req->closed)
        ss_sendq_kill_locked(req);
    if (req->dead || req->closed || req->closing) {
        pthread_mutex_unlock(&req->lock);
        errno = EPIPE;
        return -1;
    }
    req->owner_writing = true;
    pthread_mutex_unlock(&req->lock);

    rc = send_all(req, buf, len);

    pthread_mutex_lock(&req->lock);
    req->owner_writing = false;
    if (rc < 0 && !req->dead)
        ss_sendq_kill_locked(req);
    else if (req->queued > 0 && arm_locked(req) < 0)
        ss_sendq_kill_locked(req);
    pthread_mutex_unlock(&req->lock);
    return rc;
}

/*
 * Sends what other threads queued for this connection before it closes,
 * waiting at most wait seconds.  Returns 0, or -1 if some was lost.
 */
int
ss_stream_flush(struct ss_request *req, double wait)
{
    int rc;

    /* alone in the process (a forked child, a sync server), nothing queued
     * stays nothing queued: no lock to write (a copied page, in a child) */
    if (__libc_single_threaded && req->queued == 0)
        return 0;
    pthread_mutex_lock(&req->lock);
    rc = req->queued > 0 ? drain_wait_locked(req, ss_now() + wait) : 0;
    if (rc < 0 && req->queued > 0)
        ss_sendq_kill_locked(req);
    pthread_mutex_unlock(&req->lock);
    return rc;
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
            ss_sendq_kill_locked(req);
    }
    pthread_mutex_unlock(&req->lock);
}
