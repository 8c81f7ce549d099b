/* log.c: one line per call on stderr, written with a single write(2). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static atomic_int log_level = SS_LOG_INFO;
static const char *const level_names[] = {
    [SS_LOG_DEBUG] = "debug: ", [SS_LOG_INFO] = "",
    [SS_LOG_WARNING] = "warning: ", [SS_LOG_ERROR] = "error: ",
};

/* dup2 replaces stderr atomically: a writer never sees a closed fd. */
int
ss_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    if (fd != STDERR_FILENO) {
        int rc = dup2(fd, STDERR_FILENO);
        int e = errno;

        close(fd);
        errno = e;
        return rc < 0 ? -1 : 0;
    }
    return 0;
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

/*
 * Formats the line on the stack and writes it at once, so lines from
 * threads and children never interleave and no lock is needed (safe to
 * call in a forked child).  Keeps errno.
 */
void
ss_vlog(enum ss_log_level level, const char *fmt, va_list ap)
{
    char line[2048];
    int saved = errno;
    size_t n;
    int m;

    if (!ss_log_enabled(level) || level > SS_LOG_ERROR)
        return;
    m = snprintf(line, sizeof line, "%s", level_names[level]);
    n = m > 0 ? (size_t)m : 0;
    m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (m > 0)
        n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    (void)ss_write_all(STDERR_FILENO, line, n);
    errno = saved;
}

void
ss_log(enum ss_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ss_vlog(level, fmt, ap);
    va_end(ap);
}
