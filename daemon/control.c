/* control.c: the daemon's control socket: `sockservctl status | reload |
 * stop`, served by a thread of the daemon's main process.
 *
 * A thread, not the main thread's control loop: a server of a mode that
 * wants the main thread (ss_server_solo) leaves no loop to poll in, and a
 * thread of its own keeps the daemon's signal and shutdown paths as they
 * are.  It costs a solo forking server its single-threaded fork (glibc
 * then forks a threaded process: locks reset, descriptors tracked), so it
 * exists only when [global] control is set.  One client at a time, each bounded in time: a client
 * that sends nothing or reads nothing is dropped after CLIENT_SECONDS.
 * The counters come from ss_servers_foreach and ss_server_stats: exact,
 * summed over forked children and workers (core/stats.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "internal.h"

#define CLIENT_SECONDS 2.0

static struct {
    int fd;                     /* the listening socket, -1: none */
    int wake[2];                /* control_close wakes the thread */
    char *path;
    dev_t dev;
    ino_t ino;
    pthread_t thread;
    bool started;
} ctl = { .fd = -1, .wake = { -1, -1 } };

/* A reload, as SIGHUP asks it: the daemon's one reload path (its signal
 * handler notes it and wakes the main thread). */
void
daemon_reload_request(void)
{
    ss_log(SS_LOG_INFO, "sockserv: reload requested on the control socket");
    (void)kill(getpid(), SIGHUP);
}

/* A stale socket file (nobody answers) is removed; a live one or another
 * kind of file is an error (errno). */
static int
clear_stale(const char *path, const struct sockaddr_un *sun, socklen_t len)
{
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = connect(fd, (const struct sockaddr *)sun, len);
    close(fd);
    if (rc == 0 || errno != ECONNREFUSED) {
        errno = EADDRINUSE;
        return -1;
    }
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int
control_open(const struct conf *conf, const struct conf_section *global)
{
    const struct conf_kv *kv = conf_get(global, "control");
    const struct conf_kv *user = conf_get(global, "user");
    struct sockaddr_un sun;
    socklen_t len;
    struct stat st;
    char path[sizeof sun.sun_path + 1];
    mode_t old;
    int fd, rc;

    if (kv == NULL)
        return 0;
    if (snprintf(path, sizeof path, "%s%s%s", kv->value[0] == '/' ? "" :
                 conf->dir, kv->value[0] == '/' ? "" : "/", kv->value) >=
        (int)sizeof path || ss_addr_unix(path, &sun, &len) < 0) {
        ss_log(SS_LOG_ERROR, "sockserv: control %s: path too long", path);
        return -1;
    }
    if (clear_stale(path, &sun, len) < 0) {
        ss_log(SS_LOG_ERROR, "sockserv: control %s: %s", path,
               errno == EADDRINUSE ? "in use by a running daemon"
                                   : strerror(errno));
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto out_fail;
    /* no other thread runs yet: the umask makes the file 0600 from the
     * start, so nobody else can connect before the chmod */
    old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sun, len);
    umask(old);
    if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0)
        goto out_close;
    if (user != NULL) {
        struct passwd *pw = getpwnam(user->value);

        if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0)
            goto out_unlink;
    }
    if (pipe2(ctl.wake, O_CLOEXEC | O_NONBLOCK) < 0)
        goto out_unlink;
    ctl.path = strdup(path);
    if (ctl.path == NULL)
        goto out_unlink;
    if (stat(path, &st) == 0) {
        ctl.dev = st.st_dev;
        ctl.ino = st.st_ino;
    }
    ctl.fd = fd;
    ss_fd_track(fd);            /* forked request children close it */
    return 0;
out_unlink:
    rc = errno;
    unlink(path);
    errno = rc;
out_close:
    rc = errno;
    close(fd);
    errno = rc;
out_fail:
    ss_log(SS_LOG_ERROR, "sockserv: control %s: %s", path, strerror(errno));
    for (int i = 0; i < 2; i++)
        if (ctl.wake[i] >= 0)
            close(ctl.wake[i]);
    ctl.wake[0] = ctl.wake[1] = -1;
    return -1;
}

/* ---- status ------------------------------------------------------------- */

struct entry {
    char *name, *address, *type, *mode, *handler;
    struct ss_server_stats st;
};

struct snapshot {
    struct entry *v;
    size_t n, cap;
    bool failed;
};

/* Under the registry lock: copies, no I/O. */
static void
take_one(struct ss_server *srv, void *arg)
{
    struct snapshot *s = arg;
    struct entry *e;

    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct entry *v = realloc(s->v, cap * sizeof *v);

        if (v == NULL) {
            s->failed = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    e = &s->v[s->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(ss_server_name(srv));
    e->address = strdup(ss_server_address(srv));
    e->type = strdup(ss_server_type(srv));
    e->mode = strdup(ss_server_mode(srv));
    e->handler = strdup(srv->handler && srv->handler->name
                        ? srv->handler->name : "?");
    (void)ss_server_stats(srv, &e->st, sizeof e->st);
    s->n++;
    if (!e->name || !e->address || !e->type || !e->mode || !e->handler)
        s->failed = true;
}

static void
snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].address);
        free(s->v[i].type);
        free(s->v[i].mode);
        free(s->v[i].handler);
    }
    free(s->v);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void
status_json(FILE *f, const struct snapshot *s)
{
    fprintf(f, "{\"pid\":%d,\"version\":", (int)getpid());
    json_str(f, SOCKSERV_VERSION);
    fputs(",\"servers\":[", f);
    for (size_t i = 0; i < s->n; i++) {
        const struct entry *e = &s->v[i];

        fputs(i ? ",{\"name\":" : "{\"name\":", f);
        json_str(f, e->name);
        fputs(",\"address\":", f);
        json_str(f, e->address);
        fputs(",\"type\":", f);
        json_str(f, e->type);
        fputs(",\"mode\":", f);
        json_str(f, e->mode);
        fputs(",\"handler\":", f);
        json_str(f, e->handler);
        fprintf(f, ",\"active\":%lld,\"accepted\":%llu,\"refused\":{",
                e->st.active, e->st.accepted);
        for (int r = 0; r < SS_REFUSED_REASONS; r++)
            fprintf(f, "%s\"%s\":%llu", r ? "," : "",
                    ss_refusal_name((enum ss_refusal)r), e->st.refused[r]);
        fprintf(f, "},\"bytes_in\":%llu,\"bytes_out\":%llu,"
                "\"uptime\":%.3f}", e->st.bytes_in, e->st.bytes_out,
                e->st.uptime);
    }
    fputs("]}\n", f);
}

static void
status_text(FILE *f, const struct snapshot *s)
{
    fprintf(f, "sockserv %s, pid %d, %zu server%s\n", SOCKSERV_VERSION,
            (int)getpid(), s->n, s->n == 1 ? "" : "s");
    for (size_t i = 0; i < s->n; i++) {
        const struct entry *e = &s->v[i];
        unsigned long long refused = 0;

        for (int r = 0; r < SS_REFUSED_REASONS; r++)
            refused += e->st.refused[r];
        fprintf(f, "\n[%s]\n"
                "  address    %s\n"
                "  type       %s\n"
                "  mode       %s\n"
                "  handler    %s\n"
                "  active     %lld\n"
                "  accepted   %llu\n"
                "  refused    %llu", e->name, e->address, e->type, e->mode,
                e->handler, e->st.active, e->st.accepted, refused);
        for (int r = 0; r < SS_REFUSED_REASONS; r++)
            fprintf(f, "%s%s %llu", r ? ", " : " (",
                    ss_refusal_name((enum ss_refusal)r), e->st.refused[r]);
        fprintf(f, ")\n"
                "  bytes in   %llu\n"
                "  bytes out  %llu\n"
                "  uptime     %.1f s\n", e->st.bytes_in, e->st.bytes_out,
                e->st.uptime);
    }
}

/* ---- one client --------------------------------------------------------- */

/* Waits for fd until the deadline: 1 ready, 0 not in time or error. */
static int
wait_fd(int fd, short events, double deadline)
{
    return ss_poll_fd(fd, events, deadline) > 0;
}

/* Reads the request line (up to '\n' or CONTROL_MAX_REQUEST - 1 bytes).
 * Returns its length, or -1. */
static ssize_t
read_request(int fd, char *buf, size_t size, double deadline)
{
    size_t have = 0;

    while (have < size - 1) {
        ssize_t n = read(fd, buf + have, size - 1 - have);

        if (n > 0) {
            have += (size_t)n;
            if (memchr(buf, '\n', have) != NULL)
                break;
            continue;
        }
        if (n == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !wait_fd(fd, POLLIN, deadline))
            return -1;
    }
    buf[have] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return (ssize_t)strlen(buf);
}

static void
write_reply(int fd, const char *p, size_t len, double deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT,
                                                        deadline)) {
            continue;
        } else {
            return;
        }
    }
}

/* Only the daemon's own user (or root) may control it, whatever the
 * file's mode turns out to be. */
static bool
peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return false;
    return cr.uid == 0 || cr.uid == geteuid();
}

/*
 * Answers one request into f; true when the daemon is to stop once the
 * answer is sent.  *ok: whether the command succeeded.
 */
static bool
answer(FILE *f, char *line, bool *ok)
{
    char *save = NULL, *cmd = strtok_r(line, " \t", &save);
    char *opt = strtok_r(NULL, " \t", &save);
    bool json = opt != NULL && strcmp(opt, "json") == 0;

    *ok = true;
    if (cmd == NULL || (opt != NULL && !json) ||
        strtok_r(NULL, " \t", &save) != NULL) {
        *ok = false;
        fprintf(f, "unknown request (status, reload, stop; json)\n");
        return false;
    }
    if (strcmp(cmd, "status") == 0) {
        struct snapshot s = { 0 };

        ss_servers_foreach(take_one, &s);
        if (s.failed) {
            *ok = false;
            fprintf(f, "status: %s\n", strerror(ENOMEM));
        } else if (json) {
            status_json(f, &s);
        } else {
            status_text(f, &s);
        }
        snapshot_free(&s);
        return false;
    }
    if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0) {
        bool stop = cmd[0] == 's';
        const char *msg = stop ? "stopping" : "reload requested";

        if (!stop)
            daemon_reload_request();
        if (json)
            fprintf(f, "{\"ok\":true,\"message\":\"%s\"}\n", msg);
        else
            fprintf(f, "%s\n", msg);
        if (stop)
            ss_log(SS_LOG_INFO, "sockserv: stop asked on the control "
                   "socket");
        return stop;
    }
    *ok = false;
    fprintf(f, "unknown command \"%s\" (status, reload, stop)\n", cmd);
    return false;
}

static void
serve_client(int fd)
{
    double deadline = ss_now() + CLIENT_SECONDS;
    char line[CONTROL_MAX_REQUEST];
    char *text = NULL;
    size_t len = 0;
    bool ok = false, stop = false;
    FILE *f;

    if (!peer_allowed(fd)) {
        static const char denied[] = "error\npermission denied\n";

        write_reply(fd, denied, sizeof denied - 1, deadline);
        return;
    }
    if (read_request(fd, line, sizeof line, deadline) < 0)
        return;
    f = open_memstream(&text, &len);
    if (f == NULL)
        return;
    stop = answer(f, line, &ok);
    if (fclose(f) == 0) {
        write_reply(fd, ok ? "ok\n" : "error\n", ok ? 3 : 6, deadline);
        write_reply(fd, text, len, deadline);
    }
    free(text);
    /* the answer is whole: the client's read ends here even if a forked
     * child holds a copy of this descriptor */
    shutdown(fd, SHUT_RDWR);
    if (stop)
        kill(getpid(), SIGTERM);        /* the daemon's SIGTERM path */
}

static void *
control_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = ctl.fd, .events = POLLIN },
            { .fd = ctl.wake[0], .events = POLLIN },
        };
        int fd;

        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents != 0)
            break;
        if (!(pfd[0].revents & POLLIN))
            continue;
        fd = accept4(ctl.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                (void)poll(NULL, 0, 100);   /* let it pass; no spin */
            continue;
        }
        ss_fd_track(fd);
        serve_client(fd);
        ss_fd_untrack(fd);
        close(fd);
    }
    return NULL;
}

int
control_start(void)
{
    pthread_attr_t attr;
    int rc;

    if (ctl.fd < 0)
        return 0;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    rc = pthread_create(&ctl.thread, &attr, control_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        ss_log(SS_LOG_ERROR, "sockserv: control: cannot start a thread: %s",
               strerror(rc));
        return -1;
    }
    ctl.started = true;
    return 0;
}

void
control_close(void)
{
    struct stat st;

    if (ctl.fd < 0)
        return;
    if (ctl.started) {
        (void)write(ctl.wake[1], "x", 1);
        pthread_join(ctl.thread, NULL);
        ctl.started = false;
    }
    ss_fd_untrack(ctl.fd);
    close(ctl.fd);
    ctl.fd = -1;
    for (int i = 0; i < 2; i++) {
        close(ctl.wake[i]);
        ctl.wake[i] = -1;
    }
    if (ctl.path != NULL && stat(ctl.path, &st) == 0 &&
        st.st_dev == ctl.dev && st.st_ino == ctl.ino)
        (void)unlink(ctl.path);
    free(ctl.path);
    ctl.path = NULL;
}
