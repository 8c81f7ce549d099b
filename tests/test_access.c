/* test_access.c: the refusal log of core/access.c (ss_access_log_refusal):
 * one line a second for each address, the rest counted, in a table of
 * bounded size. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

#define TABLE 256               /* SS_REFUSAL_SLOTS in core/access.c */

static int
handle_nop(struct ss_request *req)
{
    (void)req;
    return 0;
}

static const struct ss_handler nop = {
    .abi = SOCKSERV_ABI, .name = "nop", .kinds = SS_STREAM,
    .handle = handle_nop,
};

/* The log lines written while a test runs: stderr goes to a memfd while
 * capturing (not while asserting: cmocka reports on stderr). */
struct fx {
    struct ss_server *srv;
    int saved_stderr, logfd;
    double start;
};

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);

    if (fx == NULL)
        return -1;
    fx->srv = ss_server_new("r", &nop);
    fx->logfd = memfd_create("log", MFD_CLOEXEC);
    fx->saved_stderr = dup(STDERR_FILENO);
    if (fx->srv == NULL || fx->logfd < 0 || fx->saved_stderr < 0 ||
        dup2(fx->logfd, STDERR_FILENO) < 0)
        return -1;              /* capturing from the start */
    fx->start = ss_now();
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;

    if (fx->srv != NULL)
        ss_server_free(fx->srv);
    dup2(fx->saved_stderr, STDERR_FILENO);
    close(fx->saved_stderr);
    close(fx->logfd);
    free(fx);
    return 0;
}

/* Log lines go to the memfd (on) or to the real stderr (off). */
static void
capture(struct fx *fx, bool on)
{
    assert_true(dup2(on ? fx->logfd : fx->saved_stderr, STDERR_FILENO) >= 0);
}

/* What has been logged so far (to free). */
static char *
log_text(struct fx *fx)
{
    off_t len = lseek(fx->logfd, 0, SEEK_END);
    char *buf = malloc((size_t)len + 1);

    assert_non_null(buf);
    assert_int_equal(pread(fx->logfd, buf, (size_t)len, 0), len);
    buf[len] = '\0';
    return buf;
}

/* How many times needle is in the log. */
static int
log_count(struct fx *fx, const char *needle)
{
    char *text = log_text(fx);
    int n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

/* Refuses 10.0.X.Y:port, the i-th address of a run of distinct ones. */
static void
refuse(struct fx *fx, int i, int port)
{
    char peer[64];

    snprintf(peer, sizeof peer, "10.0.%d.%d:%d", i / 256, i % 256, port);
    ss_access_log_refusal(fx->srv, peer, "in deny");
}

/* The test relies on everything so far happening within one second of
 * the fixture's start; says so and skips if the machine was slower. */
static void
within_one_second(struct fx *fx)
{
    double took = ss_now() - fx->start;

    capture(fx, false);
    if (took >= 0.9) {
        fprintf(stderr, "skipped: the refusals took %.2f s, not within "
                "one second\n", took);
        skip();
    }
}

/* Each address is named once a second; its repeats (another port too)
 * are counted, and the count is written when the server is freed. */
static void
test_access_log_refusal_per_address(void **state)
{
    struct fx *fx = *state;

    refuse(fx, 1, 1000);
    refuse(fx, 2, 1000);
    refuse(fx, 1, 1001);
    refuse(fx, 1, 1002);
    within_one_second(fx);
    assert_int_equal(log_count(fx, "r: 10.0.0.1:1000: refused (in deny)\n"),
                     1);
    assert_int_equal(log_count(fx, "r: 10.0.0.2:1000: refused (in deny)\n"),
                     1);
    assert_int_equal(log_count(fx, "10.0.0.1:1001"), 0);
    assert_int_equal(log_count(fx, "10.0.0.1:1002"), 0);
    capture(fx, true);
    ss_server_free(fx->srv);
    fx->srv = NULL;
    capture(fx, false);
    assert_int_equal(log_count(fx, "r: 10.0.0.1: 2 more refused, not "
                               "logged\n"), 1);
    assert_int_equal(log_count(fx, "r: 10.0.0.2: "), 0);
}

/* IPv6 peers are kept by address too, their port aside. */
static void
test_access_log_refusal_ipv6(void **state)
{
    struct fx *fx = *state;

    ss_access_log_refusal(fx->srv, "[2001:db8::1]:1000", "in deny");
    ss_access_log_refusal(fx->srv, "[2001:db8::1]:1001", "in deny");
    ss_access_log_refusal(fx->srv, "[2001:db8::2]:1000", "in deny");
    within_one_second(fx);
    assert_int_equal(log_count(fx, "refused (in deny)"), 2);
    assert_int_equal(log_count(fx, "[2001:db8::2]:1000: refused"), 1);
    capture(fx, true);
    ss_server_free(fx->srv);
    fx->srv = NULL;
    capture(fx, false);
    assert_int_equal(log_count(fx, "r: [2001:db8::1]: 1 more refused"), 1);
}

/*
 * More addresses than the table holds, within one second: every one is
 * named; the one logged longest ago is evicted, its count written first,
 * and is then named again if it comes back within its second.
 */
static void
test_access_log_refusal_table_full(void **state)
{
    struct fx *fx = *state;
    char line[64];

    refuse(fx, 0, 7);
    refuse(fx, 0, 8);                   /* counted */
    for (int i = 1; i < TABLE; i++)
        refuse(fx, i, 7);
    /* the table is full: address 0 still holds its count */
    capture(fx, false);
    assert_int_equal(log_count(fx, "more refused"), 0);
    capture(fx, true);
    refuse(fx, TABLE, 7);               /* evicts address 0 */
    refuse(fx, 0, 9);                   /* evicts address 1 */
    within_one_second(fx);
    for (int i = 0; i <= TABLE; i++) {
        snprintf(line, sizeof line, "r: 10.0.%d.%d:7: refused (in deny)\n",
                 i / 256, i % 256);
        assert_int_equal(log_count(fx, line), 1);
    }
    assert_int_equal(log_count(fx, "r: 10.0.0.0: 1 more refused, not "
                               "logged\n"), 1);
    assert_int_equal(log_count(fx, "r: 10.0.0.0:9: refused (in deny)\n"),
                     1);
    assert_int_equal(log_count(fx, "refused (in deny)"), TABLE + 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_access_log_refusal_per_address,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_log_refusal_ipv6, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_access_log_refusal_table_full,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
