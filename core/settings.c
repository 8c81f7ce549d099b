/* settings.c: the core's keys (one table: name, parser, field, range),
 * the handler's own options, and configuration errors. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proxy.h"

enum key_kind { K_TYPE, K_MODE, K_STR, K_PORT, K_LONG, K_SIZE, K_BOOL,
                K_SECONDS, K_RATE, K_PROXY };

struct key {
    const char *name;
    enum key_kind kind;
    size_t off;
    long min, max;
    unsigned modes;             /* the modes it applies to; 0: every one */
};

/* Keys of the modes that run a thread or a process per request. */
#define NOT_EVENT (SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING)

#define F(field) offsetof(struct ss_settings, field)
static const struct key keys[] = {
    { "type",                K_TYPE,    0, 0, 0, 0 },
    { "mode",                K_MODE,    0, 0, 0, 0 },
    { "host",                K_STR,     F(host), 0, 0, 0 },
    { "port",                K_PORT,    F(port), 0, 65535, 0 },
    { "path",                K_STR,     F(path), 0, 0, 0 },
    { "request_queue_size",  K_LONG,    F(request_queue_size), 1, 65535, 0 },
    { "allow_reuse_address", K_BOOL,    F(allow_reuse_address), 0, 0, 0 },
    { "allow_reuse_port",    K_BOOL,    F(allow_reuse_port), 0, 0, 0 },
    { "timeout",             K_SECONDS, F(timeout), 0, 86400, 0 },
    { "shutdown_timeout",    K_SECONDS, F(shutdown_timeout), 0, 3600, 0 },
    { "max_children",        K_LONG,    F(max_children), 1, 1000000,
                                        NOT_EVENT },
    { "daemon_threads",      K_BOOL,    F(daemon_threads), 0, 0, 0 },
    { "block_on_close",      K_BOOL,    F(block_on_close), 0, 0, 0 },
    { "max_threads",         K_LONG,    F(max_threads), 1, 1000000,
                                        NOT_EVENT },
    { "max_spare_threads",   K_LONG,    F(max_spare_threads), 0, 1000000,
                                        NOT_EVENT },
    { "thread_stack_size",   K_SIZE,    F(thread_stack_size), 16384,
                                        1L << 30, NOT_EVENT },
    { "coroutine_stack_size", K_SIZE,   F(coroutine_stack_size), 16384,
                                        1L << 30, SS_MODE_EVENT },
    { "max_packet_size",     K_LONG,    F(max_packet_size), 1, 16 << 20, 0 },
    { "max_connections",     K_LONG,    F(max_connections), 0, 100000000, 0 },
    { "max_per_source",      K_LONG,    F(max_per_source), 0, 100000000, 0 },
    { "rate_limit",          K_RATE,    F(rate_limit), 0, 1000000, 0 },
    { "allow",               K_STR,     F(allow), 0, 0, 0 },
    { "deny",                K_STR,     F(deny), 0, 0, 0 },
    { "socket_mode",         K_STR,     F(socket_mode), 0, 0, 0 },
    { "socket_owner",        K_STR,     F(socket_owner), 0, 0, 0 },
    { "workers",             K_LONG,    F(workers), 1, 1024, 0 },
    { "proxy_protocol",      K_PROXY,   F(proxy_versions), 0, 0, 0 },
    { "proxy_from",          K_STR,     F(proxy_from), 0, 0, 0 },
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= sizeof(((struct ss_settings *)0)->set_line) /
                       sizeof(int), "set_line too small");

static const struct type_def {
    const char *name;
    const struct ss_transport *transport;
    bool unix_family;
} types[] = {
    { "tcp", &ss_stream_transport, false },
    { "udp", &ss_dgram_transport, false },
    { "unix-stream", &ss_stream_transport, true },
    { "unix-dgram", &ss_dgram_transport, true },
};

static const struct ss_mode *const modes[] = {
    &ss_mode_sync, &ss_mode_thread, &ss_mode_fork, &ss_mode_event,
};

/* The names of the modes in bits, "threading, event", into buf. */
const char *
ss_mode_names(unsigned bits, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (!(bits & modes[i]->bit) || used >= size)
            continue;
        used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                 used ? ", " : "", modes[i]->name);
    }
    return buf;
}

void
ss_settings_defaults(struct ss_settings *s)
{
    memset(s, 0, sizeof *s);
    s->transport = &ss_stream_transport;
    s->type_name = "tcp";
    s->mode = &ss_mode_sync;
    s->port = -1;
    s->request_queue_size = 128;        /* Python: 5 */
    s->allow_reuse_address = true;      /* streams; datagrams: false */
    s->block_on_close = true;
    s->shutdown_timeout = 5;
    s->max_children = 40;
    s->max_threads = 1024;
    s->max_spare_threads = 64;
    s->thread_stack_size = 256 * 1024;
    s->coroutine_stack_size = 256 * 1024;
    s->max_packet_size = 65507;         /* Python: 8192 */
    s->workers = 1;
}

/*
 * Records an error: the last one is kept for ss_server_error, and every
 * one goes to the error callback (the daemon prints FILE:LINE: message).
 */
void
ss_server_fail(struct ss_server *srv, bool config, int line,
               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(srv->error, sizeof srv->error, fmt, ap);
    va_end(ap);
    srv->error_line = line;
    srv->error_config = config;
    if (srv->error_fn != NULL)
        srv->error_fn(srv->error_arg, line, srv->error);
}

static bool
is_unix(const struct ss_settings *s)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, s->type_name) == 0)
            return types[i].unix_family;
    return false;
}

static int
set_core_key(struct ss_server *srv, const struct key *k, const char *value,
             int line)
{
    struct ss_settings *s = &srv->set;
    char *field = (char *)s + k->off;
    long lv;

    switch (k->kind) {
    case K_TYPE:
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            if (strcmp(value, types[i].name) == 0) {
                s->transport = types[i].transport;
                s->type_name = types[i].name;
                return 0;
            }
        }
        ss_server_fail(srv, true, line, "invalid type \"%s\" (tcp, udp, "
                       "unix-stream, unix-dgram)", value);
        return -1;
    case K_MODE:
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            if (strcmp(value, modes[i]->name) == 0) {
                s->mode = modes[i];
                return 0;
            }
        }
        ss_server_fail(srv, true, line, "invalid mode \"%s\" (sync, "
                       "threading, forking, event)", value);
        return -1;
    case K_STR: {
        char *dup = strdup(value);

        if (dup == NULL) {
            ss_server_fail(srv, false, line, "%s", strerror(errno));
            return -1;
        }
        free(*(char **)(void *)field);
        *(char **)(void *)field = dup;
        return 0;
    }
    case K_PORT:
        if (!ss_parse_long(value, k->min, k->max, &lv))
            break;
        *(int *)(void *)field = (int)lv;
        return 0;
    case K_LONG:
        if (!ss_parse_long(value, k->min, k->max, (long *)(void *)field))
            break;
        return 0;
    case K_SIZE:
        if (!ss_parse_size(value, k->min, k->max, (long *)(void *)field))
            break;
        return 0;
    case K_BOOL:
        if (!ss_parse_bool(value, (bool *)(void *)field)) {
            ss_server_fail(srv, true, line, "invalid %s \"%s\" (true or "
                           "false, yes or no, on or off, 1 or 0)", k->name,
                           value);
            return -1;
        }
        return 0;
    case K_RATE:
        if (!ss_parse_double(value, (double)k->min, (double)k->max,
                             (double *)(void *)field)) {
            ss_server_fail(srv, true, line, "invalid %s \"%s\" (requests "
                           "per second from one address, 0 or none = no "
                           "limit)", k->name, value);
            return -1;
        }
        return 0;
    case K_PROXY:
        if (ss_proxy_versions_parse(value, (unsigned *)(void *)field) < 0) {
            ss_server_fail(srv, true, line, "invalid %s \"%s\" (off, v1, "
                           "v2, any)", k->name, value);
            return -1;
        }
        return 0;
    case K_SECONDS:
        if (!ss_parse_double(value, (double)k->min, (double)k->max,
                             (double *)(void *)field)) {
            ss_server_fail(srv, true, line, "invalid %s \"%s\" (seconds, "
                           "%ld-%ld, or none)", k->name, value, k->min,
                           k->max);
            return -1;
        }
        return 0;
    }
    ss_server_fail(srv, true, line, "invalid %s \"%s\" (%s%ld-%ld)", k->name,
                   value, k->kind == K_SIZE ? "bytes, with k/m/g, " : "",
                   k->min, k->max);
    return -1;
}

int
ss_server_set(struct ss_server *srv, const char *key, const char *value,
              int line)
{
    struct ss_opt *o;

    if (key == NULL || value == NULL) {
        ss_server_fail(srv, true, line, "missing key or value");
        return -1;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(key, keys[i].name) != 0)
            continue;
        if (srv->set.set_line[i] != 0) {
            if (srv->set.set_line[i] > 0)
                ss_server_fail(srv, true, line, "duplicate key \"%s\" "
                               "(first set on line %d)", key,
                               srv->set.set_line[i]);
            else
                ss_server_fail(srv, true, line, "duplicate key \"%s\" (set "
                               "before)", key);
            return -1;
        }
        if (set_core_key(srv, &keys[i], value, line) < 0)
            return -1;
        srv->set.set_line[i] = line > 0 ? line : -1;
        return 0;
    }
    for (size_t i = 0; i < srv->nopts; i++) {
        if (strcmp(srv->opts[i].key, key) == 0) {
            if (srv->opts[i].line > 0)
                ss_server_fail(srv, true, line, "duplicate key \"%s\" "
                               "(first set on line %d)", key,
                               srv->opts[i].line);
            else
                ss_server_fail(srv, true, line, "duplicate key \"%s\" (set "
                               "before)", key);
            return -1;
        }
    }
    o = realloc(srv->opts, (srv->nopts + 1) * sizeof *o);
    if (o == NULL)
        goto out_nomem;
    srv->opts = o;
    o = &srv->opts[srv->nopts];
    o->key = strdup(key);
    o->value = strdup(value);
    o->line = line;
    o->claimed = false;
    if (o->key == NULL || o->value == NULL) {
        free(o->key);
        free(o->value);
        goto out_nomem;
    }
    srv->nopts++;
    return 0;
out_nomem:
    ss_server_fail(srv, false, line, "%s", strerror(ENOMEM));
    return -1;
}

static int
core_key_line(const struct ss_server *srv, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(key, keys[i].name) == 0)
            return srv->set.set_line[i];
    return 0;
}

/* The line a key was set on (core or handler key), else the section's. */
int
ss_opt_line(const struct ss_server *srv, const char *key)
{
    int line = 0;

    if (key != NULL) {
        line = core_key_line(srv, key);
        for (size_t i = 0; line == 0 && i < srv->nopts; i++)
            if (strcmp(srv->opts[i].key, key) == 0)
                line = srv->opts[i].line;
    }
    return line > 0 ? line : srv->section_line;
}

/* "0660" and the like. */
static bool
parse_mode(const char *s, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 8);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > 07777)
        return false;
    *out = v;
    return true;
}

/* "user", "user:group", or numeric ids. */
static int
parse_owner(const char *s, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    char user[256], *colon;
    long id;

    snprintf(user, sizeof user, "%s", s);
    colon = strchr(user, ':');
    if (colon != NULL)
        *colon++ = '\0';
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (user[0] != '\0') {
        struct passwd *pw = getpwnam(user);

        if (pw != NULL) {
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
        } else if (ss_parse_long(user, 0, 0x7fffffff, &id)) {
            *uid = (uid_t)id;
        } else {
            snprintf(err, errlen, "no user \"%s\"", user);
            return -1;
        }
    }
    if (colon != NULL && *colon != '\0') {
        struct group *gr = getgrnam(colon);

        if (gr != NULL) {
            *gid = gr->gr_gid;
        } else if (ss_parse_long(colon, 0, 0x7fffffff, &id)) {
            *gid = (gid_t)id;
        } else {
            snprintf(err, errlen, "no group \"%s\"", colon);
            return -1;
        }
    }
    return 0;
}

/* allow, deny, socket_mode, socket_owner: parsed, and only where they
 * apply (addresses for IP types, the file for Unix types). */
static int
validate_access(struct ss_server *srv)
{
    struct ss_settings *s = &srv->set;
    char err[512];
    int rc = 0;
    static const char *const ip_keys[] = { "allow", "deny",
                                           "max_per_source", "rate_limit" };
    static const char *const unix_keys[] = { "socket_mode",
                                             "socket_owner" };
    const char *const *wrong = is_unix(s) ? ip_keys : unix_keys;
    size_t nwrong = is_unix(s) ? 4 : 2;

    for (size_t i = 0; i < nwrong; i++) {
        if (core_key_line(srv, wrong[i]) != 0) {
            ss_server_fail(srv, true, ss_opt_line(srv, wrong[i]), "\"%s\" "
                           "does not apply to type %s", wrong[i],
                           s->type_name);
            rc = -1;
        }
    }
    srv->unix_mode = -1;
    srv->unix_uid = (uid_t)-1;
    srv->unix_gid = (gid_t)-1;
    if (s->allow != NULL && ss_cidr_parse_list(s->allow, &srv->acl.allow,
                                               &srv->acl.nallow, err,
                                               sizeof err) < 0) {
        ss_server_fail(srv, true, ss_opt_line(srv, "allow"), "invalid allow: "
                       "%s", err);
        rc = -1;
    }
    if (s->deny != NULL && ss_cidr_parse_list(s->deny, &srv->acl.deny,
                                              &srv->acl.ndeny, err,
                                              sizeof err) < 0) {
        ss_server_fail(srv, true, ss_opt_line(srv, "deny"), "invalid deny: "
                       "%s", err);
        rc = -1;
    }
    if (s->socket_mode != NULL && !parse_mode(s->socket_mode,
                                              &srv->unix_mode)) {
        ss_server_fail(srv, true, ss_opt_line(srv, "socket_mode"), "invalid "
                       "socket_mode \"%s\" (octal, e.g. 0660)",
                       s->socket_mode);
        rc = -1;
    }
    if (s->socket_owner != NULL &&
        parse_owner(s->socket_owner, &srv->unix_uid, &srv->unix_gid, err,
                    sizeof err) < 0) {
        ss_server_fail(srv, true, ss_opt_line(srv, "socket_owner"), "invalid "
                       "socket_owner \"%s\": %s (user, user:group or ids)",
                       s->socket_owner, err);
        rc = -1;
    }
    return rc;
}

/*
 * proxy_protocol and proxy_from: stream types only; proxy_from for IP
 * types (on a Unix socket, the file's permissions say who may connect:
 * every connection carries a header).  A forked child reads its header,
 * and the per-source counts live in the parent, so forking takes no
 * limit that a header's address would have to drive.
 */
static int
validate_proxy(struct ss_server *srv)
{
    struct ss_settings *s = &srv->set;
    static const char *const limits[] = { "max_per_source", "rate_limit",
                                          "max_connections" };
    char err[512];
    int rc = 0;

    if (s->transport->kind != SS_STREAM) {
        static const char *const both[] = { "proxy_protocol", "proxy_from" };

        for (size_t i = 0; i < 2; i++) {
            if (core_key_line(srv, both[i]) != 0) {
                ss_server_fail(srv, true, ss_opt_line(srv, both[i]), "\"%s\" "
                               "does not apply to type %s (stream types "
                               "only)", both[i], s->type_name);
                rc = -1;
            }
        }
        return rc;
    }
    if (s->proxy_from != NULL && s->proxy_versions == 0) {
        ss_server_fail(srv, true, ss_opt_line(srv, "proxy_from"), "\"proxy_"
                       "from\" needs proxy_protocol = v1, v2 or any");
        rc = -1;
    }
    if (s->proxy_from != NULL && is_unix(s)) {
        ss_server_fail(srv, true, ss_opt_line(srv, "proxy_from"), "\"proxy_"
                       "from\" does not apply to type %s (every connection "
                       "must start with a PROXY header)", s->type_name);
        rc = -1;
    }
    if (s->proxy_versions == 0)
        return rc;
    if (!is_unix(s) && ss_proxy_from_parse(s->proxy_from, &srv->proxy.from,
                                           &srv->proxy.nfrom, err,
                                           sizeof err) < 0) {
        ss_server_fail(srv, true, ss_opt_line(srv, "proxy_from"), "invalid "
                       "proxy_from: %s", err);
        rc = -1;
    }
    if (!s->mode->own_process)
        return rc;
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        if (core_key_line(srv, limits[i]) != 0) {
            ss_server_fail(srv, true, ss_opt_line(srv, limits[i]), "\"%s\" "
                           "does not apply to mode = %s with "
                           "proxy_protocol (a child reads the header; the "
                           "counts are the parent's)", limits[i],
                           s->mode->name);
            rc = -1;
        }
    }
    return rc;
}

/* The handler against the section: its ABI, its type and its mode, each
 * error on the line of the key it concerns. */
static int
check_handler(struct ss_server *srv)
{
    const struct ss_handler *h = srv->handler;
    char err[SS_ERRLEN - 64];

    switch (ss_handler_check(h, srv->set.transport->kind,
                             srv->set.type_name, srv->set.mode, err,
                             sizeof err)) {
    case SS_CHECK_OK:
        return 0;
    case SS_CHECK_HANDLER:
        if (h->handle != NULL)      /* the ABI: name the handler */
            ss_server_fail(srv, true, srv->section_line, "handler \"%s\": "
                           "%s", h->name ? h->name : "?", err);
        else
            ss_server_fail(srv, true, srv->section_line, "%s", err);
        return -1;
    case SS_CHECK_TYPE:
        ss_server_fail(srv, true, ss_opt_line(srv, "type"), "%s", err);
        return -1;
    case SS_CHECK_MODE:
        ss_server_fail(srv, true, ss_opt_line(srv, "mode"), "%s", err);
        return -1;
    }
    return -1;
}

/*
 * Checks what no single key can: an address that fits the type, and no
 * handler key left unclaimed (after init).  Reports every problem.
 */
int
ss_settings_validate(struct ss_server *srv)
{
    struct ss_settings *s = &srv->set;
    int rc = 0;

    if (is_unix(s)) {
        if (s->path == NULL) {
            ss_server_fail(srv, true, srv->section_line, "[%s]: type %s "
                           "needs \"path\"", srv->name, s->type_name);
            rc = -1;
        }
        if (s->host != NULL || s->port >= 0) {
            ss_server_fail(srv, true, ss_opt_line(srv, s->host ? "host"
                           : "port"), "\"%s\" does not apply to type %s "
                           "(use \"path\")", s->host ? "host" : "port",
                           s->type_name);
            rc = -1;
        }
    } else {
        if (s->port < 0) {
            ss_server_fail(srv, true, srv->section_line, "[%s]: type %s "
                           "needs \"port\" (0 = any free port)", srv->name,
                           s->type_name);
            rc = -1;
        }
        if (s->host != NULL) {
            struct addrinfo *res;
            char err[256];

            if (ss_addr_resolve(s->host, 0, SOCK_STREAM, &res, err,
                                sizeof err) == 0) {
                freeaddrinfo(res);
            } else {
                ss_server_fail(srv, true, ss_opt_line(srv, "host"), "invalid "
                               "host \"%s\": %s", s->host, err);
                rc = -1;
            }
        }
        if (s->path != NULL) {
            ss_server_fail(srv, true, ss_opt_line(srv, "path"), "\"path\" "
                           "does not apply to type %s (use \"host\" and "
                           "\"port\")", s->type_name);
            rc = -1;
        }
    }
    if (validate_access(srv) < 0)
        rc = -1;
    if (validate_proxy(srv) < 0)
        rc = -1;
    if (s->workers > 1 && !is_unix(s)) {
        if (core_key_line(srv, "allow_reuse_port") != 0 &&
            !s->allow_reuse_port) {
            ss_server_fail(srv, true, ss_opt_line(srv, "workers"), "workers "
                           "= %ld needs allow_reuse_port (each worker has "
                           "its own socket on the port)", s->workers);
            rc = -1;
        }
        s->allow_reuse_port = true;
    }
    if (core_key_line(srv, "allow_reuse_address") == 0)
        s->allow_reuse_address = s->transport->kind == SS_STREAM;
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].modes != 0 && !(keys[i].modes & s->mode->bit) &&
            srv->set.set_line[i] != 0) {
            ss_server_fail(srv, true, ss_opt_line(srv, keys[i].name), "\"%s\" "
                           "does not apply to mode = %s", keys[i].name,
                           s->mode->name);
            rc = -1;
        }
    }
    if (s->mode->validate != NULL && s->mode->validate(srv) < 0)
        rc = -1;
    if (check_handler(srv) < 0)
        rc = -1;
    return rc;
}

/* ---- the handler's options ------------------------------------------ */

static struct ss_opt *
find_opt(struct ss_server *srv, const char *key)
{
    for (size_t i = 0; i < srv->nopts; i++) {
        if (strcmp(srv->opts[i].key, key) == 0) {
            srv->opts[i].claimed = true;
            return &srv->opts[i];
        }
    }
    return NULL;
}

const char *
ss_option(struct ss_server *srv, const char *key)
{
    struct ss_opt *o = find_opt(srv, key);

    return o ? o->value : NULL;
}

int
ss_option_long(struct ss_server *srv, const char *key, long def, long min,
               long max, long *out)
{
    struct ss_opt *o = find_opt(srv, key);

    if (o == NULL) {
        *out = def;
        return 0;
    }
    if (ss_parse_long(o->value, min, max, out))
        return 0;
    ss_server_fail(srv, true, o->line, "invalid %s \"%s\" (%ld-%ld)", key,
                   o->value, min, max);
    return -1;
}

int
ss_option_double(struct ss_server *srv, const char *key, double def,
                 double min, double max, double *out)
{
    struct ss_opt *o = find_opt(srv, key);

    if (o == NULL) {
        *out = def;
        return 0;
    }
    if (ss_parse_double(o->value, min, max, out))
        return 0;
    ss_server_fail(srv, true, o->line, "invalid %s \"%s\" (%g-%g)", key,
                   o->value, min, max);
    return -1;
}

int
ss_option_bool(struct ss_server *srv, const char *key, bool def, bool *out)
{
    struct ss_opt *o = find_opt(srv, key);

    if (o == NULL) {
        *out = def;
        return 0;
    }
    if (ss_parse_bool(o->value, out))
        return 0;
    ss_server_fail(srv, true, o->line, "invalid %s \"%s\" (true or false, "
                   "yes or no, on or off, 1 or 0)", key, o->value);
    return -1;
}

const char *
ss_option_each(struct ss_server *srv, const char *prefix, size_t *iter,
               const char **value)
{
    size_t plen = strlen(prefix);

    for (; *iter < srv->nopts; (*iter)++) {
        struct ss_opt *o = &srv->opts[*iter];

        if (strncmp(o->key, prefix, plen) == 0) {
            o->claimed = true;
            (*iter)++;
            if (value != NULL)
                *value = o->value;
            return o->key;
        }
    }
    return NULL;
}

const char *
ss_server_config_dir(const struct ss_server *srv)
{
    return srv->config_dir;
}

int
ss_server_set_config_dir(struct ss_server *srv, const char *dir)
{
    char *copy = dir != NULL ? strdup(dir) : NULL;

    if (dir != NULL && copy == NULL)
        return -1;
    free(srv->config_dir);
    srv->config_dir = copy;
    return 0;
}

int
ss_server_errorf(struct ss_server *srv, const char *key, const char *fmt, ...)
{
    char msg[SS_ERRLEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ss_server_fail(srv, true, ss_opt_line(srv, key), "%s", msg);
    return -1;
}

/* The name of the core's i-th key, NULL past the last (sockserv
 * --list-keys: the manual's test checks each is documented). */
const char *
ss_settings_key_name(size_t i)
{
    return i < NKEYS ? keys[i].name : NULL;
}
