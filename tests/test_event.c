/* test_event.c: mode = event: its coroutines (coro.c) and what only this
 * mode promises: a flat thread count, a caught stack overflow, a warning
 * for a request that holds the loop, ABI 1 plugins refused for it alone.
 * The behaviour it shares with the other modes is tested with them
 * (test_daemon, test_limits, test_chat and test_talk run it too). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "coro.h"
#include "support/daemon.h"

/* ---- coroutines ----------------------------------------------------------- */

#define NCORO 64
#define TURNS 20

static struct ss_coro_stack stack;
static struct ss_coro coros[NCORO];
static unsigned turns[NCORO];

/* Fills a frame with its own id, then checks it after every suspension:
 * the frames of the others ran in the same place meanwhile. */
static void
coro_fill(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    unsigned char mine[1000 + 37 * (NCORO - 1)];
    size_t len = 1000 + 37 * id;

    memset(mine, (int)id, len);
    for (unsigned t = 0; t < TURNS; t++) {
        ss_coro_suspend(&stack);
        for (size_t i = 0; i < len; i++)
            if (mine[i] != (unsigned char)id)
                return;         /* turns stays short: the test fails */
        turns[id]++;
    }
}

static void
test_coro_frames_survive_interleaving(void **state)
{
    (void)state;
    assert_int_equal(ss_coro_stack_init(&stack, 64 * 1024), 0);
    for (unsigned i = 0; i < NCORO; i++) {
        ss_coro_start(&stack, &coros[i], coro_fill, (void *)(uintptr_t)i);
        assert_false(coros[i].done);
    }
    /* round robin, then backwards: every switch moves frames */
    for (unsigned t = 0; t < TURNS; t++)
        for (unsigned k = 0; k < NCORO; k++) {
            unsigned i = t % 2 ? NCORO - 1 - k : k;

            ss_coro_resume(&stack, &coros[i]);
        }
    for (unsigned i = 0; i < NCORO; i++) {
        assert_true(coros[i].done);
        assert_int_equal(turns[i], TURNS);
        /* what it kept of its frames was about what it used */
        assert_true(coros[i].cap < 1000 + 37 * NCORO + 2048);
        ss_coro_free(&stack, &coros[i]);
    }
    ss_coro_stack_free(&stack);
}

static int ran;

static void
coro_once(void *arg)
{
    (void)arg;
    ran++;
}

static void
test_coro_start_runs_to_end(void **state)
{
    struct ss_coro c;

    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(ss_coro_stack_init(&stack, 16 * 1024), 0);
    ss_coro_start(&stack, &c, coro_once, NULL);
    assert_true(c.done);
    assert_int_equal(ran, 1);
    assert_null(c.save);        /* never suspended: nothing copied */
    ss_coro_free(&stack, &c);
    ss_coro_stack_free(&stack);
}

/* ---- the daemon ------------------------------------------------------------ */

#define PLUGIN(n) SS_BUILD_DIR "/tests/plugins/" n ".so"

/*
 * 1,000 connections on two event servers (each served from a thread of
 * its own) add at most two threads to the idle daemon; so does one event
 * server alone, served from the main thread.
 */
static void
check_threads_flat(const char *ini, const char *const *names, size_t nnames)
{
    enum { N = 1000 };
    static int fds[N];
    struct ssd d;
    long idle, busy;

    assert_int_equal(ssd_start(&d, ini, (int)nnames, NULL), 0);
    /* idle means serving: one echo from each server first (the daemon
     * starts its serving threads after it says where it listens) */
    for (size_t i = 0; i < nnames; i++)
        assert_true(ssd_echo_once(ssd_addr(&d, names[i])));
    idle = ssd_proc_status(d.pid, "Threads");
    assert_true(idle >= 1);
    for (size_t i = 0; i < N; i++) {
        char buf[8];

        fds[i] = ssd_connect(ssd_addr(&d, names[i % nnames]));
        assert_true(fds[i] >= 0);
        assert_int_equal(ssd_send_str(fds[i], "k"), 0);
        assert_true(ssd_recv_until(fds[i], buf, sizeof buf, "k", 5000));
    }
    busy = ssd_proc_status(d.pid, "Threads");
    if (busy > idle + 2)
        fail_msg("%ld threads with %d connections, %ld idle", busy, N, idle);
    for (size_t i = 0; i < N; i++)
        close(fds[i]);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

static void
test_event_threads_stay_flat(void **state)
{
    static const char *const two[] = { "a", "b" }, *const one[] = { "a" };

    (void)state;
    check_threads_flat("[a]\nhandler = echo\nmode = event\nport = 0\n"
                       "[b]\nhandler = echo\nmode = event\nport = 0\n", two,
                       2);
    check_threads_flat("[a]\nhandler = echo\nmode = event\nport = 0\n", one,
                       1);
}

static const char misbehave_ini[] =
    "[m]\nhandler = " PLUGIN("misbehave") "\nmode = event\nport = 0\n"
    "coroutine_stack_size = 64k\n";

/* An overflow of the coroutine stack closes that connection with a line
 * naming the server and the key; the others go on. */
static void
test_event_stack_overflow_caught(void **state)
{
    struct ssd d;
    char buf[64];
    int a, b;

    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* the sanitizers take SIGSEGV (and the stack) for themselves */
    fprintf(stderr, "test_event_stack_overflow_caught: not run under a "
            "sanitizer, which catches the overflow itself\n");
    skip();
#endif
    assert_int_equal(ssd_start(&d, misbehave_ini, 1, NULL), 0);
    a = ssd_connect(ssd_addr(&d, "m"));
    b = ssd_connect(ssd_addr(&d, "m"));
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(ssd_send_str(b, "one\n"), 0);
    assert_true(ssd_recv_until(b, buf, sizeof buf, "one\n", 5000));
    assert_int_equal(ssd_send_str(a, "deep\n"), 0);
    assert_true(ssd_closed_within(a, 5000));
    assert_true(ssd_log_wait(&d, "m: 127.0.0.1:", 5000));
    assert_true(ssd_log_wait(&d, "a request overflowed its stack "
                             "(coroutine_stack_size = 65536 bytes)", 5000));
    /* the other connection, suspended meanwhile, is intact */
    assert_int_equal(ssd_send_str(b, "two\n"), 0);
    assert_true(ssd_recv_until(b, buf, sizeof buf, "two\n", 5000));
    close(a);
    close(b);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* A request that keeps the loop for 150 ms is logged. */
static void
test_event_blocking_request_logged(void **state)
{
    struct ssd d;
    char buf[64];
    int a;

    (void)state;
    assert_int_equal(ssd_start(&d, misbehave_ini, 1, NULL), 0);
    a = ssd_connect(ssd_addr(&d, "m"));
    assert_true(a >= 0);
    assert_int_equal(ssd_send_str(a, "quick\n"), 0);
    assert_true(ssd_recv_until(a, buf, sizeof buf, "quick\n", 5000));
    assert_false(ssd_log_has(&d, "kept the event loop busy"));
    assert_int_equal(ssd_send_str(a, "block\n"), 0);
    assert_true(ssd_recv_until(a, buf, sizeof buf, "blocked\n", 5000));
    assert_true(ssd_log_wait(&d, "warning: m: a request kept the event loop "
                             "busy for", 5000));
    assert_true(ssd_log_has(&d, "handlers must not block in event mode"));
    close(a);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* A plugin built for ABI 1 runs in the other modes, and is refused for
 * event at the mode line. */
static void
test_event_abi1_refused_only_for_event(void **state)
{
    static const char *const check[] = { "--check", NULL };
    static const char *const ok[] = { "sync", "threading", "forking" };
    char ini[512], *out = NULL;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        snprintf(ini, sizeof ini, "[a]\nhandler = %s\ntype = tcp\n"
                 "mode = %s\nport = 0\n", PLUGIN("abi1"), ok[i]);
        if (ssd_run(ini, check, &out) != 0)
            fail_msg("mode = %s: %s", ok[i], out ? out : "");
        free(out);
    }
    snprintf(ini, sizeof ini, "[a]\nhandler = %s\ntype = tcp\n"
             "mode = event\nport = 0\n", PLUGIN("abi1"));
    assert_int_equal(ssd_run(ini, check, &out), 2);
    assert_non_null(out);
    if (strstr(out, ":4: handler \"abi1\" was built for ABI 1, which runs "
               "in sync, threading and forking mode only: rebuild it for "
               "ABI 2 and list SS_MODE_EVENT in .modes for mode = event") ==
        NULL)
        fail_msg("unexpected: %s", out);
    free(out);
}

/* Keys of the other modes are errors in event mode, and the other way. */
static void
test_event_keys_of_other_modes(void **state)
{
    char *out = NULL;

    (void)state;
    assert_int_equal(ssd_run("[e]\nhandler = echo\nmode = event\nport = 0\n"
                             "max_threads = 4\n", NULL, &out), 2);
    assert_non_null(strstr(out, ":5: \"max_threads\" does not apply to "
                                "mode = event"));
    free(out);
    assert_int_equal(ssd_run("[e]\nhandler = echo\nmode = threading\n"
                             "port = 0\ncoroutine_stack_size = 64k\n", NULL,
                             &out), 2);
    assert_non_null(strstr(out, ":5: \"coroutine_stack_size\" does not "
                                "apply to mode = threading"));
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coro_frames_survive_interleaving),
        cmocka_unit_test(test_coro_start_runs_to_end),
        cmocka_unit_test(test_event_threads_stay_flat),
        cmocka_unit_test(test_event_stack_overflow_caught),
        cmocka_unit_test(test_event_blocking_request_logged),
        cmocka_unit_test(test_event_abi1_refused_only_for_event),
        cmocka_unit_test(test_event_keys_of_other_modes),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
