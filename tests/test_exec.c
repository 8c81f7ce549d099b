/* test_exec.c: the exec handler against the real daemon, in threading,
 * forking and event modes: the UCSPI environment on tcp and unix-stream
 * (field by field, and side by side with Debian's tcpserver and xinetd),
 * env.NAME, stderr in the log, user/group, configuration errors, and
 * programs that crash, hang, close stdout early, outlive their client, or
 * come 200 at once (no zombie, no descriptor leak, only 0, 1, 2), and a
 * child that keeps the connection after its program exits. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "support/daemon.h"
#include "../handlers/exec_argv.h"

#define WAIT_MS 5000                /* the bound on any one wait */
#define MANY 200                    /* connections at once */

static const char *const modes[] = { "threading", "forking", "event" };
#define NMODES (sizeof modes / sizeof modes[0])

static char dir[256];               /* the programs the tests run */

/* ---- helpers ------------------------------------------------------------ */

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
write_prog(const char *name, const char *text, mode_t mode)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sockserv-exec-XXXXXX");
    if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0)
        return -1;
    /* prints its arguments and environment, one NAME=VALUE a line */
    write_prog("env.sh", "#!/bin/sh\necho \"args=$#:$1:$2\"\n"
               "echo 'hello from stderr' >&2\nexec env\n", 0755);
    write_prog("fds.sh", "#!/bin/sh\nexec ls -l /proc/self/fd/\n", 0755);
    write_prog("crash.sh", "#!/bin/sh\necho before\nkill -SEGV $$\n", 0755);
    /* ignores SIGTERM, and so does the child it leaves running */
    write_prog("hang.sh", "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\n"
               "echo \"ready $$ $!\"\n"
               "while :; do sleep 1; done\n", 0755);
    write_prog("term.sh", "#!/bin/sh\ntrap 'echo got TERM >&2; exit 0' TERM\n"
               "echo ready\nwhile :; do sleep 0.1; done\n", 0755);
    write_prog("spam.sh", "#!/bin/sh\nseq 1 3000 >&2\n"
               "printf 'tab\\there\\001\\n' >&2\necho done\n", 0755);
    write_prog("early.sh", "#!/bin/sh\necho early\nexec >&- <&-\n"
               "sleep 1\necho 'early done' >&2\n", 0755);
    write_prog("yes.sh", "#!/bin/sh\nexec yes 0123456789abcdef\n", 0755);
    write_prog("sleep.sh", "#!/bin/sh\nsleep 1\necho done\n", 0755);
    write_prog("id.sh", "#!/bin/sh\necho \"$(id -u) $(id -g) $(id -G)\"\n",
               0755);
    write_prog("noexec.sh", "#!/bin/sh\necho never\n", 0644);
    write_prog("line.sh", "#!/bin/sh\nread line\n"
               "echo \"got $line from $TCPREMOTEIP $TCPREMOTEPORT\"\n", 0755);
    /* once told, leaves a child holding the connection (its stdout) and
     * exits */
    write_prog("stray.sh", "#!/bin/sh\nread go\nsleep 2 &\n"
               "echo \"pid $$\"\n", 0755);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* One exec section named "x" running command (DIR/ first, when relative)
 * in mode, with extra keys; tcp unless unix. */
static const char *
exec_ini(const char *mode, const char *command, bool unix_stream,
         const char *extra)
{
    static char ini[4096];
    size_t used = 0;

    used = ssd_appendf(ini, sizeof ini, used,
                       "[x]\nhandler = exec\nmode = %s\n", mode);
    if (unix_stream)
        used = ssd_appendf(ini, sizeof ini, used, "type = unix-stream\n"
                       "path = @DIR@/x.sock\n");
    else
        used = ssd_appendf(ini, sizeof ini, used, "type = tcp\n"
                       "host = 127.0.0.1\nport = 0\n");
    used = ssd_appendf(ini, sizeof ini, used, "command = %s%s%s\n",
                   command[0] == '/' ? "" : dir, command[0] == '/' ? "" : "/",
                   command);
    if (extra != NULL)
        (void)ssd_appendf(ini, sizeof ini, used, "%s", extra);
    return ini;
}

/* Reads a stream until the peer closes it (NUL-terminated).  Returns the
 * bytes read, or -1 if it did not end within WAIT_MS or overflowed. */
static ssize_t
read_to_eof(int fd, char *buf, size_t size)
{
    size_t have = 0;

    for (;;) {
        ssize_t n = ssd_recv_some(fd, buf + have, size - 1 - have, WAIT_MS);

        if (n == 0) {
            buf[have] = '\0';
            return (ssize_t)have;
        }
        if (n < 0)
            return -1;
        have += (size_t)n;
        if (have == size - 1)
            return -1;
    }
}

/* The value of NAME in env.sh's output (a static copy), NULL if absent. */
static const char *
env_get(const char *out, const char *name)
{
    static char val[512];
    size_t nlen = strlen(name);

    for (const char *p = out; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);

        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            snprintf(val, sizeof val, "%.*s", (int)(len - nlen - 1),
                     p + nlen + 1);
            return val;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* Every NAME in env.sh's output is one of allowed (or one the shell
 * itself sets: PWD, OLDPWD, SHLVL, _). */
static void
assert_env_only(const char *out, const char *const *allowed)
{
    static const char *const shell[] = { "PWD", "OLDPWD", "SHLVL", "_",
                                         "args" };

    for (const char *p = out; p != NULL && *p != '\0';) {
        const char *eq = strchr(p, '='), *eol = strchr(p, '\n');
        bool ok = false;
        size_t nlen;

        assert_non_null(eq);
        nlen = (size_t)(eq - p);
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strlen(allowed[i]) == nlen && !strncmp(p, allowed[i], nlen);
        for (size_t i = 0; i < sizeof shell / sizeof shell[0] && !ok; i++)
            ok = strlen(shell[i]) == nlen && !strncmp(p, shell[i], nlen);
        if (!ok)
            fail_msg("unexpected variable %.*s", (int)nlen, p);
        p = eol ? eol + 1 : NULL;
    }
}

static int
local_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;

    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

/* Runs env.sh through the server at addr (tcp) and checks each UCSPI
 * field against what the client itself sees.  Returns the output in out. */
static void
check_tcp_env(const char *addr, int server_port, char *out, size_t size)
{
    int fd = ssd_connect(addr), port;
    char want[32];

    assert_true(fd >= 0);
    port = local_port(fd);
    assert_true(read_to_eof(fd, out, size) > 0);
    close(fd);
    assert_string_equal(env_get(out, "PROTO"), "TCP");
    assert_string_equal(env_get(out, "TCPREMOTEIP"), "127.0.0.1");
    snprintf(want, sizeof want, "%d", port);
    assert_string_equal(env_get(out, "TCPREMOTEPORT"), want);
    assert_string_equal(env_get(out, "TCPLOCALIP"), "127.0.0.1");
    snprintf(want, sizeof want, "%d", server_port);
    assert_string_equal(env_get(out, "TCPLOCALPORT"), want);
}

/* /proc/PID/stat: its state letter and parent.  False if it is gone. */
static bool
proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512], *rp;
    FILE *fp;
    size_t n;
    int pp;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((fp = fopen(path, "r")) == NULL)
        return false;
    n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rp = strrchr(buf, ')');
    if (rp == NULL || sscanf(rp + 1, " %c %d", state, &pp) != 2)
        return false;
    *ppid = pp;
    return true;
}

/* The processes below pid (children, grandchildren...), and how many of
 * them are zombies. */
static int
descendants(pid_t pid, int *zombies)
{
    static pid_t pids[32768], parents[32768];
    static char states[32768];
    size_t n = 0;
    int count = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < 32768) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pids[n] = atoi(e->d_name);
        if (proc_stat(pids[n], &states[n], &parents[n]))
            n++;
    }
    closedir(d);
    *zombies = 0;
    for (size_t i = 0; i < n; i++) {
        pid_t p = parents[i];

        for (int depth = 0; p > 1 && p != pid && depth < 64; depth++) {
            size_t j;

            for (j = 0; j < n && pids[j] != p; j++)
                ;
            p = j < n ? parents[j] : 0;
        }
        if (p == pid && pids[i] != pid) {
            count++;
            *zombies += states[i] == 'Z';
        }
    }
    return count;
}

/* Waits (WAIT_MS * 2) until the daemon has no process below it. */
static void
assert_no_descendants(pid_t pid)
{
    double deadline = now_s() + 2.0 * WAIT_MS / 1000;
    int n, z;

    while ((n = descendants(pid, &z)) > 0 && now_s() < deadline)
        poll(NULL, 0, 20);
    if (n != 0)
        fail_msg("%d processes (%d zombies) still below the daemon", n, z);
}

static int
count_fds(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the command splitter ----------------------------------------------- */

static void
test_exec_split(void **state)
{
    static const struct { const char *in; const char *out[6]; } ok[] = {
        { "/bin/prog", { "/bin/prog" } },
        { "  prog\ta   b  ", { "prog", "a", "b" } },
        { "prog \"b c\" d", { "prog", "b c", "d" } },
        { "prog x\"y z\"w", { "prog", "xy zw" } },
        { "prog \"\" \"q\\\"q\" \"s\\\\\" a\\b", { "prog", "", "q\"q", "s\\",
                                              "a\\b" } },
    };
    static const struct { const char *in, *why; } bad[] = {
        { "prog \"open", "unterminated quote" },
        { "   \t ", "empty command" },
        { "", "empty command" },
    };
    char many[2 * EXEC_ARGS_MAX + 8];

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *why = NULL;
        char **argv = exec_split(ok[i].in, &why);
        size_t n = 0;

        assert_non_null(argv);
        for (; ok[i].out[n] != NULL; n++) {
            assert_non_null(argv[n]);
            assert_string_equal(argv[n], ok[i].out[n]);
        }
        assert_null(argv[n]);
        free(argv);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;

        assert_null(exec_split(bad[i].in, &why));
        assert_string_equal(why, bad[i].why);
    }
    /* EXEC_ARGS_MAX words pass, one more does not */
    for (size_t i = 0; i < EXEC_ARGS_MAX; i++)
        memcpy(many + 2 * i, "a ", 2);
    many[2 * EXEC_ARGS_MAX] = '\0';
    {
        const char *why = NULL;
        char **argv = exec_split(many, &why);

        assert_non_null(argv);
        assert_null(argv[EXEC_ARGS_MAX]);
        free(argv);
        memcpy(many + 2 * EXEC_ARGS_MAX, "b", 2);
        assert_null(exec_split(many, &why));
        assert_string_equal(why, "too many arguments");
    }
    assert_true(exec_env_name_ok("_A1"));
    assert_false(exec_env_name_ok("1A"));
    assert_false(exec_env_name_ok("A-B"));
    assert_false(exec_env_name_ok(""));
}

/* ---- the environment ---------------------------------------------------- */

static void
test_env_tcp(void **state)
{
    static const char *const allowed[] = {
        "PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP",
        "TCPLOCALPORT", "PATH", "FOO", NULL,
    };

    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[8192];

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "env.sh a \"b c\"",
                                                false, "env.FOO = bar baz\n"),
                                   1, NULL), 0);
        check_tcp_env(ssd_addr(&d, "x"), ssd_port(&d, "x"), out, sizeof out);
        assert_string_equal(env_get(out, "args"), "2:a:b c");
        assert_string_equal(env_get(out, "PATH"), "/usr/bin:/bin");
        assert_string_equal(env_get(out, "FOO"), "bar baz");
        assert_env_only(out, allowed);
        /* its stderr, in the daemon's log after the section's name */
        assert_true(ssd_log_wait(&d, "x: hello from stderr", WAIT_MS));
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

static void
test_env_unix_stream(void **state)
{
    static const char *const allowed[] = {
        "PROTO", "UNIXREMOTEPID", "UNIXREMOTEUID", "UNIXREMOTEGID", "PATH",
        NULL,
    };

    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[8192], want[32];
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "env.sh", true,
                                                NULL), 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        assert_string_equal(env_get(out, "PROTO"), "UNIX");
        snprintf(want, sizeof want, "%d", (int)getpid());
        assert_string_equal(env_get(out, "UNIXREMOTEPID"), want);
        snprintf(want, sizeof want, "%d", (int)getuid());
        assert_string_equal(env_get(out, "UNIXREMOTEUID"), want);
        snprintf(want, sizeof want, "%d", (int)getgid());
        assert_string_equal(env_get(out, "UNIXREMOTEGID"), want);
        assert_null(env_get(out, "TCPREMOTEIP"));
        assert_env_only(out, allowed);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* env.NAME may replace PATH; a bad name is a configuration error. */
static void
test_env_keys(void **state)
{
    struct ssd d;
    char out[8192], *log = NULL;

    (void)state;
    assert_int_equal(ssd_start(&d, exec_ini("threading", "env.sh", false,
                                            "env.PATH = /bin\n"
                                            "env.A_1 = x=y\n"), 1, NULL), 0);
    check_tcp_env(ssd_addr(&d, "x"), ssd_port(&d, "x"), out, sizeof out);
    assert_string_equal(env_get(out, "PATH"), "/bin");
    assert_string_equal(env_get(out, "A_1"), "x=y");
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);

    assert_int_equal(ssd_run(exec_ini("threading", "env.sh", false,
                                      "env.1BAD = x\n"), NULL, &log), 2);
    assert_non_null(strstr(log, "test.ini:8: invalid environment name "
                           "\"1BAD\""));
    free(log);
}

/* ---- side by side with tcpserver and xinetd ----------------------------- */

/* Waits until the file at path holds needle (a log being written). */
static bool
file_wait(const char *path, const char *needle, int timeout_ms)
{
    double deadline = now_s() + timeout_ms / 1000.0;
    char buf[8192];

    do {
        FILE *fp = fopen(path, "r");

        if (fp != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, fp);

            fclose(fp);
            buf[n] = '\0';
            if (strstr(buf, needle) != NULL)
                return true;
        }
        poll(NULL, 0, 20);
    } while (now_s() < deadline);
    return false;
}

/* Starts argv with stdout and stderr to the file log; returns its pid. */
static pid_t
start_tool(char *const argv[], const char *log)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void
stop_tool(pid_t pid)
{
    int status;

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* The same program behind sockserv, tcpserver and xinetd: the same UCSPI
 * values for the same client where each defines them (tcpserver: all of
 * them; xinetd: REMOTE_HOST, the client's address), and the same output
 * otherwise. */
static void
test_side_by_side_tcpserver_xinetd(void **state)
{
    char prog[300], log[300], conf[300], port_s[16], addr[64];
    char ours[8192], theirs[8192], xout[8192];
    int tport, xport, fd;
    pid_t tpid, xpid;
    FILE *fp;

    (void)state;
    snprintf(prog, sizeof prog, "%s/env.sh", dir);

    /* tcpserver -H -R: no DNS or ident lookups, so no TCPREMOTEHOST/INFO */
    tport = ssd_free_port();
    assert_true(tport > 0);
    snprintf(port_s, sizeof port_s, "%d", tport);
    snprintf(log, sizeof log, "%s/tcpserver.log", dir);
    {
        char *argv[] = { "/usr/bin/tcpserver", "-v", "-H", "-R", "-l", "0",
                         "127.0.0.1", port_s, prog, "a", "b c", NULL };

        tpid = start_tool(argv, log);
    }
    assert_true(file_wait(log, "tcpserver: status: 0/", WAIT_MS));
    snprintf(addr, sizeof addr, "127.0.0.1:%d", tport);
    check_tcp_env(addr, tport, theirs, sizeof theirs);
    stop_tool(tpid);

    /* xinetd, its own configuration, in the foreground */
    xport = ssd_free_port();
    assert_true(xport > 0);
    snprintf(conf, sizeof conf, "%s/xinetd.conf", dir);
    fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp, "service sockserv-exec-test\n{\n    type = UNLISTED\n"
            "    port = %d\n    socket_type = stream\n    protocol = tcp\n"
            "    wait = no\n    user = %s\n    server = %s\n"
            "    server_args = a b\n    bind = 127.0.0.1\n}\n", xport,
            getpwuid(getuid())->pw_name, prog);
    assert_int_equal(fclose(fp), 0);
    snprintf(log, sizeof log, "%s/xinetd.log", dir);
    {
        char pidf[300];
        char *argv[] = { "/usr/sbin/xinetd", "-dontfork", "-stayalive",
                         "-f", conf,
                         "-pidfile", pidf, "-filelog", log, NULL };

        snprintf(pidf, sizeof pidf, "%s/xinetd.pid", dir);
        xpid = start_tool(argv, log);
    }
    assert_true(file_wait(log, "Started working", WAIT_MS));
    snprintf(addr, sizeof addr, "127.0.0.1:%d", xport);
    fd = ssd_connect(addr);
    assert_true(fd >= 0);
    assert_true(read_to_eof(fd, xout, sizeof xout) > 0);
    close(fd);
    stop_tool(xpid);

    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        static const char *const same[] = { "PROTO", "TCPREMOTEIP",
                                            "TCPLOCALIP", "args", NULL };

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "env.sh a \"b c\"",
                                                false, NULL), 1, NULL), 0);
        check_tcp_env(ssd_addr(&d, "x"), ssd_port(&d, "x"), ours,
                      sizeof ours);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
        for (size_t i = 0; same[i] != NULL; i++) {
            char v[512];

            snprintf(v, sizeof v, "%s", env_get(ours, same[i]));
            assert_string_equal(v, env_get(theirs, same[i]));
        }
        assert_string_equal(env_get(ours, "TCPREMOTEIP"),
                            env_get(xout, "REMOTE_HOST"));
        assert_string_equal(env_get(xout, "args"), "2:a:b");
    }
}

/* ---- users ------------------------------------------------------------ */

static void
test_user_group(void **state)
{
    struct passwd *pw = getpwnam("nobody");
    struct group *gr = getgrnam("nogroup");
    char extra[128], out[256], want[128], *log = NULL;

    (void)state;
    if (geteuid() != 0 || pw == NULL || gr == NULL) {
        fprintf(stderr, "test_user_group: needs root, user nobody and group "
                "nogroup: skipped\n");
        skip();
    }
    snprintf(want, sizeof want, "%d %d %d\n", (int)pw->pw_uid,
             (int)gr->gr_gid, (int)gr->gr_gid);
    snprintf(extra, sizeof extra, "user = nobody\ngroup = nogroup\n");
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "id.sh", false,
                                                extra), 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        assert_string_equal(out, want);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
    /* a daemon that drops root ([global] user) runs programs as itself,
     * and says once that "user" does not apply */
    {
        char ini[2048];
        struct ssd d;
        int fd;

        snprintf(ini, sizeof ini, "[global]\nuser = nobody\n\n%s",
                 exec_ini("event", "id.sh", false, "user = root\n"));
        assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
        for (int i = 0; i < 2; i++) {
            fd = ssd_connect(ssd_addr(&d, "x"));
            assert_true(fd >= 0);
            assert_true(read_to_eof(fd, out, sizeof out) > 0);
            close(fd);
            assert_int_equal(atoi(out), (int)pw->pw_uid);
        }
        assert_true(ssd_log_wait(&d, "x: \"user\" does not apply: sockserv "
                                 "no longer runs as root", WAIT_MS));
        log = ssd_log_copy(&d);
        assert_non_null(log);
        assert_null(strstr(strstr(log, "does not apply") + 1,
                           "does not apply"));
        free(log);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
    assert_int_equal(ssd_run(exec_ini("threading", "id.sh", false,
                                      "user = no-such-user-x\n"), NULL, &log),
                     2);
    assert_non_null(strstr(log, "test.ini:8: invalid user "
                           "\"no-such-user-x\": no such user"));
    free(log);
}

/* ---- configuration errors ----------------------------------------------- */

static void
test_bad_command_is_config_error(void **state)
{
    static const struct { const char *cmd, *msg; } cases[] = {
        { "/nonexistent/prog", "test.ini:7: command \"/nonexistent/prog\": "
                               "No such file or directory" },
        { "noexec.sh", "test.ini:7: command \"%s/noexec.sh\": not "
                       "executable" },
        { "env.sh \"open", "test.ini:7: invalid command \"%s/env.sh \"open"
                           "\": unterminated quote" },
    };
    char *log = NULL, want[512];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ssd_run(exec_ini("threading", cases[i].cmd, false,
                                          NULL), NULL, &log), 2);
        snprintf(want, sizeof want, cases[i].msg, dir);
        if (strstr(log, want) == NULL)
            fail_msg("want \"%s\" in:\n%s", want, log);
        free(log);
    }
    assert_int_equal(ssd_run("[x]\nhandler = exec\ntype = tcp\n"
                             "host = 127.0.0.1\nport = 0\n", NULL, &log), 2);
    assert_non_null(strstr(log, "test.ini:1: exec needs \"command\""));
    free(log);
    /* every error, each at its line, none of ours "unknown" */
    assert_int_equal(ssd_run("[x]\nhandler = exec\ntype = tcp\n"
                             "host = 127.0.0.1\nport = 0\n"
                             "command = /nonexistent/prog\nenv.9 = x\n"
                             "user = no-such-user-x\n", NULL, &log), 2);
    assert_non_null(strstr(log, "test.ini:6: command \"/nonexistent/prog\""));
    assert_non_null(strstr(log, "test.ini:7: invalid environment name "
                           "\"9\""));
    assert_non_null(strstr(log, "test.ini:8: invalid user"));
    assert_null(strstr(log, "unknown key"));
    free(log);
    /* a relative command is relative to the INI file */
    assert_int_equal(ssd_run("[x]\nhandler = exec\ntype = tcp\n"
                             "host = 127.0.0.1\nport = 0\n"
                             "command = sub/prog\n", NULL, &log), 2);
    assert_non_null(strstr(log, "test.ini:6: command \"sub/prog\": No such "
                           "file or directory"));
    free(log);
}

/* A relative command is relative to the INI file's directory (both it
 * and the programs' are in /tmp), not to the daemon's working directory;
 * a bare name not there is looked for in /usr/bin and /bin. */
static void
test_relative_command(void **state)
{
    char ini[1024], out[8192];
    const char *base = strrchr(dir, '/') + 1;
    struct ssd d;
    int fd;

    (void)state;
    assert_string_not_equal(getcwd(out, sizeof out), "/tmp");
    snprintf(ini, sizeof ini, "[x]\nhandler = exec\nmode = threading\n"
             "type = tcp\nhost = 127.0.0.1\nport = 0\n"
             "command = ../%s/env.sh rel\n\n"
             "[y]\nhandler = exec\nmode = event\ntype = tcp\n"
             "host = 127.0.0.1\nport = 0\ncommand = echo bare\n", base);
    assert_int_equal(ssd_start(&d, ini, 2, NULL), 0);
    check_tcp_env(ssd_addr(&d, "x"), ssd_port(&d, "x"), out, sizeof out);
    assert_string_equal(env_get(out, "args"), "1:rel:");
    fd = ssd_connect(ssd_addr(&d, "y"));
    assert_true(fd >= 0);
    assert_true(read_to_eof(fd, out, sizeof out) > 0);
    close(fd);
    assert_string_equal(out, "bare\n");
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* ---- faults ------------------------------------------------------------ */

static void
test_program_crashes(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[256];
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "crash.sh", false,
                                                NULL), 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        assert_string_equal(out, "before\n");
        assert_true(ssd_log_wait(&d, "killed by signal 11", WAIT_MS));
        assert_no_descendants(d.pid);
        /* healthy: the next one runs as well */
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        assert_string_equal(out, "before\n");
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* A program that ignores SIGTERM is killed after shutdown_timeout. */
static void
test_program_hangs_killed_at_shutdown(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char buf[256];
        int fd, pid = 0, kid = 0;
        double t0, took;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "hang.sh", false,
                                                "shutdown_timeout = 1\n"),
                                   1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(ssd_recv_until(fd, buf, sizeof buf, "\n", WAIT_MS));
        assert_int_equal(sscanf(buf, "ready %d %d", &pid, &kid), 2);
        assert_true(pid > 0 && kill(pid, 0) == 0);
        assert_true(kid > 0 && kill(kid, 0) == 0);
        t0 = now_s();
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        took = now_s() - t0;
        assert_true(took >= 1.0);       /* it had shutdown_timeout */
        assert_true(took < 8.0);        /* and then was killed */
        /* the program and its child (same group) are killed: the
         * connection they held closes */
        if (!ssd_closed_within(fd, WAIT_MS))
            fail_msg("%s: the connection stayed open", modes[m]);
        close(fd);
        for (int i = 0; i < 2; i++) {
            double deadline = now_s() + WAIT_MS / 1000.0;
            pid_t which = i == 0 ? pid : kid, pp;
            char st;

            while (proc_stat(which, &st, &pp) && st != 'Z' &&
                   now_s() < deadline)
                poll(NULL, 0, 20);
            if (proc_stat(which, &st, &pp) && st != 'Z')
                fail_msg("%s: %s %d still runs", modes[m],
                         i == 0 ? "program" : "its child", (int)which);
        }
        ssd_cleanup(&d);
    }
}

/* At shutdown_timeout a program gets SIGTERM (a forking server's child
 * passes it on) and may end cleanly. */
static void
test_program_gets_sigterm_at_shutdown(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char buf[256];
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "term.sh", false,
                                                "shutdown_timeout = 0.5\n"),
                                   1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(ssd_recv_until(fd, buf, sizeof buf, "ready\n", WAIT_MS));
        assert_int_equal(kill(d.pid, SIGTERM), 0);
        if (!ssd_log_wait(&d, "x: got TERM", WAIT_MS)) {
            ssd_print_log(&d);
            fail_msg("%s: the program got no SIGTERM", modes[m]);
        }
        assert_true(ssd_closed_within(fd, WAIT_MS));
        close(fd);
        assert_int_equal(ssd_wait(&d), 0);
        ssd_cleanup(&d);
    }
}

/* Every stderr line reaches the log, in order, control characters shown
 * as '?', while the program's stdout reaches the client. */
static void
test_stderr_every_line_logged(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[64], *log;
        const char *p;
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "spam.sh", false,
                                                NULL), 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        assert_string_equal(out, "done\n");
        assert_true(ssd_log_wait(&d, "x: tab\there?", WAIT_MS));
        log = ssd_log_copy(&d);
        assert_non_null(log);
        p = log;
        for (int i = 1; i <= 3000; i++) {
            char want[32];

            snprintf(want, sizeof want, "x: %d\n", i);
            p = strstr(p, want);
            if (p == NULL)
                fail_msg("%s: stderr line %d missing or out of order",
                         modes[m], i);
            p += strlen(want);
        }
        free(log);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* A program that closes stdin and stdout and goes on: the client has what
 * it wrote, and the end once it exits; it is reaped. */
static void
test_program_closes_stdout_early(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[256];
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "early.sh", false,
                                                NULL), 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        assert_string_equal(out, "early\n");
        assert_true(ssd_log_wait(&d, "x: early done", WAIT_MS));
        assert_no_descendants(d.pid);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* The client leaves while the program writes: it gets EPIPE (or SIGPIPE)
 * and ends; nothing is left behind. */
static void
test_client_leaves_while_program_writes(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char buf[4096];
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "yes.sh", false,
                                                NULL), 1, NULL), 0);
        for (int i = 0; i < 5; i++) {
            fd = ssd_connect(ssd_addr(&d, "x"));
            assert_true(fd >= 0);
            assert_int_equal(ssd_recv_n(fd, buf, sizeof buf, WAIT_MS),
                             sizeof buf);
            assert_memory_equal(buf, "0123456789abcdef\n", 17);
            close(fd);
        }
        assert_no_descendants(d.pid);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_int_equal(ssd_recv_n(fd, buf, 17, WAIT_MS), 17);
        close(fd);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* Waits until the program that printed "pid N" on fd is reaped. */
static void
wait_reaped(int fd)
{
    char buf[64];
    double deadline = now_s() + WAIT_MS / 1000.0;
    long pid;

    assert_true(ssd_recv_until(fd, buf, sizeof buf, "\n", WAIT_MS));
    assert_int_equal(sscanf(buf, "pid %ld", &pid), 1);
    while (kill((pid_t)pid, 0) == 0 && now_s() < deadline)
        usleep(10 * 1000);      /* polls the reaping: no signal for it */
    assert_int_equal(kill((pid_t)pid, 0), -1);
}

/*
 * A program's child keeps the connection after the program exits: the
 * request ends, while a copy of its descriptor lives on elsewhere.  In
 * event mode that copy kept the descriptor in the loop's epoll set, and
 * the client's bytes named an ended (freed, or reused) task: the request
 * takes it out of the set before closing (conn_closing).  ASan's run of
 * this test catches the use after free; every build checks that the
 * daemon serves on and stops cleanly.
 */
static void
test_program_child_keeps_connection(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char buf[64];
        int a, b, c;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "stray.sh", false,
                                                NULL), 1, NULL), 0);
        /* two requests at once, then both end: the event loop keeps one
         * task for reuse and frees the other */
        a = ssd_connect(ssd_addr(&d, "x"));
        b = ssd_connect(ssd_addr(&d, "x"));
        assert_true(a >= 0 && b >= 0);
        assert_int_equal(ssd_send_str(a, "go\n"), 0);
        assert_int_equal(ssd_send_str(b, "go\n"), 0);
        wait_reaped(a);
        wait_reaped(b);
        c = ssd_connect(ssd_addr(&d, "x"));
        assert_true(c >= 0);
        assert_int_equal(ssd_send_str(c, "go\n"), 0);
        /* bytes for the stray copies, then a hang-up from each */
        assert_int_equal(ssd_send_str(a, "to nobody\n"), 0);
        assert_int_equal(ssd_send_str(b, "to nobody\n"), 0);
        close(a);
        close(b);
        wait_reaped(c);
        close(c);
        /* the daemon serves on */
        c = ssd_connect(ssd_addr(&d, "x"));
        assert_true(c >= 0);
        assert_int_equal(ssd_send_str(c, "go\n"), 0);
        assert_true(ssd_recv_until(c, buf, sizeof buf, "pid ", WAIT_MS));
        close(c);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* The programs see descriptors 0, 1 and 2 only (ls's own listing of
 * /proc/self/fd aside). */
/*
 * Behind a proxy: the PROXY header and the client's first line come in one
 * write; the program reads that line itself from the connection (nothing
 * of it was read ahead by the core) and sees the header's address.
 */
static void
test_program_behind_proxy(void **state)
{
    static const char msg[] =
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nhi there\n";

    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[512];
        int fd;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "line.sh", false,
                                                "proxy_protocol = v1\n"),
                                   1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_int_equal(ssd_send_all(fd, msg, sizeof msg - 1), 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        if (strcmp(out, "got hi there from 192.0.2.1 56324\n") != 0) {
            fprintf(stderr, "%s: \"%s\"\n", modes[m], out);
            ssd_print_log(&d);
        }
        assert_string_equal(out, "got hi there from 192.0.2.1 56324\n");
        close(fd);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

static void
test_program_sees_only_0_1_2(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        struct ssd d;
        char out[4096];
        int fd, seen = 0;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "fds.sh", false,
                                                NULL), 1, NULL), 0);
        fd = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fd >= 0);
        assert_true(read_to_eof(fd, out, sizeof out) > 0);
        close(fd);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            char *arrow = strstr(line, " -> ");
            char *num;
            int n;

            if (arrow == NULL)
                continue;               /* "total 0" */
            *arrow = '\0';
            num = strrchr(line, ' ');
            assert_non_null(num);
            n = atoi(num + 1);
            if (n <= 2)
                seen |= 1 << n;
            else if (strncmp(arrow + 4, "/proc/", 6) != 0)
                fail_msg("%s: descriptor %d -> %s", modes[m], n, arrow + 4);
        }
        assert_int_equal(seen, 7);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* 200 connections at once to a program that sleeps 1 s: each is served,
 * every program reaped, no descriptor left open in the daemon. */
static void
test_many_at_once(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMODES; m++) {
        static int fds[MANY];
        struct ssd d;
        const char *extra = strcmp(modes[m], "threading") == 0
                            ? "max_threads = 256\n"
                            : strcmp(modes[m], "forking") == 0
                            ? "max_children = 256\n" : NULL;
        char buf[64];
        int before, after, z, done = 0;
        double t0;

        assert_int_equal(ssd_start(&d, exec_ini(modes[m], "sleep.sh", false,
                                                extra), 1, NULL), 0);
        /* warm: what the first request makes stays for the next */
        fds[0] = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fds[0] >= 0);
        assert_true(ssd_recv_until(fds[0], buf, sizeof buf, "done\n",
                                   WAIT_MS));
        assert_true(ssd_closed_within(fds[0], WAIT_MS));
        close(fds[0]);
        assert_no_descendants(d.pid);
        before = count_fds(d.pid);

        t0 = now_s();
        for (int i = 0; i < MANY; i++) {
            fds[i] = ssd_connect(ssd_addr(&d, "x"));
            assert_true(fds[i] >= 0);
        }
        for (int i = 0; i < MANY; i++) {
            if (ssd_recv_until(fds[i], buf, sizeof buf, "done\n", 3 * WAIT_MS))
                done++;
            close(fds[i]);
        }
        assert_int_equal(done, MANY);
        /* at once: not one after another */
        assert_true(now_s() - t0 < 15.0);
        assert_no_descendants(d.pid);
        assert_int_equal(descendants(d.pid, &z), 0);
        assert_int_equal(z, 0);
        after = count_fds(d.pid);
        assert_int_equal(after, before);
        /* healthy */
        fds[0] = ssd_connect(ssd_addr(&d, "x"));
        assert_true(fds[0] >= 0);
        assert_true(ssd_recv_until(fds[0], buf, sizeof buf, "done\n",
                                   WAIT_MS));
        close(fds[0]);
        assert_int_equal(ssd_stop(&d, SIGTERM), 0);
        ssd_cleanup(&d);
    }
}

/* conf/exec.ini as shipped starts and runs its program. */
static void
test_example_config(void **state)
{
    char path[512], line[512], ini[4096];
    size_t used = 0;
    struct ssd d;
    FILE *fp;
    int fd;

    (void)state;
    snprintf(path, sizeof path, "%s/conf/exec.ini", SS_SOURCE_DIR);
    fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL) {
        if (strncmp(line, "port = ", 7) == 0)
            used = ssd_appendf(ini, sizeof ini, used, "port = 0\n");
        else if (strncmp(line, "command = ", 10) == 0)
            used = ssd_appendf(ini, sizeof ini, used, "command = %s/conf/%s",
                           SS_SOURCE_DIR, line + 10);
        else
            used = ssd_appendf(ini, sizeof ini, used, "%s", line);
    }
    fclose(fp);
    assert_int_equal(ssd_start(&d, ini, 1, NULL), 0);
    fd = ssd_connect(d.listen[0].addr);
    assert_true(fd >= 0);
    assert_int_equal(ssd_send_str(fd, "hi\n"), 0);
    assert_true(read_to_eof(fd, line, sizeof line) > 0);
    close(fd);
    assert_true(strncmp(line, "hello 127.0.0.1:", 16) == 0);
    assert_non_null(strstr(line, "\nyou said: hi\n"));
    assert_true(ssd_log_wait(&d, "hello: served to 127.0.0.1:", WAIT_MS));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_split),
        cmocka_unit_test(test_env_tcp),
        cmocka_unit_test(test_env_unix_stream),
        cmocka_unit_test(test_env_keys),
        cmocka_unit_test(test_side_by_side_tcpserver_xinetd),
        cmocka_unit_test(test_user_group),
        cmocka_unit_test(test_bad_command_is_config_error),
        cmocka_unit_test(test_relative_command),
        cmocka_unit_test(test_program_crashes),
        cmocka_unit_test(test_program_hangs_killed_at_shutdown),
        cmocka_unit_test(test_program_gets_sigterm_at_shutdown),
        cmocka_unit_test(test_stderr_every_line_logged),
        cmocka_unit_test(test_program_closes_stdout_early),
        cmocka_unit_test(test_client_leaves_while_program_writes),
        cmocka_unit_test(test_program_child_keeps_connection),
        cmocka_unit_test(test_program_behind_proxy),
        cmocka_unit_test(test_program_sees_only_0_1_2),
        cmocka_unit_test(test_many_at_once),
        cmocka_unit_test(test_example_config),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
