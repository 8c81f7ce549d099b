/* ftp_load.c: issue 17's FTP load generator: loopback only, time-bounded. */
/*
 * Usage: ftp_load login HOST:PORT N [-H] [options]
 *        ftp_load retr HOST:PORT PATH [options]
 *        ftp_load stor HOST:PORT PATH SIZE [options]
 *   login   N concurrent control connections each connect, read the 220
 *           greeting, send USER and PASS and wait for 230; at most -i of
 *           them are between connect and 230 at once (a listen backlog is
 *           not what is measured).  Reports the wall time from the first
 *           connect to the last 230.  -H: hold every logged-in connection
 *           open afterwards, print the JSON result and then "#ready" on
 *           stdout, and wait for stdin to reach EOF (or a line), at most
 *           -t seconds, before closing them (a runner samples the server's
 *           memory meanwhile).
 *   retr    log in, TYPE I, EPSV (PASV if refused), RETR PATH: the bytes
 *           received on the data connection and the time from sending RETR
 *           to the 226 (MB/s = 10^6 bytes/s).
 *   stor    the same with STOR PATH, sending SIZE bytes (a fixed pattern).
 *   -r R    retr, stor: R transfers one after the other on the same login,
 *           each on a data connection of its own (stor: to PATH.1 ..
 *           PATH.R when R > 1); the MB/s is over their summed times
 *   -u USER, -p PASS   (default anonymous, bench@)
 *   -i N    login: connections in setup at once (default 64)
 *   -t SECS deadline of the whole run (default 120): every loop stops by it
 * HOST must be a loopback address (127.0.0.0/8).  The result is one JSON
 * line on stdout; errors go to stderr, with exit status 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINEMAX 1024
#define XBUF (256 * 1024)

static const char *user = "anonymous", *pass = "bench@";
static double deadline;         /* monotonic seconds */
static struct sockaddr_in srv;

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
    va_list ap;

    fputs("ftp_load: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void
on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "ftp_load: deadline passed\n";
    if (write(2, m, sizeof m - 1) < 0)
        _exit(1);
    _exit(1);
}

static void
parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    long port;

    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        die("bad address \"%s\" (HOST:PORT)", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = strtol(colon + 1, NULL, 10);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host,
                                               &sa->sin_addr) != 1)
        die("bad address \"%s\"", s);
    if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127)
        die("%s is not a loopback address", host);
}

/* ---- login N: one epoll loop, a state machine per connection ---------- */

enum lstate { L_IDLE, L_CONN, L_220, L_USER, L_PASS, L_DONE, L_FAIL };

struct lconn {
    int fd;
    enum lstate st;
    size_t len;
    char buf[LINEMAX];
};

/* The code of the final reply line in c->buf, once one is complete (a
 * line "DDD " ends a reply; "DDD-" lines are continued ones); 0 if none
 * is complete yet, -1 on a malformed one.  Consumes what it read. */
static int
take_reply(struct lconn *c)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        int code = 0;
        size_t n;

        if (nl == NULL)
            return c->len >= sizeof c->buf ? -1 : 0;
        n = (size_t)(nl - c->buf) + 1;
        if (n >= 4 && c->buf[0] >= '1' && c->buf[0] <= '5' &&
            c->buf[3] == ' ')
            code = atoi(c->buf);
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        if (code)
            return code;
    }
}

static int send_line(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
send_line(int fd, const char *fmt, ...)
{
    char line[LINEMAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        return -1;
    memcpy(line + n, "\r\n", 2);
    return send(fd, line, (size_t)n + 2, MSG_NOSIGNAL) == n + 2 ? 0 : -1;
}

static int
do_login(int n, int hold, int inflight)
{
    struct lconn *cs = calloc((size_t)n, sizeof *cs);
    struct epoll_event ev, evs[256];
    int ep = epoll_create1(EPOLL_CLOEXEC), next = 0, busy = 0, done = 0,
        failed = 0;
    double t0, t1 = 0;
    char why[128] = "";

    if (cs == NULL || ep < 0)
        die("out of memory or epoll: %s", strerror(errno));
    t0 = now();
    while (done + failed < n && now() < deadline) {
        while (busy < inflight && next < n) {
            struct lconn *c = &cs[next++];

            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
                           SOCK_CLOEXEC, 0);
            if (c->fd < 0)
                die("socket: %s", strerror(errno));
            if (connect(c->fd, (struct sockaddr *)&srv, sizeof srv) < 0 &&
                errno != EINPROGRESS)
                die("connect: %s", strerror(errno));
            c->st = L_220;
            ev.events = EPOLLIN;
            ev.data.ptr = c;
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                die("epoll_ctl: %s", strerror(errno));
            busy++;
        }
        int k = epoll_wait(ep, evs, 256, 100);

        for (int i = 0; i < k; i++) {
            struct lconn *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->buf + c->len,
                             sizeof c->buf - c->len, 0);
            int code;

            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                snprintf(why, sizeof why, "connection %d: %s",
                         (int)(c - cs), r == 0 ? "closed by the server"
                         : strerror(errno));
                goto fail;
            }
            c->len += (size_t)r;
            while ((code = take_reply(c)) != 0) {
                if (code < 0) {
                    snprintf(why, sizeof why, "reply line too long");
                    goto fail;
                }
                if (c->st == L_220 && code == 220) {
                    c->st = L_USER;
                    if (send_line(c->fd, "USER %s", user) < 0)
                        goto sendfail;
                } else if (c->st == L_USER && code == 331) {
                    c->st = L_PASS;
                    if (send_line(c->fd, "PASS %s", pass) < 0)
                        goto sendfail;
                } else if ((c->st == L_USER || c->st == L_PASS) &&
                           code == 230) {
                    c->st = L_DONE;
                    done++;
                    busy--;
                    t1 = now();
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    if (!hold) {
                        close(c->fd);
                        c->fd = -1;
                    }
                    break;
                } else if (code >= 400) {
                    snprintf(why, sizeof why, "connection %d: reply %d",
                             (int)(c - cs), code);
                    goto fail;
                }
            }
            continue;
        sendfail:
            snprintf(why, sizeof why, "send: %s", strerror(errno));
        fail:
            c->st = L_FAIL;
            failed++;
            busy--;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
        }
    }
    printf("{\"workload\":\"login\",\"n\":%d,\"ok\":%d,\"failed\":%d,"
           "\"login_s\":%.4f,\"per_login_ms\":%.3f%s%s%s}\n", n, done,
           failed, done ? t1 - t0 : 0.0,
           done ? (t1 - t0) * 1e3 / done : 0.0, why[0] ? ",\"error\":\"" :
           "", why, why[0] ? "\"" : "");
    fflush(stdout);
    if (done < n && why[0] == '\0')
        fprintf(stderr, "ftp_load: only %d of %d logged in by the "
                "deadline\n", done, n);
    if (hold) {
        char c;

        printf("#ready\n");
        fflush(stdout);
        /* until the runner closes our stdin (or writes a line) */
        for (;;) {
            int left = (int)((deadline - now()) * 1000);
            struct pollfd p = { .fd = 0, .events = POLLIN };

            if (left <= 0 || poll(&p, 1, left) <= 0)
                break;
            if (read(0, &c, 1) <= 0 || c == '\n')
                break;
        }
    }
    for (int i = 0; i < n; i++)
        if (cs[i].fd > 0)
            close(cs[i].fd);
    free(cs);
    close(ep);
    return done == n ? 0 : 1;
}

/* ---- retr / stor: blocking sockets under alarm() ---------------------- */

struct ctl {
    int fd;
    size_t len;
    char buf[LINEMAX];
    char last[LINEMAX];         /* the last reply's final line */
};

static int
reply_code(struct ctl *c)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);

        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf) + 1;
            int code = 0;

            if (n >= 4 && c->buf[0] >= '1' && c->buf[0] <= '5' &&
                c->buf[3] == ' ') {
                code = atoi(c->buf);
                memcpy(c->last, c->buf, n - 1);
                c->last[n - 1] = '\0';
                c->last[strcspn(c->last, "\r\n")] = '\0';
            }
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            if (code)
                return code;
            continue;
        }
        if (c->len >= sizeof c->buf)
            die("reply line too long");
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("control connection: %s", r ? strerror(errno) : "closed");
        c->len += (size_t)r;
    }
}

/* VERB [ARG]: its reply's code */
static int
cmd(struct ctl *c, const char *verb, const char *arg)
{
    if ((arg ? send_line(c->fd, "%s %s", verb, arg) :
         send_line(c->fd, "%s", verb)) < 0)
        die("send: %s", strerror(errno));
    return reply_code(c);
}

static int
dial(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0)
        die("connect %s:%d: %s", inet_ntoa(sa->sin_addr),
            ntohs(sa->sin_port), strerror(errno));
    return fd;
}

static void
session(struct ctl *c)
{
    int code;

    c->fd = dial(&srv);
    c->len = 0;
    if ((code = reply_code(c)) != 220)
        die("greeting: %s", c->last);
    code = cmd(c, "USER", user);
    if (code == 331)
        code = cmd(c, "PASS", pass);
    if (code != 230)
        die("login: %s", c->last);
    if (cmd(c, "TYPE", "I") != 200)
        die("TYPE I: %s", c->last);
}

/* EPSV, or PASV where the server refuses it: the data connection. */
static int
passive(struct ctl *c)
{
    struct sockaddr_in sa = srv;
    int code = cmd(c, "EPSV", NULL), p[6];
    char *q;

    if (code == 229 && (q = strstr(c->last, "(|||")) != NULL) {
        sa.sin_port = htons((uint16_t)atoi(q + 4));
        return dial(&sa);
    }
    if (cmd(c, "PASV", NULL) != 227 || (q = strchr(c->last, '(')) == NULL ||
        sscanf(q, "(%d,%d,%d,%d,%d,%d)", &p[0], &p[1], &p[2], &p[3], &p[4],
               &p[5]) != 6)
        die("passive mode refused: %s", c->last);
    /* the control connection's address: a loopback one, whatever PASV said */
    sa.sin_port = htons((uint16_t)(p[4] * 256 + p[5]));
    return dial(&sa);
}

/* One RETR or STOR on a fresh data connection: the bytes moved; *secs
 * gets the time from the command to its 226. */
static unsigned long long
transfer(struct ctl *c, int stor, const char *path, unsigned long long size,
         char *buf, double *secs)
{
    unsigned long long bytes = 0;
    int d = passive(c), code;
    double t0 = now();

    code = cmd(c, stor ? "STOR" : "RETR", path);
    if (code != 150 && code != 125)
        die("%s %s: %s", stor ? "STOR" : "RETR", path, c->last);
    if (stor) {
        while (bytes < size) {
            size_t n = size - bytes < XBUF ? (size_t)(size - bytes) : XBUF;
            ssize_t w = send(d, buf, n, MSG_NOSIGNAL);

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                die("data connection: %s", strerror(errno));
            bytes += (unsigned long long)w;
        }
    } else {
        for (;;) {
            ssize_t r = recv(d, buf, XBUF, 0);

            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                die("data connection: %s", strerror(errno));
            if (r == 0)
                break;
            bytes += (unsigned long long)r;
        }
    }
    close(d);
    if ((code = reply_code(c)) != 226)
        die("after the transfer: %s", c->last);
    *secs = now() - t0;
    return bytes;
}

static int
do_transfer(int stor, const char *path, unsigned long long size, int reps)
{
    struct ctl c;
    char *buf = malloc(XBUF), name[LINEMAX];
    unsigned long long bytes = 0;
    double secs = 0, best = 0;

    if (buf == NULL)
        die("out of memory");
    for (size_t i = 0; i < XBUF; i++)
        buf[i] = (char)(i * 131 + 7);
    memset(&c, 0, sizeof c);
    session(&c);
    for (int i = 1; i <= reps; i++) {
        double t;
        unsigned long long b;

        if (stor && reps > 1)
            snprintf(name, sizeof name, "%s.%d", path, i);
        else
            snprintf(name, sizeof name, "%s", path);
        b = transfer(&c, stor, name, size, buf, &t);
        bytes += b;
        secs += t;
        if (t > 0 && b / 1e6 / t > best)
            best = b / 1e6 / t;
    }
    send_line(c.fd, "QUIT");
    close(c.fd);
    free(buf);
    printf("{\"workload\":\"%s\",\"transfers\":%d,\"bytes\":%llu,"
           "\"secs\":%.4f,\"mbps\":%.1f,\"best_mbps\":%.1f}\n",
           stor ? "stor" : "retr", reps, bytes, secs, bytes / 1e6 / secs,
           best);
    return 0;
}

static void
usage(void)
{
    fputs("usage: ftp_load login HOST:PORT N [-H]\n"
          "       ftp_load retr HOST:PORT PATH\n"
          "       ftp_load stor HOST:PORT PATH SIZE\n"
          "       [-u USER] [-p PASS] [-i INFLIGHT] [-r REPEAT] [-t SECS]\n", stderr);
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *pos[4];
    int npos = 0, hold = 0, inflight = 64, reps = 1;
    double limit = 120;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-H") == 0)
            hold = 1;
        else if (a[0] == '-' && a[1] && !a[2] && i + 1 < argc) {
            const char *v = argv[++i];

            switch (a[1]) {
            case 'u': user = v; break;
            case 'p': pass = v; break;
            case 'i': inflight = atoi(v); break;
            case 't': limit = atof(v); break;
            case 'r': reps = atoi(v); break;
            default: usage();
            }
        } else if (npos < 4)
            pos[npos++] = a;
        else
            usage();
    }
    if (npos < 3 || limit <= 0 || inflight <= 0 || reps <= 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    parse_addr(pos[1], &srv);
    deadline = now() + limit;
    if (strcmp(pos[0], "login") == 0 && npos == 3) {
        int n = atoi(pos[2]);

        if (n <= 0)
            usage();
        /* the epoll loop checks the deadline itself; the alarm is the
         * belt to its braces (a few seconds later, for the hold) */
        signal(SIGALRM, on_alarm);
        alarm((unsigned)limit + 5);
        return do_login(n, hold, inflight);
    }
    signal(SIGALRM, on_alarm);
    alarm((unsigned)limit + 1);
    if (strcmp(pos[0], "retr") == 0 && npos == 3)
        return do_transfer(0, pos[2], 0, reps);
    if (strcmp(pos[0], "stor") == 0 && npos == 4)
        return do_transfer(1, pos[2], strtoull(pos[3], NULL, 10), reps);
    usage();
    return 2;
}
