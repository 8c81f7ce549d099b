/* mode_fork.c: a process per request (ForkingMixIn).  One reaper thread
 * waits for every child as it exits, so none is left a zombie and a
 * server at max_children resumes as soon as one ends. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

struct child {
    pid_t pid;
    struct ss_server *srv;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER;
static struct child *reg;
static size_t nreg, capreg;
static bool reaper_started;

/* Forgets a child: off the registry and its server's list, slot freed.
 * Called with reg_lock held. */
static void
forget(size_t i)
{
    struct ss_server *srv = reg[i].srv;
    pid_t pid = reg[i].pid;

    reg[i] = reg[--nreg];
    pthread_mutex_lock(&srv->lock);
    for (size_t j = 0; j < srv->nchildren; j++) {
        if (srv->children[j] == pid) {
            srv->children[j] = srv->children[--srv->nchildren];
            break;
        }
    }
    srv->active--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

static void *
reaper_main(void *arg)
{
    (void)arg;
    for (;;) {
        int status;
        pid_t pid;

        pthread_mutex_lock(&reg_lock);
        while (nreg == 0)
            pthread_cond_wait(&reg_cond, &reg_lock);
        pthread_mutex_unlock(&reg_lock);

        pid = waitpid(-1, &status, 0);
        pthread_mutex_lock(&reg_lock);
        if (pid < 0 && errno == ECHILD) {
            while (nreg > 0)    /* reaped by someone else */
                forget(0);
        }
        for (size_t i = 0; pid > 0 && i < nreg; i++) {
            if (reg[i].pid != pid)
                continue;
            if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
                ss_log(SS_LOG_WARNING, "%s: child %d killed by signal %d",
                       reg[i].srv->name, (int)pid, WTERMSIG(status));
            forget(i);
            break;
        }
        pthread_mutex_unlock(&reg_lock);
    }
    return NULL;
}

static int
start_reaper(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (reaper_started)
        return 0;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    rc = pthread_create(&tid, &attr, reaper_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    reaper_started = true;
    return 0;
}

static int
remember(struct ss_server *srv, pid_t pid)
{
    if (nreg == capreg) {
        size_t cap = capreg ? capreg * 2 : 64;
        struct child *r = realloc(reg, cap * sizeof *r);

        if (r == NULL)
            return -1;
        reg = r;
        capreg = cap;
    }
    pthread_mutex_lock(&srv->lock);
    if (srv->nchildren == srv->children_cap) {
        size_t cap = srv->children_cap ? srv->children_cap * 2 : 64;
        pid_t *c = realloc(srv->children, cap * sizeof *c);

        if (c == NULL) {
            pthread_mutex_unlock(&srv->lock);
            return -1;
        }
        srv->children = c;
        srv->children_cap = cap;
    }
    srv->children[srv->nchildren++] = pid;
    srv->active++;
    pthread_mutex_unlock(&srv->lock);
    reg[nreg].pid = pid;
    reg[nreg].srv = srv;
    nreg++;
    pthread_cond_signal(&reg_cond);
    return 0;
}

/* In the child: default signals, no listening socket, then the request. */
static void
run_child(struct ss_server *srv, struct ss_request *req)
{
    sigset_t none;

    sigemptyset(&none);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    if (srv->set.transport->kind == SS_STREAM) {
        close(srv->fd);
        srv->fd = -1;
    }
    srv->flusher_started = false;       /* threads stay in the parent */
    if (srv->epfd >= 0) {
        close(srv->epfd);
        srv->epfd = -1;
    }
    ss_request_run(req);
    _exit(0);
}

static void
fork_process(struct ss_server *srv, struct ss_request *req)
{
    pid_t pid;

    pthread_mutex_lock(&reg_lock);
    if (start_reaper() < 0) {
        pid = -1;
    } else {
        pid = fork();
        if (pid == 0)
            run_child(srv, req);
    }
    if (pid > 0 && remember(srv, pid) < 0) {
        /* cannot track it: wait for it here rather than lose a zombie */
        ss_log(SS_LOG_ERROR, "%s: out of memory tracking child %d",
               srv->name, (int)pid);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    pthread_mutex_unlock(&reg_lock);
    if (pid < 0)
        ss_log(SS_LOG_WARNING, "%s: %s: fork: %s; connection closed",
               srv->name, req->peer, strerror(errno));
    ss_request_end(req);        /* the parent's copy */
}

static void
fork_wait(struct ss_server *srv, double deadline)
{
    if (!srv->set.block_on_close)
        return;
    ss_server_wait_idle(srv, deadline);
}

/* Children still running after the grace period and SIGTERM are killed. */
static void
fork_stop(struct ss_server *srv)
{
    if (!srv->set.block_on_close)
        return;
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < srv->nchildren; i++)
        kill(srv->children[i], SIGKILL);
    pthread_mutex_unlock(&srv->lock);
    ss_server_wait_idle(srv, ss_now() + 1);
}

const struct ss_mode ss_mode_fork = {
    .name = "forking",
    .process = fork_process,
    .wait = fork_wait,
    .stop = fork_stop,
};
