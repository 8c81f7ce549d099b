/* util.c: small system-call and parsing helpers the core shares. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Writes all of buf, retrying EINTR and short writes.  0 or -1 (errno). */
int
ss_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                errno = ETIMEDOUT;      /* SO_SNDTIMEO expired */
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Monotonic seconds. */
double
ss_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds left until deadline, for poll(); never negative. */
int
ss_ms_until(double deadline)
{
    double left = (deadline - ss_now()) * 1000.0;

    if (left <= 0)
        return 0;
    if (left > 86400000.0)
        return 86400000;
    return (int)ceil(left);
}

char *
ss_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int
ss_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl);
}

/* Parses a whole decimal integer within [min, max]. */
bool
ss_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Parses a number of seconds (or "none" = 0) within [min, max]. */
bool
ss_parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return false;
    if (strcasecmp(s, "none") == 0) {
        *out = 0;
        return min <= 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool
ss_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

/* Parses a byte count with an optional k, m or g suffix (powers of 1024). */
bool
ss_parse_size(const char *s, long min, long max, long *out)
{
    char *end;
    long long v;
    long long mult = 1;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return false;
    switch (*end) {
    case 'k': case 'K': mult = 1024; end++; break;
    case 'm': case 'M': mult = 1024 * 1024; end++; break;
    case 'g': case 'G': mult = 1024LL * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || v > max / mult || v * mult < min)
        return false;
    *out = (long)(v * mult);
    return true;
}

/*
 * The sockets the core opened (listening sockets, connections), as a
 * lock-free bitmap, so that a forked child can close all of them but its
 * own without scanning /proc (which cost more than the fork).  Descriptors
 * past SS_FD_BITS are not tracked.  The bitmap is on the heap, made at the
 * first use: 8 KiB of .bss would be one more mapping for every fork to
 * copy.
 */
#define SS_FD_BITS 65536
static _Atomic(atomic_ulong *) fd_bits;
static atomic_int fd_high;

static atomic_ulong *
fd_bitmap(void)
{
    atomic_ulong *b = atomic_load(&fd_bits), *none = NULL;

    if (b != NULL)
        return b;
    b = calloc(SS_FD_BITS / 64, sizeof *b);
    if (b == NULL)
        return NULL;            /* not tracked: children keep them open */
    if (!atomic_compare_exchange_strong(&fd_bits, &none, b)) {
        free(b);                /* another thread made it first */
        return none;
    }
    return b;
}

void
ss_fd_track(int fd)
{
    atomic_ulong *b = fd_bitmap();
    int high;

    if (fd < 0 || fd >= SS_FD_BITS || b == NULL)
        return;
    atomic_fetch_or(&b[fd / 64], 1UL << (fd % 64));
    high = atomic_load(&fd_high);
    while (fd > high && !atomic_compare_exchange_weak(&fd_high, &high, fd))
        ;
}

void
ss_fd_untrack(int fd)
{
    atomic_ulong *b = atomic_load(&fd_bits);

    if (fd < 0 || fd >= SS_FD_BITS || b == NULL)
        return;
    /* a bit not set is not written: in a forking parent, the page of
     * bits stays shared with the children */
    if (atomic_load(&b[fd / 64]) & (1UL << (fd % 64)))
        atomic_fetch_and(&b[fd / 64], ~(1UL << (fd % 64)));
}

/* In a forked child: closes every tracked socket but keep1 and keep2. */
void
ss_fd_close_tracked(int keep1, int keep2)
{
    atomic_ulong *b = atomic_load(&fd_bits);
    int high = atomic_load(&fd_high);

    for (int w = 0; b != NULL && w <= high / 64; w++) {
        unsigned long bits = atomic_load(&b[w]);

        while (bits != 0) {
            int fd = w * 64 + __builtin_ctzl(bits);

            bits &= bits - 1;
            if (fd != keep1 && fd != keep2)
                close(fd);      /* the bits are left: a child's page
                                 * not written is a page not copied */
        }
    }
}

/*
 * Blocks every asynchronous signal on the calling thread, faults aside (a
 * coroutine's stack overflow is a SIGSEGV that must still be taken), and
 * stores the mask it replaced in old for pthread_sigmask(SIG_SETMASK).
 */
void
ss_signals_hold(sigset_t *old)
{
    static const int faults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP,
                                  SIGABRT, SIGSYS };
    sigset_t set;

    sigfillset(&set);
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
        sigdelset(&set, faults[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}
