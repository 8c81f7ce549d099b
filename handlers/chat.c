/* chat.c: a multi-user chat room, over streams (threading) or datagrams. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"

#define CHAT_SHOW_MAX    40     /* bytes of a user-typed name quoted back */
#define CHAT_RBUF        4096
#define CHAT_MAX_DGRAM   (32 << 20) /* > any max_packet_size (16 MiB) */

/* ---- options ------------------------------------------------------------- */

#define CHAT_DEF_PROMPT          "Please enter your nickname: "
#define CHAT_DEF_MAX_LINE        4096
#define CHAT_DEF_MAX_BACKLOG     (256 * 1024)
#define CHAT_DEF_MAX_MEMBERS     1000
#define CHAT_DEF_PARTIAL_TIMEOUT 0.05
#define CHAT_DEF_IDLE_TIMEOUT    300.0

/* ---- line framing -------------------------------------------------------- */

/*
 * Splits a byte stream into lines.  A line ends at "\n" or "\r\n", or, when
 * the caller sees a short silence, wherever the bytes stop (flush).  A line
 * over max bytes is not kept: its bytes are counted and dropped until its
 * end, then reported once as too long.
 */
enum chat_ev { CHAT_EV_NONE, CHAT_EV_LINE, CHAT_EV_TOOLONG };

struct chat_framer {
    char *buf;
    size_t len;
    size_t max;                 /* max_line */
    size_t cap;                 /* max + 1: room for the '\r' of "\r\n" */
    bool discarding;
    size_t discarded;           /* bytes of the line being dropped */
};

static int
chat_framer_init(struct chat_framer *f, size_t max)
{
    memset(f, 0, sizeof *f);
    f->max = max;
    f->cap = max + 1;
    f->buf = malloc(f->cap);
    return f->buf != NULL ? 0 : -1;
}

static void
chat_framer_free(struct chat_framer *f)
{
    free(f->buf);
    f->buf = NULL;
}

/* True when bytes wait for a newline or a silence to end their line. */
static bool
chat_framer_pending(const struct chat_framer *f)
{
    return f->len > 0 || f->discarding;
}

static size_t
chat_sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Ends the line held in the buffer: LINE, TOOLONG or NONE (empty). */
static enum chat_ev
chat_framer_end(struct chat_framer *f, const char **line, size_t *linelen)
{
    size_t n = f->len;

    f->len = 0;
    if (n > 0 && f->buf[n - 1] == '\r')
        n--;
    *line = f->buf;
    *linelen = n;
    if (n > f->max) {
        *line = NULL;
        return CHAT_EV_TOOLONG;
    }
    return CHAT_EV_LINE;
}

/*
 * Consumes input from *in (*inlen bytes) up to the end of the next line.
 * Returns CHAT_EV_LINE with the line (no newline) in *line (*linelen
 * bytes), valid until the next call; CHAT_EV_TOOLONG with the dropped
 * line's size in *linelen; or CHAT_EV_NONE when all input is consumed and
 * no line ended.
 */
static enum chat_ev
chat_framer_next(struct chat_framer *f, const char **in, size_t *inlen,
                 const char **line, size_t *linelen)
{
    const char *p = *in;
    size_t n = *inlen;
    enum chat_ev ev = CHAT_EV_NONE;

    while (n > 0 && ev == CHAT_EV_NONE) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl != NULL ? (size_t)(nl - p) : n;

        if (f->discarding) {
            f->discarded = chat_sat_add(f->discarded, k);
            if (nl != NULL) {
                f->discarding = false;
                *line = NULL;
                *linelen = f->discarded;
                f->discarded = 0;
                ev = CHAT_EV_TOOLONG;
            }
        } else if (f->len + k > f->cap) {
            f->discarding = true;
            f->discarded = f->len;
            f->len = 0;
            continue;           /* the same bytes, now dropped */
        } else {
            memcpy(f->buf + f->len, p, k);
            f->len += k;
            if (nl != NULL)
                ev = chat_framer_end(f, line, linelen);
        }
        p += k + (nl != NULL);
        n -= k + (nl != NULL);
    }
    *in = p;
    *inlen = n;
    return ev;
}

/*
 * Ends the line in progress after a silence (or at end of input): returns
 * it as CHAT_EV_LINE, or CHAT_EV_TOOLONG if it was being dropped, or
 * CHAT_EV_NONE when nothing was pending.
 */
static enum chat_ev
chat_framer_flush(struct chat_framer *f, const char **line, size_t *linelen)
{
    if (f->discarding) {
        f->discarding = false;
        *line = NULL;
        *linelen = f->discarded;
        f->discarded = 0;
        return CHAT_EV_TOOLONG;
    }
    if (f->len == 0)
        return CHAT_EV_NONE;
    return chat_framer_end(f, line, linelen);
}

/* ---- UTF-8 --------------------------------------------------------------- */

/*
 * Decodes the sequence at s.  Returns its length (1-4) with the code point
 * in *cp, or 0 when it is not valid UTF-8 (overlong, surrogate, above
 * U+10FFFF, truncated), with *bad set to the bytes to replace as one
 * character (the maximal invalid prefix, as Unicode recommends).
 */
static size_t
chat_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need, i;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0Fu;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07u;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    *cp = v;
    return need + 1;
}

/* True for control characters other than tab (C0, DEL, C1). */
static bool
chat_is_control(uint32_t cp)
{
    return (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F);
}

/*
 * Copies len bytes of in to out as valid UTF-8 text: each invalid sequence
 * and each control character but tab becomes U+FFFD, so nothing passed on
 * can break a client's decoder or terminal.  out must hold 3 * len bytes.
 * Returns the bytes written.
 */
size_t
chat_utf8_clean(const char *in, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;

    while (i < len) {
        uint32_t cp = 0;
        size_t bad = 1, k = chat_utf8_decode(s + i, len - i, &cp, &bad);

        if (k == 0 || chat_is_control(cp)) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += k == 0 ? bad : k;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

/*
 * Returns the longest prefix of the valid UTF-8 text s that has at most
 * max bytes and ends on a character boundary, preferring to end after a
 * space in its last quarter so words stay whole.
 */
static size_t
chat_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t cut, i;

    if (len <= max)
        return len;
    cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    for (i = cut; i > cut - cut / 4; i--) {
        if (s[i - 1] == ' ')
            return i;
    }
    return cut;
}

/* ---- nicknames ----------------------------------------------------------- */

/* True for Unicode white space and invisible separators (not ASCII). */
static bool
chat_is_space_cp(uint32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200D) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x2060 || cp == 0x3000 ||
           cp == 0xFEFF;
}

/*
 * Checks a nickname: 1-32 bytes of UTF-8, no white space, control
 * character or ':', not starting with '/'.  Returns NULL when valid, else
 * the reason, to show to the user.
 */
const char *
chat_nick_check(const char *nick, size_t len)
{
    const unsigned char *s = (const unsigned char *)nick;
    size_t i = 0;

    if (len == 0)
        return "a nickname needs at least one character";
    if (len > CHAT_NICK_MAX)
        return "a nickname has at most 32 bytes";
    if (nick[0] == '/')
        return "a nickname cannot start with '/'";
    while (i < len) {
        uint32_t cp = 0;
        size_t bad = 1, k = chat_utf8_decode(s + i, len - i, &cp, &bad);

        if (k == 0)
            return "a nickname must be valid UTF-8";
        if (cp == ' ' || cp == '\t' || chat_is_space_cp(cp))
            return "a nickname cannot contain spaces";
        if (chat_is_control(cp))
            return "a nickname cannot contain control characters";
        if (cp == ':')
            return "a nickname cannot contain ':'";
        i += k;
    }
    return NULL;
}

char
chat_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* True when a and b are the same nickname (ASCII letters ignore case). */
bool
chat_nick_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen)
        return false;
    for (i = 0; i < alen; i++) {
        if (chat_lower(a[i]) != chat_lower(b[i]))
            return false;
    }
    return true;
}

/* ---- parsing a member's line --------------------------------------------- */

enum chat_op {
    CHAT_OP_NONE,               /* blank line */
    CHAT_OP_ROOM,               /* text to everyone else */
    CHAT_OP_PRIVATE,            /* text to nick */
    CHAT_OP_LIST,
    CHAT_OP_NICK,               /* change to nick */
    CHAT_OP_HELP,
    CHAT_OP_QUIT,
    CHAT_OP_ERROR               /* error: usage or unknown command */
};

struct chat_cmd {
    enum chat_op op;
    const char *nick, *text;
    size_t nicklen, textlen;
    const char *error;
};

static bool
chat_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Skips blanks at the start of s[0..*len). */
static const char *
chat_ltrim(const char *s, size_t *len)
{
    while (*len > 0 && chat_is_blank(*s)) {
        s++;
        (*len)--;
    }
    return s;
}

static size_t
chat_rtrim(const char *s, size_t len)
{
    while (len > 0 && chat_is_blank(s[len - 1]))
        len--;
    return len;
}

/* Length of the word (no blanks) at the start of s. */
static size_t
chat_word(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && !chat_is_blank(s[i]))
        i++;
    return i;
}

static bool
chat_word_is(const char *w, size_t wlen, const char *name)
{
    return chat_nick_eq(w, wlen, name, strlen(name));
}

/*
 * Parses one line of a member who joined.  A line starting with '/' is a
 * command; "bye" alone quits; "NICK:text", where the part before the first
 * ':' has no blanks, is a private message (even if NICK is not a valid or
 * present name, so that a typo never reaches the room); anything else goes
 * to the room.  Results point into line.
 */
static void
chat_parse(const char *line, size_t len, struct chat_cmd *c)
{
    const char *t, *colon;
    size_t tlen;

    memset(c, 0, sizeof *c);
    len = chat_rtrim(line, len);
    tlen = len;
    t = chat_ltrim(line, &tlen);
    if (tlen == 0) {
        c->op = CHAT_OP_NONE;
    } else if (chat_word_is(t, tlen, "bye")) {
        c->op = CHAT_OP_QUIT;
    } else if (line[0] == '/') {
        size_t wlen = chat_word(line, len), alen = len - wlen;
        const char *arg = chat_ltrim(line + wlen, &alen);

        if (chat_word_is(line, wlen, "/list")) {
            c->op = CHAT_OP_LIST;
        } else if (chat_word_is(line, wlen, "/help")) {
            c->op = CHAT_OP_HELP;
        } else if (chat_word_is(line, wlen, "/quit")) {
            c->op = CHAT_OP_QUIT;
        } else if (chat_word_is(line, wlen, "/nick")) {
            c->op = CHAT_OP_NICK;
            c->nick = arg;
            c->nicklen = alen;
            if (alen == 0 || chat_word(arg, alen) != alen) {
                c->op = CHAT_OP_ERROR;
                c->error = "usage: /nick NEW (one word)";
            }
        } else if (chat_word_is(line, wlen, "/msg")) {
            c->op = CHAT_OP_PRIVATE;
            c->nick = arg;
            c->nicklen = chat_word(arg, alen);
            c->textlen = alen - c->nicklen;
            c->text = chat_ltrim(arg + c->nicklen, &c->textlen);
            if (c->nicklen == 0 || c->textlen == 0) {
                c->op = CHAT_OP_ERROR;
                c->error = "usage: /msg NICK text";
            }
        } else {
            c->op = CHAT_OP_ERROR;
            c->error = "unknown command; /help lists the commands";
        }
    } else if ((colon = memchr(line, ':', len)) != NULL && colon > line &&
               chat_word(line, (size_t)(colon - line)) ==
                   (size_t)(colon - line)) {
        c->op = CHAT_OP_PRIVATE;
        c->nick = line;
        c->nicklen = (size_t)(colon - line);
        c->textlen = len - c->nicklen - 1;
        c->text = chat_ltrim(colon + 1, &c->textlen);
        if (c->textlen == 0) {
            c->op = CHAT_OP_ERROR;
            c->error = "nothing to send after ':'";
        }
    } else {
        c->op = CHAT_OP_ROOM;
        c->text = t;
        c->textlen = tlen;
    }
}

/* ---- the room ------------------------------------------------------------ */

enum { CHAT_GO_ON, CHAT_QUIT };

static const char chat_help[] =
    "* commands:\n"
    "*   NICK:text or /msg NICK text   send text to NICK only\n"
    "*   /list                         who is online\n"
    "*   /nick NEW                     change your nickname\n"
    "*   /help                         this help\n"
    "*   /quit or bye                  leave the room\n"
    "*   any other line goes to everyone; start it with a space if its\n"
    "*   first word ends with ':'\n";

/*
 * Datagrams for members, collected while the room is locked and sent after
 * it is unlocked: sendto can block (a unix-dgram peer that does not read),
 * and no lock may be held across a write that can block.
 */
struct chat_outmsg {
    struct chat_outmsg *next;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    size_t len;
    char data[];
};

struct chat_outbox {
    struct chat_outmsg *head, **tail;
};

static _Thread_local struct chat_outbox *chat_outbox;

/* Starts collecting this thread's datagrams in box. */
static void
chat_outbox_open(struct chat_outbox *box)
{
    box->head = NULL;
    box->tail = &box->head;
    chat_outbox = box;
}

/* Sends and frees what box collected (room unlocked). */
static void
chat_outbox_send(struct chat_room *r, struct chat_outbox *box)
{
    struct chat_outmsg *m, *next;

    chat_outbox = NULL;
    for (m = box->head; m != NULL; m = next) {
        next = m->next;
        if (ss_server_sendto(r->server, (const struct sockaddr *)&m->addr,
                             m->addrlen, m->data, m->len) < 0)
            ss_log(SS_LOG_DEBUG, "%s: sendto: %s", r->name, strerror(errno));
        free(m);
    }
    box->head = NULL;
    box->tail = &box->head;
}

/* Delivers to a stream member without blocking (ss_send), or queues one
 * datagram for a datagram member in this thread's outbox. */
static int
chat_deliver_net(struct chat_room *r, struct chat_member *m, const char *buf,
                 size_t len)
{
    struct chat_outmsg *o;

    if (m->req != NULL)
        return ss_send(m->req, buf, len);
    if (chat_outbox == NULL)    /* not under the lock */
        return ss_server_sendto(r->server, (const struct sockaddr *)&m->addr,
                                m->addrlen, buf, len);
    o = malloc(sizeof *o + len);
    if (o == NULL)
        return -1;
    o->next = NULL;
    memcpy(&o->addr, &m->addr, sizeof o->addr);
    o->addrlen = m->addrlen;
    o->len = len;
    memcpy(o->data, buf, len);
    *chat_outbox->tail = o;
    chat_outbox->tail = &o->next;
    return 0;
}

/*
 * Sends one message to m (room locked, or m not yet shared).  A stream
 * member whose delivery fails is over its backlog or gone: it is closed
 * once, logged, and its own thread then leaves the room.
 */
void
chat_send(struct chat_room *r, struct chat_member *m, const char *buf,
          size_t len)
{
    if (m->dropped || r->deliver(r, m, buf, len) == 0)
        return;
    if (r->dgram) {
        ss_log(SS_LOG_DEBUG, "%s: %s: send failed", r->name, m->peer);
        return;
    }
    m->dropped = true;
    ss_log(SS_LOG_INFO, "%s: %s (%s) disconnected: delivery failed "
           "(outgoing backlog over max_backlog, or connection gone)",
           r->name, m->joined ? m->nick : "-", m->peer);
    if (m->req != NULL)
        ss_request_close(m->req, false);
}

/* Sends a short formatted message (notices, errors) to m. */
void
chat_sendf(struct chat_room *r, struct chat_member *m, const char *fmt, ...)
{
    char buf[CHAT_MSG_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = (int)chat_utf8_cut(buf, sizeof buf - 1, sizeof buf - 2);
    chat_send(r, m, buf, (size_t)n);
}

/* Sends a notice to every member but except (room locked). */
void
chat_notice(struct chat_room *r, struct chat_member *except, const char *fmt,
            ...)
{
    char buf[CHAT_MSG_MAX + 1];
    va_list ap;
    size_t i;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    for (i = 0; i < r->n; i++) {
        if (r->members[i] != except)
            chat_send(r, r->members[i], buf, (size_t)n);
    }
}

/* A user-typed name, cut to a displayable length on a character boundary. */
static int
chat_show_len(const char *s, size_t len)
{
    return (int)chat_utf8_cut(s, len, CHAT_SHOW_MAX);
}

/*
 * Sends text from `from` to one member (to != NULL) or to every other
 * member, shown with the sender's nickname, as messages of at most
 * CHAT_MSG_MAX bytes each, cut on character boundaries (room locked).
 */
void
chat_say(struct chat_room *r, struct chat_member *from,
         struct chat_member *to, const char *text, size_t len)
{
    char buf[CHAT_MSG_MAX + 1];
    int plen = snprintf(buf, sizeof buf, to != NULL ? "%s (private): "
                                                   : "%s: ", from->nick);
    size_t i, room;

    if (plen < 0 || (size_t)plen >= CHAT_MSG_MAX / 2)
        return;
    room = CHAT_MSG_MAX - (size_t)plen - 1;
    while (len > 0) {
        size_t k = chat_utf8_cut(text, len, room);

        if (k == 0)
            break;              /* not valid UTF-8: cannot happen */
        memcpy(buf + plen, text, k);
        buf[(size_t)plen + k] = '\n';
        if (to != NULL) {
            chat_send(r, to, buf, (size_t)plen + k + 1);
        } else {
            for (i = 0; i < r->n; i++) {
                if (r->members[i] != from)
                    chat_send(r, r->members[i], buf, (size_t)plen + k + 1);
            }
        }
        text += k;
        len -= k;
        while (len > 0 && *text == ' ') {    /* no leading space per piece */
            text++;
            len--;
        }
    }
}

/* Finds a member by nickname (room locked). */
struct chat_member *
chat_find(struct chat_room *r, const char *nick, size_t len)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        struct chat_member *m = r->members[i];

        if (chat_nick_eq(m->nick, m->nicklen, nick, len))
            return m;
    }
    return NULL;
}

/* True when two socket addresses are the same client. */
static bool
chat_addr_eq(const struct sockaddr_storage *a, socklen_t alen,
             const struct sockaddr *b, socklen_t blen)
{
    if (a->ss_family != b->sa_family)
        return false;
    switch (b->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port &&
               x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    default:
        return alen == blen && memcmp(a, b, (size_t)blen) == 0;
    }
}

/* Finds a datagram member by address (room locked). */
static struct chat_member *
chat_find_addr(struct chat_room *r, const struct sockaddr *addr,
               socklen_t len)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        struct chat_member *m = r->members[i];

        if (chat_addr_eq(&m->addr, m->addrlen, addr, len))
            return m;
    }
    return NULL;
}

/* Adds m to the member array (room locked).  0, or -1 without memory. */
static int
chat_add(struct chat_room *r, struct chat_member *m)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct chat_member **p = realloc(r->members, cap * sizeof *p);

        if (p == NULL)
            return -1;
        r->members = p;
        r->cap = cap;
    }
    r->members[r->n++] = m;
    return 0;
}

static void
chat_remove(struct chat_room *r, struct chat_member *m)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        if (r->members[i] == m) {
            r->members[i] = r->members[--r->n];
            return;
        }
    }
}

/* Tells m why its nickname was refused, and asks again (room locked). */
static void
chat_refuse(struct chat_room *r, struct chat_member *m, const char *why)
{
    chat_sendf(r, m, "error: %s\n", why);
    chat_send(r, m, r->opt.prompt, r->opt.promptlen);
}

/*
 * Joins m to the room as nick (valid), welcomes it and tells the others
 * (room locked).  A datagram member is copied to a new object owned by the
 * room.  Returns CHAT_GO_ON, or CHAT_QUIT when the room is full.
 */
static int
chat_join(struct chat_room *r, struct chat_member *m, const char *nick,
          size_t len)
{
    struct chat_member *other = chat_find(r, nick, len);

    if (other != NULL || chat_remote_find(r, nick, len) != NULL) {
        ss_log(SS_LOG_INFO, "%s: %s: refused nickname \"%.*s\": taken",
               r->name, m->peer, (int)len, nick);
        chat_sendf(r, m, "error: the nickname \"%.*s\" is taken\n", (int)len,
                   nick);
        chat_send(r, m, r->opt.prompt, r->opt.promptlen);
        return CHAT_GO_ON;
    }
    if (r->n >= r->opt.max_members) {
        ss_log(SS_LOG_INFO, "%s: %s: refused: the room is full (%zu)",
               r->name, m->peer, r->n);
        chat_sendf(r, m, "error: the room is full (%zu members)\n", r->n);
        return CHAT_QUIT;
    }
    if (r->dgram) {
        struct chat_member *copy = malloc(sizeof *copy);

        if (copy == NULL)
            return CHAT_QUIT;
        *copy = *m;
        m = copy;
    }
    memcpy(m->nick, nick, len);
    m->nick[len] = '\0';
    m->nicklen = len;
    m->mid = ++r->next_mid;
    if (chat_add(r, m) < 0) {
        if (r->dgram)
            free(m);
        return CHAT_QUIT;
    }
    m->joined = true;
    if (m->req != NULL) {
        ss_request_hold(m->req);
        m->held = true;
    }
    ss_log(SS_LOG_INFO, "%s: %s joined from %s (%zu online)", r->name,
           m->nick, m->peer, r->n);
    chat_sendf(r, m, "* welcome, %s! %zu online; /list shows who, "
               "/help the commands\n", m->nick,
               r->n + chat_bridge_nremote(r));
    chat_notice(r, m, "* %s joined\n", m->nick);
    if (r->bridge != NULL) {
        chat_bridge_welcome(r, m);
        chat_bridge_push(r, CHAT_W_JOIN, m, "", 0, "", 0);
    }
    return CHAT_GO_ON;
}

/*
 * Takes m out of the room and tells the others why (room locked).  The
 * caller releases m->req after unlocking, and frees a datagram member.
 */
static void
chat_leave_locked(struct chat_room *r, struct chat_member *m,
                  const char *why)
{
    if (!m->joined)
        return;
    chat_remove(r, m);
    m->joined = false;
    ss_log(SS_LOG_INFO, "%s: %s left (%s, %zu online)", r->name, m->nick, why,
           r->n);
    chat_notice(r, m, "* %s left (%s)\n", m->nick, why);
    chat_bridge_push(r, CHAT_W_LEAVE, m, "", 0, why, strlen(why));
}

/* A line from a client that has no nickname yet (room locked). */
static int
chat_input_nick(struct chat_room *r, struct chat_member *m, const char *line,
                size_t len)
{
    const char *t = chat_ltrim(line, &len), *why;
    size_t wlen;

    len = chat_rtrim(t, len);
    if (len == 0) {
        chat_send(r, m, r->opt.prompt, r->opt.promptlen);
        return CHAT_GO_ON;
    }
    wlen = chat_word(t, len);
    if (chat_word_is(t, len, "bye") || chat_word_is(t, wlen, "/quit"))
        return CHAT_QUIT;
    if (chat_word_is(t, wlen, "/nick")) {
        len -= wlen;
        t = chat_ltrim(t + wlen, &len);
    }
    why = chat_nick_check(t, len);
    if (why != NULL) {
        ss_log(SS_LOG_INFO, "%s: %s: refused nickname: %s", r->name, m->peer,
               why);
        chat_refuse(r, m, why);
        return CHAT_GO_ON;
    }
    return chat_join(r, m, t, len);
}

/* Sends the member list to m, in messages under CHAT_MSG_MAX bytes. */
static void
chat_list(struct chat_room *r, struct chat_member *m)
{
    char buf[CHAT_MSG_MAX + 1];
    size_t nremote = chat_bridge_nremote(r);
    int n = snprintf(buf, sizeof buf, "* %zu online:", r->n + nremote);
    size_t len = n > 0 ? (size_t)n : 0, i;

    for (i = 0; i < r->n + nremote; i++) {
        const char *nick = i < r->n ? r->members[i]->nick
                                    : chat_bridge_remote(r, i - r->n)->nick;
        size_t nicklen = i < r->n ? r->members[i]->nicklen
                                  : chat_bridge_remote(r, i - r->n)->nicklen;

        if (len + 1 + nicklen + 1 > CHAT_MSG_MAX) {
            buf[len++] = '\n';
            chat_send(r, m, buf, len);
            memcpy(buf, "*", 1);
            len = 1;
        }
        buf[len++] = ' ';
        memcpy(buf + len, nick, nicklen);
        len += nicklen;
    }
    buf[len++] = '\n';
    chat_send(r, m, buf, len);
}

/* /nick NEW for a member (room locked). */
static void
chat_rename(struct chat_room *r, struct chat_member *m, const char *nick,
            size_t len)
{
    const char *why = chat_nick_check(nick, len);
    struct chat_member *other;
    char old[CHAT_NICK_MAX + 1];

    if (why != NULL) {
        chat_sendf(r, m, "error: %s\n", why);
        return;
    }
    if (len == m->nicklen && memcmp(nick, m->nick, len) == 0) {
        chat_sendf(r, m, "* you are already %s\n", m->nick);
        return;
    }
    other = chat_find(r, nick, len);
    if ((other != NULL && other != m) ||
        (other == NULL && chat_remote_find(r, nick, len) != NULL)) {
        ss_log(SS_LOG_INFO, "%s: %s: refused nickname \"%.*s\": taken",
               r->name, m->nick, (int)len, nick);
        chat_sendf(r, m, "error: the nickname \"%.*s\" is taken\n", (int)len,
                   nick);
        return;
    }
    chat_bridge_push(r, CHAT_W_NICK, m, nick, len, "", 0);
    memcpy(old, m->nick, m->nicklen + 1);
    memcpy(m->nick, nick, len);
    m->nick[len] = '\0';
    m->nicklen = len;
    ss_log(SS_LOG_INFO, "%s: %s is now %s", r->name, old, m->nick);
    chat_sendf(r, m, "* you are now %s\n", m->nick);
    chat_notice(r, m, "* %s is now %s\n", old, m->nick);
}

/*
 * Handles one line from m (room locked): before it joined, the line is its
 * nickname; after, a message or command.  scratch holds 3 * len bytes.
 * Returns CHAT_GO_ON or CHAT_QUIT.
 */
static int
chat_input(struct chat_room *r, struct chat_member *m, const char *line,
           size_t len, char *scratch)
{
    struct chat_member *to;
    struct chat_cmd c;

    if (!m->joined)
        return chat_input_nick(r, m, line, len);
    len = chat_utf8_clean(line, len, scratch);
    chat_parse(scratch, len, &c);
    switch (c.op) {
    case CHAT_OP_NONE:
        break;
    case CHAT_OP_ROOM:
        chat_say(r, m, NULL, c.text, c.textlen);
        chat_bridge_push(r, CHAT_W_MSG, m, "", 0, c.text, c.textlen);
        break;
    case CHAT_OP_PRIVATE:
        to = chat_find(r, c.nick, c.nicklen);
        if (to == NULL && chat_remote_find(r, c.nick, c.nicklen) != NULL)
            chat_bridge_push(r, CHAT_W_PRIV, m, c.nick, c.nicklen, c.text,
                             c.textlen);
        else if (to == NULL)
            chat_sendf(r, m, "error: no user \"%.*s\" online; message not "
                       "sent\n", chat_show_len(c.nick, c.nicklen), c.nick);
        else
            chat_say(r, m, to, c.text, c.textlen);
        break;
    case CHAT_OP_LIST:
        chat_list(r, m);
        break;
    case CHAT_OP_NICK:
        chat_rename(r, m, c.nick, c.nicklen);
        break;
    case CHAT_OP_HELP:
        chat_send(r, m, chat_help, sizeof chat_help - 1);
        break;
    case CHAT_OP_QUIT:
        chat_sendf(r, m, "* bye, %s\n", m->nick);
        return CHAT_QUIT;
    case CHAT_OP_ERROR:
        chat_sendf(r, m, "error: %s\n", c.error);
        break;
    }
    return CHAT_GO_ON;
}

/* A line over max_line was dropped (room locked). */
static void
chat_toolong(struct chat_room *r, struct chat_member *m, size_t len)
{
    ss_log(SS_LOG_INFO, "%s: %s: line of %zu bytes over max_line, discarded",
           r->name, m->joined ? m->nick : m->peer, len);
    chat_sendf(r, m, "error: line too long (%zu bytes, max_line is %zu); "
               "discarded\n", len, r->opt.max_line);
    if (!m->joined)
        chat_send(r, m, r->opt.prompt, r->opt.promptlen);
}

/* Handles one framer event from m under the room lock. */
static int
chat_event(struct chat_room *r, struct chat_member *m, enum chat_ev ev,
           const char *line, size_t len, char *scratch)
{
    int rc = CHAT_GO_ON;

    if (ev == CHAT_EV_NONE)
        return rc;
    pthread_mutex_lock(&r->lock);
    if (ev == CHAT_EV_LINE)
        rc = chat_input(r, m, line, len, scratch);
    else
        chat_toolong(r, m, len);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

double
chat_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- datagram room ------------------------------------------------------- */

/* Drops datagram members silent for idle_timeout (room locked). */
static void
chat_sweep(struct chat_room *r, double now)
{
    size_t i = 0;

    while (i < r->n) {
        struct chat_member *m = r->members[i];

        if (now - m->last_seen < r->opt.idle_timeout) {
            i++;
            continue;
        }
        chat_sendf(r, m, "* %s, you were dropped after %gs of silence; "
                   "send your nickname to join again\n", m->nick,
                   r->opt.idle_timeout);
        chat_leave_locked(r, m, "idle");   /* moves another into slot i */
        free(m);
    }
}

/*
 * Handles one datagram of len bytes from addr, received at now: from an
 * unknown address it is a nickname, from a member a message (each of its
 * lines).  Replies go to the members' addresses.
 */
static void
chat_dgram_packet(struct chat_room *r, const struct sockaddr *addr,
                  socklen_t alen, const char *peer, const char *data,
                  size_t len, double now)
{
    struct chat_member tmp, *m;
    struct chat_outbox box;
    struct chat_framer f;
    const char *line;
    size_t linelen;
    enum chat_ev ev;
    char *scratch;
    bool done = false;

    if (alen > sizeof tmp.addr)
        return;
    if (chat_framer_init(&f, r->opt.max_line) < 0)
        return;
    scratch = malloc(3 * r->opt.max_line + 3);
    if (scratch == NULL)
        goto out_framer;
    chat_outbox_open(&box);
    pthread_mutex_lock(&r->lock);
    chat_sweep(r, now);
    while (!done) {
        ev = chat_framer_next(&f, &data, &len, &line, &linelen);
        if (ev == CHAT_EV_NONE) {
            ev = chat_framer_flush(&f, &line, &linelen);
            done = true;
            if (ev == CHAT_EV_NONE)
                break;
        }
        m = chat_find_addr(r, addr, alen);
        if (m == NULL) {
            memset(&tmp, 0, sizeof tmp);
            memcpy(&tmp.addr, addr, alen);
            tmp.addrlen = alen;
            snprintf(tmp.peer, sizeof tmp.peer, "%s", peer);
            m = &tmp;
        }
        m->last_seen = now;
        if (ev == CHAT_EV_TOOLONG) {
            chat_toolong(r, m, linelen);
        } else if (chat_input(r, m, line, linelen, scratch) == CHAT_QUIT) {
            if (m != &tmp) {
                chat_leave_locked(r, m, "quit");
                free(m);
            }
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    chat_outbox_send(r, &box);
    free(scratch);
out_framer:
    chat_framer_free(&f);
}

static void
chat_service(struct ss_server *s, void *arg)
{
    struct chat_room *r = arg;
    struct chat_outbox box;

    (void)s;
    chat_outbox_open(&box);
    pthread_mutex_lock(&r->lock);
    chat_sweep(r, chat_now());
    pthread_mutex_unlock(&r->lock);
    chat_outbox_send(r, &box);
}

/*
 * Serves one datagram, handled whole: the buffer grows to the datagram's
 * size, which the core has already bounded by max_packet_size (at most
 * CHAT_MAX_DGRAM).  One that cannot be held whole (no memory) is dropped
 * and logged, never cut short.
 */
static int
chat_handle_dgram(struct ss_request *req, struct chat_room *r)
{
    socklen_t alen = 0;
    const struct sockaddr *addr = ss_request_addr(req, &alen);
    size_t cap = CHAT_RBUF, len = 0;
    char *buf = malloc(cap), *more;
    ssize_t n;

    if (buf == NULL)
        goto out_drop;
    while ((n = ss_read(req, buf + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len < cap)
            continue;
        if (cap >= CHAT_MAX_DGRAM)
            goto out_drop;      /* past any max_packet_size: not whole */
        more = realloc(buf, cap * 2);
        if (more == NULL)
            goto out_drop;
        buf = more;
        cap *= 2;
    }
    chat_dgram_packet(r, addr, alen, ss_request_peer(req), buf, len,
                      chat_now());
    free(buf);
    return 0;
out_drop:
    ss_log(SS_LOG_WARNING, "%s: %s: datagram of %zu bytes or more cannot "
           "be held whole (%s), dropped", r->name, ss_request_peer(req),
           len, cap < CHAT_MAX_DGRAM ? strerror(ENOMEM) :
           "over the largest max_packet_size");
    free(buf);
    return 0;
}

/* ---- stream room --------------------------------------------------------- */

/*
 * Serves one stream member: the prompt, then its lines, each ended by a
 * newline or by partial_timeout of silence, until it quits or goes.
 */
static int
chat_handle_stream(struct ss_request *req, struct chat_room *r)
{
    struct chat_member *m = calloc(1, sizeof *m);
    char *scratch = malloc(3 * r->opt.max_line + 3);
    char buf[CHAT_RBUF];
    const char *why = "disconnected", *line;
    struct chat_framer f;
    size_t linelen;
    bool quit = false;
    int rc = -1;

    if (m == NULL || scratch == NULL ||
        chat_framer_init(&f, r->opt.max_line) < 0)
        goto out_free;
    m->req = req;
    chat_bridge_start(r);
    snprintf(m->peer, sizeof m->peer, "%s", ss_request_peer(req));
    chat_send(r, m, r->opt.prompt, r->opt.promptlen);
    while (!quit) {
        const char *in = buf;
        size_t inlen;
        ssize_t n;
        enum chat_ev ev;

        if (chat_framer_pending(&f)) {
            int p = ss_poll(req, r->opt.partial_ms);

            if (p < 0)
                break;
            if (p == 0) {
                ev = chat_framer_flush(&f, &line, &linelen);
                quit = chat_event(r, m, ev, line, linelen, scratch) ==
                       CHAT_QUIT;
                continue;
            }
        }
        n = ss_read(req, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == ETIMEDOUT)
                why = "timed out";
            ev = chat_framer_flush(&f, &line, &linelen);
            if (n == 0 && ev == CHAT_EV_LINE)       /* its last words */
                quit = chat_event(r, m, ev, line, linelen, scratch) ==
                       CHAT_QUIT;
            break;
        }
        inlen = (size_t)n;
        while (!quit && (ev = chat_framer_next(&f, &in, &inlen, &line,
                                               &linelen)) != CHAT_EV_NONE)
            quit = chat_event(r, m, ev, line, linelen, scratch) == CHAT_QUIT;
    }
    if (quit)
        why = "quit";
    pthread_mutex_lock(&r->lock);
    chat_leave_locked(r, m, why);
    pthread_mutex_unlock(&r->lock);
    if (quit)
        ss_request_close(req, true);
    if (m->held)
        ss_request_release(req);    /* the hold taken by chat_join */
    chat_framer_free(&f);
    rc = 0;
out_free:
    free(scratch);
    free(m);
    return rc;
}

static int
chat_handle(struct ss_request *req)
{
    struct chat_room *r = ss_request_state(req);

    if (r->dgram)
        return chat_handle_dgram(req, r);
    return chat_handle_stream(req, r);
}

/* ---- per server ---------------------------------------------------------- */

/*
 * Copies an option value to out, undoing \n \r \t \\ \s (space, since INI
 * values lose trailing blanks) and surrounding double quotes.  Returns the
 * length, or -1 with *why set.
 */
static ssize_t
chat_unescape(const char *v, char *out, size_t size, const char **why)
{
    size_t len = strlen(v), i, o = 0;

    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    for (i = 0; i < len; i++) {
        char c = v[i];

        if (c == '\\') {
            if (++i == len) {
                *why = "ends with a lone '\\'";
                return -1;
            }
            switch (v[i]) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 's': c = ' '; break;
            case '\\': c = '\\'; break;
            case '"': c = '"'; break;
            default:
                *why = "has an unknown escape (\\n \\r \\t \\s \\\\ \\\")";
                return -1;
            }
        }
        if (o + 1 >= size) {
            *why = "is longer than 512 bytes";
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* Reads the prompt option into o.  0, or -1 after a config error. */
static int
chat_prompt_option(struct ss_server *s, struct chat_opts *o)
{
    const char *v = ss_option(s, "prompt"), *why = NULL;
    ssize_t n;
    size_t i = 0;

    if (v == NULL) {
        o->promptlen = strlen(CHAT_DEF_PROMPT);
        memcpy(o->prompt, CHAT_DEF_PROMPT, o->promptlen + 1);
        return 0;
    }
    n = chat_unescape(v, o->prompt, sizeof o->prompt, &why);
    while (why == NULL && n > 0 && i < (size_t)n) {
        uint32_t cp;
        size_t bad, k = chat_utf8_decode((const unsigned char *)o->prompt + i,
                                         (size_t)n - i, &cp, &bad);

        if (k == 0)
            why = "is not valid UTF-8";
        i += k;
    }
    if (why != NULL)
        return ss_server_errorf(s, "prompt", "prompt \"%s\" %s", v, why);
    o->promptlen = (size_t)n;
    return 0;
}

static int
chat_init(struct ss_server *s, void **state)
{
    bool dgram = ss_server_kind(s) == SS_DGRAM;
    long max_line = 0, backlog = 0, members = 0;
    double partial = 0, idle = 0;
    struct chat_room *r;
    int bad = 0;

    /* read every option first, so each is claimed and each error shown */
    bad |= ss_option_long(s, "max_line", CHAT_DEF_MAX_LINE, 16, 65536,
                          &max_line);
    bad |= ss_option_long(s, "max_backlog", CHAT_DEF_MAX_BACKLOG, 4096,
                          1L << 30, &backlog);
    bad |= ss_option_long(s, "max_members", CHAT_DEF_MAX_MEMBERS, 2, 100000,
                          &members);
    if (!dgram && ss_option(s, "idle_timeout") != NULL)
        bad |= ss_server_errorf(s, "idle_timeout", "idle_timeout is for the "
                                "udp room; a stream room uses timeout");
    else
        bad |= ss_option_double(s, "idle_timeout", CHAT_DEF_IDLE_TIMEOUT,
                                0.1, 86400.0 * 365, &idle);
    if (dgram && ss_option(s, "partial_timeout") != NULL)
        bad |= ss_server_errorf(s, "partial_timeout", "partial_timeout is "
                                "for stream rooms; a datagram is a message");
    else
        bad |= ss_option_double(s, "partial_timeout",
                                CHAT_DEF_PARTIAL_TIMEOUT, 0.001, 10.0,
                                &partial);
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    bad |= chat_prompt_option(s, &r->opt);
    bad |= chat_redis_options(s, dgram, &r->bridge);
    /* workers = N puts members in N processes: only Redis joins them */
    if (ss_server_workers(s) > 1 && (dgram || ss_option(s, "redis") == NULL))
        bad |= ss_server_errorf(s, "workers", "workers = %ld would split the "
                                "room over %ld processes that do not see "
                                "each other's members: %s",
                                ss_server_workers(s), ss_server_workers(s),
                                dgram ? "a datagram room lives in one "
                                        "process (use workers = 1)"
                                      : "set \"redis\" to share the room, "
                                        "or use workers = 1");
    /* forking is not in .modes: the room is state all members share */
    if (!dgram && !ss_server_concurrent(s))
        bad |= ss_server_errorf(s, "mode", "chat cannot run with mode = "
                                "%s on a stream: it serves one member at a "
                                "time (use mode = threading or event)",
                                ss_server_mode(s));
    if (bad != 0) {
        chat_bridge_free(r->bridge);
        free(r);
        return -1;
    }
    r->opt.max_line = (size_t)max_line;
    r->opt.max_members = (size_t)members;
    r->opt.partial_ms = (int)(partial * 1000 + 0.5);
    if (r->opt.partial_ms < 1)
        r->opt.partial_ms = 1;
    r->opt.idle_timeout = idle;
    r->dgram = dgram;
    r->server = s;
    r->deliver = chat_deliver_net;
    snprintf(r->name, sizeof r->name, "%s", ss_server_name(s));
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        chat_bridge_free(r->bridge);
        free(r);
        return -1;
    }
    ss_server_set_max_backlog(s, (size_t)backlog);
    if (dgram)
        ss_server_set_service_actions(s, chat_service, r);
    else if (r->bridge != NULL)
        ss_server_set_service_actions(s, chat_bridge_service, r);
    *state = r;
    return 0;
}

static void
chat_fini(void *state)
{
    struct chat_room *r = state;
    size_t i;

    if (r == NULL)
        return;
    chat_bridge_free(r->bridge);    /* joins its thread: chat.so may go */
    /* stream members left before their handlers returned */
    for (i = 0; r->dgram && i < r->n; i++)
        free(r->members[i]);
    free(r->members);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "chat",
    .description = "a chat room: NICK:text to one member, lines to all, /help",
    .kinds = SS_STREAM | SS_DGRAM,
    .init = chat_init,
    .fini = chat_fini,
    .handle = chat_handle,
    .size = sizeof(struct ss_handler),
    /* not forking: the room is state shared by all its members */
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_EVENT,
};
