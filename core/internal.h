/* internal.h: what the core's files share; not installed, not for plugins. */
#ifndef SS_INTERNAL_H
#define SS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
    long max_packet_size;
    long max_connections, max_per_source;
    long workers;               /* processes, each with its own socket */
    double rate_limit;          /* new requests per second per source */
    char *allow, *deny;
    char *socket_mode, *socket_owner;
    int set_line[32];           /* line each core key was set on, 0 unset */
};

/* A request-running mode: sync, threading, forking (smtpd-style table). */
struct ss_mode {
    const char *name;
    /* Runs the request or hands it off; owns req from here on. */
    void (*process)(struct ss_server *, struct ss_request *);
    /* Waits for running requests (close), at most until the deadline. */
    void (*wait)(struct ss_server *, double deadline);
    /* Ends what still runs: stops idle threads, signals children. */
    void (*stop)(struct ss_server *);
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

    /* input: a stream's read-ahead (readline) or a datagram's packet */
    char *rbuf;
    size_t rpos, rlen, rcap;
    bool rbuf_owned;
    atomic_bool rd_shut;        /* ss_request_close: reads end */

    /* output: a datagram's reply */
    char *wbuf;
    size_t wlen, wcap;

    /* cross-thread sends to a stream (ss_send), under lock */
    pthread_mutex_t lock;
    pthread_cond_t drained;
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

struct ss_worker;

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

    /* what runs: requests in this process, threads, children */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* active, nthreads or stop changed */
    long active;                /* requests in flight (threads, children) */
    struct ss_request *running; /* requests running in this process */
    long nthreads, nidle;
    struct ss_worker *idle;
    bool stopping;              /* threads: exit when idle */
    long nconns;                /* admitted connections open */
    struct {
        struct ss_cidr *allow, *deny;
        size_t nallow, ndeny;
    } acl;
    struct ss_source **sources; /* per-source counts and rate buckets */
    size_t nbuckets, nsources;
    double refuse_logged;       /* when a refusal was last logged */
    unsigned long refuse_quiet; /* refusals not logged since */
    bool emfile_logged;         /* this accept-error episode was logged */
    long unix_mode;             /* socket_mode, -1: leave it */
    uid_t unix_uid;             /* socket_owner, -1: leave it */
    gid_t unix_gid;

    /* the background flusher of ss_send backlogs */
    pthread_mutex_t flush_lock;
    int epfd;
    bool flusher_started;
    pthread_t flusher;
    struct ss_request *flush_gc; /* ended while armed, under flush_lock */

    struct ss_children *children; /* forking: the children, mode_fork.c */
    /* an ended request kept for the next: its last release may be in
     * any thread (ss_request_release is public), so exchanged atomically */
    _Atomic(struct ss_request *) spare;
};

/* settings.c */
void ss_settings_defaults(struct ss_settings *);
int ss_settings_validate(struct ss_server *);
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

/* mode_fork.c */
void ss_fork_signal(struct ss_server *, int how);
void ss_fork_collect(struct ss_server *);
int ss_fork_watch_fd(struct ss_server *, int *max_wait_ms);
size_t ss_fork_count(struct ss_server *);
bool ss_fork_wait_below(struct ss_server *, long limit, double deadline,
                        bool wake);
void ss_fork_free(struct ss_server *);

/* addr.c */
int ss_addr_resolve(const char *host, int port, int socktype,
                    struct addrinfo **res, char *err, size_t errlen);
void ss_addr_format(const struct sockaddr *, socklen_t, char *, size_t);
int ss_addr_unix(const char *path, struct sockaddr_un *, socklen_t *);

/* util.c */
int ss_write_all(int fd, const void *buf, size_t len);
double ss_now(void);
int ss_ms_until(double deadline);
char *ss_strdup(const char *);
int ss_set_nonblock(int fd, bool on);
bool ss_parse_long(const char *, long min, long max, long *out);
bool ss_parse_double(const char *, double min, double max, double *out);
bool ss_parse_bool(const char *, bool *out);
bool ss_parse_size(const char *, long min, long max, long *out);
void ss_fd_track(int fd);
void ss_fd_untrack(int fd);
void ss_fd_close_tracked(int keep1, int keep2);

/* server.c */
void ss_server_track(struct ss_server *, struct ss_request *);
void ss_server_untrack(struct ss_server *, struct ss_request *);
void ss_server_slot_release(struct ss_server *, long n);

void ss_server_wait_idle(struct ss_server *, double deadline);
void ss_server_kill_all(struct ss_server *);
int ss_cond_wait_until(pthread_cond_t *, pthread_mutex_t *, double deadline);

/* request.c */
struct ss_request *ss_request_new(struct ss_server *, int fd,
                                  const struct sockaddr *, socklen_t);
void ss_request_run(struct ss_request *);
void ss_request_handle(struct ss_request *);
void ss_request_end(struct ss_request *);
void ss_request_flush_stop(struct ss_server *);
int ss_stream_write_owned(struct ss_request *, const void *, size_t);
int ss_stream_flush(struct ss_request *, double wait);
int ss_dgram_own_packet(struct ss_request *);

/* the transports and modes */
extern const struct ss_transport ss_stream_transport, ss_dgram_transport;
extern const struct ss_mode ss_mode_sync, ss_mode_thread, ss_mode_fork;

#endif
