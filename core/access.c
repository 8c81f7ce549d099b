/* access.c: who may connect and how much: allow/deny address lists, and
 * per-server limits (max_connections, max_per_source, rate_limit). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SS_MAX_SOURCES 65536    /* per-source entries tracked at most */
#define SS_REFUSAL_SLOTS 256    /* addresses the refusal log remembers */

static void refusals_free(struct ss_server *);

/* An address as a comparable key: IPv4 (also IPv4-mapped IPv6) or IPv6. */
struct addr_key {
    int family;                 /* AF_INET, AF_INET6, or 0: not an IP */
    unsigned char b[16];
};

static struct addr_key
key_of(const struct sockaddr *sa, socklen_t len)
{
    struct addr_key k;

    memset(&k, 0, sizeof k);
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        k.family = AF_INET;
        memcpy(k.b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
               4);
    } else if (sa->sa_family == AF_INET6 &&
               len >= sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a)) {
            k.family = AF_INET;
            memcpy(k.b, a->s6_addr + 12, 4);
        } else {
            k.family = AF_INET6;
            memcpy(k.b, a->s6_addr, 16);
        }
    }
    return k;
}

/* ---- allow / deny ------------------------------------------------------ */

static bool
cidr_match(const struct ss_cidr *c, const struct addr_key *k)
{
    int full = c->bits / 8, rest = c->bits % 8;

    if (c->family != k->family)
        return false;
    if (memcmp(c->addr, k->b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));

    return (c->addr[full] & mask) == (k->b[full] & mask);
}

/* True if the address (IPv4, IPv6 or IPv4-mapped) is in the list. */
bool
ss_cidr_list_match(const struct ss_cidr *list, size_t n,
                   const struct sockaddr *sa, socklen_t len)
{
    struct addr_key k = key_of(sa, len);

    if (k.family == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&list[i], &k))
            return true;
    return false;
}

/*
 * Parses "127.0.0.1, 10.0.0.0/8 ::1 fe80::/10" (commas or spaces) into
 * *out.  Returns 0, or -1 with the offending word in err.
 */
int
ss_cidr_parse_list(const char *list, struct ss_cidr **out, size_t *n,
                   char *err, size_t errlen)
{
    const char *p = list;
    struct ss_cidr *v = NULL;
    size_t cnt = 0;

    while (*p != '\0') {
        char word[INET6_ADDRSTRLEN + 8], *slash;
        size_t len = strcspn(p, ", \t");
        struct ss_cidr c;
        long bits;

        if (len == 0) {
            p++;
            continue;
        }
        if (len >= sizeof word) {
            snprintf(err, errlen, "\"%.*s\" is not an address or CIDR block",
                     (int)len, p);
            goto out_fail;
        }
        memcpy(word, p, len);
        word[len] = '\0';
        p += len;
        memset(&c, 0, sizeof c);
        slash = strchr(word, '/');
        if (slash != NULL)
            *slash = '\0';
        if (inet_pton(AF_INET, word, c.addr) == 1) {
            c.family = AF_INET;
            c.bits = 32;
        } else if (inet_pton(AF_INET6, word, c.addr) == 1) {
            c.family = AF_INET6;
            c.bits = 128;
            if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)(void *)c.addr)) {
                memmove(c.addr, c.addr + 12, 4);
                memset(c.addr + 4, 0, 12);
                c.family = AF_INET;
                c.bits = 32;
            }
        } else {
            if (slash != NULL)
                *slash = '/';
            snprintf(err, errlen, "\"%s\" is not an address or CIDR block",
                     word);
            goto out_fail;
        }
        if (slash != NULL) {
            if (!ss_parse_long(slash + 1, 0, c.bits, &bits)) {
                *slash = '/';
                snprintf(err, errlen, "\"%s\": invalid prefix length (0-%d)",
                         word, c.bits);
                goto out_fail;
            }
            c.bits = (int)bits;
        }
        struct ss_cidr *nv = realloc(v, (cnt + 1) * sizeof *v);

        if (nv == NULL) {
            snprintf(err, errlen, "%s", strerror(ENOMEM));
            goto out_fail;
        }
        v = nv;
        v[cnt++] = c;
    }
    if (cnt == 0) {
        snprintf(err, errlen, "empty list");
        goto out_fail;
    }
    free(*out);
    *out = v;
    *n = cnt;
    return 0;
out_fail:
    free(v);
    return -1;
}

/* Deny wins; with an allow list, only what it names gets in. */
static bool
acl_permits(const struct ss_server *srv, const struct addr_key *k,
            const char **why)
{
    for (size_t i = 0; i < srv->acl.ndeny; i++) {
        if (cidr_match(&srv->acl.deny[i], k)) {
            *why = "in deny";
            return false;
        }
    }
    if (srv->acl.nallow == 0)
        return true;
    for (size_t i = 0; i < srv->acl.nallow; i++)
        if (cidr_match(&srv->acl.allow[i], k))
            return true;
    *why = "not in allow";
    return false;
}

/* ---- per-source accounting ---------------------------------------------- */

struct ss_source {
    struct ss_source *next;
    struct addr_key key;
    unsigned long conns;        /* open connections from it */
    double tokens, stamp;       /* rate_limit bucket */
};

static size_t
hash_key(const struct addr_key *k, size_t nbuckets)
{
    size_t h = 1469598103934665603ULL ^ (size_t)k->family;

    for (int i = 0; i < 16; i++)
        h = (h ^ k->b[i]) * 1099511628211ULL;
    return h & (nbuckets - 1);
}

/* An entry with nothing open and a full bucket carries no information. */
static bool
idle(const struct ss_server *srv, const struct ss_source *s, double now)
{
    double rate = srv->set.rate_limit;

    if (s->conns > 0)
        return false;
    return rate <= 0 || s->tokens + (now - s->stamp) * rate >= rate;
}

static void
prune_bucket(struct ss_server *srv, size_t b, double now)
{
    struct ss_source **pp = &srv->sources[b];

    while (*pp != NULL) {
        struct ss_source *s = *pp;

        if (idle(srv, s, now)) {
            *pp = s->next;
            free(s);
            srv->nsources--;
        } else {
            pp = &s->next;
        }
    }
}

static struct ss_source *
source_get(struct ss_server *srv, const struct addr_key *k, double now)
{
    size_t b;
    struct ss_source *s;

    if (srv->sources == NULL) {
        srv->nbuckets = 1024;
        srv->sources = calloc(srv->nbuckets, sizeof *srv->sources);
        if (srv->sources == NULL)
            return NULL;
    }
    b = hash_key(k, srv->nbuckets);
    prune_bucket(srv, b, now);
    for (s = srv->sources[b]; s != NULL; s = s->next)
        if (memcmp(&s->key, k, sizeof *k) == 0)
            return s;
    if (srv->nsources >= SS_MAX_SOURCES) {
        for (size_t i = 0; i < srv->nbuckets; i++)
            prune_bucket(srv, i, now);
        if (srv->nsources >= SS_MAX_SOURCES)
            return NULL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->key = *k;
    s->tokens = srv->set.rate_limit;
    s->stamp = now;
    s->next = srv->sources[b];
    srv->sources[b] = s;
    srv->nsources++;
    return s;
}

void
ss_access_free(struct ss_server *srv)
{
    for (size_t i = 0; srv->sources != NULL && i < srv->nbuckets; i++) {
        struct ss_source *s = srv->sources[i], *next;

        for (; s != NULL; s = next) {
            next = s->next;
            free(s);
        }
    }
    free(srv->sources);
    srv->sources = NULL;
    refusals_free(srv);
    free(srv->acl.allow);
    free(srv->acl.deny);
    free(srv->proxy.from);
    srv->proxy.from = NULL;
}

static bool
per_source_needed(const struct ss_server *srv)
{
    return srv->set.max_per_source > 0 || srv->set.rate_limit > 0;
}

/* ---- the refusal log ----------------------------------------------------- */

/*
 * What the refusal log remembers of one address: when its last line was
 * written, and how many of its refusals since were not logged.
 */
struct refusal_slot {
    char addr[SS_ADDRSTRLEN];   /* the peer without its port; "" = free */
    double logged;
    unsigned long quiet;
};

/*
 * The refusal log of one server: a fixed table of the addresses refused
 * lately, so its memory is bounded whatever the clients do.  Its own lock,
 * not the server's: lines are written under it, and requests starting and
 * ending never wait for a log line.
 */
struct ss_refusals {
    pthread_mutex_t lock;
    struct refusal_slot slot[SS_REFUSAL_SLOTS];
};

/*
 * The address part of a peer's text, which the refusal log is kept by:
 * "1.2.3.4:5" gives "1.2.3.4", "[::1]:5" gives "[::1]"; anything else (a
 * Unix peer) is kept whole.
 */
static void
peer_address(const char *peer, char *out, size_t size)
{
    size_t len = strlen(peer);
    const char *colon = strrchr(peer, ':');

    if (peer[0] == '[' && strchr(peer, ']') != NULL)
        len = (size_t)(strchr(peer, ']') - peer) + 1;
    else if (isdigit((unsigned char)peer[0]) && colon != NULL &&
             colon == strchr(peer, ':'))
        len = (size_t)(colon - peer);
    snprintf(out, size, "%.*s", (int)len, peer);
}

/* Writes the count of s's refusals not logged, if any (table locked). */
static void
refusal_flush(const struct ss_server *srv, struct refusal_slot *s, double now)
{
    if (s->quiet == 0)
        return;
    ss_log(SS_LOG_INFO, "%s: %s: %lu more refused, not logged", srv->name,
           s->addr, s->quiet);
    s->quiet = 0;
    s->logged = now;
}

/*
 * A slot for an address not in the table (table locked): a free one, or
 * one whose second has passed with nothing left to tell; when every slot
 * holds an address logged within the last second, the one logged longest
 * ago is evicted, its count written first.  So when more addresses than
 * the table holds are refused within one second, each is still named, but
 * one may then be named more than once in that second.
 */
static struct refusal_slot *
refusal_slot_take(const struct ss_server *srv, struct ss_refusals *r,
                  double now)
{
    struct refusal_slot *oldest = &r->slot[0];

    for (size_t i = 0; i < SS_REFUSAL_SLOTS; i++) {
        struct refusal_slot *s = &r->slot[i];

        if (s->addr[0] == '\0' || (now - s->logged >= 1.0 && s->quiet == 0))
            return s;
        if (s->logged < oldest->logged)
            oldest = s;
    }
    refusal_flush(srv, oldest, now);
    return oldest;
}

/* The server's refusal log, made on first use; NULL if out of memory. */
static struct ss_refusals *
refusals_of(struct ss_server *srv)
{
    struct ss_refusals *r;

    pthread_mutex_lock(&srv->lock);
    r = srv->refusals;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r != NULL && pthread_mutex_init(&r->lock, NULL) != 0) {
            free(r);
            r = NULL;
        }
        srv->refusals = r;
    }
    pthread_mutex_unlock(&srv->lock);
    return r;
}

/*
 * Logs a refusal with the client's address, at most one line a second for
 * each address (a flood of refusals must not become a flood of log lines,
 * yet every refused address must be named, for an operator or fail2ban).
 * The refusals of an address within its second are counted instead: the
 * count comes with that address's next line or, once the second is over,
 * on a line of its own when any refusal is next logged (or when the server
 * is freed).  Without memory for the table, every refusal is logged.
 */
void
ss_access_log_refusal(struct ss_server *srv, const char *peer,
                      const char *why)
{
    struct ss_refusals *r = refusals_of(srv);
    char addr[SS_ADDRSTRLEN];
    struct refusal_slot *s = NULL;
    double now = ss_now();

    if (r == NULL) {
        ss_log(SS_LOG_INFO, "%s: %s: refused (%s)", srv->name, peer, why);
        return;
    }
    peer_address(peer, addr, sizeof addr);
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < SS_REFUSAL_SLOTS && s == NULL; i++)
        if (strcmp(r->slot[i].addr, addr) == 0)
            s = &r->slot[i];
    if (s != NULL && now - s->logged < 1.0) {
        s->quiet++;
        pthread_mutex_unlock(&r->lock);
        return;
    }
    /* the other addresses' counts whose second is over */
    for (size_t i = 0; i < SS_REFUSAL_SLOTS; i++)
        if (&r->slot[i] != s && now - r->slot[i].logged >= 1.0)
            refusal_flush(srv, &r->slot[i], now);
    if (s == NULL) {
        s = refusal_slot_take(srv, r, now);
        snprintf(s->addr, sizeof s->addr, "%s", addr);
        s->quiet = 0;
    }
    if (s->quiet > 0)
        ss_log(SS_LOG_INFO, "%s: %s: refused (%s; %lu more from this "
               "address not logged)", srv->name, peer, why, s->quiet);
    else
        ss_log(SS_LOG_INFO, "%s: %s: refused (%s)", srv->name, peer, why);
    s->quiet = 0;
    s->logged = now;
    pthread_mutex_unlock(&r->lock);
}

/* Writes the counts the refusal log still holds, and frees it. */
static void
refusals_free(struct ss_server *srv)
{
    struct ss_refusals *r = srv->refusals;

    if (r == NULL)
        return;
    for (size_t i = 0; i < SS_REFUSAL_SLOTS; i++)
        refusal_flush(srv, &r->slot[i], 0);
    pthread_mutex_destroy(&r->lock);
    free(r);
    srv->refusals = NULL;
}

/*
 * Decides whether a new request gets in (before verify_request's own hook
 * and before any handler code): allow/deny, then rate_limit per source,
 * max_per_source and max_connections.  A refusal is logged with the
 * client's address; the caller closes it.  Counts what it admits.
 */
bool
ss_access_admit(struct ss_server *srv, struct ss_request *req)
{
    struct addr_key k;
    bool stream = req->fd >= 0;
    const char *why = NULL;
    enum ss_refusal reason;
    struct ss_source *s = NULL;

    if (srv->acl.nallow == 0 && srv->acl.ndeny == 0 &&
        srv->set.max_connections == 0 && !per_source_needed(srv))
        return true;            /* nothing to check or count */
    k = key_of((struct sockaddr *)&req->addr, req->addrlen);
    if (k.family != 0 && !acl_permits(srv, &k, &why)) {
        ss_stats_refused(srv, SS_REFUSED_ACL);
        ss_access_log_refusal(srv, ss_request_peer(req), why);
        return false;
    }
    pthread_mutex_lock(&srv->lock);
    if (stream && srv->set.max_connections > 0 &&
        srv->nconns >= srv->set.max_connections) {
        why = "max_connections reached";
        reason = SS_REFUSED_MAX_CONNECTIONS;
        goto out_refuse;
    }
    if (k.family != 0 && per_source_needed(srv)) {
        double now = ss_now();

        s = source_get(srv, &k, now);
        if (s == NULL) {
            why = "too many sources tracked";
            reason = SS_REFUSED_MAX_PER_SOURCE;
            goto out_refuse;
        }
        if (srv->set.rate_limit > 0) {
            double rate = srv->set.rate_limit;

            s->tokens += (now - s->stamp) * rate;
            if (s->tokens > rate)
                s->tokens = rate;       /* a burst of one second's worth */
            s->stamp = now;
            if (s->tokens < 1) {
                why = "rate_limit exceeded";
                reason = SS_REFUSED_RATE_LIMIT;
                goto out_refuse;
            }
            s->tokens -= 1;
        }
        if (stream && srv->set.max_per_source > 0 &&
            s->conns >= (unsigned long)srv->set.max_per_source) {
            why = "max_per_source reached";
            reason = SS_REFUSED_MAX_PER_SOURCE;
            goto out_refuse;
        }
    }
    if (stream) {
        srv->nconns++;
        if (s != NULL)
            s->conns++;
        req->admitted = true;
    }
    pthread_mutex_unlock(&srv->lock);
    return true;
out_refuse:
    pthread_mutex_unlock(&srv->lock);
    ss_stats_refused(srv, reason);
    ss_access_log_refusal(srv, ss_request_peer(req), why);
    return false;
}

/* A connection admitted by ss_access_admit from addr has ended. */
void
ss_access_release(struct ss_server *srv, const struct sockaddr *addr,
                  socklen_t len)
{
    struct addr_key k = key_of(addr, len);

    pthread_mutex_lock(&srv->lock);
    srv->nconns--;
    if (k.family != 0 && per_source_needed(srv) && srv->sources != NULL) {
        size_t b = hash_key(&k, srv->nbuckets);

        for (struct ss_source *s = srv->sources[b]; s != NULL; s = s->next) {
            if (memcmp(&s->key, &k, sizeof k) == 0) {
                if (s->conns > 0)
                    s->conns--;
                break;
            }
        }
    }
    pthread_mutex_unlock(&srv->lock);
}

/* ---- data connections (conn.c) -------------------------------------------- */

/* True when allow/deny let addr in; else false with *why. */
bool
ss_access_permits(const struct ss_server *srv, const struct sockaddr *addr,
                  socklen_t len, const char **why)
{
    struct addr_key k = key_of(addr, len);

    *why = NULL;
    return k.family == 0 || acl_permits(srv, &k, why);
}

/* True when a and b are the same IP address (IPv4-mapped IPv6 equal to
 * its IPv4), ports aside. */
bool
ss_addr_same_host(const struct sockaddr *a, socklen_t alen,
                  const struct sockaddr *b, socklen_t blen)
{
    struct addr_key ka = key_of(a, alen), kb = key_of(b, blen);

    return ka.family != 0 && ka.family == kb.family &&
           memcmp(ka.b, kb.b, sizeof ka.b) == 0;
}
