/* chat_redis.c: the chat room shared between daemons through Redis. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "chat.h"

/* ---- the wire format of a room shared through Redis ---------------------- */

/*
 * One pub/sub message per event, on the room's channel:
 *
 *     1:ID:T:NICK:ARG:TEXT
 *
 * 1 is the format's version; ID the publishing daemon (16 lowercase hex
 * digits); T one of J (NICK joined), L (NICK left, TEXT the reason), M
 * (NICK said TEXT to the room), P (NICK said TEXT to ARG alone), N (NICK
 * is now ARG).  Nicknames cannot contain ':', so only TEXT, last, may.
 * A message comes from another machine: chat_wire_parse bounds and checks
 * every field, and the text is cleaned again before any member sees it.
 */
#define CHAT_WHY_MAX       64           /* bytes of a leave reason */
#define CHAT_WIRE_TEXT_MAX (3 * 65536)  /* max_line's most, cleaned */
#define CHAT_WIRE_MAX      (CHAT_WIRE_TEXT_MAX + 2 * CHAT_NICK_MAX + 32)

struct chat_wire {
    char type;
    const char *id, *nick, *arg, *text;
    size_t nicklen, arglen, textlen;
};

/* True for a daemon id: CHAT_ID_LEN lowercase hex digits. */
static bool
chat_id_valid(const char *id, size_t len)
{
    size_t i;

    if (len != CHAT_ID_LEN)
        return false;
    for (i = 0; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return true;
}

/* Cuts the field that starts at *p (up to ':'); -1 when there is no ':'. */
static int
chat_wire_field(const char **p, size_t *left, const char **f, size_t *flen)
{
    const char *colon = memchr(*p, ':', *left);

    if (colon == NULL)
        return -1;
    *f = *p;
    *flen = (size_t)(colon - *p);
    *left -= *flen + 1;
    *p = colon + 1;
    return 0;
}

/*
 * Parses one message of len bytes (not NUL-terminated) into w, whose
 * fields point into buf.  Returns 0, or -1 when anything is out of the
 * format: a wrong version or id, an unknown type, an invalid nickname, a
 * field that the type does not allow, a text too long.
 */
static int
chat_wire_parse(const char *buf, size_t len, struct chat_wire *w)
{
    const char *p = buf, *v, *id, *t;
    size_t left = len, vlen, idlen, tlen;

    memset(w, 0, sizeof *w);
    if (len > CHAT_WIRE_MAX ||
        chat_wire_field(&p, &left, &v, &vlen) < 0 ||
        chat_wire_field(&p, &left, &id, &idlen) < 0 ||
        chat_wire_field(&p, &left, &t, &tlen) < 0 ||
        chat_wire_field(&p, &left, &w->nick, &w->nicklen) < 0 ||
        chat_wire_field(&p, &left, &w->arg, &w->arglen) < 0)
        return -1;
    w->text = p;
    w->textlen = left;
    w->id = id;
    if (vlen != 1 || v[0] != '1' || !chat_id_valid(id, idlen) || tlen != 1)
        return -1;
    w->type = t[0];
    if (chat_nick_check(w->nick, w->nicklen) != NULL)
        return -1;
    switch (w->type) {
    case CHAT_W_JOIN:
        return w->arglen == 0 && w->textlen == 0 ? 0 : -1;
    case CHAT_W_LEAVE:
        return w->arglen == 0 && w->textlen <= CHAT_WHY_MAX ? 0 : -1;
    case CHAT_W_MSG:
        return w->arglen == 0 && w->textlen > 0 &&
               w->textlen <= CHAT_WIRE_TEXT_MAX ? 0 : -1;
    case CHAT_W_PRIV:
        return chat_nick_check(w->arg, w->arglen) == NULL &&
               w->textlen > 0 && w->textlen <= CHAT_WIRE_TEXT_MAX ? 0 : -1;
    case CHAT_W_NICK:
        return chat_nick_check(w->arg, w->arglen) == NULL &&
               w->textlen == 0 ? 0 : -1;
    default:
        return -1;
    }
}

/*
 * Writes one message into buf (size bytes).  Returns its length, or -1
 * when it does not fit.
 */
static ssize_t
chat_wire_format(char *buf, size_t size, const char *id, char type,
                 const char *nick, size_t nicklen, const char *arg,
                 size_t arglen, const char *text, size_t textlen)
{
    size_t idlen = strlen(id), o = 0;

    if (nicklen > CHAT_NICK_MAX || arglen > CHAT_NICK_MAX ||
        textlen > CHAT_WIRE_TEXT_MAX ||
        idlen + nicklen + arglen + textlen + 7 > size)
        return -1;
    memcpy(buf, "1:", 2);
    o = 2;
    memcpy(buf + o, id, idlen);
    o += idlen;
    buf[o++] = ':';
    buf[o++] = type;
    buf[o++] = ':';
    memcpy(buf + o, nick, nicklen);
    o += nicklen;
    buf[o++] = ':';
    memcpy(buf + o, arg, arglen);
    o += arglen;
    buf[o++] = ':';
    memcpy(buf + o, text, textlen);
    return (ssize_t)(o + textlen);
}

/* ---- the room shared through Redis ---------------------------------------- */

/*
 * A bridge thread per room owns two Redis connections: one subscribed to
 * the room's channel, one for commands.  Members never touch Redis: their
 * threads (or coroutines) queue what the others must hear (a bounded FIFO,
 * and a byte on an eventfd), and the bridge publishes it in that order on
 * its one command connection, so one member's messages reach every daemon
 * in the order sent.  What comes in on the channel is delivered under the
 * room lock with chat_send, as local messages are.
 *
 * Keys, for room R and daemon D (each daemon a random id):
 *   sockserv:chat:R:nick:LOWER   D, with expiry redis_ttl: who owns a nick
 *   sockserv:chat:R:daemon:D     with expiry redis_ttl: D is alive
 *   sockserv:chat:R:members:D    hash of D's members' nicknames
 *   sockserv:chat:R:daemons      set of the daemons of the room
 * Every redis_ttl/3 the bridge refreshes its keys and re-reads who is on
 * the other daemons: a daemon whose key expired (killed with SIGKILL) is
 * dropped and its members are announced as leaving, within 4/3 redis_ttl
 * of its death.
 */
#define CHAT_Q_MAX_ITEMS   16384
#define CHAT_Q_MAX_BYTES   (16u << 20)
#define CHAT_REMOTE_MAX    100000        /* members on other daemons */
#define CHAT_DAEMONS_MAX   1024          /* daemons of a room looked at */
#define CHAT_REDIS_IO_MS   2000          /* bound on one command */
#define CHAT_BACKOFF_MIN   100
#define CHAT_BACKOFF_MAX   5000
#define CHAT_READER_MAX    (8u << 20)    /* a reply being read */
#define CHAT_DEF_REDIS_TTL 15
#define CHAT_PIPELINE      256           /* commands sent before replies */

static const char chat_split_msg[] =
    "* the room is split: the link to its other servers is down; until it "
    "is back you see this server's members only\n";
static const char chat_rejoined_msg[] =
    "* the room is joined again: members on every server see each other\n";

/* Owns the nickname, or takes it when free: 1 ours, 0 another's. */
static const char chat_lua_claim[] =
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] then redis.call('expire', KEYS[1], ARGV[2]) return 1 end "
    "if v then return 0 end "
    "redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1";
/* Frees the nickname if it is ours. */
static const char chat_lua_release[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) end return 0";

struct chat_item {              /* what a member hands to the bridge */
    struct chat_item *next;
    char type;                  /* CHAT_W_* */
    uint64_t mid;
    char nick[CHAT_NICK_MAX + 1], arg[CHAT_NICK_MAX + 1];
    size_t nicklen, arglen, textlen;
    char text[];
};

enum chat_link { CHAT_LINK_CONNECTING, CHAT_LINK_JOINED, CHAT_LINK_SPLIT };

struct chat_bridge {
    char addr[300];             /* as configured, for logs */
    char path[108];             /* unix:PATH */
    char host[256];
    int port;
    char room[65];
    long ttl;
    char id[CHAT_ID_LEN + 1];
    char prefix[100];           /* sockserv:chat:ROOM: */
    char channel[100];

    pthread_mutex_t start_lock;
    bool started;
    pthread_t thread;
    atomic_bool stop;
    int efd;

    pthread_mutex_t qlock;      /* guards the queue */
    struct chat_item *qhead, **qtail;
    size_t qitems, qbytes;
    bool qfull_logged;

    /* the bridge thread's alone */
    redisContext *cmd, *sub;
    unsigned long long malformed;   /* messages refused by the parser */
    int backoff_ms;

    /* under the room lock */
    enum chat_link link;
    struct chat_remote *remote;
    size_t nremote, capremote;
};

/* Finds a member of another daemon by nickname (room locked). */
const struct chat_remote *
chat_remote_find(struct chat_room *r, const char *nick, size_t len)
{
    struct chat_bridge *b = r->bridge;
    size_t i;

    for (i = 0; b != NULL && i < b->nremote; i++) {
        if (chat_nick_eq(b->remote[i].nick, b->remote[i].nicklen, nick, len))
            return &b->remote[i];
    }
    return NULL;
}

/* How many members other daemons have (room locked); 0 without a bridge. */
size_t
chat_bridge_nremote(const struct chat_room *r)
{
    return r->bridge != NULL ? r->bridge->nremote : 0;
}

/* The i-th member of another daemon (room locked), for /list. */
const struct chat_remote *
chat_bridge_remote(const struct chat_room *r, size_t i)
{
    return &r->bridge->remote[i];
}

/*
 * Hands one event of member m to the bridge (room locked, or not: the
 * queue has its own lock), never blocking.  While the room is split the
 * event is dropped: the others cannot hear it.  On overflow (Redis slower
 * than the members) it is dropped and logged once.
 */
void
chat_bridge_push(struct chat_room *r, char type, const struct chat_member *m,
                 const char *arg, size_t arglen, const char *text,
                 size_t textlen)
{
    struct chat_bridge *b = r->bridge;
    struct chat_item *it;
    uint64_t one = 1;
    bool full;

    if (b == NULL || arglen > CHAT_NICK_MAX || textlen > CHAT_WIRE_TEXT_MAX)
        return;
    pthread_mutex_lock(&b->qlock);
    full = b->qitems >= CHAT_Q_MAX_ITEMS ||
           b->qbytes + textlen > CHAT_Q_MAX_BYTES;
    if (full && !b->qfull_logged)
        ss_log(SS_LOG_WARNING, "%s: redis queue full (%zu messages): "
               "messages to the other servers dropped", r->name, b->qitems);
    b->qfull_logged = full;
    pthread_mutex_unlock(&b->qlock);
    if (full || (it = malloc(sizeof *it + textlen)) == NULL)
        return;
    it->next = NULL;
    it->type = type;
    it->mid = m->mid;
    memcpy(it->nick, m->nick, m->nicklen + 1);
    it->nicklen = m->nicklen;
    if (arglen > 0)
        memcpy(it->arg, arg, arglen);
    it->arg[arglen] = '\0';
    it->arglen = arglen;
    if (textlen > 0)
        memcpy(it->text, text, textlen);
    it->textlen = textlen;
    pthread_mutex_lock(&b->qlock);
    *b->qtail = it;
    b->qtail = &it->next;
    b->qitems++;
    b->qbytes += textlen;
    pthread_mutex_unlock(&b->qlock);
    if (write(b->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        ss_log(SS_LOG_DEBUG, "%s: eventfd: %s", r->name, strerror(errno));
}

/* Tells a member who joins a split room that it is split (room locked). */
void
chat_bridge_welcome(struct chat_room *r, struct chat_member *m)
{
    if (r->bridge != NULL && r->bridge->link == CHAT_LINK_SPLIT)
        chat_send(r, m, chat_split_msg, sizeof chat_split_msg - 1);
}

/* Sends a notice to every local member (room locked). */
static void
chat_notice_all(struct chat_room *r, const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        chat_send(r, r->members[i], buf, len);
}

/* Frees what the queue holds (bridge thread). */
static void
chat_queue_take(struct chat_bridge *b, struct chat_item **head)
{
    pthread_mutex_lock(&b->qlock);
    *head = b->qhead;
    b->qhead = NULL;
    b->qtail = &b->qhead;
    b->qitems = 0;
    b->qbytes = 0;
    pthread_mutex_unlock(&b->qlock);
}

static void
chat_items_free(struct chat_item *it)
{
    while (it != NULL) {
        struct chat_item *next = it->next;

        free(it);
        it = next;
    }
}

/* Lowercases the ASCII letters of a nickname into out (a key part). */
static void
chat_nick_key(char *out, size_t size, const char *prefix, const char *nick,
              size_t len)
{
    size_t plen = strlen(prefix), i;

    if (plen + 5 + len + 1 > size) {
        out[0] = '\0';
        return;
    }
    memcpy(out, prefix, plen);
    memcpy(out + plen, "nick:", 5);
    for (i = 0; i < len; i++)
        out[plen + 5 + i] = chat_lower(nick[i]);
    out[plen + 5 + len] = '\0';
}

/* Drops the Redis connections (bridge thread). */
static void
chat_redis_close(struct chat_bridge *b)
{
    if (b->cmd != NULL)
        redisFree(b->cmd);
    if (b->sub != NULL)
        redisFree(b->sub);
    b->cmd = b->sub = NULL;
}

/*
 * Runs one command on the command connection.  Returns the reply (to
 * freeReplyObject), or NULL when the connection failed (then closed) or
 * Redis answered an error (logged).
 */
static redisReply *
chat_redis(struct chat_room *r, const char *fmt, ...)
{
    struct chat_bridge *b = r->bridge;
    redisReply *rep;
    va_list ap;

    if (b->cmd == NULL)
        return NULL;
    va_start(ap, fmt);
    rep = redisvCommand(b->cmd, fmt, ap);
    va_end(ap);
    if (rep == NULL) {
        ss_log(SS_LOG_DEBUG, "%s: redis: %s", r->name, b->cmd->errstr);
        chat_redis_close(b);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        ss_log(SS_LOG_WARNING, "%s: redis: %.*s", r->name,
               (int)(rep->len < 200 ? rep->len : 200), rep->str);
        freeReplyObject(rep);
        chat_redis_close(b);
        return NULL;
    }
    return rep;
}

/* As chat_redis for a command whose reply does not matter: 0 or -1. */
static int
chat_redis_do(struct chat_room *r, const char *fmt, ...)
{
    struct chat_bridge *b = r->bridge;
    redisReply *rep;
    va_list ap;

    if (b->cmd == NULL)
        return -1;
    va_start(ap, fmt);
    rep = redisvCommand(b->cmd, fmt, ap);
    va_end(ap);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        ss_log(SS_LOG_DEBUG, "%s: redis: %s", r->name,
               rep == NULL ? b->cmd->errstr : rep->str);
        if (rep != NULL)
            freeReplyObject(rep);
        chat_redis_close(b);
        return -1;
    }
    freeReplyObject(rep);
    return 0;
}

/* Claims (or keeps) a nickname: 1 ours, 0 another daemon's, -1 failed. */
static int
chat_redis_claim(struct chat_room *r, const char *nick, size_t len)
{
    struct chat_bridge *b = r->bridge;
    char key[200];
    redisReply *rep;
    int rc;

    chat_nick_key(key, sizeof key, b->prefix, nick, len);
    rep = chat_redis(r, "EVAL %s 1 %s %s %ld", chat_lua_claim, key, b->id,
                     b->ttl);
    if (rep == NULL)
        return -1;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ? 1 : 0;
    freeReplyObject(rep);
    return rc;
}

/* Publishes one event.  0 or -1. */
static int
chat_redis_publish(struct chat_room *r, char type, const char *nick,
                   size_t nicklen, const char *arg, size_t arglen,
                   const char *text, size_t textlen)
{
    struct chat_bridge *b = r->bridge;
    size_t size = CHAT_WIRE_MAX - CHAT_WIRE_TEXT_MAX + textlen + 1;
    char *buf = malloc(size);
    ssize_t n;
    int rc = -1;

    if (buf == NULL)
        return -1;
    n = chat_wire_format(buf, size, b->id, type, nick, nicklen, arg, arglen,
                         text, textlen);
    if (n >= 0)
        rc = chat_redis_do(r, "PUBLISH %s %b", b->channel, buf, (size_t)n);
    free(buf);
    return rc;
}

/* Closes a local member whose nickname another daemon owns (bridge). */
static void
chat_kick(struct chat_room *r, uint64_t mid)
{
    size_t i;

    pthread_mutex_lock(&r->lock);
    for (i = 0; i < r->n; i++) {
        struct chat_member *m = r->members[i];

        if (m->mid != mid || m->req == NULL)
            continue;
        ss_log(SS_LOG_INFO, "%s: %s (%s): nickname taken on another server "
               "of the room; disconnected", r->name, m->nick, m->peer);
        chat_sendf(r, m, "error: the nickname \"%s\" is taken on another "
                   "server of this room; join again with another\n", m->nick);
        m->dropped = true;
        ss_request_close(m->req, true);
        break;
    }
    pthread_mutex_unlock(&r->lock);
}

/* Claims the nickname, lists it and announces it.  0, or -1 (link down). */
static int
chat_redis_join(struct chat_room *r, uint64_t mid, const char *nick,
                size_t len, bool announce)
{
    struct chat_bridge *b = r->bridge;
    int rc = chat_redis_claim(r, nick, len);

    if (rc < 0)
        return -1;
    if (rc == 0) {
        chat_kick(r, mid);
        return 0;
    }
    if (chat_redis_do(r, "HSET %smembers:%s %b 1", b->prefix, b->id, nick,
                      len) < 0)
        return -1;
    if (!announce)
        return 0;
    return chat_redis_publish(r, CHAT_W_JOIN, nick, len, "", 0, "", 0);
}

/* Frees a nickname of ours and unlists it.  0 or -1. */
static int
chat_redis_leave(struct chat_room *r, const char *nick, size_t len)
{
    struct chat_bridge *b = r->bridge;
    char key[200];
    redisReply *rep;

    chat_nick_key(key, sizeof key, b->prefix, nick, len);
    rep = chat_redis(r, "EVAL %s 1 %s %s", chat_lua_release, key, b->id);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    return chat_redis_do(r, "HDEL %smembers:%s %b", b->prefix, b->id, nick,
                         len);
}

/*
 * Frees at once the nicknames still held by a daemon that died (their
 * keys would expire within redis_ttl anyway), so that its members'
 * nicknames are free as soon as their leaving is announced.  0 or -1.
 */
static int
chat_redis_release_all(struct chat_room *r, const char *id)
{
    struct chat_bridge *b = r->bridge;
    redisReply *rep = chat_redis(r, "HKEYS %smembers:%s", b->prefix, id);
    char key[200];
    size_t i;
    int rc = 0;

    if (rep == NULL)
        return -1;
    for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements &&
                rc == 0; i++) {
        redisReply *k = rep->element[i];

        if (k->type != REDIS_REPLY_STRING ||
            chat_nick_check(k->str, k->len) != NULL)
            continue;
        chat_nick_key(key, sizeof key, b->prefix, k->str, k->len);
        rc = chat_redis_do(r, "EVAL %s 1 %s %s", chat_lua_release, key, id);
    }
    freeReplyObject(rep);
    return rc;
}

/* Sends one queued event to Redis.  0, or -1 when the link went down. */
static int
chat_item_send(struct chat_room *r, const struct chat_item *it)
{
    switch (it->type) {
    case CHAT_W_JOIN:
        return chat_redis_join(r, it->mid, it->nick, it->nicklen, true);
    case CHAT_W_LEAVE:
        if (chat_redis_leave(r, it->nick, it->nicklen) < 0)
            return -1;
        break;
    case CHAT_W_NICK:
        if (chat_redis_claim(r, it->arg, it->arglen) == 0) {
            chat_kick(r, it->mid);
            return 0;
        }
        if (r->bridge->cmd == NULL ||
            chat_redis_leave(r, it->nick, it->nicklen) < 0 ||
            chat_redis_join(r, it->mid, it->arg, it->arglen, false) < 0)
            return -1;
        break;
    }
    return chat_redis_publish(r, it->type, it->nick, it->nicklen, it->arg,
                              it->arglen, it->text, it->textlen);
}

/* ---- what comes from the other daemons ---- */

/* Adds a member of daemon id (room locked); false if known or no room. */
static bool
chat_remote_add(struct chat_bridge *b, const char *id, const char *nick,
                size_t len)
{
    struct chat_remote *x;
    size_t i;

    for (i = 0; i < b->nremote; i++) {
        x = &b->remote[i];
        if (memcmp(x->id, id, CHAT_ID_LEN) == 0 &&
            chat_nick_eq(x->nick, x->nicklen, nick, len))
            return false;
    }
    if (b->nremote >= CHAT_REMOTE_MAX || len > CHAT_NICK_MAX)
        return false;
    if (b->nremote == b->capremote) {
        size_t cap = b->capremote ? b->capremote * 2 : 64;

        x = realloc(b->remote, cap * sizeof *x);
        if (x == NULL)
            return false;
        b->remote = x;
        b->capremote = cap;
    }
    x = &b->remote[b->nremote++];
    memcpy(x->id, id, CHAT_ID_LEN);
    x->id[CHAT_ID_LEN] = '\0';
    memcpy(x->nick, nick, len);
    x->nick[len] = '\0';
    x->nicklen = len;
    return true;
}

/* Removes a member of daemon id (room locked); false if unknown. */
static bool
chat_remote_del(struct chat_bridge *b, const char *id, const char *nick,
                size_t len)
{
    size_t i;

    for (i = 0; i < b->nremote; i++) {
        struct chat_remote *x = &b->remote[i];

        if (memcmp(x->id, id, CHAT_ID_LEN) == 0 &&
            chat_nick_eq(x->nick, x->nicklen, nick, len)) {
            *x = b->remote[--b->nremote];
            return true;
        }
    }
    return false;
}

/* Delivers one message from the channel to the local members. */
static void
chat_wire_deliver(struct chat_room *r, const char *buf, size_t len)
{
    struct chat_bridge *b = r->bridge;
    struct chat_member from, *to;
    struct chat_wire w;
    char *clean;
    size_t n;

    if (chat_wire_parse(buf, len, &w) < 0) {
        /* another publisher's garbage must not flood the log */
        if (b->malformed++ % 1000 == 0)
            ss_log(SS_LOG_WARNING, "%s: redis: malformed message of %zu "
                   "bytes on %s, ignored (%llu so far)", r->name, len,
                   b->channel, b->malformed);
        return;
    }
    if (memcmp(w.id, b->id, CHAT_ID_LEN) == 0)
        return;                 /* our own, delivered locally already */
    clean = malloc(3 * w.textlen + 3);
    if (clean == NULL)
        return;
    n = chat_utf8_clean(w.text, w.textlen, clean);
    memset(&from, 0, sizeof from);
    memcpy(from.nick, w.nick, w.nicklen);
    from.nicklen = w.nicklen;
    pthread_mutex_lock(&r->lock);
    switch (w.type) {
    case CHAT_W_JOIN:
        if (chat_remote_add(b, w.id, w.nick, w.nicklen))
            chat_notice(r, NULL, "* %s joined\n", from.nick);
        break;
    case CHAT_W_LEAVE:
        if (chat_remote_del(b, w.id, w.nick, w.nicklen))
            chat_notice(r, NULL, "* %s left (%.*s)\n", from.nick, (int)n,
                        clean);
        break;
    case CHAT_W_MSG:
        chat_say(r, &from, NULL, clean, n);
        break;
    case CHAT_W_PRIV:
        to = chat_find(r, w.arg, w.arglen);
        if (to != NULL)
            chat_say(r, &from, to, clean, n);
        break;
    case CHAT_W_NICK:
        if (chat_remote_del(b, w.id, w.nick, w.nicklen) &&
            chat_remote_add(b, w.id, w.arg, w.arglen))
            chat_notice(r, NULL, "* %s is now %.*s\n", from.nick,
                        (int)w.arglen, w.arg);
        break;
    }
    pthread_mutex_unlock(&r->lock);
    free(clean);
}

/* Handles one reply read on the subscribed connection. */
static void
chat_sub_reply(struct chat_room *r, redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[2]->type != REDIS_REPLY_STRING ||
        strcmp(rep->element[0]->str, "message") != 0)
        return;                 /* subscribe confirmations and the like */
    chat_wire_deliver(r, rep->element[2]->str, rep->element[2]->len);
}

/* Reads what arrived on the channel.  0, or -1 when the link is down. */
static int
chat_sub_read(struct chat_room *r)
{
    struct chat_bridge *b = r->bridge;
    void *rep = NULL;

    if (redisBufferRead(b->sub) != REDIS_OK)
        return -1;
    for (;;) {
        if (redisGetReplyFromReader(b->sub, &rep) != REDIS_OK)
            return -1;
        if (rep == NULL)
            break;
        chat_sub_reply(r, rep);
        freeReplyObject(rep);
    }
    /* a reply still being read is bounded: Redis is another machine */
    if (b->sub->reader->len > CHAT_READER_MAX) {
        ss_log(SS_LOG_WARNING, "%s: redis: a message over %u bytes; "
               "dropping the link", r->name, CHAT_READER_MAX);
        return -1;
    }
    return 0;
}

/* ---- the link ---- */

/* A snapshot of the local members (mid and nick), to use unlocked. */
struct chat_snap {
    uint64_t mid;
    char nick[CHAT_NICK_MAX + 1];
    size_t nicklen;
};

static struct chat_snap *
chat_snapshot(struct chat_room *r, size_t *n)
{
    struct chat_snap *s;
    size_t i;

    pthread_mutex_lock(&r->lock);
    *n = r->n;
    s = calloc(r->n + 1, sizeof *s);
    for (i = 0; s != NULL && i < r->n; i++) {
        s[i].mid = r->members[i]->mid;
        s[i].nicklen = r->members[i]->nicklen;
        memcpy(s[i].nick, r->members[i]->nick, s[i].nicklen + 1);
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

/*
 * Claims (or keeps) n members' nicknames and lists them, pipelined: one
 * round trip for the batch, so a heartbeat with many members does not
 * hold up what comes in on the channel.  A member whose nickname another
 * daemon owns is disconnected; the others are announced when announce is
 * true.  0, or -1 when the link went down.
 */
static int
chat_redis_claim_batch(struct chat_room *r, const struct chat_snap *s,
                       size_t n, bool announce)
{
    struct chat_bridge *b = r->bridge;
    bool ours[CHAT_PIPELINE];
    char key[200];
    size_t i, k;
    int rc = 0;

    for (i = 0; i < n; i++) {
        chat_nick_key(key, sizeof key, b->prefix, s[i].nick, s[i].nicklen);
        if (redisAppendCommand(b->cmd, "EVAL %s 1 %s %s %ld", chat_lua_claim,
                               key, b->id, b->ttl) != REDIS_OK ||
            redisAppendCommand(b->cmd, "HSET %smembers:%s %b 1", b->prefix,
                               b->id, s[i].nick, s[i].nicklen) != REDIS_OK)
            goto out_broken;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < 2; k++) {
            redisReply *rep = NULL;

            if (redisGetReply(b->cmd, (void **)&rep) != REDIS_OK ||
                rep == NULL)
                goto out_broken;
            if (rep->type == REDIS_REPLY_ERROR)
                rc = -1;
            if (k == 0)
                ours[i] = rep->type == REDIS_REPLY_INTEGER &&
                          rep->integer == 1;
            freeReplyObject(rep);
        }
    }
    if (rc < 0)
        goto out_broken;
    for (i = 0; i < n && rc == 0; i++) {
        if (!ours[i])
            chat_kick(r, s[i].mid);
        else if (announce)
            rc = chat_redis_publish(r, CHAT_W_JOIN, s[i].nick, s[i].nicklen,
                                    "", 0, "", 0);
    }
    return rc;
out_broken:
    ss_log(SS_LOG_DEBUG, "%s: redis: %s", r->name,
           b->cmd->err != 0 ? b->cmd->errstr : "error reply");
    chat_redis_close(b);
    return -1;
}

/*
 * Refreshes this daemon's keys and claims every local member's nickname
 * (a member whose nickname another daemon owns is disconnected),
 * announcing them when announce is true (after a split).  0 or -1.
 */
static int
chat_redis_refresh(struct chat_room *r, bool announce)
{
    struct chat_bridge *b = r->bridge;
    struct chat_snap *s;
    size_t n, i;
    int rc = 0;

    if (chat_redis_do(r, "SET %sdaemon:%s 1 EX %ld", b->prefix, b->id,
                      b->ttl) < 0 ||
        chat_redis_do(r, "SADD %sdaemons %s", b->prefix, b->id) < 0)
        return -1;
    s = chat_snapshot(r, &n);
    if (s == NULL)
        return 0;
    for (i = 0; i < n && rc == 0; i += CHAT_PIPELINE)
        rc = chat_redis_claim_batch(r, s + i, n - i < CHAT_PIPELINE
                                                  ? n - i : CHAT_PIPELINE,
                                    announce);
    free(s);
    if (rc == 0)
        rc = chat_redis_do(r, "EXPIRE %smembers:%s %ld", b->prefix, b->id,
                           2 * b->ttl);
    return rc;
}

/*
 * Reads who is on the other daemons and brings the local view up to date,
 * announcing the differences: members of a daemon whose key expired (it
 * died) leave, and the daemon is removed.  0 or -1.
 */
static int
chat_redis_sync(struct chat_room *r)
{
    struct chat_bridge *b = r->bridge;
    struct chat_remote *now = NULL;
    size_t nnow = 0, cap = 0, i, j;
    redisReply *ds, *rep;
    int rc = -1;

    ds = chat_redis(r, "SMEMBERS %sdaemons", b->prefix);
    if (ds == NULL)
        return -1;
    if (ds->type != REDIS_REPLY_ARRAY)
        goto out;
    for (i = 0; i < ds->elements && i < CHAT_DAEMONS_MAX; i++) {
        redisReply *d = ds->element[i];
        bool alive;

        if (d->type != REDIS_REPLY_STRING || !chat_id_valid(d->str, d->len) ||
            memcmp(d->str, b->id, CHAT_ID_LEN) == 0)
            continue;
        rep = chat_redis(r, "EXISTS %sdaemon:%s", b->prefix, d->str);
        if (rep == NULL)
            goto out;
        alive = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        freeReplyObject(rep);
        if (!alive) {
            ss_log(SS_LOG_INFO, "%s: redis: server %s of room \"%s\" is "
                   "gone (its key expired)", r->name, d->str, b->room);
            if (chat_redis_release_all(r, d->str) < 0 ||
                chat_redis_do(r, "SREM %sdaemons %s", b->prefix, d->str) < 0 ||
                chat_redis_do(r, "DEL %smembers:%s", b->prefix, d->str) < 0)
                goto out;
            continue;
        }
        rep = chat_redis(r, "HKEYS %smembers:%s", b->prefix, d->str);
        if (rep == NULL)
            goto out;
        for (j = 0; rep->type == REDIS_REPLY_ARRAY && j < rep->elements;
             j++) {
            redisReply *k = rep->element[j];

            if (k->type != REDIS_REPLY_STRING ||
                chat_nick_check(k->str, k->len) != NULL ||
                nnow >= CHAT_REMOTE_MAX)
                continue;
            if (nnow == cap) {
                struct chat_remote *p;

                cap = cap ? cap * 2 : 64;
                p = realloc(now, cap * sizeof *p);
                if (p == NULL) {
                    freeReplyObject(rep);
                    goto out;
                }
                now = p;
            }
            memcpy(now[nnow].id, d->str, CHAT_ID_LEN + 1);
            memcpy(now[nnow].nick, k->str, k->len);
            now[nnow].nick[k->len] = '\0';
            now[nnow].nicklen = k->len;
            nnow++;
        }
        freeReplyObject(rep);
    }
    /* announce the differences, then take the new view */
    pthread_mutex_lock(&r->lock);
    for (i = 0; i < b->nremote; i++) {
        bool still = false;

        for (j = 0; j < nnow && !still; j++)
            still = memcmp(now[j].id, b->remote[i].id, CHAT_ID_LEN) == 0 &&
                    strcmp(now[j].nick, b->remote[i].nick) == 0;
        if (!still)
            chat_notice(r, NULL, "* %s left (server gone)\n",
                        b->remote[i].nick);
    }
    for (j = 0; j < nnow; j++) {
        bool known = false;

        for (i = 0; i < b->nremote && !known; i++)
            known = memcmp(now[j].id, b->remote[i].id, CHAT_ID_LEN) == 0 &&
                    strcmp(now[j].nick, b->remote[i].nick) == 0;
        if (!known)
            chat_notice(r, NULL, "* %s joined\n", now[j].nick);
    }
    free(b->remote);
    b->remote = now;
    b->nremote = nnow;
    b->capremote = cap;
    now = NULL;
    pthread_mutex_unlock(&r->lock);
    rc = 0;
out:
    free(now);
    freeReplyObject(ds);
    return rc;
}

/* Connects one context to the configured address, bounded in time. */
static redisContext *
chat_redis_connect(struct chat_bridge *b, char *err, size_t errsize)
{
    struct timeval tv = { CHAT_REDIS_IO_MS / 1000,
                          (CHAT_REDIS_IO_MS % 1000) * 1000 };
    redisContext *c = b->path[0] != '\0'
                          ? redisConnectUnixWithTimeout(b->path, tv)
                          : redisConnectWithTimeout(b->host, b->port, tv);

    if (c == NULL) {
        snprintf(err, errsize, "%s", strerror(ENOMEM));
        return NULL;
    }
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errsize, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Opens both connections, subscribes and registers.  0 or -1 (err). */
static int
chat_link_up(struct chat_room *r, char *err, size_t errsize)
{
    struct chat_bridge *b = r->bridge;
    redisReply *rep;

    b->cmd = chat_redis_connect(b, err, errsize);
    if (b->cmd == NULL)
        return -1;
    b->sub = chat_redis_connect(b, err, errsize);
    if (b->sub == NULL)
        goto out_close;
    rep = redisCommand(b->sub, "SUBSCRIBE %s", b->channel);
    if (rep == NULL) {
        snprintf(err, errsize, "subscribe: %s", b->sub->errstr);
        goto out_close;
    }
    freeReplyObject(rep);
    /* subscribed first: what happens from now on is heard, then read who
     * is there (an event seen twice is harmless) */
    if (chat_redis_refresh(r, true) < 0)   /* the others learn of ours */
        goto out_register;
    pthread_mutex_lock(&r->lock);
    if (b->link == CHAT_LINK_SPLIT)
        chat_notice_all(r, chat_rejoined_msg, sizeof chat_rejoined_msg - 1);
    b->link = CHAT_LINK_JOINED;
    pthread_mutex_unlock(&r->lock);
    if (chat_redis_sync(r) < 0)
        goto out_register;
    return 0;
out_register:
    snprintf(err, errsize, "registering failed");
out_close:
    chat_redis_close(b);
    return -1;
}

/* The link went down (or never came up): the room is split. */
static void
chat_link_down(struct chat_room *r, const char *why)
{
    struct chat_bridge *b = r->bridge;
    struct chat_item *drop;

    chat_redis_close(b);
    pthread_mutex_lock(&r->lock);
    if (b->link != CHAT_LINK_SPLIT) {
        ss_log(SS_LOG_WARNING, "%s: room \"%s\" split: redis %s: %s; "
               "retrying", r->name, b->room, b->addr, why);
        b->link = CHAT_LINK_SPLIT;
        b->nremote = 0;
        chat_notice_all(r, chat_split_msg, sizeof chat_split_msg - 1);
    }
    pthread_mutex_unlock(&r->lock);
    chat_queue_take(b, &drop);      /* nobody can hear them */
    chat_items_free(drop);
}

/* Sends what members queued.  0, or -1 when the link went down. */
static int
chat_drain(struct chat_room *r)
{
    struct chat_bridge *b = r->bridge;
    struct chat_item *head, *it;
    uint64_t v;
    int rc = 0;

    if (read(b->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        return -1;
    chat_queue_take(b, &head);
    for (it = head; it != NULL && rc == 0; it = it->next)
        rc = chat_item_send(r, it);
    chat_items_free(head);
    return rc;
}

/* Waits up to ms for the eventfd (and the channel when linked). */
static int
chat_bridge_wait(struct chat_bridge *b, int ms, bool *queued, bool *incoming)
{
    struct pollfd p[2] = { { .fd = b->efd, .events = POLLIN },
                           { .fd = b->sub != NULL ? b->sub->fd : -1,
                             .events = POLLIN } };
    int n = poll(p, 2, ms);

    *queued = n > 0 && (p[0].revents & POLLIN);
    *incoming = n > 0 && p[1].revents != 0;
    return n < 0 && errno != EINTR ? -1 : 0;
}

/* The bridge thread: link, relay, heartbeat, reconnect with back-off. */
static void *
chat_bridge_main(void *arg)
{
    struct chat_room *r = arg;
    struct chat_bridge *b = r->bridge;
    double next_beat = 0, period = (double)b->ttl / 3;
    char err[256];

    b->backoff_ms = CHAT_BACKOFF_MIN;
    while (!atomic_load(&b->stop)) {
        bool queued, incoming;
        int ms;

        if (b->cmd == NULL) {
            if (chat_link_up(r, err, sizeof err) < 0) {
                chat_link_down(r, err);
                if (chat_bridge_wait(b, b->backoff_ms, &queued, &incoming) < 0)
                    break;
                if (queued)
                    (void)chat_drain(r);    /* split: dropped */
                b->backoff_ms = b->backoff_ms * 2 > CHAT_BACKOFF_MAX
                                    ? CHAT_BACKOFF_MAX : b->backoff_ms * 2;
                continue;
            }
            ss_log(SS_LOG_INFO, "%s: room \"%s\" joined through redis %s "
                   "(server id %s)", r->name, b->room, b->addr, b->id);
            b->backoff_ms = CHAT_BACKOFF_MIN;
            next_beat = chat_now() + period;
        }
        ms = (int)((next_beat - chat_now()) * 1000);
        if (chat_bridge_wait(b, ms < 0 ? 0 : ms, &queued, &incoming) < 0)
            break;
        if ((incoming && chat_sub_read(r) < 0) ||
            (queued && chat_drain(r) < 0) ||
            (chat_now() >= next_beat &&
             (chat_redis_refresh(r, false) < 0 || chat_redis_sync(r) < 0))) {
            chat_link_down(r, "connection lost");
            continue;
        }
        if (chat_now() >= next_beat)
            next_beat = chat_now() + period;
    }
    /* leaving: say what members said last, then leave the room */
    if (b->cmd != NULL && chat_drain(r) == 0) {
        (void)chat_redis_do(r, "DEL %smembers:%s", b->prefix, b->id);
        (void)chat_redis_do(r, "SREM %sdaemons %s", b->prefix, b->id);
        (void)chat_redis_do(r, "DEL %sdaemon:%s", b->prefix, b->id);
    }
    chat_redis_close(b);
    return NULL;
}

/*
 * Starts the bridge thread, once, in the process that serves (not at
 * --check, and after workers = N forked).  Called from the serve loop's
 * service_actions and from each request before it queues anything.  The
 * server id and the eventfd are made here, not at init: each worker
 * process is a server of the room of its own (with init's id they would
 * all drop each other's messages as their own echo, and with init's
 * eventfd one process's bridge would take the other's wake-ups).
 */
void
chat_bridge_start(struct chat_room *r)
{
    struct chat_bridge *b = r->bridge;
    unsigned char rnd[CHAT_ID_LEN / 2];
    int e, fd;

    if (b == NULL)
        return;
    pthread_mutex_lock(&b->start_lock);
    if (!b->started) {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            e = errno;
            ss_log(SS_LOG_ERROR, "%s: cannot start the redis bridge: "
                   "getrandom: %s", r->name, strerror(e));
            pthread_mutex_unlock(&b->start_lock);
            return;
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(b->id + 2 * i, 3, "%02x", rnd[i]);
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            e = errno;
            ss_log(SS_LOG_ERROR, "%s: cannot start the redis bridge: "
                   "eventfd: %s", r->name, strerror(e));
            pthread_mutex_unlock(&b->start_lock);
            return;
        }
        close(b->efd);          /* init's: a forked worker shares it */
        b->efd = fd;
        e = pthread_create(&b->thread, NULL, chat_bridge_main, r);
        if (e != 0)
            ss_log(SS_LOG_ERROR, "%s: cannot start the redis bridge: %s",
                   r->name, strerror(e));
        b->started = e == 0;
    }
    pthread_mutex_unlock(&b->start_lock);
}

void
chat_bridge_service(struct ss_server *s, void *arg)
{
    (void)s;
    chat_bridge_start(arg);
}

/*
 * Reads redis, room and redis_ttl into a new bridge (*out stays NULL
 * without redis).  0, or -1 after a configuration error.
 */
int
chat_redis_options(struct ss_server *s, bool dgram, struct chat_bridge **out)
{
    const char *addr = ss_option(s, "redis"), *room = ss_option(s, "room");
    const char *colon;
    struct chat_bridge *b;
    long ttl = 0;
    size_t i, rlen;
    int bad;

    *out = NULL;
    bad = ss_option_long(s, "redis_ttl", CHAT_DEF_REDIS_TTL, 3, 86400, &ttl);
    if (addr == NULL) {
        if (room != NULL)
            bad |= ss_server_errorf(s, "room", "room = %s needs redis (the "
                                    "Redis server that shares the room)",
                                    room);
        if (ss_option(s, "redis_ttl") != NULL)
            bad |= ss_server_errorf(s, "redis_ttl", "redis_ttl needs redis");
        return bad != 0 ? -1 : 0;
    }
    if (dgram)
        return ss_server_errorf(s, "redis", "redis = %s: a datagram room "
                                "cannot be shared through Redis (its members "
                                "are client addresses that only this server "
                                "can answer); use a stream type", addr);
    if (room == NULL)
        room = ss_server_name(s);
    rlen = strlen(room);
    for (i = 0; i < rlen; i++) {
        char c = room[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            break;
    }
    if (rlen == 0 || rlen > 64 || i < rlen)
        bad |= ss_server_errorf(s, ss_option(s, "room") != NULL ? "room"
                                                                : "redis",
                                "room \"%s\" is not 1-64 letters, digits, "
                                "'-', '_' or '.'", room);
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return -1;
    snprintf(b->addr, sizeof b->addr, "%s", addr);
    if (strncmp(addr, "unix:", 5) == 0) {
        if (addr[5] != '/' || strlen(addr + 5) >= sizeof b->path)
            bad |= ss_server_errorf(s, "redis", "redis = %s: unix:PATH needs "
                                    "an absolute path under 108 bytes", addr);
        else
            snprintf(b->path, sizeof b->path, "%s", addr + 5);
    } else {
        char *end = NULL;
        long port = -1;
        size_t hlen;

        colon = strrchr(addr, ':');
        if (colon != NULL && colon[1] != '\0') {
            errno = 0;
            port = strtol(colon + 1, &end, 10);
            if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
                port = -1;
        }
        hlen = colon != NULL ? (size_t)(colon - addr) : 0;
        if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
            addr++;
            hlen -= 2;
        }
        if (port < 0 || hlen == 0 || hlen >= sizeof b->host)
            bad |= ss_server_errorf(s, "redis", "invalid redis \"%s\" "
                                    "(unix:PATH or HOST:PORT)", b->addr);
        else {
            memcpy(b->host, addr, hlen);
            b->host[hlen] = '\0';
            b->port = (int)port;
        }
    }
    if (bad != 0) {
        free(b);
        return -1;
    }
    snprintf(b->room, sizeof b->room, "%s", room);
    b->ttl = ttl;
    snprintf(b->prefix, sizeof b->prefix, "sockserv:chat:%s:", b->room);
    snprintf(b->channel, sizeof b->channel, "sockserv:chat:%s", b->room);
    b->qtail = &b->qhead;
    b->link = CHAT_LINK_CONNECTING;
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0)
        goto out_free;
    if (pthread_mutex_init(&b->qlock, NULL) != 0)
        goto out_efd;
    if (pthread_mutex_init(&b->start_lock, NULL) != 0)
        goto out_qlock;
    *out = b;
    return 0;
out_qlock:
    pthread_mutex_destroy(&b->qlock);
out_efd:
    close(b->efd);
out_free:
    free(b);
    return -1;
}

/* Stops the bridge thread (it says goodbye to Redis) and frees it. */
void
chat_bridge_free(struct chat_bridge *b)
{
    struct chat_item *rest;
    uint64_t one = 1;

    if (b == NULL)
        return;
    if (b->started) {
        atomic_store(&b->stop, true);
        if (write(b->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            ss_log(SS_LOG_DEBUG, "chat: eventfd: %s", strerror(errno));
        pthread_join(b->thread, NULL);
    }
    chat_queue_take(b, &rest);
    chat_items_free(rest);
    free(b->remote);
    pthread_mutex_destroy(&b->start_lock);
    pthread_mutex_destroy(&b->qlock);
    close(b->efd);
    free(b);
}
