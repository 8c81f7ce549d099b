/* loadgen.c: the benchmark's load generator: loopback only, time-bounded. */
/*
 * Usage: loadgen WORKLOAD TARGET [options]
 *   WORKLOAD  pingpong | connect | udp | stream | idle | fanout
 *   TARGET    tcp:127.0.0.1:PORT | tcp:[::1]:PORT | udp:HOST:PORT |
 *             unix:PATH | unixdgram:PATH        (loopback addresses only)
 *   -c C      concurrent connections / sockets (default 1)
 *   -d SECS   measured duration (default 2), after -w SECS of warm-up
 *   -s BYTES  message size (default 64)
 *   -n N      idle connections held open (idle)
 *   -C        idle: the probe connects, echoes and closes for each request
 *             (connect+echo latency) instead of ping-ponging on one
 *             connection (echo latency)
 *   -P P      idle: spread the N connections over P processes (this one
 *             and P-1 children), for N beyond one process's open-file
 *             limit (default: as few as that limit allows, 1 up to it)
 *   -m M      chat members (fanout: one sends, M-1 receive), -W W
 *             broadcasts in flight (default 4)
 *   -A TARGET fanout: every other member joins there instead (a second
 *             daemon sharing the room through Redis); the sender stays on
 *             TARGET, so half the deliveries cross Redis
 *   -T MS     per-request timeout (udp, default 200; fanout 3000)
 *   -p V      connect: each connection first sends a PROXY protocol header,
 *             version V (1: the text line, 2: the binary form), carrying
 *             the connection's own addresses, in the same write as the
 *             message (as a proxy does)
 *   -R        udp: any datagram back answers the socket's request (a
 *             server that does not echo: daytime, time)
 *   -S        after the window, print "#end" and wait for a line on stdin
 *             (at most 30 s) before closing, so a runner can sample the
 *             server while the load is still in place
 * Everything runs in one thread on one epoll loop (idle with -P > 1: each
 * child holds its share of the idle connections on its own loop).  "#start" and "#end" go
 * to stderr at the measured window's edges; the result is one JSON line on
 * stdout.  Every loop has a deadline: the whole run ends within about
 * warm-up + duration + setup limits (+30 s with -S).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXEV 512
#define RBUF (256 * 1024)
#define SETUP_INFLIGHT 64       /* unconfirmed connections at once */
#define WALK_PORT_LO 20000      /* connect: local ports walked, per source */
#define WALK_PORT_HI 60999
#define WALK_IPS 253            /* 127.0.0.2 .. 127.0.0.254 */
#define RING 4096               /* fanout: broadcasts remembered */
#define LINEMAX 512

enum kind { K_TCP, K_UDP, K_UNIX, K_UNIXDGRAM };
enum state { S_FREE, S_DIAL, S_WAIT, S_READY, S_DEAD };

struct target {
    enum kind kind;
    struct sockaddr_storage sa;
    socklen_t len;
    const char *text;
};

/* One socket, whatever the workload. */
struct conn {
    int fd;
    enum state state;
    uint32_t got, sent;         /* bytes of the current message */
    uint64_t t0;                /* when the current request started */
    uint64_t done;              /* requests completed */
    uint64_t seq;               /* udp: the sequence number awaited */
    int synced;                 /* fanout: saw the sync marker(s) */
    int heard1, heard2;         /* fanout: LGSYNC, LGSYNC2 (-A) seen */
    char *line;                 /* fanout: partial line */
    size_t linelen;
    unsigned char hdr[108];     /* connect -p: the PROXY header to send */
    uint32_t hdrlen, hsent;
};

/* Latency histogram: 32 linear steps per power of two (about 3 %). */
#define HBITS 5
#define HSUB (1 << HBITS)
#define HBUCKETS (64 * HSUB)
struct hist {
    uint64_t n, max, b[HBUCKETS];
};

static struct {
    const char *workload;
    int c, size, n, m, window, timeout_ms, sync, procs, reconnect, proxy;
    int any_reply;
    double dur, warm;
} opt = { .c = 1, .size = 64, .window = 4, .timeout_ms = -1, .dur = 2,
          .warm = -1 };
static int setup_inflight = SETUP_INFLIGHT;     /* this process's share */

static struct target tgt;
static struct target tgt2;      /* fanout -A: every other member's daemon */
static int have_tgt2;
static struct hist lat;
static char rbuf[RBUF], msg[RBUF];
static uint64_t w_start, w_end;         /* the measured window */
static int w_state;                     /* 0 before, 1 in, 2 after */
static struct rusage ru_start, ru_end;
static uint64_t errors;
static int ep;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int
hidx(uint64_t v)
{
    int e;

    if (v < 2 * HSUB)
        return (int)v;
    e = 63 - __builtin_clzll(v);
    return 2 * HSUB + (e - HBITS - 1) * HSUB +
           (int)((v >> (e - HBITS)) & (HSUB - 1));
}

static uint64_t
hval(int i)
{
    int j, e;

    if (i < 2 * HSUB)
        return (uint64_t)i;
    j = i - 2 * HSUB;
    e = j / HSUB + HBITS + 1;
    return ((uint64_t)(HSUB + j % HSUB) << (e - HBITS)) +
           (1ull << (e - HBITS)) / 2;
}

static void
hadd(struct hist *h, uint64_t v)
{
    h->b[hidx(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

/* Returns the p-quantile (0..1) in microseconds. */
static double
hpct(const struct hist *h, double p)
{
    uint64_t rank, cum = 0, v;
    int i;

    if (!h->n)
        return 0;
    rank = (uint64_t)ceil(p * h->n);
    if (rank < 1)
        rank = 1;
    for (i = 0; i < HBUCKETS; i++) {
        cum += h->b[i];
        if (cum >= rank) {
            v = hval(i);
            return (v > h->max ? h->max : v) / 1e3;
        }
    }
    return h->max / 1e3;
}

static int
in_window(uint64_t t)
{
    return t >= w_start && t < w_end;
}

/*
 * Moves the window's state along, printing the markers.  Returns 1 once
 * the window has closed.
 */
static int
clock_step(uint64_t now)
{
    if (w_state == 0 && now >= w_start) {
        getrusage(RUSAGE_SELF, &ru_start);
        fprintf(stderr, "#start\n");
        w_state = 1;
    }
    if (w_state == 1 && now >= w_end) {
        getrusage(RUSAGE_SELF, &ru_end);
        w_state = 2;
    }
    return w_state == 2;
}

/* Milliseconds to wait in epoll before the next window edge, at most cap. */
static int
clock_wait_ms(uint64_t now, int cap)
{
    uint64_t next = w_state == 0 ? w_start : w_end;
    int64_t ms = next > now ? (int64_t)((next - now) / 1000000) + 1 : 0;

    return ms < cap ? (int)ms : cap;
}

static void
window_open(double warm)
{
    w_start = now_ns() + (uint64_t)(warm * 1e9);
    w_end = w_start + (uint64_t)(opt.dur * 1e9);
    w_state = 0;
}

static double
client_cpu(void)
{
    double u = (ru_end.ru_utime.tv_sec - ru_start.ru_utime.tv_sec) +
               (ru_end.ru_utime.tv_usec - ru_start.ru_utime.tv_usec) / 1e6;
    double s = (ru_end.ru_stime.tv_sec - ru_start.ru_stime.tv_sec) +
               (ru_end.ru_stime.tv_usec - ru_start.ru_stime.tv_usec) / 1e6;

    return (u + s) / opt.dur;
}

/* After the window: tell the runner, and with -S wait for its go-ahead. */
static void
window_hold(void)
{
    struct pollfd p = { .fd = 0, .events = POLLIN };

    fprintf(stderr, "#end\n");
    if (!opt.sync)
        return;
    if (poll(&p, 1, 30000) > 0)
        (void)!read(0, rbuf, sizeof rbuf);
}

/* ---- output ------------------------------------------------------------ */

static char out[4096];
static size_t outlen;

static void
jout(const char *key, const char *fmt, ...)
{
    va_list ap;

    outlen += snprintf(out + outlen, sizeof out - outlen, "%s\"%s\": ",
                       outlen > 1 ? ", " : "", key);
    va_start(ap, fmt);
    outlen += vsnprintf(out + outlen, sizeof out - outlen, fmt, ap);
    va_end(ap);
}

static void
jbegin(void)
{
    outlen = snprintf(out, sizeof out, "{");
    jout("workload", "\"%s\"", opt.workload);
    jout("target", "\"%s\"", tgt.text);
    jout("c", "%d", opt.c);
    jout("duration", "%.3f", opt.dur);
}

static void
jlatency(const struct hist *h)
{
    jout("p50_us", "%.1f", hpct(h, 0.50));
    jout("p90_us", "%.1f", hpct(h, 0.90));
    jout("p99_us", "%.1f", hpct(h, 0.99));
    jout("max_us", "%.1f", h->max / 1e3);
}

static void
jend(void)
{
    jout("errors", "%llu", (unsigned long long)errors);
    jout("client_cpu", "%.3f", client_cpu());
    snprintf(out + outlen, sizeof out - outlen, "}");
    puts(out);
    fflush(stdout);
}

/* ---- addresses and dialing --------------------------------------------- */

static void
target_parse(const char *s)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&tgt.sa;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&tgt.sa;
    struct sockaddr_un *sun = (struct sockaddr_un *)&tgt.sa;
    char host[128];
    const char *rest, *colon;
    size_t hl;

    tgt.text = s;
    if (!strncmp(s, "unix:", 5) || !strncmp(s, "unixdgram:", 10)) {
        tgt.kind = s[4] == ':' ? K_UNIX : K_UNIXDGRAM;
        rest = strchr(s, ':') + 1;
        sun->sun_family = AF_UNIX;
        if (strlen(rest) >= sizeof sun->sun_path)
            die("path too long: %s", rest);
        strcpy(sun->sun_path, rest);
        tgt.len = sizeof *sun;
        return;
    }
    if (!strncmp(s, "tcp:", 4))
        tgt.kind = K_TCP;
    else if (!strncmp(s, "udp:", 4))
        tgt.kind = K_UDP;
    else
        die("bad target %s (tcp:HOST:PORT, udp:HOST:PORT, unix:PATH, "
            "unixdgram:PATH)", s);
    rest = s + 4;
    colon = strrchr(rest, ':');
    if (!colon)
        die("bad target %s: no port", s);
    hl = colon - rest;
    if (rest[0] == '[' && hl >= 2) {
        rest++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        die("bad host in %s", s);
    memcpy(host, rest, hl);
    host[hl] = 0;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
            die("%s: loopback addresses only", host);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(atoi(colon + 1));
        tgt.len = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
            die("%s: loopback addresses only", host);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(atoi(colon + 1));
        tgt.len = sizeof *sin6;
    } else {
        die("bad host %s: a numeric loopback address", host);
    }
}

/*
 * connect, idle and fanout: the client's local (address, port) is chosen
 * here, walking 127.0.0.2-254 x ports 20000-60999 from a random start, so
 * the kernel's ephemeral-port search over TIME_WAIT sockets never runs.  A tuple still
 * in TIME_WAIT fails with EADDRINUSE or EADDRNOTAVAIL and is skipped.
 */
static uint64_t walk_pos;

static int
walk_bind_connect(int fd)
{
    const uint64_t nports = WALK_PORT_HI - WALK_PORT_LO + 1;
    struct sockaddr_in src = { .sin_family = AF_INET };
    int tries, one = 1;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    for (tries = 0; tries < 4096; tries++) {
        uint64_t pos = walk_pos++ % (nports * WALK_IPS);
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(pos / nports));
        src.sin_port = htons(WALK_PORT_LO + pos % nports);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            if (errno == EADDRINUSE)
                continue;
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&tgt.sa, tgt.len) == 0 ||
            errno == EINPROGRESS)
            return 0;
        return -1;              /* bound: the caller needs a new socket */
    }
    errno = EADDRNOTAVAIL;
    return -1;
}

/*
 * Starts a non-blocking connection.  Returns the descriptor (connected or
 * in progress) or -1: errno EAGAIN means "try again later" (a full unix
 * backlog, a TIME_WAIT tuple).
 */
static int
dial_start(int walk)
{
    int type = tgt.kind == K_UDP || tgt.kind == K_UNIXDGRAM ? SOCK_DGRAM
                                                             : SOCK_STREAM;
    int fd = socket(tgt.sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (walk && tgt.kind == K_TCP && tgt.sa.ss_family == AF_INET) {
        if (walk_bind_connect(fd) == 0)
            return fd;
    } else if (connect(fd, (struct sockaddr *)&tgt.sa, tgt.len) == 0 ||
               errno == EINPROGRESS) {
        return fd;
    }
    if (errno == EADDRNOTAVAIL || errno == EADDRINUSE)
        errno = EAGAIN;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/*
 * Dials and waits up to timeout_ms for the connection; returns fd or -1.
 * It walks source tuples too (stream, idle's probe): a port the walk has
 * bound explicitly is skipped by the kernel's ephemeral-port search while
 * any socket, TIME_WAIT included, holds it, so after a connect run or an
 * idle setup an unbound connect() to 127.0.0.1 can find no port at all.
 */
static int
dial_wait(int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
    struct pollfd p = { .events = POLLOUT };
    int err = 0;
    socklen_t el = sizeof err;

    while (now_ns() < deadline) {
        p.fd = dial_start(1);
        if (p.fd < 0) {
            if (errno != EAGAIN)
                return -1;
            usleep(1000);
            continue;
        }
        if (poll(&p, 1, (int)((deadline - now_ns()) / 1000000) + 1) == 1 &&
            getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && !err)
            return p.fd;
        close(p.fd);
        return -1;
    }
    return -1;
}

static void
ep_add(struct conn *c, unsigned events)
{
    struct epoll_event e = { .events = events, .data.ptr = c };

    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void
ep_mod(struct conn *c, unsigned events)
{
    struct epoll_event e = { .events = events, .data.ptr = c };

    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void
conn_kill(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);       /* also leaves the epoll set */
    c->fd = -1;
    c->state = S_DEAD;
}

/*
 * Writes the rest of the current message.  Returns 1 when it is all out,
 * 0 when the socket is full (EPOLLOUT is then wanted), -1 on error.
 */
static int
conn_send(struct conn *c)
{
    while (c->hsent < c->hdrlen) {      /* the header, then the message */
        struct iovec iov[2] = {
            { c->hdr + c->hsent, c->hdrlen - c->hsent },
            { msg + c->sent, opt.size - c->sent },
        };
        ssize_t n = writev(c->fd, iov, 2);
        if (n < 0)
            return errno == EAGAIN || errno == ENOTCONN ? 0 : -1;
        if ((size_t)n <= iov[0].iov_len) {
            c->hsent += n;
        } else {
            c->sent += n - (c->hdrlen - c->hsent);
            c->hsent = c->hdrlen;
        }
    }
    while (c->sent < (uint32_t)opt.size) {
        ssize_t n = write(c->fd, msg + c->sent, opt.size - c->sent);
        if (n < 0)
            return errno == EAGAIN || errno == ENOTCONN ? 0 : -1;
        c->sent += n;
    }
    return 1;
}

/* ---- pingpong (and idle's probe) --------------------------------------- */

typedef int (*confirm_fn)(struct conn *, ssize_t n, uint64_t now);
static int setup_conns(struct conn *, int, uint64_t, confirm_fn,
                       int (*)(struct conn *));
static int pp_confirm(struct conn *, ssize_t, uint64_t);
static int pp_ready(struct conn *);

/* Starts the next request on c; returns -1 when the connection failed. */
static int
pp_start(struct conn *c, uint64_t now)
{
    int r;

    c->t0 = now;
    c->got = c->sent = 0;
    r = conn_send(c);
    if (r < 0)
        return -1;
    ep_mod(c, r ? EPOLLIN : EPOLLIN | EPOLLOUT);
    return 0;
}

/* Handles an event on a pingpong connection. */
static void
pp_event(struct conn *c, unsigned ev)
{
    uint64_t now;
    ssize_t n;
    int r;

    if (c->sent < (uint32_t)opt.size && (ev & EPOLLOUT)) {
        r = conn_send(c);
        if (r < 0)
            goto fail;
        if (r)
            ep_mod(c, EPOLLIN);
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    n = read(c->fd, rbuf, opt.size - c->got);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0)
        goto fail;
    c->got += n;
    if (c->got < (uint32_t)opt.size)
        return;
    now = now_ns();
    if (in_window(now)) {
        hadd(&lat, now - c->t0);
        c->done++;
    }
    if (pp_start(c, now) < 0)
        goto fail;
    return;
fail:
    errors++;
    conn_kill(c);
}

/* Runs ping-pong on conns[0..n) until the window closes; returns requests. */
static uint64_t
pp_loop(struct conn *conns, int n, struct conn *idle_base, int nidle,
        uint64_t *dropped)
{
    struct epoll_event ev[MAXEV];
    uint64_t total = 0, now = now_ns();
    int i, k;

    for (i = 0; i < n; i++)
        if (conns[i].state == S_READY && pp_start(&conns[i], now) < 0) {
            errors++;
            conn_kill(&conns[i]);
        }
    while (!clock_step(now_ns())) {
        k = epoll_wait(ep, ev, MAXEV, clock_wait_ms(now_ns(), 100));
        for (i = 0; i < k; i++) {
            struct conn *c = ev[i].data.ptr;
            if (idle_base && c >= idle_base && c < idle_base + nidle) {
                /* an idle connection spoke or closed: it is no longer idle */
                if (read(c->fd, rbuf, sizeof rbuf) <= 0) {
                    (*dropped)++;
                    conn_kill(c);
                }
                continue;
            }
            pp_event(c, ev[i].events);
        }
    }
    for (i = 0; i < n; i++)
        total += conns[i].done;
    return total;
}

static void
run_pingpong(void)
{
    struct conn *conns = calloc(opt.c, sizeof *conns);
    uint64_t total;
    int i, ok, stalled = 0;

    /* a server that stops accepting (max_children) leaves the rest out */
    ok = setup_conns(conns, opt.c, now_ns() + 10000000000u, pp_confirm,
                     pp_ready);
    window_open(opt.warm);
    total = pp_loop(conns, opt.c, NULL, 0, NULL);
    for (i = 0; i < opt.c; i++)
        if (!conns[i].done)
            stalled++;
    window_hold();
    jbegin();
    jout("connected", "%d", ok);
    jout("requests", "%llu", (unsigned long long)total);
    jout("rps", "%.1f", total / opt.dur);
    jlatency(&lat);
    jout("stalled", "%d", stalled);
    jend();
}

/* ---- connect ------------------------------------------------------------ */

/* -p: the PROXY header for c's connection, from its own addresses (an
 * IPv4 target: the walk binds 127.0.0.x). */
static void
proxy_header(struct conn *c)
{
    static const unsigned char sig[12] = {
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54,
        0x0a,
    };
    struct sockaddr_in me = { .sin_family = AF_INET };
    const struct sockaddr_in *to = (const struct sockaddr_in *)&tgt.sa;
    socklen_t len = sizeof me;
    char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
    int n;

    c->hsent = c->hdrlen = 0;
    if (!opt.proxy)
        return;
    if (tgt.sa.ss_family != AF_INET ||
        getsockname(c->fd, (struct sockaddr *)&me, &len) < 0)
        die("-p: needs a tcp:127.x.x.x target");
    if (opt.proxy == 1) {
        inet_ntop(AF_INET, &me.sin_addr, a, sizeof a);
        inet_ntop(AF_INET, &to->sin_addr, b, sizeof b);
        n = snprintf((char *)c->hdr, sizeof c->hdr, "PROXY TCP4 %s %s %u "
                     "%u\r\n", a, b, ntohs(me.sin_port), ntohs(to->sin_port));
        c->hdrlen = (uint32_t)n;
        return;
    }
    memcpy(c->hdr, sig, 12);
    c->hdr[12] = 0x21;                  /* v2, PROXY */
    c->hdr[13] = 0x11;                  /* TCP over IPv4 */
    c->hdr[14] = 0;
    c->hdr[15] = 12;
    memcpy(c->hdr + 16, &me.sin_addr, 4);
    memcpy(c->hdr + 20, &to->sin_addr, 4);
    memcpy(c->hdr + 24, &me.sin_port, 2);
    memcpy(c->hdr + 26, &to->sin_port, 2);
    c->hdrlen = 28;
}

/* Opens slot c's next connection and sends; returns 0, or -1 to retry. */
static int
cn_start(struct conn *c, uint64_t now)
{
    int r;

    c->fd = dial_start(1);
    if (c->fd < 0) {
        if (errno != EAGAIN)
            errors++;
        c->state = S_FREE;
        return -1;
    }
    c->t0 = now;
    c->got = c->sent = 0;
    c->state = S_WAIT;
    proxy_header(c);
    r = conn_send(c);
    if (r < 0) {
        errors++;
        close(c->fd);
        c->fd = -1;
        c->state = S_FREE;
        return -1;
    }
    ep_add(c, r ? EPOLLIN : EPOLLOUT);
    return 0;
}

static void
cn_event(struct conn *c, unsigned ev, uint64_t *total)
{
    uint64_t now;
    ssize_t n;
    int r;

    if (c->sent < (uint32_t)opt.size) {
        r = conn_send(c);
        if (r < 0 || (r == 0 && (ev & (EPOLLERR | EPOLLHUP))))
            goto fail;
        if (r)
            ep_mod(c, EPOLLIN);
        return;
    }
    n = read(c->fd, rbuf, opt.size - c->got);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0)
        goto fail;
    c->got += n;
    if (c->got < (uint32_t)opt.size)
        return;
    close(c->fd);
    c->fd = -1;
    now = now_ns();
    if (in_window(now)) {
        hadd(&lat, now - c->t0);
        (*total)++;
    }
    cn_start(c, now);
    return;
fail:
    errors++;
    close(c->fd);
    c->fd = -1;
    c->state = S_FREE;
}

/*
 * idle -C: connect C=1 while the idle connections are held; an idle one
 * that speaks or closes is dropped.  Returns the connections completed in
 * the window.
 */
static uint64_t
cn_idle_loop(struct conn *slot, struct conn *idle_base, int nidle,
             uint64_t *dropped)
{
    struct epoll_event ev[MAXEV];
    uint64_t total = 0;
    int i, k, pending;

    slot->fd = -1;
    slot->state = S_FREE;
    cn_start(slot, now_ns());
    while (!clock_step(now_ns())) {
        pending = slot->state == S_FREE && cn_start(slot, now_ns()) < 0;
        k = epoll_wait(ep, ev, MAXEV,
                       clock_wait_ms(now_ns(), pending ? 1 : 100));
        for (i = 0; i < k; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c >= idle_base && c < idle_base + nidle) {
                if (read(c->fd, rbuf, sizeof rbuf) <= 0) {
                    (*dropped)++;
                    conn_kill(c);
                }
                continue;
            }
            cn_event(c, ev[i].events, &total);
        }
    }
    return total;
}

static void
run_connect(void)
{
    struct conn *slots = calloc(opt.c, sizeof *slots);
    struct epoll_event ev[MAXEV];
    uint64_t total = 0, now;
    int i, k, pending;

    window_open(opt.warm);
    now = now_ns();
    for (i = 0; i < opt.c; i++)
        cn_start(&slots[i], now);
    while (!clock_step(now_ns())) {
        pending = 0;
        for (i = 0; i < opt.c; i++)
            if (slots[i].state == S_FREE)
                pending += cn_start(&slots[i], now_ns()) < 0;
        k = epoll_wait(ep, ev, MAXEV,
                       clock_wait_ms(now_ns(), pending ? 1 : 100));
        for (i = 0; i < k; i++)
            cn_event(ev[i].data.ptr, ev[i].events, &total);
    }
    window_hold();
    jbegin();
    jout("connections", "%llu", (unsigned long long)total);
    jout("cps", "%.1f", total / opt.dur);
    jlatency(&lat);
    jend();
}

/* ---- udp ---------------------------------------------------------------- */

static char dgram_dir[64];

/* A datagram socket, bound (unix: to a temporary path) and connected. */
static int
dgram_open(int i)
{
    struct sockaddr_un me = { .sun_family = AF_UNIX };
    int fd = socket(tgt.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -1;
    if (tgt.kind == K_UNIXDGRAM) {
        if (!dgram_dir[0]) {
            strcpy(dgram_dir, "/tmp/loadgen.XXXXXX");
            if (!mkdtemp(dgram_dir))
                die("mkdtemp: %s", strerror(errno));
        }
        snprintf(me.sun_path, sizeof me.sun_path, "%s/c%d", dgram_dir, i);
        if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0)
            die("bind %s: %s", me.sun_path, strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&tgt.sa, tgt.len) < 0)
        die("connect %s: %s", tgt.text, strerror(errno));
    return fd;
}

static void
dgram_cleanup(void)
{
    char p[128];
    int i;

    if (!dgram_dir[0])
        return;
    for (i = 0; i < opt.c; i++) {
        snprintf(p, sizeof p, "%s/c%d", dgram_dir, i);
        unlink(p);
    }
    rmdir(dgram_dir);
}

/*
 * Sends c's next datagram, its sequence number leading the payload.  A full
 * queue at the server (unix datagrams queue only max_dgram_qlen) leaves the
 * datagram pending (c->sent = 0) to be retried, not lost.
 */
static void
udp_send(struct conn *c, uint64_t now, uint64_t *sent, int *pending)
{
    c->seq++;
    memcpy(msg, &c->seq, sizeof c->seq);
    c->t0 = now;
    c->sent = 1;
    if (send(c->fd, msg, opt.size, 0) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) {
            c->sent = 0;
            c->seq--;
            (*pending)++;
            return;
        }
        if (errno != ECONNREFUSED)
            errors++;
    }
    if (in_window(now))
        (*sent)++;
}

static void
run_udp(void)
{
    struct conn *c, *socks = calloc(opt.c, sizeof *socks);
    struct epoll_event ev[MAXEV];
    uint64_t sent = 0, recvd = 0, lost = 0, late = 0, now, seq;
    uint64_t tmo = (uint64_t)(opt.timeout_ms < 0 ? 200 : opt.timeout_ms) *
                   1000000;
    uint64_t next_scan = 0;
    int i, k, pending = 0;
    ssize_t n;

    if (opt.size < 8)
        opt.size = 8;
    for (i = 0; i < opt.c; i++) {
        socks[i].fd = dgram_open(i);
        socks[i].state = S_READY;
        ep_add(&socks[i], EPOLLIN);
    }
    window_open(opt.warm);
    now = now_ns();
    for (i = 0; i < opt.c; i++)
        udp_send(&socks[i], now, &sent, &pending);
    while (!clock_step(now = now_ns())) {
        if (pending || now >= next_scan) {
            int again = 0;
            for (i = 0; i < opt.c; i++) {
                c = &socks[i];
                if (!c->sent)           /* refused by a full queue: retry */
                    udp_send(c, now, &sent, &again);
                else if (now - c->t0 >= tmo) {  /* lost: count, move on */
                    if (in_window(c->t0))
                        lost++;
                    udp_send(c, now, &sent, &again);
                }
            }
            pending = again;
            if (now >= next_scan)
                next_scan = now + tmo / 4;
        }
        k = epoll_wait(ep, ev, MAXEV, clock_wait_ms(now, pending ? 1 : 5));
        for (i = 0; i < k; i++) {
            c = ev[i].data.ptr;
            while ((n = recv(c->fd, rbuf, sizeof rbuf, 0)) >= 0) {
                if (opt.any_reply) {
                    if (!c->sent) {
                        late++;
                        continue;
                    }
                } else {
                    if (n < 8)
                        continue;
                    memcpy(&seq, rbuf, sizeof seq);
                    if (seq != c->seq || !c->sent) {
                        late++;
                        continue;
                    }
                }
                now = now_ns();
                if (in_window(c->t0)) {
                    recvd++;
                    if (in_window(now))
                        hadd(&lat, now - c->t0);
                }
                udp_send(c, now, &sent, &pending);
            }
        }
    }
    window_hold();
    dgram_cleanup();
    jbegin();
    jout("sent", "%llu", (unsigned long long)sent);
    jout("received", "%llu", (unsigned long long)recvd);
    jout("rps", "%.1f", lat.n / opt.dur);
    jout("lost", "%llu", (unsigned long long)lost);
    jout("late", "%llu", (unsigned long long)late);
    jout("loss_pct", "%.3f", sent ? 100.0 * lost / sent : 0.0);
    jlatency(&lat);
    jend();
}

/* ---- stream ------------------------------------------------------------- */

static void
run_stream(void)
{
    struct conn *c, *conns = calloc(opt.c, sizeof *conns);
    struct epoll_event ev[MAXEV];
    uint64_t rx = 0, tx = 0, now;
    int i, k, ok = 0;
    ssize_t n;

    if (opt.size == 64)
        opt.size = 65536;
    for (i = 0; i < opt.c; i++) {
        conns[i].fd = dial_wait(5000);
        if (conns[i].fd < 0) {
            errors++;
            continue;
        }
        ep_add(&conns[i], EPOLLIN | EPOLLOUT);
        ok++;
    }
    window_open(opt.warm);
    while (!clock_step(now_ns())) {
        k = epoll_wait(ep, ev, MAXEV, clock_wait_ms(now_ns(), 100));
        now = now_ns();
        for (i = 0; i < k; i++) {
            c = ev[i].data.ptr;
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                n = read(c->fd, rbuf, sizeof rbuf);
                if (n == 0 || (n < 0 && errno != EAGAIN)) {
                    errors++;
                    conn_kill(c);
                    continue;
                }
                if (n > 0 && in_window(now))
                    rx += n;
            }
            if (ev[i].events & EPOLLOUT) {
                n = write(c->fd, msg, opt.size);
                if (n > 0 && in_window(now))
                    tx += n;
            }
        }
    }
    window_hold();
    jbegin();
    jout("connected", "%d", ok);
    jout("write_size", "%d", opt.size);
    jout("rx_bytes", "%llu", (unsigned long long)rx);
    jout("tx_bytes", "%llu", (unsigned long long)tx);
    jout("mbps", "%.1f", rx / 1e6 / opt.dur);
    jend();
}

/* ---- connection setup for idle and fanout ------------------------------- */

/*
 * Opens conns[0..n) with at most SETUP_INFLIGHT unconfirmed at a time (over
 * all of idle's processes), so a listen backlog of 128 never overflows.  Once established, start() runs
 * and may confirm it at once (returning 1); otherwise it is confirmed when
 * confirm() says so (after reading what the server sent, or on a timer).
 * Returns how many were confirmed before the deadline, or before 2 s went
 * by without one more.
 */
static int
setup_conns(struct conn *conns, int n, uint64_t deadline, confirm_fn confirm,
            int (*start)(struct conn *))
{
    struct epoll_event ev[MAXEV];
    int next = 0, inflight = 0, ready = 0, failed = 0, i, k, last_ready = 0;
    uint64_t now, progress = now_ns();
    ssize_t r;

    for (i = 0; i < n; i++)
        conns[i].fd = -1;
    while (ready + failed < n && (now = now_ns()) < deadline) {
        if (ready != last_ready) {
            last_ready = ready;
            progress = now;
        } else if (now - progress > 2000000000u) {
            fprintf(stderr, "loadgen: setup stalled at %d connections\n",
                    ready);
            break;      /* the server takes no more (a max_children limit) */
        }
        while (inflight < setup_inflight && next < n) {
            struct conn *c = &conns[next];
            if (have_tgt2 && next % 2 == 1) {   /* the other daemon */
                struct target save = tgt;
                int e;

                tgt = tgt2;
                c->fd = dial_start(1);
                e = errno;
                tgt = save;
                errno = e;
            } else {
                c->fd = dial_start(1);
            }
            if (c->fd < 0) {
                if (errno != EAGAIN) {
                    errors++;
                    failed++;
                    next++;
                }
                break;
            }
            c->state = S_DIAL;
            c->t0 = now;
            ep_add(c, EPOLLIN | EPOLLOUT);
            inflight++;
            next++;
        }
        k = epoll_wait(ep, ev, MAXEV, 5);
        now = now_ns();
        for (i = 0; i < k; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c->state == S_DIAL && (ev[i].events & EPOLLOUT)) {
                c->state = S_WAIT;
                c->t0 = now;
                ep_mod(c, EPOLLIN);
                r = start(c);
                if (r < 0)
                    goto fail;
                if (r > 0) {
                    c->state = S_READY;
                    inflight--;
                    ready++;
                }
                continue;
            }
            if (!(ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            r = read(c->fd, rbuf, sizeof rbuf);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0)
                goto fail;
            if (c->state == S_READY)
                continue;       /* chatter after joining: not needed yet */
            if (confirm(c, r, now)) {
                c->state = S_READY;
                inflight--;
                ready++;
            }
            continue;
fail:
            if (c->state != S_READY)
                inflight--;
            else
                ready--;
            errors++;
            failed++;
            conn_kill(c);
        }
        /* timers: a connection waiting too long confirms by timeout */
        for (i = 0; i < next; i++) {
            struct conn *c = &conns[i];
            if (c->state == S_WAIT && confirm(c, -1, now)) {
                c->state = S_READY;
                inflight--;
                ready++;
            }
        }
    }
    for (i = 0; i < n; i++)     /* the unfinished are given up */
        if (conns[i].state != S_READY && conns[i].fd >= 0) {
            errors++;
            conn_kill(&conns[i]);
        }
    return ready;
}

/* pingpong: a connection is ready as soon as it is established. */
static int
pp_ready(struct conn *c)
{
    (void)c;
    return 1;
}

static int
pp_confirm(struct conn *c, ssize_t n, uint64_t now)
{
    (void)c;
    (void)n;
    (void)now;
    return 1;
}

/* idle: each connection sends one byte and is confirmed by its echo. */
static int
idle_start(struct conn *c)
{
    return write(c->fd, "i", 1) == 1 ? 0 : -1;
}

static int
idle_confirm(struct conn *c, ssize_t n, uint64_t now)
{
    (void)c;
    (void)now;
    return n > 0;
}

/*
 * idle with -P > 1: a child holds its share of the idle connections until
 * the parent's run is over (go_fd reads EOF: the parent closed it or died),
 * and reports on rep_fd "HELD ERRORS" once set up, then "DROPPED ERRORS".
 * Bounded: it gives up waiting after the parent's whole run could have
 * ended, and the kernel kills it if the parent dies first.
 */
static void
idle_child(int share, int rep_fd, int go_fd, pid_t parent)
{
    struct conn *conns = calloc(share, sizeof *conns);
    struct epoll_event ev[MAXEV], e = { .events = EPOLLIN, .data.ptr = NULL };
    uint64_t t0 = now_ns(), dropped = 0, deadline;
    int held, i, k, done = 0;
    char line[64];

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    close(ep);                  /* the parent's loop: this child needs its own */
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || !conns)
        _exit(1);
    walk_pos = ((uint64_t)getpid() * 2654435761u + now_ns() / 1000) %
               ((uint64_t)(WALK_PORT_HI - WALK_PORT_LO + 1) * WALK_IPS);
    held = setup_conns(conns, share,
                       t0 + (uint64_t)(10 + share / 500) * 1000000000u,
                       idle_confirm, idle_start);
    k = snprintf(line, sizeof line, "%d %llu\n", held,
                 (unsigned long long)errors);
    if (write(rep_fd, line, k) != k)
        _exit(1);
    if (epoll_ctl(ep, EPOLL_CTL_ADD, go_fd, &e) < 0)
        _exit(1);
    deadline = now_ns() + (uint64_t)((opt.warm + opt.dur + 120) * 1e9);
    while (!done && now_ns() < deadline) {
        k = epoll_wait(ep, ev, MAXEV, 100);
        for (i = 0; i < k; i++) {
            struct conn *c = ev[i].data.ptr;
            if (!c) {
                done = 1;       /* EOF or anything: the run is over */
                continue;
            }
            if (read(c->fd, rbuf, sizeof rbuf) <= 0) {
                dropped++;
                conn_kill(c);
            }
        }
    }
    k = snprintf(line, sizeof line, "%llu %llu\n",
                 (unsigned long long)dropped, (unsigned long long)errors);
    (void)!write(rep_fd, line, k);
    _exit(0);
}

/* Reads one line "A B" from fd within timeout_ms; returns 0 or -1. */
static int
read_report(int fd, int timeout_ms, unsigned long long *a,
            unsigned long long *b)
{
    char line[64];
    size_t len = 0;
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    ssize_t r;

    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        uint64_t now = now_ns();
        if (now >= deadline ||
            poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
            return -1;
        r = read(fd, line + len, 1);   /* one byte: the next line stays */
        if (r <= 0)
            return -1;
        len += r;
    }
    line[len] = 0;
    return sscanf(line, "%llu %llu", a, b) == 2 ? 0 : -1;
}

static void
run_idle(void)
{
    struct conn *conns, *probe;
    uint64_t t0 = now_ns(), dropped = 0, total;
    unsigned long long a, b;
    double setup_s;
    int held, i, mine, go[2], *rep;
    pid_t *kids;

    /* this process's share is the first, and the largest */
    mine = opt.n / opt.procs + (opt.n % opt.procs > 0);
    kids = calloc(opt.procs, sizeof *kids);
    rep = calloc(opt.procs, sizeof *rep);
    if (!kids || !rep || pipe(go) < 0)
        die("idle: %s", strerror(errno));
    setup_inflight = SETUP_INFLIGHT / opt.procs;
    if (setup_inflight < 1)
        setup_inflight = 1;
    fflush(stdout);
    for (i = 1; i < opt.procs; i++) {
        int p[2], share = opt.n / opt.procs + (i < opt.n % opt.procs);
        pid_t parent = getpid();
        if (pipe(p) < 0)
            die("idle: pipe: %s", strerror(errno));
        kids[i] = fork();
        if (kids[i] < 0)
            die("idle: fork: %s", strerror(errno));
        if (kids[i] == 0) {
            close(go[1]);
            close(p[0]);
            idle_child(share, p[1], go[0], parent);
        }
        close(p[1]);
        rep[i] = p[0];
    }
    close(go[0]);
    conns = calloc(mine + 1, sizeof *conns);
    held = setup_conns(conns, mine,
                       t0 + (uint64_t)(10 + mine / 500) * 1000000000u,
                       idle_confirm, idle_start);
    for (i = 1; i < opt.procs; i++) {
        if (read_report(rep[i], 1000 * (15 + opt.n / opt.procs / 500),
                        &a, &b) < 0) {
            fprintf(stderr, "loadgen: idle process %d did not report\n", i);
            errors++;
            continue;
        }
        held += (int)a;
        errors += b;
    }
    setup_s = (now_ns() - t0) / 1e9;
    fprintf(stderr, "#held %d in %.2fs by %d process%s\n", held, setup_s,
            opt.procs, opt.procs > 1 ? "es" : "");
    probe = &conns[mine];
    if (opt.reconnect) {
        window_open(opt.warm);
        total = cn_idle_loop(probe, conns, mine, &dropped);
    } else {
        probe->fd = dial_wait(5000);
        if (probe->fd < 0) {
            errors++;
            probe->state = S_DEAD;
        } else {
            probe->state = S_READY;
            ep_add(probe, EPOLLIN);
        }
        window_open(opt.warm);
        total = pp_loop(probe, 1, conns, mine, &dropped);
    }
    window_hold();
    /* the run is over: the children let go and report what they saw */
    close(go[1]);
    for (i = 1; i < opt.procs; i++) {
        if (read_report(rep[i], 5000, &a, &b) == 0) {
            dropped += a;
            errors += b;
        }
        close(rep[i]);
        if (waitpid(kids[i], NULL, WNOHANG) == 0) {
            usleep(100000);
            if (waitpid(kids[i], NULL, WNOHANG) == 0) {
                kill(kids[i], SIGKILL);
                waitpid(kids[i], NULL, 0);
            }
        }
    }
    jbegin();
    jout("n", "%d", opt.n);
    jout("procs", "%d", opt.procs);
    jout("probe", "\"%s\"", opt.reconnect ? "connect+echo" : "echo");
    jout("held", "%d", held);
    jout("setup_s", "%.2f", setup_s);
    jout("dropped", "%llu", (unsigned long long)dropped);
    jout("requests", "%llu", (unsigned long long)total);
    jout("rps", "%.1f", total / opt.dur);
    jlatency(&lat);
    jend();
    for (i = 0; i <= mine; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
}

/* ---- fanout (chat) ------------------------------------------------------ */

struct bcast {
    uint64_t seq, t0;
    int delivered, open;
};

static struct bcast ring[RING];
static struct conn *fan;        /* the sender at 0, members 1..m-1 */
static int synced;
static uint64_t delivered, lost_deliveries, completed, outstanding;

/* Feeds received bytes to c's line buffer and acts on whole lines. */
static void
fan_lines(struct conn *c, const char *p, size_t n, uint64_t now)
{
    const char *nl, *m;
    uint64_t seq;

    while (n > 0) {
        nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;
        if (c->linelen + take >= LINEMAX)
            c->linelen = 0;     /* a line too long for us: not ours */
        if (take >= LINEMAX) {
            p += take;
            n -= take;
            continue;
        }
        memcpy(c->line + c->linelen, p, take);
        c->linelen += take;
        p += take;
        n -= take;
        if (!nl)
            break;
        c->line[c->linelen] = 0;
        c->linelen = 0;
        if (c == &fan[0])
            continue;           /* the sender ignores what it hears */
        if (strstr(c->line, "LGSYNC2"))
            c->heard2 = 1;
        else if (strstr(c->line, "LGSYNC"))
            c->heard1 = 1;
        /* with -A, also the marker of a member of the other daemon: it
         * comes behind whatever that daemon relayed before (the joins'
         * notices), so the measurement starts on a quiet room */
        if (!c->synced && c->heard1 && (!have_tgt2 || c->heard2)) {
            c->synced = 1;
            synced++;
        }
        m = strstr(c->line, "LGM ");
        if (!m || !c->synced)
            continue;
        seq = strtoull(m + 4, NULL, 10);
        struct bcast *b = &ring[seq % RING];
        if (b->seq != seq || !b->open)
            continue;
        b->delivered++;
        delivered++;
        if (in_window(now))
            hadd(&lat, now - b->t0);
        if (b->delivered >= synced) {
            b->open = 0;
            outstanding--;
            if (in_window(now))
                completed++;
        }
    }
}

/* The prompt arrives first: anything read, or 1 s of silence, will do. */
static int
fan_confirm(struct conn *c, ssize_t n, uint64_t now)
{
    char nick[32];
    int len;

    if (n < 0 && now - c->t0 < 1000000000u)
        return 0;
    len = snprintf(nick, sizeof nick, "lg%d\n", (int)(c - fan));
    if (write(c->fd, nick, len) != len)
        errors++;
    return 1;
}

static int
fan_start(struct conn *c)
{
    (void)c;
    return 0;
}

static int
fan_say_from(struct conn *c, const char *line)
{
    size_t len = strlen(line);
    ssize_t w = write(c->fd, line, len);

    if (w == (ssize_t)len)
        return 0;
    errors++;
    return -1;
}

static int
fan_say(const char *line)
{
    return fan_say_from(&fan[0], line);
}

/* Reads whatever arrived on c and feeds the lines. */
static void
fan_read(struct conn *c, uint64_t now)
{
    ssize_t n;

    while ((n = read(c->fd, rbuf, sizeof rbuf)) > 0)
        fan_lines(c, rbuf, n, now);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        if (c->synced)
            synced--;
        conn_kill(c);
        errors++;
    }
}

static void
run_fanout(void)
{
    struct epoll_event ev[MAXEV];
    uint64_t t0 = now_ns(), seq = 0, now, next_sync = 0, deadline;
    uint64_t tmo = (uint64_t)(opt.timeout_ms < 0 ? 3000 : opt.timeout_ms) *
                   1000000;
    int joined, i, k;
    double setup_s;
    char line[64];

    fan = calloc(opt.m, sizeof *fan);
    for (i = 0; i < opt.m; i++)
        fan[i].line = malloc(LINEMAX);
    joined = setup_conns(fan, opt.m,
                         t0 + (uint64_t)(10 + opt.m / 50) * 1000000000u,
                         fan_confirm, fan_start);
    for (i = 0; i < opt.m; i++)         /* forget what came before */
        fan[i].linelen = 0;
    if (fan[0].state != S_READY)
        die("fanout: the sender could not join");
    /* sync: repeat a marker until every member has heard it */
    deadline = now_ns() + (uint64_t)(10 + opt.m / 100) * 1000000000u;
    while (synced < joined - 1 && (now = now_ns()) < deadline) {
        if (now >= next_sync) {
            fan_say("LGSYNC\n");
            if (have_tgt2 && opt.m > 1 && fan[1].state == S_READY) {
                fan[1].heard2 = 1;      /* it may not hear its own */
                (void)fan_say_from(&fan[1], "LGSYNC2\n");
            }
            next_sync = now + 250000000u;
        }
        k = epoll_wait(ep, ev, MAXEV, 10);
        for (i = 0; i < k; i++)
            fan_read(ev[i].data.ptr, now_ns());
    }
    setup_s = (now_ns() - t0) / 1e9;
    fprintf(stderr, "#joined %d synced %d in %.2fs\n", joined - 1, synced,
            setup_s);
    window_open(opt.warm);
    while (!clock_step(now = now_ns())) {
        for (i = 0; i < RING && outstanding; i++) {
            struct bcast *b = &ring[i];
            if (b->open && now - b->t0 > tmo) {
                lost_deliveries += synced > b->delivered
                                   ? synced - b->delivered : 0;
                b->open = 0;
                outstanding--;
            }
        }
        while (outstanding < (uint64_t)opt.window && synced > 0) {
            struct bcast *b = &ring[++seq % RING];
            if (b->open)
                break;
            b->seq = seq;
            b->t0 = now_ns();
            b->delivered = 0;
            b->open = 1;
            outstanding++;
            snprintf(line, sizeof line, "LGM %llu\n", (unsigned long long)seq);
            if (fan_say(line) < 0) {
                b->open = 0;
                outstanding--;
                break;
            }
        }
        k = epoll_wait(ep, ev, MAXEV, clock_wait_ms(now_ns(), 10));
        for (i = 0; i < k; i++)
            fan_read(ev[i].data.ptr, now_ns());
    }
    window_hold();
    jbegin();
    jout("members", "%d", opt.m);
    jout("joined", "%d", joined - 1);
    jout("synced", "%d", synced);
    jout("window", "%d", opt.window);
    jout("setup_s", "%.2f", setup_s);
    jout("broadcasts", "%llu", (unsigned long long)completed);
    jout("bps", "%.1f", completed / opt.dur);
    jout("deliveries", "%llu", (unsigned long long)lat.n);
    jout("dps", "%.1f", lat.n / opt.dur);
    jout("lost", "%llu", (unsigned long long)lost_deliveries);
    jlatency(&lat);
    jend();
}

/* ---- main --------------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr,
            "usage: loadgen pingpong|connect|udp|stream|idle|fanout TARGET\n"
            "       [-c C] [-d SECS] [-w SECS] [-s BYTES] [-n N] [-m M]\n"
            "       [-W WINDOW] [-T MS] [-S] [-P PROCS] [-C] [-p 1|2] [-R]\n"
            "TARGET: tcp:127.0.0.1:PORT udp:127.0.0.1:PORT unix:PATH "
            "unixdgram:PATH\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    struct rlimit rl;
    int ch, i;

    if (argc < 3)
        usage();
    opt.workload = argv[1];
    target_parse(argv[2]);
    optind = 3;
    while ((ch = getopt(argc, argv, "c:d:w:s:n:m:W:T:SP:Cp:A:R")) != -1) {
        switch (ch) {
        case 'c': opt.c = atoi(optarg); break;
        case 'd': opt.dur = atof(optarg); break;
        case 'w': opt.warm = atof(optarg); break;
        case 's': opt.size = atoi(optarg); break;
        case 'n': opt.n = atoi(optarg); break;
        case 'P': opt.procs = atoi(optarg); break;
        case 'C': opt.reconnect = 1; break;
        case 'p': opt.proxy = atoi(optarg); break;
        case 'R': opt.any_reply = 1; break;
        case 'm': opt.m = atoi(optarg); break;
        case 'W': opt.window = atoi(optarg); break;
        case 'T': opt.timeout_ms = atoi(optarg); break;
        case 'S': opt.sync = 1; break;
        case 'A': {
            struct target save = tgt;

            target_parse(optarg);
            tgt2 = tgt;
            tgt = save;
            have_tgt2 = 1;
            break;
        }
        default: usage();
        }
    }
    if (!strcmp(opt.workload, "fanout") && opt.m < 2)
        usage();
    if (opt.c < 1 || opt.dur <= 0 || opt.dur > 600 || opt.size < 1 ||
        opt.size > RBUF || opt.n < 0 || opt.n > 100000 || opt.m < 0 ||
        opt.m > 100000 || opt.window < 1 || opt.window > RING / 2 ||
        opt.procs < 0 || opt.procs > 64 || opt.proxy < 0 || opt.proxy > 2 ||
        (opt.proxy && strcmp(opt.workload, "connect")) ||
        (have_tgt2 && (strcmp(opt.workload, "fanout") ||
                       tgt2.kind != tgt.kind)))
        usage();
    if (opt.warm < 0)
        opt.warm = opt.dur / 10 < 0.5 ? opt.dur / 10 : 0.5;
    if (opt.warm > 60)
        usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        rl.rlim_cur = 1024;
    if (!strcmp(opt.workload, "idle")) {
        /* each process keeps 64 descriptors spare (probe, epoll, pipes) */
        long per = rl.rlim_cur == RLIM_INFINITY ? 1L << 30
                                                : (long)rl.rlim_cur - 64;
        if (per < 1)
            die("idle: open-file limit %ld too low", (long)rl.rlim_cur);
        if (!opt.procs)
            opt.procs = (int)((opt.n + per - 1) / per);
        if (opt.procs < 1)
            opt.procs = 1;
        if ((opt.n + opt.procs - 1) / opt.procs > per)
            die("idle: %d connections over %d process%s exceed the "
                "open-file limit %ld of each: give -P %ld or more", opt.n,
                opt.procs, opt.procs > 1 ? "es" : "", (long)rl.rlim_cur,
                (opt.n + per - 1) / per);
    }
    for (i = 0; i < RBUF; i++)
        msg[i] = 'a' + i % 26;
    walk_pos = ((uint64_t)getpid() * 2654435761u + now_ns() / 1000) %
               ((uint64_t)(WALK_PORT_HI - WALK_PORT_LO + 1) * WALK_IPS);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    if (!strcmp(opt.workload, "pingpong") && tgt.kind <= K_UNIX &&
        tgt.kind != K_UDP)
        run_pingpong();
    else if (!strcmp(opt.workload, "connect") &&
             (tgt.kind == K_TCP || tgt.kind == K_UNIX))
        run_connect();
    else if (!strcmp(opt.workload, "udp") &&
             (tgt.kind == K_UDP || tgt.kind == K_UNIXDGRAM))
        run_udp();
    else if (!strcmp(opt.workload, "stream") &&
             (tgt.kind == K_TCP || tgt.kind == K_UNIX))
        run_stream();
    else if (!strcmp(opt.workload, "idle") &&
             (tgt.kind == K_TCP || tgt.kind == K_UNIX))
        run_idle();
    else if (!strcmp(opt.workload, "fanout") &&
             (tgt.kind == K_TCP || tgt.kind == K_UNIX))
        run_fanout();
    else
        usage();
    return 0;
}
