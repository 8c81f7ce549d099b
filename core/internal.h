/* internal.h: what the core's files share; not installed, not for plugins. */
#ifndef SS_INTERNAL_H
#define SS_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "sockserv.h"

#define SS_ADDRSTRLEN 128       /* "[v6%scope]:port" or a Unix path */
#define SS_ERRLEN 512

struct ss_mode;
struct ss_transport;
struct ss_request;

/* One key = value the core was given but does not know: the handler's. */
struct ss_opt {
    char *key, *value;
    int line;
    bool claimed;
};

/* An allow/deny entry: an address and its prefix length. */
struct ss_cidr {
    int family;                 /* AF_INET (IPv4-mapped too) or AF_INET6 */
    unsigned char addr[16];
    int bits;
};

struct ss_source;

/* The socketserver attributes; one table in settings.c fills it. */
struct ss_settings {
    const struct ss_transport *transport;
    const struct ss_mode *mode;
    const char *type_name;
    char *host, *path;
    int port;                   /* -1: unset */
    long request_queue_size;
    bool allow_reuse_address, allow_reuse_port;
    bool daemon_threads, block_on_close;
    double timeout;             /* seconds of silence, 0 = none */
    double shutdown_timeout;
    long max_children, max_threads, max_spare_threads;
    long thread_stack_size;
    long coroutine_stack_size;  /* event: the most a request's stack holds */
    long max_packet_size;
    long max_connections, max_per_source;
    long workers;               /* processes, each with its own socket */
    double rate_limit;          /* new requests per second per source */
    char *allow, *deny;
    char *socket_mode, *socket_owner;
    int set_line[32];           /* line each core key was set on, 0 unset */
    unsigned proxy_versions;    /* proxy_protocol: SS_PROXY_V1|V2, 0 off */
    char *proxy_from;
};

/*
 * A request-running mode: sync, threading, forking, event.  Everything a
 * mode knows lives in its own file, behind this table and srv->mode_state;
 * the rest of the core asks the mode, never compares against one.
 */
struct ss_mode {
    const char *name;
    unsigned bit;               /* SS_MODE_SYNC, ... (struct ss_handler) */
    /* Its I/O: a non-blocking mode's requests wait through wait_io and
     * keep their own deadlines; the others block in the kernel, with
     * SO_RCVTIMEO/SO_SNDTIMEO as the server's timeout. */
    bool nonblocking;
    /* Served from the daemon's main thread when it is the only server (a
     * process that forks per request forks fastest with no other thread;
     * a loop needs no second thread). */
    bool solo;
    /* Checks the mode's own keys (after the settings), 0 or -1. */
    int  (*validate)(struct ss_server *);
    /* How many requests may run at once (the open-file estimate). */
    long (*max_requests)(const struct ss_server *);
    /* One turn of the serve loop: a request taken (1), none (0), or
     * shutdown asked (-1); waits at most wait_ms (-1: no limit).  NULL:
     * the core's loop (server.c), with wait_slot and wait_ready below. */
    int  (*step)(struct ss_server *, int wait_ms);
    /* Waits while the mode is at its limit; false when shutdown came. */
    bool (*wait_slot)(struct ss_server *);
    /* Waits for the socket (when watch) or a wakeup, at most timeout_ms.
     * NULL: ss_server_wait_ready. */
    int  (*wait_ready)(struct ss_server *, int timeout_ms, bool watch);
    /* A new connection's descriptor, before its request is made. */
    void (*conn_opened)(struct ss_server *, int fd);
    /* A request's descriptor, just before it is closed (NULL: nothing to
     * undo).  Called only for a request the mode has taken (mode_data). */
    void (*conn_closing)(struct ss_request *);
    /* Runs the request or hands it off; owns req from here on. */
    void (*process)(struct ss_server *, struct ss_request *);
    /* A request waits until fd has events (POLLIN, POLLOUT) or the
     * deadline (monotonic seconds, < 0: none): 1 ready, 0 timed out, -1
     * error.  The caller found fd not ready (EAGAIN, or a look), so a
     * non-blocking mode may wait for the next edge.  The one way a request waits for I/O (ss_request_wait).
     * NULL: poll(2) in the request's thread. */
    int  (*wait_io)(struct ss_request *, int fd, short events,
                    double deadline);
    /* Runs fn(arg), which may block, without holding up the mode's other
     * requests (ss_run_blocking).  NULL: fn runs in the request's own
     * thread, which blocks no other request. */
    int  (*run_blocking)(struct ss_request *, void (*fn)(void *), void *);
    /* Cuts what runs beyond this process: how 0 asks, how 1 kills. */
    void (*cut)(struct ss_server *, int how);
    /* Waits for running requests (close), at most until the deadline. */
    void (*wait)(struct ss_server *, double deadline);
    /* Ends what still runs: stops idle threads.  Returns true while
     * something of the mode's still runs (threads left to exit).  NULL:
     * nothing lingers. */
    bool (*stop)(struct ss_server *);
    /* Frees srv->mode_state. */
    void (*free)(struct ss_server *);
    /* A request runs in a process of its own: what it counts in memory
     * (access.c's per-source counts) never reaches the server's. */
    bool own_process;
};

/* A transport: stream (tcp, unix-stream) or datagram (udp, unix-dgram). */
struct ss_transport {
    unsigned kind;
    int  (*bind)(struct ss_server *, const struct sockaddr *, socklen_t);
    /* Next request, or NULL with errno (EAGAIN: none ready). */
    struct ss_request *(*get_request)(struct ss_server *);
    ssize_t (*read)(struct ss_request *, void *, size_t);
    int  (*write)(struct ss_request *, const void *, size_t);
    int  (*poll)(struct ss_request *, int timeout_ms);
    void (*finish)(struct ss_request *);    /* reply / flush */
};

struct ss_chunk {
    struct ss_chunk *next;
    size_t len, off;
    char data[];
};

struct ss_request {
    struct ss_server *srv;
    int fd;                     /* stream: the connection; dgram: -1 */
    atomic_int refs;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char peer[SS_ADDRSTRLEN];   /* ss_request_peer, made on first use */
    atomic_bool peer_ready;
    void *data;
    struct ss_request *prev, *next;     /* the server's running list */
    bool listed;
    bool admitted;              /* counted by ss_access_admit */
    bool counted;               /* in srv->stats->active */

    /* input: a stream's read-ahead (readline) or a datagram's packet */
    char *rbuf;
    size_t rpos, rlen, rcap;
    bool rbuf_owned;
    atomic_bool rd_shut;        /* ss_request_close: reads end */
    bool rd_empty;              /* non-blocking: the last read emptied it */
    bool rd_hup;                /* non-blocking: the peer's end has come */

    /* output: a datagram's reply */
    char *wbuf;
    size_t wlen, wcap;

    void *mode_data;            /* the mode's own, per request */

    /* cross-thread sends to a stream (ss_send), under lock (sendq.c) */
    pthread_mutex_t lock;
    struct ss_chunk *qhead, *qtail;
    size_t queued;
    bool closed;                /* fd closed: nothing more is sent */
    bool dead;                  /* write failed or backlog overflowed */
    bool owner_writing;         /* the handler's own ss_write is running */
    bool armed;                 /* registered with the flusher */
    bool epoll_added;
    bool closing;               /* ss_request_close: no more writes */
    struct ss_request *gc_next; /* ended while armed: the flusher frees */
};

struct ss_sendq;

struct ss_server {
    char *name;
    const struct ss_handler *handler;
    void *state;
    struct ss_settings set;
    int section_line;

    struct ss_opt *opts;        /* the handler's keys */
    size_t nopts;

    char error[SS_ERRLEN];
    int error_line;
    bool error_config;
    void (*error_fn)(void *, int, const char *);
    void *error_arg;

    ss_verify_fn verify;
    void *verify_arg;
    ss_error_fn on_error;
    void *on_error_arg;
    ss_service_fn service;
    void *service_arg;

    bool inited, bound, closed, fini_done;
    int fd;                     /* listening or datagram socket */
    int wake[2];                /* shutdown pipe */
    atomic_bool stop;
    char address[SS_ADDRSTRLEN];
    struct sockaddr_storage bound_addr;
    socklen_t bound_len;
    bool worker;                /* a forked worker: the file is the parent's */
    char *unix_path;            /* to unlink at close */
    dev_t unix_dev;
    ino_t unix_ino;
    char *pkt;                  /* datagram receive buffer */
    size_t max_backlog;
    bool exact_reads;           /* ss_server_set_exact_reads */

    /* what runs: requests in this process, threads, children */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* active, a mode's count or stop changed */
    long active;                /* requests in flight (threads, children) */
    struct ss_request *running; /* requests running in this process */
    void *mode_state;           /* the mode's own (pool, children, loop) */
    long nconns;                /* admitted connections open */
    struct {
        struct ss_cidr *allow, *deny;
        size_t nallow, ndeny;
    } acl;
    struct ss_source **sources; /* per-source counts and rate buckets */
    size_t nbuckets, nsources;
    struct ss_refusals *refusals; /* access.c: the refusal log's state */
    bool emfile_logged;         /* this accept-error episode was logged */
    long unix_mode;             /* socket_mode, -1: leave it */
    uid_t unix_uid;             /* socket_owner, -1: leave it */
    gid_t unix_gid;

    /* the flusher of ss_send backlogs, made by the first that needs it */
    _Atomic(struct ss_sendq *) sendq;
    /* an ended request kept for the next: its last release may be in
     * any thread (ss_request_release is public), so exchanged atomically */
    _Atomic(struct ss_request *) spare;
    struct ss_server *lingering_next; /* freed while requests ran */

    /* counters (stats.c), in memory every process of the server shares */
    struct ss_stats *stats;
    _Atomic double bound_at;    /* monotonic, for uptime; 0: not yet */
    struct ss_server *reg_prev, *reg_next;  /* ss_servers_foreach */
    bool registered;
    struct {                    /* proxy_from, parsed */
        struct ss_cidr *from;
        size_t nfrom;
    } proxy;
    char *config_dir;           /* ss_server_config_dir */
};

/*
 * A server's counters, in a MAP_SHARED anonymous page mapped when the
 * server is made, before any fork: a forked child's writes to it are no
 * copy-on-write fault and reach the parent, so children (and workers)
 * count into the same place.  Lock-free atomics, updated relaxed: each is
 * a count on its own, read without ordering.
 */
struct ss_stats {
    atomic_ullong accepted, bytes_in, bytes_out;
    atomic_llong active;
    atomic_ullong refused[8];
};

/* stats.c */
int ss_stats_new(struct ss_server *);
void ss_stats_free(struct ss_server *);
void ss_stats_register(struct ss_server *);
void ss_stats_unregister(struct ss_server *);
void ss_stats_refused(struct ss_server *, enum ss_refusal);
void ss_stats_admitted(struct ss_server *, struct ss_request *);
void ss_stats_ended(struct ss_server *);

/* Adds n to a counter: relaxed, as nothing is ordered by it. */
static inline void
ss_stats_add(atomic_ullong *c, unsigned long long n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* handler.c */
enum ss_check { SS_CHECK_OK, SS_CHECK_HANDLER, SS_CHECK_TYPE, SS_CHECK_MODE };
enum ss_check ss_handler_check(const struct ss_handler *, unsigned kind,
                               const char *type_name, const struct ss_mode *,
                               char *err, size_t errlen);

/* settings.c */
const char *ss_mode_names(unsigned bits, char *buf, size_t size);
void ss_settings_defaults(struct ss_settings *);
int ss_settings_validate(struct ss_server *);
const char *ss_settings_key_name(size_t i);
void ss_server_fail(struct ss_server *, bool config, int line,
                    const char *fmt, ...) SS_PRINTF(4, 5);
int ss_opt_line(const struct ss_server *, const char *key);

/* access.c */
int ss_cidr_parse_list(const char *, struct ss_cidr **, size_t *, char *,
                       size_t);
bool ss_access_admit(struct ss_server *, struct ss_request *);
void ss_access_release(struct ss_server *, const struct sockaddr *,
                       socklen_t);
void ss_access_free(struct ss_server *);
void ss_access_log_refusal(struct ss_server *, const char *peer,
                           const char *why);
bool ss_cidr_list_match(const struct ss_cidr *, size_t,
                        const struct sockaddr *, socklen_t);
bool ss_access_permits(const struct ss_server *, const struct sockaddr *,
                       socklen_t, const char **why);
bool ss_addr_same_host(const struct sockaddr *, socklen_t,
                       const struct sockaddr *, socklen_t);

/* addr.c */
int ss_addr_resolve(const char *host, int port, int socktype,
                    struct addrinfo **res, char *err, size_t errlen);
void ss_addr_format(const struct sockaddr *, socklen_t, char *, size_t);
int ss_addr_unix(const char *path, struct sockaddr_un *, socklen_t *);

/* log.c: where lines go (the daemon chooses; tests look at the lines) */
enum ss_log_sink { SS_SINK_STDERR, SS_SINK_JOURNAL, SS_SINK_FILE,
                   SS_SINK_SYSLOG };
/* path, appending; take_stderr: fd 2 too (the daemon's own).  0 or -1. */
int ss_log_to_file(const char *path, bool take_stderr);
/* Opens the file again (after a rotation).  Async-signal-safe.  0 or -1
 * (EBADF: the log is not a file). */
int ss_log_reopen(void);
/* Datagrams to the syslog socket at path (facility daemon).  -1 if it
 * cannot connect now: each line tries again, and goes to stderr if not. */
int ss_log_to_syslog(const char *socket_path);
/* stderr, with <N> prefixes when it is $JOURNAL_STREAM (the default). */
void ss_log_to_stderr(void);
/* Logs a then b (b may be NULL).  Async-signal-safe (no callback set). */
void ss_log_str(enum ss_log_level, const char *a, const char *b);
/* The line as the sink would write it, NUL-terminated, no newline. */
size_t ss_log_format(enum ss_log_sink, enum ss_log_level, const char *msg,
                     char *out, size_t size);
/* "2026-12-05T09:12:03.417Z" (iso) or "Dec  5 09:12:03" (syslog's). */
size_t ss_log_format_time(char *out, size_t size, time_t sec, long nsec,
                          bool iso);
/* "DEV:INO" ($JOURNAL_STREAM) into its two numbers. */
bool ss_log_parse_journal_stream(const char *, unsigned long long *dev,
                                 unsigned long long *ino);

/* util.c */
int ss_write_all(int fd, const void *buf, size_t len);
double ss_now(void);
int ss_ms_until(double deadline);
bool ss_parse_long(const char *, long min, long max, long *out);
bool ss_parse_double(const char *, double min, double max, double *out);
bool ss_parse_bool(const char *, bool *out);
bool ss_parse_size(const char *, long min, long max, long *out);
void ss_fd_track(int fd);
void ss_fd_untrack(int fd);
void ss_fd_close_tracked(int keep1, int keep2);
void ss_signals_hold(sigset_t *old);

/* server.c */
void ss_server_track(struct ss_server *, struct ss_request *);
void ss_server_untrack(struct ss_server *, struct ss_request *);
void ss_server_wait_idle(struct ss_server *, double deadline);
bool ss_server_busy(struct ss_server *);
bool ss_server_solo(const struct ss_server *);
int ss_server_fd(const struct ss_server *);
void ss_server_leave_socket_file(struct ss_server *);
void ss_server_resume(struct ss_server *);
void ss_server_kill_all(struct ss_server *);
int ss_server_take(struct ss_server *);
int ss_server_wait_ready(struct ss_server *, int timeout_ms, bool watch);
int ss_server_poll(struct ss_server *, int timeout_ms, bool watch,
                   int extra_fd);
void ss_server_drain_wake(struct ss_server *);
int ss_cond_wait_until(pthread_cond_t *, pthread_mutex_t *, double deadline);
int ss_poll_fd(int fd, short events, double deadline);

/* request.c */
struct ss_request *ss_request_new(struct ss_server *, int fd,
                                  const struct sockaddr *, socklen_t);
void ss_request_run(struct ss_request *);
void ss_request_handle(struct ss_request *);
void ss_request_end(struct ss_request *);
int ss_request_wait(struct ss_request *, short events, double deadline);
char *ss_vformat(char *small, size_t size, size_t *len, const char *fmt,
                 va_list ap);
double ss_request_deadline(const struct ss_request *);
int ss_dgram_own_packet(struct ss_request *);
bool ss_request_admit(struct ss_request *);

/* sendq.c: the bounded cross-thread send queue and its flusher thread */
void ss_sendq_kill_locked(struct ss_request *);
int ss_stream_write_owned(struct ss_request *, const void *, size_t);
int ss_stream_flush(struct ss_request *, double wait);
void ss_sendq_detach(struct ss_request *);
void ss_sendq_drop(struct ss_request *);
void ss_sendq_stop(struct ss_server *);
void ss_sendq_free(struct ss_server *);
void ss_sendq_forget(struct ss_server *);

/* the transports and modes */
extern const struct ss_transport ss_stream_transport, ss_dgram_transport;
extern const struct ss_mode ss_mode_sync, ss_mode_thread, ss_mode_fork,
                           ss_mode_event;

/* spawn.c: a server's running programs get SIGTERM (how 0) or SIGKILL
 * (how 1); on_term: a forking child's SIGTERM, async-signal-safe. */
void ss_spawn_cut(struct ss_server *, int how);
void ss_spawn_on_term(void);

/* the shutdown grace: after shutdown_timeout, the read sides of running
 * connections are shut; this long after, both sides and SIGKILL */
#define SS_CUT_GRACE 2.0

#endif
