/* mode_fork.c: a process per request (ForkingMixIn).  One reaper thread
 * waits for every child as it exits, so none is left a zombie and a
 * server at max_children resumes as soon as one ends.  The parent keeps
 * each child's connection open (not used) so that shutdown can ask the
 * child to finish the way a thread is asked: its reading side shut. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

struct child {
    pid_t pid;
    int fd;                     /* the parent's copy of the connection */
    struct ss_server *srv;
    bool admitted;              /* counted by ss_access_admit */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER;
static struct child *reg;
static size_t nreg, capreg;
static bool reaper_started;

/* Forgets a child: off the registry, its connection closed, its slot and
 * admission released.  Called with reg_lock held. */
static void
forget(size_t i)
{
    struct child c = reg[i];

    reg[i] = reg[--nreg];
    if (c.fd >= 0) {
        ss_fd_untrack(c.fd);
        close(c.fd);
    }
    if (c.admitted)
        ss_access_release(c.srv, (struct sockaddr *)&c.addr, c.addrlen);
    ss_server_slot_release(c.srv, 1);
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
            if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM &&
                WTERMSIG(status) != SIGKILL)
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
reserve(void)
{
    if (nreg == capreg) {
        size_t cap = capreg ? capreg * 2 : 64;
        struct child *r = realloc(reg, cap * sizeof *r);

        if (r == NULL)
            return -1;
        reg = r;
        capreg = cap;
    }
    return 0;
}

/* In the child: default signals, fresh locks (only this thread is left),
 * then the request. */
static void
run_child(struct ss_server *srv, struct ss_request *req)
{
    pthread_condattr_t ca;
    sigset_t none;

    sigemptyset(&none);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->cond, &ca);
    pthread_mutex_init(&srv->flush_lock, NULL);
    pthread_mutex_init(&req->lock, NULL);
    pthread_cond_init(&req->drained, NULL);
    srv->running = NULL;
    srv->flusher_started = false;       /* threads stay in the parent */
    srv->epfd = -1;
    req->admitted = false;              /* the parent counts it */
    /* it inherited every socket the daemon had open (other clients'
     * connections, every server's listening socket): holding them would
     * keep those connections open after their own handlers close them */
    ss_fd_close_tracked(req->fd, req->fd < 0 ? srv->fd : -1);
    ss_request_run(req);
    _exit(0);
}

static void
fork_process(struct ss_server *srv, struct ss_request *req)
{
    pid_t pid = -1;

    pthread_mutex_lock(&reg_lock);
    if (start_reaper() == 0 && reserve() == 0) {
        pid = fork();
        if (pid == 0)
            run_child(srv, req);
    }
    if (pid > 0) {
        struct child *c = &reg[nreg++];

        c->pid = pid;
        c->fd = req->fd;            /* kept: see the top of this file */
        c->srv = srv;
        c->admitted = req->admitted;
        memcpy(&c->addr, &req->addr, sizeof c->addr);
        c->addrlen = req->addrlen;
        req->fd = -1;
        req->admitted = false;
        pthread_mutex_lock(&srv->lock);
        srv->active++;
        pthread_mutex_unlock(&srv->lock);
        pthread_cond_signal(&reg_cond);
    }
    pthread_mutex_unlock(&reg_lock);
    if (pid < 0)
        ss_log(SS_LOG_WARNING, "%s: %s: fork: %s; connection closed",
               srv->name, ss_request_peer(req), strerror(errno));
    ss_request_end(req);        /* the parent's request object */
}

/*
 * Asks a server's children to end: how 0 shuts the reading side of their
 * connections (a datagram child is sent SIGTERM), how 1 kills them.
 */
void
ss_fork_signal(struct ss_server *srv, int how)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nreg; i++) {
        if (reg[i].srv != srv)
            continue;
        if (how == 0 && reg[i].fd >= 0)
            shutdown(reg[i].fd, SHUT_RD);
        else
            kill(reg[i].pid, how == 0 ? SIGTERM : SIGKILL);
    }
    pthread_mutex_unlock(&reg_lock);
}

static void
fork_wait(struct ss_server *srv, double deadline)
{
    if (!srv->set.block_on_close)
        return;
    ss_server_wait_idle(srv, deadline);
}

static void
fork_stop(struct ss_server *srv)
{
    (void)srv;
}

const struct ss_mode ss_mode_fork = {
    .name = "forking",
    .process = fork_process,
    .wait = fork_wait,
    .stop = fork_stop,
};
