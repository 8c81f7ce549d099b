/* activation.c: the sockets systemd passes (socket activation).
 *
 * The protocol is read here rather than with libsystemd's
 * sd_listen_fds_with_names(): it is three environment variables, and a
 * shared library more is mappings that every forked child copies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activation.h"
#include "internal.h"

#define LISTEN_FDS_START 3

int
activation_take(struct activation *a)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    char *copy = NULL, *save = NULL, *name;
    long lpid, n;

    a->v = NULL;
    a->n = 0;
    if (pid == NULL || fds == NULL)
        goto out_unset;
    if (!ss_parse_long(pid, 1, 0x7fffffff, &lpid) ||
        !ss_parse_long(fds, 0, 4096, &n)) {
        ss_log(SS_LOG_ERROR, "sockserv: LISTEN_PID=%s LISTEN_FDS=%s: not "
               "numbers", pid, fds);
        goto out_fail;
    }
    if ((pid_t)lpid != getpid() || n == 0)
        goto out_unset;         /* meant for another process */
    a->v = calloc((size_t)n, sizeof *a->v);
    if (names != NULL && (copy = strdup(names)) == NULL)
        goto out_nomem;
    if (a->v == NULL)
        goto out_nomem;
    name = copy ? strtok_r(copy, ":", &save) : NULL;
    for (long i = 0; i < n; i++) {
        a->v[i].fd = LISTEN_FDS_START + (int)i;
        a->v[i].name = strdup(name && strcmp(name, "unknown") != 0 ? name
                                                                    : "");
        if (a->v[i].name == NULL)
            goto out_nomem;
        a->n++;
        ss_fd_track(a->v[i].fd);
        name = name ? strtok_r(NULL, ":", &save) : NULL;
    }
    free(copy);
out_unset:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return 0;
out_nomem:
    ss_log(SS_LOG_ERROR, "sockserv: LISTEN_FDS: %s", strerror(ENOMEM));
out_fail:
    free(copy);
    activation_done(a);
    return -1;
}

int
activation_adopt(struct activation *a, struct ss_server *srv)
{
    struct inherited *pick = NULL;

    for (size_t i = 0; i < a->n && pick == NULL; i++)
        if (!a->v[i].used && strcmp(a->v[i].name, ss_server_name(srv)) == 0)
            pick = &a->v[i];
    for (size_t i = 0; i < a->n && pick == NULL; i++)
        if (!a->v[i].used && a->v[i].name[0] == '\0' &&
            ss_server_socket_matches(srv, a->v[i].fd))
            pick = &a->v[i];
    if (pick == NULL)
        return 1;
    if (ss_server_adopt(srv, pick->fd) < 0)
        return -1;
    pick->used = true;
    ss_log(SS_LOG_INFO, "%s: socket from systemd (fd %d%s%s)",
           ss_server_name(srv), pick->fd, pick->name[0] ? ", named " : "",
           pick->name);
    return 0;
}

void
activation_done(struct activation *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (!a->v[i].used) {
            ss_log(SS_LOG_WARNING, "sockserv: inherited socket %d%s%s "
                   "matches no section; closed", a->v[i].fd,
                   a->v[i].name[0] ? " named " : "", a->v[i].name);
            ss_fd_untrack(a->v[i].fd);
            close(a->v[i].fd);
        }
        free(a->v[i].name);
    }
    free(a->v);
    a->v = NULL;
    a->n = 0;
}
