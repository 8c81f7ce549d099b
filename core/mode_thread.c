/* mode_thread.c: a thread per request (ThreadingMixIn), from a pool: a
 * finished thread parks (up to max_spare_threads) and takes the next
 * request, so Python's semantics stay and pthread_create mostly goes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* How long close waits for parked threads to go. */
#define THREAD_EXIT_WAIT 2.0

struct ss_worker {
    struct ss_server *srv;
    struct ss_request *req;
    struct ss_worker *next;
    pthread_cond_t cv;
    pthread_t tid;
};

/* The pool: srv->mode_state, under srv->lock. */
struct pool {
    long nthreads, nidle;
    struct ss_worker *idle;
    struct ss_worker *exited;   /* ended, to be joined */
    bool stopping;              /* threads exit when idle */
};

/* Joins the workers of list (taken off the pool's exited list): every
 * thread is joined, so none is still ending when the process exits. */
static void
join_all(struct ss_worker *w)
{
    while (w != NULL) {
        struct ss_worker *next = w->next;

        pthread_join(w->tid, NULL);
        pthread_cond_destroy(&w->cv);
        free(w);
        w = next;
    }
}

/* The server's pool, made on first use (under srv->lock). */
static struct pool *
pool_locked(struct ss_server *srv)
{
    if (srv->mode_state == NULL)
        srv->mode_state = calloc(1, sizeof(struct pool));
    return srv->mode_state;
}

static void *
worker_main(void *arg)
{
    struct ss_worker *w = arg;
    struct ss_server *srv = w->srv;
    struct pool *p = srv->mode_state;

    for (;;) {
        ss_request_run(w->req);
        pthread_mutex_lock(&srv->lock);
        w->req = NULL;
        srv->active--;
        pthread_cond_broadcast(&srv->cond);
        if (p->stopping || p->nidle >= srv->set.max_spare_threads)
            break;
        w->next = p->idle;
        p->idle = w;
        p->nidle++;
        while (w->req == NULL && !p->stopping)
            pthread_cond_wait(&w->cv, &srv->lock);
        if (w->req == NULL)
            break;              /* stopping; thread_stop unlisted us */
        pthread_mutex_unlock(&srv->lock);
    }
    p->nthreads--;
    w->next = p->exited;
    p->exited = w;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

static long
thread_max_requests(const struct ss_server *srv)
{
    return srv->set.max_threads;
}

/* Waits while max_threads requests run; false when shutdown came. */
static bool
thread_wait_slot(struct ss_server *srv)
{
    bool ok;

    pthread_mutex_lock(&srv->lock);
    while (srv->active >= srv->set.max_threads && !atomic_load(&srv->stop))
        pthread_cond_wait(&srv->cond, &srv->lock);
    ok = !atomic_load(&srv->stop);
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

static void
thread_process(struct ss_server *srv, struct ss_request *req)
{
    struct ss_worker *w, *ended;
    struct pool *p;
    pthread_attr_t attr;
    int rc;

    if (ss_dgram_own_packet(req) < 0) {
        ss_log(SS_LOG_WARNING, "%s: %s: %s; request dropped", srv->name,
               ss_request_peer(req), strerror(errno));
        ss_request_end(req);
        return;
    }
    pthread_mutex_lock(&srv->lock);
    p = pool_locked(srv);
    if (p == NULL) {
        pthread_mutex_unlock(&srv->lock);
        rc = ENOMEM;
        goto out_fail;
    }
    srv->active++;
    ended = p->exited;          /* joined below, outside the lock */
    p->exited = NULL;
    if (p->idle != NULL) {
        w = p->idle;
        p->idle = w->next;
        p->nidle--;
        w->req = req;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&srv->lock);
        join_all(ended);
        return;
    }
    p->nthreads++;
    pthread_mutex_unlock(&srv->lock);
    join_all(ended);

    rc = ENOMEM;
    w = calloc(1, sizeof *w);
    if (w != NULL) {
        w->srv = srv;
        w->req = req;
        pthread_cond_init(&w->cv, NULL);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, (size_t)srv->set.thread_stack_size);
        rc = pthread_create(&w->tid, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pthread_cond_destroy(&w->cv);
            free(w);
        }
    }
    if (rc == 0)
        return;
    pthread_mutex_lock(&srv->lock);
    srv->active--;
    p->nthreads--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
out_fail:
    ss_log(SS_LOG_WARNING, "%s: %s: cannot start a thread: %s; connection "
           "closed", srv->name, ss_request_peer(req), strerror(rc));
    ss_request_end(req);
}

/* server_close: wait for running requests unless daemon_threads (or
 * block_on_close is off), as ThreadingMixIn.server_close. */
static void
thread_wait(struct ss_server *srv, double deadline)
{
    if (srv->set.daemon_threads || !srv->set.block_on_close)
        return;
    ss_server_wait_idle(srv, deadline);
}

/* Ends the parked threads and waits (briefly) for them to go.  True
 * while threads remain (daemon_threads still running). */
static bool
thread_stop(struct ss_server *srv)
{
    double deadline = ss_now() + THREAD_EXIT_WAIT;
    struct ss_worker *ended;
    struct pool *p;
    bool left;

    pthread_mutex_lock(&srv->lock);
    p = srv->mode_state;
    if (p == NULL) {
        pthread_mutex_unlock(&srv->lock);
        return false;
    }
    p->stopping = true;
    while (p->idle != NULL) {
        struct ss_worker *w = p->idle;

        p->idle = w->next;
        pthread_cond_signal(&w->cv);
    }
    p->nidle = 0;
    while (p->nthreads > srv->active &&
           ss_cond_wait_until(&srv->cond, &srv->lock, deadline) == 0)
        ;
    left = p->nthreads > 0;
    ended = p->exited;
    p->exited = NULL;
    pthread_mutex_unlock(&srv->lock);
    join_all(ended);
    return left;
}

static void
thread_free(struct ss_server *srv)
{
    free(srv->mode_state);
    srv->mode_state = NULL;
}

const struct ss_mode ss_mode_thread = {
    .name = "threading",
    .bit = SS_MODE_THREADING,
    .max_requests = thread_max_requests,
    .wait_slot = thread_wait_slot,
    .process = thread_process,
    .wait = thread_wait,
    .stop = thread_stop,
    .free = thread_free,
};
