/* main.c: the sockserv daemon: command line, config, plugins, signals;
 * main() runs the steps in order. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "activation.h"
#include "config.h"
#include "control.h"
#include "internal.h"
#include "loader.h"
#include "notify.h"

#ifndef SS_HANDLER_DIR
#define SS_HANDLER_DIR "/usr/local/lib/sockserv/handlers"
#endif

enum { EXIT_CONFIG = 2 };

#define SYSLOG_PATH "/dev/log"  /* syslog(3)'s socket */

/* Seconds the main thread allows beyond a server's own shutdown schedule
 * (shutdown_timeout, then SS_CUT_GRACE twice) before it steps in. */
#define STOP_MARGIN 1.0

/* Config errors from the core, printed as FILE:LINE: message. */
struct err_ctx {
    struct conf *conf;
    struct ss_server *srv;
};

/* One server of this process: a list, as a reload adds and retires them. */
struct instance {
    struct instance *next;
    struct ss_server *srv;
    struct err_ctx ctx;
    char *sig;                  /* its plugin file and keys: a reload
                                 * compares them */
    char *addr;                 /* its address keys */
    void *plugin;               /* its plugin's generation */
    pthread_t thread;
    bool started;
    atomic_bool done;           /* its thread has closed it */
};
static pid_t *worker_pids;      /* workers = N: the other processes */
static size_t nworker_pids;
static char *log_path;          /* [global] log_file, reopened on SIGUSR1 */

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

/* Appends "key=value\n" to a malloc'd *buf.  -1 on ENOMEM. */
static int
append(char **buf, const char *key, const char *value)
{
    char *more;

    if (asprintf(&more, "%s%s=%s\n", *buf ? *buf : "", key,
                 value ? value : "") < 0)
        return -1;
    free(*buf);
    *buf = more;
    return 0;
}

/* What a reload compares: the plugin file and every key (sig), and the
 * keys of the address (addr).  0 or -1. */
static int
signatures(struct instance *in, const struct conf_section *sec)
{
    static const char *const addr_keys[] = { "type", "host", "port",
                                             "path" };
    char id[PATH_MAX + 128];

    loader_identity(in->plugin, id, sizeof id);
    if (append(&in->sig, "plugin", id) < 0)
        return -1;
    for (size_t i = 0; i < sec->nkv; i++)
        if (append(&in->sig, sec->kv[i].key, sec->kv[i].value) < 0)
            return -1;
    for (size_t i = 0; i < sizeof addr_keys / sizeof *addr_keys; i++) {
        const struct conf_kv *kv = conf_get(sec, addr_keys[i]);

        if (append(&in->addr, addr_keys[i], kv ? kv->value : NULL) < 0)
            return -1;
    }
    return 0;
}

/* Frees an instance whose server is closed (or never ran). */
static void
instance_free(struct instance *in)
{
    if (in == NULL)
        return;
    ss_server_free(in->srv);
    loader_close(in->plugin);
    free(in->sig);
    free(in->addr);
    free(in);
}

/*
 * Builds one server from its section: plugin, keys, handler init.
 * Returns it, or NULL after printing FILE:LINE errors.  The same for the
 * start and for a reload.
 */
static struct instance *
make_instance(struct conf *conf, const struct conf_section *sec,
              const struct loader_path *lp)
{
    const struct conf_kv *hk = conf_get(sec, "handler");
    const struct conf_kv *type = conf_get(sec, "type");
    const struct ss_handler *h;
    struct instance *in;
    char err[1024], *path;
    int failed = 0;

    if (hk == NULL) {
        conf_error(conf, sec->line, "[%s]: missing \"handler\" (a plugin "
                   "name such as echo, or a path to a .so)", sec->name);
        return NULL;
    }
    in = calloc(1, sizeof *in);
    if (in == NULL) {
        conf_error(conf, sec->line, "%s", strerror(errno));
        return NULL;
    }
    path = loader_find(lp, hk->value, conf->dir, err, sizeof err);
    if (path == NULL) {
        conf_error(conf, hk->line, "%s", err);
        free(in);
        return NULL;
    }
    h = loader_open(path, section_kind(sec), type ? type->value : "tcp",
                    &in->plugin, err, sizeof err);
    free(path);
    if (h == NULL) {
        conf_error(conf, section_kind(sec) && type && strstr(err, "type =")
                   ? type->line : hk->line, "%s", err);
        free(in);
        return NULL;
    }
    in->srv = ss_server_new(sec->name, h);
    if (in->srv == NULL || signatures(in, sec) < 0) {
        conf_error(conf, sec->line, "%s", strerror(ENOMEM));
        instance_free(in);
        return NULL;
    }
    in->ctx.conf = conf;
    in->ctx.srv = in->srv;
    ss_server_set_error_fn(in->srv, on_server_error, &in->ctx);
    ss_server_set_line(in->srv, sec->line);
    if (ss_server_set_config_dir(in->srv, conf->dir) < 0) {
        conf_error(conf, sec->line, "%s", strerror(ENOMEM));
        instance_free(in);
        return NULL;
    }
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
        if (ss_server_set(in->srv, kv->key, value, kv->line) < 0)
            failed = 1;
    }
    if (failed || ss_server_init(in->srv) < 0) {
        if (!failed && !ss_server_error_is_config(in->srv))
            conf_error(conf, sec->line, "%s",
                       ss_server_error(in->srv, NULL));
        instance_free(in);
        return NULL;
    }
    return in;
}

static const char *const global_keys[] = {
    "plugin_path", "log_level", "log_file", "user", "group",
    "log", "control",
};

/* [global] log = stderr | syslog; syslog leaves no room for log_file. */
static void
check_log(struct conf *conf, const struct conf_section *g,
          const struct conf_kv *kv)
{
    if (strcmp(kv->value, "stderr") != 0 && strcmp(kv->value, "syslog") != 0)
        conf_error(conf, kv->line, "invalid log \"%s\" (stderr, syslog)",
                   kv->value);
    else if (strcmp(kv->value, "syslog") == 0 &&
             conf_get(g, "log_file") != NULL)
        conf_error(conf, kv->line, "log = syslog and log_file exclude each "
                   "other");
}

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
                       "(plugin_path, log_level, log_file, log, user, "
                       "group, control)",
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
        else if (strcmp(kv->key, "log") == 0)
            check_log(conf, g, kv);
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
raise_nofile(struct instance *list)
{
    struct rlimit rl;
    rlim_t need = 64;

    for (struct instance *in = list; in != NULL; in = in->next)
        need += (rlim_t)ss_server_max_requests(in->srv) + 16;
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
spawn_workers(struct instance *list)
{
    for (struct instance *in = list; in != NULL; in = in->next) {
        long nw = ss_server_workers(in->srv);

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
                       ss_server_name(in->srv), k + 1, strerror(errno));
                return (void *)-1;
            }
            if (pid == 0) {
                nworker_pids = 0;
                if (ss_server_reopen(in->srv) < 0) {
                    ss_log(SS_LOG_ERROR, "%s",
                           ss_server_error(in->srv, NULL));
                    _exit(1);
                }
                ss_log(SS_LOG_INFO, "%s: worker %ld of %ld (pid %d)",
                       ss_server_name(in->srv), k + 1, nw, (int)getpid());
                in->next = NULL;        /* this one alone */
                return in;
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
            if ((double)(now.tv_sec - t0.tv_sec) >
                grace + 2 * SS_CUT_GRACE + STOP_MARGIN) {
                kill(worker_pids[i], SIGKILL);
                waitpid(worker_pids[i], NULL, 0);
                break;
            }
            nanosleep(&ts, NULL);
        }
    }
}

/*
 * Signals, handled in one place for every way the daemon serves.  The
 * handler does only async-signal-safe things: the first SIGINT or SIGTERM
 * notes the stop, SIGHUP a reload, and each wakes the main thread (and a
 * server served from the main thread: a flag and a byte down its wake
 * pipe); a second SIGINT or SIGTERM exits at once; SIGUSR1 reopens the
 * log file.  The lines it logs are made beforehand.  Everything else (the
 * log line, the reload, the grace period, the workers) happens in the
 * main thread, which is either waiting in control_loop or, for a server
 * served from it (ss_server_solo: a process that forks per request forks
 * fastest with no other thread), returns from serving.
 */
/* Atomic, not volatile sig_atomic_t: a process-directed signal may be
 * handled by any thread that does not block it (a request's), while the
 * main thread reads these (lock-free atomics are async-signal-safe). */
static struct ss_server *_Atomic solo_srv; /* served from the main thread */
static atomic_int stop_sig, reload_sig;
static int ctl_pipe[2] = { -1, -1 }; /* wakes control_loop */
static char *msg_hup_ok, *msg_hup_fail;     /* on the heap: see below */

/* One line, a then b, in one write (async-signal-safe). */
static void
sig_log(enum ss_log_level level, const char *a, const char *b)
{
    ss_log_str(level, a, b);
}

static void
wake_main(void)
{
    if (ctl_pipe[1] >= 0)
        (void)write(ctl_pipe[1], "x", 1);
}

static void
on_signal(int sig)
{
    int saved = errno, none = 0;
    struct ss_server *solo;

    if (sig == SIGUSR1) {
        for (size_t i = 0; i < nworker_pids; i++)
            kill(worker_pids[i], SIGUSR1);      /* each reopens its own */
        if (log_path == NULL)
            sig_log(SS_LOG_INFO, "sockserv: SIGUSR1: no log_file, nothing "
                    "to reopen", NULL);
        else if (ss_log_reopen() < 0)
            sig_log(SS_LOG_ERROR, msg_hup_fail, strerrordesc_np(errno));
        else
            sig_log(SS_LOG_INFO, msg_hup_ok, NULL);
        errno = saved;
        return;
    }
    if (sig == SIGHUP) {
        reload_sig = 1;
    } else if (!atomic_compare_exchange_strong(&stop_sig, &none, sig)) {
        sig_log(SS_LOG_WARNING, sig == SIGINT
                ? "sockserv: second SIGINT, exiting now"
                : "sockserv: second SIGTERM, exiting now", NULL);
        _exit(1);
    }
    solo = atomic_load(&solo_srv);
    if (solo != NULL)
        ss_server_shutdown_signal(solo);        /* back to the main loop */
    wake_main();
    errno = saved;
}

static const int handled[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };

/* Blocks (or unblocks) the handled signals in this thread. */
static void
mask_signals(int how)
{
    sigset_t set;

    sigemptyset(&set);
    for (size_t i = 0; i < sizeof handled / sizeof *handled; i++)
        sigaddset(&set, handled[i]);
    pthread_sigmask(how, &set, NULL);
}

/* Installs the handler; the caller unblocks the signals in the thread
 * that is to take them.  0 or -1. */
static int
catch_signals(void)
{
    struct sigaction sa = { .sa_handler = on_signal,
                            .sa_flags = SA_RESTART };

    /* made now, as a handler cannot format; on the heap, as two paths'
     * worth of .bss would be one more mapping for every fork to copy (if
     * asprintf fails, that line is not logged) */
    if (asprintf(&msg_hup_ok, "sockserv: SIGUSR1: reopened %s",
                 log_path ? log_path : "") < 0)
        msg_hup_ok = NULL;
    if (asprintf(&msg_hup_fail, "sockserv: SIGUSR1: cannot reopen %s: ",
                 log_path ? log_path : "") < 0)
        msg_hup_fail = NULL;
    if (pipe2(ctl_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        ss_log(SS_LOG_ERROR, "sockserv: pipe: %s", strerror(errno));
        return -1;
    }
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof handled / sizeof *handled; i++)
        sigaddset(&sa.sa_mask, handled[i]);     /* one handler at a time */
    for (size_t i = 0; i < sizeof handled / sizeof *handled; i++)
        sigaction(handled[i], &sa, NULL);
    return 0;
}

static void
announce_stop(void)
{
    ss_log(SS_LOG_INFO, "sockserv: %s, shutting down",
           stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
    (void)daemon_notify_stopping();
}

static void
stop_workers(void)
{
    for (size_t i = 0; i < nworker_pids; i++)
        kill(worker_pids[i], SIGTERM);
}

/* The longest shutdown_timeout of the servers in a list. */
static double
longest_grace(const struct instance *list)
{
    double grace = 0;

    for (const struct instance *in = list; in != NULL; in = in->next)
        if (ss_server_shutdown_timeout(in->srv) > grace)
            grace = ss_server_shutdown_timeout(in->srv);
    return grace;
}

static void *
serve_main(void *arg)
{
    struct instance *in = arg;

    ss_server_serve_forever(in->srv);
    ss_server_close(in->srv);
    atomic_store(&in->done, true);
    wake_main();
    return NULL;
}

/* Serves in from a thread of its own.  0 or -1 (logged). */
static int
start_thread(struct instance *in)
{
    int rc = pthread_create(&in->thread, NULL, serve_main, in);

    if (rc != 0) {
        ss_log(SS_LOG_ERROR, "%s: cannot start: %s", ss_server_name(in->srv),
               strerror(rc));
        return -1;
    }
    in->started = true;
    return 0;
}

/* What the daemon holds from the command line to exit. */
struct daemon {
    struct loader_path lp;
    struct conf *conf;          /* the configuration in force */
    struct conf **old;          /* those it replaced: servers of theirs
                                 * may still report errors on them */
    size_t nold;
    const struct conf_section *global;
    struct instance *live;      /* the servers, n of them, in file order */
    struct instance *retiring;  /* replaced or removed: draining */
    size_t n;
    enum ss_log_level level;
    bool check, level_given;
    bool worker;                /* a workers = N process */
};

/* --list-keys: "global KEY" and "server KEY" lines, every key the daemon
 * knows (the manual's test checks that sockserv.ini(5) has each). */
static void
list_keys(void)
{
    const char *k;

    for (size_t i = 0; i < sizeof global_keys / sizeof *global_keys; i++)
        printf("global %s\n", global_keys[i]);
    printf("server handler\n");
    for (size_t i = 0; (k = ss_settings_key_name(i)) != NULL; i++)
        printf("server %s\n", k);
}

/* The command line.  Returns -1 to go on, or the exit status. */
static int
parse_args(struct daemon *d, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "check", no_argument, NULL, 't' },
        { "plugin-path", required_argument, NULL, 'P' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "list-keys", no_argument, NULL, 'K' },   /* undocumented */
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "tP:l:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            d->check = true;
            break;
        case 'P':
            if (loader_path_add(&d->lp, optarg) < 0)
                return 1;
            break;
        case 'l':
            if (parse_level(optarg, &d->level) < 0) {
                fprintf(stderr, "sockserv: invalid log level \"%s\" (debug, "
                        "info, warning, error)\n", optarg);
                return EXIT_CONFIG;
            }
            d->level_given = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sockserv %s (handler ABI %d)\n", SOCKSERV_VERSION,
                   SOCKSERV_ABI);
            return 0;
        case 'K':
            list_keys();
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
    return -1;
}

/* Builds a server for every section of conf but [global] into *list, in
 * file order.  Their errors go to conf (FILE:LINE).  How many. */
static size_t
make_all(struct conf *conf, const struct conf_section *global,
         const struct loader_path *lp, struct instance **list)
{
    struct instance **tail = list;
    size_t n = 0;

    *list = NULL;
    for (size_t i = 0; i < conf->nsec; i++) {
        if (&conf->sec[i] == global)
            continue;
        if ((*tail = make_instance(conf, &conf->sec[i], lp)) != NULL) {
            tail = &(*tail)->next;
            n++;
        }
    }
    if (conf->nerrors == 0 && n == 0)
        conf_error(conf, 0, "no servers: add a [name] section with "
                   "handler, type and an address");
    return n;
}

static void
free_list(struct instance *list)
{
    while (list != NULL) {
        struct instance *next = list->next;

        instance_free(list);
        list = next;
    }
}

/* Reads the file, [global] and the plugin path, then builds every server
 * (its handler's init included).  0, or -1 after every FILE:LINE error. */
static int
load_config(struct daemon *d, const char *path)
{
    const struct conf_kv *pp;

    d->conf = calloc(1, sizeof *d->conf);
    if (d->conf == NULL || conf_load(d->conf, path, stderr) < 0)
        return -1;
    d->global = conf_find(d->conf, "global");
    pp = conf_get(d->global, "plugin_path");
    if (check_global(d->conf, d->global, &d->level, d->level_given) == 0) {
        ss_log_set_level(d->level);
        if (loader_path_add_list(&d->lp, getenv("SOCKSERV_PLUGIN_PATH"),
                                 NULL) < 0 ||
            loader_path_add_list(&d->lp, pp ? pp->value : NULL,
                                 d->conf->dir) < 0 ||
            loader_path_add(&d->lp, SS_HANDLER_DIR) < 0)
            conf_error(d->conf, 0, "%s", strerror(errno));
        add_exe_dirs(&d->lp);
    }
    d->n = make_all(d->conf, d->global, &d->lp, &d->live);
    return d->conf->nerrors > 0 ? -1 : 0;
}

/* [global] log_file: opened (and given to user) before anything serves.
 * 0 or -1 after logging why. */
static int
open_log(struct daemon *d)
{
    const struct conf_kv *lf = conf_get(d->global, "log_file");
    const struct conf_kv *user = conf_get(d->global, "user");
    const struct conf_kv *to = conf_get(d->global, "log");
    char buf[PATH_MAX];

    if (to != NULL && strcmp(to->value, "syslog") == 0 &&
        ss_log_to_syslog(SYSLOG_PATH) < 0)
        ss_log(SS_LOG_WARNING, "sockserv: syslog %s: %s (lines go to stderr "
               "until it answers)", SYSLOG_PATH, strerror(errno));
    if (lf == NULL)
        return 0;
    snprintf(buf, sizeof buf, "%s%s%s", lf->value[0] == '/' ? "" :
             d->conf->dir, lf->value[0] == '/' ? "" : "/", lf->value);
    log_path = strdup(buf);
    if (log_path == NULL || ss_log_to_file(log_path, true) < 0) {
        ss_log(SS_LOG_ERROR, "sockserv: log_file %s: %s", buf,
               strerror(errno));
        return -1;
    }
    if (user != NULL) {
        struct passwd *pw = getpwnam(user->value);

        if (pw != NULL && chown(log_path, pw->pw_uid, (gid_t)-1) < 0)
            ss_log(SS_LOG_WARNING, "sockserv: chown %s: %s", log_path,
                   strerror(errno));
    }
    return 0;
}

/* The line scripts and tests wait for. */
static void
say_listening(struct ss_server *srv)
{
    ss_log(SS_LOG_INFO, "%s: listening on %s (%s, %s)", ss_server_name(srv),
           ss_server_address(srv), ss_server_type(srv), ss_server_mode(srv));
}

/* Binds every server, or gives it the socket systemd passed for it, and
 * says where it listens.  0 or -1. */
static int
bind_servers(struct daemon *d)
{
    struct activation act;
    int rc = 0;

    if (activation_take(&act) < 0)
        return -1;
    for (struct instance *in = d->live; in != NULL && rc == 0;
         in = in->next) {
        int got = activation_adopt(&act, in->srv);

        if (got < 0 || (got > 0 && ss_server_bind(in->srv) < 0)) {
            ss_log(SS_LOG_ERROR, "%s", ss_server_error(in->srv, NULL));
            rc = -1;
            break;
        }
        say_listening(in->srv);
    }
    activation_done(&act);
    return rc;
}

/* [global] user and group, once every server is bound.  0 or -1. */
static int
become_user(struct daemon *d)
{
    const struct conf_kv *user = conf_get(d->global, "user");
    const struct conf_kv *group = conf_get(d->global, "group");

    if (user == NULL && group != NULL) {
        ss_log(SS_LOG_ERROR, "sockserv: [global] group needs user");
        return -1;
    }
    if (user != NULL && drop_privileges(user->value,
                                        group ? group->value : NULL) < 0)
        return -1;
    return 0;
}

/* ---- reload ----------------------------------------------------------- */

static struct instance *
unlink_named(struct instance **list, const char *name)
{
    for (struct instance **pp = list; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp(ss_server_name((*pp)->srv), name) == 0) {
            struct instance *in = *pp;

            *pp = in->next;
            in->next = NULL;
            return in;
        }
    }
    return NULL;
}

/* Stops in taking requests; its thread drains and closes it, then the
 * control loop frees it. */
static void
retire(struct daemon *d, struct instance *in)
{
    ss_server_shutdown(in->srv);
    in->next = d->retiring;
    d->retiring = in;
}

/* [global] keys a running daemon cannot take: said, not applied. */
static void
note_restart_keys(const struct conf_section *was,
                  const struct conf_section *now)
{
    static const char *const keys[] = { "user", "group", "log_file", "log",
                                        "plugin_path" };

    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const struct conf_kv *a = conf_get(was, keys[i]);
        const struct conf_kv *b = conf_get(now, keys[i]);

        if ((a == NULL) != (b == NULL) ||
            (a != NULL && strcmp(a->value, b->value) != 0))
            ss_log(SS_LOG_WARNING, "sockserv: reload: [global] %s changed: "
                   "it applies at the next restart", keys[i]);
    }
}

/* Puts fresh in service in place of what was live; logs the counts. */
static void
apply(struct daemon *d, struct instance *fresh)
{
    struct instance *old = d->live, *keep = NULL, **tail = &keep;
    size_t added = 0, changed = 0, removed = 0, same = 0, n = 0;

    while (fresh != NULL) {
        struct instance *in = fresh, *was;
        int rc;

        fresh = in->next;
        in->next = NULL;
        was = unlink_named(&old, ss_server_name(in->srv));
        if (was != NULL && strcmp(was->sig, in->sig) == 0) {
            instance_free(in);          /* unchanged: it goes on as it is */
            in = was;
            same++;
        } else {
            if (was != NULL && strcmp(was->addr, in->addr) == 0) {
                /* the same socket goes on under the new keys: not one
                 * connection attempt is refused meanwhile */
                int fd = dup(ss_server_fd(was->srv));

                rc = fd < 0 ? -1 : ss_server_adopt(in->srv, fd);
                if (rc < 0 && fd >= 0)
                    close(fd);
                else if (rc == 0)
                    ss_server_leave_socket_file(was->srv);
            } else {
                rc = ss_server_bind(in->srv);
            }
            if (rc < 0 || start_thread(in) < 0) {
                ss_log(SS_LOG_ERROR, "sockserv: reload: %s; [%s] goes on "
                       "as it was", rc < 0 ? ss_server_error(in->srv, NULL)
                       : "no thread", ss_server_name(in->srv));
                instance_free(in);
                if (was == NULL)
                    continue;
                in = was;
                same++;
            } else {
                say_listening(in->srv);
                if (was != NULL) {
                    retire(d, was);
                    changed++;
                } else {
                    added++;
                }
            }
        }
        *tail = in;
        tail = &in->next;
        n++;
    }
    while (old != NULL) {
        struct instance *in = old;

        old = in->next;
        retire(d, in);
        removed++;
    }
    d->live = keep;
    d->n = n;
    ss_log(SS_LOG_INFO, "sockserv: reloaded: %zu added, %zu changed, %zu "
           "removed, %zu unchanged", added, changed, removed, same);
}

/*
 * SIGHUP: the whole file is read and every server built (each handler's
 * init included) before anything changes; one error and nothing does.
 * Building is make_instance, as at the start.
 */
static void
reload(struct daemon *d)
{
    struct conf *nc = calloc(1, sizeof *nc), **old;
    const struct conf_section *global = NULL;
    struct instance *fresh = NULL;
    enum ss_log_level level = d->level;
    char *errs = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&errs, &len);

    (void)daemon_notify_reloading();
    ss_log(SS_LOG_INFO, "sockserv: SIGHUP: reloading %s", d->conf->path);
    if (nc == NULL || err == NULL) {
        ss_log(SS_LOG_ERROR, "sockserv: reload failed: %s", strerror(errno));
        goto out;
    }
    if (conf_load(nc, d->conf->path, err) == 0) {
        global = conf_find(nc, "global");
        if (check_global(nc, global, &level, d->level_given) == 0)
            (void)make_all(nc, global, &d->lp, &fresh);
    }
    fflush(err);
    if (nc->nerrors > 0) {
        ss_log(SS_LOG_ERROR, "sockserv: reload failed: the configuration in "
               "force goes on");
        for (char *line = errs, *end; line != NULL && *line != '\0';
             line = end ? end + 1 : NULL) {
            end = strchr(line, '\n');
            ss_log(SS_LOG_ERROR, "%.*s", end ? (int)(end - line)
                                             : (int)strlen(line), line);
        }
        free_list(fresh);
        conf_free(nc);
        goto out;
    }
    nc->err = stderr;           /* the servers' later errors */
    note_restart_keys(d->global, global);
    if (level != d->level)
        ss_log_set_level(d->level = level);
    apply(d, fresh);
    old = realloc(d->old, (d->nold + 1) * sizeof *old);
    if (old != NULL) {          /* else the old one stays, as good */
        d->old = old;
        d->old[d->nold++] = d->conf;
        d->conf = nc;
        d->global = global;
        nc = NULL;
    }
out:
    if (err != NULL)
        fclose(err);
    free(errs);
    free(nc);
    (void)daemon_notify_ready(d->n);
}

/* Frees the retired servers whose threads have closed them. */
static void
reap_retired(struct daemon *d)
{
    for (struct instance **pp = &d->retiring; *pp != NULL;) {
        struct instance *in = *pp;

        if (in->started && !atomic_load(&in->done)) {
            pp = &in->next;
            continue;
        }
        *pp = in->next;
        if (in->started)
            pthread_join(in->thread, NULL);
        instance_free(in);
    }
}

static bool
all_done(const struct instance *list)
{
    for (; list != NULL; list = list->next)
        if (!atomic_load(&list->done))
            return false;
    return true;
}

/*
 * The main thread while servers run in their own threads: reloads on
 * SIGHUP, frees what a reload retired once it has drained, and stops on
 * the first SIGINT or SIGTERM: each server is asked to shut down (each
 * closes within its shutdown_timeout and SS_CUT_GRACE twice); past that
 * and STOP_MARGIN the remaining connections are cut; if even that does
 * not end them, it gives up (1).
 */
static int
control_loop(struct daemon *d)
{
    double deadline = -1;
    bool stopping = false, forced = false;

    mask_signals(SIG_UNBLOCK);
    while (!all_done(d->live) || d->retiring != NULL) {
        struct pollfd pfd = { .fd = ctl_pipe[0], .events = POLLIN };
        char buf[64];

        (void)poll(&pfd, 1, deadline < 0 ? -1 : ss_ms_until(deadline));
        while (read(ctl_pipe[0], buf, sizeof buf) > 0)
            ;
        if (reload_sig && !stopping) {
            reload_sig = 0;
            if (d->worker)
                ss_log(SS_LOG_INFO, "sockserv: SIGHUP: a worker process "
                       "does not reload (its parent does)");
            else
                reload(d);
        }
        reap_retired(d);
        if (stop_sig != 0 && !stopping) {
            announce_stop();
            stopping = true;
            stop_workers();
            for (struct instance *in = d->live; in != NULL; in = in->next)
                ss_server_shutdown(in->srv);
            deadline = ss_now() + longest_grace(d->live) + STOP_MARGIN;
            if (longest_grace(d->retiring) > longest_grace(d->live))
                deadline += longest_grace(d->retiring) -
                            longest_grace(d->live);
        } else if (stopping && ss_now() >= deadline) {
            if (forced) {
                ss_log(SS_LOG_ERROR, "sockserv: requests did not end after "
                       "shutdown; exiting");
                return 1;
            }
            for (struct instance *in = d->live; in != NULL; in = in->next)
                ss_server_shutdown_now(in->srv);
            for (struct instance *in = d->retiring; in != NULL;
                 in = in->next)
                ss_server_shutdown_now(in->srv);
            forced = true;
            deadline = ss_now() + 2 * SS_CUT_GRACE + STOP_MARGIN;
        }
    }
    mask_signals(SIG_BLOCK);
    return 0;
}

/*
 * Serves until stopped: a lone server of a mode that wants the main
 * thread is served from it until a reload (from then on every server
 * has a thread of its own); otherwise each server has a thread and the
 * main thread runs control_loop.  Returns the exit status.
 */
static int
serve(struct daemon *d)
{
    int status = 0;

    if (catch_signals() < 0)
        return 1;
    if (d->n == 1 && ss_server_solo(d->live->srv)) {
        struct ss_server *srv = d->live->srv;

        solo_srv = srv;
        mask_signals(SIG_UNBLOCK);
        ss_server_serve_forever(srv);
        if (stop_sig != 0 || !reload_sig) {
            /* signals stay on while it closes: a second one exits */
            announce_stop();
            stop_workers();
            ss_server_close(srv);
            mask_signals(SIG_BLOCK);
            solo_srv = NULL;
            atomic_store(&d->live->done, true);
            return 0;
        }
        mask_signals(SIG_BLOCK);
        solo_srv = NULL;
        if (stop_sig == 0)
            ss_server_resume(srv);  /* on, from a thread, for the reload */
    }
    for (struct instance *in = d->live; in != NULL; in = in->next) {
        if (!in->started && start_thread(in) < 0) {
            status = 1;
            stop_sig = SIGTERM;
            wake_main();
            for (struct instance *k = in; k != NULL; k = k->next)
                atomic_store(&k->done, true);
            break;
        }
    }
    if (control_loop(d) != 0)
        _exit(1);
    for (struct instance *in = d->live; in != NULL; in = in->next)
        if (in->started)
            pthread_join(in->thread, NULL);
    return status;
}

/* Runs the configuration: binds, drops privileges, starts the workers,
 * serves until stopped.  Returns the exit status. */
static int
run(struct daemon *d)
{
    struct instance *mine;
    int status;

    if (open_log(d) < 0)
        return 1;
    raise_nofile(d->live);
    /* the signals wait for their handler; SIGPIPE never kills us */
    signal(SIGPIPE, SIG_IGN);
    mask_signals(SIG_BLOCK);
    /* the control socket first: once a server says it listens, the
     * socket answers */
    if (control_open(d->conf, d->global) < 0 || bind_servers(d) < 0 ||
        become_user(d) < 0)
        return 1;
    mine = spawn_workers(d->live);
    if (mine == (void *)-1) {
        stop_workers();
        reap_workers(0);
        return 1;
    }
    if (mine != NULL) {
        /* a worker serves this one server, and leaves the other servers
         * and the files to the parent */
        d->live = mine;
        d->n = 1;
        d->worker = true;
        status = serve(d);
        ss_server_free(mine->srv);
        _exit(status);
    }
    (void)daemon_notify_ready(d->n);
    if (control_start() < 0) {
        stop_workers();
        status = 1;
    } else {
        status = serve(d);
    }
    control_close();
    reap_workers(longest_grace(d->live));
    if (status == 0)
        ss_log(SS_LOG_INFO, "sockserv: stopped");
    return status;
}

int
main(int argc, char **argv)
{
    struct daemon d = { .level = SS_LOG_INFO };
    int status = parse_args(&d, argc, argv);

    if (status >= 0)
        goto out;
    if (load_config(&d, argv[optind]) < 0)
        status = EXIT_CONFIG;
    else if (d.check)
        status = (fprintf(stderr, "%s: configuration ok (%zu server%s)\n",
                          d.conf->path, d.n, d.n == 1 ? "" : "s"), 0);
    else
        status = run(&d);
out:
    control_close();            /* after an error: the socket file too */
    free_list(d.live);
    free_list(d.retiring);
    if (d.conf != NULL)
        conf_free(d.conf);      /* loaded, perhaps in part */
    free(d.conf);
    for (size_t i = 0; i < d.nold; i++) {
        conf_free(d.old[i]);
        free(d.old[i]);
    }
    free(d.old);
    loader_path_free(&d.lp);
    free(log_path);
    free(msg_hup_ok);
    free(msg_hup_fail);
    free(worker_pids);
    return status;
}
