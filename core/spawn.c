/* spawn.c: run a program for a stream request (exec handler), supervise it.
 *
 * The program is started with vfork (the parent thread waits, sharing its
 * memory, until execve), as posix_spawn starts one, so a daemon of many
 * threads (or coroutines) copies no page tables; the request then takes a
 * pidfd for it (nothing in the daemon waits for any child, so the pid
 * cannot be reaped and reused first).  The child makes raw system calls
 * only (never glibc's setuid family, which would signal the parent's other
 * threads, nor a wrapper a sanitizer intercepts).  ThreadSanitizer turns
 * vfork into fork, which it can follow; it cannot follow clone(CLONE_VM).
 *
 * The request then waits through its mode (wait_io), as for any I/O, on an
 * epoll set of two descriptors: the pidfd (readable when the program has
 * ended) and the read end of the program's stderr (each line is logged as
 * "SECTION: line").  In event mode that suspends the coroutine; elsewhere
 * it polls in the request's own thread or process: no thread per program.
 *
 * Shutdown reaches a program the way it reaches a request: stage one of
 * ss_server_close (shutdown_now) sends SIGTERM to its process group, stage
 * two (kill_all) SIGKILL.  A forking server's child forwards its SIGTERM
 * (ss_spawn_on_term), and the program dies with its parent process
 * (PR_SET_PDEATHSIG) when that child is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "internal.h"

#define LINE_MAX_LOG 1024           /* a longer stderr line is cut in pieces */
#define STDERR_BUDGET (64 * 1024)   /* bytes of stderr read per wakeup */

/* A running program, in the process's list while it may be signalled. */
struct prog {
    struct ss_server *srv;
    pid_t pid;                      /* its process group too (setsid) */
    int pidfd;
    struct prog *prev, *next;
};

static pthread_mutex_t progs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct prog *progs;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The program this thread supervises, for a forking server's child that
 * gets SIGTERM (its one thread is the one that spawned).  Initial-exec,
 * as mode_fork.c's: a signal handler must not be the first to touch a
 * dynamically allocated TLS block (libsockserv.so). */
static __thread volatile sig_atomic_t own_prog
    __attribute__((tls_model("initial-exec"))) = 0;

/* A forked child starts with no program of its own: the list is the
 * parent's, and its lock may have been held by another thread. */
static void
atfork_child(void)
{
    pthread_mutex_init(&progs_lock, NULL);
    progs = NULL;
}

static void
register_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, atfork_child);
}

/* What the child needs; on the caller's stack, which the child shares. */
struct child_args {
    const struct ss_spawn *sp;
    int conn, err_w;
    int err;                        /* the child's errno when it failed */
    const char *step;               /* and what failed */
};

/* The kernel's struct sigaction (rt_sigaction), not glibc's. */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/*
 * The child, until execve.  Raw system calls only: it shares the parent's
 * memory (and a sanitizer's view of it), so no libc wrapper that keeps
 * state may run (glibc's sigaction, close, _exit are intercepted by the
 * sanitizers; its setuid family signals every thread).  On failure it
 * records errno and what failed for the parent (suspended until this
 * ends, vfork) and exits 127.
 */
static void __attribute__((noreturn))
child_main(struct child_args *a)
{
    const struct ss_spawn *sp = a->sp;
    struct ksigaction dfl = { .handler = SIG_DFL };
    uint64_t none = 0;
    long conn, err;

    /* every handler the daemon set is the daemon's; SIGPIPE was ignored */
    for (int s = 1; s <= 64; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof none);
    a->step = "setsid";
    if (syscall(SYS_setsid) < 0)
        goto out_fail;
    /* above 2 first, so that a descriptor already 0, 1 or 2 survives */
    a->step = "dup";
    if ((conn = syscall(SYS_fcntl, a->conn, F_DUPFD, 3)) < 0 ||
        (err = syscall(SYS_fcntl, a->err_w, F_DUPFD, 3)) < 0)
        goto out_fail;
    if (syscall(SYS_dup3, conn, 0, 0) < 0 ||
        syscall(SYS_dup3, conn, 1, 0) < 0 ||
        syscall(SYS_dup3, err, 2, 0) < 0)
        goto out_fail;
    /* the program sees 0, 1 and 2, nothing else of the daemon's */
    a->step = "close_range";
    if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) {
        if (errno != ENOSYS)
            goto out_fail;
        for (long fd = 3; fd < 65536; fd++)
            (void)syscall(SYS_close, fd);
    }
    if (sp->set_ids && syscall(SYS_geteuid) == 0) {
        a->step = "setgroups";
        if (syscall(SYS_setgroups, sp->ngroups, sp->groups) < 0)
            goto out_fail;
        a->step = "setgid";
        if (syscall(SYS_setgid, sp->gid) < 0)
            goto out_fail;
        a->step = "setuid";
        if (syscall(SYS_setuid, sp->uid) < 0)
            goto out_fail;
    }
    /* after the credentials, which clear it: dies with its supervisor */
    a->step = "prctl";
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        goto out_fail;
    (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
    a->step = "execve";
    (void)syscall(SYS_execve, sp->path, sp->argv, sp->envp);
out_fail:
    a->err = errno;
    for (;;)
        (void)syscall(SYS_exit, 127);
}

/* Logs one line of the program's stderr, control characters made '?'. */
static void
log_line(struct ss_server *srv, char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            line[i] = '?';
    }
    ss_log(SS_LOG_INFO, "%s: %.*s", srv->name, (int)len, line);
}

/* The stderr of a program: a line buffer. */
struct errbuf {
    char buf[LINE_MAX_LOG];
    size_t len;
};

/*
 * Reads what the program wrote to stderr, logging each whole line (and
 * the rest at the end: last), at most STDERR_BUDGET bytes a call, so that
 * a program (or a child it left behind, after it ended) that writes
 * without end cannot hold the request, nor in event mode the loop.
 * Returns 1 at the end of it, 0 otherwise.
 */
static int
drain_stderr(struct ss_server *srv, int fd, struct errbuf *e, bool last)
{
    size_t budget = STDERR_BUDGET;

    for (;;) {
        ssize_t n = budget > 0 ? read(fd, e->buf + e->len,
                                      sizeof e->buf - e->len) : 0;
        char *nl;

        if (budget == 0 && !last)
            return 0;           /* more next time: the pipe stays ready */
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            budget = (size_t)n < budget ? budget - (size_t)n : 0;
            e->len += (size_t)n;
            while ((nl = memchr(e->buf, '\n', e->len)) != NULL) {
                size_t take = (size_t)(nl - e->buf) + 1;

                log_line(srv, e->buf, take);
                memmove(e->buf, e->buf + take, e->len - take);
                e->len -= take;
            }
            if (e->len == sizeof e->buf) {
                log_line(srv, e->buf, e->len);
                e->len = 0;
            }
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN) || last) {
            if (e->len > 0)
                log_line(srv, e->buf, e->len);
            e->len = 0;
            return n == 0 || errno != EAGAIN;
        }
        return 0;
    }
}

/* The connection as a program expects it: blocking, no timeouts.  What
 * it was is kept in *st, to put back after. */
struct sockstate {
    int flags;
    struct timeval rcv, snd;
    bool have_rcv, have_snd;
};

static void
conn_for_program(int fd, struct sockstate *st)
{
    static const struct timeval zero;
    socklen_t len = sizeof st->rcv;

    st->flags = fcntl(fd, F_GETFL);
    if (st->flags >= 0 && (st->flags & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, st->flags & ~O_NONBLOCK);
    st->have_rcv = getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &st->rcv,
                              &len) == 0 && (st->rcv.tv_sec || st->rcv.tv_usec);
    len = sizeof st->snd;
    st->have_snd = getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st->snd,
                              &len) == 0 && (st->snd.tv_sec || st->snd.tv_usec);
    if (st->have_rcv)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
    if (st->have_snd)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
}

static void
conn_restore(int fd, const struct sockstate *st)
{
    if (st->flags >= 0 && (st->flags & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, st->flags);
    if (st->have_rcv)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &st->rcv,
                         sizeof st->rcv);
    if (st->have_snd)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st->snd,
                         sizeof st->snd);
}

static void
prog_link(struct prog *p)
{
    pthread_mutex_lock(&progs_lock);
    p->prev = NULL;
    p->next = progs;
    if (progs != NULL)
        progs->prev = p;
    progs = p;
    pthread_mutex_unlock(&progs_lock);
    own_prog = p->pid;
}

/* Off the list before it is reaped: a signal never reaches a reused pid. */
static void
prog_unlink(struct prog *p)
{
    own_prog = 0;
    pthread_mutex_lock(&progs_lock);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        progs = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    pthread_mutex_unlock(&progs_lock);
}

void
ss_spawn_cut(struct ss_server *srv, int how)
{
    int sig = how == 0 ? SIGTERM : SIGKILL;

    pthread_mutex_lock(&progs_lock);
    for (struct prog *p = progs; p != NULL; p = p->next)
        if (p->srv == srv) {
            (void)kill(-p->pid, sig);   /* its group: a shell's children */
            (void)pidfd_send_signal(p->pidfd, sig, NULL, 0);
        }
    pthread_mutex_unlock(&progs_lock);
}

/* SIGALRM after a forking child's SIGTERM: the program's group ends. */
static void
on_grace_end(int sig)
{
    pid_t pid = own_prog;

    (void)sig;
    if (pid > 0)
        (void)kill(-pid, SIGKILL);
}

/*
 * The parent's SIGKILL comes SS_CUT_GRACE after its SIGTERM and reaches
 * this child alone: the program dies with it (PDEATHSIG), but not what
 * the program started.  So the child kills the program's group itself,
 * a little before.  Async-signal-safe (system calls only).
 */
void
ss_spawn_on_term(void)
{
    static const long us = (long)(SS_CUT_GRACE * 900000);
    struct sigaction sa = { .sa_handler = on_grace_end,
                            .sa_flags = SA_RESTART };
    struct itimerval it = { .it_value = { .tv_sec = us / 1000000,
                                          .tv_usec = us % 1000000 } };
    pid_t pid = own_prog;

    if (pid <= 0)
        return;
    (void)kill(-pid, SIGTERM);
    (void)sigaction(SIGALRM, &sa, NULL);
    (void)setitimer(ITIMER_REAL, &it, NULL);
}

/* Starts the program.  Returns its pidfd (and *pid), or -1 with errno. */
static int
start(const struct ss_spawn *sp, int conn, int err_w, pid_t *pid,
      const char **step)
{
    struct child_args a = { .sp = sp, .conn = conn, .err_w = err_w };
    sigset_t all, old;
    int pidfd, status, e;
    pid_t p;

    /* no handler of the daemon's may run in the child before it resets
     * them: they share its memory */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    p = vfork();
    if (p == 0)
        child_main(&a);
    e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *step = "vfork";
    if (p < 0) {
        errno = e;
        return -1;
    }
    *pid = p;
    if (a.err != 0) {               /* it never ran the program: reaped */
        while (waitpid(p, &status, 0) < 0 && errno == EINTR)
            ;
        *step = a.step;
        errno = a.err;
        return -1;
    }
    /* nothing else reaps it (no one waits for any child): the pid is
     * still this one */
    pidfd = pidfd_open(p, 0);
    if (pidfd < 0) {
        e = errno;
        (void)kill(p, SIGKILL);
        while (waitpid(p, &status, 0) < 0 && errno == EINTR)
            ;
        *step = "pidfd_open";
        errno = e;
        return -1;
    }
    return pidfd;
}

/*
 * Waits for the end of the program, logging its stderr meanwhile, through
 * the mode.  Returns 0 with *status, or -1 (errno).
 */
static int
supervise(struct ss_request *req, struct prog *p, int err_r, int *status)
{
    struct ss_server *srv = req->srv;
    const struct ss_mode *m = srv->set.mode;
    struct epoll_event ev = { .events = EPOLLIN };
    struct errbuf *eb;
    int ep, rc = -1;
    bool err_open = true;

    eb = malloc(sizeof *eb);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (eb == NULL || ep < 0)
        goto out;
    eb->len = 0;
    ev.data.fd = p->pidfd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p->pidfd, &ev) < 0)
        goto out;
    ev.data.fd = err_r;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, err_r, &ev) < 0)
        goto out;
    for (;;) {
        struct epoll_event got[2];
        int n = epoll_wait(ep, got, 2, 0);
        bool ended = false;

        if (n < 0 && errno != EINTR)
            goto out;
        for (int i = 0; i < n; i++) {
            if (got[i].data.fd == err_r && err_open &&
                drain_stderr(srv, err_r, eb, false)) {
                (void)epoll_ctl(ep, EPOLL_CTL_DEL, err_r, NULL);
                err_open = false;
            }
            if (got[i].data.fd == p->pidfd)
                ended = true;
        }
        if (ended)
            break;
        /* also after stderr's budget: returns at once, but in event mode
         * only after the loop has run the others */
        if ((m->wait_io ? m->wait_io(req, ep, POLLIN, -1)
                        : ss_poll_fd(ep, POLLIN, -1)) < 0 && errno != EINTR)
            goto out;
    }
    if (err_open)
        (void)drain_stderr(srv, err_r, eb, true);
    rc = 0;
out:
    prog_unlink(p);
    if (rc < 0) {                   /* not waited for: it must not linger */
        int e = errno;

        (void)kill(-p->pid, SIGKILL);
        (void)pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0);
        errno = e;
    }
    {
        siginfo_t si = { 0 };
        int r;

        do
            r = waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
        while (r < 0 && errno == EINTR);
        if (r == 0 && status != NULL)
            *status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
                    : si.si_code == CLD_DUMPED ? si.si_status | WCOREFLAG
                    : si.si_status;
    }
    if (ep >= 0)
        close(ep);
    free(eb);
    return rc;
}

int
ss_request_spawn(struct ss_request *req, const struct ss_spawn *sp,
                 int *status)
{
    struct sockstate st;
    struct prog *p;
    const char *step = "vfork";
    int errpipe[2], rc = -1, e;

    if (sp == NULL || sp->size < sizeof *sp || sp->path == NULL ||
        sp->argv == NULL || sp->envp == NULL || req->fd < 0) {
        errno = EINVAL;
        return -1;
    }
    if (req->rpos < req->rlen) {    /* read ahead: the program would lose it */
        errno = EBUSY;
        return -1;
    }
    (void)pthread_once(&atfork_once, register_atfork);
    if ((p = calloc(1, sizeof *p)) == NULL)
        return -1;
    p->srv = req->srv;
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        free(p);
        return -1;
    }
    (void)fcntl(errpipe[0], F_SETFL, O_NONBLOCK);
    conn_for_program(req->fd, &st);
    p->pidfd = start(sp, req->fd, errpipe[1], &p->pid, &step);
    e = errno;
    close(errpipe[1]);
    if (p->pidfd < 0) {
        ss_log(SS_LOG_ERROR, "%s: %s: cannot run %s: %s: %s", req->srv->name,
               ss_request_peer(req), sp->path, step, strerror(e));
        errno = e;
        goto out;
    }
    prog_link(p);
    rc = supervise(req, p, errpipe[0], status);
    close(p->pidfd);
out:
    conn_restore(req->fd, &st);
    close(errpipe[0]);
    free(p);
    return rc;
}
