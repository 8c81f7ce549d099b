/* mode_event.c: every request of a server as a coroutine on one epoll
 * loop per process (mode = event).
 *
 * The handler's code is the same blocking-style code as in every other
 * mode: each request call that would block (ss_read, ss_write, ss_poll,
 * ss_readline...) reaches wait_io here, which suspends the request's
 * coroutine until its descriptor is ready or its deadline passes, and the
 * loop runs the others meanwhile.  Descriptors are non-blocking and
 * registered once, edge-triggered; a coroutine waits only after its
 * system call said EAGAIN (or, for ss_poll, after a look), so an edge is
 * never missed.  Deadlines sit in a binary heap.  The coroutines share one
 * stack (coro.c), so the thread count does not grow with connections and
 * an idle connection costs its request, its task and the frames it has
 * in use.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "coro.h"
#include "internal.h"

#define EMFILE_BACKOFF 0.1      /* seconds the listener rests (server.c's) */
#define TAKE_BATCH 64           /* requests taken per readiness event */
#define EVENTS 256
#define HOLD_WARN 0.1           /* seconds a request may keep the loop */

struct task {
    struct ss_coro coro;
    struct ss_request *req;
    struct loop *loop;
    short waiting;              /* events it waits for, 0: none */
    int result;                 /* of the wait: 1 ready, 0 timed out */
    int extra_fd;               /* another descriptor it waits on, or -1 */
    double deadline;            /* < 0: none */
    size_t heap_i;              /* its place in the deadline heap + 1 */
    short ready;                /* events seen in this turn (turn) */
    bool queued;                /* in this turn's list to wake (turn) */
};

struct loop {
    struct ss_server *srv;
    int ep;
    struct ss_coro_stack stack;
    struct task *current;
    struct task **heap;         /* deadlines, soonest first */
    size_t nheap, heapcap;
    size_t ntasks;
    struct task *spare;         /* an ended task, kept for the next */
    pthread_t thread;           /* the one that runs it */
    bool listening;             /* srv->fd is in the epoll set */
    bool waking;                /* srv->wake[0] is in the epoll set */
    double paused_until;        /* EMFILE: the listener rests until */
    char tag_listen, tag_wake;  /* their epoll data */
};

/* ---- the deadline heap --------------------------------------------------- */

static bool
sooner(const struct loop *l, size_t a, size_t b)
{
    return l->heap[a]->deadline < l->heap[b]->deadline;
}

static void
heap_swap(struct loop *l, size_t a, size_t b)
{
    struct task *t = l->heap[a];

    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_i = a + 1;
    l->heap[b]->heap_i = b + 1;
}

static void
heap_fix(struct loop *l, size_t i)
{
    while (i > 0 && sooner(l, i, (i - 1) / 2)) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1, m = i;

        if (c < l->nheap && sooner(l, c, m))
            m = c;
        if (c + 1 < l->nheap && sooner(l, c + 1, m))
            m = c + 1;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
}

static int
heap_push(struct loop *l, struct task *t)
{
    if (l->nheap == l->heapcap) {
        size_t cap = l->heapcap ? l->heapcap * 2 : 64;
        struct task **h = realloc(l->heap, cap * sizeof *h);

        if (h == NULL)
            return -1;
        l->heap = h;
        l->heapcap = cap;
    }
    l->heap[l->nheap] = t;
    t->heap_i = ++l->nheap;
    heap_fix(l, l->nheap - 1);
    return 0;
}

static void
heap_remove(struct loop *l, struct task *t)
{
    size_t i = t->heap_i - 1;

    if (t->heap_i == 0)
        return;
    t->heap_i = 0;
    if (i != --l->nheap) {
        l->heap[i] = l->heap[l->nheap];
        l->heap[i]->heap_i = i + 1;
        heap_fix(l, i);
    }
}

/* ---- the loop ------------------------------------------------------------ */

/* The server's loop (srv->mode_state), made in the serving thread on its
 * first turn.  NULL after logging why. */
static struct loop *
loop_get(struct ss_server *srv)
{
    struct loop *l = srv->mode_state;
    struct epoll_event ev = { .events = EPOLLIN };

    if (l != NULL) {
        /* the daemon moves a loop from its main thread to one of its own
         * at a reload */
        if (!pthread_equal(l->thread, pthread_self())) {
            if (ss_coro_stack_attach(&l->stack) < 0)
                goto out_fail;
            l->thread = pthread_self();
        }
        return l;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL)
        goto out_fail;
    l->srv = srv;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0) {
        free(l);
        goto out_fail;
    }
    if (ss_coro_stack_init(&l->stack,
                           (size_t)srv->set.coroutine_stack_size) < 0) {
        close(l->ep);
        free(l);
        goto out_fail;
    }
    l->thread = pthread_self();
    ev.data.ptr = &l->tag_wake;
    if (srv->wake[0] >= 0 &&
        epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->wake[0], &ev) == 0)
        l->waking = true;
    pthread_mutex_lock(&srv->lock);
    srv->mode_state = l;
    pthread_mutex_unlock(&srv->lock);
    return l;
out_fail:
    ss_log(SS_LOG_ERROR, "%s: event loop: %s", srv->name, strerror(errno));
    return NULL;
}

/* Puts the listening (or datagram) socket in the set, or takes it out. */
static void
listen_on(struct loop *l, bool on)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->tag_listen };
    int fd = l->srv->fd;

    if (on == l->listening || fd < 0)
        return;
    if (epoll_ctl(l->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0 ||
        !on)
        l->listening = on;
}

/* Continues t until it suspends or ends; frees it when it ended. */
static void
task_run(struct loop *l, struct task *t, bool start);

static void
task_end(struct loop *l, struct task *t)
{
    struct ss_server *srv = l->srv;

    heap_remove(l, t);
    if (t->coro.overflowed)
        ss_log(SS_LOG_ERROR, "%s: %s: a request overflowed its stack "
               "(coroutine_stack_size = %ld bytes): connection closed; raise "
               "coroutine_stack_size", srv->name, ss_request_peer(t->req),
               srv->set.coroutine_stack_size);
    else if (t->coro.lost)
        ss_log(SS_LOG_ERROR, "%s: %s: no memory to keep a suspended "
               "request's stack: connection closed", srv->name,
               ss_request_peer(t->req));
    if (t->coro.overflowed || t->coro.lost) {
        /* abandoned: what its frames held is lost with them */
        if (t->req->fd >= 0)
            ss_server_untrack(srv, t->req);
        ss_request_end(t->req);
    }
    ss_coro_free(&l->stack, &t->coro);
    l->ntasks--;
    if (l->spare == NULL)
        l->spare = t;           /* a datagram server ends one per packet */
    else
        free(t);
}

static void
task_main(void *arg)
{
    struct task *t = arg;

    ss_request_run(t->req);
}

static void
task_run(struct loop *l, struct task *t, bool start)
{
    double t0 = ss_now(), held;

    l->current = t;
    if (start)
        ss_coro_start(&l->stack, &t->coro, task_main, t);
    else
        ss_coro_resume(&l->stack, &t->coro);
    l->current = NULL;
    held = ss_now() - t0;
    if (held > HOLD_WARN)
        ss_log(SS_LOG_WARNING, "%s: a request kept the event loop busy for "
               "%.0f ms without suspending: handlers must not block in "
               "event mode", l->srv->name, held * 1000);
    if (t->coro.done || t->coro.overflowed || t->coro.lost)
        task_end(l, t);
}

/* Ends t's wait with result r and continues it. */
static void
wake(struct loop *l, struct task *t, int r)
{
    t->result = r;
    t->waiting = 0;
    heap_remove(l, t);
    task_run(l, t, false);
}

static void
event_process(struct ss_server *srv, struct ss_request *req)
{
    struct loop *l = srv->mode_state;
    struct task *t = l != NULL ? l->spare : NULL;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
                                        EPOLLET };

    if (t != NULL) {
        l->spare = NULL;
        memset(t, 0, sizeof *t);
    } else {
        t = calloc(1, sizeof *t);
    }
    if (t == NULL || l == NULL) {
        ss_log(SS_LOG_WARNING, "%s: %s: %s; connection closed", srv->name,
               ss_request_peer(req), strerror(ENOMEM));
        free(t);
        ss_request_end(req);
        return;
    }
    t->req = req;
    t->loop = l;
    t->extra_fd = -1;
    t->deadline = -1;
    ev.data.ptr = t;
    if (req->fd >= 0 && epoll_ctl(l->ep, EPOLL_CTL_ADD, req->fd, &ev) < 0) {
        ss_log(SS_LOG_WARNING, "%s: %s: epoll: %s; connection closed",
               srv->name, ss_request_peer(req), strerror(errno));
        free(t);
        ss_request_end(req);
        return;
    }
    req->mode_data = t;
    l->ntasks++;
    task_run(l, t, true);
}

/* Takes what is ready on the listening or datagram socket. */
static int
take(struct loop *l)
{
    int n = 0, rc = 0;

    while (n < TAKE_BATCH && !atomic_load(&l->srv->stop) &&
           (rc = ss_server_take(l->srv)) > 0)
        n++;
    if (rc < 0) {               /* EMFILE and its kin: rest a while */
        listen_on(l, false);
        l->paused_until = ss_now() + EMFILE_BACKOFF;
    }
    return n;
}

/* Wakes the tasks whose deadline passed. */
static void
expire(struct loop *l)
{
    double now = l->nheap ? ss_now() : 0;

    while (l->nheap > 0 && l->heap[0]->deadline <= now)
        wake(l, l->heap[0], 0);
}

/* Milliseconds until the next deadline, at most cap (-1: none). */
static int
next_ms(struct loop *l, int cap)
{
    int ms = cap;

    if (l->paused_until > 0) {
        int p = ss_ms_until(l->paused_until);

        if (ms < 0 || p < ms)
            ms = p;
    }
    if (l->nheap > 0) {
        int d = ss_ms_until(l->heap[0]->deadline);

        if (ms < 0 || d < ms)
            ms = d;
    }
    return ms;
}

/*
 * One turn: waits at most wait_ms for readiness or a deadline, then runs
 * what became ready.  accept: take new requests.  Returns how many were
 * taken.
 */
static int
turn(struct loop *l, int wait_ms, bool accept)
{
    struct epoll_event evs[EVENTS];
    struct task *woke[EVENTS];
    int n, nwoke = 0, taken = 0;
    bool listen_ready = false;

    if (l->paused_until > 0 && ss_now() >= l->paused_until)
        l->paused_until = 0;
    listen_on(l, accept && l->paused_until == 0);
    if (!accept && l->waking) {
        /* shutting down: the wake pipe stays readable from now on */
        (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, l->srv->wake[0], NULL);
        l->waking = false;
    }
    n = epoll_wait(l->ep, evs, EVENTS, next_ms(l, wait_ms));
    if (n < 0 && errno != EINTR) {
        ss_log(SS_LOG_ERROR, "%s: epoll_wait: %s", l->srv->name,
               strerror(errno));
        return 0;
    }
    /* first every event, then every task once: a task with two
     * descriptors in the set (extra_fd) may come twice in one batch, and
     * once woken it may end */
    for (int i = 0; i < n; i++) {
        void *p = evs[i].data.ptr;
        struct task *t = p;
        short got = 0;

        if (p == &l->tag_listen) {
            listen_ready = true;
            continue;
        }
        if (p == &l->tag_wake)
            continue;           /* srv->stop is looked at by the caller */
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            got |= POLLIN;
        if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            got |= POLLOUT;
        if (got & POLLIN)
            t->req->rd_empty = false;   /* bytes came: read before waiting */
        if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            t->req->rd_hup = true;      /* no edge will follow the end */
        if (!t->queued) {
            t->queued = true;
            t->ready = 0;
            woke[nwoke++] = t;
        }
        t->ready |= got;
    }
    for (int i = 0; i < nwoke; i++) {
        struct task *t = woke[i];

        t->queued = false;
        if (t->waiting & t->ready)
            wake(l, t, 1);
    }
    if (listen_ready && accept)
        taken += take(l);
    expire(l);
    return taken;
}

static int
event_step(struct ss_server *srv, int wait_ms)
{
    struct loop *l = loop_get(srv);
    int taken;

    if (l == NULL || atomic_load(&srv->stop))
        return -1;
    taken = turn(l, wait_ms, true);
    if (atomic_load(&srv->stop))
        return -1;
    return taken > 0 ? 1 : 0;
}

/*
 * The one wait of a request: suspends its coroutine until fd has events
 * or the deadline passes.  The caller found fd not ready (EAGAIN, or
 * ss_poll's look).  Outside a coroutine (an embedding program calling
 * in), it polls.
 */
static int
event_wait_io(struct ss_request *req, int fd, short events, double deadline)
{
    struct task *t = req->mode_data;
    struct loop *l = t != NULL ? t->loop : NULL;

    if (l == NULL || l->current != t || fd < 0)
        return ss_poll_fd(fd, events, deadline);
    if (fd != req->fd) {        /* another descriptor: in the set meanwhile */
        struct epoll_event ev = { .events = EPOLLET |
                                  (events & POLLIN ? EPOLLIN : 0) |
                                  (events & POLLOUT ? EPOLLOUT : 0),
                                  .data.ptr = t };

        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -1;
        t->extra_fd = fd;
    }
    if (req->fd < 0 && ss_dgram_own_packet(req) < 0)
        return -1;              /* a datagram outlives the loop's buffer */
    t->waiting = events;
    t->deadline = deadline;
    t->result = -1;
    if (deadline >= 0 && heap_push(l, t) < 0) {
        t->waiting = 0;
        errno = ENOMEM;
        return -1;
    }
    l->current = NULL;
    ss_coro_suspend(&l->stack);
    l->current = t;
    if (t->extra_fd >= 0) {
        (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, t->extra_fd, NULL);
        t->extra_fd = -1;
    }
    return t->result;
}

/* ---- blocking work off the loop (ss_run_blocking) ----------------------- */

/* On the heap: the request's stack moves while it waits. */
struct offload {
    void (*fn)(void *);
    void *arg;
    int efd;
};

static void *
offload_main(void *p)
{
    struct offload *o = p;
    uint64_t one = 1;

    o->fn(o->arg);
    while (write(o->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    return NULL;
}

/*
 * Runs fn on a thread of its own while the request waits for an eventfd
 * like any descriptor; the loop serves the others meanwhile.  The thread
 * starts with the signals the loop takes blocked (they are the loop's),
 * faults aside.  If no thread can start, fn runs here: slow, not wrong.
 */
static int
event_run_blocking(struct ss_request *req, void (*fn)(void *), void *arg)
{
    struct task *t = req->mode_data;
    struct offload *o;
    sigset_t old;
    pthread_t th;
    uint64_t v;
    int e;

    if (t == NULL || t->loop->current != t) {
        fn(arg);                /* not in a coroutine: an embedder's call */
        return 0;
    }
    o = malloc(sizeof *o);
    if (o == NULL || (o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        e = errno;
        goto here;
    }
    o->fn = fn;
    o->arg = arg;
    ss_signals_hold(&old);
    e = pthread_create(&th, NULL, offload_main, o);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        close(o->efd);
        goto here;
    }
    /* a wake for the request's own descriptor (its client's bytes or
     * hang-up) comes back here to wait again */
    while (read(o->efd, &v, sizeof v) < 0)
        if (errno != EINTR && event_wait_io(req, o->efd, POLLIN, -1) < 0)
            (void)ss_poll_fd(o->efd, POLLIN, -1);   /* the set is full */
    pthread_join(th, NULL);
    close(o->efd);
    free(o);
    return 0;
here:
    free(o);
    ss_log(SS_LOG_WARNING, "%s: %s: no thread for blocking work (%s): it "
           "holds the event loop", req->srv->name, ss_request_peer(req),
           strerror(e));
    fn(arg);
    errno = e;
    return -1;
}

/* A request's descriptor leaves the set before it is closed: a copy of it
 * elsewhere (a forking server's child, a spawned program) would keep it
 * there, and its events would name an ended task. */
static void
event_conn_closing(struct ss_request *req)
{
    struct task *t = req->mode_data;

    (void)epoll_ctl(t->loop->ep, EPOLL_CTL_DEL, req->fd, NULL);
    if (t->extra_fd >= 0) {
        (void)epoll_ctl(t->loop->ep, EPOLL_CTL_DEL, t->extra_fd, NULL);
        t->extra_fd = -1;
    }
}

/* close: runs the loop, taking nothing new, until no request is left or
 * the deadline passes. */
static void
event_wait(struct ss_server *srv, double deadline)
{
    struct loop *l = srv->mode_state;

    if (l == NULL || !srv->set.block_on_close)
        return;
    listen_on(l, false);
    while (l->ntasks > 0 && ss_now() < deadline)
        (void)turn(l, ss_ms_until(deadline), false);
}

/* Frees the loop; close has waited.  Requests still suspended (past every
 * grace period) are ended where they stand. */
static void
event_free(struct ss_server *srv)
{
    struct loop *l = srv->mode_state;

    if (l == NULL)
        return;
    srv->mode_state = NULL;
    close(l->ep);
    ss_coro_stack_free(&l->stack);
    free(l->spare);
    free(l->heap);
    free(l);
}

static long
event_max_requests(const struct ss_server *srv)
{
    return srv->set.max_connections > 0 ? srv->set.max_connections : 1024;
}

const struct ss_mode ss_mode_event = {
    .name = "event",
    .bit = SS_MODE_EVENT,
    .nonblocking = true,
    .solo = true,
    .max_requests = event_max_requests,
    .step = event_step,
    .process = event_process,
    .conn_closing = event_conn_closing,
    .wait_io = event_wait_io,
    .run_blocking = event_run_blocking,
    .wait = event_wait,
    .free = event_free,
};
