/* chat.h: what the chat room (chat.c) and its Redis bridge share. */
/*
 * Internal to chat.so, not installed.  chat.c is the room: framing,
 * UTF-8, nicknames, commands, local delivery, the handler.  chat_redis.c
 * is the bridge that shares a room between daemons through Redis (the
 * only file that knows hiredis).  Each side calls the other only through
 * the functions declared here.
 */
#ifndef SS_CHAT_H
#define SS_CHAT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sockserv.h"

#define CHAT_NICK_MAX    32     /* bytes of UTF-8 */
#define CHAT_MSG_MAX     1023   /* bytes per delivered message, newline
                                 * included: clients read with recv(1024) */
#define CHAT_PROMPT_MAX  512
#define CHAT_ID_LEN      16     /* a daemon id: lowercase hex digits */

struct chat_opts {
    size_t max_line;            /* longest accepted line, bytes */
    size_t max_members;
    int partial_ms;             /* silence that ends a line without newline */
    double idle_timeout;        /* datagram members, seconds */
    char prompt[CHAT_PROMPT_MAX + 1];
    size_t promptlen;
};

struct chat_member {
    char nick[CHAT_NICK_MAX + 1];
    size_t nicklen;
    bool joined;
    bool dropped;               /* a delivery failed: being disconnected */
    bool held;                  /* req is held by the room */
    char peer[128];             /* the client's address, for logs */
    struct ss_request *req;     /* a stream member's connection (held) */
    struct sockaddr_storage addr;   /* a datagram member's address */
    socklen_t addrlen;
    double last_seen;           /* a datagram member's last datagram */
    uint64_t mid;               /* unique in the room, set at join */
};

struct chat_room;
typedef int (*chat_deliver_fn)(struct chat_room *, struct chat_member *,
                               const char *, size_t);

struct chat_bridge;             /* chat_redis.c's own */

struct chat_room {
    pthread_mutex_t lock;       /* guards members and their nicknames */
    struct chat_member **members;
    size_t n, cap;
    struct chat_opts opt;
    bool dgram;
    char name[64];              /* the server's, for logs */
    struct ss_server *server;
    chat_deliver_fn deliver;    /* sends one message to one member */
    struct chat_bridge *bridge; /* redis = ...: the room shared through
                                 * Redis (stream rooms only); else NULL */
    uint64_t next_mid;
};

/* The events a member hands to the bridge (the wire format's types). */
enum {
    CHAT_W_JOIN = 'J', CHAT_W_LEAVE = 'L', CHAT_W_MSG = 'M',
    CHAT_W_PRIV = 'P', CHAT_W_NICK = 'N',
};

struct chat_remote {            /* a member on another daemon */
    char id[CHAT_ID_LEN + 1];
    char nick[CHAT_NICK_MAX + 1];
    size_t nicklen;
};

/* ---- chat.c, for the bridge ---------------------------------------------- */

/* Copies len bytes of in to out as valid UTF-8 without control characters
 * but tab (out holds 3 * len bytes).  Returns the bytes written. */
size_t chat_utf8_clean(const char *in, size_t len, char *out);
/* NULL when nick is a valid nickname, else the reason. */
const char *chat_nick_check(const char *nick, size_t len);
/* c with ASCII letters lowercased, as nicknames compare. */
char chat_lower(char c);
/* True when a and b are the same nickname (ASCII letters ignore case). */
bool chat_nick_eq(const char *a, size_t alen, const char *b, size_t blen);
/* Sends one message to m; a stream member that fails is closed. */
void chat_send(struct chat_room *r, struct chat_member *m, const char *buf,
               size_t len);
/* Sends a short formatted message to m. */
void chat_sendf(struct chat_room *r, struct chat_member *m, const char *fmt,
                ...) SS_PRINTF(3, 4);
/* Sends a notice to every member but except (room locked). */
void chat_notice(struct chat_room *r, struct chat_member *except,
                 const char *fmt, ...) SS_PRINTF(3, 4);
/* Sends text from `from` to `to`, or to every other member when to is
 * NULL, cut into messages of at most CHAT_MSG_MAX bytes (room locked). */
void chat_say(struct chat_room *r, struct chat_member *from,
              struct chat_member *to, const char *text, size_t len);
/* Finds a local member by nickname (room locked); NULL if none. */
struct chat_member *chat_find(struct chat_room *r, const char *nick,
                              size_t len);
/* Seconds on the monotonic clock. */
double chat_now(void);

/* ---- chat_redis.c, for the room ------------------------------------------ */

/* Reads redis, room and redis_ttl into a new bridge (*out stays NULL
 * without redis).  0, or -1 after a configuration error. */
int chat_redis_options(struct ss_server *s, bool dgram,
                       struct chat_bridge **out);
/* Stops the bridge thread (it says goodbye to Redis) and frees b (NULL is
 * nothing to do). */
void chat_bridge_free(struct chat_bridge *b);
/* Starts the bridge thread once, in the process that serves (no-op
 * without a bridge). */
void chat_bridge_start(struct chat_room *r);
/* The serve loop's service_actions for a shared stream room (arg: the
 * room): starts the bridge. */
void chat_bridge_service(struct ss_server *s, void *arg);
/* Hands event type (CHAT_W_*) of member m to the bridge, never blocking;
 * no-op without a bridge. */
void chat_bridge_push(struct chat_room *r, char type,
                      const struct chat_member *m, const char *arg,
                      size_t arglen, const char *text, size_t textlen);
/* Tells a member who joins a split room that it is split (room locked). */
void chat_bridge_welcome(struct chat_room *r, struct chat_member *m);
/* Finds a member of another daemon by nickname (room locked); NULL if
 * none or without a bridge. */
const struct chat_remote *chat_remote_find(struct chat_room *r,
                                           const char *nick, size_t len);
/* How many members other daemons have (room locked); 0 without a bridge. */
size_t chat_bridge_nremote(const struct chat_room *r);
/* The i-th member of another daemon, i < chat_bridge_nremote (room
 * locked), for /list. */
const struct chat_remote *chat_bridge_remote(const struct chat_room *r,
                                             size_t i);

#endif
