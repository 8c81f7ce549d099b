/* test_chat.c: the chat handler against the real daemon: stream and
 * datagram rooms, raw clients, slow readers, long lines, many members, and
 * the tutorial's chat client. */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/chatcl.h"
#include "support/daemon.h"

#define WAIT_MS 5000            /* bound on anything that should be quick */

#define ROOM_INI                                                          \
    "[chat]\nhandler = chat\ntype = tcp\nmode = threading\n"              \
    "host = 127.0.0.1\nport = 0\n"

#define MAX_KIDS 4

static struct {
    struct ssd d;
    bool started;
    pid_t kids[MAX_KIDS];
    int nkids;
} t;

/* The suite runs twice: its servers in threading, then in event mode. */
static const char *run_mode = "threading";

static void
start(const char *ini, int nservers)
{
    assert_int_equal(ssd_start(&t.d, ssd_ini_mode(ini, run_mode), nservers,
                               NULL), 0);
    t.started = true;
}

static const char *
room_addr(void)
{
    return ssd_addr(&t.d, "chat");
}

/* Connects, waits for the prompt and joins the stream room as nick. */
static struct cl *
join(const char *nick)
{
    return cl_join(room_addr(), nick);
}

static int
setup(void **unused)
{
    (void)unused;
    memset(&t, 0, sizeof t);
    return 0;
}

/* Ends child processes and clients, then the daemon, which must exit 0. */
static int
teardown(void **unused)
{
    int st = 0;

    (void)unused;
    for (int i = 0; i < t.nkids; i++) {
        kill(t.kids[i], SIGKILL);
        waitpid(t.kids[i], NULL, 0);
    }
    cl_free_all();
    if (t.started) {
        st = ssd_stop(&t.d, SIGTERM);
        if (st != 0)
            ssd_print_log(&t.d);
        ssd_cleanup(&t.d);
    }
    memset(&t, 0, sizeof t);
    return st == 0 ? 0 : -1;
}

/* ---- the stream room ----------------------------------------------------- */

/* Three members: a private message reaches its target only; join notices
 * reach the others. */
static void
test_chat_private_reaches_only_target(void **unused)
{
    struct cl *a, *b, *c;
    char seen[8192];

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    b = join("bob");
    cl_expect(a, "* bob joined\n");
    c = join("carol");
    cl_expect(a, "* carol joined\n");
    cl_expect(b, "* carol joined\n");

    cl_send(a, "bob:psst secret-1\n");
    cl_expect(b, "alice (private): psst secret-1\n");
    cl_send(a, "/msg carol psst secret-2\n");
    cl_expect(c, "alice (private): psst secret-2\n");
    /* a later room message from alice: whatever came before it is all
     * that reached each member */
    cl_send(a, "marker-1\n");
    assert_true(cl_wait_seen(c, "alice: marker-1\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "secret-1"));
    assert_true(cl_wait_seen(b, "alice: marker-1\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "secret-2"));
    cl_send(b, "marker-2\n");
    assert_true(cl_wait_seen(a, "bob: marker-2\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "secret"));
    assert_null(strstr(seen, "marker-1"));  /* no echo to the sender */
}

static void
test_chat_broadcast_reaches_all_others(void **unused)
{
    struct cl *a, *b, *c;
    char seen[8192];

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    b = join("bob");
    c = join("carol");
    cl_send(a, "hello room, \xE4\xBD\xA0\xE5\xA5\xBD\r\n");
    cl_expect(b, "alice: hello room, \xE4\xBD\xA0\xE5\xA5\xBD\n");
    cl_expect(c, "alice: hello room, \xE4\xBD\xA0\xE5\xA5\xBD\n");
    cl_send(c, "done\n");
    assert_true(cl_wait_seen(a, "carol: done\n", WAIT_MS, seen, sizeof seen));
    assert_null(strstr(seen, "hello room"));
    /* logs: joins at info, message contents never */
    assert_true(ssd_log_wait(&t.d, "chat: carol joined", WAIT_MS));
    assert_false(ssd_log_has(&t.d, "hello room"));
}

/* An unknown recipient is an error to the sender and reaches no one. */
static void
test_chat_unknown_target_leaks_nowhere(void **unused)
{
    struct cl *a, *b, *c;
    char seen[8192];

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    b = join("bob");
    c = join("carol");
    cl_send(a, "bobb:secret-3\n");
    cl_expect(a, "error: no user \"bobb\" online; message not sent\n");
    cl_send(a, "/msg dave secret-4\n");
    cl_expect(a, "error: no user \"dave\" online; message not sent\n");
    cl_send(a, "marker-3\n");
    assert_true(cl_wait_seen(b, "alice: marker-3\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "secret"));
    assert_true(cl_wait_seen(c, "alice: marker-3\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "secret"));
    assert_false(ssd_log_has(&t.d, "secret"));
}

static void
test_chat_duplicate_nickname_refused(void **unused)
{
    struct cl *a, *x;

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    x = cl_at_prompt(room_addr());
    cl_send(x, "alice\n");
    cl_expect(x, "error: the nickname \"alice\" is taken\n");
    cl_expect(x, "Please enter your nickname: ");
    cl_send(x, "ALICE\n");
    cl_expect(x, "error: the nickname \"ALICE\" is taken\n");
    cl_expect(x, "Please enter your nickname: ");
    cl_send(x, "two words\n");
    cl_expect(x, "error: a nickname cannot contain spaces\n");
    cl_expect(x, "Please enter your nickname: ");
    cl_send(x, "a:b\n");
    cl_expect(x, "error: a nickname cannot contain ':'\n");
    cl_send(x, "abcdefghijklmnopqrstuvwxyz0123456\n");
    cl_expect(x, "error: a nickname has at most 32 bytes\n");
    cl_send(x, "\xC3\n");
    cl_expect(x, "error: a nickname must be valid UTF-8\n");
    cl_send(x, "\xE5\xBC\xA0\xE4\xB8\x89\n");               /* 张三 */
    cl_expect(x, "* welcome, \xE5\xBC\xA0\xE4\xB8\x89!");
    cl_expect(a, "* \xE5\xBC\xA0\xE4\xB8\x89 joined\n");
    assert_true(ssd_log_wait(&t.d, "refused nickname \"alice\": taken",
                             WAIT_MS));
    assert_true(ssd_log_has(&t.d, "refused nickname: a nickname cannot "
                            "contain spaces"));
}

static void
test_chat_list_help_nick(void **unused)
{
    struct cl *a, *b;
    char seen[4096];

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    b = join("bob");
    cl_send(a, "/list\n");
    assert_true(cl_wait_seen(a, "* 2 online:", WAIT_MS, NULL, 0));
    assert_true(cl_wait_seen(a, "\n", WAIT_MS, seen, sizeof seen));
    assert_non_null(strstr(seen, " alice"));
    assert_non_null(strstr(seen, " bob"));
    cl_send(a, "/help\n");
    cl_expect(a, "NICK:text or /msg NICK text");
    cl_expect(a, "/quit or bye");
    cl_send(a, "/nope\n");
    cl_expect(a, "error: unknown command; /help lists the commands\n");

    cl_send(b, "/nick robert\n");
    cl_expect(b, "* you are now robert\n");
    cl_expect(a, "* bob is now robert\n");
    cl_send(a, "bob:hi\n");
    cl_expect(a, "error: no user \"bob\" online");
    cl_send(a, "robert:hi robert\n");
    cl_expect(b, "alice (private): hi robert\n");
    cl_send(b, "/nick alice\n");
    cl_expect(b, "error: the nickname \"alice\" is taken\n");
    cl_send(a, "/list\n");
    assert_true(cl_wait_seen(a, "* 2 online:", WAIT_MS, NULL, 0));
    assert_true(cl_wait_seen(a, "\n", WAIT_MS, seen, sizeof seen));
    assert_non_null(strstr(seen, " robert"));
    assert_true(ssd_log_wait(&t.d, "chat: bob is now robert", WAIT_MS));
}

/* /quit, bye (any case), a plain close and a reset each give a leave
 * notice, close the connection, and free the nickname. */
static void
test_chat_quit_bye_and_leave_notices(void **unused)
{
    struct cl *a, *b, *c, *d, *e;
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    (void)unused;
    start(ROOM_INI, 1);
    b = join("bob");
    a = join("alice");
    c = join("carol");
    d = join("dave");
    e = join("erin");
    cl_send(a, "/quit\n");
    cl_expect(a, "* bye, alice\n");
    assert_true(cl_closed(a, WAIT_MS));
    cl_expect(b, "* alice left (quit)\n");
    cl_send(c, "ByE\n");
    cl_expect(c, "* bye, carol\n");
    assert_true(cl_closed(c, WAIT_MS));
    cl_expect(b, "* carol left (quit)\n");
    cl_close(d);
    cl_expect(b, "* dave left (disconnected)\n");
    assert_int_equal(setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
                     0);
    cl_close(e);                            /* sends a reset */
    cl_expect(b, "* erin left (disconnected)\n");
    assert_true(ssd_log_wait(&t.d, "chat: erin left (disconnected",
                             WAIT_MS));
    a = join("alice");                      /* the name is free again */
    cl_expect(b, "* alice joined\n");
}

/* Clients like the tutorial's send each message without a newline. */
static void
test_chat_raw_client_without_newlines(void **unused)
{
    struct cl *r, *b;

    (void)unused;
    start(ROOM_INI, 1);
    b = join("bob");
    r = cl_at_prompt(room_addr());
    cl_send(r, "raw");
    cl_expect(r, "* welcome, raw!");
    cl_expect(b, "* raw joined\n");
    cl_send(r, "hello without newline");
    cl_expect(b, "raw: hello without newline\n");
    cl_send(r, "bob:private without newline");
    cl_expect(b, "raw (private): private without newline\n");
    cl_send(b, "back to you");
    cl_expect(r, "bob: back to you\n");
    cl_send(r, "bye");
    cl_expect(r, "* bye, raw\n");
    assert_true(cl_closed(r, WAIT_MS));
    cl_expect(b, "* raw left (quit)\n");
}

/* Invalid UTF-8 never reaches others; a long line arrives as messages
 * under 1024 bytes that each decode. */
static bool
valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t k = s[i] < 0x80 ? 1 : (s[i] >> 5) == 6 ? 2
                 : (s[i] >> 4) == 14 ? 3 : (s[i] >> 3) == 30 ? 4 : 0;

        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        }
        i += k;
    }
    return true;
}

static void
test_chat_utf8_and_message_size(void **unused)
{
    struct cl *a, *b;
    static char line[4100], seen[16384];
    size_t n = 0;
    char *p, *nl;
    int pieces = 0;

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    b = join("bob");
    cl_send(a, "caf\xE9 \xFF\xFE \x1B[2J\n");
    cl_expect(b, "alice: caf\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD "
                 "\xEF\xBF\xBD[2J\n");
    while (n + 3 <= 4095) {
        memcpy(line + n, "\xE4\xB8\xAD", 3);
        n += 3;
    }
    line[n++] = '\n';
    line[n] = '\0';
    cl_send(a, line);
    cl_send(a, "end-of-long\n");
    assert_true(cl_wait_seen(b, "alice: end-of-long\n", WAIT_MS, seen,
                             sizeof seen));
    for (p = seen; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        size_t len = (size_t)(nl - p) + 1;

        if (strncmp(p, "alice: ", 7) != 0 || strstr(p, "end-of") == p + 7)
            continue;
        assert_true(len < 1024);
        assert_true(valid_utf8((unsigned char *)p, len));
        pieces++;
    }
    assert_true(pieces >= 4);
}

/* The same room over a Unix stream socket. */
static void
test_chat_unix_stream(void **unused)
{
    struct cl *a, *b;

    (void)unused;
    start("[chat]\nhandler = chat\ntype = unix-stream\nmode = threading\n"
          "path = @DIR@/chat.sock\n", 1);
    a = join("alice");
    b = join("bob");
    cl_expect(a, "* bob joined\n");
    cl_send(a, "bob:over unix");
    cl_expect(b, "alice (private): over unix\n");
    cl_send(b, "/quit\n");
    cl_expect(a, "* bob left (quit)\n");
    assert_true(ssd_log_wait(&t.d, "chat: alice joined from", WAIT_MS));
}

/* ---- the slow reader ----------------------------------------------------- */

/*
 * A member that never reads while alice sends megabytes: bob and carol
 * get each batch promptly, the staller is disconnected (logged) and the
 * others are told it left.
 */
static void
test_chat_staller_disconnected(void **unused)
{
    struct cl *a, *b, *c, *s;
    static char batch[64 * 1024], seen[256 * 1024];
    char marker[64];
    int nbatch = 0;
    bool gone = false;
    double worst = 0;

    (void)unused;
    start(ROOM_INI "max_backlog = 65536\n", 1);
    a = join("alice");
    b = join("bob");
    c = join("carol");
    s = cl_at_prompt(room_addr());
    cl_send(s, "staller\n");
    cl_expect(s, "* welcome, staller!");
    cl_expect(b, "* staller joined\n");
    cl_expect(c, "* staller joined\n");
    /* from here on, s never reads */
    while (!gone && nbatch < 2000) {
        size_t len = 0;
        double t0;

        while (len + 1000 < sizeof batch) {
            memset(batch + len, 'x', 998);
            batch[len + 998] = '\n';
            len += 999;
        }
        snprintf(marker, sizeof marker, "end-of-batch-%d\n", nbatch);
        memcpy(batch + len, marker, strlen(marker));
        len += strlen(marker);
        t0 = cl_now_ms();
        assert_int_equal(ssd_send_all(a->fd, batch, len), 0);
        snprintf(marker, sizeof marker, "alice: end-of-batch-%d\n", nbatch);
        assert_true(cl_wait_seen(b, marker, WAIT_MS, seen, sizeof seen));
        gone = strstr(seen, "* staller left (disconnected") != NULL;
        assert_true(cl_wait_seen(c, marker, WAIT_MS, NULL, 0));
        if (cl_now_ms() - t0 > worst)
            worst = cl_now_ms() - t0;
        nbatch++;
    }
    fprintf(stderr, "staller dropped after %d batches of 64 KiB; slowest "
            "batch %.0f ms\n", nbatch, worst);
    assert_true(gone);
    assert_true(ssd_log_wait(&t.d, "staller (", WAIT_MS));
    assert_true(ssd_log_has(&t.d, "disconnected: delivery failed"));
    assert_true(ssd_log_has(&t.d, "chat: staller left (disconnected"));
    assert_true(cl_closed(s, 10000));
    /* the room goes on */
    cl_send(b, "still here\n");
    cl_expect(a, "bob: still here\n");
}

/* ---- a 1 MiB line -------------------------------------------------------- */

static void
test_chat_one_mib_line(void **unused)
{
    struct cl *a, *b;
    static char big[1024 * 1024];
    char seen[8192];
    long before, after;

    (void)unused;
    start(ROOM_INI, 1);
    a = join("alice");
    b = join("bob");
    before = ssd_proc_status(t.d.pid, "VmHWM");
    assert_true(before > 0);
    memset(big, 'A', sizeof big);
    assert_int_equal(ssd_send_all(a->fd, big, sizeof big), 0);
    cl_expect(a, "error: line too long (1048576 bytes, max_line is 4096); "
                 "discarded\n");
    cl_send(a, "after the long line");
    assert_true(cl_wait_seen(b, "alice: after the long line\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "AAAA"));
    after = ssd_proc_status(t.d.pid, "VmHWM");
    fprintf(stderr, "daemon peak RSS %ld KiB -> %ld KiB\n", before, after);
    assert_true(after - before < 512);
    assert_true(ssd_log_has(&t.d, "line of 1048576 bytes over max_line"));
}

/* ---- many members -------------------------------------------------------- */

static void
test_chat_200_members(void **unused)
{
    struct cl *m[200];
    char nick[16];

    (void)unused;
    start(ROOM_INI, 1);
    for (int i = 0; i < 200; i++) {
        snprintf(nick, sizeof nick, "m%03d", i);
        m[i] = join(nick);
    }
    cl_send(m[0], "hello two hundred\n");
    for (int i = 1; i < 200; i++)
        cl_expect(m[i], "m000: hello two hundred\n");
    cl_send(m[0], "/list\n");
    cl_expect(m[0], "* 200 online:");
    cl_expect(m[0], " m199");
}

/* ---- configuration ------------------------------------------------------- */

static void
test_chat_config_errors(void **unused)
{
    (void)unused;
    expect_config_error("[chat]\nhandler = chat\ntype = tcp\n"
                        "mode = forking\nhost = 127.0.0.1\nport = 0\n",
                        ":4: handler \"chat\" does not run in mode = "
                        "forking (it runs in sync, threading, event)");
    expect_config_error("[chat]\nhandler = chat\ntype = udp\n"
                        "mode = forking\nhost = 127.0.0.1\nport = 0\n",
                        "mode = forking");
    expect_config_error("[chat]\nhandler = chat\ntype = tcp\nmode = sync\n"
                        "host = 127.0.0.1\nport = 0\n",
                        "chat cannot run with mode = sync on a stream");
    expect_config_error(ROOM_INI "max_line = 5\n", "max_line");
    expect_config_error(ROOM_INI "idle_timeout = 5\n",
                        "idle_timeout is for the udp room");
    expect_config_error(ROOM_INI "prompt = bad\\q\n", "prompt");
    expect_config_error(ROOM_INI "partial_timeout = 0\n", "partial_timeout");
    /* workers = N without redis would be N rooms that do not know it */
    expect_config_error(ROOM_INI "workers = 2\n", ":7: workers = 2 would "
                        "split the room over 2 processes");
    expect_config_error("[chat]\nhandler = chat\ntype = udp\n"
                        "host = 127.0.0.1\nport = 0\nworkers = 3\n",
                        ":6: workers = 3 would split the room over 3 "
                        "processes that do not see each other's members: a "
                        "datagram room lives in one process");
}

/* A custom prompt and a slower partial_timeout are honoured. */
static void
test_chat_options(void **unused)
{
    struct cl *x;

    (void)unused;
    start(ROOM_INI "prompt = \"who are you?\\s\"\npartial_timeout = 0.2\n"
          "max_line = 64\nmax_members = 2\n", 1);
    x = cl_wrap(ssd_connect(room_addr()));
    cl_expect(x, "who are you? ");
    cl_send(x, "x1\n");
    cl_expect(x, "* welcome, x1!");
    cl_send(x, "0123456789012345678901234567890123456789"
               "0123456789012345678901234567890123456789\n");
    cl_expect(x, "error: line too long (80 bytes, max_line is 64)");
    x = cl_wrap(ssd_connect(room_addr()));
    cl_expect(x, "who are you? ");
    cl_send(x, "x2\n");
    cl_expect(x, "* welcome, x2!");
    x = cl_wrap(ssd_connect(room_addr()));
    cl_expect(x, "who are you? ");
    cl_send(x, "x3\n");
    cl_expect(x, "error: the room is full (2 members)\n");
    assert_true(cl_closed(x, WAIT_MS));
}

/* ---- the datagram room --------------------------------------------------- */

/* Receives datagrams until one holds needle; each must be under 1024
 * bytes.  seen (if not NULL) collects all of them. */
static bool
dg_wait(int fd, const char *needle, char *seen, size_t seensize)
{
    double deadline = cl_now_ms() + WAIT_MS;
    size_t have = 0;
    char buf[2048];

    if (seen != NULL)
        seen[0] = '\0';
    while (cl_now_ms() < deadline) {
        ssize_t n = ssd_recv_some(fd, buf, sizeof buf - 1,
                                  (int)(deadline - cl_now_ms()));

        if (n <= 0)
            return false;
        assert_true(n < 1024);
        buf[n] = '\0';
        if (seen != NULL && have + (size_t)n < seensize) {
            memcpy(seen + have, buf, (size_t)n + 1);
            have += (size_t)n;
        }
        if (strstr(buf, needle) != NULL)
            return true;
    }
    return false;
}

static void
dg_send(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

static void
test_chat_udp_room(void **unused)
{
    const char *addr;
    int a, b, c, x;
    char seen[8192];

    (void)unused;
    start("[chatu]\nhandler = chat\ntype = udp\nmode = threading\n"
          "host = 127.0.0.1\nport = 0\nprompt = \"nick?\\s\"\n", 1);
    addr = ssd_addr(&t.d, "chatu");
    a = ssd_dgram(addr);
    b = ssd_dgram(addr);
    c = ssd_dgram(addr);
    x = ssd_dgram(addr);
    assert_true(a >= 0 && b >= 0 && c >= 0 && x >= 0);
    cl_wrap(a);
    cl_wrap(b);
    cl_wrap(c);
    cl_wrap(x);
    dg_send(x, "two words");
    assert_true(dg_wait(x, "error: a nickname cannot contain spaces", NULL,
                        0));
    assert_true(dg_wait(x, "nick? ", NULL, 0));
    dg_send(a, "alice");
    assert_true(dg_wait(a, "* welcome, alice!", NULL, 0));
    dg_send(b, "/nick bob");
    assert_true(dg_wait(b, "* welcome, bob!", NULL, 0));
    assert_true(dg_wait(a, "* bob joined\n", NULL, 0));
    dg_send(c, "carol\n");
    assert_true(dg_wait(c, "* welcome, carol!", NULL, 0));
    assert_true(dg_wait(a, "* carol joined\n", NULL, 0));
    assert_true(dg_wait(b, "* carol joined\n", NULL, 0));
    dg_send(x, "alice");
    assert_true(dg_wait(x, "error: the nickname \"alice\" is taken", NULL,
                        0));

    dg_send(a, "bob:psst-u");
    assert_true(dg_wait(b, "alice (private): psst-u\n", NULL, 0));
    dg_send(a, "bobby:secret-u");
    assert_true(dg_wait(a, "error: no user \"bobby\" online", NULL, 0));
    dg_send(a, "hello udp");
    assert_true(dg_wait(b, "alice: hello udp\n", seen, sizeof seen));
    assert_null(strstr(seen, "secret"));
    assert_true(dg_wait(c, "alice: hello udp\n", seen, sizeof seen));
    assert_null(strstr(seen, "psst"));
    assert_null(strstr(seen, "secret"));
    dg_send(a, "/list");
    assert_true(dg_wait(a, "* 3 online:", NULL, 0));
    dg_send(a, "/quit");
    assert_true(dg_wait(a, "* bye, alice", NULL, 0));
    assert_true(dg_wait(b, "* alice left (quit)\n", NULL, 0));
    /* alice's address is unknown again: its next datagram is a name */
    dg_send(a, "alice2");
    assert_true(dg_wait(a, "* welcome, alice2!", NULL, 0));
    assert_true(ssd_log_wait(&t.d, "chatu: alice left (quit", WAIT_MS));
    assert_false(ssd_log_has(&t.d, "hello udp"));
}

/*
 * Sends one datagram of size bytes from a (joined as alice): a line too
 * long for max_line, then a last line that starts past byte 65,536 when
 * size allows.  Handled whole, the long line is reported with its whole
 * length and the last line reaches b.
 */
static void
big_datagram_case(int a, int b, size_t size)
{
    static const char tail[] = "the last line of a big datagram";
    size_t first = size - sizeof tail;      /* its newline: one byte */
    char *dgram = malloc(size), expect[128];

    assert_non_null(dgram);
    memset(dgram, 'x', first);
    dgram[first] = '\n';
    memcpy(dgram + first + 1, tail, sizeof tail - 1);
    assert_int_equal(send(a, dgram, size, 0), (ssize_t)size);
    free(dgram);
    snprintf(expect, sizeof expect, "error: line too long (%zu bytes, "
             "max_line is 4096); discarded", first);
    assert_true(dg_wait(a, expect, NULL, 0));
    assert_true(dg_wait(b, "alice: the last line of a big datagram\n", NULL,
                        0));
    snprintf(expect, sizeof expect, "alice: line of %zu bytes over "
             "max_line, discarded", first);
    assert_true(ssd_log_wait(&t.d, expect, WAIT_MS));
}

/* Joins a and b to the datagram room at addr as alice and bob. */
static void
dg_join_two(const char *addr, int *a, int *b)
{
    *a = ssd_dgram(addr);
    *b = ssd_dgram(addr);
    assert_true(*a >= 0 && *b >= 0);
    cl_wrap(*a);
    cl_wrap(*b);
    dg_send(*a, "alice");
    assert_true(dg_wait(*a, "* welcome, alice!", NULL, 0));
    dg_send(*b, "bob");
    assert_true(dg_wait(*b, "* welcome, bob!", NULL, 0));
}

/*
 * max_packet_size = 100000: a datagram over 64 KiB is handled whole, never
 * cut short.  A udp datagram cannot be that large (65,507 bytes of IPv4
 * payload; the kernel refuses to send more), so the largest one there
 * is, and unix-dgram carries the 70,000 bytes.
 */
static void
test_chat_big_datagram_whole(void **unused)
{
    char big[70000];
    int a, b;

    (void)unused;
    start("[chatu]\nhandler = chat\ntype = udp\nmode = threading\n"
          "host = 127.0.0.1\nport = 0\nmax_packet_size = 100000\n"
          "[chatx]\nhandler = chat\ntype = unix-dgram\nmode = threading\n"
          "path = @DIR@/chat.sock\nmax_packet_size = 100000\n", 2);
    dg_join_two(ssd_addr(&t.d, "chatu"), &a, &b);
    memset(big, 'x', sizeof big);
    if (send(a, big, sizeof big, 0) == (ssize_t)sizeof big) {
        /* a kernel that sends it: the daemon must take it whole */
        assert_true(dg_wait(a, "error: line too long (70000 bytes", NULL,
                            0));
    } else {
        assert_int_equal(errno, EMSGSIZE);
        fprintf(stderr, "udp: a 70000-byte datagram cannot be sent "
                "(EMSGSIZE); the largest, 65507 bytes, instead\n");
    }
    big_datagram_case(a, b, 65507);
    dg_join_two(ssd_addr(&t.d, "chatx"), &a, &b);
    big_datagram_case(a, b, 70000);
}

/* Members silent for idle_timeout are dropped by the server on its own. */
static void
test_chat_udp_idle_timeout(void **unused)
{
    int a, b;

    (void)unused;
    start("[chatu]\nhandler = chat\ntype = udp\nmode = threading\n"
          "host = 127.0.0.1\nport = 0\nidle_timeout = 0.3\n", 1);
    a = ssd_dgram(ssd_addr(&t.d, "chatu"));
    b = ssd_dgram(ssd_addr(&t.d, "chatu"));
    cl_wrap(a);
    cl_wrap(b);
    dg_send(a, "alice");
    assert_true(dg_wait(a, "* welcome, alice!", NULL, 0));
    dg_send(b, "bob");
    assert_true(dg_wait(b, "* welcome, bob!", NULL, 0));
    assert_true(dg_wait(a, "* alice, you were dropped after 0.3s of "
                        "silence", NULL, 0));
    assert_true(dg_wait(b, "* bob, you were dropped", NULL, 0));
    assert_true(ssd_log_wait(&t.d, "alice left (idle", WAIT_MS));
}

/* ---- chat clients with a sending and a receiving thread ------------------- */

/* Runs python3 -u PATH on port with its stdin and stdout (and stderr) on
 * pipes. */
static pid_t
spawn_client(const char *path, int port, struct cl **in, struct cl **out)
{
    int pin[2], pout[2];
    char portstr[16];
    pid_t pid;

    if (access(path, R_OK) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
    snprintf(portstr, sizeof portstr, "%d", port);
    setenv("SOCKSERV_HOST", "127.0.0.1", 1);
    setenv("SOCKSERV_PORT", portstr, 1);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(pout[1], 2);
        execlp("python3", "python3", "-u", path, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    assert_true(t.nkids < MAX_KIDS);
    t.kids[t.nkids++] = pid;
    *in = cl_wrap(pin[1]);
    *out = cl_wrap(pout[0]);
    return pid;
}

/*
 * Two users of the client DIR/SCRIPT, typing lines that it sends without
 * their newline: the nickname prompt, private messages both ways in UTF-8
 * (NICK:text), a line to the room; neither client breaks.
 */
static void
chat_clients_case(const char *dir, const char *script)
{
    struct cl *ain, *aout, *bin, *bout;
    char path[512], seen[16384];

    snprintf(path, sizeof path, "%s%s", dir, script);
    start(ROOM_INI, 1);
    spawn_client(path, ssd_port(&t.d, "chat"), &ain, &aout);
    cl_expect(aout, "Please enter your nickname: ");
    cl_send(ain, "alice\n");
    cl_expect(aout, "* welcome, alice!");
    spawn_client(path, ssd_port(&t.d, "chat"), &bin, &bout);
    cl_expect(bout, "Please enter your nickname: ");
    cl_send(bin, "\xE5\xB0\x8F\xE6\x98\x8E\n");            /* 小明 */
    cl_expect(bout, "* welcome, \xE5\xB0\x8F\xE6\x98\x8E!");
    cl_expect(aout, "* \xE5\xB0\x8F\xE6\x98\x8E joined");
    /* private both ways, as the tutorial does it: NICK:text */
    cl_send(ain, "\xE5\xB0\x8F\xE6\x98\x8E:\xE4\xBD\xA0\xE5\xA5\xBD, "
                 "\xE5\xB0\x8F\xE6\x98\x8E\n");
    cl_expect(bout, "alice (private): \xE4\xBD\xA0\xE5\xA5\xBD, "
                    "\xE5\xB0\x8F\xE6\x98\x8E");
    cl_send(bin, "alice:hi alice\n");
    cl_expect(aout, "\xE5\xB0\x8F\xE6\x98\x8E (private): hi alice");
    cl_send(ain, "to everyone\n");
    assert_true(cl_wait_seen(bout, "alice: to everyone", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "Traceback"));
    cl_fill(aout, 0);
    assert_null(memmem(aout->buf, aout->len, "Traceback", 9));
}

/* The project's own chat client (tests/clients/), always. */
static void
test_chat_project_client(void **unused)
{
    (void)unused;
    chat_clients_case(ssd_clients_dir(), "chat_client.py");
}

/* The tutorial's chat client, unchanged, when ../shared/seed_clients is
 * there. */
static void
test_chat_seed_clients(void **unused)
{
    bool required;
    const char *dir = ssd_seed_dir(&required);

    (void)unused;
    if (dir == NULL && required)
        fail();
    if (dir == NULL)
        skip();
    chat_clients_case(dir, "chat_client_4_2.py");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_private_reaches_only_target,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_broadcast_reaches_all_others,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_unknown_target_leaks_nowhere,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_duplicate_nickname_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_list_help_nick, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_quit_bye_and_leave_notices,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_raw_client_without_newlines,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_utf8_and_message_size,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_unix_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_staller_disconnected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_one_mib_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_200_members, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_config_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_udp_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_udp_idle_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_big_datagram_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_project_client, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_seed_clients, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    if (cmocka_run_group_tests_name("chat, threading", tests, NULL,
                                    NULL) != 0)
        return 1;
    run_mode = "event";
    return cmocka_run_group_tests_name("chat, event", tests, NULL, NULL);
}
