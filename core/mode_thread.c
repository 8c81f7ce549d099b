/* mode_thread.c: a thread per request (ThreadingMixIn), from a pool: a
 * finished thread parks (up to max_spare_threads) and takes the next
 * request, so Python's semantics stay and pthread_create mostly goes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct ss_worker {
    struct ss_server *srv;
    struct ss_request *req;
    struct ss_worker *next;
    pthread_cond_t cv;
};

static void *
worker_main(void *arg)
{
    struct ss_worker *w = arg;
    struct ss_server *srv = w->srv;

    for (;;) {
        ss_request_run(w->req);
        pthread_mutex_lock(&srv->lock);
        w->req = NULL;
        srv->active--;
        pthread_cond_broadcast(&srv->cond);
        if (srv->stopping || srv->nidle >= srv->set.max_spare_threads)
            break;
        w->next = srv->idle;
        srv->idle = w;
        srv->nidle++;
        while (w->req == NULL && !srv->stopping)
            pthread_cond_wait(&w->cv, &srv->lock);
        if (w->req == NULL)
            break;              /* stopping; thread_stop unlisted us */
        pthread_mutex_unlock(&srv->lock);
    }
    srv->nthreads--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    pthread_cond_destroy(&w->cv);
    free(w);
    return NULL;
}

static void
thread_process(struct ss_server *srv, struct ss_request *req)
{
    struct ss_worker *w;
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (ss_dgram_own_packet(req) < 0) {
        ss_log(SS_LOG_WARNING, "%s: %s: %s; request dropped", srv->name,
               ss_request_peer(req), strerror(errno));
        ss_request_end(req);
        return;
    }
    pthread_mutex_lock(&srv->lock);
    srv->active++;
    if (srv->idle != NULL) {
        w = srv->idle;
        srv->idle = w->next;
        srv->nidle--;
        w->req = req;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&srv->lock);
        return;
    }
    srv->nthreads++;
    pthread_mutex_unlock(&srv->lock);

    rc = ENOMEM;
    w = calloc(1, sizeof *w);
    if (w != NULL) {
        w->srv = srv;
        w->req = req;
        pthread_cond_init(&w->cv, NULL);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, (size_t)srv->set.thread_stack_size);
        rc = pthread_create(&tid, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pthread_cond_destroy(&w->cv);
            free(w);
        }
    }
    if (rc != 0) {
        ss_log(SS_LOG_WARNING, "%s: %s: cannot start a thread: %s; "
               "connection closed", srv->name, ss_request_peer(req), strerror(rc));
        pthread_mutex_lock(&srv->lock);
        srv->active--;
        srv->nthreads--;
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->lock);
        ss_request_end(req);
    }
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

/* Ends the parked threads and waits (briefly) for them to go. */
static void
thread_stop(struct ss_server *srv)
{
    double deadline = ss_now() + 2;

    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    while (srv->idle != NULL) {
        struct ss_worker *w = srv->idle;

        srv->idle = w->next;
        pthread_cond_signal(&w->cv);
    }
    srv->nidle = 0;
    while (srv->nthreads > srv->active &&
           ss_cond_wait_until(&srv->cond, &srv->lock, deadline) == 0)
        ;
    pthread_mutex_unlock(&srv->lock);
}

const struct ss_mode ss_mode_thread = {
    .name = "threading",
    .process = thread_process,
    .wait = thread_wait,
    .stop = thread_stop,
};
