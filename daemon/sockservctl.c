/* sockservctl.c: the client of the daemon's control socket: status,
 * reload, stop, in plain text or JSON. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "sockserv.h"

#define DEFAULT_SOCKET "/run/sockserv/control"
#define TIMEOUT_MS 10000
#define MAX_REPLY (16 * 1024 * 1024)

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: sockservctl [-s|--socket PATH] COMMAND [--json]\n"
        "       sockservctl -h|--help, sockservctl -V|--version\n"
        "\n"
        "Talks to a running sockserv through its [global] control socket.\n"
        "  status   each server: address, type, mode, handler, active "
        "requests,\n"
        "           accepted, refused by reason, bytes in and out, uptime\n"
        "  reload   asks the daemon to reload its configuration (as SIGHUP)\n"
        "  stop     asks the daemon to stop (as SIGTERM)\n"
        "  -s, --socket PATH  the control socket (default $SOCKSERV_CONTROL, "
        "else " DEFAULT_SOCKET ")\n"
        "  --json             machine-readable output\n"
        "Exit status: 0 done, 1 the daemon refused or could not be reached, "
        "2 usage error.\n");
}

static long
ms_left(const struct timespec *end)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (end->tv_sec - now.tv_sec) * 1000 +
           (end->tv_nsec - now.tv_nsec) / 1000000;
}

/* Waits for fd until end: true when ready. */
static int
wait_fd(int fd, short events, const struct timespec *end)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events };
        long ms = ms_left(end);
        int rc;

        if (ms <= 0)
            return 0;
        rc = poll(&pfd, 1, (int)ms);
        if (rc >= 0)
            return rc;
        if (errno != EINTR)
            return 0;
    }
}

static int
connect_to(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends the request, reads the whole answer into *out (NUL-ended).
 * 0 or -1 (errno). */
static int
exchange(int fd, const char *request, char **out, size_t *outlen)
{
    struct timespec end;
    size_t len = strlen(request), have = 0, cap = 4096;
    char *buf;

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += TIMEOUT_MS / 1000;
    while (len > 0) {
        ssize_t n = send(fd, request, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        request += n;
        len -= (size_t)n;
    }
    buf = malloc(cap);
    if (buf == NULL)
        return -1;
    for (;;) {
        ssize_t n;

        if (have + 1 == cap) {
            char *p = cap < MAX_REPLY ? realloc(buf, cap * 2) : NULL;

            if (p == NULL) {
                free(buf);
                errno = cap < MAX_REPLY ? ENOMEM : EMSGSIZE;
                return -1;
            }
            buf = p;
            cap *= 2;
        }
        if (!wait_fd(fd, POLLIN, &end)) {
            free(buf);
            errno = ETIMEDOUT;
            return -1;
        }
        n = read(fd, buf + have, cap - 1 - have);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return -1;
        }
        have += (size_t)n;
    }
    buf[have] = '\0';
    *out = buf;
    *outlen = have;
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = getenv("SOCKSERV_CONTROL");
    const char *cmd;
    char request[CONTROL_MAX_REQUEST], *reply, *body;
    size_t len;
    bool json = false;
    int c, fd, rc;

    if (path == NULL || path[0] == '\0')
        path = DEFAULT_SOCKET;
    while ((c = getopt_long(argc, argv, "s:jhV", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sockservctl %s\n", SOCKSERV_VERSION);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "status") != 0 && strcmp(cmd, "reload") != 0 &&
        strcmp(cmd, "stop") != 0) {
        fprintf(stderr, "sockservctl: unknown command \"%s\" (status, "
                "reload, stop)\n", cmd);
        return EXIT_USAGE;
    }
    snprintf(request, sizeof request, "%s%s\n", cmd, json ? " json" : "");
    fd = connect_to(path);
    if (fd < 0) {
        fprintf(stderr, "sockservctl: %s: %s (is sockserv running with "
                "[global] control = %s?)\n", path, strerror(errno), path);
        return EXIT_FAIL;
    }
    rc = exchange(fd, request, &reply, &len);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "sockservctl: %s: %s\n", path, strerror(errno));
        return EXIT_FAIL;
    }
    body = strchr(reply, '\n');
    body = body ? body + 1 : reply + len;
    if (strncmp(reply, "ok\n", 3) == 0) {
        fwrite(body, 1, len - (size_t)(body - reply), stdout);
        rc = fflush(stdout) == 0 ? 0 : EXIT_FAIL;
    } else {
        fprintf(stderr, "sockservctl: %s", reply[0] && strncmp(reply,
                "error\n", 6) == 0 ? body : "no answer from the daemon\n");
        rc = EXIT_FAIL;
    }
    free(reply);
    return rc;
}
