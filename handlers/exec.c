/* exec.c: runs a program per connection, with the socket as its stdin and
 * stdout and the UCSPI variables in a clean environment, as tcpserver and
 * inetd do (the core spawns and supervises it: ss_request_spawn). */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_argv.h"
#include "sockserv.h"

#define DEFAULT_PATH "PATH=/usr/bin:/bin"
#define ENV_UCSPI_MAX 6         /* PROTO and five more */
#define GROUPS_MAX 256

struct exec {
    char path[PATH_MAX];        /* the program, resolved */
    char **argv;                /* exec_split's */
    char **env;                 /* env.NAME keys as "NAME=VALUE" */
    size_t nenv;
    bool has_path;              /* env.PATH given */
    bool set_ids;
    atomic_bool ids_warned;     /* "user" could not apply: said once */
    uid_t uid;
    gid_t gid;
    gid_t groups[GROUPS_MAX];
    size_t ngroups;
};

static void
exec_fini(void *state)
{
    struct exec *x = state;

    if (x == NULL)
        return;
    for (size_t i = 0; i < x->nenv; i++)
        free(x->env[i]);
    free(x->env);
    free(x->argv);
    free(x);
}

/*
 * The program named by argv[0]: absolute as it is; with a '/', relative
 * to the configuration file's directory; a bare name in that directory if
 * it is there, else in /usr/bin then /bin (the environment's PATH).
 * Returns 0, or -1 after a configuration error at `command`.
 */
static int
resolve(struct ss_server *srv, struct exec *x)
{
    static const char *const bins[] = { "/usr/bin", "/bin" };
    const char *prog = x->argv[0], *dir = ss_server_config_dir(srv);
    struct stat st;
    int n = -1;

    if (prog[0] == '/')
        n = snprintf(x->path, sizeof x->path, "%s", prog);
    else if (dir != NULL)
        n = snprintf(x->path, sizeof x->path, "%s/%s", dir, prog);
    else
        n = snprintf(x->path, sizeof x->path, "%s", prog);
    if (n < 0 || (size_t)n >= sizeof x->path)
        return ss_server_errorf(srv, "command", "command \"%s\": path too "
                                "long", prog);
    if (strchr(prog, '/') == NULL && stat(x->path, &st) < 0) {
        for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
            n = snprintf(x->path, sizeof x->path, "%s/%s", bins[i], prog);
            if (n > 0 && (size_t)n < sizeof x->path && stat(x->path, &st) == 0)
                break;
        }
    }
    if (stat(x->path, &st) < 0)
        return ss_server_errorf(srv, "command", "command \"%s\": %s", prog,
                                strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ss_server_errorf(srv, "command", "command \"%s\": not a "
                                "regular file", prog);
    if (access(x->path, X_OK) < 0 || (st.st_mode & 0111) == 0)
        return ss_server_errorf(srv, "command", "command \"%s\": not "
                                "executable", prog);
    return 0;
}

/* env.NAME = VALUE keys.  0, or -1 after a configuration error. */
static int
read_env(struct ss_server *srv, struct exec *x)
{
    const char *key, *value;
    size_t iter = 0;

    while ((key = ss_option_each(srv, "env.", &iter, &value)) != NULL) {
        const char *name = key + 4;
        size_t len = strlen(name) + strlen(value) + 2;
        char **v;

        if (!exec_env_name_ok(name))
            return ss_server_errorf(srv, key, "invalid environment name "
                                    "\"%s\" (letters, digits and _, not "
                                    "first a digit)", name);
        v = realloc(x->env, (x->nenv + 1) * sizeof *v);
        if (v == NULL)
            return -1;
        x->env = v;
        if ((x->env[x->nenv] = malloc(len)) == NULL)
            return -1;
        snprintf(x->env[x->nenv++], len, "%s=%s", name, value);
        if (strcmp(name, "PATH") == 0)
            x->has_path = true;
    }
    return 0;
}

/* user and group: names or numbers.  0, or -1 after a configuration
 * error. */
static int
read_ids(struct ss_server *srv, struct exec *x)
{
    const char *user = ss_option(srv, "user");
    const char *group = ss_option(srv, "group");
    struct passwd *pw = NULL;
    struct group *gr = NULL;
    int n = GROUPS_MAX;

    if (user == NULL && group == NULL)
        return 0;
    if (user == NULL)
        return ss_server_errorf(srv, "group", "\"group\" needs \"user\"");
    if ((pw = getpwnam(user)) == NULL)
        return ss_server_errorf(srv, "user", "invalid user \"%s\": no such "
                                "user", user);
    x->uid = pw->pw_uid;
    x->gid = pw->pw_gid;
    if (group != NULL) {
        if ((gr = getgrnam(group)) == NULL)
            return ss_server_errorf(srv, "group", "invalid group \"%s\": no "
                                    "such group", group);
        x->gid = gr->gr_gid;
        x->groups[0] = x->gid;
        x->ngroups = 1;
    } else {
        if (getgrouplist(pw->pw_name, x->gid, x->groups, &n) < 0)
            return ss_server_errorf(srv, "user", "user \"%s\" is in more "
                                    "than %d groups", user, GROUPS_MAX);
        x->ngroups = (size_t)n;
    }
    x->set_ids = true;
    return 0;
}

static int
exec_init(struct ss_server *srv, void **state)
{
    const char *cmd = ss_option(srv, "command"), *why = NULL;
    struct exec *x;
    int rc = 0;

    if ((x = calloc(1, sizeof *x)) == NULL)
        return -1;
    /* every key is read, so that each error is reported (and no key of
     * ours is called unknown) */
    if (cmd == NULL)
        rc = ss_server_errorf(srv, NULL, "exec needs \"command\" (the "
                              "program to run and its arguments)");
    else if ((x->argv = exec_split(cmd, &why)) == NULL)
        rc = ss_server_errorf(srv, "command", "invalid command \"%s\": %s",
                              cmd, why);
    else if (resolve(srv, x) < 0)
        rc = -1;
    if (read_env(srv, x) < 0)
        rc = -1;
    if (read_ids(srv, x) < 0)
        rc = -1;
    if (rc < 0) {
        exec_fini(x);           /* the core frees no state of a failed init */
        return -1;
    }
    /* the program reads the connection itself: the core keeps what
     * follows a PROXY header on the socket for it */
    ss_server_set_exact_reads(srv);
    *state = x;
    return 0;
}

/* An address as tcpserver writes it: dotted IPv4 (an IPv4-mapped IPv6
 * one too), IPv6 text otherwise; and its port. */
static void
format_ip(const struct sockaddr *sa, char *ip, size_t iplen,
          unsigned *port)
{
    ip[0] = '\0';
    *port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip,
                      (socklen_t)iplen);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(in6->sin6_port);
    }
}

/* Variables being made: strings in buf, their pointers in vars. */
struct vars {
    char *buf;
    size_t size, used;
    char **vars;
    size_t n;
};

/* Adds one variable; one that does not fit is left out. */
static void SS_PRINTF(2, 3)
addf(struct vars *v, const char *fmt, ...)
{
    va_list ap;
    int w;

    va_start(ap, fmt);
    w = vsnprintf(v->buf + v->used, v->size - v->used, fmt, ap);
    va_end(ap);
    if (w >= 0 && (size_t)w < v->size - v->used) {
        v->vars[v->n++] = v->buf + v->used;
        v->used += (size_t)w + 1;
    }
}

/* The UCSPI variables of a request into buf (NUL-separated strings),
 * their pointers into vars.  Returns how many. */
static size_t
ucspi(struct ss_request *req, char *buf, size_t size, char **vars)
{
    const struct sockaddr *peer = ss_request_addr(req, NULL);
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    struct vars v = { .buf = buf, .size = size, .vars = vars };
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    pid_t pid;
    uid_t uid;
    gid_t gid;

    if (peer->sa_family == AF_INET || peer->sa_family == AF_INET6) {
        addf(&v, "PROTO=TCP");
        if (ss_request_sockname(req, &local, &llen) == 0) {
            format_ip((struct sockaddr *)&local, ip, sizeof ip, &port);
            addf(&v, "TCPLOCALIP=%s", ip);
            addf(&v, "TCPLOCALPORT=%u", port);
        }
        format_ip(peer, ip, sizeof ip, &port);
        addf(&v, "TCPREMOTEIP=%s", ip);
        addf(&v, "TCPREMOTEPORT=%u", port);
    } else {
        addf(&v, "PROTO=UNIX");
        if (ss_request_peercred(req, &pid, &uid, &gid) == 0) {
            addf(&v, "UNIXREMOTEPID=%ld", (long)pid);
            addf(&v, "UNIXREMOTEUID=%ld", (long)uid);
            addf(&v, "UNIXREMOTEGID=%ld", (long)gid);
        }
    }
    return v.n;
}

/* Runs the program for this connection and waits for it. */
static int
exec_handle(struct ss_request *req)
{
    struct exec *x = ss_request_state(req);
    struct ss_server *srv = ss_request_server(req);
    struct ss_spawn sp = {
        .size = sizeof sp, .path = x->path, .argv = x->argv,
        .set_ids = x->set_ids, .uid = x->uid, .gid = x->gid,
        .groups = x->groups, .ngroups = x->ngroups,
    };
    char vbuf[512];
    char **envp;
    size_t n;
    int status = 0;

    envp = malloc((ENV_UCSPI_MAX + 2 + x->nenv) * sizeof *envp);
    if (envp == NULL)
        return -1;
    n = ucspi(req, vbuf, sizeof vbuf, envp);
    if (!x->has_path)
        envp[n++] = (char *)DEFAULT_PATH;
    for (size_t i = 0; i < x->nenv; i++) {
        size_t nlen = (size_t)(strchr(x->env[i], '=') - x->env[i]) + 1;
        size_t j;

        /* an env.NAME of the same name as a UCSPI variable replaces it */
        for (j = 0; j < n && strncmp(envp[j], x->env[i], nlen) != 0; j++)
            ;
        envp[j] = x->env[i];
        if (j == n)
            n++;
    }
    envp[n] = NULL;
    sp.envp = envp;
    /* [global] user dropped root after init: say so once */
    if (x->set_ids && geteuid() != 0 &&
        !atomic_exchange(&x->ids_warned, true))
        ss_log(SS_LOG_WARNING, "%s: \"user\" does not apply: sockserv no "
               "longer runs as root; programs run as uid %d",
               ss_server_name(srv), (int)geteuid());
    if (ss_request_spawn(req, &sp, &status) < 0) {
        free(envp);
        return -1;
    }
    free(envp);
    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM &&
        WTERMSIG(status) != SIGKILL && WTERMSIG(status) != SIGPIPE)
        ss_log(SS_LOG_WARNING, "%s: %s: %s killed by signal %d (%s)",
               ss_server_name(srv), ss_request_peer(req), x->argv[0],
               WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        ss_log(SS_LOG_DEBUG, "%s: %s: %s exited with status %d",
               ss_server_name(srv), ss_request_peer(req), x->argv[0],
               WEXITSTATUS(status));
    return 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "exec",
    .description = "runs a program per connection (stdin/stdout = socket, "
                   "UCSPI environment)",
    .kinds = SS_STREAM,
    .init = exec_init,
    .fini = exec_fini,
    .handle = exec_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
