/* test_reload.c: SIGHUP reloads the configuration: a bad file changes
 * nothing, unchanged sections are untouched, removed ones go, added ones
 * start, changed ones take new connections under their new keys on the
 * same socket (not one connection refused or reset across ten reloads,
 * in every mode), and a plugin rebuilt at its path is a new generation
 * while old connections keep the old code. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"

#define WAIT_MS 10000

/* Rewrites the daemon's INI file (atomically: a reload never reads half
 * of it). */
static void
rewrite(struct ssd *d, const char *text)
{
    char tmp[400];
    FILE *fp;

    snprintf(tmp, sizeof tmp, "%s.new", d->ini);
    fp = fopen(tmp, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(rename(tmp, d->ini), 0);
}

/* How many times the log says needle. */
static int
count(struct ssd *d, const char *needle)
{
    char *log = ssd_log_copy(d);
    int n = 0;

    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* 10 ms: a step of a poll with a deadline, not a blind wait. */
static void
nap(void)
{
    struct timespec ts = { 0, 10 * 1000000L };

    nanosleep(&ts, NULL);
}

/* Sends SIGHUP and waits for the reload's last line (either). */
static void
reload(struct ssd *d)
{
    int before = count(d, "sockserv: reloaded: ") +
                 count(d, "sockserv: reload failed");

    kill(d->pid, SIGHUP);
    for (int i = 0; i < WAIT_MS / 10; i++) {
        if (count(d, "sockserv: reloaded: ") +
            count(d, "sockserv: reload failed") > before)
            return;
        nap();                  /* polling the log, not waiting blind */
    }
    ssd_print_log(d);
    fail_msg("no end of reload in the log");
}

/* Sends what on fd and waits for want to come back; a failure says
 * which exchange it was. */
static void
exchange(int fd, const char *what, const char *want)
{
    char buf[16];

    if (ssd_send_str(fd, what) != 0)
        fail_msg("fd %d: cannot send \"%s\"", fd, what);
    if (!ssd_recv_until(fd, buf, sizeof buf, want, WAIT_MS))
        fail_msg("sent \"%s\" on fd %d: no \"%s\" back within %d ms (got "
                 "\"%s\")", what, fd, want, WAIT_MS, buf);
}

/* An echo of s on fd. */
static void
echo(int fd, const char *s)
{
    exchange(fd, s, s);
}

/* Stops the daemon (it exits 0) and removes its files. */
static void
stop(struct ssd *d)
{
    assert_int_equal(ssd_stop(d, SIGTERM), 0);
    ssd_cleanup(d);
}

/* ---- a connect loop across ten reloads, in each mode ------------------- */

struct looper {
    char addr[160];
    volatile int stop;
    long ok, bad;
    char why[160];
};

static void *
loop_main(void *arg)
{
    struct looper *l = arg;

    while (!__atomic_load_n(&l->stop, __ATOMIC_SEQ_CST)) {
        char buf[16];
        int fd = ssd_connect(l->addr);

        if (fd >= 0 && ssd_send_str(fd, "ping") == 0 &&
            ssd_recv_until(fd, buf, sizeof buf, "ping", 5000)) {
            __atomic_add_fetch(&l->ok, 1, __ATOMIC_SEQ_CST);
        } else if (l->bad++ == 0) {
            snprintf(l->why, sizeof l->why, "%s", fd < 0 ? strerror(errno)
                     : "no echo");
        }
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static void
ten_reloads(const char *mode)
{
    char ini[256];
    struct looper l = { .stop = 0 };
    struct ssd d;
    pthread_t tid;
    long before;
    int old;

    snprintf(ini, sizeof ini, "[e]\nhandler = echo\nmode = %s\nport = 0\n"
             "timeout = 30\n", mode);
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    snprintf(l.addr, sizeof l.addr, "%s", ssd_addr(&d, "e"));
    old = ssd_connect(l.addr);         /* held across every reload */
    if (strcmp(mode, "sync") != 0) {   /* sync: it would hold the server */
        echo(old, "a");
    } else {
        close(old);
        old = -1;
    }
    assert_int_equal(pthread_create(&tid, NULL, loop_main, &l), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(ini, sizeof ini, "[e]\nhandler = echo\nmode = %s\n"
                 "port = 0\ntimeout = %d\n", mode, 31 + i);
        before = __atomic_load_n(&l.ok, __ATOMIC_SEQ_CST);
        rewrite(&d, ini);
        reload(&d);
        assert_int_equal(count(&d, "sockserv: reloaded: 0 added, 1 changed, "
                               "0 removed, 0 unchanged"), i + 1);
        /* connections went on meanwhile */
        for (int k = 0; k < 500 && __atomic_load_n(&l.ok, __ATOMIC_SEQ_CST)
                               == before; k++)
            nap();
    }
    __atomic_store_n(&l.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(tid, NULL);
    if (l.bad != 0)
        fail_msg("%s: %ld of %ld connections failed (%s)", mode, l.bad,
                 l.bad + l.ok, l.why);
    assert_true(l.ok >= 10);
    /* the same port throughout: a changed section keeps its socket */
    assert_int_equal(count(&d, l.addr), 11);
    if (old >= 0) {
        /* the connection from before still has its handler */
        echo(old, "b");
        close(old);
    }
    stop(&d);
}

static void
test_reload_ten_times_nothing_refused(void **state)
{
    static const char *const modes[] = { "threading", "event", "forking",
                                         "sync" };

    (void)state;
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        ten_reloads(modes[i]);
}

/* ---- a bad file changes nothing ----------------------------------------- */

static void
test_reload_bad_file_changes_nothing(void **state)
{
    static const char good[] = "[e]\nhandler = echo\nmode = threading\n"
                               "port = 0\n";
    struct ssd d;
    int fd;

    (void)state;
    assert_int_equal(ssd_start(&d, good, 1, NULL), 0);
    fd = ssd_connect(ssd_addr(&d, "e"));
    echo(fd, "x");
    rewrite(&d, "[e]\nhandler = echo\nmode = threading\nport = 0\n"
                "bogus = 1\n[f]\nhandler = nosuch\nport = 0\n");
    reload(&d);
    assert_true(ssd_log_has(&d, "error: sockserv: reload failed: the "
                                "configuration in force goes on"));
    assert_true(ssd_log_has(&d, "test.ini:5: unknown key \"bogus\""));
    assert_true(ssd_log_has(&d, "test.ini:7: handler \"nosuch\""));
    assert_false(ssd_log_has(&d, "reloaded:"));
    /* the running request and new ones are served as before */
    echo(fd, "y");
    assert_true(ssd_echo_once(ssd_addr(&d, "e")));
    /* and a good file later is taken */
    rewrite(&d, "[e]\nhandler = echo\nmode = threading\nport = 0\n"
                "timeout = 60\n");
    reload(&d);
    assert_true(ssd_log_has(&d, "reloaded: 0 added, 1 changed, 0 removed, "
                                "0 unchanged"));
    assert_true(ssd_echo_once(ssd_addr(&d, "e")));
    echo(fd, "z");
    close(fd);
    stop(&d);
}

/* ---- added, removed, unchanged; [global] keys that need a restart ------- */

static void
test_reload_added_removed_unchanged(void **state)
{
    char b_addr[160];
    struct ssd d;
    int fd_a, fd_b;

    (void)state;
    assert_int_equal(ssd_start(&d, "[a]\nhandler = echo\nmode = event\n"
                               "port = 0\n[b]\nhandler = echo\nmode = "
                               "threading\nport = 0\n", 2, NULL), 0);
    snprintf(b_addr, sizeof b_addr, "%s", ssd_addr(&d, "b"));
    fd_a = ssd_connect(ssd_addr(&d, "a"));
    fd_b = ssd_connect(b_addr);
    echo(fd_a, "1");
    echo(fd_b, "2");
    rewrite(&d, "[global]\nuser = root\n"
                "[a]\nhandler = echo\nmode = event\nport = 0\n"
                "[c]\nhandler = echo\nmode = threading\nport = 0\n");
    reload(&d);
    assert_true(ssd_log_has(&d, "sockserv: reloaded: 1 added, 0 changed, 1 "
                                "removed, 1 unchanged"));
    assert_true(ssd_log_has(&d, "warning: sockserv: reload: [global] user "
                                "changed: it applies at the next restart"));
    assert_true(ssd_log_wait(&d, "c: listening on", WAIT_MS));
    /* b's socket closed at once: refused; its running request drains */
    assert_true(ssd_connect(b_addr) < 0);
    echo(fd_b, "3");
    close(fd_b);
    /* a, unchanged, never noticed */
    echo(fd_a, "4");
    close(fd_a);
    stop(&d);
}

/* ---- a plugin rebuilt under a live connection --------------------------- */

static bool
maps_have(pid_t pid, const char *needle)
{
    char path[64], line[1024];
    bool found = false;
    FILE *fp;

    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    while (!found && fgets(line, sizeof line, fp) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

/* Copies a built plugin to dst (via a temporary name and a rename, as a
 * build would). */
static void
install(const char *src, const char *dst)
{
    char tmp[600], buf[8192];
    int in = open(src, O_RDONLY), out;
    ssize_t n;

    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    assert_int_equal(close(out), 0);
    assert_int_equal(rename(tmp, dst), 0);
}

static void
plugin_swap(const char *mode)
{
    char dir[] = "/tmp/sockserv-gen-XXXXXX", so[64], ini[256];
    struct ssd d;
    int x, y;

    assert_non_null(mkdtemp(dir));
    snprintf(so, sizeof so, "%s/gen.so", dir);
    install(ssd_build_path("tests/plugins/gen_a.so"), so);
    snprintf(ini, sizeof ini, "[g]\nhandler = %s\nmode = %s\nport = 0\n", so,
             mode);
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    x = ssd_connect(ssd_addr(&d, "g"));
    exchange(x, "one\n", "A:one\n");
    /* rebuilt at the same path: a new generation, the INI unchanged */
    install(ssd_build_path("tests/plugins/gen_b.so"), so);
    reload(&d);
    assert_true(ssd_log_has(&d, "reloaded: 0 added, 1 changed, 0 removed, "
                                "0 unchanged"));
    y = ssd_connect(ssd_addr(&d, "g"));
    exchange(y, "two\n", "B:two\n");
    /* the old connection keeps the old code */
    exchange(x, "three\n", "A:three\n");
    assert_true(maps_have(d.pid, "gen.so (deleted)"));
    close(x);
    /* the old generation is unloaded after its last request */
    for (int i = 0; i < WAIT_MS / 10 && maps_have(d.pid, "gen.so (deleted)");
         i++)
        nap();
    assert_false(maps_have(d.pid, "gen.so (deleted)"));
    close(y);
    stop(&d);
    unlink(so);
    rmdir(dir);
}

static void
test_reload_plugin_rebuilt_under_live_connection(void **state)
{
    (void)state;
    plugin_swap("threading");
    plugin_swap("event");
    plugin_swap("forking");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_ten_times_nothing_refused),
        cmocka_unit_test(test_reload_bad_file_changes_nothing),
        cmocka_unit_test(test_reload_added_removed_unchanged),
        cmocka_unit_test(test_reload_plugin_rebuilt_under_live_connection),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
