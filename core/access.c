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
    free(srv->acl.allow);
    free(srv->acl.deny);
}

static bool
per_source_needed(const struct ss_server *srv)
{
    return srv->set.max_per_source > 0 || srv->set.rate_limit > 0;
}

/*
 * Logs a refusal, at most one line a second per server (a flood of
 * refused clients must not become a flood of log lines); the next line
 * says how many were not logged.
 */
void
ss_access_log_refusal(struct ss_server *srv, const char *peer,
                      const char *why)
{
    double now = ss_now();
    unsigned long quiet = 0;
    bool log = false;

    pthread_mutex_lock(&srv->lock);
    if (now - srv->refuse_logged >= 1.0) {
        log = true;
        quiet = srv->refuse_quiet;
        srv->refuse_quiet = 0;
        srv->refuse_logged = now;
    } else {
        srv->refuse_quiet++;
    }
    pthread_mutex_unlock(&srv->lock);
    if (log && quiet > 0)
        ss_log(SS_LOG_INFO, "%s: %s: refused (%s; %lu more refused before, "
               "not logged)", srv->name, peer, why, quiet);
    else if (log)
        ss_log(SS_LOG_INFO, "%s: %s: refused (%s)", srv->name, peer, why);
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
    struct ss_source *s = NULL;

    if (srv->acl.nallow == 0 && srv->acl.ndeny == 0 &&
        srv->set.max_connections == 0 && !per_source_needed(srv))
        return true;            /* nothing to check or count */
    k = key_of((struct sockaddr *)&req->addr, req->addrlen);
    if (k.family != 0 && !acl_permits(srv, &k, &why)) {
        ss_access_log_refusal(srv, ss_request_peer(req), why);
        return false;
    }
    pthread_mutex_lock(&srv->lock);
    if (stream && srv->set.max_connections > 0 &&
        srv->nconns >= srv->set.max_connections) {
        why = "max_connections reached";
        goto out_refuse;
    }
    if (k.family != 0 && per_source_needed(srv)) {
        double now = ss_now();

        s = source_get(srv, &k, now);
        if (s == NULL) {
            why = "too many sources tracked";
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
                goto out_refuse;
            }
            s->tokens -= 1;
        }
        if (stream && srv->set.max_per_source > 0 &&
            s->conns >= (unsigned long)srv->set.max_per_source) {
            why = "max_per_source reached";
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
