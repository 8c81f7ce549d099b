/* test_proxy_daemon.c: proxy_protocol and proxy_from in the real daemon,
 * in every mode: raw v1 and v2 headers from a test client (the address
 * they carry is the client's for allow/deny, max_per_source, the logs and
 * ss_request_peer/ss_request_addr), LOCAL, malformed, partial, too long
 * and outside proxy_from; then Debian's haproxy in front of two daemons. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/crc32c.h"
#include "support/daemon.h"
#include "proxy.h"

#define PEER_SO SS_BUILD_DIR "/tests/plugins/peer.so"

static const unsigned char v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The local port of a connected socket. */
static unsigned
local_port(int fd)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;

    if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
        return 0;
    return ntohs(me.sin_port);
}

/* True if the server closes fd within ms without sending one byte. */
static bool
closed_silently(int fd, int ms)
{
    char buf[256];
    ssize_t n = ssd_recv_some(fd, buf, sizeof buf, ms);

    if (n > 0)
        fprintf(stderr, "got %zd bytes before the close: %.*s\n", n, (int)n,
                buf);
    return n == 0 || (n < 0 && errno != ETIMEDOUT);
}

/*
 * A v2 PROXY header (TCP over IPv6, 2001:db8::5 port sport to 2001:db8::1
 * port 443) into b, with a NOOP TLV and, if crc, a CRC32C TLV (wrong if
 * crc < 0).  Returns its length.
 */
static size_t
v2_inet6(unsigned char *b, unsigned sport, int crc)
{
    size_t n = 16;

    memcpy(b, v2_sig, 12);
    b[12] = 0x21;               /* version 2, PROXY */
    b[13] = 0x21;               /* AF_INET6, STREAM */
    inet_pton(AF_INET6, "2001:db8::5", b + n);
    inet_pton(AF_INET6, "2001:db8::1", b + n + 16);
    b[n + 32] = (unsigned char)(sport >> 8);
    b[n + 33] = (unsigned char)sport;
    b[n + 34] = 443 >> 8;
    b[n + 35] = 443 & 0xff;
    n += 36;
    memcpy(b + n, "\x04\x00\x03xyz", 6);          /* PP2_TYPE_NOOP */
    n += 6;
    if (crc != 0) {
        memcpy(b + n, "\x03\x00\x04\0\0\0\0", 7);  /* PP2_TYPE_CRC32C */
        n += 7;
    }
    b[14] = (unsigned char)((n - 16) >> 8);
    b[15] = (unsigned char)(n - 16);
    if (crc != 0) {
        uint32_t c = crc32c_bitwise(b, n) ^ (crc < 0 ? 1u : 0u);

        b[n - 4] = (unsigned char)(c >> 24);
        b[n - 3] = (unsigned char)(c >> 16);
        b[n - 2] = (unsigned char)(c >> 8);
        b[n - 1] = (unsigned char)c;
    }
    return n;
}

/* A v2 LOCAL header (a proxy's health check) into b: 16 bytes. */
static size_t
v2_local(unsigned char *b)
{
    memcpy(b, v2_sig, 12);
    b[12] = 0x20;
    b[13] = 0x00;
    b[14] = 0;
    b[15] = 0;
    return 16;
}

/* Connects to addr, sends the n bytes of hdr and "hello" in one write (so
 * that they come in one segment, as a proxy's often do), and expects the
 * peer plugin's first line to contain want, then "hello" back. */
static void
expect_peer(const char *addr, const void *hdr, size_t n, const char *want)
{
    char buf[512], out[5000 + 5];
    int fd = ssd_connect(addr);

    assert_true(fd >= 0);
    assert_true(n <= sizeof out - 5);
    memcpy(out, hdr, n);
    memcpy(out + n, "hello", 5);
    assert_int_equal(ssd_send_all(fd, out, n + 5), 0);
    if (!ssd_recv_until(fd, buf, sizeof buf, "hello", 5000))
        fprintf(stderr, "want \"%s\" then hello, got \"%s\"\n", want, buf);
    /* the handler's first read is "hello": no byte of the header */
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "\nhello"));
    assert_int_equal(strlen(strstr(buf, "\nhello")), 6);
    close(fd);
}

/* Sends hdr (n bytes) and expects the connection closed, nothing sent. */
static void
expect_closed(const char *addr, const void *hdr, size_t n)
{
    int fd = ssd_connect(addr);

    assert_true(fd >= 0);
    (void)ssd_send_all(fd, hdr, n);
    assert_true(closed_silently(fd, 5000));
    close(fd);
}

static bool
logged(struct ssd *d, const char *needle)
{
    if (ssd_log_wait(d, needle, 5000))
        return true;
    fprintf(stderr, "not in the log: \"%s\"\n", needle);
    ssd_print_log(d);
    return false;
}

/*
 * Everything a proxied server does, in one mode.  [p] takes any version
 * and denies 192.0.2.66; [m] (not forking) has max_per_source = 1; [o]
 * trusts only 127.0.0.2; [u] is a unix-stream server taking v2.
 */
static void
proxied_in(const char *mode, bool counts)
{
    char ini[2048], addr[64], buf[512], want[128];
    unsigned char hdr[5000];
    size_t n;
    struct ssd d;
    int fd, partial;
    double t0;

    snprintf(ini, sizeof ini,
             "[p]\nhandler = %s\nmode = %s\nport = 0\n"
             "proxy_protocol = any\ndeny = 192.0.2.66\n"
             "[o]\nhandler = echo\nmode = %s\nport = 0\n"
             "proxy_protocol = v1\nproxy_from = 127.0.0.2\n"
             "[u]\nhandler = %s\nmode = %s\ntype = unix-stream\n"
             "path = @DIR@/u.sock\nproxy_protocol = v2\n"
             "%s%s%s",
             PEER_SO, mode, mode, PEER_SO, mode,
             counts ? "[m]\nhandler = " : "", counts ? PEER_SO : "",
             counts ? "\nmode = threading\nport = 0\n"
                      "proxy_protocol = v1\nmax_per_source = 1\n" : "");
    assert_int_equal(ssd_start(&d, ssd_ini_mode(ini, mode), counts ? 4 : 3,
                               NULL), 0);
    snprintf(addr, sizeof addr, "%s", ssd_addr(&d, "p"));

    /* v1, header and data in one segment: the header's address, and the
     * handler reads only what follows the header */
    static const char v1[] = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
    expect_peer(addr, v1, strlen(v1), "peer 192.0.2.1:56324 port 56324\n");
    /* v2 over IPv6 with TLVs, a CRC32C among them */
    n = v2_inet6(hdr, 1234, 1);
    expect_peer(addr, hdr, n, "peer [2001:db8::5]:1234 port 1234\n");
    /* v2 without CRC32C */
    n = v2_inet6(hdr, 1235, 0);
    expect_peer(addr, hdr, n, "peer [2001:db8::5]:1235 port 1235\n");
    /* LOCAL: the connection's own address */
    fd = ssd_connect(addr);
    assert_true(fd >= 0);
    snprintf(want, sizeof want, "peer 127.0.0.1:%u port %u\n",
             local_port(fd), local_port(fd));
    n = v2_local(hdr);
    assert_int_equal(ssd_send_all(fd, hdr, n), 0);
    assert_int_equal(ssd_send_str(fd, "k"), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "\nk", 5000));
    assert_string_equal(buf, strcat(want, "k"));
    close(fd);
    /* a header in two parts: nothing reaches the handler before its end */
    fd = ssd_connect(addr);
    assert_true(fd >= 0);
    assert_int_equal(ssd_send_all(fd, v1, 20), 0);
    assert_true(ssd_recv_some(fd, buf, sizeof buf, 100) < 0);
    assert_int_equal(ssd_send_all(fd, v1 + 20, strlen(v1) - 20), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "\n", 5000));
    assert_string_equal(buf, "peer 192.0.2.1:56324 port 56324\n");
    close(fd);

    /* deny acts on the header's address, and the log names it */
    static const char denied[] =
        "PROXY TCP4 192.0.2.66 198.51.100.7 4000 443\r\nhello";
    expect_closed(addr, denied, strlen(denied));
    assert_true(logged(&d, "p: 192.0.2.66:4000: refused (in deny)"));

    /* malformed, too long (v1 and v2), a wrong CRC32C: closed, logged
     * with the connection's own address */
    expect_closed(addr, "GET / HTTP/1.0\r\n\r\n", 18);
    assert_true(logged(&d, ": invalid PROXY header (not a PROXY header); "
                           "closed"));
    memset(hdr, 'x', 300);
    memcpy(hdr, "PROXY UNKNOWN ", 14);
    expect_closed(addr, hdr, 300);
    assert_true(logged(&d, "invalid PROXY header (v1: line longer than 107 "
                           "bytes)"));
    memcpy(hdr, v2_sig, 12);
    memcpy(hdr + 12, "\x21\x11\x13\x88", 4);    /* 5000 bytes follow */
    memset(hdr + 16, 0, sizeof hdr - 16);
    expect_closed(addr, hdr, sizeof hdr);
    assert_true(logged(&d, "invalid PROXY header (v2: header longer than "
                           "4096 bytes)"));
    n = v2_inet6(hdr, 1236, -1);
    expect_closed(addr, hdr, n);
    assert_true(logged(&d, "invalid PROXY header (v2: CRC32C mismatch)"));
    assert_false(ssd_log_has(&d, "2001:db8::5]:1236"));

    /* from an address outside proxy_from: closed, even with a header */
    expect_closed(ssd_addr(&d, "o"), v1, strlen(v1));
    assert_true(logged(&d, "o: 127.0.0.1:"));
    assert_true(logged(&d, "refused (not in proxy_from)"));
    /* [o] takes v1 from 127.0.0.2 */
    fd = ssd_connect_from("127.0.0.2", ssd_port(&d, "o"));
    assert_true(fd >= 0);
    assert_int_equal(ssd_send_str(fd, v1), 0);
    assert_int_equal(ssd_send_str(fd, "echo"), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "echo", 5000));
    assert_string_equal(buf, "echo");
    close(fd);

    /* a unix-stream server: every connection carries a header */
    n = v2_inet6(hdr, 1237, 1);
    expect_peer(ssd_addr(&d, "u"), hdr, n,
                "peer [2001:db8::5]:1237 port 1237\n");

    if (counts) {
        /* max_per_source counts the header's addresses, not 127.0.0.1 */
        static const char a9[] =
            "PROXY TCP4 192.0.2.9 198.51.100.7 4001 443\r\n";
        static const char b9[] =
            "PROXY TCP4 192.0.2.9 198.51.100.7 4002 443\r\n";
        static const char a10[] =
            "PROXY TCP4 192.0.2.10 198.51.100.7 4003 443\r\n";
        int held = ssd_connect(ssd_addr(&d, "m"));

        assert_int_equal(ssd_send_str(held, a9), 0);
        assert_true(ssd_recv_until(held, buf, sizeof buf, "\n", 5000));
        assert_string_equal(buf, "peer 192.0.2.9:4001 port 4001\n");
        expect_closed(ssd_addr(&d, "m"), b9, strlen(b9));
        assert_true(logged(&d, "m: 192.0.2.9:4002: refused (max_per_source "
                               "reached)"));
        expect_peer(ssd_addr(&d, "m"), a10, strlen(a10),
                    "peer 192.0.2.10:4003 port 4003\n");
        close(held);
    }

    /* partial, then silent: closed after 3 s, logged */
    partial = ssd_connect(addr);
    assert_true(partial >= 0);
    assert_int_equal(ssd_send_all(partial, v1, 30), 0);
    t0 = now_s();
    assert_true(closed_silently(partial, 8000));
    assert_true(now_s() - t0 > 2.5);
    close(partial);
    assert_true(logged(&d, ": no complete PROXY header within 3 s (30 bytes "
                           "came); closed"));
    /* and the server still serves */
    expect_peer(addr, v1, strlen(v1), "peer 192.0.2.1:56324 port 56324\n");
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_proxy_daemon_sync(void **state)
{
    (void)state;
    proxied_in("sync", false);
}

static void
test_proxy_daemon_threading(void **state)
{
    (void)state;
    proxied_in("threading", true);
}

static void
test_proxy_daemon_forking(void **state)
{
    (void)state;
    proxied_in("forking", false);
}

static void
test_proxy_daemon_event(void **state)
{
    (void)state;
    proxied_in("event", true);
}

static void
test_proxy_daemon_config_errors(void **state)
{
    static const struct ssd_config_case cases[] = {
        { "[e]\nhandler = echo\ntype = udp\nport = 0\nproxy_protocol = v1\n",
          ":5: \"proxy_protocol\" does not apply to type udp (stream types "
          "only)" },
        { "[e]\nhandler = echo\ntype = unix-dgram\npath = x\n"
          "proxy_from = ::1\n", ":5: \"proxy_from\" does not apply to type "
          "unix-dgram" },
        { "[e]\nhandler = echo\nport = 0\nproxy_protocol = v3\n",
          ":4: invalid proxy_protocol \"v3\" (off, v1, v2, any)" },
        { "[e]\nhandler = echo\nport = 0\nproxy_protocol = any\n"
          "proxy_from = 10.0.0.0/8 haproxy\n",
          ":5: invalid proxy_from: \"haproxy\" is not an address or CIDR "
          "block" },
        { "[e]\nhandler = echo\nport = 0\nproxy_from = 10.0.0.1\n",
          ":4: \"proxy_from\" needs proxy_protocol = v1, v2 or any" },
        { "[e]\nhandler = echo\ntype = unix-stream\npath = x\n"
          "proxy_protocol = v2\nproxy_from = ::1\n",
          ":6: \"proxy_from\" does not apply to type unix-stream" },
        { "[e]\nhandler = echo\nmode = forking\nport = 0\n"
          "proxy_protocol = v1\nmax_per_source = 2\n",
          ":6: \"max_per_source\" does not apply to mode = forking with "
          "proxy_protocol" },
    };

    (void)state;
    assert_int_equal(ssd_config_errors(cases, sizeof cases / sizeof *cases),
                     0);
}

/* ---- haproxy in front ------------------------------------------------------ */


static bool
have_haproxy(void)
{
    return system("command -v haproxy >/dev/null 2>&1") == 0;
}

/* Starts haproxy -db on cfg; waits (10 s) until port accepts.  Its pid,
 * or -1. */
static pid_t
haproxy_start(const char *cfg, int port)
{
    double deadline = now_s() + 10;
    pid_t pid = fork();

    if (pid == 0) {
        execlp("haproxy", "haproxy", "-f", cfg, "-db", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    while (now_s() < deadline) {
        int fd = ssd_connect_from("127.0.0.1", port);
        int status;

        if (fd >= 0) {
            close(fd);
            return pid;
        }
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;          /* it exited: its error is on stderr */
        (void)poll(NULL, 0, 20);        /* its port is not open yet */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* The haproxy the test started: stopped by the teardown too, so that a
 * failed assertion never leaves it running. */
static pid_t haproxy_pid = -1;

static int
haproxy_stop(void **state)
{
    int status;

    (void)state;
    if (haproxy_pid <= 0)
        return 0;
    kill(haproxy_pid, SIGTERM);
    if (waitpid(haproxy_pid, &status, 0) != haproxy_pid)
        return -1;
    haproxy_pid = -1;
    return 0;
}

/* Through haproxy on port: from 127.0.0.2 served, and the daemon saw
 * 127.0.0.2 with this socket's port; from 127.0.0.3 refused. */
static void
through(struct ssd *d, const char *section, int port)
{
    char buf[256], want[128], needle[64];
    int fd = ssd_connect_from("127.0.0.2", port);

    assert_true(fd >= 0);
    snprintf(want, sizeof want, "peer 127.0.0.2:%u port %u\n",
             local_port(fd), local_port(fd));
    assert_int_equal(ssd_send_str(fd, "via"), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "via", 5000));
    assert_non_null(strstr(buf, want));
    close(fd);
    fd = ssd_connect_from("127.0.0.3", port);
    assert_true(fd >= 0);
    snprintf(needle, sizeof needle, "%s: 127.0.0.3:%u: refused (in deny)",
             section, local_port(fd));
    (void)ssd_send_str(fd, "via");
    assert_true(closed_silently(fd, 5000));
    close(fd);
    assert_true(logged(d, needle));
}

static void
test_proxy_daemon_haproxy(void **state)
{
    static const char tmpl[] =
        "[%s]\nhandler = %s\nmode = %s\nport = 0\n"
        "proxy_protocol = %s\nallow = 127.0.0.1 127.0.0.2 127.0.0.3\n"
        "deny = 127.0.0.3\n";
    char ini1[512], ini2[512], dir[] = "/tmp/ss-haproxy-XXXXXX", cfg[64];
    struct ssd d1, d2;
    int p1, p2;
    FILE *f;

    (void)state;
    if (!have_haproxy()) {
        /* scripts/install-deps installs it */
        fprintf(stderr, "SKIP test_proxy_daemon_haproxy: no haproxy on "
                "PATH (apt-get install haproxy)\n");
        skip();
    }
    snprintf(ini1, sizeof ini1, tmpl, "h1", PEER_SO, "threading", "v1");
    snprintf(ini2, sizeof ini2, tmpl, "h2", PEER_SO, "event", "v2");
    assert_int_equal(ssd_start(&d1, ini1, 1, NULL), 0);
    assert_int_equal(ssd_start(&d2, ini2, 1, NULL), 0);
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/haproxy.cfg", dir);
    p1 = ssd_free_port();
    p2 = ssd_free_port();
    assert_true(p1 > 0 && p2 > 0 && p1 != p2);
    f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "defaults\n  mode tcp\n  timeout connect 5s\n"
            "  timeout client 30s\n  timeout server 30s\n"
            "frontend f1\n  bind 127.0.0.1:%d\n  default_backend b1\n"
            "backend b1\n  server s1 127.0.0.1:%d send-proxy\n"
            "frontend f2\n  bind 127.0.0.1:%d\n  default_backend b2\n"
            "backend b2\n  server s2 127.0.0.1:%d send-proxy-v2\n",
            p1, ssd_port(&d1, "h1"), p2, ssd_port(&d2, "h2"));
    assert_int_equal(fclose(f), 0);
    /* the readiness look (a connection from 127.0.0.1) reaches d2 */
    haproxy_pid = haproxy_start(cfg, p2);
    if (haproxy_pid < 0)
        fprintf(stderr, "haproxy did not start (its stderr is above)\n");
    assert_true(haproxy_pid > 0);
    through(&d1, "h1", p1);
    through(&d2, "h2", p2);
    assert_int_equal(haproxy_stop(NULL), 0);
    unlink(cfg);
    rmdir(dir);
    assert_int_equal(ssd_stop(&d1, SIGTERM), 0);
    assert_int_equal(ssd_stop(&d2, SIGTERM), 0);
    ssd_cleanup(&d1);
    ssd_cleanup(&d2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_daemon_config_errors),
        cmocka_unit_test(test_proxy_daemon_sync),
        cmocka_unit_test(test_proxy_daemon_threading),
        cmocka_unit_test(test_proxy_daemon_forking),
        cmocka_unit_test(test_proxy_daemon_event),
        cmocka_unit_test_teardown(test_proxy_daemon_haproxy, haproxy_stop),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
