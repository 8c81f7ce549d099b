/* test_classics.c: the inetd classics against the real daemon: daytime
 * (RFC 867), time (RFC 868), discard (RFC 863) and chargen (RFC 864) on
 * every type and mode, at chosen instants (2036's wrap), the low-port
 * rule for datagram replies, a chargen client that stops reading, and
 * conf/inetd.ini. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "support/daemon.h"

#define WAIT_MS     5000            /* the bound on any one wait */
#define EPOCH_1900  2208988800u     /* RFC 868: 1900-01-01 to 1970-01-01 */
#define LINE_LEN    74              /* chargen: 72 characters, CR LF */
#define NEAR_S      5               /* "now", give or take */

/* ---- helpers ------------------------------------------------------------ */

/* One section per type and mode, named TYPE-MODE, each running handler. */
static void
matrix_ini(char *ini, size_t size, const char *handler)
{
    size_t used = 0;

    for (size_t t = 0; t < SSD_NTYPES; t++)
        for (size_t m = 0; m < SSD_NMODES; m++) {
            used = ssd_appendf(ini, size, used, "[%s-%s]\nhandler = %s\n"
                           "type = %s\nmode = %s\n", ssd_types[t],
                           ssd_modes[m], handler, ssd_types[t], ssd_modes[m]);
            if (strncmp(ssd_types[t], "unix", 4) == 0)
                used = ssd_appendf(ini, size, used,
                                   "path = @DIR@/%s-%s.sock\n",
                                   ssd_types[t], ssd_modes[m]);
            else
                used = ssd_appendf(ini, size, used,
                               "host = 127.0.0.1\nport = 0\n");
        }
}

/* Reads a stream until the peer closes it.  Returns the bytes read before
 * the end, or -1 if it did not end within WAIT_MS or overflowed buf. */
static ssize_t
read_to_eof(int fd, char *buf, size_t size)
{
    size_t have = 0;

    for (;;) {
        ssize_t n = ssd_recv_some(fd, buf + have, size - have, WAIT_MS);

        if (n == 0)
            return (ssize_t)have;
        if (n < 0)
            return -1;
        have += (size_t)n;
        if (have == size)
            return -1;
    }
}

/*
 * A server's answer: a stream's whole output up to the server's close, or
 * the reply to one datagram.  Returns its length, or -1 if none came (or a
 * stream did not end) within WAIT_MS.
 */
static ssize_t
ask(const char *addr, const char *type, char *buf, size_t size)
{
    int fd = ssd_is_dgram(type) ? ssd_dgram(addr) : ssd_connect(addr);
    ssize_t n = -1;

    assert_true(fd >= 0);
    if (!ssd_is_dgram(type))
        n = read_to_eof(fd, buf, size);
    else if (ssd_send_str(fd, "what time is it?\r\n") == 0)
        n = ssd_recv_some(fd, buf, size, WAIT_MS);
    close(fd);
    return n;
}

/*
 * Parses sockserv's daytime line, "DD MON YYYY HH:MM:SS UTC\r\n" (xinetd's
 * format, in UTC), exactly.  Returns the time it names, or -1 if the text
 * has another shape or names no real date.
 */
static time_t
parse_daytime(const char *buf, size_t len)
{
    static const char shape[] = "99 AAA 9999 99:99:99 UTC\r\n";
    static const char months[] = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC";
    struct tm tm = { 0 }, back;
    char mon[4];
    const char *at;
    time_t t;

    if (len != sizeof shape - 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (shape[i] == '9' ? !isdigit(c)
            : shape[i] == 'A' ? !isupper(c) : c != (unsigned char)shape[i])
            return -1;
    }
    if (sscanf(buf, "%2d %3s %4d %2d:%2d:%2d", &tm.tm_mday, mon,
               &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    at = strstr(months, mon);
    if (at == NULL || (at - months) % 3 != 0)
        return -1;
    tm.tm_mon = (int)(at - months) / 3;
    tm.tm_year -= 1900;
    t = timegm(&tm);
    /* timegm normalises 31 FEB into March: a real date comes back whole */
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL ||
        back.tm_mday != tm.tm_mday || back.tm_mon != tm.tm_mon ||
        back.tm_hour != tm.tm_hour || back.tm_sec != tm.tm_sec)
        return -1;
    return t;
}

static uint32_t
be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
           (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

/* True if v, RFC 868's count (modulo 2^32), is within NEAR_S of now. */
static bool
rfc868_near_now(uint32_t v)
{
    uint32_t want = (uint32_t)((uint64_t)time(NULL) + EPOCH_1900);
    uint32_t ahead = v - want, behind = want - v;

    if (ahead > NEAR_S && behind > NEAR_S)
        fprintf(stderr, "time: got %u, now is %u\n", v, want);
    return ahead <= NEAR_S || behind <= NEAR_S;
}

/*
 * True if buf holds len bytes of chargen's pattern from the start of line
 * `first`: line i is the 72 characters from ' ' + i mod 95 on, wrapping
 * after '~', then CR LF.  Reports the first byte that differs.
 */
static bool
is_chargen(const char *buf, size_t len, size_t first)
{
    for (size_t k = 0; k < len; k++) {
        size_t line = first + k / LINE_LEN, col = k % LINE_LEN;
        char want = col == 72 ? '\r' : col == 73 ? '\n'
                  : (char)(' ' + (line + col) % 95);

        if (buf[k] != want) {
            fprintf(stderr, "chargen: byte %zu (line %zu, column %zu) is "
                    "0x%02x, want 0x%02x\n", k, line, col,
                    (unsigned char)buf[k], (unsigned char)want);
            return false;
        }
    }
    return true;
}

/* Bytes queued for the UDP socket on local port `port` (/proc/net/udp),
 * -1 if there is none. */
static long
udp_rx_queue(int port)
{
    char line[512];
    long rx = -1;
    FILE *fp = fopen("/proc/net/udp", "r");

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof line, fp) != NULL) {
        unsigned lport;
        unsigned long txq, rxq;

        if (sscanf(line, " %*u: %*x:%x %*x:%*x %*x %lx:%lx", &lport, &txq,
                   &rxq) == 3 && (int)lport == port) {
            rx = (long)rxq;
            break;
        }
    }
    fclose(fp);
    return rx;
}

/*
 * Waits until the server has taken (received) every datagram sent to it
 * through fd: for udp, its socket's receive queue is empty; for
 * unix-dgram, fd's own send queue is, as a Unix datagram's memory is
 * charged to its sender until the receiver reads it.  True within WAIT_MS.
 */
static bool
wait_taken(int fd, const char *type, int port)
{
    for (int ms = 0; ms < WAIT_MS; ms += 10) {
        long q = -1;
        int n;

        if (strcmp(type, "udp") == 0)
            q = udp_rx_queue(port);
        else if (ioctl(fd, SIOCOUTQ, &n) == 0)
            q = n;
        if (q == 0)
            return true;
        poll(NULL, 0, 10);
    }
    fprintf(stderr, "%s port %d: datagrams still queued after %d ms\n",
            type, port, WAIT_MS);
    return false;
}

/* True if nothing at all waits to be read on fd. */
static bool
nothing_received(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

    if (n >= 0)
        fprintf(stderr, "got %zd bytes where none were due\n", n);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ---- what each handler must answer ----------------------------------- */

static void
assert_daytime(const char *addr, const char *type)
{
    char buf[256];
    ssize_t n = ask(addr, type, buf, sizeof buf - 1);
    time_t t;

    assert_true(n > 0);
    buf[n] = '\0';
    t = parse_daytime(buf, (size_t)n);
    if (t == (time_t)-1)
        fprintf(stderr, "daytime from %s (%s): \"%s\"\n", addr, type, buf);
    assert_true(t != (time_t)-1);
    assert_true(llabs((long long)(t - time(NULL))) <= NEAR_S);
}

/* Exactly 4 bytes (then the end, on a stream), within seconds of now. */
static void
assert_time(const char *addr, const char *type)
{
    char buf[64];
    ssize_t n = ask(addr, type, buf, sizeof buf);

    assert_int_equal(n, 4);
    assert_true(rfc868_near_now(be32(buf)));
}

/*
 * A stream: 256 KiB go in, the client half-closes, and the server closes
 * without a byte; twice, as one connection must not spoil the next.
 * Datagrams: three, each taken by the server, and no reply to any.
 */
static void
assert_discard(const char *addr, const char *type, int port)
{
    static char junk[256 * 1024];
    char buf[64];
    int fd;

    memset(junk, 'j', sizeof junk);
    for (int round = 0; round < 2; round++) {
        if (ssd_is_dgram(type)) {
            fd = ssd_dgram(addr);
            assert_true(fd >= 0);
            for (int i = 0; i < 3; i++) {
                assert_int_equal(ssd_send_str(fd, "throw me away\n"), 0);
                assert_true(wait_taken(fd, type, port));
            }
            assert_true(nothing_received(fd));
        } else {
            fd = ssd_connect(addr);
            assert_true(fd >= 0);
            assert_int_equal(ssd_send_all(fd, junk, sizeof junk), 0);
            assert_int_equal(shutdown(fd, SHUT_WR), 0);
            assert_int_equal(read_to_eof(fd, buf, sizeof buf), 0);
        }
        close(fd);
    }
}

/*
 * A stream: the client sends a line and half-closes at once, and still
 * gets 200 lines (past one 95-line period) of the pattern from line 0 (its
 * line thrown away, not echoed); then it closes while the server still
 * sends.  Datagrams: 12
 * replies, each 1 to 6 whole lines from line 0 (at most 512 characters),
 * and not all of one length.
 */
static void
assert_chargen(const char *addr, const char *type)
{
    char buf[200 * LINE_LEN];
    int fd;

    if (!ssd_is_dgram(type)) {
        fd = ssd_connect(addr);
        assert_true(fd >= 0);
        assert_int_equal(ssd_send_str(fd, "ignore me\r\n"), 0);
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        assert_int_equal(ssd_recv_n(fd, buf, sizeof buf, WAIT_MS),
                         sizeof buf);
        assert_true(is_chargen(buf, sizeof buf, 0));
        close(fd);
        return;
    }
    bool seen[7] = { false };
    int lengths = 0;

    fd = ssd_dgram(addr);
    assert_true(fd >= 0);
    for (int i = 0; i < 12; i++) {
        ssize_t n;

        assert_int_equal(ssd_send_str(fd, "x"), 0);
        n = ssd_recv_some(fd, buf, sizeof buf, WAIT_MS);
        assert_true(n >= LINE_LEN && n <= 512);
        assert_int_equal(n % LINE_LEN, 0);
        assert_true(is_chargen(buf, (size_t)n, 0));
        if (!seen[n / LINE_LEN]) {
            seen[n / LINE_LEN] = true;
            lengths++;
        }
    }
    close(fd);
    /* six lengths, 12 draws: all alike by chance once in 3.6e8 runs */
    assert_true(lengths >= 2);
}

/* Runs handler on every type and mode in one daemon and checks each. */
static void
run_matrix(const char *handler)
{
    char ini[4096], name[64];
    struct ssd d;

    matrix_ini(ini, sizeof ini, handler);
    assert_int_equal(ssd_start(&d, ini, SSD_NTYPES * SSD_NMODES, NULL), 0);
    for (size_t t = 0; t < SSD_NTYPES; t++)
        for (size_t m = 0; m < SSD_NMODES; m++) {
            snprintf(name, sizeof name, "%s-%s", ssd_types[t], ssd_modes[m]);
            const char *addr = ssd_addr(&d, name);

            assert_non_null(addr);
            if (strcmp(handler, "daytime") == 0)
                assert_daytime(addr, ssd_types[t]);
            else if (strcmp(handler, "time") == 0)
                assert_time(addr, ssd_types[t]);
            else if (strcmp(handler, "discard") == 0)
                assert_discard(addr, ssd_types[t], ssd_port(&d, name));
            else
                assert_chargen(addr, ssd_types[t]);
        }
    assert_int_equal(kill(d.pid, 0), 0);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* ---- the tests ---------------------------------------------------------- */

static void
test_daytime_every_type_and_mode(void **state)
{
    (void)state;
    run_matrix("daytime");
}

static void
test_time_every_type_and_mode(void **state)
{
    (void)state;
    run_matrix("time");
}

static void
test_discard_every_type_and_mode(void **state)
{
    (void)state;
    run_matrix("discard");
}

static void
test_chargen_every_type_and_mode(void **state)
{
    (void)state;
    run_matrix("chargen");
}

/*
 * At a chosen instant (the daemon's time() is LD_PRELOADed to answer
 * SS_FAKE_TIME), daytime's line and time's 4 bytes are exactly the ones
 * due, on a stream and in a datagram.
 */
static void
fake_time_case(long long t, const char *daytime, uint32_t rfc868)
{
    static const char ini[] =
        "[daytime]\nhandler = daytime\nmode = threading\nport = 0\n"
        "[daytime-udp]\nhandler = daytime\ntype = udp\nport = 0\n"
        "[time]\nhandler = time\nmode = forking\nport = 0\n"
        "[time-udp]\nhandler = time\ntype = udp\nport = 0\n";
    static const char *const names[] = { "daytime", "daytime-udp", "time",
                                         "time-udp" };
    char shim[512], when[32], buf[256];
    struct ssd d;
    int rc;

    snprintf(shim, sizeof shim, "%s",
             ssd_build_path("tests/plugins/fake_time.so"));
    if (access(shim, R_OK) != 0) {
        fprintf(stderr, "%s: not built (make tests builds it)\n", shim);
        fail();
    }
    snprintf(when, sizeof when, "%lld", t);
    /* for the daemon only: the environment is read when it is exec'd */
    assert_int_equal(setenv("LD_PRELOAD", shim, 1), 0);
    assert_int_equal(setenv("SS_FAKE_TIME", when, 1), 0);
    /* a zone 3 hours west of UTC: daytime must not use it */
    assert_int_equal(setenv("TZ", "WST+3", 1), 0);
    rc = ssd_start(&d, ini, 4, NULL);
    unsetenv("LD_PRELOAD");
    unsetenv("SS_FAKE_TIME");
    unsetenv("TZ");
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < 4; i++) {
        const char *type = strstr(names[i], "udp") ? "udp" : "tcp";
        ssize_t n = ask(ssd_addr(&d, names[i]), type, buf, sizeof buf - 1);

        assert_true(n > 0);
        buf[n] = '\0';
        if (i < 2) {
            assert_string_equal(buf, daytime);
        } else {
            assert_int_equal(n, 4);
            assert_int_equal(be32(buf), rfc868);
        }
    }
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_daytime_time_at_chosen_instants(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    /* an ASan daemon refuses a library preloaded before its runtime */
    skip();
#endif
    /* RFC 868's own example: 2,208,988,800 is 1970-01-01 00:00 */
    fake_time_case(0, "01 JAN 1970 00:00:00 UTC\r\n", 2208988800u);
    /* the last second before the 32-bit count wraps ... */
    fake_time_case(2085978495, "07 FEB 2036 06:28:15 UTC\r\n", 0xffffffffu);
    /* ... and an hour after: counted on from 0, not refused */
    fake_time_case(2085978496LL + 3600, "07 FEB 2036 07:28:16 UTC\r\n",
                   3600);
    fake_time_case(1796460901, "05 DEC 2026 08:55:01 UTC\r\n",
                   (uint32_t)(1796460901u + EPOCH_1900));
}

/* A UDP socket bound to the loopback's port `port` of family and
 * connect()ed to the loopback's port `to`.  -1 (errno) if not. */
static int
udp_from(int family, int port, int to)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    for (int step = 0; step < 2; step++) {
        int p = step == 0 ? port : to;

        if (family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;

            in->sin_family = AF_INET;
            in->sin_port = htons((uint16_t)p);
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof *in;
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)p);
            in6->sin6_addr = in6addr_loopback;
            len = sizeof *in6;
        }
        if ((step == 0 ? bind(fd, (struct sockaddr *)&ss, len)
                       : connect(fd, (struct sockaddr *)&ss, len)) < 0) {
            int e = errno;

            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

/*
 * A datagram from source port 1023 gets no reply, and the log (at debug
 * level) says it was dropped; one from 1024 gets its reply.  Each server
 * is sync, so the reply to 1024 is proof that the request from 1023 had
 * ended: had it been answered, that answer would be waiting.  IPv4 for
 * all three repliers, IPv6 for one.
 */
static void
test_low_source_port_gets_no_reply(void **state)
{
    static const char ini[] =
        "[global]\nlog_level = debug\n"
        "[daytime]\nhandler = daytime\ntype = udp\nport = 0\n"
        "[time]\nhandler = time\ntype = udp\nport = 0\n"
        "[chargen]\nhandler = chargen\ntype = udp\nport = 0\n"
        "[daytime6]\nhandler = daytime\ntype = udp\nhost = ::1\nport = 0\n";
    static const char *const names[] = { "daytime", "time", "chargen",
                                         "daytime6" };
    char buf[1024], want[160];
    struct ssd d;

    (void)state;
    assert_int_equal(ssd_start(&d, ini, 4, NULL), 0);
    for (size_t i = 0; i < 4; i++) {
        int family = i == 3 ? AF_INET6 : AF_INET;
        int port = ssd_port(&d, names[i]);
        int low = udp_from(family, 1023, port), high;

        if (low < 0 && (errno == EACCES || errno == EADDRINUSE)) {
            fprintf(stderr, "cannot bind port 1023 (%s): root is needed\n",
                    strerror(errno));
            ssd_stop(&d, SIGTERM);
            ssd_cleanup(&d);
            skip();
        }
        assert_true(low >= 0);
        high = udp_from(family, 1024, port);
        assert_true(high >= 0);

        assert_int_equal(ssd_send_str(low, "x"), 0);
        snprintf(want, sizeof want, "debug: %s: %s:1023: source port 1023 is "
                 "below 1024, datagram dropped without reply", names[i],
                 family == AF_INET ? "127.0.0.1" : "[::1]");
        if (!ssd_log_wait(&d, want, WAIT_MS)) {
            fprintf(stderr, "log lacks \"%s\"\n", want);
            ssd_print_log(&d);
            fail();
        }
        assert_int_equal(ssd_send_str(high, "x"), 0);
        assert_true(ssd_recv_some(high, buf, sizeof buf, WAIT_MS) > 0);
        assert_true(nothing_received(low));
        close(low);
        close(high);
    }
    assert_false(ssd_log_has(&d, "source port 1024"));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* The bytes waiting to be read on fd, -1 on error. */
static long
inq(int fd)
{
    int n;

    return ioctl(fd, SIOCINQ, &n) == 0 ? n : -1;
}

/*
 * Waits until the client's receive queue has stopped growing (the same,
 * and not empty, over five looks 20 ms apart): the server can send no
 * more and its writes wait.  Returns the queue's length, -1 if it never
 * settled within WAIT_MS.
 */
static long
wait_queue_full(int fd)
{
    long last = -1;
    int same = 0;

    for (int ms = 0; ms < WAIT_MS; ms += 20) {
        long q = inq(fd);

        same = q > 0 && q == last ? same + 1 : 0;
        if (same == 5)
            return q;
        last = q;
        poll(NULL, 0, 20);
    }
    return -1;
}

/*
 * A chargen client that stops reading: once its receive queue is full,
 * the daemon's memory stays within 2 MiB of what it was before the client
 * came, for two seconds of not reading; then the client reads on and the
 * pattern runs on unbroken from line 0 (nothing was lost or skipped).  On
 * tcp (threading) and unix-stream (sync).
 */
static void
test_chargen_client_that_stops_reading(void **state)
{
    static const char ini[] =
        "[tcp]\nhandler = chargen\nmode = threading\nhost = 127.0.0.1\n"
        "port = 0\n"
        "[unix]\nhandler = chargen\ntype = unix-stream\nmode = sync\n"
        "path = @DIR@/c.sock\n";
    const size_t more = 64 * 1024;      /* read past the queue too */
    struct ssd d;

    (void)state;
    assert_int_equal(ssd_start(&d, ini, 2, NULL), 0);
    for (int k = 0; k < 2; k++) {
        const char *addr = ssd_addr(&d, k == 0 ? "tcp" : "unix");
        long before = ssd_proc_status(d.pid, "VmRSS"), peak = 0, queued;
        int fd;

        assert_true(before > 0);
        if (k == 0) {
            struct sockaddr_in in = { .sin_family = AF_INET };
            int small = 16384;

            /* a small window before connect, so it fills soon */
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            assert_true(fd >= 0);
            assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                        sizeof small), 0);
            in.sin_port = htons((uint16_t)ssd_port(&d, "tcp"));
            in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof in),
                             0);
        } else {
            fd = ssd_connect(addr);
            assert_true(fd >= 0);
        }
        queued = wait_queue_full(fd);
        assert_true(queued > 0);
        for (int ms = 0; ms <= 2000 && peak <= before + 2048; ms += 100) {
            long rss = ssd_proc_status(d.pid, "VmRSS");

            assert_true(rss > 0);
            if (rss > peak)
                peak = rss;
            poll(NULL, 0, 100);
        }
        if (peak > before + 2048) {
            fprintf(stderr, "%s: RSS grew from %ld to %ld KiB while the "
                    "client did not read\n", addr, before, peak);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
            /* (a sanitizer's shadow memory grows on its own) */
            fail();
#endif
        }

        size_t len = (size_t)queued + more;
        len -= len % LINE_LEN;
        char *buf = malloc(len);

        assert_non_null(buf);
        assert_int_equal(ssd_recv_n(fd, buf, len, WAIT_MS), len);
        assert_true(is_chargen(buf, len, 0));
        free(buf);
        close(fd);
    }
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/*
 * conf/inetd.ini, with every port made 0, starts its eight servers and
 * each answers as its RFC says.
 */
static void
test_example_config(void **state)
{
    static const char *const names[] = {
        "daytime", "daytime-udp", "time", "time-udp",
        "discard", "discard-udp", "chargen", "chargen-udp",
    };
    char path[512], line[512], ini[8192];
    size_t used = 0;
    struct ssd d;
    FILE *fp;

    (void)state;
    snprintf(path, sizeof path, "%s/conf/inetd.ini", SS_SOURCE_DIR);
    fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL)
        used = ssd_appendf(ini, sizeof ini, used, "%s",
                       strncmp(line, "port = ", 7) == 0 ? "port = 0\n"
                                                        : line);
    fclose(fp);
    assert_int_equal(ssd_start(&d, ini, 8, NULL), 0);
    for (size_t i = 0; i < 8; i++) {
        const char *addr = ssd_addr(&d, names[i]);
        const char *type = strstr(names[i], "udp") ? "udp" : "tcp";

        assert_non_null(addr);
        switch (i / 2) {
        case 0: assert_daytime(addr, type); break;
        case 1: assert_time(addr, type); break;
        case 2: assert_discard(addr, type, ssd_port(&d, names[i])); break;
        default: assert_chargen(addr, type); break;
        }
    }
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daytime_every_type_and_mode),
        cmocka_unit_test(test_time_every_type_and_mode),
        cmocka_unit_test(test_discard_every_type_and_mode),
        cmocka_unit_test(test_chargen_every_type_and_mode),
        cmocka_unit_test(test_daytime_time_at_chosen_instants),
        cmocka_unit_test(test_low_source_port_gets_no_reply),
        cmocka_unit_test(test_chargen_client_that_stops_reading),
        cmocka_unit_test(test_example_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
