/* test_modes.c: the threading and forking modes when pthread_create,
 * fork or pidfd_open fail (scripted with -Wl,--wrap): the connection is
 * closed and logged, the server goes on; the thread pool reuses parked
 * threads; a forking server reaps its own children and no others. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "support/daemon.h"

static atomic_int fail_pthread_create, fail_fork, fail_pidfd_open, creates;

int __real_pthread_create(pthread_t *, const pthread_attr_t *,
                          void *(*)(void *), void *);
int __wrap_pthread_create(pthread_t *, const pthread_attr_t *,
                          void *(*)(void *), void *);
pid_t __real_fork(void);
pid_t __wrap_fork(void);
int __real_pidfd_open(pid_t, unsigned int);
int __wrap_pidfd_open(pid_t, unsigned int);

int
__wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                      void *(*fn)(void *), void *arg)
{
    if (atomic_exchange(&fail_pthread_create, 0))
        return EAGAIN;
    atomic_fetch_add(&creates, 1);
    return __real_pthread_create(t, a, fn, arg);
}

pid_t
__wrap_fork(void)
{
    if (atomic_exchange(&fail_fork, 0)) {
        errno = EAGAIN;
        return -1;
    }
    return __real_fork();
}

/* pidfd_open fails (EMFILE) while fail_pidfd_open is set. */
int
__wrap_pidfd_open(pid_t pid, unsigned int flags)
{
    if (atomic_load(&fail_pidfd_open)) {
        errno = EMFILE;
        return -1;
    }
    return __real_pidfd_open(pid, flags);
}

static int
echo_handle(struct ss_request *req)
{
    char buf[256];
    ssize_t n;

    while ((n = ss_read(req, buf, sizeof buf)) > 0)
        if (ss_write(req, buf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

static const struct ss_handler echo = {
    .abi = SOCKSERV_ABI, .name = "echo", .kinds = SS_STREAM,
    .handle = echo_handle,
};

static void *
serve(void *arg)
{
    ss_server_serve_forever(arg);
    return NULL;
}

/* Runs fn with stderr captured; returns what was logged (to free). */
static char *
captured_stderr_begin(int *saved)
{
    char path[] = "/tmp/ss-modes-XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    *saved = dup(2);
    dup2(fd, 2);
    return (char *)(intptr_t)fd;
}

static char *
captured_stderr_end(int saved, char *cookie)
{
    int fd = (int)(intptr_t)cookie;
    char *out = calloc(1, 8192);

    dup2(saved, 2);
    close(saved);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_true(read(fd, out, 8191) >= 0);
    close(fd);
    return out;
}

/* An echo server in mode (with key = value, if key), served by *tid. */
static struct ss_server *
start_with(const char *mode, const char *key, const char *value,
           pthread_t *tid)
{
    struct ss_server *s = ss_server_new("m", &echo);

    assert_int_equal(ss_server_set(s, "mode", mode, 0), 0);
    assert_int_equal(ss_server_set(s, "port", "0", 0), 0);
    if (key != NULL)
        assert_int_equal(ss_server_set(s, key, value, 0), 0);
    assert_int_equal(ss_server_start(s), 0);
    assert_int_equal(pthread_create(tid, NULL, serve, s), 0);
    return s;
}

static struct ss_server *
start(const char *mode, pthread_t *tid)
{
    return start_with(mode, NULL, NULL, tid);
}

/* shutdown, join, close (waits for what runs), free */
static void
stop(struct ss_server *s, pthread_t tid)
{
    ss_server_shutdown(s);
    pthread_join(tid, NULL);
    ss_server_close(s);
    ss_server_free(s);
}

static void
test_thread_process_create_fails(void **state)
{
    pthread_t tid;
    struct ss_server *s = start("threading", &tid);
    int saved, fd;
    char *cookie, *log;

    (void)state;
    cookie = captured_stderr_begin(&saved);
    atomic_store(&fail_pthread_create, 1);
    fd = ssd_connect(ss_server_address(s));
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    log = captured_stderr_end(saved, cookie);
    assert_non_null(strstr(log, "cannot start a thread: Resource "
                            "temporarily unavailable; connection closed"));
    free(log);
    assert_true(ssd_echo_once(ss_server_address(s)));  /* it goes on */
    stop(s, tid);
}

static void
test_fork_process_fork_fails(void **state)
{
    pthread_t tid;
    struct ss_server *s = start("forking", &tid);
    int saved, fd;
    char *cookie, *log;

    (void)state;
    cookie = captured_stderr_begin(&saved);
    atomic_store(&fail_fork, 1);
    fd = ssd_connect(ss_server_address(s));
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    log = captured_stderr_end(saved, cookie);
    assert_non_null(strstr(log, "fork: Resource temporarily unavailable; "
                            "connection closed"));
    free(log);
    assert_true(ssd_echo_once(ss_server_address(s)));
    stop(s, tid);
}

/*
 * Without a pidfd (pidfd_open failing with EMFILE) a child is still
 * reaped, by looking at it every 100 ms: with max_children = 1 each
 * request waits for the last child's end, and none is left after.
 */
static void
test_fork_without_pidfd(void **state)
{
    pthread_t tid;
    struct ss_server *s;

    (void)state;
    atomic_store(&fail_pidfd_open, 1);
    s = start_with("forking", "max_children", "1", &tid);
    for (int i = 0; i < 4; i++)
        assert_true(ssd_echo_once(ss_server_address(s)));
    stop(s, tid);               /* close waits (reaping) for the last one */
    atomic_store(&fail_pidfd_open, 0);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/*
 * A forking server reaps its own children only: a child the embedding
 * program forked is left for the program to wait for, with its status.
 */
static void
test_fork_leaves_other_children(void **state)
{
    pthread_t tid;
    struct ss_server *s;
    int p[2], st = 0;
    pid_t own;
    char c;

    (void)state;
    assert_int_equal(pipe(p), 0);
    own = __real_fork();
    assert_true(own >= 0);
    if (own == 0) {             /* the program's own child: exits 7 */
        close(p[1]);
        _exit(read(p[0], &c, 1) == 0 ? 7 : 1);
    }
    close(p[0]);
    s = start("forking", &tid);
    assert_true(ssd_echo_once(ss_server_address(s)));
    close(p[1]);                /* its child ends now, a zombie */
    for (int i = 0; i < 5; i++)
        assert_true(ssd_echo_once(ss_server_address(s)));
    stop(s, tid);
    assert_int_equal(waitpid(own, &st, 0), own);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
}

/* Sequential requests reuse one parked thread: no pthread_create each. */
static void
test_thread_pool_reuses_threads(void **state)
{
    pthread_t tid;
    struct ss_server *s = start("threading", &tid);
    int before;

    (void)state;
    assert_true(ssd_echo_once(ss_server_address(s)));
    before = atomic_load(&creates);
    for (int i = 0; i < 50; i++)
        assert_true(ssd_echo_once(ss_server_address(s)));
    /* a few more at most (a finishing thread can race the next accept;
     * each extra one parks too), not one per request */
    assert_true(atomic_load(&creates) - before <= 5);
    stop(s, tid);
}

/* max_spare_threads = 0: a thread per request, as Python. */
static void
test_thread_pool_disabled(void **state)
{
    pthread_t tid;
    struct ss_server *s = start_with("threading", "max_spare_threads", "0",
                                     &tid);
    int before;

    (void)state;
    before = atomic_load(&creates);
    for (int i = 0; i < 10; i++)
        assert_true(ssd_echo_once(ss_server_address(s)));
    assert_int_equal(atomic_load(&creates) - before, 10);
    stop(s, tid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_process_create_fails),
        cmocka_unit_test(test_fork_process_fork_fails),
        cmocka_unit_test(test_fork_without_pidfd),
        cmocka_unit_test(test_fork_leaves_other_children),
        cmocka_unit_test(test_thread_pool_reuses_threads),
        cmocka_unit_test(test_thread_pool_disabled),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
