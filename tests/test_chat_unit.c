/* test_chat_unit.c: the chat handler's framing, UTF-8, parser and router,
 * without sockets (deliveries are recorded instead of sent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../handlers/chat.c"
#include "../handlers/chat_redis.c"

/* ---- recorded deliveries ------------------------------------------------- */

struct rec {
    struct chat_member *to;     /* stream members: the member */
    unsigned port;              /* datagram members: the address's port */
    char text[CHAT_MSG_MAX + 64];
    size_t len;
};

#define NREC 8192
static struct rec recs[NREC];
static size_t nrecs;
static struct chat_member *failing;     /* deliveries to it fail */

static int
rec_deliver(struct chat_room *r, struct chat_member *m, const char *buf,
            size_t len)
{
    struct rec *x;

    (void)r;
    if (m == failing)
        return -1;
    assert_true(nrecs < NREC);
    assert_true(len < sizeof x->text);
    x = &recs[nrecs++];
    x->to = m;
    x->port = ntohs(((struct sockaddr_in *)&m->addr)->sin_port);
    memcpy(x->text, buf, len);
    x->text[len] = '\0';
    x->len = len;
    return 0;
}

/* How many messages m received that contain needle ("" counts all). */
static int
got(struct chat_member *m, const char *needle)
{
    int n = 0;

    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].to == m && strstr(recs[i].text, needle) != NULL)
            n++;
    }
    return n;
}

/* The same, for datagram members known by port. */
static int
got_port(unsigned port, const char *needle)
{
    int n = 0;

    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].to != NULL && recs[i].port == port &&
            strstr(recs[i].text, needle) != NULL)
            n++;
    }
    return n;
}

static void
forget(void)
{
    nrecs = 0;
}

/* ---- fixture: a room with recorded deliveries ---------------------------- */

static char scratch[3 * 65536 + 3];

static struct chat_room *
room_new(bool dgram)
{
    struct chat_room *r = calloc(1, sizeof *r);

    assert_non_null(r);
    r->opt.max_line = CHAT_DEF_MAX_LINE;
    r->opt.max_members = CHAT_DEF_MAX_MEMBERS;
    r->opt.partial_ms = 50;
    r->opt.idle_timeout = 60;
    r->opt.promptlen = (size_t)snprintf(r->opt.prompt, sizeof r->opt.prompt,
                                        "nick? ");
    r->dgram = dgram;
    r->deliver = rec_deliver;
    snprintf(r->name, sizeof r->name, "chat");
    assert_int_equal(pthread_mutex_init(&r->lock, NULL), 0);
    nrecs = 0;
    failing = NULL;
    return r;
}

static void
room_free(struct chat_room *r)
{
    chat_fini(r);
}

/* Feeds a line as a member's input; returns CHAT_GO_ON or CHAT_QUIT. */
static int
say(struct chat_room *r, struct chat_member *m, const char *line)
{
    return chat_input(r, m, line, strlen(line), scratch);
}

static struct chat_member *
member(struct chat_room *r, const char *nick)
{
    struct chat_member *m = calloc(1, sizeof *m);

    assert_non_null(m);
    snprintf(m->peer, sizeof m->peer, "127.0.0.1:%s", nick);
    assert_int_equal(say(r, m, nick), CHAT_GO_ON);
    assert_true(m->joined);
    assert_string_equal(m->nick, nick);
    return m;
}

static void
leave(struct chat_room *r, struct chat_member *m, const char *why)
{
    chat_leave_locked(r, m, why);
    free(m);
}

/* ---- framing ------------------------------------------------------------- */

/* Feeds s; returns the next event and its line as a C string in out. */
static enum chat_ev
next(struct chat_framer *f, const char **in, size_t *inlen, char *out,
     size_t *len)
{
    const char *line = NULL;
    enum chat_ev ev = chat_framer_next(f, in, inlen, &line, len);

    if (ev == CHAT_EV_LINE) {
        memcpy(out, line, *len);
        out[*len] = '\0';
    }
    return ev;
}

static void
test_chat_framer_lines(void **state)
{
    struct chat_framer f;
    const char *in = "a\nbc\r\n\nd";
    size_t inlen = strlen(in), len;
    char out[64];
    const char *line;

    (void)state;
    assert_int_equal(chat_framer_init(&f, 16), 0);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "a");
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "bc");
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "");
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    assert_int_equal(inlen, 0);
    assert_true(chat_framer_pending(&f));
    /* a line split over reads joins up */
    in = "ef\r";
    inlen = 3;
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    in = "\nx";
    inlen = 2;
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "def");
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    chat_framer_flush(&f, &line, &len);
    chat_framer_free(&f);
}

/* Text without a newline is a whole message once the silence comes. */
static void
test_chat_framer_flush_partial(void **state)
{
    struct chat_framer f;
    const char *in = "hello", *line = NULL;
    size_t inlen = 5, len = 0;
    char out[64];

    (void)state;
    assert_int_equal(chat_framer_init(&f, 16), 0);
    assert_false(chat_framer_pending(&f));
    assert_int_equal(chat_framer_flush(&f, &line, &len), CHAT_EV_NONE);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    assert_true(chat_framer_pending(&f));
    assert_int_equal(chat_framer_flush(&f, &line, &len), CHAT_EV_LINE);
    assert_int_equal(len, 5);
    assert_memory_equal(line, "hello", 5);
    assert_false(chat_framer_pending(&f));
    assert_int_equal(chat_framer_flush(&f, &line, &len), CHAT_EV_NONE);
    /* a trailing '\r' is not part of the message */
    in = "hi\r";
    inlen = 3;
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    assert_int_equal(chat_framer_flush(&f, &line, &len), CHAT_EV_LINE);
    assert_int_equal(len, 2);
    chat_framer_free(&f);
}

/* max bytes (plus "\r\n") fit; one more is too long. */
static void
test_chat_framer_max_line(void **state)
{
    struct chat_framer f;
    const char *in;
    size_t inlen, len;
    char out[64];

    (void)state;
    assert_int_equal(chat_framer_init(&f, 8), 0);
    in = "12345678\r\n123456789\n12345678\n";
    inlen = strlen(in);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "12345678");
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_TOOLONG);
    assert_int_equal(len, 9);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "12345678");
    chat_framer_free(&f);
}

/* A long line is dropped as it comes, reported once at its newline, and
 * the next line is whole. */
static void
test_chat_framer_long_line_newline(void **state)
{
    struct chat_framer f;
    const char *in;
    size_t inlen, len;
    char out[64];

    (void)state;
    assert_int_equal(chat_framer_init(&f, 8), 0);
    in = "0123456789abc";
    inlen = strlen(in);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    assert_true(chat_framer_pending(&f));
    assert_true(f.len <= f.cap);
    in = "def\nok\n";
    inlen = strlen(in);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_TOOLONG);
    assert_int_equal(len, 16);
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_LINE);
    assert_string_equal(out, "ok");
    assert_false(chat_framer_pending(&f));
    chat_framer_free(&f);
}

/* 1 MiB without a newline: the buffer never grows past max_line + 1, the
 * silence reports it, and the connection goes on. */
static void
test_chat_framer_long_line_silence(void **state)
{
    struct chat_framer f;
    static char chunk[4096];
    const char *in, *line;
    size_t inlen, len, total = 0;
    char out[64];

    (void)state;
    memset(chunk, 'a', sizeof chunk);
    assert_int_equal(chat_framer_init(&f, 4096), 0);
    while (total < 1024 * 1024) {
        in = chunk;
        inlen = sizeof chunk;
        assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
        assert_true(f.len <= f.cap);
        total += sizeof chunk;
    }
    assert_int_equal(chat_framer_flush(&f, &line, &len), CHAT_EV_TOOLONG);
    assert_int_equal(len, 1024 * 1024);
    assert_null(line);
    in = "hi";
    inlen = 2;
    assert_int_equal(next(&f, &in, &inlen, out, &len), CHAT_EV_NONE);
    assert_int_equal(chat_framer_flush(&f, &line, &len), CHAT_EV_LINE);
    assert_int_equal(len, 2);
    assert_memory_equal(line, "hi", 2);
    chat_framer_free(&f);
}

/* ---- UTF-8 --------------------------------------------------------------- */

static void
clean_is(const char *in, size_t len, const char *want)
{
    char out[256];
    size_t n = chat_utf8_clean(in, len, out);

    out[n] = '\0';
    assert_string_equal(out, want);
}

#define FFFD "\xEF\xBF\xBD"

static void
test_chat_utf8_clean(void **state)
{
    (void)state;
    clean_is("plain text", 10, "plain text");
    clean_is("\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80 caf\xC3\xA9", 17,
             "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80 caf\xC3\xA9");
    clean_is("tab\tok", 6, "tab\tok");
    clean_is("caf\xE9!", 5, "caf" FFFD "!");           /* Latin-1 */
    clean_is("\xFF\xFE", 2, FFFD FFFD);
    clean_is("\xC0\xAF", 2, FFFD FFFD);                 /* overlong '/' */
    clean_is("\xE0\x80\xAF", 3, FFFD FFFD FFFD);        /* overlong */
    clean_is("\xED\xA0\x80", 3, FFFD FFFD FFFD);        /* surrogate */
    clean_is("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    clean_is("ab\xE4\xBD", 4, "ab" FFFD);               /* truncated */
    clean_is("\xE4\xBDz", 3, FFFD "z");
    clean_is("\x1B[2Jx", 5, FFFD "[2Jx");               /* terminal escape */
    clean_is("a\0b", 3, "a" FFFD "b");
    clean_is("\xC2\x85", 2, FFFD);                      /* C1 control */
}

/* Whatever comes in, what comes out decodes as UTF-8 without controls. */
static void
test_chat_utf8_clean_random(void **state)
{
    unsigned seed = 12345;
    char in[64], out[3 * 64];

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(seed % 64), n, i = 0;

        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            in[k] = (char)(seed >> 16);
        }
        n = chat_utf8_clean(in, len, out);
        assert_true(n <= 3 * len);
        while (i < n) {
            uint32_t cp = 0;
            size_t bad, k = chat_utf8_decode((unsigned char *)out + i, n - i,
                                             &cp, &bad);

            assert_true(k > 0);
            assert_false(chat_is_control(cp));
            i += k;
        }
    }
}

/* Cuts stay on character boundaries, within max, and prefer a space. */
static void
test_chat_utf8_cut(void **state)
{
    char s[1200];
    size_t k;

    (void)state;
    for (int i = 0; i < 400; i++)
        memcpy(s + 3 * i, "\xE4\xB8\xAD", 3);
    for (size_t max = 3; max < 200; max++) {
        k = chat_utf8_cut(s, sizeof s, max);
        assert_true(k <= max);
        assert_true(k > max - 3);
        assert_int_equal(k % 3, 0);
    }
    assert_int_equal(chat_utf8_cut("hello world", 11, 100), 11);
    assert_int_equal(chat_utf8_cut("hello world again", 17, 14), 12);
    assert_int_equal(chat_utf8_cut("abcdefghijklmnop", 16, 10), 10);
}

/* ---- nicknames and parsing ----------------------------------------------- */

static void
test_chat_nick_check(void **state)
{
    (void)state;
    assert_null(chat_nick_check("alice", 5));
    assert_null(chat_nick_check("\xE5\xBC\xA0\xE4\xB8\x89", 6));   /* 张三 */
    assert_null(chat_nick_check("12345678901234567890123456789012", 32));
    assert_string_equal(chat_nick_check("", 0),
                        "a nickname needs at least one character");
    assert_string_equal(chat_nick_check("123456789012345678901234567890123",
                                        33),
                        "a nickname has at most 32 bytes");
    assert_string_equal(chat_nick_check("a b", 3),
                        "a nickname cannot contain spaces");
    assert_string_equal(chat_nick_check("a\tb", 3),
                        "a nickname cannot contain spaces");
    assert_string_equal(chat_nick_check("a\xC2\xA0" "b", 4),   /* NBSP */
                        "a nickname cannot contain spaces");
    assert_string_equal(chat_nick_check("a\xE2\x80\x8B" "b", 5), /* ZWSP */
                        "a nickname cannot contain spaces");
    assert_string_equal(chat_nick_check("a:b", 3),
                        "a nickname cannot contain ':'");
    assert_string_equal(chat_nick_check("/me", 3),
                        "a nickname cannot start with '/'");
    assert_string_equal(chat_nick_check("a\xFF", 2),
                        "a nickname must be valid UTF-8");
    assert_string_equal(chat_nick_check("a\x1B", 2),
                        "a nickname cannot contain control characters");
    assert_true(chat_nick_eq("Alice", 5, "aLICE", 5));
    assert_false(chat_nick_eq("alice", 5, "alic", 4));
}

static void
parse_is(const char *line, enum chat_op op, const char *nick,
         const char *text)
{
    struct chat_cmd c;

    chat_parse(line, strlen(line), &c);
    assert_int_equal(c.op, op);
    if (nick != NULL) {
        assert_int_equal(c.nicklen, strlen(nick));
        assert_memory_equal(c.nick, nick, c.nicklen);
    }
    if (text != NULL) {
        assert_int_equal(c.textlen, strlen(text));
        assert_memory_equal(c.text, text, c.textlen);
    }
}

static void
test_chat_parse(void **state)
{
    (void)state;
    parse_is("hello there", CHAT_OP_ROOM, NULL, "hello there");
    parse_is("  indented  ", CHAT_OP_ROOM, NULL, "indented");
    parse_is("", CHAT_OP_NONE, NULL, NULL);
    parse_is(" \t ", CHAT_OP_NONE, NULL, NULL);
    parse_is("bob:hi there", CHAT_OP_PRIVATE, "bob", "hi there");
    parse_is("bob: hi", CHAT_OP_PRIVATE, "bob", "hi");
    parse_is("\xE5\xBC\xA0\xE4\xB8\x89:\xE4\xBD\xA0\xE5\xA5\xBD",
             CHAT_OP_PRIVATE, "\xE5\xBC\xA0\xE4\xB8\x89",
             "\xE4\xBD\xA0\xE5\xA5\xBD");
    parse_is("12:30 lunch?", CHAT_OP_PRIVATE, "12", "30 lunch?");
    parse_is(" 12:30 lunch?", CHAT_OP_ROOM, NULL, "12:30 lunch?");
    parse_is("note this: a b", CHAT_OP_ROOM, NULL, "note this: a b");
    parse_is(":-)", CHAT_OP_ROOM, NULL, ":-)");
    parse_is("bob:", CHAT_OP_ERROR, NULL, NULL);
    parse_is("/msg bob hi there", CHAT_OP_PRIVATE, "bob", "hi there");
    parse_is("/MSG bob  hi", CHAT_OP_PRIVATE, "bob", "hi");
    parse_is("/msg bob", CHAT_OP_ERROR, NULL, NULL);
    parse_is("/msg", CHAT_OP_ERROR, NULL, NULL);
    parse_is("/list", CHAT_OP_LIST, NULL, NULL);
    parse_is("/list  ", CHAT_OP_LIST, NULL, NULL);
    parse_is("/help", CHAT_OP_HELP, NULL, NULL);
    parse_is("/quit", CHAT_OP_QUIT, NULL, NULL);
    parse_is("/quit see you", CHAT_OP_QUIT, NULL, NULL);
    parse_is("bye", CHAT_OP_QUIT, NULL, NULL);
    parse_is("BYE", CHAT_OP_QUIT, NULL, NULL);
    parse_is("  Bye ", CHAT_OP_QUIT, NULL, NULL);
    parse_is("bye bye", CHAT_OP_ROOM, NULL, "bye bye");
    parse_is("/nick robert", CHAT_OP_NICK, "robert", NULL);
    parse_is("/nick", CHAT_OP_ERROR, NULL, NULL);
    parse_is("/nick a b", CHAT_OP_ERROR, NULL, NULL);
    parse_is("/listen", CHAT_OP_ERROR, NULL, NULL);
    parse_is("/", CHAT_OP_ERROR, NULL, NULL);
}

/* ---- the router (stream room) -------------------------------------------- */

static void
test_chat_join_and_notices(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a, *b;

    (void)state;
    a = member(r, "alice");
    assert_int_equal(got(a, "* welcome, alice! 1 online"), 1);
    b = member(r, "bob");
    assert_int_equal(got(b, "* welcome, bob! 2 online"), 1);
    assert_int_equal(got(a, "* bob joined\n"), 1);
    assert_int_equal(got(b, "joined"), 0);
    forget();
    leave(r, b, "quit");
    assert_int_equal(got(a, "* bob left (quit)\n"), 1);
    assert_int_equal(r->n, 1);
    /* the nickname is free again */
    b = member(r, "bob");
    leave(r, b, "disconnected");
    assert_int_equal(got(a, "* bob left (disconnected)\n"), 1);
    leave(r, a, "quit");
    room_free(r);
}

static void
test_chat_join_refused(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), x = { .peer = "p" };
    static const struct { const char *line, *error; } bad[] = {
        { "ALICE", "error: the nickname \"ALICE\" is taken\n" },
        { "alice", "error: the nickname \"alice\" is taken\n" },
        { "a b", "error: a nickname cannot contain spaces\n" },
        { "a:b", "error: a nickname cannot contain ':'\n" },
        { "/list", "error: a nickname cannot start with '/'\n" },
        { "123456789012345678901234567890123",
          "error: a nickname has at most 32 bytes\n" },
        { "\xFF\xFE", "error: a nickname must be valid UTF-8\n" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        forget();
        assert_int_equal(say(r, &x, bad[i].line), CHAT_GO_ON);
        assert_false(x.joined);
        assert_int_equal(nrecs, 2);
        assert_ptr_equal(recs[0].to, &x);
        assert_string_equal(recs[0].text, bad[i].error);
        assert_string_equal(recs[1].text, "nick? ");   /* asked again */
    }
        assert_int_equal(got(a, ""), 0);    /* no one else hears of it */
    /* blank: asked again; /nick NAME and blanks around it are fine */
    forget();
    assert_int_equal(say(r, &x, "  "), CHAT_GO_ON);
    assert_string_equal(recs[0].text, "nick? ");
    assert_int_equal(say(r, &x, " /nick  carol "), CHAT_GO_ON);
    assert_true(x.joined);
    assert_string_equal(x.nick, "carol");
    chat_leave_locked(r, &x, "quit");
    leave(r, a, "quit");
    room_free(r);
}

static void
test_chat_quit_before_join(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member x = { .peer = "p" };

    (void)state;
    assert_int_equal(say(r, &x, "bye"), CHAT_QUIT);
    assert_int_equal(say(r, &x, "/quit"), CHAT_QUIT);
    assert_false(x.joined);
    room_free(r);
}

static void
test_chat_room_full(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a, *b, x = { .peer = "p" };

    (void)state;
    r->opt.max_members = 2;
    a = member(r, "alice");
    b = member(r, "bob");
    forget();
    assert_int_equal(say(r, &x, "carol"), CHAT_QUIT);
    assert_false(x.joined);
    assert_int_equal(got(&x, "error: the room is full (2 members)"), 1);
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

static void
test_chat_private_and_broadcast(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob"),
                       *c = member(r, "carol");

    (void)state;
    forget();
    say(r, a, "bob:psst");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, b);
    assert_string_equal(recs[0].text, "alice (private): psst\n");
    forget();
    say(r, a, "/msg carol hi carol");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, c);
    assert_string_equal(recs[0].text, "alice (private): hi carol\n");
    forget();
    say(r, c, "BOB: case does not matter");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, b);
    forget();
    say(r, a, "hello all");
    assert_int_equal(nrecs, 2);
    assert_int_equal(got(b, "alice: hello all\n"), 1);
    assert_int_equal(got(c, "alice: hello all\n"), 1);
    assert_int_equal(got(a, ""), 0);
    leave(r, a, "quit");
    leave(r, b, "quit");
    leave(r, c, "quit");
    room_free(r);
}

/* A private message to an unknown name errs to the sender, reaches no one. */
static void
test_chat_private_unknown(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob");

    (void)state;
    forget();
    say(r, a, "bobb:secret");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, a);
    assert_string_equal(recs[0].text,
                        "error: no user \"bobb\" online; message not sent\n");
    forget();
    say(r, a, "/msg dave secret");
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].text,
                        "error: no user \"dave\" online; message not sent\n");
    forget();
    say(r, a, "12:30 secret");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, a);
    /* a name too long to exist is still a private message gone wrong */
    forget();
    say(r, a, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:secret");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, a);
    assert_int_equal(got(b, "secret"), 0);
    /* bob left: private messages to him fail */
    leave(r, b, "quit");
    forget();
    say(r, a, "bob:still there?");
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].text,
                        "error: no user \"bob\" online; message not sent\n");
    leave(r, a, "quit");
    room_free(r);
}

static void
test_chat_commands(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob");

    (void)state;
    forget();
    say(r, a, "/list");
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].text, "* 2 online: alice bob\n");
    forget();
    say(r, a, "/help");
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].text, chat_help);
    forget();
    say(r, a, "/frobnicate");
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].text,
                        "error: unknown command; /help lists the commands\n");
    forget();
    say(r, a, "");
    assert_int_equal(nrecs, 0);
    forget();
    assert_int_equal(say(r, a, "/quit"), CHAT_QUIT);
    assert_string_equal(recs[0].text, "* bye, alice\n");
    assert_int_equal(say(r, b, "Bye"), CHAT_QUIT);
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

static void
test_chat_rename(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob");

    (void)state;
    forget();
    say(r, b, "/nick robert");
    assert_string_equal(b->nick, "robert");
    assert_int_equal(got(b, "* you are now robert\n"), 1);
    assert_int_equal(got(a, "* bob is now robert\n"), 1);
    forget();
    say(r, a, "bob:hi");
    assert_int_equal(got(a, "error: no user \"bob\" online"), 1);
    say(r, a, "robert:hi");
    assert_int_equal(got(b, "alice (private): hi\n"), 1);
    forget();
    say(r, b, "/nick ALICE");
    assert_string_equal(b->nick, "robert");
    assert_string_equal(recs[0].text,
                        "error: the nickname \"ALICE\" is taken\n");
    assert_int_equal(got(a, ""), 0);
    forget();
    say(r, b, "/nick a:b");
    assert_string_equal(recs[0].text, "error: a nickname cannot contain ':'\n");
    say(r, b, "/nick Robert");      /* own name in another case */
    assert_string_equal(b->nick, "Robert");
    forget();
    say(r, b, "/nick Robert");
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].text, "* you are already Robert\n");
    /* the old name is free */
    leave(r, a, "quit");
    a = member(r, "bob");
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

/* True when s is valid UTF-8. */
static bool
valid_utf8(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t bad, k = chat_utf8_decode((const unsigned char *)s + i,
                                         len - i, &cp, &bad);

        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* A long line reaches others as messages under 1024 bytes each, each with
 * the sender's name, never cutting a character, together the whole text. */
static void
test_chat_long_message_pieces(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob");
    static char line[4096], joined[8192];
    size_t jlen = 0;

    (void)state;
    for (size_t i = 0; i + 3 <= 4095; i += 3)
        memcpy(line + i, "\xE4\xB8\xAD", 3);
    line[4095] = '\0';
    forget();
    say(r, a, line);
    assert_true(nrecs >= 4);
    for (size_t i = 0; i < nrecs; i++) {
        assert_ptr_equal(recs[i].to, b);
        assert_true(recs[i].len < 1024);
        assert_true(valid_utf8(recs[i].text, recs[i].len));
        assert_memory_equal(recs[i].text, "alice: ", 7);
        assert_int_equal(recs[i].text[recs[i].len - 1], '\n');
        memcpy(joined + jlen, recs[i].text + 7, recs[i].len - 8);
        jlen += recs[i].len - 8;
    }
    assert_int_equal(jlen, 4095);
    assert_memory_equal(joined, line, jlen);
    /* private pieces too */
    forget();
    say(r, a, "bob:\xE4\xB8\xAD");
    memcpy(line, "bob:", 4);
    say(r, a, line);
    for (size_t i = 0; i < nrecs; i++) {
        assert_true(recs[i].len < 1024);
        assert_true(valid_utf8(recs[i].text, recs[i].len));
        assert_memory_equal(recs[i].text, "alice (private): ", 17);
    }
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

/* Invalid bytes are replaced before anyone sees them. */
static void
test_chat_invalid_utf8_replaced(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob");

    (void)state;
    forget();
    say(r, a, "caf\xE9 \xFF\x1B[31m");
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, b);
    assert_string_equal(recs[0].text,
                        "alice: caf" FFFD " " FFFD FFFD "[31m\n");
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

static void
test_chat_too_long_line(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob"),
                       x = { .peer = "p" };

    (void)state;
    forget();
    chat_toolong(r, a, 1048576);
    assert_int_equal(nrecs, 1);
    assert_ptr_equal(recs[0].to, a);
    assert_string_equal(recs[0].text, "error: line too long (1048576 bytes, "
                        "max_line is 4096); discarded\n");
    /* before joining, the prompt comes again */
    forget();
    chat_toolong(r, &x, 5000);
    assert_int_equal(nrecs, 2);
    assert_string_equal(recs[1].text, "nick? ");
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

/* /list of many long names: every message under 1024 bytes, all named. */
static void
test_chat_list_long(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *m[100];
    char nick[40], all[8192] = "";

    (void)state;
    for (int i = 0; i < 100; i++) {
        snprintf(nick, sizeof nick, "member-%025d", i);
        m[i] = member(r, nick);
    }
    forget();
    say(r, m[0], "/list");
    assert_true(nrecs > 3);
    for (size_t i = 0; i < nrecs; i++) {
        assert_true(recs[i].len < 1024);
        assert_int_equal(recs[i].text[recs[i].len - 1], '\n');
        strncat(all, recs[i].text, sizeof all - strlen(all) - 1);
    }
    assert_non_null(strstr(all, "* 100 online: member-"));
    for (int i = 0; i < 100; i++) {
        snprintf(nick, sizeof nick, " member-%025d", i);
        assert_non_null(strstr(all, nick));
    }
    for (int i = 0; i < 100; i++)
        leave(r, m[i], "quit");
    room_free(r);
}

/* A member that cannot take more is dropped once; the others go on. */
static void
test_chat_failed_delivery(void **state)
{
    struct chat_room *r = room_new(false);
    struct chat_member *a = member(r, "alice"), *b = member(r, "bob"),
                       *c = member(r, "carol");

    (void)state;
    failing = c;
    forget();
    say(r, a, "one");
    assert_true(c->dropped);
    failing = NULL;
    say(r, a, "two");
    assert_int_equal(got(b, "alice: one"), 1);
    assert_int_equal(got(b, "alice: two"), 1);
    assert_int_equal(got(c, ""), 0);    /* no more tries */
    leave(r, c, "disconnected");
    assert_int_equal(got(b, "* carol left (disconnected)"), 1);
    leave(r, a, "quit");
    leave(r, b, "quit");
    room_free(r);
}

/* ---- the datagram room --------------------------------------------------- */

static struct sockaddr_in
addr_of(unsigned port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port) };

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void
packet(struct chat_room *r, unsigned port, const char *data, double now)
{
    struct sockaddr_in a = addr_of(port);

    chat_dgram_packet(r, (struct sockaddr *)&a, sizeof a, "peer", data,
                      strlen(data), now);
}

static void
test_chat_dgram_room(void **state)
{
    struct chat_room *r = room_new(true);

    (void)state;
    packet(r, 1001, "a b", 1);
    assert_int_equal(got_port(1001, "error: a nickname cannot contain"), 1);
    assert_int_equal(got_port(1001, "nick? "), 1);
    assert_int_equal(r->n, 0);
    packet(r, 1001, "alice\n", 1);
    assert_int_equal(got_port(1001, "* welcome, alice!"), 1);
    packet(r, 1002, "/nick bob", 2);
    assert_int_equal(got_port(1002, "* welcome, bob!"), 1);
    assert_int_equal(got_port(1001, "* bob joined"), 1);
    packet(r, 1003, "alice", 2);
    assert_int_equal(got_port(1003, "error: the nickname \"alice\" is taken"),
                     1);
    forget();
    packet(r, 1001, "bob:psst", 3);
    assert_int_equal(nrecs, 1);
    assert_int_equal(got_port(1002, "alice (private): psst\n"), 1);
    forget();
    packet(r, 1001, "bobby:psst", 3);
    assert_int_equal(nrecs, 1);
    assert_int_equal(got_port(1001, "error: no user \"bobby\" online"), 1);
    forget();
    packet(r, 1002, "hi all\r\n", 4);
    assert_int_equal(nrecs, 1);
    assert_int_equal(got_port(1001, "bob: hi all\n"), 1);
    forget();
    packet(r, 1001, "/list", 4);
    assert_int_equal(got_port(1001, "* 2 online: alice bob\n"), 1);
    forget();
    packet(r, 1001, "/quit", 5);
    assert_int_equal(got_port(1001, "* bye, alice"), 1);
    assert_int_equal(got_port(1002, "* alice left (quit)"), 1);
    assert_int_equal(r->n, 1);
    /* a datagram of several lines: nickname, then messages */
    forget();
    packet(r, 1001, "carol\nhello\nbye\n", 6);
    assert_int_equal(got_port(1002, "* carol joined"), 1);
    assert_int_equal(got_port(1002, "carol: hello"), 1);
    assert_int_equal(got_port(1002, "* carol left (quit)"), 1);
    room_free(r);
}

static void
test_chat_dgram_idle(void **state)
{
    struct chat_room *r = room_new(true);

    (void)state;
    r->opt.idle_timeout = 10;
    packet(r, 1001, "alice", 100);
    packet(r, 1002, "bob", 105);
    forget();
    packet(r, 1002, "still here", 109);     /* alice: 9 s */
    assert_int_equal(r->n, 2);
    forget();
    packet(r, 1002, "still here", 111);     /* alice: 11 s, dropped */
    assert_int_equal(r->n, 1);
    assert_int_equal(got_port(1001, "* alice, you were dropped after 10s"),
                     1);
    assert_int_equal(got_port(1002, "* alice left (idle)"), 1);
    assert_int_equal(got_port(1001, "bob: still here"), 0);
    /* the sweep also runs on its own (service_actions) */
    forget();
    pthread_mutex_lock(&r->lock);
    chat_sweep(r, 200);
    pthread_mutex_unlock(&r->lock);
    assert_int_equal(r->n, 0);
    assert_int_equal(got_port(1002, "you were dropped"), 1);
    /* and alice may come back */
    packet(r, 1001, "alice", 300);
    assert_int_equal(r->n, 1);
    room_free(r);
}

static void
test_chat_dgram_long(void **state)
{
    struct chat_room *r = room_new(true);
    static char big[6000];

    (void)state;
    packet(r, 1001, "alice", 1);
    packet(r, 1002, "bob", 1);
    memset(big, 'x', sizeof big - 1);
    forget();
    packet(r, 1001, big, 2);
    assert_int_equal(nrecs, 1);
    assert_int_equal(got_port(1001, "error: line too long (5999 bytes"), 1);
    room_free(r);
}

/* Datagrams made under the room lock wait in the thread's outbox. */
static void
test_chat_outbox_queues_datagrams(void **state)
{
    struct chat_room *r = room_new(true);
    struct chat_member m = { .nick = "alice" };
    struct sockaddr_in a = addr_of(1001);
    struct chat_outbox box;
    struct chat_outmsg *o;

    (void)state;
    memcpy(&m.addr, &a, sizeof a);
    m.addrlen = sizeof a;
    chat_outbox_open(&box);
    assert_int_equal(chat_deliver_net(r, &m, "one\n", 4), 0);
    assert_int_equal(chat_deliver_net(r, &m, "two\n", 4), 0);
    chat_outbox = NULL;
    o = box.head;
    assert_non_null(o);
    assert_int_equal(o->len, 4);
    assert_memory_equal(o->data, "one\n", 4);
    assert_int_equal(o->addrlen, sizeof a);
    assert_memory_equal(&o->addr, &a, sizeof a);
    assert_non_null(o->next);
    assert_memory_equal(o->next->data, "two\n", 4);
    assert_null(o->next->next);
    free(o->next);
    free(o);
    room_free(r);
}

/* ---- options ------------------------------------------------------------- */

static void
test_chat_unescape(void **state)
{
    char out[CHAT_PROMPT_MAX + 1];
    const char *why = NULL;

    (void)state;
    assert_int_equal(chat_unescape("\"nick: \"", out, sizeof out, &why), 6);
    assert_string_equal(out, "nick: ");
    assert_int_equal(chat_unescape("a\\n\\tb\\s\\\\", out, sizeof out, &why),
                     6);
    assert_string_equal(out, "a\n\tb \\");
    assert_int_equal(chat_unescape("bad\\q", out, sizeof out, &why), -1);
    assert_string_equal(why,
                        "has an unknown escape (\\n \\r \\t \\s \\\\ \\\")");
    assert_int_equal(chat_unescape("bad\\", out, sizeof out, &why), -1);
    assert_string_equal(why, "ends with a lone '\\'");
}

/* Parses s (a C string) as one message from the Redis channel. */
static int
wire(const char *s, struct chat_wire *w)
{
    return chat_wire_parse(s, strlen(s), w);
}

/* The Redis wire format: every field checked, text last and free. */
static void
test_chat_wire_parse(void **state)
{
    struct chat_wire w;
    char buf[256];
    ssize_t n;

    (void)state;
    assert_int_equal(wire("1:0123456789abcdef:M:alice::a: b:c", &w), 0);
    assert_int_equal(w.type, 'M');
    assert_int_equal(w.nicklen, 5);
    assert_memory_equal(w.nick, "alice", 5);
    assert_int_equal(w.textlen, 6);
    assert_memory_equal(w.text, "a: b:c", 6);
    assert_int_equal(wire("1:0123456789abcdef:P:bob:alice:psst", &w), 0);
    assert_memory_equal(w.arg, "alice", 5);
    assert_int_equal(wire("1:0123456789abcdef:J:bob::", &w), 0);
    assert_int_equal(wire("1:0123456789abcdef:L:bob::quit", &w), 0);
    assert_int_equal(wire("1:0123456789abcdef:N:bob:bobby:", &w), 0);
    /* refused: version, id, type, nicknames, fields the type forbids */
    assert_int_equal(wire("2:0123456789abcdef:M:alice::x", &w), -1);
    assert_int_equal(wire("1:0123456789ABCDEF:M:alice::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcde:M:alice::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:X:alice::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:MM:alice::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:M:/alice::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:M:a b::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:M:::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:M:alice::", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:M:alice:bob:x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:P:bob::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:J:bob::x", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:N:bob:b c:", &w), -1);
    assert_int_equal(wire("1:0123456789abcdef:M:alice", &w), -1);
    assert_int_equal(wire("", &w), -1);
    memset(buf, 'x', sizeof buf);
    memcpy(buf, "1:0123456789abcdef:L:bob::", 26);
    assert_int_equal(chat_wire_parse(buf, 26 + CHAT_WHY_MAX, &w), 0);
    assert_int_equal(chat_wire_parse(buf, 26 + CHAT_WHY_MAX + 1, &w), -1);
    /* and back */
    n = chat_wire_format(buf, sizeof buf, "0123456789abcdef", 'P', "bob", 3,
                         "alice", 5, "hi: there", 9);
    assert_int_equal(n, 40);
    assert_memory_equal(buf, "1:0123456789abcdef:P:bob:alice:hi: there", 40);
    assert_int_equal(chat_wire_format(buf, 20, "0123456789abcdef", 'P',
                                      "bob", 3, "alice", 5, "hi", 2), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_framer_lines),
        cmocka_unit_test(test_chat_framer_flush_partial),
        cmocka_unit_test(test_chat_framer_max_line),
        cmocka_unit_test(test_chat_framer_long_line_newline),
        cmocka_unit_test(test_chat_framer_long_line_silence),
        cmocka_unit_test(test_chat_utf8_clean),
        cmocka_unit_test(test_chat_utf8_clean_random),
        cmocka_unit_test(test_chat_utf8_cut),
        cmocka_unit_test(test_chat_nick_check),
        cmocka_unit_test(test_chat_parse),
        cmocka_unit_test(test_chat_join_and_notices),
        cmocka_unit_test(test_chat_join_refused),
        cmocka_unit_test(test_chat_quit_before_join),
        cmocka_unit_test(test_chat_room_full),
        cmocka_unit_test(test_chat_private_and_broadcast),
        cmocka_unit_test(test_chat_private_unknown),
        cmocka_unit_test(test_chat_commands),
        cmocka_unit_test(test_chat_rename),
        cmocka_unit_test(test_chat_long_message_pieces),
        cmocka_unit_test(test_chat_invalid_utf8_replaced),
        cmocka_unit_test(test_chat_too_long_line),
        cmocka_unit_test(test_chat_list_long),
        cmocka_unit_test(test_chat_failed_delivery),
        cmocka_unit_test(test_chat_dgram_room),
        cmocka_unit_test(test_chat_dgram_idle),
        cmocka_unit_test(test_chat_dgram_long),
        cmocka_unit_test(test_chat_outbox_queues_datagrams),
        cmocka_unit_test(test_chat_unescape),
        cmocka_unit_test(test_chat_wire_parse),
    };

    ss_log_set_level(SS_LOG_WARNING);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
