/* notify.c: sd_notify's protocol, written out: one datagram of
 * "KEY=VALUE" lines to the Unix socket $NOTIFY_SOCKET names. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/*
 * $NOTIFY_SOCKET as an address: a path, or "@name" for an abstract
 * socket.  0, or -1 with errno (EAFNOSUPPORT for what systemd also
 * allows but a daemon started by it is never given on Linux hosts, such
 * as vsock:).
 */
static int
notify_addr(const char *e, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(e);

    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if ((e[0] != '/' && e[0] != '@') || n < 2) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (n >= sizeof sa->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa->sun_path, e, n);
    if (e[0] == '@')
        sa->sun_path[0] = '\0';
    /* an abstract name is exactly n bytes; a path has its NUL */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                       (e[0] == '/'));
    return 0;
}

int
daemon_notify(const char *state)
{
    const char *e = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    ssize_t r;
    int fd, saved;

    if (e == NULL || *e == '\0')
        return 0;
    if (notify_addr(e, &sa, &len) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    do
        r = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                   (struct sockaddr *)&sa, len);
    while (r < 0 && errno == EINTR);
    saved = errno;
    close(fd);
    errno = saved;
    return r < 0 ? -1 : 0;
}

int
daemon_notify_ready(size_t nservers)
{
    char state[128];

    snprintf(state, sizeof state, "READY=1\nSTATUS=serving %zu server%s",
             nservers, nservers == 1 ? "" : "s");
    return daemon_notify(state);
}

int
daemon_notify_reloading(void)
{
    struct timespec ts;
    char state[128];

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        return -1;
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu\n"
             "STATUS=reloading the configuration",
             (unsigned long long)ts.tv_sec * 1000000ULL +
             (unsigned long long)ts.tv_nsec / 1000);
    return daemon_notify(state);
}

int
daemon_notify_stopping(void)
{
    return daemon_notify("STOPPING=1\nSTATUS=shutting down");
}
