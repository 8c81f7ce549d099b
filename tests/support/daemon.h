/* daemon.h: integration-test harness: run build/sockserv, talk to it. */
#ifndef SS_TEST_DAEMON_H
#define SS_TEST_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SSD_MAX_SERVERS 32

struct ssd_io;                  /* the daemon's stderr and its reader */

struct ssd {
    pid_t pid;
    char dir[256];              /* temporary directory holding the INI */
    char ini[300];              /* its path */
    /* on the heap, so that a test that fails (and leaves its frame)
     * never has the reader thread write into a dead stack */
    struct ssd_io *io;
    int nlisten;
    struct { char name[64], addr[160]; } listen[SSD_MAX_SERVERS];
};

/*
 * Writes ini_text to a fresh temporary directory (each "@DIR@" in it becomes
 * that directory), starts build/sockserv with extra_args (NULL-terminated,
 * may be NULL) before the file, and waits until nservers "listening on"
 * lines have appeared (or 10 s).  Returns 0, or -1 with the log printed.
 */
int ssd_start(struct ssd *, const char *ini_text, int nservers,
              const char *const *extra_args);
/* The address a server announced ("127.0.0.1:4000", "[::1]:5", "/p.sock"). */
const char *ssd_addr(const struct ssd *, const char *name);
int ssd_port(const struct ssd *, const char *name);
/* Sends sig, waits for exit (10 s), returns the exit status (or -1). */
int ssd_stop(struct ssd *, int sig);
/* Waits for the daemon to exit by itself (10 s); returns its status. */
int ssd_wait(struct ssd *);
/* Frees the log and removes the temporary directory. */
void ssd_cleanup(struct ssd *);
/* Waits up to timeout_ms until the log contains needle. */
bool ssd_log_wait(struct ssd *, const char *needle, int timeout_ms);
bool ssd_log_has(struct ssd *, const char *needle);
void ssd_print_log(struct ssd *);
/* A copy of the log so far (to free). */
char *ssd_log_copy(struct ssd *);

/*
 * Runs the daemon to completion on ini_text (for errors and --check):
 * returns its exit status and, in *out (to free), what it wrote to stderr
 * and stdout.
 */
int ssd_run(const char *ini_text, const char *const *extra_args, char **out);

/* A configuration the daemon must refuse: ini (ssd_run's form) and a text
 * its output must hold. */
struct ssd_config_case {
    const char *ini;
    const char *expect;
};
/*
 * Runs the daemon (ssd_run, no extra arguments) on each case: each must
 * exit with status 2 and expect in its output.  Returns how many did not;
 * for each of those, stderr gets its index, status and output.
 */
int ssd_config_errors(const struct ssd_config_case *cases, size_t n);

/*
 * ini_text with every "mode = threading" made "mode = MODE", so one test
 * runs in several modes.  Returns a buffer of this thread's, valid until
 * the next call.
 */
const char *ssd_ini_mode(const char *ini_text, const char *mode);

/* A TCP port free on 127.0.0.1 a moment ago (for a tool that needs a
 * number, not 0), or -1. */
int ssd_free_port(void);

/*
 * Appends printf-style text to buf (size bytes, used of them filled) and
 * returns the new length.  A test's INI that does not fit is the test's
 * bug: the process stops with a message rather than run a cut file.
 */
size_t ssd_appendf(char *buf, size_t size, size_t used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the matrix of socket types and modes ------------------------------- */

#define SSD_NTYPES 4
#define SSD_NMODES 4
/* Every socket type: "tcp", "udp", "unix-stream", "unix-dgram". */
extern const char *const ssd_types[SSD_NTYPES];
/* Every mode: "sync", "threading", "forking", "event". */
extern const char *const ssd_modes[SSD_NMODES];
/* True for the datagram types, "udp" and "unix-dgram". */
bool ssd_is_dgram(const char *type);

/* ---- clients ------------------------------------------------------------ */

/* Connects a stream socket to "host:port", "[v6]:port" or a path.  -1. */
int ssd_connect(const char *addr);
/* A TCP connection to 127.0.0.1:port from the IPv4 source address src
 * (port 0: any; 127.0.0.2 and up are loopback too), or -1. */
int ssd_connect_from(const char *src, int port);
/* A datagram socket connect()ed to addr (a Unix one is bound to a temp
 * path of its own so replies can reach it).  -1 on error. */
int ssd_dgram(const char *addr);
int ssd_send_all(int fd, const void *buf, size_t len);
int ssd_send_str(int fd, const char *s);
/* Reads exactly len bytes within timeout_ms.  Returns bytes read. */
size_t ssd_recv_n(int fd, void *buf, size_t len, int timeout_ms);
/* Reads whatever arrives within timeout_ms (one recv).  -1 on timeout. */
ssize_t ssd_recv_some(int fd, void *buf, size_t len, int timeout_ms);
/* Reads until the received text contains needle (buf holds it, NUL-ended);
 * returns true if it did within timeout_ms. */
bool ssd_recv_until(int fd, char *buf, size_t size, const char *needle,
                    int timeout_ms);
/* True if the peer closes (EOF or reset) within timeout_ms. */
bool ssd_closed_within(int fd, int timeout_ms);
/* One echo over a fresh stream connection: connect, send "k", get "k"
 * back within 5 s, then shut the writing side (the end reaches the
 * handler even if a forked child holds a copy of this socket) and close.
 * True if the echo came back. */
bool ssd_echo_once(const char *addr);
/* The number after "field:" in /proc/PID/status ("VmRSS", "Threads",
 * "Uid"...), -1 if there is none. */
long ssd_proc_status(pid_t pid, const char *field);
/* ---- client programs ------------------------------------------------------ */

/* The project's own Python clients: SS_SOURCE_DIR/tests/clients/ (with the
 * trailing '/'). */
const char *ssd_clients_dir(void);
/*
 * The tutorial's clients: SS_SOURCE_DIR/../shared/seed_clients/ (with the
 * trailing '/'), or NULL when that folder is not there.  Then one line on
 * stderr says where they were looked for, and *required tells whether
 * SOCKSERV_REQUIRE_SEED_CLIENTS=1 (set by .ci/run) makes their absence a
 * failure; otherwise the caller skips.
 */
const char *ssd_seed_dir(bool *required);

/* True when the daemon runs under valgrind (SSD_WRAPPER, make valgrind). */
bool ssd_under_valgrind(void);
/* The daemon ssd_start and ssd_run run (NULL: build/sockserv). */
extern const char *ssd_daemon;
/* Path of a built file: ssd_path("handlers/echo.so"). Static buffer. */
const char *ssd_build_path(const char *rel);

#endif
