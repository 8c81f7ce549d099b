/* request.c: one request's life (setup -> handle -> finish) and its I/O;
 * the cross-thread sends (ss_send) are sendq.c's. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "proxy.h"

#define SS_RBUF_SIZE 4096

/* Seconds a proxied connection has to send its whole PROXY header. */
#define SS_PROXY_WAIT 3.0

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
    return req;
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
    ss_sendq_drop(req);
    if (req->rbuf_owned)
        free(req->rbuf);
    free(req->wbuf);
    pthread_mutex_destroy(&req->lock);
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

int
ss_request_peercred(const struct ss_request *req, pid_t *pid, uid_t *uid,
                    gid_t *gid)
{
    struct ucred cr;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (req->fd < 0 || getsockname(req->fd, (struct sockaddr *)&ss,
                                   &len) < 0 || ss.ss_family != AF_UNIX) {
        errno = ENOTSUP;
        return -1;
    }
    len = sizeof cr;
    if (getsockopt(req->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return -1;
    *pid = cr.pid;
    *uid = cr.uid;
    *gid = cr.gid;
    return 0;
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

/* A stream's read-ahead buffer, made on first use.  0 or -1. */
static int
rbuf_get(struct ss_request *req)
{
    if (req->rbuf != NULL)
        return 0;
    req->rbuf = malloc(SS_RBUF_SIZE);
    if (req->rbuf == NULL)
        return -1;
    req->rcap = SS_RBUF_SIZE;
    req->rbuf_owned = true;
    return 0;
}

/* Refills the read-ahead buffer (streams).  Returns bytes, 0, -1. */
static ssize_t
fill(struct ss_request *req)
{
    ssize_t n;

    if (req->fd < 0)
        return 0;               /* a datagram has nothing more */
    if (rbuf_get(req) < 0)
        return -1;
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

/* ---- waiting ---------------------------------------------------------- */

/* The one way a request waits for its I/O: through its mode. */
int
ss_request_wait(struct ss_request *req, short events, double deadline)
{
    const struct ss_mode *m = req->srv->set.mode;

    return m->wait_io ? m->wait_io(req, req->fd, events, deadline)
                      : ss_poll_fd(req->fd, events, deadline);
}

int
ss_run_blocking(struct ss_request *req, void (*fn)(void *), void *arg)
{
    const struct ss_mode *m = req->srv->set.mode;

    if (m->run_blocking != NULL)
        return m->run_blocking(req, fn, arg);
    fn(arg);
    return 0;
}

/* When a wait that starts now ends for the server's timeout (-1: none). */
double
ss_request_deadline(const struct ss_request *req)
{
    double t = req->srv->set.timeout;

    return t > 0 ? ss_now() + t : -1;
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
char *
ss_vformat(char *small, size_t size, size_t *len, const char *fmt,
           va_list ap)
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

    p = ss_vformat(small, sizeof small, &n, fmt, ap);
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

/* ---- admission and the PROXY header ------------------------------------ */

/*
 * Whether the request gets in: allow/deny and the limits (ss_access_admit),
 * then verify_request.  A refusal is logged with the client's address.
 * For a proxied server it runs once the header has named the client.
 */
bool
ss_request_admit(struct ss_request *req)
{
    struct ss_server *srv = req->srv;

    if (!ss_access_admit(srv, req))
        return false;
    if (srv->verify != NULL &&
        !srv->verify(srv, (struct sockaddr *)&req->addr, req->addrlen,
                     srv->verify_arg)) {
        ss_stats_refused(srv, SS_REFUSED_VERIFY_REQUEST);
        ss_access_log_refusal(srv, ss_request_peer(req), "verify_request");
        return false;
    }
    return true;
}

/* Takes len bytes that a peek has shown are there.  0 or -1. */
static int
consume(int fd, size_t len)
{
    char sink[512];

    while (len > 0) {
        ssize_t n = recv(fd, sink, len < sizeof sink ? len : sizeof sink,
                         MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len -= (size_t)n;
    }
    return 0;
}

_Static_assert(SS_RBUF_SIZE >= SS_PROXY_MAX,
               "a PROXY header fits the read-ahead buffer");

/*
 * Reads the connection's PROXY header.  Bytes read with it (a client's
 * first bytes often come in the same segment) stay in the read-ahead
 * buffer for the handler, so the header costs no system call of its own
 * most of the time.  A server whose handler gives the connection to
 * another program (ss_server_set_exact_reads) instead looks at the bytes
 * (MSG_PEEK) and takes only the header's: nothing past it is read.
 * Waits through the mode, at most SS_PROXY_WAIT seconds in all.  On
 * success the request's address becomes the one the header carries (a
 * LOCAL header keeps the connection's).  Returns 0, or -1 after logging
 * why (with the connection's own address).
 */
static int
proxy_read(struct ss_request *req)
{
    struct ss_server *srv = req->srv;
    bool exact = srv->exact_reads, nb = srv->set.mode->nonblocking;
    unsigned char peek[SS_PROXY_MAX], *buf = peek;
    size_t cap = sizeof peek, have = 0;
    struct ss_proxy_result res;
    double deadline = ss_now() + SS_PROXY_WAIT;
    const char *why;
    char what[256];
    int r;

    if (!exact) {
        if (rbuf_get(req) < 0) {
            why = "PROXY header: out of memory";
            goto out_fail;
        }
        buf = (unsigned char *)req->rbuf;
        cap = SS_PROXY_MAX;
    }
    for (;;) {
        size_t want = cap - have;
        ssize_t n;

        if (want == 0) {        /* the parser ends a header sooner */
            why = "PROXY header too long";
            goto out_fail;
        }
        n = recv(req->fd, buf + have, want,
                         exact ? MSG_PEEK | MSG_DONTWAIT : MSG_DONTWAIT);

        if (n > 0) {
            r = ss_proxy_parse(buf, have + (size_t)n, srv->set.proxy_versions,
                               &res);
            if (r < 0) {
                snprintf(what, sizeof what, "invalid PROXY header (%s)",
                         res.why);
                why = what;
                goto out_fail;
            }
            if (!exact) {
                have += (size_t)n;
                if (r == 0)
                    continue;
                /* the rest is the client's: read ahead for the handler */
                req->rpos = (size_t)r;
                req->rlen = have;
                if (have > (size_t)r)
                    ss_stats_add(&srv->stats->bytes_in, have - (size_t)r);
                req->rd_empty = nb && (size_t)n < want && !req->rd_hup;
                break;
            }
            /* complete: the header's bytes; else all, a header's start */
            size_t take = r > 0 ? (size_t)r - have : (size_t)n;

            if (consume(req->fd, take) < 0) {
                why = "PROXY header: read failed";
                goto out_fail;
            }
            have += take;
            if (r > 0)
                break;
            continue;
        }
        if (n == 0) {
            why = have ? "closed before its PROXY header ended"
                       : "closed before sending a PROXY header";
            goto out_fail;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            snprintf(what, sizeof what, "PROXY header: %s", strerror(errno));
            why = what;
            goto out_fail;
        }
        r = ss_request_wait(req, POLLIN, deadline);
        if (r == 0) {
            snprintf(what, sizeof what, "no complete PROXY header within "
                     "%g s (%zu bytes came)", SS_PROXY_WAIT, have);
            why = what;
            goto out_fail;
        }
        if (r < 0) {
            snprintf(what, sizeof what, "PROXY header: %s", strerror(errno));
            why = what;
            goto out_fail;
        }
    }
    if (!res.local && res.srclen > 0) {
        pthread_mutex_lock(&req->lock);
        memcpy(&req->addr, &res.src, res.srclen);
        req->addrlen = res.srclen;
        atomic_store_explicit(&req->peer_ready, false, memory_order_release);
        pthread_mutex_unlock(&req->lock);
    }
    return 0;
out_fail:
    ss_log(SS_LOG_WARNING, "%s: %s: %s; closed", srv->name,
           ss_request_peer(req), why);
    return -1;
}

/*
 * setup -> handle -> finish, as BaseRequestHandler, then the reply or the
 * flush.  A proxied connection first gives its PROXY header and is
 * admitted on the address it carries.  The request stays the caller's.
 */
void
ss_request_handle(struct ss_request *req)
{
    struct ss_server *srv = req->srv;
    const struct ss_handler *h = srv->handler;
    int rc = 0;

    if (srv->set.proxy_versions != 0 && req->fd >= 0 &&
        (proxy_read(req) < 0 || !ss_request_admit(req)))
        return;
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
    if (req->counted) {
        req->counted = false;
        ss_stats_ended(req->srv);
    }
    if (req->admitted) {
        req->admitted = false;
        ss_access_release(req->srv, (struct sockaddr *)&req->addr,
                          req->addrlen);
    }
    if (req->fd >= 0) {
        pthread_mutex_lock(&req->lock);
        ss_sendq_detach(req);
        req->closed = true;
        ss_sendq_drop(req);
        ss_fd_untrack(req->fd);
        if (req->mode_data != NULL && req->srv->set.mode->conn_closing)
            req->srv->set.mode->conn_closing(req);
        close(req->fd);
        pthread_mutex_unlock(&req->lock);
    }
    ss_request_release(req);
}
