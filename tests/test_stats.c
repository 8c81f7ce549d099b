/* test_stats.c: ss_server_stats and ss_servers_foreach through the
 * embedding API, in every mode: the counts are exactly the traffic made
 * (verify_request refusals included, which only a program's own hook
 * makes), for streams and datagrams. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockserv.h"
#include "support/daemon.h"

static atomic_bool allow;

static int
echo_handle(struct ss_request *req)
{
    char buf[512];
    ssize_t n;

    while ((n = ss_read(req, buf, sizeof buf)) > 0)
        if (ss_write(req, buf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

static const struct ss_handler echo = {
    .abi = SOCKSERV_ABI, .name = "echo", .kinds = SS_STREAM | SS_DGRAM,
    .handle = echo_handle, .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};

static bool
verify(struct ss_server *srv, const struct sockaddr *sa, socklen_t len,
       void *arg)
{
    (void)srv;
    (void)sa;
    (void)len;
    (void)arg;
    return atomic_load(&allow);
}

static void *
serve(void *arg)
{
    ss_server_serve_forever(arg);
    return NULL;
}

struct found {
    const struct ss_server *want;
    int seen, total;
};

static void
count(struct ss_server *srv, void *arg)
{
    struct found *f = arg;

    f->total++;
    f->seen += srv == f->want;
}

/* Waits (5 s) until no request of srv runs; returns its stats then. */
static struct ss_server_stats
settled(struct ss_server *srv)
{
    struct ss_server_stats st;
    struct timespec nap = { 0, 10 * 1000000L };

    for (int i = 0; i < 500; i++) {
        assert_int_equal(ss_server_stats(srv, &st, sizeof st), 0);
        if (st.active == 0)
            break;
        nanosleep(&nap, NULL);      /* a poll with a deadline */
    }
    return st;
}

static void
run(const char *mode, const char *type)
{
    struct ss_server *srv = ss_server_new("counted", &echo);
    struct ss_server_stats st;
    struct found f = { .want = srv };
    bool stream = strcmp(type, "tcp") == 0;
    pthread_t t;
    int n = 5, m = 3;

    assert_non_null(srv);
    assert_int_equal(ss_server_set(srv, "type", type, 0), 0);
    assert_int_equal(ss_server_set(srv, "mode", mode, 0), 0);
    assert_int_equal(ss_server_set(srv, "port", "0", 0), 0);
    ss_server_set_verify_request(srv, verify, NULL);
    ss_servers_foreach(count, &f);
    assert_int_equal(f.seen, 0);        /* not bound: not listed */
    assert_int_equal(ss_server_start(srv), 0);
    f.seen = f.total = 0;
    ss_servers_foreach(count, &f);
    assert_int_equal(f.seen, 1);
    assert_int_equal(pthread_create(&t, NULL, serve, srv), 0);

    atomic_store(&allow, true);
    for (int i = 0; i < n; i++) {
        if (stream) {
            assert_true(ssd_echo_once(ss_server_address(srv)));
        } else {
            char buf[8];
            int u = ssd_dgram(ss_server_address(srv));

            assert_true(u >= 0);
            assert_int_equal(send(u, "abcd", 4, 0), 4);
            assert_int_equal(ssd_recv_n(u, buf, 4, 5000), 4);
            close(u);
        }
    }
    atomic_store(&allow, false);
    for (int i = 0; i < m; i++) {
        if (stream) {
            int fd = ssd_connect(ss_server_address(srv));

            assert_true(fd >= 0);
            assert_true(ssd_closed_within(fd, 5000));
            close(fd);
        } else {
            int u = ssd_dgram(ss_server_address(srv));

            assert_true(u >= 0);
            assert_int_equal(send(u, "abcd", 4, 0), 4);
            close(u);
        }
    }
    /* datagrams: a refusal has no answer to wait for, so the count is */
    for (int i = 0; i < 500; i++) {
        struct timespec nap = { 0, 10 * 1000000L };

        assert_int_equal(ss_server_stats(srv, &st, sizeof st), 0);
        if (st.refused[SS_REFUSED_VERIFY_REQUEST] >= (unsigned)m)
            break;
        nanosleep(&nap, NULL);
    }
    st = settled(srv);
    assert_int_equal(st.accepted, n);
    assert_int_equal(st.refused[SS_REFUSED_VERIFY_REQUEST], m);
    for (int r = 0; r < SS_REFUSED_REASONS; r++)
        if (r != SS_REFUSED_VERIFY_REQUEST)
            assert_int_equal(st.refused[r], 0);
    assert_int_equal(st.bytes_in, stream ? n : 4 * n);
    assert_int_equal(st.bytes_out, stream ? n : 4 * n);
    assert_int_equal(st.active, 0);
    assert_true(st.uptime > 0 && st.uptime < 60);
    assert_string_equal(ss_refusal_name(SS_REFUSED_VERIFY_REQUEST),
                        "verify_request");
    assert_null(ss_refusal_name(SS_REFUSED_REASONS));
    ss_server_shutdown(srv);
    assert_int_equal(pthread_join(t, NULL), 0);
    ss_server_close(srv);
    f.seen = 0;
    ss_servers_foreach(count, &f);
    assert_int_equal(f.seen, 0);        /* closed: off the list */
    ss_server_free(srv);
}

static void test_stats_sync_tcp(void **s) { (void)s; run("sync", "tcp"); }
static void test_stats_threading_tcp(void **s) { (void)s; run("threading", "tcp"); }
static void test_stats_forking_tcp(void **s) { (void)s; run("forking", "tcp"); }
static void test_stats_event_tcp(void **s) { (void)s; run("event", "tcp"); }
static void test_stats_sync_udp(void **s) { (void)s; run("sync", "udp"); }
static void test_stats_threading_udp(void **s) { (void)s; run("threading", "udp"); }
static void test_stats_forking_udp(void **s) { (void)s; run("forking", "udp"); }
static void test_stats_event_udp(void **s) { (void)s; run("event", "udp"); }

/* A caller built with a smaller struct gets its part; too small: EINVAL. */
static void
test_stats_size(void **state)
{
    struct ss_server *srv = ss_server_new("s", &echo);
    struct ss_server_stats st;

    (void)state;
    assert_non_null(srv);
    memset(&st, 0xff, sizeof st);
    assert_int_equal(ss_server_stats(srv, &st, sizeof st), 0);
    assert_int_equal(st.accepted, 0);
    assert_true(st.uptime == 0);        /* not bound yet */
    assert_int_equal(ss_server_stats(srv, &st, 8), -1);
    ss_server_free(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_sync_tcp),
        cmocka_unit_test(test_stats_threading_tcp),
        cmocka_unit_test(test_stats_forking_tcp),
        cmocka_unit_test(test_stats_event_tcp),
        cmocka_unit_test(test_stats_sync_udp),
        cmocka_unit_test(test_stats_threading_udp),
        cmocka_unit_test(test_stats_forking_udp),
        cmocka_unit_test(test_stats_event_udp),
        cmocka_unit_test(test_stats_size),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
