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

#define SOCKSERV_ABI 1          /* bump on any incompatible change */
#define SOCKSERV_VERSION "0.1.0"

#define SS_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* The socket kinds a handler supports (struct ss_handler.kinds). */
enum { SS_STREAM = 1, SS_DGRAM = 2 };

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
 * Records a configuration error on the line of key (NULL: the section's
 * line) and returns -1, for init to return.
 */
int ss_server_errorf(struct ss_server *, const char *key, const char *fmt, ...)
    SS_PRINTF(3, 4);

/* ---- Server accessors --------------------------------------------------- */

const char *ss_server_name(const struct ss_server *);
const char *ss_server_type(const struct ss_server *); /* "tcp", ... */
const char *ss_server_mode(const struct ss_server *); /* "threading", ... */
unsigned ss_server_kind(const struct ss_server *);    /* SS_STREAM/SS_DGRAM */
void *ss_server_state(const struct ss_server *);
const char *ss_server_address(const struct ss_server *); /* after bind */
void ss_server_set_max_backlog(struct ss_server *, size_t bytes);

/* ---- Logging (stderr, one line per call) ------------------------------ */

void ss_log(enum ss_log_level, const char *fmt, ...) SS_PRINTF(2, 3);
void ss_vlog(enum ss_log_level, const char *fmt, va_list);
void ss_log_set_level(enum ss_log_level);
/* Sends the log (and stderr) to path, appending; again to reopen it after
 * a rotation.  0 or -1 (errno). */
int ss_log_open(const char *path);
bool ss_log_enabled(enum ss_log_level);

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

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* SOCKSERV_H */
