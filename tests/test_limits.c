/* test_limits.c: the daemon's limits, access control, privileges, log
 * file and graceful shutdown, against the real daemon on port 0. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"

/* Connected, then closed by the server before any echo. */
static void
assert_fd_refused(int fd)
{
    assert_true(fd >= 0);
    (void)ssd_send_str(fd, "k");
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
}

static void
assert_refused(const char *addr)
{
    int fd = ssd_connect(addr);

    if (fd < 0)
        return;                 /* refused at connect: also refused */
    (void)ssd_send_str(fd, "k");
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
}

static void
deny_and_allow_in(const char *mode)
{
    static const char tmpl[] =
        "[d]\nhandler = echo\nmode = threading\nport = 0\n"
        "deny = 10.0.0.0/8, 127.0.0.0/8\n"
        "[a]\nhandler = echo\nmode = threading\nhost = *\nport = 0\n"
        "allow = ::1 192.0.2.0/24\n"
        "[both]\nhandler = echo\nmode = threading\nhost = *\nport = 0\n"
        "allow = 127.0.0.0/8 ::1\ndeny = 127.0.0.2\n";
    const char *ini = ssd_ini_mode(tmpl, mode);
    char addr[64];
    struct ssd d;

    assert_int_equal(ssd_start(&d, ini, 3, NULL), 0);
    assert_refused(ssd_addr(&d, "d"));
    assert_true(ssd_log_wait(&d, "refused (in deny)", 5000));
    /* a dual-stack server: IPv4 127.0.0.1 is not in allow, ::1 is */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ssd_port(&d, "a"));
    assert_refused(addr);
    assert_true(ssd_log_wait(&d, "a: 127.0.0.1:", 5000));
    assert_true(ssd_log_has(&d, "refused (not in allow)"));
    snprintf(addr, sizeof addr, "[::1]:%d", ssd_port(&d, "a"));
    assert_true(ssd_echo_once(addr));
    /* deny wins over allow */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ssd_port(&d, "both"));
    assert_true(ssd_echo_once(addr));
    assert_fd_refused(ssd_connect_from("127.0.0.2", ssd_port(&d, "both")));
    assert_true(ssd_log_wait(&d, "both: 127.0.0.2:", 5000));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* The same in threading and in event mode. */
static void
test_limits_deny_and_allow(void **state)
{
    (void)state;
    deny_and_allow_in("threading");
    deny_and_allow_in("event");
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How many lines of the log contain needle. */
static int
log_count(struct ssd *d, const char *needle)
{
    char *log = ssd_log_copy(d);
    int n = 0;

    assert_non_null(log);
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/*
 * Refusals are logged per address: two addresses refused within one
 * second are both named; the same address again within its second is
 * counted, not logged, and the count comes with its next line.
 */
static void
test_limits_refusal_log_per_address(void **state)
{
    static const char ini[] =
        "[d]\nhandler = echo\nmode = threading\nport = 0\n"
        "deny = 127.0.0.2 127.0.0.3 127.0.0.4\n";
    double start, first, again;
    struct ssd d;
    int port;

    (void)state;
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    port = ssd_port(&d, "d");
    start = now_s();
    assert_fd_refused(ssd_connect_from("127.0.0.2", port));
    first = now_s();            /* 127.0.0.2's line was written by now */
    assert_fd_refused(ssd_connect_from("127.0.0.3", port));
    assert_fd_refused(ssd_connect_from("127.0.0.2", port));
    again = now_s();
    /* a line after those: the log has caught up with them once it shows */
    assert_fd_refused(ssd_connect_from("127.0.0.4", port));
    if (!ssd_log_wait(&d, "d: 127.0.0.4:", 5000))
        ssd_print_log(&d);
    assert_int_equal(log_count(&d, "d: 127.0.0.3:"), 1);
    assert_true(log_count(&d, "d: 127.0.0.2:") >= 1);
    assert_int_equal(log_count(&d, "d: 127.0.0.4:"), 1);
    if (again - start >= 1.0) {
        /* the daemon's two refusals of 127.0.0.2 were less than
         * again - start apart, which is then no proof of one second */
        fprintf(stderr, "skipped the rest: the refusals took %.2f s, not "
                "within one second\n", again - start);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
        skip();
    }
    if (log_count(&d, "d: 127.0.0.2:") != 1)
        ssd_print_log(&d);
    assert_int_equal(log_count(&d, "d: 127.0.0.2:"), 1);
    assert_int_equal(log_count(&d, "more from this address not logged"), 0);
    /* once its second is over, 127.0.0.2 is named again, with the count
     * (waiting is what is tested here: the log's one-second window) */
    while (now_s() < first + 1.05) {
        struct pollfd none;

        poll(&none, 0, (int)((first + 1.05 - now_s()) * 1000) + 1);
    }
    assert_fd_refused(ssd_connect_from("127.0.0.2", port));
    if (!ssd_log_wait(&d, "refused (in deny; 1 more from this address not "
                      "logged)", 5000))
        ssd_print_log(&d);
    assert_int_equal(log_count(&d, "d: 127.0.0.2:"), 2);
    assert_int_equal(log_count(&d, "refused (in deny; 1 more from this "
                               "address not logged)"), 1);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_limits_config_errors(void **state)
{
    static const struct ssd_config_case cases[] = {
        { "[e]\nhandler = echo\nport = 0\nallow = 10.0.0.0/33\n",
          ":4: invalid allow: \"10.0.0.0/33\": invalid prefix length (0-32)" },
        { "[e]\nhandler = echo\nport = 0\ndeny = localhost\n",
          ":4: invalid deny: \"localhost\" is not an address or CIDR block" },
        { "[e]\nhandler = echo\ntype = unix-stream\npath = x\n"
          "allow = ::1\n", ":5: \"allow\" does not apply to type "
          "unix-stream" },
        { "[e]\nhandler = echo\nport = 0\nsocket_mode = 0600\n",
          ":4: \"socket_mode\" does not apply to type tcp" },
        { "[e]\nhandler = echo\ntype = unix-stream\npath = x\n"
          "socket_mode = 999\n", ":5: invalid socket_mode \"999\"" },
        { "[e]\nhandler = echo\ntype = unix-stream\npath = x\n"
          "socket_owner = no-such-user-x\n",
          ":5: invalid socket_owner \"no-such-user-x\": no user" },
        { "[e]\nhandler = echo\nport = 0\nrate_limit = fast\n",
          ":4: invalid rate_limit \"fast\"" },
        { "[e]\nhandler = echo\nport = 0\nmax_per_source = -1\n",
          ":4: invalid max_per_source \"-1\"" },
        { "[global]\nuser = no-such-user-x\n[e]\nhandler = echo\nport = 0\n",
          ":2: invalid user \"no-such-user-x\": no such user" },
    };

    (void)state;
    assert_int_equal(ssd_config_errors(cases, sizeof cases / sizeof *cases),
                     0);
}

static void
max_per_source_and_connections_in(const char *mode)
{
    static const char tmpl[] =
        "[s]\nhandler = echo\nmode = threading\nport = 0\n"
        "max_per_source = 2\n"
        "[c]\nhandler = echo\nmode = forking\nport = 0\n"
        "max_connections = 3\n";
    const char *ini = ssd_ini_mode(tmpl, mode);
    const char *names[] = { "s", "c" };
    const int limit[] = { 2, 3 };
    const char *why[] = { "refused (max_per_source reached)",
                          "refused (max_connections reached)" };
    struct ssd d;

    assert_int_equal(ssd_start(&d, ini, 2, NULL), 0);
    for (int k = 0; k < 2; k++) {
        int fds[3];
        char buf[8];

        for (int i = 0; i < limit[k]; i++) {
            fds[i] = ssd_connect(ssd_addr(&d, names[k]));
            assert_int_equal(ssd_send_str(fds[i], "k"), 0);
            assert_true(ssd_recv_until(fds[i], buf, sizeof buf, "k", 5000));
        }
        assert_refused(ssd_addr(&d, names[k]));
        assert_true(ssd_log_wait(&d, why[k], 5000));
        /* one leaves: room for one more (the count follows closes) */
        close(fds[0]);
        int again = -1;

        for (int tries = 0; tries < 200; tries++) {
            again = ssd_connect(ssd_addr(&d, names[k]));
            /* a refused one may be reset before the send */
            if (ssd_send_str(again, "k") == 0 &&
                ssd_recv_until(again, buf, sizeof buf, "k", 200))
                break;
            close(again);       /* the close was not seen yet: retry */
            again = -1;
        }
        assert_true(again >= 0);
        close(again);
        for (int i = 1; i < limit[k]; i++)
            close(fds[i]);
    }
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* The same in threading and in event mode. */
static void
test_limits_max_per_source_and_connections(void **state)
{
    (void)state;
    max_per_source_and_connections_in("threading");
    max_per_source_and_connections_in("event");
}

static void
rate_limit_in(const char *mode)
{
    static const char tmpl[] =
        "[r]\nhandler = echo\nmode = threading\nport = 0\nrate_limit = 5\n";
    const char *ini = ssd_ini_mode(tmpl, mode);
    struct ssd d;
    int served = 0;

    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    for (int i = 0; i < 20; i++) {
        char buf[8];
        int fd = ssd_connect(ssd_addr(&d, "r"));

        assert_true(fd >= 0);
        assert_int_equal(ssd_send_str(fd, "k"), 0);
        if (ssd_recv_until(fd, buf, sizeof buf, "k", 2000))
            served++;
        close(fd);
    }
    /* a burst of 5 gets in (plus what refills while the loop runs) */
    assert_true(served >= 5);
    assert_true(served < 20);
    /* waited for: the refused one may have been the loop's last */
    assert_true(ssd_log_wait(&d, "refused (rate_limit exceeded)", 5000));
    /* refusals are logged at most once a second, not once each */
    int lines = 0;
    char *log = ssd_log_copy(&d);

    for (const char *p = log; (p = strstr(p, "refused (")) != NULL; p++)
        lines++;
    free(log);
    assert_true(lines < 20 - served);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* The same in threading and in event mode. */
static void
test_limits_rate_limit(void **state)
{
    (void)state;
    rate_limit_in("threading");
    rate_limit_in("event");
}

/* max_threads: at the limit the next connection waits in the backlog. */
static void
test_limits_max_threads(void **state)
{
    static const char ini[] =
        "[t]\nhandler = echo\nmode = threading\nport = 0\nmax_threads = 2\n";
    struct ssd d;
    int fds[3];
    char buf[8];

    (void)state;
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    for (int i = 0; i < 3; i++) {
        fds[i] = ssd_connect(ssd_addr(&d, "t"));
        assert_int_equal(ssd_send_str(fds[i], "k"), 0);
    }
    assert_true(ssd_recv_until(fds[0], buf, sizeof buf, "k", 5000));
    assert_true(ssd_recv_until(fds[1], buf, sizeof buf, "k", 5000));
    assert_int_equal(ssd_recv_some(fds[2], buf, sizeof buf, 300), -1);
    close(fds[0]);
    assert_true(ssd_recv_until(fds[2], buf, sizeof buf, "k", 5000));
    close(fds[1]);
    close(fds[2]);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_limits_unix_socket_mode_and_owner(void **state)
{
    static const char ini[] =
        "[u]\nhandler = echo\ntype = unix-stream\npath = @DIR@/u.sock\n"
        "socket_mode = 0640\nsocket_owner = nobody\n";
    struct passwd *pw = getpwnam("nobody");
    char path[400];
    struct stat st;
    struct ssd d;

    (void)state;
    if (geteuid() != 0 || pw == NULL) {
        fprintf(stderr, "skipped: socket_owner needs root and user nobody\n");
        skip();
    }
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    snprintf(path, sizeof path, "%s/u.sock", d.dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_uid, pw->pw_uid);
    assert_true(ssd_echo_once(path));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* user: binds first (a port below 1024 works), then runs as that user. */
static void
test_limits_drop_privileges(void **state)
{
    static const char ini[] =
        "[global]\nuser = nobody\n"
        "[low]\nhandler = echo\nmode = forking\nport = 0\n";
    struct passwd *pw = getpwnam("nobody");
    struct ssd d;

    (void)state;
    if (geteuid() != 0 || pw == NULL) {
        fprintf(stderr, "skipped: dropping privileges needs root\n");
        skip();
    }
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    assert_true(ssd_log_wait(&d, "running as user nobody", 5000));
    assert_int_equal((int)ssd_proc_status(d.pid, "Uid"), (int)pw->pw_uid);
    assert_true(ssd_echo_once(ssd_addr(&d, "low")));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* ---- graceful shutdown ----------------------------------------------------- */

/*
 * The pump keeps at most PUMP_WINDOW bytes unanswered, so what the server
 * must echo after the signal does not grow with how slow the machine is.
 */
#define PUMP_WINDOW (1u << 20)

struct pump {
    int fd;
    int stop;
    size_t sent, got;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void
pump_got(struct pump *p, size_t n)
{
    pthread_mutex_lock(&p->mu);
    p->got += n;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void
pump_stop(struct pump *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *
pump_main(void *arg)
{
    struct pump *p = arg;
    char chunk[4096];

    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)(i * 7);
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->sent < 64 * 1024 * 1024) {
        ssize_t n;

        if (p->sent - p->got >= PUMP_WINDOW) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        n = send(p->fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        pthread_mutex_lock(&p->mu);
        if (n <= 0)
            break;
        p->sent += (size_t)n;
    }
    pthread_mutex_unlock(&p->mu);
    shutdown(p->fd, SHUT_WR);
    return NULL;
}

/*
 * A client that keeps sending when SIGTERM comes: its request runs on within
 * shutdown_timeout, and every byte it sent, before and after the signal,
 * comes back before the daemon exits (every mode).
 */
static void
test_limits_shutdown_loses_nothing(void **state)
{
    static const char *const modes[] = { "sync", "threading", "forking",
                                         "event" };

    (void)state;
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        char ini[256], *buf = malloc(1 << 20);
        struct pump p = { .mu = PTHREAD_MUTEX_INITIALIZER,
                          .cv = PTHREAD_COND_INITIALIZER };
        struct ssd d;
        pthread_t tid;
        size_t got = 0;

        snprintf(ini, sizeof ini, "[e]\nhandler = echo\nmode = %s\nport = 0"
                 "\nshutdown_timeout = 3\n", modes[m]);
        assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
        p.fd = ssd_connect(ssd_addr(&d, "e"));
        assert_int_equal(pthread_create(&tid, NULL, pump_main, &p), 0);
        /* some traffic first, then the signal, then the pump stops */
        while (got < 256 * 1024) {
            ssize_t n = ssd_recv_some(p.fd, buf, 1 << 20, 5000);

            assert_true(n > 0);
            got += (size_t)n;
            pump_got(&p, (size_t)n);
        }
        kill(d.pid, SIGTERM);
        assert_true(ssd_log_wait(&d, "shutting down", 5000));
        pump_stop(&p);
        /* read while the pump ends: it may be in a send that needs room */
        for (;;) {
            ssize_t n = ssd_recv_some(p.fd, buf, 1 << 20, 10000);

            if (n <= 0)
                break;
            got += (size_t)n;
        }
        pthread_join(tid, NULL);
        if (got != p.sent)
            fprintf(stderr, "%s: sent %zu, got back %zu\n", modes[m], p.sent,
                    got);
        assert_int_equal(got, p.sent);
        close(p.fd);
        assert_int_equal(ssd_wait(&d), 0);
        ssd_cleanup(&d);
        free(buf);
    }
}

/* A second SIGTERM during the grace period exits at once (threading:
 * the signal thread; forking alone: the main thread's handler). */
static void
test_limits_second_signal(void **state)
{
    static const char *const modes[] = { "threading", "forking",
                                         "event" };

    (void)state;
    for (int m = 0; m < 3; m++) {
        char ini[128], buf[8];
        struct ssd d;
        int fd, st;

        snprintf(ini, sizeof ini, "[e]\nhandler = echo\nmode = %s\n"
                 "port = 0\nshutdown_timeout = 60\n", modes[m]);
        assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "e"));
        assert_int_equal(ssd_send_str(fd, "k"), 0);
        assert_true(ssd_recv_until(fd, buf, sizeof buf, "k", 5000));
        kill(d.pid, SIGTERM);
        assert_true(ssd_log_wait(&d, "shutting down", 5000));
        st = ssd_stop(&d, SIGTERM);
        assert_int_equal(st, 1);
        assert_true(ssd_log_has(&d, "second SIGTERM, exiting now"));
        close(fd);
        ssd_cleanup(&d);
    }
}

/* accept() failing with EMFILE backs off instead of spinning. */
static void
emfile_backoff_in(const char *mode)
{
    static const char tmpl[] =
        "[e]\nhandler = echo\nmode = threading\nport = 0\n";
    const char *ini = ssd_ini_mode(tmpl, mode);
    struct rlimit old, low = { 16, 16 };
    int fds[40], n = 0;
    struct ssd d;
    char path[64], line[512];
    unsigned long ut0 = 0, st0 = 0, ut1 = 0, st1 = 0;
    FILE *fp;

    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    /* the running daemon's limit is lowered under its feet */
    assert_int_equal(prlimit(d.pid, RLIMIT_NOFILE, &low, &old), 0);
    for (int i = 0; i < 40; i++) {
        fds[i] = ssd_connect(ssd_addr(&d, "e"));
        if (fds[i] >= 0)
            n++;
    }
    assert_true(ssd_log_wait(&d, "Too many open files; pausing", 5000));
    snprintf(path, sizeof path, "/proc/%d/stat", (int)d.pid);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    sscanf(strrchr(line, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
           "%*u %lu %lu", &ut0, &st0);
    struct pollfd none;

    poll(&none, 0, 1000);       /* a second in the EMFILE state */
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    sscanf(strrchr(line, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
           "%*u %lu %lu", &ut1, &st1);
    /* well under half a CPU second in that second: not spinning */
    assert_true((ut1 - ut0) + (st1 - st0) < (unsigned long)
                sysconf(_SC_CLK_TCK) / 2);
    for (int i = 0; i < 40; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* descriptors free again: it serves */
    assert_true(ssd_echo_once(ssd_addr(&d, "e")));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* The same in threading and in event mode. */
static void
test_limits_emfile_backoff(void **state)
{
    (void)state;
    emfile_backoff_in("threading");
    emfile_backoff_in("event");
}

/* [global] log_file, reopened on SIGUSR1 (after a rotation), by the
 * signal thread or (one forking server) the main thread's handler. */
static void
reopen_case(const char *mode)
{
    char ini[160], log[400], rotated[420], buf[4096];
    struct ssd d;
    bool found = false;

    snprintf(ini, sizeof ini, "[global]\nlog_file = daemon.log\n"
             "[e]\nhandler = echo\nport = 0\nmode = %s\n", mode);
    assert_int_equal(ssd_start(&d, ini, 0, NULL), 0);
    snprintf(log, sizeof log, "%s/daemon.log", d.dir);
    snprintf(rotated, sizeof rotated, "%s/daemon.log.1", d.dir);
    for (int i = 0; i < 500 && !found; i++) {  /* the file is the log */
        FILE *fp = fopen(log, "r");
        size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;

        if (fp)
            fclose(fp);
        buf[n] = '\0';
        found = strstr(buf, "e: listening on 127.0.0.1:") != NULL;
        if (!found) {
            struct pollfd none;

            poll(&none, 0, 10);
        }
    }
    assert_true(found);
    assert_int_equal(rename(log, rotated), 0);
    kill(d.pid, SIGUSR1);
    found = false;
    for (int i = 0; i < 500 && !found; i++) {
        FILE *fp = fopen(log, "r");
        size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;

        if (fp)
            fclose(fp);
        buf[n] = '\0';
        found = strstr(buf, "SIGUSR1: reopened") != NULL;
        if (!found) {
            struct pollfd none;

            poll(&none, 0, 10);
        }
    }
    assert_true(found);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_limits_log_file_reopen(void **state)
{
    (void)state;
    reopen_case("sync");
    reopen_case("forking");
    reopen_case("event");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_deny_and_allow),
        cmocka_unit_test(test_limits_refusal_log_per_address),
        cmocka_unit_test(test_limits_config_errors),
        cmocka_unit_test(test_limits_max_per_source_and_connections),
        cmocka_unit_test(test_limits_rate_limit),
        cmocka_unit_test(test_limits_max_threads),
        cmocka_unit_test(test_limits_unix_socket_mode_and_owner),
        cmocka_unit_test(test_limits_drop_privileges),
        cmocka_unit_test(test_limits_shutdown_loses_nothing),
        cmocka_unit_test(test_limits_second_signal),
        cmocka_unit_test(test_limits_log_file_reopen),
        cmocka_unit_test(test_limits_emfile_backoff),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
