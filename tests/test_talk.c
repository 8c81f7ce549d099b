/* test_talk.c: integration tests of the talk handler against the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/daemon.h"

#define WAIT_MS 5000                    /* the bound on any one wait */

/* ---- helpers ------------------------------------------------------------ */

/*
 * What a test started, for the teardown to end if an assertion jumps out
 * of the test before it could (the objects are static, not on its stack).
 */
struct proc {
    pid_t pid;
    int in, out;                        /* its stdin, its stdout + stderr */
    char buf[65536];
    size_t len, pos;                    /* pos: after the last match */
};

static struct ssd *live_daemon;
static struct proc *live_proc[2];
/* The suite runs twice: its servers in threading, then in event mode. */
static const char *run_mode = "threading";

/* Starts the daemon on ini_text (in run_mode) and remembers it for the
 * teardown. */
static void
daemon_start(struct ssd *d, const char *ini_text, const char *const *args)
{
    live_daemon = d;
    assert_int_equal(ssd_start(d, ssd_ini_mode(ini_text, run_mode), 1,
                               args), 0);
}

/* Starts the daemon with one [talk] server plus extra lines, and args. */
static void
talk_start_args(struct ssd *d, const char *extra, const char *const *args)
{
    char ini[1024];
    int n;

    n = snprintf(ini, sizeof ini,
                 "[talk]\nhandler = talk\ntype = tcp\nmode = threading\n"
                 "host = 127.0.0.1\nport = 0\n%s", extra ? extra : "");
    assert_true(n > 0 && (size_t)n < sizeof ini);
    daemon_start(d, ini, args);
}

static void
talk_start(struct ssd *d, const char *extra)
{
    talk_start_args(d, extra, NULL);
}

/* Stops the daemon, expecting a clean exit, and frees it. */
static void
talk_stop(struct ssd *d)
{
    int st = ssd_stop(d, SIGTERM);

    if (st != 0)
        ssd_print_log(d);
    ssd_cleanup(d);
    live_daemon = NULL;
    assert_int_equal(st, 0);
}

/* The client's own address as the server names it: "127.0.0.1:PORT". */
static void
local_name(int fd, char *buf, size_t size)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    char ip[INET_ADDRSTRLEN];
    int n;

    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    assert_non_null(inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip));
    n = snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(sin.sin_port));
    assert_true(n > 0 && (size_t)n < size);
}

static void log_expect(struct ssd *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Waits for the log to contain the formatted text. */
static void
log_expect(struct ssd *d, const char *fmt, ...)
{
    char needle[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(needle, sizeof needle, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof needle);
    if (!ssd_log_wait(d, needle, WAIT_MS)) {
        ssd_print_log(d);
        fail_msg("log never said \"%s\"", needle);
    }
}

/*
 * Connects a TCP client to the talk server from a source address of its
 * own (127.1.X.Y), so that the server's log lines about it are unique in
 * the run even when the kernel reuses a port (loopback reuses TIME_WAIT
 * ports).  Falls back to 127.0.0.1 where such addresses cannot be bound.
 */
static int
talk_connect(struct ssd *d)
{
    static unsigned next;
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct sockaddr_in dst = { .sin_family = AF_INET };
    unsigned n = next++ % (250u * 250u);
    int fd, port = ssd_port(d, "talk");

    assert_true(port > 0);
    dst.sin_port = htons((unsigned short)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    src.sin_addr.s_addr = htonl(0x7f010000u | (n / 250) << 8 | (n % 250 + 1));
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0 &&
        errno != EADDRNOTAVAIL)
        fail_msg("bind: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
    return fd;
}

/* Connects a client and waits until the server has queued it. */
static int
connect_waiter(struct ssd *d, char *name, size_t size)
{
    int fd = talk_connect(d);

    assert_true(fd >= 0);
    local_name(fd, name, size);
    log_expect(d, "talk: %s waits for a partner", name);
    return fd;
}

/* Forms a pair: *a waited (and is told so), *b arrived second. */
static void
connect_pair(struct ssd *d, int *a, char *aname, int *b, char *bname,
             size_t size)
{
    char expect[256], buf[1024];

    *a = connect_waiter(d, aname, size);
    *b = talk_connect(d);
    assert_true(*b >= 0);
    local_name(*b, bname, size);
    snprintf(expect, sizeof expect,
             "talk: connected to %s, you speak first\n", bname);
    assert_true(ssd_recv_until(*a, buf, sizeof buf, "\n", WAIT_MS));
    assert_string_equal(buf, expect);
}

/* Exactly len bytes arrive on fd, equal to want. */
static void
expect_bytes(int fd, const char *want)
{
    size_t len = strlen(want);
    char buf[4096];

    assert_true(len < sizeof buf);
    assert_int_equal(ssd_recv_n(fd, buf, len, WAIT_MS), len);
    buf[len] = '\0';
    assert_string_equal(buf, want);
}

/* Nothing at all arrives on fd within ms. */
static void
expect_silence(int fd, int ms)
{
    char buf[64];

    assert_int_equal(ssd_recv_some(fd, buf, sizeof buf, ms), -1);
}

/* Closes fd with a reset instead of a FIN (SO_LINGER 0). */
static void
close_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
                     0);
    close(fd);
}

static void
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the seed loop, in C ------------------------------------------------ */

/*
 * A client written exactly like the tutorial's 2.2.x loop: recv(1024), then
 * send the next message without a newline, until it has sent bye (then it
 * closes) or its script is done.  What each recv returned is kept.
 */
struct seed {
    int fd;
    const char *const *script;
    size_t nscript;
    char got[8][1025];
    size_t ngot;
    int err;
};

static void *
seed_loop(void *arg)
{
    struct seed *s = arg;
    struct timeval tv = { .tv_sec = WAIT_MS / 1000 };

    /* Bounded: a recv that waits longer than WAIT_MS fails the test. */
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t i = 0; s->ngot < 8; i++) {
        ssize_t n = recv(s->fd, s->got[s->ngot], 1024, 0);
        const char *msg;

        if (n < 0) {
            s->err = errno;
            break;
        }
        s->got[s->ngot++][n] = '\0';
        if (i >= s->nscript)
            break;
        msg = s->script[i];
        if (send(s->fd, msg, strlen(msg), MSG_NOSIGNAL) < 0) {
            s->err = errno;
            break;
        }
        if (strcasecmp(msg, "bye") == 0) {
            close(s->fd);
            s->fd = -1;
            break;
        }
    }
    return NULL;
}

/* Two seed loops hold a ten-turn conversation; bye from A ends both. */
static void
test_talk_ten_turns(void **unused)
{
    static const char *const sa[] = {
        "turn 1 from a", "turn 3", "turn 5: ünïcödé", "turn 7", "turn 9",
        "bye",
    };
    static const char *const sb[] = {
        "turn 2 from b", "turn 4", "turn 6", "turn 8", "turn 10",
    };
    struct seed a = { .script = sa, .nscript = 6 };
    struct seed b = { .script = sb, .nscript = 5 };
    char an[64], bn[64], want[256];
    pthread_t ta, tb;
    static struct ssd d;

    (void)unused;
    talk_start(&d, NULL);
    a.fd = connect_waiter(&d, an, sizeof an);
    b.fd = talk_connect(&d);
    assert_true(b.fd >= 0);
    local_name(b.fd, bn, sizeof bn);
    assert_int_equal(pthread_create(&ta, NULL, seed_loop, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, seed_loop, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    assert_int_equal(a.err, 0);
    assert_int_equal(b.err, 0);
    /* A waited: told first, whom and that it speaks first. */
    assert_int_equal(a.ngot, 6);
    snprintf(want, sizeof want, "talk: connected to %s, you speak first\n",
             bn);
    assert_string_equal(a.got[0], want);
    for (size_t i = 1; i < 6; i++)
        assert_string_equal(a.got[i], sb[i - 1]);
    /* B got nothing before A spoke: its first recv is A's first turn. */
    assert_int_equal(b.ngot, 6);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(b.got[i], sa[i]);
    snprintf(want, sizeof want, "talk: %s said bye\n", an);
    assert_string_equal(b.got[5], want);
    /* ... and B's connection is closed by the server. */
    assert_true(ssd_closed_within(b.fd, WAIT_MS));
    close(b.fd);
    log_expect(&d, "talk: %s <-> %s ended: %s said bye", an, bn, an);
    talk_stop(&d);
}

/* ---- walkie-talkie clients that receive first, then alternate ------------ */

/* Runs `python3 -u DIR/script` talking to port. */
static void
proc_start(struct proc *p, const char *dir, const char *script, int port)
{
    int in[2], out[2];
    char path[512], portstr[16];

    snprintf(path, sizeof path, "%s%s", dir, script);
    if (access(path, R_OK) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    snprintf(portstr, sizeof portstr, "%d", port);
    memset(p, 0, sizeof *p);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid > 0)
        live_proc[live_proc[0] != NULL] = p;
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        setenv("SOCKSERV_HOST", "127.0.0.1", 1);
        setenv("SOCKSERV_PORT", portstr, 1);
        setenv("PYTHONIOENCODING", "utf-8", 1);
        execlp("python3", "python3", "-u", path, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
}

/* Reads p's output until needle appears after the last match. */
static void
proc_expect(struct proc *p, const char *needle)
{
    long long end = now_ms() + WAIT_MS;

    for (;;) {
        struct pollfd pfd = { .fd = p->out, .events = POLLIN };
        char *hit;
        ssize_t n;
        int left;

        p->buf[p->len] = '\0';
        hit = strstr(p->buf + p->pos, needle);
        if (hit) {
            p->pos = (size_t)(hit - p->buf) + strlen(needle);
            return;
        }
        left = (int)(end - now_ms());
        if (left <= 0 || p->len + 1 >= sizeof p->buf ||
            poll(&pfd, 1, left) <= 0)
            break;
        n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n <= 0)
            break;
        p->len += (size_t)n;
    }
    fail_msg("client never printed \"%s\"; it printed:\n%s", needle, p->buf);
}

/* Types one line into p. */
static void
proc_type(struct proc *p, const char *line)
{
    size_t len = strlen(line);

    assert_int_equal(write(p->in, line, len), (ssize_t)len);
    assert_int_equal(write(p->in, "\n", 1), 1);
}

/* Waits for p to end (its output closes) and returns its exit status. */
static int
proc_wait(struct proc *p)
{
    long long end = now_ms() + WAIT_MS;
    int st = -1;

    for (;;) {
        struct pollfd pfd = { .fd = p->out, .events = POLLIN };
        int left = (int)(end - now_ms());
        char sink[4096];

        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            kill(p->pid, SIGKILL);
            break;
        }
        if (read(p->out, sink, sizeof sink) <= 0)
            break;
    }
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    close(p->in);
    close(p->out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * A pair of walkie-talkie clients and what they print: the prompt before
 * each line typed, the prefix of each message received (what the server
 * said, as one recv(1024)), and their last words.
 */
struct talk_clients {
    const char *dir, *first, *second;
    const char *prompt, *heard, *bye;
};

/*
 * Two clients fed through their stdin, each line sent without its newline:
 * the first waits and speaks first, they alternate, and bye from the
 * second one ends both.
 */
static void
talk_clients_case(const struct talk_clients *c)
{
    static const char *const lines[] = {
        "hello, who is there?", "你好, it is me", "over", "over again",
        "over and out",
    };
    static struct proc p1, p2;
    char expect[256];
    static struct ssd d;

    talk_start(&d, NULL);
    proc_start(&p1, c->dir, c->first, ssd_port(&d, "talk"));
    log_expect(&d, "waits for a partner");
    proc_start(&p2, c->dir, c->second, ssd_port(&d, "talk"));
    snprintf(expect, sizeof expect, "%stalk: connected to 127.0.0.1:",
             c->heard);
    proc_expect(&p1, expect);
    proc_expect(&p1, ", you speak first");
    for (size_t i = 0; i < 5; i++) {
        struct proc *from = i % 2 ? &p2 : &p1, *to = i % 2 ? &p1 : &p2;

        proc_expect(from, c->prompt);
        proc_type(from, lines[i]);
        snprintf(expect, sizeof expect, "%s%s\n", c->heard, lines[i]);
        proc_expect(to, expect);
    }
    /* The second client says bye (any case): it exits... */
    proc_expect(&p2, c->prompt);
    proc_type(&p2, "BYE");
    proc_expect(&p2, c->bye);
    assert_int_equal(proc_wait(&p2), 0);
    /* ... the first is told, and its connection is closed for it. */
    proc_expect(&p1, " said bye\n");
    log_expect(&d, " said bye");
    proc_expect(&p1, c->prompt);
    proc_type(&p1, "bye");
    proc_expect(&p1, c->bye);
    assert_int_equal(proc_wait(&p1), 0);
    talk_stop(&d);
}

/* The project's own client (tests/clients/), twice, always. */
static void
test_talk_project_clients(void **unused)
{
    const struct talk_clients c = {
        .dir = ssd_clients_dir(),
        .first = "talk_client.py", .second = "talk_client.py",
        .prompt = "say> ", .heard = "heard> ", .bye = "[over and out]",
    };

    (void)unused;
    talk_clients_case(&c);
}

/* The tutorial's two walkie-talkie clients, unchanged, when
 * ../shared/seed_clients is there. */
static void
test_talk_seed_clients(void **unused)
{
    bool required;
    const struct talk_clients c = {
        .dir = ssd_seed_dir(&required),
        .first = "tcp_client_2_2_2.py",
        .second = "walkie_talkie_client_2_2_3.py",
        .prompt = "enter message:", .heard = "server: ",
        .bye = "客户端退出...",
    };

    (void)unused;
    if (c.dir == NULL && required)
        fail();
    if (c.dir == NULL)
        skip();
    talk_clients_case(&c);
}

/* ---- full duplex -------------------------------------------------------- */

/*
 * Sends na bytes on a and nb on b while reading what arrives on the other,
 * all at once, until everything arrived or the deadline.
 */
static void
pump_both(int a, int b, const unsigned char *da, const unsigned char *db,
          size_t n, unsigned char *ra, unsigned char *rb)
{
    size_t sa = 0, sb = 0, ga = 0, gb = 0;
    long long end = now_ms() + 4 * WAIT_MS;

    set_nonblock(a);
    set_nonblock(b);
    while (ga < n || gb < n) {
        struct pollfd pfd[2] = {
            { .fd = a, .events = POLLIN | (sa < n ? POLLOUT : 0) },
            { .fd = b, .events = POLLIN | (sb < n ? POLLOUT : 0) },
        };
        int left = (int)(end - now_ms());
        ssize_t r;

        assert_true(left > 0);
        assert_true(poll(pfd, 2, left) > 0);
        if (sa < n && (pfd[0].revents & POLLOUT)) {
            r = send(a, da + sa, n - sa, MSG_NOSIGNAL);
            assert_true(r > 0 || errno == EAGAIN);
            sa += r > 0 ? (size_t)r : 0;
        }
        if (sb < n && (pfd[1].revents & POLLOUT)) {
            r = send(b, db + sb, n - sb, MSG_NOSIGNAL);
            assert_true(r > 0 || errno == EAGAIN);
            sb += r > 0 ? (size_t)r : 0;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            r = recv(a, ra + ga, n - ga, 0);
            assert_true(r > 0 || (r < 0 && errno == EAGAIN));
            ga += r > 0 ? (size_t)r : 0;
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            r = recv(b, rb + gb, n - gb, 0);
            assert_true(r > 0 || (r < 0 && errno == EAGAIN));
            gb += r > 0 ? (size_t)r : 0;
        }
    }
}

/* 1 MiB of random bytes each way at once arrives intact, in order. */
static void
test_talk_full_duplex_1mib(void **unused)
{
    const size_t n = 1024 * 1024;
    unsigned char *da = malloc(n), *db = malloc(n);
    unsigned char *ra = malloc(n), *rb = malloc(n);
    char an[64], bn[64];
    static struct ssd d;
    int a, b;

    (void)unused;
    assert_non_null(da);
    assert_non_null(db);
    assert_non_null(ra);
    assert_non_null(rb);
    for (size_t off = 0; off < n;) {
        ssize_t r = getrandom(da + off, n - off, 0);

        assert_true(r > 0);
        off += (size_t)r;
    }
    for (size_t off = 0; off < n;) {
        ssize_t r = getrandom(db + off, n - off, 0);

        assert_true(r > 0);
        off += (size_t)r;
    }
    talk_start(&d, NULL);
    connect_pair(&d, &a, an, &b, bn, sizeof an);
    pump_both(a, b, da, db, n, ra, rb);
    assert_memory_equal(ra, db, n);
    assert_memory_equal(rb, da, n);
    /* Nothing more than what was sent, and the pair still talks. */
    expect_silence(a, 100);
    expect_silence(b, 100);
    close(a);
    assert_true(ssd_closed_within(b, WAIT_MS));
    close(b);
    log_expect(&d, "talk: %s <-> %s ended: %s left", an, bn, an);
    talk_stop(&d);
    free(da);
    free(db);
    free(ra);
    free(rb);
}

/* ---- pairs and the queue ------------------------------------------------ */

/* A third and fourth client form a second pair while the first talks. */
static void
test_talk_second_pair(void **unused)
{
    char an[64], bn[64], cn[64], dn[64], want[256];
    int a, b, c, e;
    static struct ssd d;

    (void)unused;
    talk_start(&d, NULL);
    connect_pair(&d, &a, an, &b, bn, sizeof an);
    assert_int_equal(ssd_send_str(a, "pair one, a"), 0);
    expect_bytes(b, "pair one, a");

    /* The third waits alone, and hears nothing, while pair one talks. */
    c = connect_waiter(&d, cn, sizeof cn);
    assert_int_equal(ssd_send_str(b, "pair one, b"), 0);
    expect_bytes(a, "pair one, b");
    expect_silence(c, 200);

    /* The fourth pairs with the third, not with anyone of pair one. */
    e = talk_connect(&d);
    assert_true(e >= 0);
    local_name(e, dn, sizeof dn);
    snprintf(want, sizeof want, "talk: connected to %s, you speak first\n",
             dn);
    expect_bytes(c, want);
    log_expect(&d, "talk: paired %s with %s", cn, dn);

    /* Both pairs talk at the same time, each to itself only. */
    assert_int_equal(ssd_send_str(c, "pair two, c"), 0);
    assert_int_equal(ssd_send_str(a, "pair one again"), 0);
    expect_bytes(e, "pair two, c");
    expect_bytes(b, "pair one again");
    assert_int_equal(ssd_send_str(e, "pair two, d"), 0);
    expect_bytes(c, "pair two, d");
    expect_silence(a, 100);

    /* Ending pair one leaves pair two talking. */
    assert_int_equal(ssd_send_str(b, "bye\r\n"), 0);
    snprintf(want, sizeof want, "talk: %s said bye\n", bn);
    expect_bytes(a, want);
    assert_true(ssd_closed_within(a, WAIT_MS));
    assert_true(ssd_closed_within(b, WAIT_MS));
    assert_int_equal(ssd_send_str(e, "still here"), 0);
    expect_bytes(c, "still here");
    close(a);
    close(b);
    close(c);
    close(e);
    talk_stop(&d);
}

/* A waiting client that disconnects is dropped from the queue. */
static void
test_talk_waiter_disconnects(void **unused)
{
    char gone[64], cn[64], dn[64], want[256];
    static struct ssd d;
    int g, c, e;

    (void)unused;
    talk_start(&d, NULL);
    g = connect_waiter(&d, gone, sizeof gone);
    close(g);
    log_expect(&d, "talk: %s left the queue", gone);

    /* The next client waits: nobody is left to pair it with. */
    c = connect_waiter(&d, cn, sizeof cn);
    e = talk_connect(&d);
    assert_true(e >= 0);
    local_name(e, dn, sizeof dn);
    snprintf(want, sizeof want, "talk: connected to %s, you speak first\n",
             dn);
    expect_bytes(c, want);
    assert_int_equal(ssd_send_str(c, "ping"), 0);
    expect_bytes(e, "ping");
    snprintf(want, sizeof want, "paired %s", gone);
    assert_false(ssd_log_has(&d, want));
    snprintf(want, sizeof want, "with %s", gone);
    assert_false(ssd_log_has(&d, want));
    close(c);
    close(e);
    talk_stop(&d);
}

/* An abrupt reset of one side ends the pair for the other. */
static void
test_talk_reset(void **unused)
{
    char an[64], bn[64], want[256];
    static struct ssd d;
    int a, b;

    (void)unused;
    talk_start(&d, NULL);
    connect_pair(&d, &a, an, &b, bn, sizeof an);
    assert_int_equal(ssd_send_str(a, "about to vanish"), 0);
    expect_bytes(b, "about to vanish");
    close_reset(a);
    snprintf(want, sizeof want, "talk: %s left\n", an);
    expect_bytes(b, want);
    assert_true(ssd_closed_within(b, WAIT_MS));
    close(b);
    log_expect(&d, "talk: %s <-> %s ended: %s left", an, bn, an);

    /* The other way round: the one who arrived resets. */
    connect_pair(&d, &a, an, &b, bn, sizeof an);
    close_reset(b);
    snprintf(want, sizeof want, "talk: %s left\n", bn);
    expect_bytes(a, want);
    assert_true(ssd_closed_within(a, WAIT_MS));
    close(a);
    talk_stop(&d);
}

/* A client left alone wait_timeout long is told so and closed. */
static void
test_talk_wait_timeout(void **unused)
{
    char an[64], bn[64], buf[256];
    long long t0;
    static struct ssd d;
    int a, b;

    (void)unused;
    talk_start(&d, "wait_timeout = 1.5\n");
    t0 = now_ms();
    a = connect_waiter(&d, an, sizeof an);
    assert_true(ssd_recv_until(a, buf, sizeof buf, "\n", WAIT_MS));
    assert_string_equal(buf, "talk: nobody came within 1.5 s, goodbye\n");
    assert_true(now_ms() - t0 >= 1500);
    assert_true(ssd_closed_within(a, WAIT_MS));
    close(a);
    log_expect(&d, "talk: %s waited 1.5 s, nobody came", an);

    /* A pair formed in time outlives the timeout. */
    connect_pair(&d, &a, an, &b, bn, sizeof an);
    expect_silence(a, 2000);
    assert_int_equal(ssd_send_str(a, "still paired"), 0);
    expect_bytes(b, "still paired");
    assert_int_equal(ssd_send_str(b, "yes"), 0);
    expect_bytes(a, "yes");
    close(a);
    close(b);
    talk_stop(&d);
}

/*
 * A side that never reads: the other side sends as fast as it can.  The
 * server must neither block nor buffer without bound: the pair is closed,
 * with a log line, and the server still pairs others afterwards.
 */
static void
test_talk_never_reads(void **unused)
{
    static unsigned char chunk[65536];
    const size_t cap = 512u * 1024 * 1024;
    char an[64], bn[64], cn[64], dn[64];
    long long end;
    size_t sent = 0;
    bool closed = false;
    static struct ssd d;
    int a, b, c, e;

    (void)unused;
    memset(chunk, 'x', sizeof chunk);
    talk_start(&d, "max_backlog = 65536\n");
    connect_pair(&d, &a, an, &b, bn, sizeof an);
    set_nonblock(a);
    end = now_ms() + 4 * WAIT_MS;
    while (!closed && sent < cap) {
        struct pollfd pfd = { .fd = a, .events = POLLIN | POLLOUT };
        int left = (int)(end - now_ms());
        char sink[256];
        ssize_t r;

        assert_true(left > 0);
        assert_true(poll(&pfd, 1, left) > 0);
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            r = recv(a, sink, sizeof sink, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN))
                closed = true;
        }
        if (!closed && (pfd.revents & POLLOUT)) {
            r = send(a, chunk, sizeof chunk, MSG_NOSIGNAL);
            if (r > 0)
                sent += (size_t)r;
            else if (errno != EAGAIN)
                closed = true;
        }
    }
    assert_true(closed);
    log_expect(&d, "talk: %s <-> %s ended: ", an, bn);
    assert_true(ssd_closed_within(b, 4 * WAIT_MS));
    close(a);
    close(b);

    /* The server is none the worse. */
    connect_pair(&d, &c, cn, &e, dn, sizeof cn);
    assert_int_equal(ssd_send_str(e, "fine"), 0);
    expect_bytes(c, "fine");
    close(c);
    close(e);
    talk_stop(&d);
}

/* ---- bye, and what is not bye ------------------------------------------- */

/* bye alone, in any case, with or without a line ending, from either side;
 * bytes before it on the same line boundary are still relayed. */
static void
test_talk_bye_forms(void **unused)
{
    static const char *const byes[] = {
        "bye", "BYE", "Bye\n", "bYe\r\n", "last words\nbye\n",
    };
    char an[64], bn[64], want[256];
    static struct ssd d;

    (void)unused;
    talk_start(&d, NULL);
    for (size_t i = 0; i < sizeof byes / sizeof byes[0]; i++) {
        int a, b, from, to;
        const char *who;

        connect_pair(&d, &a, an, &b, bn, sizeof an);
        from = i % 2 ? b : a;
        to = i % 2 ? a : b;
        who = i % 2 ? bn : an;
        /* Not bye: relayed unchanged. */
        assert_int_equal(ssd_send_str(from, "goodbye"), 0);
        expect_bytes(to, "goodbye");
        assert_int_equal(ssd_send_str(from, "bye bye\n"), 0);
        expect_bytes(to, "bye bye\n");
        assert_int_equal(ssd_send_str(from, byes[i]), 0);
        if (strncmp(byes[i], "last", 4) == 0)
            expect_bytes(to, "last words\n");
        snprintf(want, sizeof want, "talk: %s said bye\n", who);
        expect_bytes(to, want);
        assert_true(ssd_closed_within(to, WAIT_MS));
        assert_true(ssd_closed_within(from, WAIT_MS));
        close(a);
        close(b);
    }
    talk_stop(&d);
}

/* What a waiter sends before it is paired reaches its partner first. */
static void
test_talk_early_bytes(void **unused)
{
    static const char *const debug[] = { "-l", "debug", NULL };
    char an[64], bn[64], want[256];
    static struct ssd d;
    int a, b;

    (void)unused;
    talk_start_args(&d, NULL, debug);
    a = connect_waiter(&d, an, sizeof an);
    assert_int_equal(ssd_send_str(a, "anyone there?\n"), 0);
    log_expect(&d, "talk: %s sent 14 bytes while waiting", an);
    b = talk_connect(&d);
    assert_true(b >= 0);
    local_name(b, bn, sizeof bn);
    snprintf(want, sizeof want, "talk: connected to %s, you speak first\n",
             bn);
    expect_bytes(a, want);
    expect_bytes(b, "anyone there?\n");
    assert_int_equal(ssd_send_str(b, "yes"), 0);
    expect_bytes(a, "yes");
    close(a);
    close(b);
    talk_stop(&d);
}

/* A waiter that says bye, or sends more than 16 KiB, leaves the queue. */
static void
test_talk_waiter_leaves(void **unused)
{
    static char big[16384 + 1];
    char an[64], cn[64], dn[64], buf[256];
    static struct ssd d;
    int a, c, e;

    (void)unused;
    talk_start(&d, NULL);
    a = connect_waiter(&d, an, sizeof an);
    assert_int_equal(ssd_send_str(a, "Bye\r\n"), 0);
    assert_true(ssd_closed_within(a, WAIT_MS));
    close(a);
    log_expect(&d, "talk: %s left the queue (said bye while waiting)", an);

    memset(big, 'z', sizeof big);
    a = connect_waiter(&d, an, sizeof an);
    assert_int_equal(ssd_send_all(a, big, sizeof big), 0);
    assert_true(ssd_recv_until(a, buf, sizeof buf, "\n", WAIT_MS));
    assert_string_equal(buf, "talk: too much input before a partner came, "
                        "goodbye\n");
    assert_true(ssd_closed_within(a, WAIT_MS));
    close(a);
    log_expect(&d, "talk: %s left the queue (sent too much while waiting)",
               an);

    /* Neither is paired with the next client. */
    connect_pair(&d, &c, cn, &e, dn, sizeof cn);
    close(c);
    close(e);
    talk_stop(&d);
}

/* talk works on unix-stream too; unnamed clients are numbered. */
static void
test_talk_unix_stream(void **unused)
{
    char buf[256];
    static struct ssd d;
    int a, b;

    (void)unused;
    daemon_start(&d, "[talk]\nhandler = talk\ntype = unix-stream\n"
                 "mode = threading\npath = @DIR@/talk.sock\n", NULL);
    a = ssd_connect(ssd_addr(&d, "talk"));
    assert_true(a >= 0);
    log_expect(&d, "talk: unix:unnamed#1 waits for a partner");
    b = ssd_connect(ssd_addr(&d, "talk"));
    assert_true(b >= 0);
    assert_true(ssd_recv_until(a, buf, sizeof buf, "\n", WAIT_MS));
    assert_string_equal(buf, "talk: connected to unix:unnamed#2, "
                        "you speak first\n");
    assert_int_equal(ssd_send_str(a, "over unix"), 0);
    expect_bytes(b, "over unix");
    assert_int_equal(ssd_send_str(b, "roger"), 0);
    expect_bytes(a, "roger");
    assert_int_equal(ssd_send_str(b, "bye\n"), 0);
    expect_bytes(a, "talk: unix:unnamed#2 said bye\n");
    assert_true(ssd_closed_within(a, WAIT_MS));
    close(a);
    close(b);
    talk_stop(&d);
}

/*
 * The core's timeout (silence) ends a pair like a departure, logged: a
 * keeps silent after pairing while b keeps talking, so a times out.  It
 * does not apply while a waits.
 */
static void
test_talk_server_timeout(void **unused)
{
    char an[64], bn[64], want[256], buf[256];
    bool told = false;
    static struct ssd d;
    int a, b;

    (void)unused;
    talk_start(&d, "timeout = 1\n");
    /* Waiting is silent by nature: the timeout does not cut a waiter. */
    a = connect_waiter(&d, an, sizeof an);
    expect_silence(a, 1500);
    b = talk_connect(&d);
    assert_true(b >= 0);
    local_name(b, bn, sizeof bn);
    snprintf(want, sizeof want, "talk: connected to %s, you speak first\n",
             bn);
    expect_bytes(a, want);
    snprintf(want, sizeof want, "talk: %s left\n", an);
    for (int i = 0; i < 40 && !told; i++) {
        ssize_t n;

        assert_int_equal(ssd_send_str(b, "tick"), 0);
        n = ssd_recv_some(b, buf, sizeof buf - 1, 250);
        if (n == -1)
            continue;                   /* 250 ms passed: tick again */
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, want);
        told = true;
    }
    assert_true(told);
    assert_true(ssd_closed_within(b, WAIT_MS));
    assert_true(ssd_closed_within(a, WAIT_MS));
    log_expect(&d, "talk: %s: silent for 1s, closed", an);
    close(a);
    close(b);
    talk_stop(&d);
}

/* ---- configuration ------------------------------------------------------ */

/* mode = forking (or sync) is a configuration error at the mode line that
 * names the modes talk runs in. */
static void
test_talk_mode_refused(void **unused)
{
    static const char *const modes[] = { "forking", "sync" };
    static const char *const why[] = {
        "(it runs in threading, event)", "(it runs in threading, event)",
    };

    (void)unused;
    for (size_t i = 0; i < 2; i++) {
        char ini[512], want[128];
        char *out = NULL;
        int st;

        snprintf(ini, sizeof ini, "[talk]\nhandler = talk\ntype = tcp\n"
                 "mode = %s\nhost = 127.0.0.1\nport = 0\n", modes[i]);
        st = ssd_run(ini, NULL, &out);
        assert_non_null(out);
        if (st != 2 || !strstr(out, why[i]))
            fail_msg("exit %d, output:\n%s", st, out);
        snprintf(want, sizeof want, ":4: handler \"talk\" does not run in "
                 "mode = %s", modes[i]);
        if (!strstr(out, want))
            fail_msg("no \"%s\" in:\n%s", want, out);
        free(out);
    }
}

/* Bad option values are configuration errors; conf/talk.ini is valid. */
static void
test_talk_options(void **unused)
{
    static const char *const check[] = { "--check", NULL };
    char ini[4096];
    char *out = NULL;
    FILE *f;
    size_t n;
    int st;

    (void)unused;
    st = ssd_run("[talk]\nhandler = talk\ntype = tcp\nmode = threading\n"
                 "port = 0\nwait_timeout = -1\n", check, &out);
    if (st != 2 || !strstr(out, ":6:") || !strstr(out, "wait_timeout"))
        fail_msg("exit %d, output:\n%s", st, out);
    free(out);
    st = ssd_run("[talk]\nhandler = talk\ntype = udp\nmode = threading\n"
                 "port = 0\n", check, &out);
    if (st != 2)
        fail_msg("udp accepted: exit %d, output:\n%s", st, out);
    free(out);
    /* two clients of different workers would never meet */
    st = ssd_run("[talk]\nhandler = talk\ntype = tcp\nmode = event\n"
                 "port = 0\nworkers = 2\n", check, &out);
    if (st != 2 || !strstr(out, ":6: talk pairs clients within one process"))
        fail_msg("workers = 2: exit %d, output:\n%s", st, out);
    free(out);

    f = fopen(SS_SOURCE_DIR "/conf/talk.ini", "r");
    assert_non_null(f);
    n = fread(ini, 1, sizeof ini - 1, f);
    fclose(f);
    ini[n] = '\0';
    st = ssd_run(ini, check, &out);
    if (st != 0)
        fail_msg("conf/talk.ini: exit %d, output:\n%s", st, out);
    free(out);
}

/* Ends whatever a test left running: after a failure, its daemon and its
 * client processes. */
static int
talk_teardown(void **unused)
{
    (void)unused;
    if (live_daemon != NULL) {
        ssd_print_log(live_daemon);
        ssd_cleanup(live_daemon);
        live_daemon = NULL;
    }
    for (size_t i = 0; i < 2; i++) {
        struct proc *p = live_proc[i];

        live_proc[i] = NULL;
        if (p == NULL || p->pid <= 0)
            continue;
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
        close(p->in);
        close(p->out);
    }
    return 0;
}

#define T(test) cmocka_unit_test_teardown(test, talk_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_talk_ten_turns),
        T(test_talk_project_clients),
        T(test_talk_seed_clients),
        T(test_talk_full_duplex_1mib),
        T(test_talk_second_pair),
        T(test_talk_waiter_disconnects),
        T(test_talk_reset),
        T(test_talk_wait_timeout),
        T(test_talk_never_reads),
        T(test_talk_bye_forms),
        T(test_talk_early_bytes),
        T(test_talk_waiter_leaves),
        T(test_talk_unix_stream),
        T(test_talk_server_timeout),
        T(test_talk_mode_refused),
        T(test_talk_options),
    };

    signal(SIGPIPE, SIG_IGN);
    if (cmocka_run_group_tests_name("talk, threading", tests, NULL,
                                    NULL) != 0)
        return 1;
    run_mode = "event";
    return cmocka_run_group_tests_name("talk, event", tests, NULL, NULL);
}
