/* mode_fork.c: a process per request (ForkingMixIn).
 *
 * The parent closes its copy of the connection as soon as the child is
 * forked (as Python does), so the child alone decides when it ends.  The
 * serve loop reaps its own children (collect_children) and never a child
 * of the program that embeds it:
 *
 *  - while requests keep coming, each turn asks the kernel for an ended
 *    child (waitid with WNOWAIT, so a child that is not ours is left
 *    alone) and reaps it if it is one of ours: two cheap system calls a
 *    child, and no wakeup;
 *  - before the loop sleeps (idle, or at max_children) every child gets a
 *    pidfd in the server's epoll set, so the loop wakes as one ends: none
 *    is left a zombie, and a full server resumes at once.  If pidfd_open
 *    fails (EMFILE), that child is looked at every 100 ms instead.
 *
 * There is no reaper thread: a process forks fastest when it has no other
 * threads (glibc's fork of a threaded process takes and resets every lock
 * and arena, and the kernel write-protects every thread's stack).
 *
 * Shutdown asks a child to finish the way a thread is asked: SIGTERM, on
 * which a stream child shuts the reading side of its connection (the
 * handler reads what the client sent, then the end); a datagram child
 * ends.  Past the grace period children get SIGKILL.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* Idle this long before the loop also wakes for the end of a child. */
#define REAP_LAZY_MS 20

/* How often children without a pidfd (pidfd_open failed) are looked at. */
#define UNWATCHED_POLL_MS 100

/* Children reaped per batch: small, as the frame is stack the parent
 * writes after every fork (each page of it copied while a child lives). */
#define COLLECT_BATCH 8

/* ss_child.pidfd when there is none */
#define NOT_YET (-1)            /* not needed so far */
#define NO_PIDFD (-2)           /* pidfd_open failed: polled */

struct ss_child {
    pid_t pid;
    int pidfd;                  /* >= 0, NOT_YET or NO_PIDFD */
    bool admitted;              /* counted by ss_access_admit */
    bool counted;               /* active in srv->stats until reaped */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct ss_children {
    struct ss_child *v;         /* under srv->lock */
    size_t n, cap;
    size_t not_yet;             /* entries with NOT_YET */
    size_t polled;              /* entries with NO_PIDFD */
    int ep;                     /* epoll set of the pidfds */
};

/* The server's children (srv->mode_state), made on first use; only the
 * serving thread makes them. */
static struct ss_children *
children(struct ss_server *srv)
{
    struct ss_children *c = srv->mode_state;

    if (c != NULL)
        return c;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    if (c->ep < 0) {
        free(c);
        return NULL;
    }
    pthread_mutex_lock(&srv->lock);
    srv->mode_state = c;
    pthread_mutex_unlock(&srv->lock);
    return c;
}

/* A child reaped, to be accounted for once srv->lock is released. */
struct ended {
    struct ss_child k;
    int status;
};

/* Reaps child i if it has ended: off the list, its slot freed, the rest
 * kept in *e.  With srv->lock held, so that no signal can reach a pid
 * reaped meanwhile. */
static bool
reap_locked(struct ss_server *srv, struct ss_children *c, size_t i,
            struct ended *e)
{
    pid_t r;

    e->status = 0;
    do
        r = waitpid(c->v[i].pid, &e->status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;                   /* r < 0: reaped by someone else */
    e->k = c->v[i];
    c->v[i] = c->v[--c->n];
    if (e->k.pidfd >= 0)
        close(e->k.pidfd);              /* leaves the epoll set too */
    else if (e->k.pidfd == NOT_YET)
        c->not_yet--;
    else
        c->polled--;
    srv->active--;
    return true;
}

static ssize_t
find(const struct ss_children *c, pid_t pid)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].pid == pid)
            return (ssize_t)i;
    return -1;
}

/* The rest of a reaping, without srv->lock (access has its own lock).
 * Nobody waits on srv->cond for a forking server's slots: its own loop
 * reaps them (wait_below), so no broadcast. */
static void
account(struct ss_server *srv, struct ended *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (WIFSIGNALED(e[i].status) && WTERMSIG(e[i].status) != SIGTERM &&
            WTERMSIG(e[i].status) != SIGKILL)
            ss_log(SS_LOG_WARNING, "%s: child %d killed by signal %d",
                   srv->name, (int)e[i].k.pid, WTERMSIG(e[i].status));
        if (e[i].k.admitted)
            ss_access_release(srv, (struct sockaddr *)&e[i].k.addr,
                              e[i].k.addrlen);
        if (e[i].k.counted)
            ss_stats_ended(srv);
    }
}

/*
 * collect_children: reaps every child of srv that has ended, without
 * waiting.  Called by the serve loop before it takes a request and by
 * close while it waits.
 */
static void
collect(struct ss_server *srv)
{
    struct ss_children *c = srv->mode_state;
    struct epoll_event ev[COLLECT_BATCH];
    struct ended done[COLLECT_BATCH];
    size_t nd;
    int n;

    if (c == NULL || c->n == 0)
        return;
    do {
        nd = 0;
        n = 0;
        if (c->n > c->not_yet + c->polled)      /* some have a pidfd */
            n = epoll_wait(c->ep, ev, COLLECT_BATCH, 0);
        pthread_mutex_lock(&srv->lock);
        for (int x = 0; x < n; x++) {
            ssize_t i = find(c, (pid_t)ev[x].data.u64);

            if (i >= 0)
                nd += reap_locked(srv, c, (size_t)i, &done[nd]);
        }
        /* an ended child, ours or not, is left in place by WNOWAIT; the
         * first that is not ours stops the look (its parent's to reap) */
        while (nd < COLLECT_BATCH) {
            siginfo_t si;
            ssize_t i;

            si.si_pid = 0;
            if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
                si.si_pid == 0 || (i = find(c, si.si_pid)) < 0 ||
                !reap_locked(srv, c, (size_t)i, &done[nd]))
                break;
            nd++;
        }
        for (size_t i = c->n; c->polled > 0 && i-- > 0 && nd < COLLECT_BATCH;)
            if (c->v[i].pidfd == NO_PIDFD)
                nd += reap_locked(srv, c, i, &done[nd]);
        pthread_mutex_unlock(&srv->lock);
        account(srv, done, nd);
    } while (n == COLLECT_BATCH || nd == COLLECT_BATCH);
}

/* How many children run (or ended and are not reaped yet).  Only the
 * serving thread adds or removes some. */
static size_t
count(struct ss_server *srv)
{
    struct ss_children *c = srv->mode_state;

    return c != NULL ? c->n : 0;
}

/*
 * Before the loop sleeps: every child gets its pidfd, so that its end
 * wakes the loop.  Returns the fd to poll (-1: no child), and in
 * *max_wait_ms how long the loop may sleep before it must look anyway.
 */
static int
watch_fd(struct ss_server *srv, int *max_wait_ms)
{
    struct ss_children *c = srv->mode_state;

    *max_wait_ms = -1;
    if (c == NULL || c->n == 0)         /* only this thread adds some */
        return -1;
    if (c->not_yet > 0) {
        pthread_mutex_lock(&srv->lock);
        for (size_t i = 0; i < c->n; i++) {
            struct ss_child *k = &c->v[i];
            struct epoll_event ev = { .events = EPOLLIN,
                                      .data.u64 = (uint64_t)k->pid };

            if (k->pidfd != NOT_YET)
                continue;
            k->pidfd = pidfd_open(k->pid, 0);
            if (k->pidfd >= 0 &&
                epoll_ctl(c->ep, EPOLL_CTL_ADD, k->pidfd, &ev) < 0) {
                close(k->pidfd);
                k->pidfd = -1;
            }
            if (k->pidfd < 0) {
                k->pidfd = NO_PIDFD;    /* EMFILE: looked at every 100 ms */
                c->polled++;
            }
        }
        c->not_yet = 0;
        pthread_mutex_unlock(&srv->lock);
    }
    if (c->polled > 0)
        *max_wait_ms = UNWATCHED_POLL_MS;
    return c->ep;
}

static int
reserve(struct ss_children *c)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct ss_child *v = realloc(c->v, cap * sizeof *v);

        if (v == NULL)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    return 0;
}

/* The child's SIGTERM, for a stream request: end the reading side.  In
 * thread-local storage, on the page errno's writes have copied already. */
static __thread volatile sig_atomic_t child_conn
    __attribute__((tls_model("initial-exec"))) = -1;

static void
on_child_term(int sig)
{
    int saved = errno;

    (void)sig;
    if (child_conn >= 0)
        shutdown(child_conn, SHUT_RD);
    ss_spawn_on_term();                 /* the request's program, if any */
    errno = saved;
}

/*
 * In the child: its own signals, then the request, then _exit (the
 * kernel closes what is left).  Every page the child writes is a page
 * copied, so it writes only what it must: locks are made afresh only if
 * the parent had other threads (one may have held them), and fields are
 * stored only when they change.
 */
static void
run_child(struct ss_server *srv, struct ss_request *req, bool threaded)
{
    /* empty sets by initialisation, not sigemptyset: each libc function
     * the child calls first faults its page of code in */
    struct sigaction sa = { .sa_handler = SIG_DFL };
    sigset_t none = { 0 };

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (req->fd >= 0) {
        child_conn = req->fd;
        sa.sa_handler = on_child_term;
        sa.sa_flags = SA_RESTART;
    }
    sigaction(SIGTERM, &sa, NULL);
    if (threaded) {
        pthread_condattr_t ca;

        pthread_mutex_init(&srv->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&srv->cond, &ca);
        pthread_mutex_init(&req->lock, NULL);
    }
    ss_sendq_forget(srv);               /* its thread stays in the parent */
    if (req->admitted)
        req->admitted = false;          /* the parent counts it */
    sigprocmask(SIG_SETMASK, &none, NULL);  /* the handler's code: none */
    /* it inherited every socket the daemon had open (other clients'
     * connections, every server's listening socket): holding them would
     * keep those connections open after their own handlers close them.
     * The parent's pidfds and epoll set are left: they hold nothing. */
    ss_fd_close_tracked(req->fd, req->fd < 0 ? srv->fd : -1);
    ss_request_handle(req);
    _exit(0);
}

static void
fork_process(struct ss_server *srv, struct ss_request *req)
{
    struct ss_children *c = children(srv);
    sigset_t all, old;
    pid_t pid = -1;
    int err = ENOMEM;

    if (c != NULL) {
        pthread_mutex_lock(&srv->lock);
        err = reserve(c) == 0 ? 0 : ENOMEM;
        pthread_mutex_unlock(&srv->lock);
    }
    if (err == 0) {
        /* no signal handler of the parent may run in the child before
         * the child has set its own */
        bool threaded = !__libc_single_threaded;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pid = fork();
        if (pid == 0)
            run_child(srv, req, threaded);
        err = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (pid > 0) {
        struct ss_child *k;

        pthread_mutex_lock(&srv->lock);
        k = &c->v[c->n++];
        k->pid = pid;
        k->pidfd = NOT_YET;     /* made if the loop is about to sleep */
        c->not_yet++;
        k->admitted = req->admitted;
        k->counted = req->counted;
        req->counted = false;   /* active until the child is reaped */
        if (req->admitted) {
            memcpy(&k->addr, &req->addr, sizeof k->addr);
            k->addrlen = req->addrlen;
            req->admitted = false;
        }
        srv->active++;
        pthread_mutex_unlock(&srv->lock);
    }
    if (pid < 0)
        ss_log(SS_LOG_WARNING, "%s: %s: fork: %s; connection closed",
               srv->name, ss_request_peer(req), strerror(err));
    ss_request_end(req);        /* the parent's copy: closed */
}

/*
 * Asks a server's children to end: how 0 sends SIGTERM (a stream child
 * shuts its reading side, a datagram child ends), how 1 SIGKILL.
 */
static void
fork_cut(struct ss_server *srv, int how)
{
    struct ss_children *c;
    int sig = how == 0 ? SIGTERM : SIGKILL;

    pthread_mutex_lock(&srv->lock);
    c = srv->mode_state;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        if (c->v[i].pidfd >= 0)
            (void)pidfd_send_signal(c->v[i].pidfd, sig, NULL, 0);
        else
            (void)kill(c->v[i].pid, sig);
    }
    pthread_mutex_unlock(&srv->lock);
}

/*
 * Waits, reaping, until fewer than limit children run; at most until the
 * deadline (< 0: none) and, if wake, until shutdown is asked.  True when
 * below the limit.
 */
static bool
wait_below(struct ss_server *srv, long limit, double deadline, bool wake)
{
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = wake ? srv->wake[0] : -1, .events = POLLIN },
            { .fd = -1, .events = POLLIN },
        };
        int cap, ms = deadline < 0 ? -1 : ss_ms_until(deadline);
        bool below;

        collect(srv);
        pthread_mutex_lock(&srv->lock);
        below = srv->active < limit;
        pthread_mutex_unlock(&srv->lock);
        if (below || ms == 0 || (wake && atomic_load(&srv->stop)))
            return below;
        pfd[1].fd = watch_fd(srv, &cap);
        if (cap >= 0 && (ms < 0 || cap < ms))
            ms = cap;
        (void)poll(pfd, 2, ms);
    }
}

/* close: waits (reaping) until no child is left, at most until the
 * deadline. */
static void
fork_wait(struct ss_server *srv, double deadline)
{
    if (srv->set.block_on_close)
        (void)wait_below(srv, 1, deadline, false);
}

/* Frees what the server kept of its children (close has waited). */
static void
fork_free(struct ss_server *srv)
{
    struct ss_children *c = srv->mode_state;

    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].pidfd >= 0)
            close(c->v[i].pidfd);
    close(c->ep);
    free(c->v);
    free(c);
    srv->mode_state = NULL;
}

static long
fork_max_requests(const struct ss_server *srv)
{
    return srv->set.max_children;
}

/* Python's ForkingMixIn waits for a child at max_children; this loop
 * reaps them meanwhile. */
static bool
fork_wait_slot(struct ss_server *srv)
{
    return wait_below(srv, srv->set.max_children, -1, true) &&
           !atomic_load(&srv->stop);
}

/*
 * The serve loop's wait: besides the socket, the end of a child, but
 * only once the loop has been idle for REAP_LAZY_MS: while requests keep
 * coming, the next turn's collect reaps the children that ended, and a
 * wakeup per child would cost about a tenth of the connect rate.
 */
static int
fork_wait_ready(struct ss_server *srv, int timeout_ms, bool watch)
{
    int rc, cap = -1, fd;

    if (count(srv) == 0 || timeout_ms == 0)
        return ss_server_poll(srv, timeout_ms, watch, -1);
    if (timeout_ms < 0 || timeout_ms > REAP_LAZY_MS) {
        rc = ss_server_poll(srv, REAP_LAZY_MS, watch, -1);
        if (rc != 0 || atomic_load(&srv->stop))
            return rc;
        if (timeout_ms > 0)
            timeout_ms -= REAP_LAZY_MS;
    }
    fd = watch_fd(srv, &cap);
    if (cap >= 0 && (timeout_ms < 0 || cap < timeout_ms))
        timeout_ms = cap;
    return ss_server_poll(srv, timeout_ms, watch, fd);
}

/* A connection in a process with no other thread is closed right after
 * its own child is forked, before any other fork: not tracked, so the
 * parent writes no bitmap page that its children share. */
static void
fork_conn_opened(struct ss_server *srv, int fd)
{
    (void)srv;
    if (!__libc_single_threaded)
        ss_fd_track(fd);
}

const struct ss_mode ss_mode_fork = {
    .name = "forking",
    .bit = SS_MODE_FORKING,
    .solo = true,
    .max_requests = fork_max_requests,
    .wait_slot = fork_wait_slot,
    .wait_ready = fork_wait_ready,
    .conn_opened = fork_conn_opened,
    .process = fork_process,
    .cut = fork_cut,
    .wait = fork_wait,
    .free = fork_free,
    .own_process = true,
};
