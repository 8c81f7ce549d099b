/* server.c: a server's life: settings and init, bind/listen, the serve
 * loop with verify_request and service_actions, shutdown and close. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SS_EMFILE_BACKOFF_MS 100

struct ss_server *
ss_server_new(const char *name, const struct ss_handler *h)
{
    struct ss_server *srv = calloc(1, sizeof *srv);

    if (srv == NULL)
        return NULL;
    srv->name = strdup(name ? name : "server");
    if (srv->name == NULL) {
        free(srv);
        return NULL;
    }
    if (ss_stats_new(srv) < 0) {
        free(srv->name);
        free(srv);
        return NULL;
    }
    srv->handler = h;
    ss_settings_defaults(&srv->set);
    srv->fd = -1;
    srv->wake[0] = srv->wake[1] = -1;
    pthread_condattr_t ca;

    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->cond, &ca);
    pthread_condattr_destroy(&ca);
    return srv;
}

void
ss_server_set_line(struct ss_server *srv, int line)
{
    srv->section_line = line;
}

void
ss_server_set_error_fn(struct ss_server *srv,
                       void (*fn)(void *, int, const char *), void *arg)
{
    srv->error_fn = fn;
    srv->error_arg = arg;
}

const char *
ss_server_error(const struct ss_server *srv, int *line)
{
    if (line != NULL)
        *line = srv->error_line;
    return srv->error;
}

bool
ss_server_error_is_config(const struct ss_server *srv)
{
    return srv->error_config;
}

/* ---- accessors -------------------------------------------------------- */

const char *ss_server_name(const struct ss_server *s) { return s->name; }
const char *ss_server_type(const struct ss_server *s)
{
    return s->set.type_name;
}
const char *ss_server_mode(const struct ss_server *s)
{
    return s->set.mode->name;
}
bool ss_server_concurrent(const struct ss_server *s)
{
    return s->set.mode->max_requests(s) > 1;
}
unsigned ss_server_kind(const struct ss_server *s)
{
    return s->set.transport->kind;
}
void *ss_server_state(const struct ss_server *s) { return s->state; }
const char *ss_server_address(const struct ss_server *s)
{
    return s->address;
}

/* The listening (or datagram) socket: a reload's next generation of the
 * server serves on a duplicate of it. */
int
ss_server_fd(const struct ss_server *s)
{
    return s->fd;
}

/* The socket file is another server's from now on: not removed at close
 * (a reload handed the socket on). */
void
ss_server_leave_socket_file(struct ss_server *s)
{
    s->worker = true;
}

/* After serve_forever returned for a shutdown that was not one (the
 * daemon's reload leaves the main thread): serving may go on. */
void
ss_server_resume(struct ss_server *s)
{
    char buf[64];

    atomic_store(&s->stop, false);
    while (s->wake[0] >= 0 && read(s->wake[0], buf, sizeof buf) > 0)
        ;
}

/* True when the server's mode is best served from the process's main
 * thread if it is the only server (struct ss_mode.solo). */
bool
ss_server_solo(const struct ss_server *s)
{
    return s->set.mode->solo;
}

long
ss_server_workers(const struct ss_server *s)
{
    return s->set.workers;
}

double
ss_server_shutdown_timeout(const struct ss_server *s)
{
    return s->set.shutdown_timeout;
}

void
ss_server_set_max_backlog(struct ss_server *srv, size_t bytes)
{
    srv->max_backlog = bytes;
}

void
ss_server_set_exact_reads(struct ss_server *srv)
{
    srv->exact_reads = true;
}

void
ss_server_set_verify_request(struct ss_server *srv, ss_verify_fn fn,
                             void *arg)
{
    srv->verify = fn;
    srv->verify_arg = arg;
}

void
ss_server_set_handle_error(struct ss_server *srv, ss_error_fn fn, void *arg)
{
    srv->on_error = fn;
    srv->on_error_arg = arg;
}

void
ss_server_set_service_actions(struct ss_server *srv, ss_service_fn fn,
                              void *arg)
{
    srv->service = fn;
    srv->service_arg = arg;
}

/* ---- init and bind ------------------------------------------------------ */

int
ss_server_init(struct ss_server *srv)
{
    const struct ss_handler *h = srv->handler;
    int rc = 0;

    if (srv->inited)
        return 0;
    if (h == NULL) {
        ss_server_fail(srv, true, srv->section_line, "[%s]: no handler",
                       srv->name);
        return -1;
    }
    if (ss_settings_validate(srv) < 0)
        return -1;
    srv->error[0] = '\0';
    if (h->init != NULL && h->init(srv, &srv->state) < 0) {
        if (srv->error[0] == '\0')
            ss_server_fail(srv, false, srv->section_line, "[%s]: handler "
                           "\"%s\" failed to initialise", srv->name,
                           h->name ? h->name : "?");
        return -1;
    }
    for (size_t i = 0; i < srv->nopts; i++) {
        if (!srv->opts[i].claimed) {
            ss_server_fail(srv, true, srv->opts[i].line, "unknown key "
                           "\"%s\" (not a sockserv key, and handler \"%s\" "
                           "does not take it)", srv->opts[i].key,
                           h->name ? h->name : "?");
            rc = -1;
        }
    }
    if (rc < 0) {
        if (h->fini != NULL)
            h->fini(srv->state);
        srv->state = NULL;
        return -1;
    }
    srv->inited = true;
    return 0;
}

/*
 * A Unix socket file left by a server that is gone is removed; one that
 * still answers, or any other kind of file, is left alone (EADDRINUSE).
 */
static int
clear_stale_socket(const char *path, int socktype)
{
    struct sockaddr_un sun;
    socklen_t len;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    if (ss_addr_unix(path, &sun, &len) < 0)
        return -1;
    fd = socket(AF_UNIX, socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = connect(fd, (struct sockaddr *)&sun, len);
    close(fd);
    if (rc == 0 || (errno != ECONNREFUSED && errno != ENOENT)) {
        errno = EADDRINUSE;
        return -1;
    }
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Creates the socket with Python's options and binds it.  -1 (errno). */
static int
open_socket(struct ss_server *srv, const struct sockaddr *sa, socklen_t len,
            int socktype)
{
    int one = 1, zero = 0;
    int fd = socket(sa->sa_family, socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);

    if (fd < 0)
        return -1;
    if (sa->sa_family != AF_UNIX) {
        if (srv->set.allow_reuse_address &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
            goto out_close;
        if (srv->set.allow_reuse_port &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            goto out_close;
    }
    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)
                                  (const void *)sa)->sin6_addr))
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, sa, len) < 0)
        goto out_close;
    /* a Unix socket's mode and owner are set before anyone can connect */
    if (sa->sa_family == AF_UNIX &&
        ((srv->unix_mode >= 0 &&
          chmod(srv->set.path, (mode_t)srv->unix_mode) < 0) ||
         ((srv->unix_uid != (uid_t)-1 || srv->unix_gid != (gid_t)-1) &&
          chown(srv->set.path, srv->unix_uid, srv->unix_gid) < 0))) {
        int e = errno;

        unlink(srv->set.path);
        errno = e;
        goto out_close;
    }
    srv->fd = fd;
    ss_fd_track(fd);
    if (srv->set.transport->bind(srv, sa, len) < 0) {
        ss_fd_untrack(fd);
        srv->fd = -1;
        goto out_close;
    }
    return 0;
out_close: {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
}

static int
bind_unix(struct ss_server *srv, int socktype)
{
    struct sockaddr_un sun;
    socklen_t len;
    struct stat st;
    const char *path = srv->set.path;

    if (ss_addr_unix(path, &sun, &len) < 0 ||
        clear_stale_socket(path, socktype) < 0 ||
        open_socket(srv, (struct sockaddr *)&sun, len, socktype) < 0) {
        ss_server_fail(srv, false, ss_opt_line(srv, "path"), "%s: bind %s: "
                       "%s", srv->name, path, strerror(errno));
        return -1;
    }
    srv->unix_path = strdup(path);
    if (srv->unix_path != NULL && stat(path, &st) == 0) {
        srv->unix_dev = st.st_dev;
        srv->unix_ino = st.st_ino;
    }
    return 0;
}

static int
bind_inet(struct ss_server *srv, int socktype)
{
    struct addrinfo *res, *ai;
    char err[256], where[SS_ADDRSTRLEN + 64];
    const char *host = srv->set.host ? srv->set.host : "127.0.0.1";
    int e = 0;

    if (ss_addr_resolve(host, srv->set.port, socktype, &res, err,
                        sizeof err) < 0) {
        ss_server_fail(srv, false, ss_opt_line(srv, "host"), "%s: bind "
                       "%s:%d: %s", srv->name, host, srv->set.port, err);
        return -1;
    }
    snprintf(where, sizeof where, "%s:%d", host, srv->set.port);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (open_socket(srv, ai->ai_addr, ai->ai_addrlen, socktype) == 0)
            break;
        if (e == 0)
            e = errno;
        ss_addr_format(ai->ai_addr, ai->ai_addrlen, where, sizeof where);
    }
    freeaddrinfo(res);
    if (ai == NULL) {
        ss_server_fail(srv, false, ss_opt_line(srv, "port"), "%s: bind %s: "
                       "%s", srv->name, where, strerror(e ? e : EINVAL));
        return -1;
    }
    return 0;
}

/* The address the socket is bound to, for ss_server_address. */
static void
note_address(struct ss_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(srv->fd, (struct sockaddr *)&ss, &len) == 0) {
        memcpy(&srv->bound_addr, &ss, sizeof ss);
        srv->bound_len = len;
    }
    if (srv->bound_len > offsetof(struct sockaddr_un, sun_path) + 1 ||
        ss.ss_family != AF_UNIX)
        ss_addr_format((struct sockaddr *)&ss, len, srv->address,
                       sizeof srv->address);
    else
        snprintf(srv->address, sizeof srv->address, "%s", srv->set.path);
    srv->bound = true;
    ss_stats_register(srv);
}

static int
socket_type(const struct ss_server *srv)
{
    return srv->set.transport->kind == SS_STREAM ? SOCK_STREAM : SOCK_DGRAM;
}

int
ss_server_bind(struct ss_server *srv)
{
    int socktype = socket_type(srv);
    int rc;

    if (srv->bound)
        return 0;
    if (ss_server_init(srv) < 0)
        return -1;
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        ss_server_fail(srv, false, 0, "%s: pipe: %s", srv->name,
                       strerror(errno));
        return -1;
    }
    rc = srv->set.path ? bind_unix(srv, socktype)
                       : bind_inet(srv, socktype);
    if (rc < 0)
        return -1;
    note_address(srv);
    return 0;
}

/*
 * True when fd is a socket this server would have bound: its type, and
 * its address (a Unix path, or an address host and port resolve to).
 */
bool
ss_server_socket_matches(const struct ss_server *srv, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    struct addrinfo *res;
    char err[256];
    int type = 0;
    socklen_t tlen = sizeof type;
    bool match = false;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
        type != socket_type(srv) ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (srv->set.path != NULL) {
        const struct sockaddr_un *sun = (const void *)&ss;

        return ss.ss_family == AF_UNIX &&
               len > offsetof(struct sockaddr_un, sun_path) &&
               strncmp(sun->sun_path, srv->set.path,
                       len - offsetof(struct sockaddr_un, sun_path)) == 0 &&
               strlen(srv->set.path) ==
                   strnlen(sun->sun_path,
                           len - offsetof(struct sockaddr_un, sun_path));
    }
    if (srv->set.port <= 0 ||
        ss_addr_resolve(srv->set.host ? srv->set.host : "127.0.0.1",
                        srv->set.port, type, &res, err, sizeof err) < 0)
        return false;
    for (struct addrinfo *ai = res; ai != NULL && !match; ai = ai->ai_next)
        match = ai->ai_addrlen == len && memcmp(ai->ai_addr, &ss, len) == 0;
    freeaddrinfo(res);
    return match;
}

/*
 * Serves on a socket made elsewhere (systemd's socket activation): its
 * type and family must fit the section; it is listened on if a stream,
 * made non-blocking, and never unlinked or shut down here (it stays the
 * caller's).  Init first if not yet.  0 or -1.
 */
int
ss_server_adopt(struct ss_server *srv, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type = 0, fl;
    socklen_t tlen = sizeof type;

    if (srv->bound) {
        errno = EBUSY;
        return -1;
    }
    if (ss_server_init(srv) < 0)
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        ss_server_fail(srv, false, 0, "%s: inherited socket %d: %s",
                       srv->name, fd, strerror(errno));
        return -1;
    }
    if (type != socket_type(srv) ||
        (ss.ss_family == AF_UNIX) != (srv->set.path != NULL)) {
        ss_server_fail(srv, false, 0, "%s: inherited socket %d is not a "
                       "%s socket", srv->name, fd, srv->set.type_name);
        return -1;
    }
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
        (fl = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        ss_server_fail(srv, false, 0, "%s: inherited socket %d: %s",
                       srv->name, fd, strerror(errno));
        return -1;
    }
    srv->fd = fd;
    ss_fd_track(fd);
    if (srv->set.transport->bind(srv, (struct sockaddr *)&ss, len) < 0) {
        ss_server_fail(srv, false, 0, "%s: inherited socket %d: %s",
                       srv->name, fd, strerror(errno));
        ss_fd_untrack(fd);
        srv->fd = -1;
        return -1;
    }
    srv->worker = true;         /* the socket file is not ours to remove */
    note_address(srv);
    return 0;
}

/*
 * In a forked worker process: a socket of its own on the address the
 * server is bound to (SO_REUSEPORT spreads connections over the workers);
 * a Unix server keeps the shared socket.  The worker never removes the
 * socket file: the parent does.
 */
int
ss_server_reopen(struct ss_server *srv)
{
    int old = srv->fd;
    int socktype = socket_type(srv);

    if (!srv->bound) {
        errno = EINVAL;
        return -1;
    }
    srv->worker = true;
    if (srv->set.path != NULL)
        return 0;
    if (open_socket(srv, (struct sockaddr *)&srv->bound_addr,
                    srv->bound_len, socktype) < 0) {
        ss_server_fail(srv, false, 0, "%s: worker: bind %s: %s", srv->name,
                       srv->address, strerror(errno));
        srv->fd = old;
        return -1;
    }
    ss_fd_untrack(old);
    close(old);
    return 0;
}

int
ss_server_start(struct ss_server *srv)
{
    return ss_server_bind(srv);
}

/* ---- the running list and the slots (max_threads, max_children) ------- */

void
ss_server_track(struct ss_server *srv, struct ss_request *req)
{
    pthread_mutex_lock(&srv->lock);
    req->prev = NULL;
    req->next = srv->running;
    if (srv->running != NULL)
        srv->running->prev = req;
    srv->running = req;
    req->listed = true;
    pthread_mutex_unlock(&srv->lock);
}

void
ss_server_untrack(struct ss_server *srv, struct ss_request *req)
{
    pthread_mutex_lock(&srv->lock);
    if (req->listed) {
        if (req->prev != NULL)
            req->prev->next = req->next;
        else
            srv->running = req->next;
        if (req->next != NULL)
            req->next->prev = req->prev;
        req->listed = false;
        if (srv->running == NULL)
            pthread_cond_broadcast(&srv->cond);
    }
    pthread_mutex_unlock(&srv->lock);
}

long
ss_server_max_requests(const struct ss_server *srv)
{
    long limit = srv->set.mode->max_requests(srv);

    if (srv->set.max_connections > 0 && srv->set.max_connections > limit)
        limit = srv->set.max_connections;   /* refused ones are fds too */
    return limit;
}

/* Waits on a condition created with CLOCK_MONOTONIC until deadline.
 * Returns 0 when signalled, ETIMEDOUT when the deadline passed. */
int
ss_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
                   double deadline)
{
    struct timespec ts;

    if (ss_now() >= deadline)
        return ETIMEDOUT;
    ts.tv_sec = (time_t)deadline;
    ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
    return pthread_cond_timedwait(cond, lock, &ts);
}

/* Waits until no request runs (threads, children, the sync one), at most
 * until the deadline. */
void
ss_server_wait_idle(struct ss_server *srv, double deadline)
{
    pthread_mutex_lock(&srv->lock);
    while ((srv->active > 0 || srv->running != NULL) &&
           ss_cond_wait_until(&srv->cond, &srv->lock, deadline) == 0)
        ;
    pthread_mutex_unlock(&srv->lock);
}

/* True while a request runs (a thread, a child, a coroutine). */
bool
ss_server_busy(struct ss_server *srv)
{
    bool busy;

    pthread_mutex_lock(&srv->lock);
    busy = srv->active > 0 || srv->running != NULL;
    pthread_mutex_unlock(&srv->lock);
    return busy;
}

/* Waits until fd has events or the deadline (< 0: none) passes, in this
 * thread: 1 ready, 0 timed out, -1 error.  The blocking modes' wait_io. */
int
ss_poll_fd(int fd, short events, double deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    for (;;) {
        int rc = poll(&pfd, 1, deadline < 0 ? -1 : ss_ms_until(deadline));

        if (rc >= 0)
            return rc > 0 ? 1 : 0;
        if (errno != EINTR)
            return -1;
    }
}

/*
 * Stage one of cutting what still runs: the reading side of every running
 * connection is shut, so a handler reads what the client already sent and
 * then sees the end (an echo client gets every byte it sent back), and
 * forked children are asked the same way.
 */
void
ss_server_shutdown_now(struct ss_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (struct ss_request *r = srv->running; r != NULL; r = r->next)
        if (r->fd >= 0)
            shutdown(r->fd, SHUT_RD);
    pthread_mutex_unlock(&srv->lock);
    if (srv->set.mode->cut != NULL)
        srv->set.mode->cut(srv, 0);
    ss_spawn_cut(srv, 0);
}

/* Stage two: connections shut both ways (blocked writes return too),
 * children killed. */
void
ss_server_kill_all(struct ss_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (struct ss_request *r = srv->running; r != NULL; r = r->next) {
        if (r->fd >= 0) {
            atomic_store(&r->rd_shut, true);
            shutdown(r->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    if (srv->set.mode->cut != NULL)
        srv->set.mode->cut(srv, 1);
    ss_spawn_cut(srv, 1);
}

/* ---- serving ------------------------------------------------------------ */

static int
poll_eintr(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
    int rc;

    do
        rc = poll(pfd, n, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/*
 * Waits for the socket (when watch), the shutdown pipe and extra_fd (-1:
 * none), at most timeout_ms (-1: no limit).  Returns 1 when the socket is
 * ready, 0 on timeout, shutdown or extra_fd.
 */
int
ss_server_poll(struct ss_server *srv, int timeout_ms, bool watch,
               int extra_fd)
{
    struct pollfd pfd[3] = {
        { .fd = srv->wake[0], .events = POLLIN },
        { .fd = watch ? srv->fd : -1, .events = POLLIN },
        { .fd = extra_fd, .events = POLLIN },
    };
    int rc = poll_eintr(pfd, 3, timeout_ms);

    if (rc <= 0 || atomic_load(&srv->stop))
        return 0;
    return (pfd[1].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0;
}

/* The core's wait for a request: the socket or shutdown. */
int
ss_server_wait_ready(struct ss_server *srv, int timeout_ms, bool watch)
{
    return ss_server_poll(srv, timeout_ms, watch, -1);
}

/*
 * Takes one request if one is ready and runs it through verify_request and
 * the mode.  Returns 1 if one was taken, 0 if none was ready, -1 on an
 * accept error that asks for a pause (EMFILE and its kin).
 */
int
ss_server_take(struct ss_server *srv)
{
    struct ss_request *req = srv->set.transport->get_request(srv);

    if (req == NULL) {
        if (errno == EAGAIN)
            return 0;
        /* one line per episode, not one per pause */
        if (!srv->emfile_logged)
            ss_log(SS_LOG_WARNING, "%s: accept: %s; pausing %d ms until "
                   "it passes", srv->name, strerror(errno),
                   SS_EMFILE_BACKOFF_MS);
        srv->emfile_logged = true;
        return -1;
    }
    if (srv->emfile_logged) {
        ss_log(SS_LOG_INFO, "%s: accepting again", srv->name);
        srv->emfile_logged = false;
    }
    /* a proxied server admits in the request's own run, once its PROXY
     * header has said who the client is: here, only whether the
     * connection comes from a proxy it trusts (a Unix socket's file
     * permissions said so already) */
    if (srv->set.proxy_versions != 0) {
        if (srv->proxy.from != NULL &&
            !ss_cidr_list_match(srv->proxy.from, srv->proxy.nfrom,
                                (struct sockaddr *)&req->addr,
                                req->addrlen)) {
            ss_access_log_refusal(srv, ss_request_peer(req),
                                  "not in proxy_from");
            ss_request_end(req);
            return 1;
        }
    } else if (!ss_request_admit(req)) {
        ss_request_end(req);
        return 1;
    }
    ss_stats_admitted(srv, req);
    srv->set.mode->process(srv, req);
    return 1;
}

/*
 * One turn of the serve loop: waits for a free slot, takes a request if
 * one is ready, else waits at most wait_ms (-1: no limit) for one, or
 * pauses after an accept error.  Returns 1 when a request was taken, 0
 * when none was, -1 once shutdown was asked.
 */
static int
serve_step(struct ss_server *srv, int wait_ms)
{
    const struct ss_mode *m = srv->set.mode;
    int (*wait_ready)(struct ss_server *, int, bool) =
        m->wait_ready ? m->wait_ready : ss_server_wait_ready;
    int rc;

    if (m->step != NULL)
        return m->step(srv, wait_ms);
    if (!m->wait_slot(srv))
        return -1;
    rc = ss_server_take(srv);
    if (rc == 0)
        (void)wait_ready(srv, wait_ms, true);
    else if (rc < 0)
        (void)wait_ready(srv, SS_EMFILE_BACKOFF_MS, false);
    return rc > 0 ? 1 : 0;
}

int
ss_server_serve_forever(struct ss_server *srv)
{
    int idle_ms = srv->service ? 500 : -1;      /* Python's poll_interval */

    if (!srv->bound && ss_server_bind(srv) < 0)
        return -1;
    while (serve_step(srv, idle_ms) >= 0)
        if (srv->service != NULL)
            srv->service(srv, srv->service_arg);
    return 0;
}

int
ss_server_handle_request(struct ss_server *srv, double timeout)
{
    double deadline = ss_now() + timeout;
    int rc;

    if (!srv->bound && ss_server_bind(srv) < 0)
        return -1;
    do {
        rc = serve_step(srv, timeout >= 0 ? ss_ms_until(deadline) : -1);
        if (rc > 0)
            return 0;
    } while (rc == 0 && (timeout < 0 || ss_now() < deadline));
    errno = ETIMEDOUT;
    return -1;
}

/* A flag and a byte down a non-blocking pipe: async-signal-safe. */
void
ss_server_shutdown_signal(struct ss_server *srv)
{
    int saved = errno;

    atomic_store(&srv->stop, true);
    if (srv->wake[1] >= 0)
        (void)write(srv->wake[1], "x", 1);
    errno = saved;
}

void
ss_server_shutdown(struct ss_server *srv)
{
    ss_server_shutdown_signal(srv);
    pthread_mutex_lock(&srv->lock);
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

/* The mode's stop: true while something of it still runs. */
static bool
stop_mode(struct ss_server *srv)
{
    return srv->set.mode->stop != NULL && srv->set.mode->stop(srv);
}

static void
close_socket(struct ss_server *srv)
{
    ss_fd_untrack(srv->fd);
    close(srv->fd);
    srv->fd = -1;
}

void
ss_server_close(struct ss_server *srv)
{
    double deadline;
    struct stat st;
    bool busy;

    if (srv->closed)
        return;
    srv->closed = true;
    ss_stats_unregister(srv);
    atomic_store(&srv->stop, true);
    /* a listening socket closes now: new clients are refused at once; a
     * datagram socket stays until the running requests have replied */
    if (srv->fd >= 0 && srv->set.transport->kind == SS_STREAM)
        close_socket(srv);
    if (srv->unix_path != NULL && !srv->worker &&
        stat(srv->unix_path, &st) == 0 &&
        st.st_dev == srv->unix_dev && st.st_ino == srv->unix_ino)
        (void)unlink(srv->unix_path);
    deadline = ss_now() + srv->set.shutdown_timeout;
    srv->set.mode->wait(srv, deadline);
    if (ss_server_busy(srv) && !srv->set.daemon_threads &&
        srv->set.block_on_close) {
        ss_log(SS_LOG_INFO, "%s: shutdown_timeout (%gs) passed, closing "
               "running connections", srv->name, srv->set.shutdown_timeout);
        ss_server_shutdown_now(srv);
        srv->set.mode->wait(srv, ss_now() + SS_CUT_GRACE);
        ss_server_kill_all(srv);
        srv->set.mode->wait(srv, ss_now() + SS_CUT_GRACE);
    }
    busy = stop_mode(srv) || ss_server_busy(srv);
    ss_sendq_stop(srv);
    if (!busy && srv->fd >= 0)
        close_socket(srv);
    if (srv->inited && !busy && srv->handler->fini != NULL &&
        !srv->fini_done) {
        srv->handler->fini(srv->state);
        srv->fini_done = true;
    }
}

/*
 * Servers whose requests still run when they are freed (daemon_threads,
 * block_on_close = false): they stay, for those requests, until the
 * process exits, listed here.
 */
static pthread_mutex_t lingering_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ss_server *lingering;

static void
linger(struct ss_server *srv)
{
    pthread_mutex_lock(&lingering_lock);
    srv->lingering_next = lingering;
    lingering = srv;
    pthread_mutex_unlock(&lingering_lock);
}

void
ss_server_free(struct ss_server *srv)
{
    if (srv == NULL)
        return;
    ss_stats_unregister(srv);
    if (srv->bound)
        ss_server_close(srv);
    else if (srv->inited && srv->handler->fini != NULL && !srv->fini_done)
        srv->handler->fini(srv->state);
    if (stop_mode(srv) || ss_server_busy(srv)) {
        linger(srv);    /* daemon_threads still running: left to exit */
        return;
    }
    for (size_t i = 0; i < srv->nopts; i++) {
        free(srv->opts[i].key);
        free(srv->opts[i].value);
    }
    free(srv->opts);
    free(srv->set.host);
    free(srv->set.path);
    free(srv->unix_path);
    free(srv->pkt);
    ss_access_free(srv);
    free(srv->set.allow);
    free(srv->set.deny);
    free(srv->set.socket_mode);
    free(srv->set.socket_owner);
    free(srv->set.proxy_from);
    free(srv->config_dir);
    for (int i = 0; i < 2; i++)
        if (srv->wake[i] >= 0)
            close(srv->wake[i]);
    ss_sendq_free(srv);
    if (srv->set.mode->free != NULL)
        srv->set.mode->free(srv);
    free(atomic_load(&srv->spare));
    ss_stats_free(srv);
    free(srv->name);
    free(srv);
}
