/* sockserv.h: the public API of libsockserv and the handler plugin ABI. */
#ifndef SOCKSERV_H
#define SOCKSERV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define SOCKSERV_ABI 2          /* bump on any incompatible change */
#define SOCKSERV_VERSION "0.2.0"

#define SS_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* The socket kinds a handler supports (struct ss_handler.kinds). */
enum { SS_STREAM = 1, SS_DGRAM = 2 };

/* The modes a handler runs in (struct ss_handler.modes, ABI 2). */
enum {
    SS_MODE_SYNC = 1, SS_MODE_THREADING = 2, SS_MODE_FORKING = 4,
    SS_MODE_EVENT = 8,
};

/* Log levels, lowest first. */
enum ss_log_level { SS_LOG_DEBUG, SS_LOG_INFO, SS_LOG_WARNING, SS_LOG_ERROR };

struct ss_server;               /* opaque: one listening server */
struct ss_request;              /* opaque: one connection or one datagram */

/*
 * The handler: one const struct, exported by a plugin as `sockserv_handler`
 * (write `SOCKSERV_HANDLER = { ... };`) or passed directly by a program that
 * embeds the library.  Fields are only ever appended.  NULL hooks do nothing.
 *
 * init:   once per server, before it serves.  Reads the handler's own options
 *         (ss_option*), builds shared state into *state (ss_server_state()
 *         and ss_request_state() return it).  Returns 0, or -1 to refuse:
 *         after ss_server_errorf() that is a configuration error; without it,
 *         a runtime failure.
 * fini:   once per server, after every request has ended.
 * setup, handle, finish: per request, as Python's BaseRequestHandler.
 *         setup or handle returning -1 ends the request early (handle_error
 *         is then called); finish always runs when setup succeeded.
 *
 * ABI 2 appends size (write sizeof(struct ss_handler); 0 is taken as the
 * ABI 2 struct's size) and modes (SS_MODE_* bits; 0: sync, threading and
 * forking).  A section whose mode is not listed is a configuration error.
 * A plugin built for ABI 1 still loads, for every mode but event: in
 * event mode every request of a server runs as a coroutine on one thread,
 * and each ss_read, ss_write, ss_poll... suspends it instead of blocking,
 * so its handler must not block the thread any other way (and must not
 * give another request a pointer into its own stack).
 */
struct ss_handler {
    int abi;                    /* SOCKSERV_ABI, always first */
    const char *name, *description;
    unsigned kinds;             /* SS_STREAM | SS_DGRAM */
    int  (*init)(struct ss_server *, void **state);
    void (*fini)(void *state);
    int  (*setup)(struct ss_request *);
    int  (*handle)(struct ss_request *);            /* the only required hook */
    void (*finish)(struct ss_request *);
    /* ABI 2 */
    size_t size;                /* sizeof(struct ss_handler) as built */
    unsigned modes;             /* SS_MODE_* it runs in; 0: all but event */
};

#define SOCKSERV_HANDLER __attribute__((visibility("default"))) \
    const struct ss_handler sockserv_handler

/* ---- Request I/O: the same calls for streams and datagrams ------------ */

/*
 * Reads up to len bytes as they arrive (a datagram: from the packet).
 * Returns the count, 0 at end of stream or packet, -1 on error (errno;
 * ETIMEDOUT when the connection stayed silent for the server's timeout).
 */
ssize_t ss_read(struct ss_request *, void *buf, size_t len);

/*
 * Reads one line, newline included, into buf as a C string, at most
 * size - 1 bytes (like Python's readline(size - 1)): a longer line comes in
 * pieces, each without a newline.  Returns the length, 0 at end, -1 on error.
 */
ssize_t ss_readline(struct ss_request *, char *buf, size_t size);

/*
 * Waits until the request has bytes to read (or its end) for at most
 * timeout_ms (-1: no limit).  Returns 1 when ss_read would not block, 0 on
 * timeout, -1 on error.
 */
int ss_poll(struct ss_request *, int timeout_ms);

/*
 * Runs fn(arg) where it may block (a slow hash, a blocking library call)
 * without holding up the server's other requests, and returns when it
 * has returned.  In event mode it runs on a thread of its own while the
 * request's coroutine waits; in the other modes, where each request has
 * its own thread or process, it runs right here.  arg (and whatever fn
 * reaches through it) must not live on the request's stack: in event
 * mode that stack is not where it was while the request waits.  fn must
 * not call the request API.  0, or -1 with errno if it could not wait
 * (fn has then run, in the request's thread).
 */
int ss_run_blocking(struct ss_request *, void (*fn)(void *), void *arg);

/*
 * Writes all of buf to the client (a datagram: appends to the reply, sent as
 * one packet after finish).  Blocks while a stream client is slow to read.
 * Returns 0, or -1 (errno; EMSGSIZE when a reply outgrows max_packet_size).
 */
int ss_write(struct ss_request *, const void *buf, size_t len);
int ss_printf(struct ss_request *, const char *fmt, ...) SS_PRINTF(2, 3);
int ss_vprintf(struct ss_request *, const char *fmt, va_list);

/*
 * Queues bytes for a client's stream connection (another client's, or the
 * request's own: its ss_write waits for what is queued), from any thread,
 * without blocking: what can be sent at once is sent, the rest waits in the
 * target's bounded backlog (ss_server_set_max_backlog) and is flushed in
 * the background.  A target over its backlog is disconnected (logged).
 * Returns 0, or -1 with errno ENOBUFS when this call overflowed the
 * backlog (the target is being disconnected), EPIPE when the target is
 * closed or gone.  Each call is delivered whole, never interleaved.
 */
int ss_send(struct ss_request *to, const void *buf, size_t len);
int ss_sendf(struct ss_request *to, const char *fmt, ...) SS_PRINTF(2, 3);

/* Sends one datagram from the server's own socket (datagram servers),
 * never blocking: -1 with EAGAIN when the peer's queue is full (dropped),
 * EDESTADDRREQ for an unbound Unix client. */
int ss_server_sendto(struct ss_server *, const struct sockaddr *to,
                     socklen_t tolen, const void *buf, size_t len);

/*
 * Ends a stream connection from any thread: its reads return 0 and its
 * writes fail, so its handler returns.  Queued bytes are flushed first
 * when flush is true (bounded by the server's timeout).
 */
void ss_request_close(struct ss_request *, bool flush);

/*
 * Keeps a request object valid past its handler's return (for another
 * thread that may ss_send to it).  Each hold needs one release.
 */
void ss_request_hold(struct ss_request *);
void ss_request_release(struct ss_request *);

/* ---- Request accessors ------------------------------------------------- */

const struct sockaddr *ss_request_addr(const struct ss_request *,
                                       socklen_t *len);
const char *ss_request_peer(const struct ss_request *); /* "1.2.3.4:5" */
struct ss_server *ss_request_server(const struct ss_request *);
void *ss_request_state(const struct ss_request *);  /* the server's state */
void *ss_request_data(const struct ss_request *);   /* per request, NULL */
void ss_request_set_data(struct ss_request *, void *);
unsigned ss_request_kind(const struct ss_request *); /* SS_STREAM/SS_DGRAM */
/* A Unix stream client's process, user and group (SO_PEERCRED, as of its
 * connect).  0, or -1 (errno; ENOTSUP for another kind of request). */
int ss_request_peercred(const struct ss_request *, pid_t *pid, uid_t *uid,
                        gid_t *gid);

/* ---- Handler options, read in init ------------------------------------- */

/*
 * Returns the value of the handler's own option key, or NULL if unset.
 * Reading a key claims it: a key that neither the core nor the handler
 * claims is a configuration error.
 */
const char *ss_option(struct ss_server *, const char *key);

/* Parse an option, with def when unset.  Return 0, or -1 after setting a
 * configuration error that names the key, its value and the valid range. */
int ss_option_long(struct ss_server *, const char *key, long def,
                   long min, long max, long *out);
int ss_option_double(struct ss_server *, const char *key, double def,
                     double min, double max, double *out);
int ss_option_bool(struct ss_server *, const char *key, bool def, bool *out);

/*
 * The handler's keys that start with prefix ("env."), one per call, in
 * the file's order: *iter starts at 0.  Returns the key (its value in
 * *value) and claims it, or NULL after the last.
 */
const char *ss_option_each(struct ss_server *, const char *prefix,
                           size_t *iter, const char **value);

/* The directory of the configuration file (NULL: none given), which a
 * handler's relative paths are relative to; the daemon sets it. */
const char *ss_server_config_dir(const struct ss_server *);
int ss_server_set_config_dir(struct ss_server *, const char *dir);

/*
 * Records a configuration error on the line of key (NULL: the section's
 * line) and returns -1, for init to return.
 */
int ss_server_errorf(struct ss_server *, const char *key, const char *fmt, ...)
    SS_PRINTF(3, 4);

/* ---- Server accessors --------------------------------------------------- */

const char *ss_server_name(const struct ss_server *);
const char *ss_server_type(const struct ss_server *); /* "tcp", ... */
const char *ss_server_mode(const struct ss_server *); /* "threading", ... */
/* True when its requests run at the same time (not one at a time). */
bool ss_server_concurrent(const struct ss_server *);
unsigned ss_server_kind(const struct ss_server *);    /* SS_STREAM/SS_DGRAM */
void *ss_server_state(const struct ss_server *);
const char *ss_server_address(const struct ss_server *); /* after bind */
void ss_server_set_max_backlog(struct ss_server *, size_t bytes);
/*
 * For a handler that gives its connection to another program (init calls
 * it): the core reads nothing ahead of what the handler reads, so a PROXY
 * header is taken by peeking, at the cost of a system call.
 */
void ss_server_set_exact_reads(struct ss_server *);

/* ---- Logging (stderr, one line per call) ------------------------------ */

void ss_log(enum ss_log_level, const char *fmt, ...) SS_PRINTF(2, 3);
void ss_vlog(enum ss_log_level, const char *fmt, va_list);
void ss_log_set_level(enum ss_log_level);
/* Sends the log to path, appending, each line starting with an ISO 8601
 * UTC time and "sockserv[PID]: "; again to reopen it after a rotation.
 * The program's own stderr is left alone.  0 or -1 (errno). */
int ss_log_open(const char *path);
bool ss_log_enabled(enum ss_log_level);
/* Gives every line to fn instead (the message, NUL-terminated, without
 * the level's word or a newline), from whichever thread or forked child
 * logs it; NULL goes back to stderr.  Set it before servers run. */
typedef void ss_log_fn(enum ss_log_level, const char *line, void *arg);
void ss_log_set_callback(ss_log_fn *fn, void *arg);

/* ---- Embedding: a server without the daemon ---------------------------- */

/*
 * As Python's `ThreadingTCPServer(("127.0.0.1", 0), Handler)`:
 *
 *     struct ss_server *s = ss_server_new("hello", &my_handler);
 *     ss_server_set(s, "type", "tcp", 0);
 *     ss_server_set(s, "mode", "threading", 0);
 *     ss_server_set(s, "port", "0", 0);
 *     if (ss_server_start(s) < 0) errx(1, "%s", ss_server_error(s, NULL));
 *     ss_server_serve_forever(s);     (another thread: ss_server_shutdown)
 *     ss_server_free(s);
 *
 * Keys and values are those of the INI file; line is what errors report.
 */
struct ss_server *ss_server_new(const char *name, const struct ss_handler *);
int ss_server_set(struct ss_server *, const char *key, const char *value,
                  int line);
void ss_server_set_line(struct ss_server *, int line); /* the section's */

/* Every error (config or runtime) is also passed to fn as it happens,
 * with the line it concerns (0: none); the daemon prints FILE:LINE. */
void ss_server_set_error_fn(struct ss_server *,
                            void (*fn)(void *arg, int line, const char *msg),
                            void *arg);
/* The last error and the config line it concerns (0: none). */
const char *ss_server_error(const struct ss_server *, int *line);
/* True when the last error was a configuration error (exit 2). */
bool ss_server_error_is_config(const struct ss_server *);

/* Checks the settings and runs the handler's init.  0 or -1. */
int ss_server_init(struct ss_server *);
/* Binds and listens (server_bind + server_activate); init first if not yet. */
int ss_server_bind(struct ss_server *);
/*
 * For `workers = N`: called in a forked copy of the process after bind,
 * gives that worker its own SO_REUSEPORT socket on the same address (a
 * Unix server shares the one socket), and leaves the socket file to the
 * original process.  0 or -1.
 */
int ss_server_reopen(struct ss_server *);
long ss_server_workers(const struct ss_server *);
/*
 * Serves on a socket made by someone else (systemd's socket activation)
 * instead of binding: its type and family must fit the server's type; a
 * stream socket is listened on.  It is closed at close, never shut down
 * or unlinked.  Init first if not yet.  0 or -1.
 */
int ss_server_adopt(struct ss_server *, int fd);
/* True when fd is a socket of the server's type bound to the address its
 * keys name (host and port, or path): an unnamed inherited socket's
 * section. */
bool ss_server_socket_matches(const struct ss_server *, int fd);
/* ss_server_init + ss_server_bind. */
int ss_server_start(struct ss_server *);

/* Serves until ss_server_shutdown; returns 0. */
int ss_server_serve_forever(struct ss_server *);
/* Handles one request or times out (Python's handle_request).  0 or -1. */
int ss_server_handle_request(struct ss_server *, double timeout);
/* Asks serve_forever to return; safe from any thread, does not wait. */
void ss_server_shutdown(struct ss_server *);
/*
 * The same from a signal handler (async-signal-safe: a flag and a byte
 * down the loop's wake pipe), for a program that serves from the thread
 * that takes its signals.  A loop waiting for a free thread (threading at
 * max_threads) sees it when a thread ends; use ss_server_shutdown from
 * another thread there.
 */
void ss_server_shutdown_signal(struct ss_server *);
/*
 * Stops serving and closes (Python's server_close): waits for running
 * requests as block_on_close says, at most shutdown_timeout seconds, then
 * shuts their connections down.  Runs the handler's fini.
 */
void ss_server_close(struct ss_server *);
/* Cuts what still runs: shuts running connections down so their handlers
 * return, and sends SIGTERM to children.  Safe from any thread. */
void ss_server_shutdown_now(struct ss_server *);
double ss_server_shutdown_timeout(const struct ss_server *);
/* How many requests may run at once (max_threads, max_children, 1). */
long ss_server_max_requests(const struct ss_server *);
void ss_server_free(struct ss_server *);

/*
 * Python's overridable server methods, as hooks (NULL: the default); a
 * handler's init may set them too (e.g. service_actions for its timers).
 * verify_request: return false to refuse the client before any handler
 * code runs.  handle_error: after a request failed (default: log it).
 * service_actions: once per serve loop iteration (at most every
 * poll_interval seconds, as in Python).
 */
typedef bool (*ss_verify_fn)(struct ss_server *, const struct sockaddr *,
                             socklen_t, void *arg);
typedef void (*ss_error_fn)(struct ss_server *, struct ss_request *,
                            void *arg);
typedef void (*ss_service_fn)(struct ss_server *, void *arg);
void ss_server_set_verify_request(struct ss_server *, ss_verify_fn, void *);
void ss_server_set_handle_error(struct ss_server *, ss_error_fn, void *);
void ss_server_set_service_actions(struct ss_server *, ss_service_fn, void *);

/* ---- Counters and the servers of the process ---------------------------- */

/* Why a request was refused before any handler code ran. */
enum ss_refusal {
    SS_REFUSED_ACL,             /* allow / deny */
    SS_REFUSED_MAX_CONNECTIONS,
    SS_REFUSED_MAX_PER_SOURCE,  /* also: too many sources to track */
    SS_REFUSED_RATE_LIMIT,
    SS_REFUSED_VERIFY_REQUEST,
    SS_REFUSED_REASONS          /* how many there are (at most 8) */
};

/*
 * A server's counters since it was made, exact (not sampled), summed over
 * every process that serves it: forked children and `workers = N` count
 * into the same place as the process that made the server.
 *
 * accepted: requests admitted (connections, or datagrams), past
 *           allow/deny, the limits and verify_request;
 * refused:  requests refused, by enum ss_refusal;
 * active:   admitted requests not ended yet;
 * bytes_in, bytes_out: what requests read and wrote (ss_read,
 *           ss_readline, ss_write, ss_send..., datagrams and replies);
 * uptime:   seconds since the server was bound (0 before).
 * Fields are only appended (ss_server_stats takes the struct's size).
 */
struct ss_server_stats {
    unsigned long long accepted;
    unsigned long long refused[8];
    unsigned long long bytes_in, bytes_out;
    long long active;
    double uptime;
};

/* Fills *out (size: sizeof *out as the caller was built); 0, or -1 with
 * EINVAL for a size too small.  Cheap, lock-free, from any thread. */
int ss_server_stats(const struct ss_server *, struct ss_server_stats *out,
                    size_t size);
/* "acl", "max_connections", "max_per_source", "rate_limit",
 * "verify_request"; NULL for another value. */
const char *ss_refusal_name(enum ss_refusal);

/*
 * Calls fn for each server of this process that is bound and not closed
 * (ss_server_bind to ss_server_close), in the order they were bound: a
 * metrics or status page reaches every server this way.  The servers
 * cannot close meanwhile, so fn must be quick and must not wait (copy
 * what it needs, then do I/O after); it must not call ss_server_bind,
 * ss_server_close or ss_servers_foreach.
 */
void ss_servers_foreach(void (*fn)(struct ss_server *, void *arg),
                        void *arg);
/* ---- Data connections: more sockets for one request (conn.c) ---------- */

/*
 * A request's own extra TCP connections (FTP's data connections).  Every
 * wait goes through the server's mode, as the request's own I/O does: in
 * event mode they suspend the request, elsewhere they poll in its thread.
 * The server's timeout bounds each read and write, and its allow/deny
 * applies to every peer.  Not thread-safe: one request uses its own.
 */
struct ss_conn;

/* The control connection's local address (getsockname), 0 or -1. */
int ss_request_sockname(const struct ss_request *,
                        struct sockaddr_storage *, socklen_t *);

/*
 * Listens for one data connection on local (NULL: the request's own local
 * address), on a free port in port_low..port_high (0, 0: any).  Returns
 * the listener, or NULL (errno; EADDRINUSE when the range is full).
 */
struct ss_conn *ss_request_listen(struct ss_request *,
                                  const struct sockaddr *local, socklen_t,
                                  int port_low, int port_high);
/* The local port a connection or listener is bound to, -1 on error. */
int ss_conn_port(const struct ss_conn *);
/*
 * Accepts one connection on listener within timeout_ms (-1: the server's
 * timeout, else none).  A peer that is not the request's client host, or
 * that allow/deny refuses, is closed and logged, and the wait goes on.
 * NULL with errno (ETIMEDOUT).
 */
struct ss_conn *ss_conn_accept(struct ss_conn *listener, int timeout_ms);
/*
 * Connects to `to`, which must be the request's client host (EACCES
 * otherwise, and when allow/deny refuses it), from the request's local
 * address, within timeout_ms (-1: as accept).  NULL with errno.
 */
struct ss_conn *ss_request_connect(struct ss_request *,
                                   const struct sockaddr *to, socklen_t,
                                   int timeout_ms);
/* Reads what has arrived: count, 0 at the end, -1 (ETIMEDOUT when silent
 * for the server's timeout). */
ssize_t ss_conn_read(struct ss_conn *, void *buf, size_t len);
/* Writes all of buf: 0 or -1 (EPIPE, ETIMEDOUT...). */
int ss_conn_write(struct ss_conn *, const void *buf, size_t len);
/*
 * Sends count bytes of filefd from *off (advanced) with sendfile(2).
 * Returns the bytes sent: fewer than count only at the file's end; -1 on
 * error (errno).
 */
ssize_t ss_conn_sendfile(struct ss_conn *, int filefd, off_t *off,
                         size_t count);
/* Closes a connection or listener (NULL: nothing). */
void ss_conn_close(struct ss_conn *);

/* ---- Running a program for a request (spawn.c) ------------------------ */

/* What to run.  Fields are only appended (size: sizeof as built). */
struct ss_spawn {
    size_t size;                /* sizeof(struct ss_spawn) */
    const char *path;           /* the program (execve: no PATH search) */
    char *const *argv;          /* NULL-terminated, argv[0] first */
    char *const *envp;          /* its whole environment, NULL-terminated */
    bool set_ids;               /* run as uid, gid, groups (when root) */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
};

/*
 * Runs a program for a stream request, with the connection as its stdin
 * and stdout, in a session of its own, with only descriptors 0, 1 and 2
 * and default signal dispositions.  Each line it writes to stderr is
 * logged as "SERVER: line".  Waits for it through the server's mode (in
 * event mode the request is suspended), and reaps it.  When the server
 * shuts down, past shutdown_timeout the program's process group gets
 * SIGTERM, and SIGKILL after the grace.  The handler must not have read
 * from the request before: -1 with EBUSY when bytes it read ahead
 * (ss_readline) would be lost to the program.  Behind a PROXY header, its
 * init calls ss_server_set_exact_reads, so that the bytes following the
 * header stay on the socket.  Returns 0 with *status as
 * waitpid(2) gives it, or -1 (errno; logged when the program could not
 * run).
 */
int ss_request_spawn(struct ss_request *, const struct ss_spawn *,
                     int *status);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* SOCKSERV_H */
