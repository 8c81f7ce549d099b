/* daemon.c: integration-test harness: run build/sockserv, talk to it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#ifndef SS_BUILD_DIR
#define SS_BUILD_DIR "build"
#endif
#ifndef SS_SOURCE_DIR
#define SS_SOURCE_DIR "."
#endif

const char *ssd_daemon;

struct ssd_io {
    int fd;                     /* the daemon's stderr; -1 once at EOF */
    int closed_fd;              /* kept for close() */
    char *log;                  /* everything read from it */
    size_t len, cap;
    int stop;                   /* the reader stops when set */
    pthread_t reader;
    bool reading;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;

/* CLOCK_REALTIME ms from now, for pthread_cond_timedwait. */
static struct timespec
in_ms(long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *
ssd_build_path(const char *rel)
{
    static __thread char buf[512];

    snprintf(buf, sizeof buf, "%s/%s", SS_BUILD_DIR, rel);
    return buf;
}

const char *
ssd_clients_dir(void)
{
    return SS_SOURCE_DIR "/tests/clients/";
}

const char *
ssd_seed_dir(bool *required)
{
    static const char dir[] = SS_SOURCE_DIR "/../shared/seed_clients/";
    const char *req = getenv("SOCKSERV_REQUIRE_SEED_CLIENTS");

    *required = req != NULL && strcmp(req, "1") == 0;
    if (access(dir, R_OK | X_OK) == 0)
        return dir;
    fprintf(stderr, "the tutorial's clients are not in %s (%s): %s\n", dir,
            strerror(errno), *required ? "required by "
            "SOCKSERV_REQUIRE_SEED_CLIENTS=1, failing" : "skipped");
    return NULL;
}

static void
log_append(struct ssd_io *d, const char *buf, size_t n)
{
    pthread_mutex_lock(&log_lock);
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;

        while (cap < d->len + n + 1)
            cap *= 2;
        char *p = realloc(d->log, cap);

        if (p == NULL) {
            pthread_mutex_unlock(&log_lock);
            return;
        }
        d->log = p;
        d->cap = cap;
    }
    memcpy(d->log + d->len, buf, n);
    d->len += n;
    d->log[d->len] = '\0';
    pthread_cond_broadcast(&log_cond);
    pthread_mutex_unlock(&log_lock);
}

static void *
reader_main(void *arg)
{
    struct ssd_io *d = arg;
    char buf[4096];
    ssize_t n;

    for (;;) {
        struct pollfd pfd = { .fd = d->fd, .events = POLLIN };

        /* a child the daemon left running may hold the pipe open after
         * the daemon exits: stop when told, after draining */
        if (poll(&pfd, 1, 50) == 0) {
            if (__atomic_load_n(&d->stop, __ATOMIC_SEQ_CST))
                break;
            continue;
        }
        n = read(d->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        log_append(d, buf, (size_t)n);
    }
    pthread_mutex_lock(&log_lock);
    d->closed_fd = d->fd;
    d->fd = -1;
    pthread_cond_broadcast(&log_cond);
    pthread_mutex_unlock(&log_lock);
    return NULL;
}

static char *
substitute(const char *text, const char *dir)
{
    size_t cap = strlen(text) * 2 + 512, len = 0;
    char *out = malloc(cap);

    if (out == NULL)
        return NULL;
    for (const char *p = text; *p != '\0';) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            size_t n = strlen(dir);

            if (len + n + 1 >= cap) {
                cap = cap * 2 + n;
                char *q = realloc(out, cap);

                if (q == NULL) {
                    free(out);
                    return NULL;
                }
                out = q;
            }
            memcpy(out + len, dir, n);
            len += n;
            p += 5;
            continue;
        }
        if (len + 2 >= cap) {
            cap *= 2;
            char *q = realloc(out, cap);

            if (q == NULL) {
                free(out);
                return NULL;
            }
            out = q;
        }
        out[len++] = *p++;
    }
    out[len] = '\0';
    return out;
}

static int
write_ini(struct ssd *d, const char *ini_text)
{
    char *text;
    FILE *fp;

    snprintf(d->dir, sizeof d->dir, "/tmp/sockserv-test-XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    snprintf(d->ini, sizeof d->ini, "%s/test.ini", d->dir);
    text = substitute(ini_text, d->dir);
    fp = fopen(d->ini, "w");
    if (text == NULL || fp == NULL) {
        free(text);
        if (fp)
            fclose(fp);
        return -1;
    }
    fputs(text, fp);
    free(text);
    return fclose(fp);
}

bool
ssd_under_valgrind(void)
{
    const char *w = getenv("SSD_WRAPPER");

    return w != NULL && strstr(w, "valgrind") != NULL;
}

static pid_t
spawn(struct ssd *d, const char *const *extra_args, int *errfd)
{
    const char *argv[64];
    int n = 0, pfd[2];
    pid_t pid;
    /* SSD_WRAPPER="valgrind --flag ...": run the daemon under a tool
     * (make valgrind); words split on spaces */
    char wrap[1024];
    const char *w = getenv("SSD_WRAPPER");

    if (w != NULL && *w != '\0') {
        snprintf(wrap, sizeof wrap, "%s", w);
        for (char *save, *t = strtok_r(wrap, " ", &save); t != NULL && n < 32;
             t = strtok_r(NULL, " ", &save))
            argv[n++] = t;
    }
    argv[n++] = ssd_daemon ? ssd_daemon : ssd_build_path("sockserv");
    for (int i = 0; extra_args && extra_args[i] && n < 61; i++)
        argv[n++] = extra_args[i];
    argv[n++] = d->ini;
    argv[n] = NULL;
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        /* a test process that dies (a failed assertion, a crash) takes
         * its daemon with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);

        dup2(null, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return -1;
    }
    *errfd = pfd[0];
    return pid;
}

/* Parses "NAME: listening on ADDR (" lines into d->listen. */
static int
count_listening(struct ssd *d)
{
    const char *p = d->io->log;
    int n = 0;

    while (p != NULL && (p = strstr(p, ": listening on ")) != NULL) {
        const char *bol = p;
        const char *addr = p + strlen(": listening on ");
        const char *end = strstr(addr, " (");

        while (bol > d->io->log && bol[-1] != '\n')
            bol--;
        if (end == NULL || strchr(addr, '\n') < end)
            break;
        if (n < SSD_MAX_SERVERS) {
            snprintf(d->listen[n].name, sizeof d->listen[n].name, "%.*s",
                     (int)(p - bol), bol);
            snprintf(d->listen[n].addr, sizeof d->listen[n].addr, "%.*s",
                     (int)(end - addr), addr);
        }
        n++;
        p = end;
    }
    d->nlisten = n < SSD_MAX_SERVERS ? n : SSD_MAX_SERVERS;
    return n;
}

int
ssd_start(struct ssd *d, const char *ini_text, int nservers,
          const char *const *extra_args)
{
    double deadline = now_ms() + 10000;
    int ok = 0;

    memset(d, 0, sizeof *d);
    signal(SIGPIPE, SIG_IGN);
    d->io = calloc(1, sizeof *d->io);
    if (d->io == NULL || write_ini(d, ini_text) < 0)
        return -1;
    d->pid = spawn(d, extra_args, &d->io->fd);
    if (d->pid < 0)
        return -1;
    if (pthread_create(&d->io->reader, NULL, reader_main, d->io) != 0) {
        kill(d->pid, SIGKILL);
        return -1;
    }
    d->io->reading = true;
    pthread_mutex_lock(&log_lock);
    while (now_ms() < deadline) {
        struct timespec ts;

        if (count_listening(d) >= nservers) {
            ok = 1;
            break;
        }
        if (d->io->fd < 0)
            break;              /* the daemon is gone */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&log_cond, &log_lock, &ts);
    }
    pthread_mutex_unlock(&log_lock);
    if (!ok) {
        fprintf(stderr, "ssd_start: daemon did not announce %d servers\n",
                nservers);
        ssd_print_log(d);
        return -1;
    }
    return 0;
}

const char *
ssd_addr(const struct ssd *d, const char *name)
{
    for (int i = 0; i < d->nlisten; i++)
        if (strcmp(d->listen[i].name, name) == 0)
            return d->listen[i].addr;
    return NULL;
}

int
ssd_port(const struct ssd *d, const char *name)
{
    const char *a = ssd_addr(d, name);
    const char *colon = a ? strrchr(a, ':') : NULL;

    return colon ? atoi(colon + 1) : -1;
}

static int
wait_exit(struct ssd *d, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    int status;

    while (now_ms() < deadline) {
        pid_t r = waitpid(d->pid, &status, WNOHANG);

        if (r == d->pid) {
            d->pid = 0;
            __atomic_store_n(&d->io->stop, 1, __ATOMIC_SEQ_CST);
            if (d->io->reading) {
                pthread_join(d->io->reader, NULL);
                d->io->reading = false;
            }
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        }
        if (r < 0)
            return -1;
        /* the stderr pipe closing is the exit signal we can wait on */
        pthread_mutex_lock(&log_lock);
        if (d->io->fd >= 0) {
            struct timespec ts = in_ms(20);

            pthread_cond_timedwait(&log_cond, &log_lock, &ts);
            pthread_mutex_unlock(&log_lock);
        } else {
            pthread_mutex_unlock(&log_lock);
            struct pollfd none;

            poll(&none, 0, 5);  /* a child holds the pipe: wait for exit */
        }
    }
    fprintf(stderr, "ssd: daemon %d did not exit in %d ms\n", (int)d->pid,
            timeout_ms);
    ssd_print_log(d);
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    return -1;
}

int
ssd_stop(struct ssd *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    return wait_exit(d, 15000);
}

int
ssd_wait(struct ssd *d)
{
    return d->pid > 0 ? wait_exit(d, 15000) : -1;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
ssd_cleanup(struct ssd *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        wait_exit(d, 5000);
    }
    if (d->io == NULL)
        return;
    if (d->io->fd >= 0)
        close(d->io->fd);
    else if (d->io->closed_fd > 0)
        close(d->io->closed_fd);
    if (d->dir[0] != '\0')
        nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d->io->log);
    free(d->io);
    d->io = NULL;
}

bool
ssd_log_has(struct ssd *d, const char *needle)
{
    bool found;

    pthread_mutex_lock(&log_lock);
    found = d->io->log != NULL && strstr(d->io->log, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

bool
ssd_log_wait(struct ssd *d, const char *needle, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    bool found = false;

    pthread_mutex_lock(&log_lock);
    while (!(found = d->io->log != NULL &&
                     strstr(d->io->log, needle) != NULL) &&
           now_ms() < deadline) {
        struct timespec ts = in_ms(20);

        pthread_cond_timedwait(&log_cond, &log_lock, &ts);
    }
    pthread_mutex_unlock(&log_lock);
    return found;
}

void
ssd_print_log(struct ssd *d)
{
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "---- daemon log ----\n%s---- end ----\n",
            d->io && d->io->log ? d->io->log : "");
    pthread_mutex_unlock(&log_lock);
}

char *
ssd_log_copy(struct ssd *d)
{
    char *copy;

    pthread_mutex_lock(&log_lock);
    copy = strdup(d->io && d->io->log ? d->io->log : "");
    pthread_mutex_unlock(&log_lock);
    return copy;
}

int
ssd_run(const char *ini_text, const char *const *extra_args, char **out)
{
    struct ssd d;
    int status;

    memset(&d, 0, sizeof d);
    d.io = calloc(1, sizeof *d.io);
    if (d.io == NULL)
        return -1;
    if (write_ini(&d, ini_text) < 0)
        return -1;
    d.pid = spawn(&d, extra_args, &d.io->fd);
    if (d.pid < 0)
        return -1;
    reader_main(d.io);          /* to EOF: the daemon has exited */
    status = wait_exit(&d, 15000);
    if (out != NULL) {
        *out = d.io->log ? d.io->log : strdup("");
        d.io->log = NULL;
    }
    ssd_cleanup(&d);
    return status;
}

int
ssd_config_errors(const struct ssd_config_case *cases, size_t n)
{
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        char *out = NULL;
        int st = ssd_run(cases[i].ini, NULL, &out);

        if (st != 2 || out == NULL || strstr(out, cases[i].expect) == NULL) {
            fprintf(stderr, "config error case %zu: status %d (want 2), "
                    "want \"%s\" in:\n%s\n", i, st, cases[i].expect,
                    out ? out : "");
            failed++;
        }
        free(out);
    }
    return failed;
}

/* ---- the matrix of socket types and modes ------------------------------- */

const char *const ssd_types[SSD_NTYPES] = { "tcp", "udp", "unix-stream",
                                            "unix-dgram" };
const char *const ssd_modes[SSD_NMODES] = { "sync", "threading", "forking",
                                            "event" };

bool
ssd_is_dgram(const char *type)
{
    return strcmp(type, "udp") == 0 || strcmp(type, "unix-dgram") == 0;
}

/* ---- clients ------------------------------------------------------------ */

static int
parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon;
    size_t n;

    memset(ss, 0, sizeof *ss);
    if (addr[0] == '/' || addr[0] == '.') {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;

        if (strlen(addr) >= sizeof sun->sun_path)
            return -1;
        sun->sun_family = AF_UNIX;
        strncpy(sun->sun_path, addr, sizeof sun->sun_path - 1);
        *len = sizeof *sun;
        return 0;
    }
    colon = strrchr(addr, ':');
    if (colon == NULL)
        return -1;
    n = (size_t)(colon - addr);
    if (addr[0] == '[') {
        addr++;
        n -= 2;
    }
    if (n >= sizeof host)
        return -1;
    memcpy(host, addr, n);
    host[n] = '\0';
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return -1;
        *len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;

        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return -1;
        *len = sizeof *in;
    }
    return 0;
}

/* A socket of type connect()ed to addr; a Unix datagram one is first
 * bound to an abstract name of its own so that replies can come back. */
static int
connected(const char *addr, int type)
{
    struct sockaddr_storage ss;
    socklen_t len;
    sa_family_t fam = AF_UNIX;
    int fd;

    if (addr == NULL || parse_addr(addr, &ss, &len) < 0)
        return -1;
    fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if ((type == SOCK_DGRAM && ss.ss_family == AF_UNIX &&
         bind(fd, (struct sockaddr *)&fam, sizeof fam) < 0) ||
        connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
ssd_connect(const char *addr)
{
    return connected(addr, SOCK_STREAM);
}

int
ssd_dgram(const char *addr)
{
    return connected(addr, SOCK_DGRAM);
}

int
ssd_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
ssd_send_str(int fd, const char *s)
{
    return ssd_send_all(fd, s, strlen(s));
}

ssize_t
ssd_recv_some(int fd, void *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int rc;

    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        errno = ETIMEDOUT;
    if (rc <= 0)
        return -1;
    return recv(fd, buf, len, 0);
}

size_t
ssd_recv_n(int fd, void *buf, size_t len, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    size_t have = 0;

    while (have < len) {
        int left = (int)(deadline - now_ms());
        ssize_t n;

        if (left <= 0)
            break;
        n = ssd_recv_some(fd, (char *)buf + have, len - have, left);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    return have;
}

bool
ssd_recv_until(int fd, char *buf, size_t size, const char *needle,
               int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    size_t have = 0;

    if (size == 0)
        return false;
    buf[0] = '\0';
    while (have < size - 1) {
        int left = (int)(deadline - now_ms());
        ssize_t n;

        if (left <= 0)
            break;
        n = ssd_recv_some(fd, buf + have, size - 1 - have, left);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, needle) != NULL)
            return true;
    }
    return strstr(buf, needle) != NULL;
}

bool
ssd_closed_within(int fd, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    char buf[4096];

    for (;;) {
        int left = (int)(deadline - now_ms());
        ssize_t n;

        if (left <= 0)
            return false;
        n = ssd_recv_some(fd, buf, sizeof buf, left);
        if (n == 0)
            return true;
        if (n < 0 && errno == ETIMEDOUT)
            return false;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return true;        /* reset */
    }
}

long
ssd_proc_status(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    long v = -1;
    FILE *fp;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof line, fp) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = atol(line + n + 1);
            break;
        }
    fclose(fp);
    return v;
}

bool
ssd_echo_once(const char *addr)
{
    char buf[16];
    int fd = ssd_connect(addr);
    bool ok;

    if (fd < 0)
        return false;
    ok = ssd_send_str(fd, "k") == 0 &&
         ssd_recv_until(fd, buf, sizeof buf, "k", 5000);
    shutdown(fd, SHUT_WR);
    close(fd);
    return ok;
}

const char *
ssd_ini_mode(const char *ini, const char *mode)
{
    static __thread char buf[16384];
    static const char from[] = "mode = threading";
    size_t used = 0;
    const char *p = ini, *hit;

    while ((hit = strstr(p, from)) != NULL) {
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%.*s"
                                 "mode = %s", (int)(hit - p), p, mode);
        if (used >= sizeof buf)
            abort();            /* a test's INI this long is a test bug */
        p = hit + sizeof from - 1;
    }
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s", p);
    if (used >= sizeof buf)
        abort();
    return buf;
}

int
ssd_free_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int
ssd_connect_from(const char *src, int port)
{
    struct sockaddr_in me = { .sin_family = AF_INET };
    struct sockaddr_in to = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
        inet_pton(AF_INET, "127.0.0.1", &to.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

size_t
ssd_appendf(char *buf, size_t size, size_t used, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (used >= size)
        n = -1;
    else {
        va_start(ap, fmt);
        n = vsnprintf(buf + used, size - used, fmt, ap);
        va_end(ap);
    }
    if (n < 0 || (size_t)n >= size - used) {
        fprintf(stderr, "ssd_appendf: %zu bytes are too few for the text\n",
                size);
        abort();
    }
    return used + (size_t)n;
}
