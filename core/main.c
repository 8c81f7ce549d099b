/* main.c: the sockserv daemon: command line, config, plugins, signals. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "loader.h"
#include "sockserv.h"

#ifndef SS_HANDLER_DIR
#define SS_HANDLER_DIR "/usr/local/lib/sockserv/handlers"
#endif

enum { EXIT_CONFIG = 2 };

struct instance {
    struct ss_server *srv;
    struct conf *conf;
    pthread_t thread;
    bool started;
};

static atomic_int servers_done;
static pid_t *worker_pids;      /* workers = N: the other processes */
static size_t nworker_pids;
static char *log_path;          /* [global] log_file, reopened on SIGHUP */

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: sockserv [-t|--check] [-P|--plugin-path DIR] "
        "[-l|--log-level LEVEL] CONFIG.ini\n"
        "       sockserv -h|--help, sockserv -V|--version\n"
        "\n"
        "Runs one server per section of CONFIG.ini until SIGINT or SIGTERM.\n"
        "  -t, --check            load the file and every handler, report "
        "problems, exit\n"
        "  -P, --plugin-path DIR  look for handler plugins in DIR first "
        "(repeatable)\n"
        "  -l, --log-level LEVEL  debug, info, warning or error (default "
        "info)\n"
        "  -h, --help             this help\n"
        "  -V, --version          the version and handler ABI\n"
        "Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on "
        "a usage or configuration error.\n");
}

static int
parse_level(const char *s, enum ss_log_level *out)
{
    static const char *const names[] = { "debug", "info", "warning",
                                         "error" };

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum ss_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warn") == 0) {
        *out = SS_LOG_WARNING;
        return 0;
    }
    return -1;
}

/* Config errors from the core, printed as FILE:LINE: message. */
struct err_ctx {
    struct conf *conf;
    struct ss_server *srv;
};

static void
on_server_error(void *arg, int line, const char *msg)
{
    struct err_ctx *ctx = arg;

    if (ctx->srv == NULL || ss_server_error_is_config(ctx->srv))
        conf_error(ctx->conf, line, "%s", msg);
}

/*
 * Beside the running binary: handlers/ (build/sockserv finds
 * build/handlers) and ../lib/sockserv/handlers (an install moved
 * elsewhere as a whole still finds its own handlers).
 */
static void
add_exe_dirs(struct loader_path *lp)
{
    char exe[PATH_MAX], dir[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *bin;

    if (n <= 0)
        return;
    exe[n] = '\0';
    bin = dirname(exe);
    snprintf(dir, sizeof dir, "%s/handlers", bin);
    (void)loader_path_add(lp, dir);
    snprintf(dir, sizeof dir, "%s/../lib/sockserv/handlers", bin);
    (void)loader_path_add(lp, dir);
}

static unsigned
section_kind(const struct conf_section *sec)
{
    const struct conf_kv *t = conf_get(sec, "type");

    if (t == NULL || strcmp(t->value, "tcp") == 0 ||
        strcmp(t->value, "unix-stream") == 0)
        return SS_STREAM;
    if (strcmp(t->value, "udp") == 0 || strcmp(t->value, "unix-dgram") == 0)
        return SS_DGRAM;
    return 0;                   /* invalid: the core reports it */
}

/*
 * Builds one server from its section: plugin, keys, handler init.
 * Returns the server, or NULL after printing FILE:LINE errors.
 */
static struct ss_server *
make_server(struct conf *conf, const struct conf_section *sec,
            const struct loader_path *lp, struct err_ctx *ctx)
{
    const struct conf_kv *hk = conf_get(sec, "handler");
    const struct conf_kv *type = conf_get(sec, "type");
    const struct ss_handler *h;
    struct ss_server *srv;
    char err[1024], *path;
    int failed = 0;

    if (hk == NULL) {
        conf_error(conf, sec->line, "[%s]: missing \"handler\" (a plugin "
                   "name such as echo, or a path to a .so)", sec->name);
        return NULL;
    }
    path = loader_find(lp, hk->value, conf->dir, err, sizeof err);
    if (path == NULL) {
        conf_error(conf, hk->line, "%s", err);
        return NULL;
    }
    h = loader_open(path, section_kind(sec), type ? type->value : "tcp",
                    err, sizeof err);
    free(path);
    if (h == NULL) {
        conf_error(conf, section_kind(sec) && type && strstr(err, "type =")
                   ? type->line : hk->line, "%s", err);
        return NULL;
    }
    srv = ss_server_new(sec->name, h);
    if (srv == NULL) {
        conf_error(conf, sec->line, "%s", strerror(errno));
        return NULL;
    }
    ctx->conf = conf;
    ctx->srv = srv;
    ss_server_set_error_fn(srv, on_server_error, ctx);
    ss_server_set_line(srv, sec->line);
    for (size_t i = 0; i < sec->nkv; i++) {
        const struct conf_kv *kv = &sec->kv[i];
        char buf[PATH_MAX];
        const char *value = kv->value;

        if (kv == hk)
            continue;
        /* a relative socket path is relative to the INI file */
        if (strcmp(kv->key, "path") == 0 && value[0] != '/' &&
            value[0] != '\0') {
            if (snprintf(buf, sizeof buf, "%s/%s", conf->dir, value) >=
                (int)sizeof buf) {
                conf_error(conf, kv->line, "path too long");
                failed = 1;
                continue;
            }
            value = buf;
        }
        if (ss_server_set(srv, kv->key, value, kv->line) < 0)
            failed = 1;
    }
    if (failed || ss_server_init(srv) < 0) {
        if (!failed && !ss_server_error_is_config(srv))
            conf_error(conf, sec->line, "%s", ss_server_error(srv, NULL));
        ss_server_free(srv);
        return NULL;
    }
    return srv;
}

static void *
serve_main(void *arg)
{
    struct instance *in = arg;

    ss_server_serve_forever(in->srv);
    ss_server_close(in->srv);
    atomic_fetch_add(&servers_done, 1);
    kill(getpid(), SIGUSR1);            /* wakes the signal loop */
    return NULL;
}

static const char *const global_keys[] = {
    "plugin_path", "log_level", "log_file", "user", "group",
};

static int
check_global(struct conf *conf, const struct conf_section *g,
             enum ss_log_level *level, bool level_given)
{
    for (size_t i = 0; g != NULL && i < g->nkv; i++) {
        const struct conf_kv *kv = &g->kv[i];
        bool known = false;

        for (size_t k = 0; k < sizeof global_keys / sizeof *global_keys; k++)
            known |= strcmp(kv->key, global_keys[k]) == 0;
        if (!known)
            conf_error(conf, kv->line, "unknown key \"%s\" in [global] "
                       "(plugin_path, log_level, log_file, user, group)",
                       kv->key);
        else if (strcmp(kv->key, "user") == 0 && getpwnam(kv->value) == NULL)
            conf_error(conf, kv->line, "invalid user \"%s\": no such user",
                       kv->value);
        else if (strcmp(kv->key, "group") == 0 &&
                 getgrnam(kv->value) == NULL)
            conf_error(conf, kv->line, "invalid group \"%s\": no such group",
                       kv->value);
        else if (strcmp(kv->key, "log_level") == 0 &&
                 parse_level(kv->value, level_given ? &(enum ss_log_level){0}
                                                    : level) < 0)
            conf_error(conf, kv->line, "invalid log_level \"%s\" (debug, "
                       "info, warning, error)", kv->value);
    }
    return conf->nerrors ? -1 : 0;
}

/*
 * After every server has bound: becomes user (and group, or the user's
 * own), dropping supplementary groups first, and checks that root cannot
 * be regained.  Returns 0, or -1 after logging why.
 */
static int
drop_privileges(const char *user, const char *group)
{
    struct passwd *pw = getpwnam(user);
    struct group *gr = group ? getgrnam(group) : NULL;
    gid_t gid;

    if (pw == NULL || (group != NULL && gr == NULL)) {
        ss_log(SS_LOG_ERROR, "sockserv: user %s or group %s vanished", user,
               group ? group : "-");
        return -1;
    }
    gid = gr ? gr->gr_gid : pw->pw_gid;
    if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid &&
        getgid() == gid && pw->pw_uid != 0)
        return 0;               /* already that user */
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
        ss_log(SS_LOG_ERROR, "sockserv: cannot switch to user %s (group "
               "%d): %s; refusing to run with more privilege than asked",
               user, (int)gid, strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        ss_log(SS_LOG_ERROR, "sockserv: could regain root after switching to "
               "%s; exiting", user);
        return -1;
    }
    ss_log(SS_LOG_INFO, "sockserv: running as user %s (uid %d, gid %d)",
           user, (int)pw->pw_uid, (int)gid);
    return 0;
}

/*
 * Raises the open-file limit to the hard limit: each connection is a
 * descriptor, and a threaded server may hold max_threads of them.
 */
static void
raise_nofile(struct instance *in, size_t n)
{
    struct rlimit rl;
    rlim_t need = 64;

    for (size_t i = 0; i < n; i++)
        need += (rlim_t)ss_server_max_requests(in[i].srv) + 16;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need)
        ss_log(SS_LOG_WARNING, "sockserv: open-file limit is %llu, this "
               "configuration may need %llu (raise the hard limit, e.g. "
               "LimitNOFILE= or ulimit -Hn)", (unsigned long long)rl.rlim_cur,
               (unsigned long long)need);
}

/*
 * workers = N: forks N - 1 more processes for that server, each with its
 * own socket.  Returns the instance a worker serves alone (in the
 * worker), NULL in the original process, or (void *)-1 on failure.
 */
static struct instance *
spawn_workers(struct instance *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long nw = ss_server_workers(in[i].srv);

        for (long k = 1; k < nw; k++) {
            pid_t *pids = realloc(worker_pids, (nworker_pids + 1) *
                                  sizeof *pids);
            pid_t pid;

            if (pids == NULL)
                return (void *)-1;
            worker_pids = pids;
            pid = fork();
            if (pid < 0) {
                ss_log(SS_LOG_ERROR, "%s: cannot start worker %ld: %s",
                       ss_server_name(in[i].srv), k + 1, strerror(errno));
                return (void *)-1;
            }
            if (pid == 0) {
                nworker_pids = 0;
                if (ss_server_reopen(in[i].srv) < 0) {
                    ss_log(SS_LOG_ERROR, "%s",
                           ss_server_error(in[i].srv, NULL));
                    _exit(1);
                }
                ss_log(SS_LOG_INFO, "%s: worker %ld of %ld (pid %d)",
                       ss_server_name(in[i].srv), k + 1, nw, (int)getpid());
                return &in[i];
            }
            worker_pids[nworker_pids++] = pid;
        }
    }
    return NULL;
}

/* Ends the worker processes: SIGTERM was sent; waits for them, at most
 * until the grace period has passed, then kills them. */
static void
reap_workers(double grace)
{
    struct timespec t0, now;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < nworker_pids; i++) {
        for (;;) {
            pid_t r = waitpid(worker_pids[i], NULL, WNOHANG);
            struct timespec ts = { 0, 10 * 1000000L };

            if (r != 0)
                break;          /* gone (or reaped elsewhere) */
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((double)(now.tv_sec - t0.tv_sec) > grace + 3) {
                kill(worker_pids[i], SIGKILL);
                waitpid(worker_pids[i], NULL, 0);
                break;
            }
            nanosleep(&ts, NULL);
        }
    }
}

/*
 * One forking server (the daemon's only one, or a worker's) is served from
 * the main thread, so the process that forks per request has no other
 * thread: a threaded process forks markedly slower (glibc's fork takes and
 * resets every lock and malloc arena, the kernel write-protects every
 * thread's stack; two idle threads cost the plain C forking server about
 * a quarter of its connect rate here).  Signals then come through
 * handlers that do only async-signal-safe things: the first SIGINT or
 * SIGTERM stops the loop, a second exits at once, SIGHUP reopens the log.
 * The lines they log are made beforehand.
 */
static struct ss_server *solo;
static volatile sig_atomic_t solo_sig;
static char *msg_hup_ok, *msg_hup_fail;     /* on the heap: see serve_solo */

/* One line, a then b, in one write (async-signal-safe). */
static void
sig_log(enum ss_log_level level, const char *a, const char *b)
{
    char line[PATH_MAX + 256];
    size_t n = 0;

    if (a == NULL || !ss_log_enabled(level))
        return;
    for (const char *p = a; p != NULL; p = p == a ? b : NULL) {
        size_t k = strlen(p);

        if (k > sizeof line - 1 - n)
            k = sizeof line - 1 - n;
        memcpy(line + n, p, k);
        n += k;
    }
    line[n++] = '\n';
    (void)write(STDERR_FILENO, line, n);
}

static void
on_solo_signal(int sig)
{
    int saved = errno;

    if (sig == SIGHUP) {
        if (log_path == NULL)
            sig_log(SS_LOG_INFO, "sockserv: SIGHUP: logging to stderr, "
                    "nothing to reopen", NULL);
        else if (ss_log_open(log_path) < 0)
            sig_log(SS_LOG_ERROR, msg_hup_fail, strerrordesc_np(errno));
        else
            sig_log(SS_LOG_INFO, msg_hup_ok, NULL);
    } else if (solo_sig != 0) {
        sig_log(SS_LOG_WARNING, sig == SIGINT
                ? "warning: sockserv: second SIGINT, exiting now"
                : "warning: sockserv: second SIGTERM, exiting now", NULL);
        _exit(1);
    } else {
        solo_sig = sig;
        ss_server_shutdown_signal(solo);
    }
    errno = saved;
}

static void
serve_solo(struct instance *in)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction sa = { .sa_handler = on_solo_signal,
                            .sa_flags = SA_RESTART };
    sigset_t unblock;

    /* made now, as a handler cannot format; on the heap, as two paths'
     * worth of .bss would be one more mapping for every fork to copy (if
     * asprintf fails, that line is not logged) */
    if (asprintf(&msg_hup_ok, "sockserv: SIGHUP: reopened %s",
                 log_path ? log_path : "") < 0)
        msg_hup_ok = NULL;
    if (asprintf(&msg_hup_fail, "error: sockserv: SIGHUP: cannot reopen %s: ",
                 log_path ? log_path : "") < 0)
        msg_hup_fail = NULL;
    solo = in->srv;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&unblock);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaddset(&sa.sa_mask, sigs[i]);        /* one handler at a time */
        sigaddset(&unblock, sigs[i]);
    }
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);

    ss_server_serve_forever(in->srv);
    if (solo_sig != 0)
        ss_log(SS_LOG_INFO, "sockserv: %s, shutting down",
               solo_sig == SIGINT ? "SIGINT" : "SIGTERM");
    for (size_t i = 0; i < nworker_pids; i++)
        kill(worker_pids[i], SIGTERM);
    ss_server_close(in->srv);
    pthread_sigmask(SIG_BLOCK, &unblock, NULL);     /* handlers done */
}

/*
 * Waits for signals until every server has stopped.  The first SIGINT or
 * SIGTERM asks each to shut down; past the longest grace period the
 * remaining connections are cut; a second signal exits at once.
 */
static int
signal_loop(struct instance *in, size_t n, const sigset_t *set)
{
    double grace = 0;
    struct timespec now, deadline = { 0, 0 };
    bool stopping = false, forced = false;

    while ((size_t)atomic_load(&servers_done) < n) {
        siginfo_t info;
        int sig;

        if (stopping) {
            struct timespec left;

            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = deadline.tv_sec - now.tv_sec;
            left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_nsec += 1000000000L;
                left.tv_sec--;
            }
            if (left.tv_sec < 0) {
                if (forced) {
                    ss_log(SS_LOG_ERROR, "sockserv: requests did not end "
                           "after shutdown; exiting");
                    return 1;
                }
                for (size_t i = 0; i < n; i++)
                    ss_server_shutdown_now(in[i].srv);
                forced = true;
                clock_gettime(CLOCK_MONOTONIC, &deadline);
                deadline.tv_sec += 5;
                continue;
            }
            sig = sigtimedwait(set, &info, &left);
        } else {
            sig = sigwaitinfo(set, &info);
        }
        if (sig < 0)
            continue;           /* EINTR or EAGAIN: look again */
        if (sig == SIGINT || sig == SIGTERM) {
            if (stopping) {
                ss_log(SS_LOG_WARNING, "sockserv: second %s, exiting now",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
                _exit(1);
            }
            ss_log(SS_LOG_INFO, "sockserv: %s, shutting down",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
            stopping = true;
            for (size_t i = 0; i < nworker_pids; i++)
                kill(worker_pids[i], SIGTERM);
            for (size_t i = 0; i < n; i++) {
                ss_server_shutdown(in[i].srv);
                if (ss_server_shutdown_timeout(in[i].srv) > grace)
                    grace = ss_server_shutdown_timeout(in[i].srv);
            }
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            deadline.tv_sec += (time_t)grace + 1;
        } else if (sig == SIGHUP) {
            if (log_path == NULL)
                ss_log(SS_LOG_INFO, "sockserv: SIGHUP: logging to stderr, "
                       "nothing to reopen");
            else if (ss_log_open(log_path) < 0)
                ss_log(SS_LOG_ERROR, "sockserv: SIGHUP: cannot reopen %s: %s",
                       log_path, strerror(errno));
            else
                ss_log(SS_LOG_INFO, "sockserv: SIGHUP: reopened %s",
                       log_path);
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "check", no_argument, NULL, 't' },
        { "plugin-path", required_argument, NULL, 'P' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct loader_path lp = { 0 };
    struct conf conf;
    struct instance *in = NULL;
    struct err_ctx *ctx = NULL;
    enum ss_log_level level = SS_LOG_INFO;
    bool check = false, level_given = false;
    size_t n = 0;
    sigset_t set;
    int c, status = 0;

    while ((c = getopt_long(argc, argv, "tP:l:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            check = true;
            break;
        case 'P':
            if (loader_path_add(&lp, optarg) < 0)
                return 1;
            break;
        case 'l':
            if (parse_level(optarg, &level) < 0) {
                fprintf(stderr, "sockserv: invalid log level \"%s\" (debug, "
                        "info, warning, error)\n", optarg);
                return EXIT_CONFIG;
            }
            level_given = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sockserv %s (handler ABI %d)\n", SOCKSERV_VERSION,
                   SOCKSERV_ABI);
            return 0;
        default:
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return EXIT_CONFIG;
    }

    if (conf_load(&conf, argv[optind], stderr) < 0) {
        conf_free(&conf);
        loader_path_free(&lp);
        return EXIT_CONFIG;
    }
    const struct conf_section *global = conf_find(&conf, "global");
    const struct conf_kv *pp = conf_get(global, "plugin_path");

    if (check_global(&conf, global, &level, level_given) == 0) {
        ss_log_set_level(level);
        if (loader_path_add_list(&lp, getenv("SOCKSERV_PLUGIN_PATH"),
                                 NULL) < 0 ||
            loader_path_add_list(&lp, pp ? pp->value : NULL, conf.dir) < 0 ||
            loader_path_add(&lp, SS_HANDLER_DIR) < 0)
            conf_error(&conf, 0, "%s", strerror(errno));
        add_exe_dirs(&lp);
    }
    in = calloc(conf.nsec ? conf.nsec : 1, sizeof *in);
    ctx = calloc(conf.nsec ? conf.nsec : 1, sizeof *ctx);
    if (in == NULL || ctx == NULL) {
        conf_error(&conf, 0, "%s", strerror(ENOMEM));
        goto out;
    }
    for (size_t i = 0; i < conf.nsec; i++) {
        if (&conf.sec[i] == global)
            continue;
        in[n].srv = make_server(&conf, &conf.sec[i], &lp, &ctx[n]);
        if (in[n].srv != NULL)
            n++;
    }
    if (conf.nerrors == 0 && n == 0)
        conf_error(&conf, 0, "no servers: add a [name] section with "
                   "handler, type and an address");
    if (conf.nerrors > 0) {
        status = EXIT_CONFIG;
        goto out;
    }
    if (check) {
        fprintf(stderr, "%s: configuration ok (%zu server%s)\n", conf.path,
                n, n == 1 ? "" : "s");
        goto out;
    }
    const struct conf_kv *lf = conf_get(global, "log_file");
    const struct conf_kv *user = conf_get(global, "user");
    const struct conf_kv *group = conf_get(global, "group");

    if (lf != NULL) {
        char buf[PATH_MAX];

        snprintf(buf, sizeof buf, "%s%s%s", lf->value[0] == '/' ? "" :
                 conf.dir, lf->value[0] == '/' ? "" : "/", lf->value);
        log_path = strdup(buf);
        if (log_path == NULL || ss_log_open(log_path) < 0) {
            ss_log(SS_LOG_ERROR, "sockserv: log_file %s: %s", buf,
                   strerror(errno));
            status = 1;
            goto out;
        }
        if (user != NULL) {
            struct passwd *pw = getpwnam(user->value);

            if (pw != NULL && chown(log_path, pw->pw_uid, (gid_t)-1) < 0)
                ss_log(SS_LOG_WARNING, "sockserv: chown %s: %s", log_path,
                       strerror(errno));
        }
    }
    raise_nofile(in, n);

    /* signals go to the loop below only; SIGPIPE never kills us */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (size_t i = 0; i < n; i++) {
        if (ss_server_bind(in[i].srv) < 0) {
            ss_log(SS_LOG_ERROR, "%s", ss_server_error(in[i].srv, NULL));
            status = 1;
            goto out;
        }
        ss_log(SS_LOG_INFO, "%s: listening on %s (%s, %s)",
               ss_server_name(in[i].srv), ss_server_address(in[i].srv),
               ss_server_type(in[i].srv), ss_server_mode(in[i].srv));
    }
    if (user != NULL && drop_privileges(user->value,
                                        group ? group->value : NULL) < 0) {
        status = 1;
        goto out;
    }
    if (user == NULL && group != NULL) {
        ss_log(SS_LOG_ERROR, "sockserv: [global] group needs user");
        status = 1;
        goto out;
    }
    struct instance *mine = spawn_workers(in, n);
    struct instance *run = in;
    size_t nrun = n;

    if (mine == (void *)-1) {
        for (size_t i = 0; i < nworker_pids; i++)
            kill(worker_pids[i], SIGTERM);
        reap_workers(0);
        status = 1;
        goto out;
    }
    if (mine != NULL) {         /* a worker: this one server only */
        run = mine;
        nrun = 1;
    }
    if (nrun == 1 && strcmp(ss_server_mode(run[0].srv), "forking") == 0) {
        serve_solo(&run[0]);
        nrun = 0;               /* nothing to join */
    }
    for (size_t i = 0; i < nrun; i++) {
        if (pthread_create(&run[i].thread, NULL, serve_main, &run[i]) != 0) {
            ss_log(SS_LOG_ERROR, "%s: cannot start: %s",
                   ss_server_name(in[i].srv), strerror(errno));
            status = 1;
            for (size_t k = 0; k < i; k++)
                ss_server_shutdown(run[k].srv);
            atomic_fetch_add(&servers_done, (int)(nrun - i));
            nrun = i;
            break;
        }
        run[i].started = true;
    }
    if (signal_loop(run, nrun, &set) != 0)
        _exit(1);
    for (size_t i = 0; i < nrun; i++)
        if (run[i].started)
            pthread_join(run[i].thread, NULL);
    if (mine != NULL) {
        /* a worker leaves the other servers, and the files, to the parent */
        ss_server_free(mine->srv);
        _exit(status);
    }
    {
        double grace = 0;

        for (size_t i = 0; i < n; i++)
            if (ss_server_shutdown_timeout(in[i].srv) > grace)
                grace = ss_server_shutdown_timeout(in[i].srv);
        reap_workers(grace);
    }
    if (status == 0)
        ss_log(SS_LOG_INFO, "sockserv: stopped");
out:
    for (size_t i = 0; i < n; i++)
        ss_server_free(in[i].srv);
    free(in);
    free(ctx);
    conf_free(&conf);
    loader_path_free(&lp);
    free(log_path);
    free(msg_hup_ok);
    free(msg_hup_fail);
    free(worker_pids);
    return status;
}
