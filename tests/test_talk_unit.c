/* test_talk_unit.c: unit tests of the talk handler's own logic. */
#include "../handlers/talk.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* ---- bye ---------------------------------------------------------------- */

static void
test_talk_is_bye_forms(void **unused)
{
    (void)unused;
    assert_true(talk_is_bye("bye", 3));
    assert_true(talk_is_bye("BYE", 3));
    assert_true(talk_is_bye("bYe", 3));
    assert_true(talk_is_bye("bye\n", 4));
    assert_true(talk_is_bye("Bye\r\n", 5));
    assert_true(talk_is_bye("bye\r", 4));
}

static void
test_talk_is_bye_not(void **unused)
{
    (void)unused;
    assert_false(talk_is_bye("", 0));
    assert_false(talk_is_bye("\n", 1));
    assert_false(talk_is_bye("by", 2));
    assert_false(talk_is_bye("byee", 4));
    assert_false(talk_is_bye(" bye", 4));
    assert_false(talk_is_bye("bye ", 4));
    assert_false(talk_is_bye("bye\n\n", 5));
    assert_false(talk_is_bye("goodbye", 7));
    assert_false(talk_is_bye("b\0e", 3));
    /* 0x20 folding must not turn other bytes into letters. */
    assert_false(talk_is_bye("\x42\x59\x05", 3));
    assert_false(talk_is_bye("\x02y\x45", 3));
    /* only the given length counts */
    assert_true(talk_is_bye("byeXYZ", 3));
}

static void
test_talk_find_bye(void **unused)
{
    (void)unused;
    assert_int_equal(talk_find_bye("bye", 3), 0);
    assert_int_equal(talk_find_bye("BYE\r\n", 5), 0);
    assert_int_equal(talk_find_bye("hello\nbye\n", 10), 6);
    assert_int_equal(talk_find_bye("hello\nbye", 9), 6);
    assert_int_equal(talk_find_bye("a\r\nBye\r\nmore", 12), 3);
    assert_int_equal(talk_find_bye("bye\nmore", 8), 0);
    assert_int_equal(talk_find_bye("x\n\nbye\n", 7), 3);
    assert_int_equal(talk_find_bye("", 0), -1);
    assert_int_equal(talk_find_bye("\n", 1), -1);
    assert_int_equal(talk_find_bye("hello bye", 9), -1);
    assert_int_equal(talk_find_bye("bye bye\n", 8), -1);
    assert_int_equal(talk_find_bye("goodbye\n", 8), -1);
    assert_int_equal(talk_find_bye("byebye", 6), -1);
    assert_int_equal(talk_find_bye("by\ne\n", 5), -1);
    assert_int_equal(talk_find_bye("\0bye", 4), -1);
}

/* ---- time --------------------------------------------------------------- */

static void
test_talk_ms_left(void **unused)
{
    struct timespec dl;
    int ms;

    (void)unused;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec -= 1;
    assert_int_equal(talk_ms_left(&dl), 0);
    dl.tv_sec += 3;                     /* 2 s ahead */
    ms = talk_ms_left(&dl);
    assert_true(ms > 1000 && ms <= 2000);
    /* a deadline 0.9 ms away has not passed: rounded up, never to 0
     * (a wait_timeout must not end early) */
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += 900000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    assert_int_equal(talk_ms_left(&dl), 1);
    dl.tv_sec += 2;
    dl.tv_sec += 10 * 86400;            /* capped at a day */
    assert_int_equal(talk_ms_left(&dl), 86400000);
}

/* ---- the queue ---------------------------------------------------------- */

static struct talk *
queue_of(struct talk_conn *c, size_t n)
{
    static struct talk t;

    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < n; i++) {
        c[i].next = NULL;
        c[i].state = TALK_QUEUED;
        if (t.tail)
            t.tail->next = &c[i];
        else
            t.head = &c[i];
        t.tail = &c[i];
    }
    return &t;
}

static void
test_talk_dequeue(void **unused)
{
    static struct talk_conn c[3];
    struct talk *t;

    (void)unused;
    t = queue_of(c, 3);
    talk_dequeue(t, &c[1]);             /* middle */
    assert_ptr_equal(t->head, &c[0]);
    assert_ptr_equal(c[0].next, &c[2]);
    assert_ptr_equal(t->tail, &c[2]);
    talk_dequeue(t, &c[2]);             /* tail */
    assert_ptr_equal(t->tail, &c[0]);
    assert_null(c[0].next);
    talk_dequeue(t, &c[1]);             /* not there: nothing happens */
    assert_ptr_equal(t->head, &c[0]);
    talk_dequeue(t, &c[0]);             /* the last one */
    assert_null(t->head);
    assert_null(t->tail);

    t = queue_of(c, 3);
    talk_dequeue(t, &c[0]);             /* head */
    assert_ptr_equal(t->head, &c[1]);
    assert_ptr_equal(t->tail, &c[2]);
}

static void
test_talk_keep_early(void **unused)
{
    static struct talk_conn c[2];
    const char *note = NULL;
    struct talk *t;

    (void)unused;
    t = queue_of(c, 2);
    memcpy(c[0].buf, "abc", 3);
    assert_int_equal(talk_keep_early(t, &c[0], 3, false, &note), 0);
    memcpy(c[0].buf, "def", 3);
    assert_int_equal(talk_keep_early(t, &c[0], 3, false, &note), 0);
    assert_int_equal(c[0].nearly, 6);
    assert_memory_equal(c[0].early, "abcdef", 6);
    assert_null(note);

    /* More than TALK_EARLY_MAX in all: the waiter leaves the queue. */
    assert_int_equal(talk_keep_early(t, &c[0], TALK_EARLY_MAX - 6, false,
                                     &note), 0);
    assert_int_equal(talk_keep_early(t, &c[0], 1, false, &note), -1);
    assert_string_equal(note, "sent too much while waiting");
    assert_int_equal(c[0].state, TALK_DROPPED);
    assert_ptr_equal(t->head, &c[1]);

    /* bye while waiting: leaves too. */
    assert_int_equal(talk_keep_early(t, &c[1], 0, true, &note), -1);
    assert_string_equal(note, "said bye while waiting");
    assert_null(t->head);
}

/* ---- init, through the library ------------------------------------------ */

static struct ss_server *
server_with(const char *mode, const char *key, const char *value)
{
    struct ss_server *s = ss_server_new("talk", &sockserv_handler);

    assert_non_null(s);
    assert_int_equal(ss_server_set(s, "type", "tcp", 2), 0);
    assert_int_equal(ss_server_set(s, "mode", mode, 3), 0);
    assert_int_equal(ss_server_set(s, "host", "127.0.0.1", 4), 0);
    assert_int_equal(ss_server_set(s, "port", "0", 5), 0);
    if (key)
        assert_int_equal(ss_server_set(s, key, value, 6), 0);
    return s;
}

static void
test_talk_init_forking(void **unused)
{
    struct ss_server *s = server_with("forking", NULL, NULL);
    const char *err;
    int line = 0;

    (void)unused;
    assert_int_equal(ss_server_init(s), -1);
    assert_true(ss_server_error_is_config(s));
    err = ss_server_error(s, &line);
    assert_non_null(err);
    assert_int_equal(line, 3);
    assert_string_equal(err, "handler \"talk\" does not run in mode = "
                        "forking (it runs in threading, event)");
    ss_server_free(s);
}

static void
test_talk_init_sync(void **unused)
{
    struct ss_server *s = server_with("sync", NULL, NULL);
    int line = 0;

    (void)unused;
    assert_int_equal(ss_server_init(s), -1);
    assert_true(ss_server_error_is_config(s));
    assert_string_equal(ss_server_error(s, &line), "handler \"talk\" does "
                        "not run in mode = sync (it runs in threading, "
                        "event)");
    assert_int_equal(line, 3);
    ss_server_free(s);
}

static void
test_talk_init_bad_wait_timeout(void **unused)
{
    struct ss_server *s = server_with("threading", "wait_timeout", "soon");
    int line = 0;

    (void)unused;
    assert_int_equal(ss_server_init(s), -1);
    assert_true(ss_server_error_is_config(s));
    assert_non_null(strstr(ss_server_error(s, &line), "wait_timeout"));
    assert_int_equal(line, 6);
    ss_server_free(s);
}

static void
test_talk_init_defaults(void **unused)
{
    struct ss_server *s = server_with("threading", NULL, NULL);
    struct talk *t;

    (void)unused;
    assert_int_equal(ss_server_init(s), 0);
    t = ss_server_state(s);
    assert_non_null(t);
    assert_true(t->wait_timeout == TALK_WAIT_DEF);
    assert_null(t->head);
    assert_string_equal(t->name, "talk");
    ss_server_close(s);
    ss_server_free(s);
}

static void
test_talk_init_wait_timeout(void **unused)
{
    struct ss_server *s = server_with("threading", "wait_timeout", "0.25");
    struct talk *t;

    (void)unused;
    assert_int_equal(ss_server_init(s), 0);
    t = ss_server_state(s);
    assert_true(t->wait_timeout == 0.25);
    ss_server_close(s);
    ss_server_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_talk_is_bye_forms),
        cmocka_unit_test(test_talk_is_bye_not),
        cmocka_unit_test(test_talk_find_bye),
        cmocka_unit_test(test_talk_ms_left),
        cmocka_unit_test(test_talk_dequeue),
        cmocka_unit_test(test_talk_keep_early),
        cmocka_unit_test(test_talk_init_forking),
        cmocka_unit_test(test_talk_init_sync),
        cmocka_unit_test(test_talk_init_bad_wait_timeout),
        cmocka_unit_test(test_talk_init_defaults),
        cmocka_unit_test(test_talk_init_wait_timeout),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
