/* stats.c: a server's counters (ss_server_stats) and the registry of the
 * process's servers (ss_servers_foreach).
 *
 * The counters live in a MAP_SHARED anonymous mapping made with the
 * server, so every process that serves it counts into one place without
 * a message or a lock: a forking server's children add their bytes, a
 * `workers = N` server's workers their requests, and whoever reads (the
 * daemon's control socket, a metrics handler) sees the sum.  A shared page
 * is also no copy-on-write page: neither the forking parent nor its
 * children pay a fault for writing it, which a counter in the server's
 * own (private) memory would cost after each fork.  Updates are relaxed
 * atomic adds: one locked instruction each, no ordering.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
               "counters shared between processes must be lock-free");
_Static_assert(SS_REFUSED_REASONS <= 8, "struct ss_server_stats.refused");

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ss_server *registry_head, *registry_tail;

int
ss_stats_new(struct ss_server *srv)
{
    void *p = mmap(NULL, sizeof(struct ss_stats), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    srv->stats = p;             /* zero-filled: every count starts at 0 */
    return 0;
}

void
ss_stats_free(struct ss_server *srv)
{
    if (srv->stats != NULL)
        munmap(srv->stats, sizeof(struct ss_stats));
    srv->stats = NULL;
}

/* Bound: listed for ss_servers_foreach, uptime starts. */
void
ss_stats_register(struct ss_server *srv)
{
    pthread_mutex_lock(&registry_lock);
    if (!srv->registered) {
        atomic_store_explicit(&srv->bound_at, ss_now(),
                              memory_order_relaxed);
        srv->reg_next = NULL;
        srv->reg_prev = registry_tail;
        if (registry_tail != NULL)
            registry_tail->reg_next = srv;
        else
            registry_head = srv;
        registry_tail = srv;
        srv->registered = true;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* Closing or freed: off the list (waits for a running foreach). */
void
ss_stats_unregister(struct ss_server *srv)
{
    pthread_mutex_lock(&registry_lock);
    if (srv->registered) {
        if (srv->reg_prev != NULL)
            srv->reg_prev->reg_next = srv->reg_next;
        else
            registry_head = srv->reg_next;
        if (srv->reg_next != NULL)
            srv->reg_next->reg_prev = srv->reg_prev;
        else
            registry_tail = srv->reg_prev;
        srv->reg_prev = srv->reg_next = NULL;
        srv->registered = false;
    }
    pthread_mutex_unlock(&registry_lock);
}

void
ss_servers_foreach(void (*fn)(struct ss_server *, void *), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (struct ss_server *s = registry_head; s != NULL; s = s->reg_next)
        fn(s, arg);
    pthread_mutex_unlock(&registry_lock);
}

void
ss_stats_refused(struct ss_server *srv, enum ss_refusal why)
{
    ss_stats_add(&srv->stats->refused[why], 1);
}

/*
 * A request got past admission: counted, and active until it ends
 * (ss_request_end, or the forking parent's reaping: req->counted moves
 * with it).  A datagram's bytes came with it (a stream has none yet).
 * A proxied server's admission comes later, in the request's own run
 * (in a forking child, whose counts the parent never sees): it counts here
 * what its trusted proxies bring, and a later refusal under refused too.
 */
void
ss_stats_admitted(struct ss_server *srv, struct ss_request *req)
{
    struct ss_stats *st = srv->stats;

    ss_stats_add(&st->accepted, 1);
    atomic_fetch_add_explicit(&st->active, 1, memory_order_relaxed);
    if (req->rlen > 0)
        ss_stats_add(&st->bytes_in, req->rlen);
    req->counted = true;
}

/* An admitted request has ended. */
void
ss_stats_ended(struct ss_server *srv)
{
    atomic_fetch_sub_explicit(&srv->stats->active, 1, memory_order_relaxed);
}

int
ss_server_stats(const struct ss_server *srv, struct ss_server_stats *out,
                size_t size)
{
    struct ss_server_stats s;
    const struct ss_stats *st = srv->stats;
    double bound_at;

    if (size < offsetof(struct ss_server_stats, uptime) + sizeof(double)) {
        errno = EINVAL;
        return -1;
    }
    memset(&s, 0, sizeof s);
    s.accepted = atomic_load_explicit(&st->accepted, memory_order_relaxed);
    for (int i = 0; i < SS_REFUSED_REASONS; i++)
        s.refused[i] = atomic_load_explicit(&st->refused[i],
                                            memory_order_relaxed);
    s.bytes_in = atomic_load_explicit(&st->bytes_in, memory_order_relaxed);
    s.bytes_out = atomic_load_explicit(&st->bytes_out, memory_order_relaxed);
    s.active = atomic_load_explicit(&st->active, memory_order_relaxed);
    bound_at = atomic_load_explicit(&srv->bound_at, memory_order_relaxed);
    if (bound_at > 0)
        s.uptime = ss_now() - bound_at;
    memcpy(out, &s, size < sizeof s ? size : sizeof s);
    return 0;
}

const char *
ss_refusal_name(enum ss_refusal why)
{
    static const char *const names[SS_REFUSED_REASONS] = {
        "acl", "max_connections", "max_per_source", "rate_limit",
        "verify_request",
    };

    return (unsigned)why < SS_REFUSED_REASONS ? names[why] : NULL;
}
