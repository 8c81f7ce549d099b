/* stress.c: loads the sockserv daemon (echo handler) over loopback in
 * threading and forking mode, and checks that it holds. */
/*
 * Per mode: starts BUILD/sockserv on 127.0.0.1 port 0, connects one
 * well-behaved client that sends a 64-byte message every 20 ms and times
 * its echo, then opens N (1,000) connections that each check one echo and
 * stay open, while churning clients run the whole time: slow-loris clients
 * sending a byte a second, clients that send 64 KiB and reset (SO_LINGER
 * 0), clients that connect and vanish, and clients that send random bytes
 * and check they come back.  At the end each held connection checks one
 * more echo, all close, and the daemon gets SIGTERM and must exit 0.
 *
 * Every loop is bounded in time; traffic stays on loopback: the daemon
 * listens on 127.0.0.1, bulk clients connect from 127.0.0.2-254, the
 * well-behaved one from 127.0.0.255.  One
 * thread runs the bulk clients on epoll, another the well-behaved client,
 * the main thread samples the daemon's memory from /proc.
 *
 * Fails (exit 1) unless: every held connection opened and echoed twice,
 * no client saw an error (reset, early close, wrong bytes, an echo late by
 * more than 5 s), every well-behaved byte came back with max latency
 * <= -L ms and p99 <= -P ms, the daemon's peak memory (PSS summed over
 * its processes) <= -M MiB, and it exited 0 on SIGTERM.
 *
 * usage: stress -d BUILD_DIR [-s SECONDS] [-n CONNS] [-m MODE]...
 *                [-L MAX_MS] [-P P99_MS] [-M MIB]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ECHO_TIMEOUT   5.0      /* seconds an echo may take before error */
#define WB_MSG         64       /* the well-behaved client's message */
#define WB_PERIOD_MS   20
#define N_SLOW         20       /* slow-loris clients */
#define SLOW_LEN       30       /* bytes each sends, one a second */
#define SLOTS_RESET    4        /* churning clients of each kind */
#define SLOTS_VANISH   4
#define SLOTS_GARBAGE  4
#define CHURN_PAUSE    0.02     /* seconds between a slot's clients */
#define RESET_BYTES    65536
#define GARBAGE_MAX    8192
#define MAX_SAMPLES    100000

enum kind { K_HOLD, K_SLOW, K_RESET, K_VANISH, K_GARBAGE, NKINDS };
static const char *const kind_names[] = { "held", "slow-loris", "reset",
                                          "vanish", "garbage" };

struct cli {
    int fd;
    enum kind kind;
    int idx;
    bool connecting, open, out_armed;
    char *buf;                  /* bytes queued; the echo must match them */
    size_t cap, len, off, got;
    double deadline;            /* echo due by; 0 = none pending */
    double t_next;              /* slow: next byte; reset: reset time */
    int echoes;                 /* complete echoes (held: 1 then 2) */
};

struct stats {
    long opened[NKINDS], done_ok[NKINDS], errors[NKINDS];
    long held_first, held_last, connect_fail;
    long garbage_bytes, slow_bytes;
    char first_errors[8][160];
    int nfirst;
};

struct opts {
    const char *build;
    int seconds, conns;
    double max_ms, p99_ms, max_mib;
};

static struct opts opt = { NULL, 40, 1000, 1000, 250, 2048 };
static struct stats st;
static struct sockaddr_in target;
static int epfd;
static unsigned rng = 12345;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void
note_error(enum kind k, const char *fmt, ...)
{
    va_list ap;

    st.errors[k]++;
    if (st.nfirst < 8) {
        va_start(ap, fmt);
        vsnprintf(st.first_errors[st.nfirst++], 160, fmt, ap);
        va_end(ap);
    }
}

/* ---- the daemon ---------------------------------------------------------- */

struct daemon {
    pid_t pid;
    char dir[64], ini[128], log[128];
    int port;
};

static int
daemon_start(struct daemon *d, const char *mode)
{
    char bin[PATH_MAX], hdir[PATH_MAX + 16], line[512];
    double deadline = now_s() + 15;
    FILE *fp;

    snprintf(d->dir, sizeof d->dir, "/tmp/sockserv-stress-XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    snprintf(d->ini, sizeof d->ini, "%s/stress.ini", d->dir);
    snprintf(d->log, sizeof d->log, "%s/daemon.log", d->dir);
    if (realpath(opt.build, bin) == NULL)
        return -1;
    snprintf(hdir, sizeof hdir, "%s/handlers", bin);
    if (strlen(bin) + sizeof "/sockserv" > sizeof bin)
        return -1;
    strcat(bin, "/sockserv");
    fp = fopen(d->ini, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "[global]\nplugin_path = %s\nlog_level = info\n\n"
            "[echo]\nhandler = echo\ntype = tcp\nmode = %s\n"
            "host = 127.0.0.1\nport = 0\nrequest_queue_size = 4096\n"
            "max_connections = %d\nmax_per_source = %d\n",
            hdir, mode, 4 * opt.conns, 4 * opt.conns);
    if (strcmp(mode, "threading") == 0)
        fprintf(fp, "max_threads = %d\n", 2 * opt.conns);
    else
        fprintf(fp, "max_children = %d\n", opt.conns + 200);
    fclose(fp);
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);

        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, d->ini, (char *)NULL);
        _exit(127);
    }
    while (now_s() < deadline) {
        char *p;

        fp = fopen(d->log, "r");
        while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
            if ((p = strstr(line, "listening on 127.0.0.1:")) != NULL) {
                d->port = atoi(p + strlen("listening on 127.0.0.1:"));
                fclose(fp);
                return 0;
            }
        }
        if (fp != NULL)
            fclose(fp);
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
            d->pid = 0;
            break;
        }
        poll(NULL, 0, 20);
    }
    return -1;
}

static void
daemon_print_log(const struct daemon *d, int max_lines)
{
    char line[512];
    FILE *fp = fopen(d->log, "r");
    int n = 0;

    fprintf(stderr, "---- daemon log (%s, first %d lines) ----\n", d->log,
            max_lines);
    while (fp != NULL && fgets(line, sizeof line, fp) != NULL &&
           n++ < max_lines)
        fputs(line, stderr);
    if (fp != NULL)
        fclose(fp);
    fprintf(stderr, "---- end ----\n");
}

/* Sends SIGTERM; returns the exit status, or -1 if not gone in 20 s. */
static int
daemon_stop(struct daemon *d)
{
    double deadline = now_s() + 20;
    int status;

    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    while (now_s() < deadline) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        }
        poll(NULL, 0, 20);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    return -1;
}

static void
daemon_cleanup(struct daemon *d)
{
    unlink(d->ini);
    unlink(d->log);
    rmdir(d->dir);
}

/* ---- memory: the daemon and its children --------------------------------- */

struct mem {
    double rss_mib, pss_mib;
    int procs, threads;
};

static long
status_field(const char *path, const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    FILE *fp = fopen(path, "r");

    while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
        if (strncmp(line, key, klen) == 0) {
            v = atol(line + klen);
            break;
        }
    }
    if (fp != NULL)
        fclose(fp);
    return v;
}

/* Sums VmRSS and Pss (kB) over pid and its children. */
static void
mem_sample(pid_t pid, struct mem *m)
{
    DIR *dir = opendir("/proc");
    struct dirent *e;
    char path[64];
    long rss = 0, pss = 0;

    memset(m, 0, sizeof *m);
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        pid_t p = (pid_t)atoi(e->d_name);
        long ppid, v;

        if (p <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/status", (int)p);
        ppid = status_field(path, "PPid:");
        if (p != pid && ppid != pid)
            continue;
        if ((v = status_field(path, "VmRSS:")) > 0)
            rss += v;
        if ((v = status_field(path, "Threads:")) > 0)
            m->threads += (int)v;
        m->procs++;
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)p);
        if ((v = status_field(path, "Pss:")) > 0)
            pss += v;
    }
    if (dir != NULL)
        closedir(dir);
    m->rss_mib = (double)rss / 1024;
    m->pss_mib = (double)pss / 1024;
}

/* ---- the well-behaved client -------------------------------------------- */

struct wb {
    atomic_bool stop;
    long sent, received, timeouts;
    double *lat_ms;
    long nlat;
    char error[160];
};

static void *
wb_main(void *arg)
{
    struct wb *w = arg;
    char msg[WB_MSG], back[WB_MSG];
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    long seq = 0;

    struct sockaddr_in src = { .sin_family = AF_INET };

    src.sin_addr.s_addr = htonl(0x7f0000ff);    /* 127.0.0.255 */
    if (fd >= 0)
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        connect(fd, (struct sockaddr *)&target, sizeof target) < 0) {
        snprintf(w->error, sizeof w->error, "connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (!atomic_load(&w->stop)) {
        double t0 = now_s(), deadline = t0 + ECHO_TIMEOUT;
        size_t got = 0;

        memset(msg, '.', sizeof msg);
        snprintf(msg, sizeof msg, "well-behaved %ld ", seq++);
        msg[strlen(msg)] = '.';
        msg[WB_MSG - 1] = '\n';
        if (send(fd, msg, WB_MSG, MSG_NOSIGNAL) != WB_MSG) {
            snprintf(w->error, sizeof w->error, "send: %s", strerror(errno));
            break;
        }
        w->sent += WB_MSG;
        while (got < WB_MSG) {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            int ms = (int)((deadline - now_s()) * 1000);
            ssize_t n;

            if (ms <= 0 || poll(&p, 1, ms) <= 0) {
                w->timeouts++;
                snprintf(w->error, sizeof w->error, "echo %ld not back in "
                         "%.0f s", seq - 1, ECHO_TIMEOUT);
                goto out;
            }
            n = recv(fd, back + got, WB_MSG - got, 0);
            if (n <= 0) {
                snprintf(w->error, sizeof w->error, "recv: %s",
                         n == 0 ? "closed" : strerror(errno));
                goto out;
            }
            got += (size_t)n;
        }
        w->received += WB_MSG;
        if (memcmp(msg, back, WB_MSG) != 0) {
            snprintf(w->error, sizeof w->error, "echo %ld differs", seq - 1);
            break;
        }
        if (w->nlat < MAX_SAMPLES)
            w->lat_ms[w->nlat++] = (now_s() - t0) * 1000;
        poll(NULL, 0, WB_PERIOD_MS);
    }
out:
    close(fd);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* ---- the bulk clients (one thread, epoll) -------------------------------- */

static struct cli *clis;        /* held + slow + churn slots */
static size_t nclis;

static void
cli_close(struct cli *c, bool reset)
{
    if (c->fd < 0)
        return;
    if (reset) {
        struct linger lg = { 1, 0 };

        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->open = c->connecting = false;
    c->len = c->off = c->got = 0;
    c->deadline = 0;
}

static void
cli_arm(struct cli *c, bool out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
                              .data.ptr = c };

    if (c->out_armed != out) {
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->out_armed = out;
    }
}

static int
cli_open(struct cli *c)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        st.connect_fail++;
        note_error(c->kind, "%s %d: socket: %s", kind_names[c->kind], c->idx,
                   strerror(errno));
        return -1;
    }
    /* from 127.0.0.2-254: the churn leaves thousands of client ports in
     * TIME_WAIT, more than one source address has (EADDRNOTAVAIL) */
    struct sockaddr_in src = { .sin_family = AF_INET };
    int one = 1;

    src.sin_addr.s_addr = htonl(0x7f000002 + rnd() % 253);
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
        st.connect_fail++;
        note_error(c->kind, "%s %d: bind: %s", kind_names[c->kind], c->idx,
                   strerror(errno));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 &&
        errno != EINPROGRESS) {
        st.connect_fail++;
        note_error(c->kind, "%s %d: connect: %s", kind_names[c->kind],
                   c->idx, strerror(errno));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    st.opened[c->kind]++;
    c->connecting = true;
    c->out_armed = true;
    c->echoes = 0;
    c->len = c->off = c->got = 0;
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void
cli_flush(struct cli *c)
{
    while (c->fd >= 0 && c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off,
                         MSG_NOSIGNAL);

        if (n > 0) {
            c->off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            cli_arm(c, true);
            return;
        }
        if (c->kind != K_RESET)
            note_error(c->kind, "%s %d: send: %s", kind_names[c->kind],
                       c->idx, strerror(errno));
        cli_close(c, false);
        return;
    }
    if (c->fd >= 0)
        cli_arm(c, false);
}

/* Queues n bytes (echo checked unless a reset client). */
static void
cli_queue(struct cli *c, const void *data, size_t n, double now)
{
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 256;

        while (cap < c->len + n)
            cap *= 2;
        c->buf = realloc(c->buf, cap);
        if (c->buf == NULL)
            abort();
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    if (c->kind != K_RESET && c->deadline == 0)
        c->deadline = now + ECHO_TIMEOUT;
    cli_flush(c);
}

static void
on_connected(struct cli *c, double now)
{
    char msg[64];
    int n;

    c->connecting = false;
    c->open = true;
    switch (c->kind) {
    case K_HOLD:
        n = snprintf(msg, sizeof msg, "held %d first\n", c->idx);
        cli_queue(c, msg, (size_t)n, now);
        break;
    case K_SLOW:
        c->t_next = now;
        break;
    case K_RESET: {
        static char junk[RESET_BYTES];

        memset(junk, 'r', sizeof junk);
        cli_queue(c, junk, sizeof junk, now);
        c->t_next = now + (rnd() % 50) / 1000.0;
        break;
    }
    case K_VANISH:
        st.done_ok[K_VANISH]++;
        cli_close(c, false);
        c->t_next = now + CHURN_PAUSE;
        break;
    case K_GARBAGE: {
        char g[GARBAGE_MAX];
        size_t len = 1 + rnd() % GARBAGE_MAX;

        for (size_t i = 0; i < len; i++)
            g[i] = (char)rnd();
        cli_queue(c, g, len, now);
        break;
    }
    default:
        break;
    }
}

static void
on_echo_done(struct cli *c, double now)
{
    c->deadline = 0;
    c->echoes++;
    switch (c->kind) {
    case K_HOLD:
        if (c->echoes == 1)
            st.held_first++;
        else
            st.held_last++;
        break;
    case K_GARBAGE:
        st.garbage_bytes += (long)c->len;
        st.done_ok[K_GARBAGE]++;
        cli_close(c, false);
        c->t_next = now + CHURN_PAUSE;
        break;
    default:
        break;
    }
}

static void
on_readable(struct cli *c, double now)
{
    char buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->kind != K_RESET)
            note_error(c->kind, "%s %d: %s after %zu of %zu bytes echoed",
                       kind_names[c->kind], c->idx,
                       n == 0 ? "closed by the daemon" : strerror(errno),
                       c->got, c->len);
        cli_close(c, false);
        c->t_next = now + CHURN_PAUSE;
        return;
    }
    if (c->kind == K_RESET)
        return;                 /* it never reads what it gets */
    if (c->got + (size_t)n > c->len ||
        memcmp(c->buf + c->got, buf, (size_t)n) != 0) {
        note_error(c->kind, "%s %d: echo differs from what was sent at "
                   "byte %zu", kind_names[c->kind], c->idx, c->got);
        cli_close(c, false);
        c->t_next = now + CHURN_PAUSE;
        return;
    }
    c->got += (size_t)n;
    if (c->kind == K_SLOW)
        st.slow_bytes += n;
    if (c->got == c->len && c->off == c->len)
        on_echo_done(c, now);
    else if (c->deadline == 0)
        c->deadline = now + ECHO_TIMEOUT;
}

static void
on_event(struct cli *c, uint32_t events, double now)
{
    if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            st.connect_fail++;
            note_error(c->kind, "%s %d: connect: %s", kind_names[c->kind],
                       c->idx, strerror(err));
            cli_close(c, false);
            c->t_next = now + CHURN_PAUSE;
            return;
        }
        on_connected(c, now);
        if (c->fd < 0)
            return;
    }
    if (events & EPOLLOUT)
        cli_flush(c);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        on_readable(c, now);
}

/* Timers: slow bytes, resets, churn restarts, echo deadlines. */
static void
tick(double now, bool churn)
{
    for (size_t i = 0; i < nclis; i++) {
        struct cli *c = &clis[i];

        if (c->fd >= 0 && c->deadline != 0 && now > c->deadline) {
            note_error(c->kind, "%s %d: echo not back in %.0f s (%zu of %zu "
                       "bytes)", kind_names[c->kind], c->idx, ECHO_TIMEOUT,
                       c->got, c->len);
            cli_close(c, false);
            c->t_next = now + CHURN_PAUSE;
            continue;
        }
        switch (c->kind) {
        case K_SLOW:
            if (c->open && now >= c->t_next && c->len < SLOW_LEN) {
                char b = c->len + 1 == SLOW_LEN ? '\n'
                                                : (char)('a' + c->len % 26);

                cli_queue(c, &b, 1, now);
                c->t_next = now + 1.0;
            }
            break;
        case K_RESET:
            if (c->open && now >= c->t_next) {
                st.done_ok[K_RESET]++;
                cli_close(c, true);
                c->t_next = now + CHURN_PAUSE;
            } else if (c->fd < 0 && churn && now >= c->t_next) {
                cli_open(c);
            }
            break;
        case K_VANISH:
            if (c->fd < 0 && churn && now >= c->t_next) {
                if (cli_open(c) == 0 && rnd() % 2 == 0) {
                    /* gone before the handshake is even done */
                    st.done_ok[K_VANISH]++;
                    cli_close(c, rnd() % 2 == 0);
                    c->t_next = now + CHURN_PAUSE;
                }
            }
            break;
        case K_GARBAGE:
            if (c->fd < 0 && churn && now >= c->t_next)
                cli_open(c);
            break;
        default:
            break;
        }
    }
}

static void
poll_events(int ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, ms);
    double now = now_s();

    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events, now);
}

/* ---- one mode ------------------------------------------------------------ */

struct result {
    const char *mode;
    struct stats st;
    struct mem peak;
    long wb_sent, wb_received, wb_samples;
    double wb_max, wb_p99, wb_p50;
    char wb_error[160];
    int exit_status;
    double seconds;
    bool ok;
};

static bool
run_mode(const char *mode, struct result *res)
{
    struct daemon d = { 0 };
    struct wb w = { 0 };
    pthread_t wbt;
    double t0 = now_s(), end_load, now, next_sample = 0;
    size_t nheld = (size_t)opt.conns, opened = 0;
    int held_ok;

    memset(&st, 0, sizeof st);
    memset(res, 0, sizeof *res);
    res->mode = mode;
    if (daemon_start(&d, mode) < 0) {
        fprintf(stderr, "stress: %s: the daemon did not start\n", mode);
        daemon_print_log(&d, 40);
        if (d.pid > 0)
            daemon_stop(&d);
        daemon_cleanup(&d);
        return false;
    }
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)d.port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    printf("%s: daemon %d on 127.0.0.1:%d, %d s\n", mode, (int)d.pid, d.port,
           opt.seconds);
    fflush(stdout);

    w.lat_ms = calloc(MAX_SAMPLES, sizeof *w.lat_ms);
    if (w.lat_ms == NULL || pthread_create(&wbt, NULL, wb_main, &w) != 0)
        abort();

    nclis = nheld + N_SLOW + SLOTS_RESET + SLOTS_VANISH + SLOTS_GARBAGE;
    clis = calloc(nclis, sizeof *clis);
    if (clis == NULL)
        abort();
    for (size_t i = 0; i < nclis; i++) {
        struct cli *c = &clis[i];

        c->fd = -1;
        c->idx = (int)i;
        c->kind = i < nheld ? K_HOLD
                : i < nheld + N_SLOW ? K_SLOW
                : i < nheld + N_SLOW + SLOTS_RESET ? K_RESET
                : i < nheld + N_SLOW + SLOTS_RESET + SLOTS_VANISH ? K_VANISH
                : K_GARBAGE;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    end_load = t0 + opt.seconds;

    /* load: open the held connections in batches, churn all along */
    for (now = now_s(); now < end_load; now = now_s()) {
        if (opened < nheld + N_SLOW) {
            for (int b = 0; b < 50 && opened < nheld + N_SLOW; b++)
                cli_open(&clis[opened++]);
        }
        poll_events(10);
        now = now_s();
        tick(now, true);
        if (now >= next_sample) {
            struct mem m;

            mem_sample(d.pid, &m);
            if (m.pss_mib > res->peak.pss_mib)
                res->peak.pss_mib = m.pss_mib;
            if (m.rss_mib > res->peak.rss_mib)
                res->peak.rss_mib = m.rss_mib;
            if (m.procs > res->peak.procs)
                res->peak.procs = m.procs;
            if (m.threads > res->peak.threads)
                res->peak.threads = m.threads;
            next_sample = now + 0.5;
        }
    }

    /* end: each held connection echoes once more, the rest close */
    for (size_t i = 0; i < nclis; i++) {
        struct cli *c = &clis[i];

        if (c->kind == K_HOLD && c->fd >= 0 && c->echoes == 1) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "held %d last\n", c->idx);

            c->len = c->off = c->got = 0;
            cli_queue(c, msg, (size_t)n, now_s());
        } else if (c->kind != K_HOLD && c->kind != K_SLOW) {
            cli_close(c, false);
        }
    }
    for (double dl = now_s() + ECHO_TIMEOUT + 1;
         st.held_last < st.held_first && now_s() < dl;) {
        poll_events(10);
        tick(now_s(), false);
    }
    atomic_store(&w.stop, true);
    pthread_join(wbt, NULL);
    for (size_t i = 0; i < nclis; i++) {
        if (clis[i].kind == K_SLOW && clis[i].fd >= 0) {
            if (clis[i].got == clis[i].len)
                st.done_ok[K_SLOW]++;
        }
        cli_close(&clis[i], false);
        free(clis[i].buf);
    }
    free(clis);
    close(epfd);

    res->exit_status = daemon_stop(&d);
    if (res->exit_status != 0)
        daemon_print_log(&d, 40);
    daemon_cleanup(&d);

    res->st = st;
    res->wb_sent = w.sent;
    res->wb_received = w.received;
    res->wb_samples = w.nlat;
    snprintf(res->wb_error, sizeof res->wb_error, "%s", w.error);
    if (w.nlat > 0) {
        qsort(w.lat_ms, (size_t)w.nlat, sizeof *w.lat_ms, cmp_double);
        res->wb_max = w.lat_ms[w.nlat - 1];
        res->wb_p99 = w.lat_ms[(size_t)((double)(w.nlat - 1) * 0.99)];
        res->wb_p50 = w.lat_ms[(size_t)(w.nlat - 1) / 2];
    }
    free(w.lat_ms);
    res->seconds = now_s() - t0;

    held_ok = st.held_first == (long)nheld && st.held_last == (long)nheld;
    long errs = 0;

    for (int k = 0; k < NKINDS; k++)
        errs += st.errors[k];
    res->ok = held_ok && errs == 0 && w.error[0] == '\0' &&
              w.sent == w.received && w.nlat > 0 &&
              res->wb_max <= opt.max_ms && res->wb_p99 <= opt.p99_ms &&
              res->peak.pss_mib <= opt.max_mib && res->exit_status == 0 &&
              st.done_ok[K_SLOW] == N_SLOW;
    return res->ok;
}

static void
report(const struct result *r)
{
    const struct stats *s = &r->st;

    printf("\n== %s: %s (%.0f s)\n", r->mode, r->ok ? "PASS" : "FAIL",
           r->seconds);
    printf("  held connections:   %ld opened, %ld echoed first, %ld echoed "
           "last (of %d)\n", s->opened[K_HOLD], s->held_first, s->held_last,
           opt.conns);
    printf("  slow-loris:         %ld opened, %ld got every byte back (%ld "
           "bytes, 1/s)\n", s->opened[K_SLOW], s->done_ok[K_SLOW],
           s->slow_bytes);
    printf("  reset mid-stream:   %ld (64 KiB sent, SO_LINGER 0)\n",
           s->done_ok[K_RESET]);
    printf("  connect-and-vanish: %ld\n", s->done_ok[K_VANISH]);
    printf("  random garbage:     %ld clients, %ld bytes echoed intact\n",
           s->done_ok[K_GARBAGE], s->garbage_bytes);
    printf("  errors:             %ld held, %ld slow, %ld garbage, %ld "
           "connect failures\n", s->errors[K_HOLD], s->errors[K_SLOW],
           s->errors[K_GARBAGE], s->connect_fail);
    for (int i = 0; i < s->nfirst; i++)
        printf("    %s\n", s->first_errors[i]);
    printf("  well-behaved:       %ld/%ld bytes back, %ld echoes, latency "
           "p50 %.2f ms, p99 %.2f ms (limit %.0f), max %.2f ms (limit "
           "%.0f)%s%s\n", r->wb_received, r->wb_sent, r->wb_samples,
           r->wb_p50, r->wb_p99, opt.p99_ms, r->wb_max, opt.max_ms,
           r->wb_error[0] ? "; error: " : "", r->wb_error);
    printf("  daemon peak:        PSS %.1f MiB (limit %.0f), RSS summed "
           "%.1f MiB, %d processes, %d threads\n", r->peak.pss_mib,
           opt.max_mib, r->peak.rss_mib, r->peak.procs, r->peak.threads);
    printf("  daemon exit on SIGTERM: %d\n", r->exit_status);
}

static void
usage(void)
{
    fprintf(stderr, "usage: stress -d BUILD_DIR [-s SECONDS] [-n CONNS] "
            "[-m MODE]... [-L MAX_MS] [-P P99_MS] [-M MIB]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *modes[4];
    int nmodes = 0, c, failed = 0;
    struct rlimit rl;
    struct result res;

    while ((c = getopt(argc, argv, "d:s:n:m:L:P:M:")) != -1) {
        switch (c) {
        case 'd': opt.build = optarg; break;
        case 's': opt.seconds = atoi(optarg); break;
        case 'n': opt.conns = atoi(optarg); break;
        case 'm': if (nmodes < 4) modes[nmodes++] = optarg; break;
        case 'L': opt.max_ms = atof(optarg); break;
        case 'P': opt.p99_ms = atof(optarg); break;
        case 'M': opt.max_mib = atof(optarg); break;
        default: usage();
        }
    }
    if (opt.build == NULL || opt.seconds < 5 || opt.seconds > 600 ||
        opt.conns < 1 || opt.conns > 20000)
        usage();
    if (nmodes == 0) {
        modes[nmodes++] = "threading";
        modes[nmodes++] = "forking";
    }
    signal(SIGPIPE, SIG_IGN);
    /* descriptors for both sides, the daemon inherits it */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = (rlim_t)opt.conns * 4 + 1024;

        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want &&
            geteuid() == 0)
            rl.rlim_max = want;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
                      ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
            fprintf(stderr, "stress: RLIMIT_NOFILE %llu, wanted %llu\n",
                    (unsigned long long)rl.rlim_cur,
                    (unsigned long long)want);
    }
    rng ^= (unsigned)getpid();
    for (int i = 0; i < nmodes; i++) {
        if (!run_mode(modes[i], &res))
            failed++;
        report(&res);
        fflush(stdout);
    }
    printf("\nstress: %d passed, %d failed\n", nmodes - failed, failed);
    return failed ? 1 : 0;
}
