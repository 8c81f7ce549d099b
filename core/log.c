/* log.c: one line per call, written at once: on stderr (with <N> priority
 * prefixes under journald), to a log file, to syslog, or to a callback. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MSG_MAX 2048            /* the message; longer ones are cut */
#define PREFIX_MAX 96           /* what a sink puts before it */

/*
 * Where lines go.  Set before servers run (the daemon's startup, or an
 * embedding program); only ss_log_reopen and a syslog reconnection change
 * what the descriptor refers to afterwards, by dup3 onto the same number,
 * so a writer in another thread never sees it closed.
 */
#define SINK_UNKNOWN (-1)

static atomic_int log_level = SS_LOG_INFO;
static atomic_int sink = SINK_UNKNOWN;
static atomic_int log_fd = -1;          /* the file, or the syslog socket */
static char log_path[PATH_MAX];         /* its path, for reopening */
static bool log_take_stderr;            /* the file is stderr too */
static _Atomic(ss_log_fn *) cb_fn;
static _Atomic(void *) cb_arg;

static const char *const level_names[] = {
    [SS_LOG_DEBUG] = "debug: ", [SS_LOG_INFO] = "",
    [SS_LOG_WARNING] = "warning: ", [SS_LOG_ERROR] = "error: ",
};
/* sd-daemon(3) and syslog severities */
static const int level_prio[] = {
    [SS_LOG_DEBUG] = 7, [SS_LOG_INFO] = 6, [SS_LOG_WARNING] = 4,
    [SS_LOG_ERROR] = 3,
};
#define FACILITY_DAEMON (3 << 3)

/* ---- formatting, async-signal-safe -------------------------------------- */

struct buf {
    char *p;
    size_t n, cap;              /* cap keeps one byte for a '\n' or NUL */
};

static void
put_mem(struct buf *b, const char *s, size_t len)
{
    if (len > b->cap - 1 - b->n)
        len = b->cap - 1 - b->n;
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

static void
put_str(struct buf *b, const char *s)
{
    put_mem(b, s, strlen(s));
}

/* v in decimal, at least width digits (zero-padded, or space-padded when
 * pad is ' '). */
static void
put_uint(struct buf *b, unsigned long long v, int width, char pad)
{
    char d[24];
    int i = (int)sizeof d;

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && i > 0);
    while ((int)sizeof d - i < width && i > 0)
        d[--i] = pad;
    put_mem(b, d + i, sizeof d - (size_t)i);
}

/* The civil date of a day count from 1970-01-01 (H. Hinnant's
 * algorithm): no time zone, no lock, so a signal handler and a forked
 * child may use it (gmtime_r takes glibc's time zone lock). */
static void
civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    long long era, yoe, doe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* "2026-12-05T09:12:03.417Z" (iso) or "Dec  5 09:12:03" (syslog's). */
static void
put_time(struct buf *b, time_t sec, long nsec, bool iso)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    long long days = sec / 86400, s = sec % 86400, y;
    unsigned m, d;

    if (s < 0) {
        s += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (iso) {
        put_uint(b, y < 0 ? 0 : (unsigned long long)y, 4, '0');
        put_str(b, "-");
        put_uint(b, m, 2, '0');
        put_str(b, "-");
        put_uint(b, d, 2, '0');
        put_str(b, "T");
    } else {
        put_mem(b, months + 3 * (m - 1), 3);
        put_str(b, " ");
        put_uint(b, d, 2, ' ');
        put_str(b, " ");
    }
    put_uint(b, (unsigned long long)(s / 3600), 2, '0');
    put_str(b, ":");
    put_uint(b, (unsigned long long)(s / 60 % 60), 2, '0');
    put_str(b, ":");
    put_uint(b, (unsigned long long)(s % 60), 2, '0');
    if (iso) {
        put_str(b, ".");
        put_uint(b, (unsigned long long)(nsec / 1000000), 3, '0');
        put_str(b, "Z");
    }
}

size_t
ss_log_format_time(char *out, size_t size, time_t sec, long nsec, bool iso)
{
    struct buf b = { out, 0, size };

    if (size == 0)
        return 0;
    put_time(&b, sec, nsec, iso);
    out[b.n] = '\0';
    return b.n;
}

/*
 * The line for the sink, without its '\n': the file's starts with the
 * time and sockserv[PID], syslog's with <PRI>, the time and the tag,
 * journald's with <N>; every one then has the level's word, as on a
 * terminal.  Returns its length.
 */
static size_t
format_line(enum ss_log_sink to, enum ss_log_level level, const char *msg,
            size_t mlen, char *out, size_t size)
{
    struct buf b = { out, 0, size };
    struct timespec ts = { 0, 0 };

    if (to == SS_SINK_FILE || to == SS_SINK_SYSLOG)
        (void)clock_gettime(CLOCK_REALTIME, &ts);
    if (to == SS_SINK_JOURNAL || to == SS_SINK_SYSLOG) {
        put_str(&b, "<");
        put_uint(&b, (unsigned long long)level_prio[level] +
                 (to == SS_SINK_SYSLOG ? FACILITY_DAEMON : 0), 1, '0');
        put_str(&b, ">");
    }
    if (to == SS_SINK_FILE || to == SS_SINK_SYSLOG) {
        put_time(&b, ts.tv_sec, ts.tv_nsec, to == SS_SINK_FILE);
        put_str(&b, " sockserv[");
        put_uint(&b, (unsigned long long)getpid(), 1, '0');
        put_str(&b, "]: ");
    }
    put_str(&b, level_names[level]);
    put_mem(&b, msg, mlen);
    return b.n;
}

size_t
ss_log_format(enum ss_log_sink to, enum ss_log_level level, const char *msg, char *out,
              size_t size)
{
    size_t n;

    if (size == 0)
        return 0;
    n = format_line(to, level, msg, strlen(msg), out, size);
    out[n] = '\0';
    return n;
}

/* ---- where lines go ----------------------------------------------------- */

bool
ss_log_parse_journal_stream(const char *s, unsigned long long *dev,
                            unsigned long long *ino)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    *dev = strtoull(s, &end, 10);
    if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
        return false;
    *ino = strtoull(end + 1, &end, 10);
    return errno == 0 && *end == '\0';
}

/* SS_SINK_JOURNAL when fd 2 is the stream $JOURNAL_STREAM names (systemd
 * sets it to the "device:inode" of the service's stderr), else
 * SS_SINK_STDERR. */
static enum ss_log_sink
detect_stderr(void)
{
    unsigned long long dev, ino;
    struct stat st;

    if (ss_log_parse_journal_stream(getenv("JOURNAL_STREAM"), &dev, &ino) &&
        fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        return SS_SINK_JOURNAL;
    return SS_SINK_STDERR;
}

static enum ss_log_sink
current_sink(void)
{
    int s = atomic_load(&sink);

    if (s == SINK_UNKNOWN) {
        s = detect_stderr();
        atomic_store(&sink, s);
    }
    return (enum ss_log_sink)s;
}

void
ss_log_to_stderr(void)
{
    atomic_store(&sink, SINK_UNKNOWN);  /* journald is checked again */
}

/* Makes log_fd refer to what fd refers to, keeping its number once it has
 * one (dup3 swaps atomically), and closes fd.  0 or -1 (errno). */
static int
install_fd(int fd)
{
    int cur = -1;

    if (atomic_compare_exchange_strong(&log_fd, &cur, fd))
        return 0;
    if (dup3(fd, cur, O_CLOEXEC) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

static int
set_path(const char *path)
{
    size_t len = strlen(path);

    if (len >= sizeof log_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(log_path, path, len + 1);
    return 0;
}

/* Opens log_path onto log_fd (and stderr).  Async-signal-safe. */
static int
open_file(void)
{
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0 || install_fd(fd) < 0)
        return -1;
    if (log_take_stderr && atomic_load(&log_fd) != STDERR_FILENO &&
        dup2(atomic_load(&log_fd), STDERR_FILENO) < 0)
        return -1;
    return 0;
}

int
ss_log_to_file(const char *path, bool take_stderr)
{
    if (set_path(path) < 0)
        return -1;
    log_take_stderr = take_stderr;
    if (open_file() < 0)
        return -1;
    atomic_store(&sink, SS_SINK_FILE);
    return 0;
}

int
ss_log_open(const char *path)
{
    return ss_log_to_file(path, false);
}

int
ss_log_reopen(void)
{
    if (atomic_load(&sink) != SS_SINK_FILE) {
        errno = EBADF;
        return -1;
    }
    return open_file();
}

/* A datagram socket connected to log_path, installed as log_fd.
 * Async-signal-safe. */
static int
connect_syslog(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(log_path);
    int fd;

    if (len >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, log_path, len + 1);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return install_fd(fd);
}

int
ss_log_to_syslog(const char *socket_path)
{
    if (set_path(socket_path) < 0)
        return -1;
    atomic_store(&sink, SS_SINK_SYSLOG);
    return connect_syslog();    /* if it fails, each line tries again */
}

void
ss_log_set_callback(ss_log_fn *fn, void *arg)
{
    atomic_store(&cb_fn, NULL);
    atomic_store(&cb_arg, arg);
    atomic_store(&cb_fn, fn);
}

void
ss_log_set_level(enum ss_log_level level)
{
    atomic_store(&log_level, level);
}

bool
ss_log_enabled(enum ss_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

/* One datagram to syslog; on a lost connection (syslogd restarted) one
 * reconnection and one more try.  0 or -1. */
static int
send_syslog(const char *line, size_t n)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = atomic_load(&log_fd);

        if (fd >= 0) {
            ssize_t r;

            do
                r = send(fd, line, n, MSG_NOSIGNAL);
            while (r < 0 && errno == EINTR);
            if (r >= 0)
                return 0;
        }
        if (attempt == 0 && connect_syslog() < 0)
            return -1;
    }
    return -1;
}

/*
 * Sends msg (mlen bytes, NUL-terminated) where lines go, in one write
 * (one datagram for syslog), so lines from threads and forked children
 * never interleave and no lock is needed.  Async-signal-safe unless a
 * callback is set.  Keeps errno.
 */
static void
emit(enum ss_log_level level, const char *msg, size_t mlen)
{
    char line[MSG_MAX + PREFIX_MAX];
    ss_log_fn *fn = atomic_load(&cb_fn);
    enum ss_log_sink to;
    size_t n;
    int saved = errno;

    if (fn != NULL) {
        fn(level, msg, atomic_load(&cb_arg));
        errno = saved;
        return;
    }
    to = current_sink();
    n = format_line(to, level, msg, mlen, line, sizeof line);
    if (to == SS_SINK_SYSLOG && send_syslog(line, n) == 0) {
        errno = saved;
        return;
    }
    if (to == SS_SINK_SYSLOG)      /* no syslog: the line is not lost */
        n = format_line(SS_SINK_STDERR, level, msg, mlen, line, sizeof line);
    line[n++] = '\n';
    (void)ss_write_all(to == SS_SINK_FILE ? atomic_load(&log_fd)
                       : STDERR_FILENO, line, n);
    errno = saved;
}

void
ss_log_str(enum ss_log_level level, const char *a, const char *b)
{
    char msg[MSG_MAX];
    struct buf m = { msg, 0, sizeof msg };

    if (a == NULL || !ss_log_enabled(level) || level > SS_LOG_ERROR)
        return;
    put_str(&m, a);
    if (b != NULL)
        put_str(&m, b);
    msg[m.n] = '\0';
    emit(level, msg, m.n);
}

void
ss_vlog(enum ss_log_level level, const char *fmt, va_list ap)
{
    char msg[MSG_MAX];
    int saved = errno;
    int m;

    if (!ss_log_enabled(level) || level > SS_LOG_ERROR)
        return;
    m = vsnprintf(msg, sizeof msg, fmt, ap);
    errno = saved;
    if (m < 0)
        return;
    emit(level, msg, (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1);
}

void
ss_log(enum ss_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ss_vlog(level, fmt, ap);
    va_end(ap);
}
