/* test_log.c: core/log.c's lines (the time, the prefixes of each sink),
 * journald's detection, the file and its reopening, syslog, the callback,
 * one write per line from threads and children; then the daemon's
 * log_file rotated under load, syslog through /dev/log, journald. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "support/daemon.h"

/* ---- helpers ------------------------------------------------------------ */

static void
pause_ms(int ms)
{
    struct pollfd none;

    poll(&none, 0, ms);
}

/* The whole file (to free), "" if it does not exist. */
static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);

    assert_non_null(buf);
    while (fp != NULL && (n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len < 2048) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    if (fp != NULL)
        fclose(fp);
    buf[len] = '\0';
    return buf;
}

static off_t
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Waits (up to ms) until the file holds needle at least count times;
 * returns its text (to free) or NULL. */
static char *
file_wait(const char *path, const char *needle, int count, int ms)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        char *text = slurp(path);
        int n = 0;

        for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
            n++;
        if (n >= count)
            return text;
        free(text);
        pause_ms(10);
    }
    return NULL;
}

/* True if line (up to its '\n') is "YYYY-MM-DDTHH:MM:SS.mmmZ sockserv[PID]: "
 * then rest; pid 0 accepts any. */
static bool
stamped(const char *line, pid_t pid, const char *rest)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ sockserv[";
    char want[64];
    const char *p = line;
    long got;
    char *end;

    for (size_t i = 0; i < sizeof shape - 1; i++, p++)
        if (shape[i] == 'd' ? (*p < '0' || *p > '9') : *p != shape[i])
            return false;
    got = strtol(p, &end, 10);
    if (end == p || strncmp(end, "]: ", 3) != 0 ||
        (pid != 0 && got != (long)pid))
        return false;
    snprintf(want, sizeof want, "%s", rest);
    return strncmp(end + 3, want, strlen(want)) == 0;
}

/* Points fd 2 at a fresh pipe; returns its read end (non-blocking) and
 * the old stderr in *saved. */
static int
capture_stderr(int *saved)
{
    int p[2];

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    fflush(stderr);
    *saved = dup(STDERR_FILENO);
    assert_true(*saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    return p[0];
}

static void
restore_stderr(int saved)
{
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
}

static size_t
drain(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;

    while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return len;
}

/* A datagram socket bound at path (the test's syslog). */
static int
dgram_listen(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static ssize_t
recv_within(int fd, char *buf, size_t size, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    ssize_t n;

    if (poll(&pfd, 1, ms) != 1)
        return -1;
    n = recv(fd, buf, size - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static char tmp[64];

static int
setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/sockserv-log-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the lines ---------------------------------------------------------- */

static void
test_log_format_time(void **state)
{
    static const struct {
        time_t sec;
        long nsec;
        bool iso;
        const char *want;
    } rows[] = {
        { 0, 0, true, "1970-01-01T00:00:00.000Z" },
        { 951782400, 999999999, true, "2000-02-29T00:00:00.999Z" },
        { 951868799, 5000000, true, "2000-02-29T23:59:59.005Z" },
        { 1796462323, 417000000, true, "2026-12-05T09:18:43.417Z" },
        { 4102444800, 0, true, "2100-01-01T00:00:00.000Z" },
        { 253402300799, 0, true, "9999-12-31T23:59:59.000Z" },
        /* syslog's: the day padded with a space */
        { 1796462323, 0, false, "Dec  5 09:18:43" },
        { 951868799, 0, false, "Feb 29 23:59:59" },
    };
    char b[64];

    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        ss_log_format_time(b, sizeof b, rows[i].sec, rows[i].nsec,
                           rows[i].iso);
        if (strcmp(b, rows[i].want) != 0) {
            fprintf(stderr, "row %zu: %lld.%09ld (%s): \"%s\", wanted "
                    "\"%s\"\n", i, (long long)rows[i].sec, rows[i].nsec,
                    rows[i].iso ? "iso" : "syslog", b, rows[i].want);
            fail();
        }
    }
    /* a short buffer is cut, never overrun */
    assert_int_equal(ss_log_format_time(b, 5, 0, 0, true), 4);
    assert_string_equal(b, "1970");
    /* and matches the system's own conversion now */
    {
        struct timespec ts;
        struct tm tm;
        char want[64];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        ss_log_format_time(b, sizeof b, ts.tv_sec, ts.tv_nsec, true);
        assert_memory_equal(b, want, strlen(want));
    }
}

static void
test_log_format_sinks(void **state)
{
    /* whole lines: stderr's, and journald's with sd-daemon's levels; the
     * start of syslog's: facility daemon (3 << 3) + severity */
    static const struct {
        enum ss_log_sink sink;
        enum ss_log_level level;
        const char *msg, *want;
        bool whole;
    } rows[] = {
        { SS_SINK_STDERR, SS_LOG_INFO, "e: listening", "e: listening", true },
        { SS_SINK_STDERR, SS_LOG_WARNING, "x", "warning: x", true },
        { SS_SINK_JOURNAL, SS_LOG_ERROR, "x", "<3>error: x", true },
        { SS_SINK_JOURNAL, SS_LOG_WARNING, "x", "<4>warning: x", true },
        { SS_SINK_JOURNAL, SS_LOG_INFO, "x", "<6>x", true },
        { SS_SINK_JOURNAL, SS_LOG_DEBUG, "x", "<7>debug: x", true },
        { SS_SINK_SYSLOG, SS_LOG_ERROR, "x", "<27>", false },
        { SS_SINK_SYSLOG, SS_LOG_DEBUG, "x", "<31>", false },
        { SS_SINK_SYSLOG, SS_LOG_WARNING, "x", "<28>", false },
    };
    char b[256], want[128];

    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        ss_log_format(rows[i].sink, rows[i].level, rows[i].msg, b, sizeof b);
        if (rows[i].whole ? strcmp(b, rows[i].want) != 0
                          : strncmp(b, rows[i].want, strlen(rows[i].want))
                            != 0) {
            fprintf(stderr, "row %zu: sink %d, level %d, \"%s\": \"%s\", "
                    "wanted %s\"%s\"\n", i, (int)rows[i].sink,
                    (int)rows[i].level, rows[i].msg, b,
                    rows[i].whole ? "" : "a start of ", rows[i].want);
            fail();
        }
    }
    /* the file: the time, then sockserv[PID] */
    ss_log_format(SS_SINK_FILE, SS_LOG_WARNING, "e: slow", b, sizeof b);
    assert_true(stamped(b, getpid(), "warning: e: slow"));
    assert_int_equal(strlen(b), 24 + strlen(" sockserv[]: warning: e: slow") +
                     (size_t)snprintf(want, sizeof want, "%d", (int)getpid()));
    /* syslog: the time and the tag after the priority */
    ss_log_format(SS_SINK_SYSLOG, SS_LOG_INFO, "hi", b, sizeof b);
    assert_memory_equal(b, "<30>", 4);
    snprintf(want, sizeof want, " sockserv[%d]: hi", (int)getpid());
    assert_string_equal(b + 4 + 15, want);
}

static void
test_log_parse_journal_stream(void **state)
{
    static const char *const refused[] = {
        NULL, "", "8", "8:", ":8", "8:9x", "-8:9", "8:-9", "8:9:10",
        "99999999999999999999999:1",
    };
    unsigned long long dev = 0, ino = 0;

    (void)state;
    assert_true(ss_log_parse_journal_stream("8:123456", &dev, &ino));
    assert_true(dev == 8 && ino == 123456);
    assert_true(ss_log_parse_journal_stream("0:0", &dev, &ino));
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (ss_log_parse_journal_stream(refused[i], &dev, &ino)) {
            fprintf(stderr, "row %zu: \"%s\" taken\n", i,
                    refused[i] != NULL ? refused[i] : "(null)");
            fail();
        }
}

/* <N> prefixes only when fd 2 is the stream $JOURNAL_STREAM names. */
static void
test_log_journald_detected(void **state)
{
    char env[64], buf[512];
    struct stat st;
    int saved, rd = capture_stderr(&saved);

    (void)state;
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    ss_log_to_stderr();
    ss_log(SS_LOG_WARNING, "slow %d", 1);
    ss_log(SS_LOG_INFO, "e: listening on x");
    drain(rd, buf, sizeof buf);
    assert_string_equal(buf, "<4>warning: slow 1\n<6>e: listening on x\n");
    /* another stream's (stdout's, say): plain lines */
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", env, 1);
    ss_log_to_stderr();
    ss_log(SS_LOG_WARNING, "slow %d", 2);
    drain(rd, buf, sizeof buf);
    assert_string_equal(buf, "warning: slow 2\n");
    unsetenv("JOURNAL_STREAM");
    ss_log_to_stderr();
    ss_log(SS_LOG_ERROR, "x");
    drain(rd, buf, sizeof buf);
    assert_string_equal(buf, "error: x\n");
    restore_stderr(saved);
    close(rd);
}

/* ss_log_open: a file of its own, stderr untouched; opened again after
 * a rotation. */
static void
test_log_file_leaves_stderr(void **state)
{
    char path[128], rotated[140], buf[256], *text;
    struct stat before, after;
    int saved, rd = capture_stderr(&saved);

    (void)state;
    snprintf(path, sizeof path, "%s/lib.log", tmp);
    snprintf(rotated, sizeof rotated, "%s/lib.log.1", tmp);
    assert_int_equal(fstat(STDERR_FILENO, &before), 0);
    assert_int_equal(ss_log_open(path), 0);
    assert_int_equal(fstat(STDERR_FILENO, &after), 0);
    assert_true(before.st_ino == after.st_ino &&
                before.st_dev == after.st_dev);
    ss_log(SS_LOG_INFO, "one");
    assert_int_equal(rename(path, rotated), 0);
    ss_log(SS_LOG_INFO, "two");        /* still the renamed file */
    assert_int_equal(ss_log_reopen(), 0);
    ss_log(SS_LOG_ERROR, "three");
    drain(rd, buf, sizeof buf);
    assert_string_equal(buf, "");      /* nothing on stderr */
    text = slurp(rotated);
    assert_true(stamped(text, getpid(), "one\n"));
    assert_true(stamped(strchr(text, '\n') + 1, getpid(), "two\n"));
    assert_null(strstr(text, "three"));
    free(text);
    text = slurp(path);
    assert_true(stamped(text, getpid(), "error: three\n"));
    assert_int_equal(strchr(text, '\n')[1], '\0');
    free(text);
    /* a file that cannot be opened: -1, errno, and logging goes on */
    assert_int_equal(ss_log_open("/nonexistent-dir/x.log"), -1);
    assert_int_equal(errno, ENOENT);
    ss_log_to_stderr();
    assert_int_equal(ss_log_reopen(), -1);
    assert_int_equal(errno, EBADF);
    restore_stderr(saved);
    close(rd);
}

/* Lines from threads and forked children never interleave: each is one
 * write(2). */
#define WRITERS 4
#define LINES 300

static void *
writer(void *arg)
{
    long id = (long)(intptr_t)arg;
    char pad[400];

    memset(pad, 'a' + (int)id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        ss_log(SS_LOG_INFO, "w%ld %d %.*s end", id, i, (i * 37) % 399, pad);
    return NULL;
}

static void
test_log_file_one_write_per_line(void **state)
{
    char path[128], *text, *line;
    pthread_t t[WRITERS];
    pid_t kids[2];
    int n = 0;

    (void)state;
    snprintf(path, sizeof path, "%s/many.log", tmp);
    assert_int_equal(ss_log_to_file(path, false), 0);
    for (long i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            writer((void *)(intptr_t)(WRITERS + i));
            _exit(0);
        }
    }
    for (long i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer,
                                        (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        int status;

        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_int_equal(status, 0);
    }
    text = slurp(path);
    for (char *save, *l = strtok_r(text, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        long id;
        int i, len;
        char *p;

        line = l;
        assert_true(stamped(line, 0, "w"));
        p = strstr(line, "]: w") + 4;
        assert_int_equal(sscanf(p, "%ld %d%n", &id, &i, &len), 2);
        p += len + 1;
        for (int k = 0; k < (i * 37) % 399; k++)
            assert_int_equal(p[k], 'a' + (int)id);
        assert_string_equal(p + (i * 37) % 399, " end");
        n++;
    }
    assert_int_equal(n, (WRITERS + 2) * LINES);
    free(text);
    ss_log_to_stderr();
}

/* A message longer than a line holds is cut, and still ends the line. */
static void
test_log_long_message_cut(void **state)
{
    char *big = malloc(10000), *buf = malloc(8192);
    int saved, rd = capture_stderr(&saved);
    size_t n;

    (void)state;
    assert_non_null(big);
    assert_non_null(buf);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    ss_log_to_stderr();
    ss_log(SS_LOG_WARNING, "%s", big);
    ss_log(SS_LOG_INFO, "next");
    n = drain(rd, buf, 8192);
    restore_stderr(saved);
    close(rd);
    assert_true(n > 2000 && n < 2200);
    assert_memory_equal(buf, "warning: xxx", 12);
    assert_string_equal(strchr(buf, '\n'), "\nnext\n");
    free(big);
    free(buf);
}

/* syslog: one datagram per line; a restarted syslogd is reconnected to;
 * with none, the line goes to stderr. */
static void
test_log_syslog(void **state)
{
    char path[128], buf[512], want[128];
    int saved, rd, fd;

    (void)state;
    snprintf(path, sizeof path, "%s/syslog.sock", tmp);
    fd = dgram_listen(path);
    assert_int_equal(ss_log_to_syslog(path), 0);
    ss_log(SS_LOG_WARNING, "e: %s", "slow");
    assert_true(recv_within(fd, buf, sizeof buf, 5000) > 0);
    assert_memory_equal(buf, "<28>", 4);
    snprintf(want, sizeof want, " sockserv[%d]: warning: e: slow",
             (int)getpid());
    assert_string_equal(buf + 4 + 15, want);
    ss_log_str(SS_LOG_INFO, "a", "b");
    assert_true(recv_within(fd, buf, sizeof buf, 5000) > 0);
    assert_non_null(strstr(buf, "]: ab"));
    assert_null(strchr(buf, '\n'));
    /* syslogd restarts: a new socket at the same path */
    close(fd);
    fd = dgram_listen(path);
    ss_log(SS_LOG_ERROR, "after restart");
    assert_true(recv_within(fd, buf, sizeof buf, 5000) > 0);
    assert_memory_equal(buf, "<27>", 4);
    assert_non_null(strstr(buf, "]: error: after restart"));
    /* none: stderr has it */
    close(fd);
    unlink(path);
    rd = capture_stderr(&saved);
    ss_log(SS_LOG_ERROR, "nobody listens");
    drain(rd, buf, sizeof buf);
    restore_stderr(saved);
    close(rd);
    assert_string_equal(buf, "error: nobody listens\n");
    assert_int_equal(ss_log_to_syslog("/nonexistent-dir/log"), -1);
    ss_log_to_stderr();
}

struct got {
    int n;
    enum ss_log_level level[4];
    char line[4][64];
};

static void
on_line(enum ss_log_level level, const char *line, void *arg)
{
    struct got *g = arg;

    if (g->n < 4) {
        g->level[g->n] = level;
        snprintf(g->line[g->n], sizeof g->line[0], "%s", line);
    }
    g->n++;
}

static void
test_log_callback(void **state)
{
    struct got g = { 0 };
    char buf[256];
    int saved, rd = capture_stderr(&saved);

    (void)state;
    ss_log_set_callback(on_line, &g);
    ss_log(SS_LOG_WARNING, "e: %d", 42);
    ss_log(SS_LOG_DEBUG, "hidden");    /* below the level */
    ss_log_str(SS_LOG_ERROR, "x", "y");
    ss_log_set_callback(NULL, NULL);
    ss_log(SS_LOG_INFO, "back");
    drain(rd, buf, sizeof buf);
    restore_stderr(saved);
    close(rd);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.level[0], SS_LOG_WARNING);
    assert_string_equal(g.line[0], "e: 42");
    assert_int_equal(g.level[1], SS_LOG_ERROR);
    assert_string_equal(g.line[1], "xy");
    assert_string_equal(buf, "back\n");
}

/* ---- the daemon --------------------------------------------------------- */

/* The address in "NAME: listening on ADDR (" of text. */
static void
listen_addr(const char *text, const char *name, char *addr, size_t size)
{
    char needle[80];
    const char *p, *end;

    snprintf(needle, sizeof needle, "%s: listening on ", name);
    p = strstr(text, needle);
    assert_non_null(p);
    p += strlen(needle);
    end = strstr(p, " (");
    assert_non_null(end);
    snprintf(addr, size, "%.*s", (int)(end - p), p);
}

static bool
line_has(const char *text, int i)
{
    char needle[40];

    snprintf(needle, sizeof needle, "]: logline: n%d\n", i);
    return strstr(text, needle) != NULL;
}

/*
 * log_file renamed while a client echoes through the logline plugin (it
 * logs each line before echoing it), then SIGUSR1: every line is in one
 * of the two files, the old file has a first part and the new one the
 * rest, and once every process said "reopened" the old file grows no
 * more.
 */
static void
rotate_case(const char *mode, int workers)
{
    char ini[512], log[300], rotated[310], addr[160], msg[32], buf[32];
    char *text, *old;
    struct ssd d;
    int sent = 0, reopened_at = 0, split = 0;
    off_t old_size = -1;
    double deadline;
    struct timespec ts;

    snprintf(ini, sizeof ini, "[global]\nlog_file = d.log\n[l]\nhandler = %s"
             "\nport = 0\nmode = %s\nworkers = %d\n",
             ssd_build_path("tests/plugins/logline.so"), mode, workers);
    assert_int_equal(ssd_start(&d, ini, 0, NULL), 0);
    snprintf(log, sizeof log, "%s/d.log", d.dir);
    snprintf(rotated, sizeof rotated, "%s/d.log.1", d.dir);
    text = file_wait(log, "l: listening on ", 1, 5000);
    if (text == NULL)
        ssd_print_log(&d);
    assert_non_null(text);
    assert_true(stamped(text, d.pid, "l: listening on 127.0.0.1:"));
    listen_addr(text, "l", addr, sizeof addr);
    free(text);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (double)ts.tv_sec + 15;
    while (reopened_at == 0 || sent < reopened_at + 100) {
        int fd = ssd_connect(addr);

        assert_true(fd >= 0);
        sent++;
        snprintf(msg, sizeof msg, "n%d\n", sent);
        assert_int_equal(ssd_send_str(fd, msg), 0);
        assert_true(ssd_recv_until(fd, buf, sizeof buf, msg, 5000));
        close(fd);
        if (sent == 50) {
            assert_int_equal(rename(log, rotated), 0);
            assert_int_equal(kill(d.pid, SIGUSR1), 0);
        }
        if (sent > 50 && reopened_at == 0) {
            int n = 0;

            text = slurp(log);

            for (const char *p = text; (p = strstr(p, "SIGUSR1: reopened"));
                 p++)
                n++;
            free(text);
            if (n == workers) {        /* every process has reopened */
                reopened_at = sent;
                old_size = file_size(rotated);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* bounded in time and in connections (each leaves a TIME_WAIT) */
        if ((double)ts.tv_sec > deadline || sent > 1000) {
            fprintf(stderr, "%s, workers %d: %d lines, \"reopened\" not "
                    "seen from every process\n", mode, workers, sent);
            fail();
        }
    }
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    assert_int_equal(file_size(rotated), old_size);
    old = slurp(rotated);
    text = slurp(log);
    assert_null(strstr(old, "reopened"));
    for (int i = 1; i <= sent; i++) {
        bool in_old = line_has(old, i), in_new = line_has(text, i);

        if (in_old == in_new) {
            fprintf(stderr, "line n%d: in old %d, in new %d\n", i, in_old,
                    in_new);
            fail();
        }
        if (workers == 1 && in_new && split == 0)
            split = i;
        /* one process: a clean cut */
        if (workers == 1 && split != 0)
            assert_true(in_new);
    }
    assert_true(split == 0 || split > 1);
    /* every line of the new file is stamped */
    for (char *save, *l = strtok_r(text, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        assert_true(stamped(l, 0, ""));
    free(old);
    free(text);
    ssd_cleanup(&d);
}

static void
test_log_daemon_rotation_under_load(void **state)
{
    (void)state;
    rotate_case("threading", 1);
    rotate_case("sync", 1);
    rotate_case("forking", 1);
    rotate_case("event", 1);
    rotate_case("threading", 2);       /* workers are told to reopen too */
}

/* SIGHUP no longer reopens (it reloads); without log_file, SIGUSR1 says
 * there is nothing to reopen.  stderr keeps its plain lines. */
static void
test_log_daemon_signals_on_stderr(void **state)
{
    struct ssd d;

    (void)state;
    assert_int_equal(ssd_start(&d, "[e]\nhandler = echo\nport = 0\n", 1,
                               NULL), 0);
    assert_true(ssd_log_has(&d, "e: listening on"));
    kill(d.pid, SIGUSR1);
    assert_true(ssd_log_wait(&d, "\nsockserv: SIGUSR1: no log_file, nothing "
                             "to reopen\n", 5000));
    kill(d.pid, SIGHUP);
    assert_true(ssd_log_wait(&d, "\nsockserv: reloaded: 0 added, 0 changed, "
                             "0 removed, 1 unchanged\n", 5000));
    assert_true(ssd_echo_once(ssd_addr(&d, "e")));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_log_daemon_config_errors(void **state)
{
    char *out;

    (void)state;
    assert_int_equal(ssd_run("[global]\nlog = journal\n[e]\nhandler = echo"
                             "\nport = 0\n", NULL, &out), 2);
    assert_non_null(strstr(out, "test.ini:2: invalid log \"journal\" "
                           "(stderr, syslog)"));
    free(out);
    assert_int_equal(ssd_run("[global]\nlog_file = x.log\nlog = syslog\n[e]\n"
                             "handler = echo\nport = 0\n", NULL, &out), 2);
    assert_non_null(strstr(out, "test.ini:3: log = syslog and log_file "
                           "exclude each other"));
    free(out);
    assert_int_equal(ssd_run("[global]\nlog = stderr\n[e]\nhandler = echo"
                             "\nport = 0\n", (const char *[]){ "--check",
                             NULL }, &out), 0);
    free(out);
}

/*
 * Under journald: the daemon's stderr is the stream $JOURNAL_STREAM
 * names, so its lines carry <N>.  A second server that cannot bind gives
 * an error line too.
 */
static void
test_log_daemon_journald(void **state)
{
    char ini[256], env[64], path[128], buf[4096];
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof sa;
    struct stat st;
    int p[2], busy, status;
    size_t got = 0;
    pid_t pid;
    FILE *fp;

    (void)state;
    busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(busy, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(busy, 1), 0);
    assert_int_equal(getsockname(busy, (struct sockaddr *)&sa, &len), 0);
    snprintf(path, sizeof path, "%s/j.ini", tmp);
    snprintf(ini, sizeof ini, "[ok]\nhandler = echo\nport = 0\n[busy]\n"
             "handler = echo\nhost = 127.0.0.1\nport = %d\n",
             ntohs(sa.sin_port));
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(ini, fp);
    fclose(fp);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(fstat(p[1], &st), 0);
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("JOURNAL_STREAM", env, 1);
        dup2(p[1], STDERR_FILENO);
        execl(ssd_build_path("sockserv"), "sockserv", path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    for (;;) {                          /* until it exits (closes the pipe) */
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        ssize_t n;

        assert_int_equal(poll(&pfd, 1, 10000), 1);
        n = read(p[0], buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(p[0]);
    close(busy);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    if (strncmp(buf, "<6>ok: listening on 127.0.0.1:", 30) != 0 ||
        strstr(buf, "\n<3>error: busy: ") == NULL) {
        fprintf(stderr, "daemon said:\n%s", buf);
        fail();
    }
}

/*
 * [global] log = syslog, through the real /dev/log: the daemon runs in a
 * mount namespace of its own whose /dev (a tmpfs with null) has the
 * test's datagram socket bound over log.  Needs mount rights (root, or
 * unprivileged user namespaces): skipped, saying why, without them.
 */
static void
test_log_daemon_syslog(void **state)
{
    char sock[128], wrap[128], ini[256], buf[1024], want[64];
    const char *uflag = geteuid() == 0 ? "" : "-r ";
    struct ssd d;
    FILE *fp;
    int fd;
    bool listening = false;

    (void)state;
    snprintf(buf, sizeof buf, "unshare -m %strue 2>/dev/null", uflag);
    if (system(buf) != 0) {
        fprintf(stderr, "test_log_daemon_syslog: skipped: cannot make a "
                "mount namespace (unshare -m %s) here\n", uflag);
        skip();
    }
    snprintf(sock, sizeof sock, "%s/devlog.sock", tmp);
    fd = dgram_listen(sock);
    snprintf(wrap, sizeof wrap, "%s/in-ns", tmp);
    fp = fopen(wrap, "w");
    assert_non_null(fp);
    fprintf(fp, "#!/bin/sh\n"
            "# the daemon with /dev/log bound to the test's socket\n"
            "mkdir -p %s/olddev\n"
            "exec unshare -m %s--propagation private sh -c '\n"
            "  mount --rbind /dev %s/olddev &&\n"
            "  mount -t tmpfs -o mode=755 ssdev /dev &&\n"
            "  touch /dev/null /dev/log &&\n"
            "  mount --bind %s/olddev/null /dev/null &&\n"
            "  mount --bind %s /dev/log &&\n"
            "  exec \"$@\"' sh %s \"$@\"\n",
            tmp, uflag, tmp, tmp, sock, ssd_build_path("sockserv"));
    fclose(fp);
    assert_int_equal(chmod(wrap, 0755), 0);
    snprintf(ini, sizeof ini, "[global]\nlog = syslog\n[e]\nhandler = echo\n"
             "port = 0\n");
    ssd_daemon = wrap;
    assert_int_equal(ssd_start(&d, ini, 0, NULL), 0);
    ssd_daemon = NULL;
    snprintf(want, sizeof want, " sockserv[%d]: e: listening on 127.0.0.1:",
             (int)d.pid);
    while (!listening && recv_within(fd, buf, sizeof buf, 5000) > 0)
        listening = strncmp(buf, "<30>", 4) == 0 &&
                    strncmp(buf + 4 + 15, want, strlen(want)) == 0;
    if (!listening)
        ssd_print_log(&d);
    assert_true(listening);
    kill(d.pid, SIGHUP);               /* the reload's first line */
    assert_true(recv_within(fd, buf, sizeof buf, 5000) > 0);
    assert_memory_equal(buf, "<30>", 4);
    assert_non_null(strstr(buf, "]: sockserv: SIGHUP: reloading "));
    do                                 /* to its last line */
        assert_true(recv_within(fd, buf, sizeof buf, 5000) > 0);
    while (strstr(buf, "]: sockserv: reloaded: ") == NULL);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    assert_true(recv_within(fd, buf, sizeof buf, 5000) > 0);
    assert_non_null(strstr(buf, "]: sockserv: SIGTERM, shutting down"));
    /* nothing went to stderr */
    assert_false(ssd_log_has(&d, "listening"));
    close(fd);
    ssd_cleanup(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_format_time),
        cmocka_unit_test(test_log_format_sinks),
        cmocka_unit_test(test_log_parse_journal_stream),
        cmocka_unit_test(test_log_journald_detected),
        cmocka_unit_test(test_log_file_leaves_stderr),
        cmocka_unit_test(test_log_file_one_write_per_line),
        cmocka_unit_test(test_log_long_message_cut),
        cmocka_unit_test(test_log_syslog),
        cmocka_unit_test(test_log_callback),
        cmocka_unit_test(test_log_daemon_signals_on_stderr),
        cmocka_unit_test(test_log_daemon_config_errors),
        cmocka_unit_test(test_log_daemon_rotation_under_load),
        cmocka_unit_test(test_log_daemon_journald),
        cmocka_unit_test(test_log_daemon_syslog),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
