/* fuzz_chat.c: libFuzzer target: the chat handler's framing, UTF-8 cleaning,
 * command parser and room logic, without sockets.  The input is a
 * configuration byte, then packets of [sender][length][bytes]: a datagram
 * room gets each as a datagram (chat_dgram_packet), a stream room feeds it
 * to the sender's line framer as one read.  Every message the room sends
 * must be at most CHAT_MSG_MAX bytes of valid UTF-8 with no control
 * character but tab and newline (what chat.c promises clients). */
#include <stdint.h>

#include "../../handlers/chat.c"
#include "../../handlers/chat_redis.c"

#define FZ_MEMBERS 6

static struct chat_member stream_members[FZ_MEMBERS];
static struct chat_framer framers[FZ_MEMBERS];

static void
fz_fail(const char *what, const char *buf, size_t len)
{
    fprintf(stderr, "fuzz_chat: %s: \"%.*s\" (%zu bytes)\n", what,
            (int)(len > 200 ? 200 : len), buf, len);
    abort();
}

/* Checks a message as a client would receive it. */
static int
fz_deliver(struct chat_room *r, struct chat_member *m, const char *buf,
           size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;

    (void)r;
    (void)m;
    if (len > CHAT_MSG_MAX)
        fz_fail("message over CHAT_MSG_MAX", buf, len);
    while (i < len) {
        uint32_t cp = 0;
        size_t bad = 1, k = chat_utf8_decode(s + i, len - i, &cp, &bad);

        if (k == 0)
            fz_fail("message is not valid UTF-8", buf, len);
        if (cp != '\n' && chat_is_control(cp))
            fz_fail("message holds a control character", buf, len);
        i += k;
    }
    return 0;
}

/* chat_parse's results must lie inside the line. */
static void
fz_parse(const char *line, size_t len)
{
    struct chat_cmd c;

    chat_parse(line, len, &c);
    if (c.nick != NULL &&
        (c.nick < line || c.nick + c.nicklen > line + len))
        fz_fail("parsed nick outside the line", line, len);
    if (c.text != NULL &&
        (c.text < line || c.text + c.textlen > line + len))
        fz_fail("parsed text outside the line", line, len);
    if (c.op == CHAT_OP_ERROR && c.error == NULL)
        fz_fail("error without a reason", line, len);
}

static struct chat_room *
fz_room(uint8_t cfg)
{
    static const size_t max_line[] = { 8, 40, 1500, CHAT_DEF_MAX_LINE };
    struct chat_room *r = calloc(1, sizeof *r);

    if (r == NULL)
        abort();
    r->opt.max_line = max_line[cfg & 3];
    r->opt.max_members = 1 + ((cfg >> 2) & 3) * 2;
    r->opt.partial_ms = 50;
    r->opt.idle_timeout = 60;
    r->opt.promptlen = (size_t)snprintf(r->opt.prompt, sizeof r->opt.prompt,
                                        "nick? ");
    r->dgram = !(cfg & 0x10);
    r->deliver = fz_deliver;
    snprintf(r->name, sizeof r->name, "chat");
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

/* One read from stream member i, as chat_handle_stream frames it. */
static void
fz_stream_read(struct chat_room *r, int i, const char *in, size_t inlen,
               bool silence, char *scratch)
{
    struct chat_member *m = &stream_members[i];
    const char *line;
    size_t linelen;
    enum chat_ev ev;
    bool quit = false;

    while (!quit && (ev = chat_framer_next(&framers[i], &in, &inlen, &line,
                                           &linelen)) != CHAT_EV_NONE)
        quit = chat_event(r, m, ev, line, linelen, scratch) == CHAT_QUIT;
    if (!quit && silence && chat_framer_pending(&framers[i])) {
        ev = chat_framer_flush(&framers[i], &line, &linelen);
        quit = chat_event(r, m, ev, line, linelen, scratch) == CHAT_QUIT;
    }
    if (quit) {                 /* it leaves; a new client takes its place */
        pthread_mutex_lock(&r->lock);
        chat_leave_locked(r, m, "quit");
        pthread_mutex_unlock(&r->lock);
        memset(m, 0, sizeof *m);
        snprintf(m->peer, sizeof m->peer, "127.0.0.1:%d", 1000 + i);
        chat_framer_free(&framers[i]);
        if (chat_framer_init(&framers[i], r->opt.max_line) < 0)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_room *r;
    char *scratch;
    double now = 1000;
    size_t i = 1;

    if (size == 0 || size > 1 << 16)
        return -1;
    ss_log_set_level((enum ss_log_level)(SS_LOG_ERROR + 1));
    r = fz_room(data[0]);
    scratch = malloc(3 * (size > r->opt.max_line ? size : r->opt.max_line)
                     + 3);
    if (scratch == NULL)
        abort();
    for (int k = 0; k < FZ_MEMBERS; k++) {
        memset(&stream_members[k], 0, sizeof stream_members[k]);
        snprintf(stream_members[k].peer, sizeof stream_members[k].peer,
                 "127.0.0.1:%d", 1000 + k);
        if (chat_framer_init(&framers[k], r->opt.max_line) < 0)
            abort();
    }
    /* the parser alone, on the whole input, cleaned as chat_input does */
    fz_parse(scratch, chat_utf8_clean((const char *)data, size, scratch));
    while (i + 2 <= size) {
        uint8_t who = data[i];
        size_t len = data[i + 1];
        int k = (who & 7) % FZ_MEMBERS;

        i += 2;
        if (len > size - i)
            len = size - i;
        now += who & 0x40 ? 120 : 0.5;      /* past idle_timeout, or not */
        if (r->dgram) {
            struct sockaddr_in in = { .sin_family = AF_INET,
                                      .sin_port = htons(1000 + k) };

            in.sin_addr.s_addr = htonl(0x7f000001);
            chat_dgram_packet(r, (struct sockaddr *)&in, sizeof in,
                              "127.0.0.1", (const char *)data + i, len, now);
        } else {
            fz_stream_read(r, k, (const char *)data + i, len, who & 0x80,
                           scratch);
        }
        i += len;
    }
    for (int k = 0; k < FZ_MEMBERS; k++) {
        pthread_mutex_lock(&r->lock);
        chat_leave_locked(r, &stream_members[k], "disconnected");
        pthread_mutex_unlock(&r->lock);
        chat_framer_free(&framers[k]);
    }
    chat_fini(r);
    free(scratch);
    return 0;
}
