/* test_ftp.c: the ftp handler in the real daemon on port 0, each mode,
 * with Python's ftplib (the scripts in tests/ftp/), curl, lftp, raw sockets and the
 * tutorial's own client; a temporary root per test. */
#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"

static const char *const modes[] = { "threading", "forking", "event" };
#define NMODES (sizeof modes / sizeof modes[0])

struct fx {
    char root[256];             /* the served directory */
    char users[300];            /* the users file */
    struct ssd d;
    int port;
};

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
write_file(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* A root with hello.txt, home/damu/ftpwork/my_demo.tar.gz (random bytes)
 * and a symlink pointing out; a users file with damu:123456. */
static void
make_root(struct fx *x)
{
    char path[512], demo[70000];
    const char *salt;
    char *hash;

    snprintf(x->root, sizeof x->root, "/tmp/ssftp-XXXXXX");
    assert_non_null(mkdtemp(x->root));
    snprintf(path, sizeof path, "%s/hello.txt", x->root);
    write_file(path, "hello, ftp\n", 11);
    snprintf(path, sizeof path, "%s/home", x->root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/home/damu", x->root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/home/damu/ftpwork", x->root);
    assert_int_equal(mkdir(path, 0755), 0);
    for (size_t i = 0; i < sizeof demo; i++)
        demo[i] = (char)(i * 7 + (i >> 8));
    snprintf(path, sizeof path, "%s/home/damu/ftpwork/my_demo.tar.gz",
             x->root);
    write_file(path, demo, sizeof demo);
    snprintf(path, sizeof path, "%s/evil", x->root);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    salt = crypt_gensalt("$y$", 0, NULL, 0);
    assert_non_null(salt);
    hash = crypt("123456", salt);
    assert_non_null(hash);
    assert_true(hash[0] == '$');
    snprintf(x->users, sizeof x->users, "%s.users", x->root);
    snprintf(path, sizeof path, "# test users\ndamu:%s\nroot:%s:/home\n",
             hash, hash);
    write_file(x->users, path, strlen(path));
}

static void
rm_tree(const char *path)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

/* How many sockets the process holds (listeners, connections): what a
 * data connection that leaked would add. */
static long
count_sockets(pid_t pid)
{
    char path[64], link[400], target[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        ssize_t k;

        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        k = readlink(link, target, sizeof target - 1);
        if (k > 0 && strncmp(target, "socket:", 7) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Starts the daemon on one ftp server with extra keys. */
static void
start(struct fx *x, const char *mode, const char *extra)
{
    char ini[2048];

    snprintf(ini, sizeof ini, "[f]\nhandler = ftp\nmode = %s\nhost = "
             "127.0.0.1\nport = 0\nroot = %s\nusers = %s\n%s", mode, x->root,
             x->users, extra ? extra : "");
    assert_int_equal(ssd_start(&x->d, ini, 1, NULL), 0);
    x->port = ssd_port(&x->d, "f");
    assert_true(x->port > 0);
}

static void
stop(struct fx *x)
{
    assert_int_equal(ssd_stop(&x->d, SIGTERM), 0);
    ssd_cleanup(&x->d);
}

/*
 * Runs argv (a NULL-terminated list) with env (NAME=VALUE strings, NULL
 * ended, may be NULL) in dir, within limit seconds; its output (stdout
 * and stderr) into *out (to free).  Returns its exit status, -1 if it
 * did not exit normally.
 */
static int
run(const char *const *argv, const char *const *env, const char *dir,
    int limit, char **out)
{
    size_t have = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    int p[2], status;
    pid_t pid;
    ssize_t n;

    assert_non_null(buf);
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        if (dir != NULL && chdir(dir) < 0)
            _exit(126);
        alarm((unsigned)limit);         /* a client that hangs fails */
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    while ((n = read(p[0], buf + have, cap - 1 - have)) > 0) {
        have += (size_t)n;
        if (have == cap - 1) {
            char *nb = realloc(buf, cap * 2);

            assert_non_null(nb);
            buf = nb;
            cap *= 2;
        }
    }
    buf[have] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs tests/ftp/SCRIPT with args; fails the test (printing its output
 * and the daemon's log) unless it exits 0. */
static void
run_script(struct fx *x, const char *script, const char *a2, const char *a3,
           const char *a4, const char *a5, int limit)
{
    char path[512], port[16], *out;
    const char *argv[] = { "python3", "-u", path, port, a2, a3, a4, a5, NULL };
    int rc;

    snprintf(path, sizeof path, "%s/tests/ftp/%s", SS_SOURCE_DIR, script);
    snprintf(port, sizeof port, "%d", x->port);
    rc = run(argv, NULL, NULL, limit, &out);
    if (rc != 0) {
        fprintf(stderr, "%s exited %d:\n%s\n", script, rc, out);
        ssd_print_log(&x->d);
    }
    free(out);
    assert_int_equal(rc, 0);
}

/* ---- point 1: the tutorial's client ----------------------------------------- */

/* The seed client's path, or NULL after saying why it is skipped (a
 * failure when SOCKSERV_REQUIRE_SEED_CLIENTS=1). */
static const char *
seed_client(void)
{
    static char path[512];
    const char *req = getenv("SOCKSERV_REQUIRE_SEED_CLIENTS");

    snprintf(path, sizeof path, "%s/../shared/seed_clients/"
             "ftp_client_3_1_3.py", SS_SOURCE_DIR);
    if (access(path, R_OK) == 0)
        return path;
    if (req != NULL && strcmp(req, "1") == 0) {
        fprintf(stderr, "%s: not found (SOCKSERV_REQUIRE_SEED_CLIENTS=1)\n",
                path);
        fail();
    }
    fprintf(stderr, "skipped: the tutorial's ftp client (%s) is not there\n",
            path);
    return NULL;
}

static void
test_ftp_seed_client(void **state)
{
    const char *seed = seed_client();
    char port[32], *out, dir[] = "/tmp/ssftp-dl-XXXXXX", got[512],
         want[512], cmd[1200];
    const char *argv[] = { "python3", "-u", seed, NULL };
    const char *env[] = { "SOCKSERV_HOST=127.0.0.1", port,
                          "FTP_DIR=/home/damu/ftpwork/", NULL };
    struct fx x;

    (void)state;
    if (seed == NULL)
        skip();
    make_root(&x);
    assert_non_null(mkdtemp(dir));
    snprintf(got, sizeof got, "%s/my_demo.tar.gz", dir);
    snprintf(want, sizeof want, "%s/home/damu/ftpwork/my_demo.tar.gz",
             x.root);
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", got, want);
    for (size_t m = 0; m < NMODES; m++) {
        /* anonymous = off: refused, then user and password */
        start(&x, modes[m], "anonymous = off\n");
        snprintf(port, sizeof port, "SOCKSERV_PORT=%d", x.port);
        assert_int_equal(run(argv, env, dir, 30, &out), 0);
        if (strstr(out, "登录成功") == NULL ||
            strstr(out, "文件下载完成") == NULL ||
            strstr(out, "路径修改完成") == NULL) {
            fprintf(stderr, "%s: %s\n", modes[m], out);
            fail();
        }
        free(out);
        assert_int_equal(system(cmd), 0);
        unlink(got);
        stop(&x);
        /* anonymous = read: logged in anonymously at once */
        start(&x, modes[m], "anonymous = read\n");
        snprintf(port, sizeof port, "SOCKSERV_PORT=%d", x.port);
        assert_int_equal(run(argv, env, dir, 30, &out), 0);
        assert_null(strstr(out, "使用账号密码登录"));
        assert_non_null(strstr(out, "文件下载完成"));
        free(out);
        assert_int_equal(system(cmd), 0);
        unlink(got);
        assert_true(ssd_log_has(&x.d, "anonymous login"));
        stop(&x);
    }
    rm_tree(dir);
    rm_tree(x.root);
    unlink(x.users);
}

/* ---- point 2: ftplib, curl, lftp ---------------------------------------------- */

static void
test_ftp_ftplib_table(void **state)
{
    struct fx x;

    (void)state;
    make_root(&x);
    for (size_t m = 0; m < NMODES; m++) {
        start(&x, modes[m], NULL);
        run_script(&x, "ftplib_table.py", "damu", "123456", x.root, NULL, 60);
        stop(&x);
    }
    rm_tree(x.root);
    unlink(x.users);
}

/* EPSV over IPv6 (ftplib uses EPSV when the control connection is v6). */
static void
test_ftp_ipv6(void **state)
{
    char ini[1024];
    struct fx x;

    (void)state;
    make_root(&x);
    snprintf(ini, sizeof ini, "[f]\nhandler = ftp\nmode = event\nhost = ::1"
             "\nport = 0\nroot = %s\nusers = %s\n", x.root, x.users);
    assert_int_equal(ssd_start(&x.d, ini, 1, NULL), 0);
    x.port = ssd_port(&x.d, "f");
    run_script(&x, "ftplib_table.py", "damu", "123456", x.root, "v6", 60);
    stop(&x);
    rm_tree(x.root);
    unlink(x.users);
}

static void
test_ftp_curl(void **state)
{
    char url[256], up[300], upsrc[300], *out;
    struct fx x;
    int rc;

    (void)state;
    make_root(&x);
    start(&x, "event", "anonymous = write\n");
    snprintf(url, sizeof url, "ftp://127.0.0.1:%d/hello.txt", x.port);
    {
        const char *argv[] = { "curl", "-sS", "--max-time", "20", url, NULL };

        rc = run(argv, NULL, NULL, 30, &out);
        assert_int_equal(rc, 0);
        assert_string_equal(out, "hello, ftp\n");
        free(out);
    }
    snprintf(upsrc, sizeof upsrc, "%s.up", x.root);
    write_file(upsrc, "uploaded by curl\n", 17);
    snprintf(url, sizeof url, "ftp://127.0.0.1:%d/up.txt", x.port);
    {
        const char *argv[] = { "curl", "-sS", "--max-time", "20", "-T",
                               upsrc, url, NULL };

        rc = run(argv, NULL, NULL, 30, &out);
        if (rc != 0)
            fprintf(stderr, "%s\n", out);
        assert_int_equal(rc, 0);
        free(out);
        snprintf(up, sizeof up, "%s/up.txt", x.root);
        {
            char cmd[700];

            snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", up, upsrc);
            assert_int_equal(system(cmd), 0);
        }
    }
    snprintf(url, sizeof url, "ftp://127.0.0.1:%d/", x.port);
    {
        const char *argv[] = { "curl", "-sS", "--max-time", "20", "-l", url,
                               NULL };

        rc = run(argv, NULL, NULL, 30, &out);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "hello.txt"));
        assert_non_null(strstr(out, "up.txt"));
        free(out);
    }
    stop(&x);
    unlink(upsrc);
    rm_tree(x.root);
    unlink(x.users);
}

static void
test_ftp_lftp(void **state)
{
    char script[1024], dl[] = "/tmp/ssftp-lftp-XXXXXX", cmd[1200], *out;
    const char *argv[] = { "lftp", "-f", script, NULL };
    struct fx x;
    int rc;

    (void)state;
    if (system("command -v lftp >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skipped: lftp is not installed "
                "(scripts/install-deps installs it)\n");
        skip();
    }
    make_root(&x);
    assert_non_null(mkdtemp(dl));
    start(&x, "threading", NULL);
    snprintf(cmd, sizeof cmd, "%s/script.lftp", dl);
    snprintf(script, sizeof script,
             "set net:max-retries 1\nset net:timeout 10\n"
             "open -u damu,123456 -p %d 127.0.0.1\n"
             "mirror /home %s/mirror\n"
             "lcd %s\nget /hello.txt -o %s/got.txt\n"
             "put %s/got.txt -o /put.txt\n"
             "get -c /hello.txt -o %s/got.txt\nbye\n",
             x.port, dl, dl, dl, dl, dl);
    write_file(cmd, script, strlen(script));
    memcpy(script, cmd, strlen(cmd) + 1);
    rc = run(argv, NULL, NULL, 60, &out);
    if (rc != 0) {
        fprintf(stderr, "lftp: %s\n", out);
        ssd_print_log(&x.d);
    }
    assert_int_equal(rc, 0);
    free(out);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/mirror/damu/ftpwork/my_demo.tar.gz' "
             "'%s/home/damu/ftpwork/my_demo.tar.gz' && cmp -s '%s/put.txt' "
             "'%s/hello.txt'", dl, x.root, x.root, x.root);
    assert_int_equal(system(cmd), 0);
    stop(&x);
    rm_tree(dl);
    rm_tree(x.root);
    unlink(x.users);
}

/* ---- point 3: the jail, anonymous rights, logins ------------------------------- */

static void
test_ftp_anonymous(void **state)
{
    struct fx x;
    char evil[300];

    (void)state;
    make_root(&x);
    snprintf(evil, sizeof evil, "%s/evil", x.root);
    unlink(evil);               /* anon.py compares the listing */
    start(&x, "threading", "anonymous = read\n");
    run_script(&x, "anon.py", x.root, "read", NULL, NULL, 30);
    stop(&x);
    start(&x, "event", "anonymous = write\n");
    run_script(&x, "anon.py", x.root, "write", NULL, NULL, 30);
    stop(&x);
    rm_tree(x.root);
    unlink(x.users);
}

/* Sends a command line, waits for a reply starting with code; a failure
 * names the line. */
static void
cmd_expect(int fd, const char *line, const char *code)
{
    char buf[4096];

    if (line != NULL && ssd_send_str(fd, line) != 0) {
        fprintf(stderr, "cannot send %s\n", line);
        fail();
    }
    if (!ssd_recv_until(fd, buf, sizeof buf, "\r\n", 10000) ||
        strncmp(buf, code, strlen(code)) != 0) {
        fprintf(stderr, "sent %s, wanted %s, got \"%s\"\n",
                line ? line : "(nothing)", code, buf);
        fail();
    }
}

/* A line to send (NULL: none) and the reply code it gets. */
struct step {
    const char *line;
    const char *code;
};

#define NSTEPS(a) (sizeof (a) / sizeof *(a))

/* The steps on fd in order. */
static void
dialog(int fd, const struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cmd_expect(fd, steps[i].line, steps[i].code);
}

/* A new control connection to addr, then the steps on it.  Returns it. */
static int
session(const char *addr, const struct step *steps, size_t n)
{
    int fd = ssd_connect(addr);

    if (fd < 0) {
        fprintf(stderr, "cannot connect to %s\n", addr);
        fail();
    }
    dialog(fd, steps, n);
    return fd;
}

/* A wrong password: 530 after a delay that does not stop other sessions
 * (event mode: one thread); the third failure closes the connection. */
static void
test_ftp_bad_password(void **state)
{
    static const struct step to_pass[] = {
        { NULL, "220" },
        { "USER anonymous\r\n", "530" },
        { "USER damu\r\n", "331" },
    }, noop[] = {
        { NULL, "220" },
        { "NOOP\r\n", "200" },
    }, retries[] = {
        { "USER damu\r\nPASS bad2\r\n", "331" },
        { NULL, "530" },
        { "USER damu\r\nPASS bad3\r\n", "331" },
        { NULL, "421" },
    }, home[] = {               /* the right one, with a home */
        { NULL, "220" },
        { "USER root\r\n", "331" },
        { "PASS 123456\r\n", "230" },
        { "PWD\r\n", "257 \"/home\"" },
        { "CWD ../../..\r\n", "250" },
        { "PWD\r\n", "257 \"/\"" },
        { "CWD /evil\r\n", "550" },
        { "QUIT\r\n", "221" },
    };
    struct fx x;
    char addr[64];

    (void)state;
    make_root(&x);
    for (size_t m = 0; m < NMODES; m++) {
        double t0, t1;
        int fd, other;

        start(&x, modes[m], "anonymous = off\n");
        snprintf(addr, sizeof addr, "127.0.0.1:%d", x.port);
        fd = session(addr, to_pass, NSTEPS(to_pass));
        t0 = now();
        assert_int_equal(ssd_send_str(fd, "PASS wrong\r\n"), 0);
        /* meanwhile another session is served at once */
        other = session(addr, noop, NSTEPS(noop));
        t1 = now();
        assert_true(t1 - t0 < 0.8);
        close(other);
        cmd_expect(fd, NULL, "530");
        assert_true(now() - t0 >= 0.9);
        dialog(fd, retries, NSTEPS(retries));
        assert_true(ssd_closed_within(fd, 5000));
        close(fd);
        close(session(addr, home, NSTEPS(home)));
        assert_true(ssd_log_has(&x.d, "login failed for damu"));
        stop(&x);
    }
    rm_tree(x.root);
    unlink(x.users);
}

/* x's users file becomes slow:secret under a sha512 hash made to take
 * about target seconds here; returns the seconds one check took. */
static double
slow_users(const struct fx *x, double target)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    unsigned long rounds = 20000;
    char line[512];
    const char *salt, *hash;
    double t0, took;

    assert_non_null(cd);
    for (;;) {
        salt = crypt_gensalt_rn("$6$", rounds, NULL, 0, cd->setting,
                                sizeof cd->setting);
        assert_non_null(salt);
        t0 = now();
        hash = crypt_r("secret", salt, cd);
        took = now() - t0;
        assert_true(hash != NULL && hash[0] == '$');
        if (took >= target || rounds >= 100000000)
            break;
        rounds = (unsigned long)(rounds * (took > 0.001 ? target / took * 1.1
                                                        : 10));
    }
    snprintf(line, sizeof line, "slow:%s\n", hash);
    write_file(x->users, line, strlen(line));
    free(cd);
    return took;
}

/* A correct password's hash (slow on purpose) holds up no other session:
 * in event mode it runs off the loop (ss_run_blocking).  Another session's
 * NOOPs go on being answered while it runs. */
static void
test_ftp_slow_hash_holds_no_one(void **state)
{
    struct fx x;
    char addr[64];
    double hash_s;

    (void)state;
    make_root(&x);
    hash_s = slow_users(&x, 0.3);       /* in place of make_root's users */
    fprintf(stderr, "one check of the slow hash: %.0f ms\n", hash_s * 1000);
    for (size_t m = 0; m < NMODES; m++) {
        double t0, worst = 0;
        int a, b, noops = 0;
        struct pollfd pa;

        start(&x, modes[m], "anonymous = off\n");
        snprintf(addr, sizeof addr, "127.0.0.1:%d", x.port);
        a = ssd_connect(addr);
        b = ssd_connect(addr);
        assert_true(a >= 0 && b >= 0);
        cmd_expect(a, NULL, "220");
        cmd_expect(b, NULL, "220");
        cmd_expect(a, "USER slow\r\n", "331");
        assert_int_equal(ssd_send_str(a, "PASS secret\r\n"), 0);
        /* b's NOOPs while a's password is checked, until a's reply */
        pa = (struct pollfd){ .fd = a, .events = POLLIN };
        for (t0 = now(); poll(&pa, 1, 0) == 0 && now() - t0 < 10; noops++) {
            double r0 = now();

            cmd_expect(b, "NOOP\r\n", "200");
            if (now() - r0 > worst)
                worst = now() - r0;
        }
        cmd_expect(a, NULL, "230");
        fprintf(stderr, "%s: %d NOOPs during the login, slowest %.1f ms\n",
                modes[m], noops, worst * 1000);
        assert_true(noops >= 3);
        assert_true(worst < hash_s / 3);
        close(a);
        close(b);
        stop(&x);
    }
    rm_tree(x.root);
    unlink(x.users);
}

/* ---- point 5: modes ------------------------------------------------------------- */

static void
test_ftp_sync_refused(void **state)
{
    char ini[512], *out = NULL;

    (void)state;
    snprintf(ini, sizeof ini, "[f]\nhandler = ftp\nmode = sync\nport = 0\n"
             "root = /tmp\n");
    assert_int_equal(ssd_run(ini, NULL, &out), 2);
    if (strstr(out, ":3:") == NULL || strstr(out, "event") == NULL) {
        fprintf(stderr, "%s\n", out);
        fail();
    }
    free(out);
    /* and a missing root is a configuration error too */
    snprintf(ini, sizeof ini, "[f]\nhandler = ftp\nmode = event\nport = 0\n"
             "root = /nonexistent/ftp\n");
    assert_int_equal(ssd_run(ini, NULL, &out), 2);
    assert_non_null(strstr(out, "/nonexistent/ftp"));
    free(out);
}

/* ---- point 4: transfers ------------------------------------------------------------ */

static void
test_ftp_transfers(void **state)
{
    struct fx x;

    (void)state;
    make_root(&x);
    for (size_t m = 0; m < NMODES; m++) {
        long fds0, fds1;
        char path[2000];
        double deadline;

        start(&x, modes[m], "anonymous = write\n");
        /* a first session and transfer: what a mode opens once (a
         * forking parent's child tracking) is counted before */
        run_script(&x, "anon.py", x.root, "write", NULL, NULL, 30);
        fds0 = count_sockets(x.d.pid);
        run_script(&x, "transfers.py", x.root, NULL, NULL, NULL, 240);
        /* nothing leaks: the daemon's descriptors come back */
        deadline = now() + 10;
        do {
            fds1 = count_sockets(x.d.pid);
        } while (fds1 > fds0 && now() < deadline && usleep(50000) == 0);
        if (fds1 > fds0) {
            fprintf(stderr, "%s: %ld sockets before, %ld after\n",
                    modes[m], fds0, fds1);
            ssd_print_log(&x.d);
            fail();
        }
        stop(&x);
        snprintf(path, sizeof path, "rm -f %s/big %s/part %s/gone %s/small "
                 "%s/new", x.root, x.root, x.root, x.root, x.root);
        assert_int_equal(system(path), 0);
    }
    rm_tree(x.root);
    unlink(x.users);
}

/* ---- point 6: bad input -------------------------------------------------------------- */

static void
test_ftp_bad_input(void **state)
{
    char addr[64], line[2048], path[300];
    const struct step bad[] = {
        { NULL, "220" },
        { "PWD\r\n", "530" },
        { "RETR hello.txt\r\n", "530" },
        { line, "500" },        /* longer than a line may be */
        { "XYZZY\r\n", "502" },
        { "123\r\n", "500" },
        { "USER anonymous\r\n", "331" },
        { "PASS x\r\n", "230" },
        { "PORT 127,0,0,1,200,10\r\n", "502" },
        { "EPRT |1|127.0.0.1|51210|\r\n", "502" },
        { "CWD a\rb\r\n", "501" },
    };
    static const struct step after[] = {
        /* a passive port nobody connects to: 425 after data_timeout */
        { "EPSV\r\n", "229" },
        { "RETR hello.txt\r\n", "425" },
        /* and the server stays healthy */
        { "EPSV\r\n", "229" },
        { "NOOP\r\n", "200" },
        { "QUIT\r\n", "221" },
    };
    struct fx x;
    int fd;
    long n0 = 0, n1 = 0;

    (void)state;
    make_root(&x);
    start(&x, "event", "data_timeout = 0.5\n");
    snprintf(addr, sizeof addr, "127.0.0.1:%d", x.port);
    memset(line, 'A', sizeof line);
    memcpy(line + sizeof line - 3, "\r\n", 3);
    fd = session(addr, bad, NSTEPS(bad));
    /* a flood of PASV: each closes the one before */
    snprintf(path, sizeof path, "/proc/%d/fd", (int)x.d.pid);
    for (int i = 0; i < 200; i++) {
        cmd_expect(fd, "PASV\r\n", "227");
        if (i == 0 || i == 199) {
            DIR *d = opendir(path);
            long c = 0;

            assert_non_null(d);
            while (readdir(d) != NULL)
                c++;
            closedir(d);
            *(i == 0 ? &n0 : &n1) = c;
        }
    }
    assert_int_equal(n0, n1);
    dialog(fd, after, NSTEPS(after));
    close(fd);
    stop(&x);
    rm_tree(x.root);
    unlink(x.users);
}

/* Active mode when on: ftplib's PORT works; a PORT to another host is
 * refused (no bounce). */
static void
test_ftp_active(void **state)
{
    static const struct step no_bounce[] = {
        { NULL, "220" },
        { "USER anonymous\r\n", "331" },
        { "PASS x\r\n", "230" },
        { "PORT 127,0,0,2,200,10\r\n", "500" },
        { "PORT 127,0,0,1,0,21\r\n", "500" },
        { "QUIT\r\n", "221" },
    };
    char addr[64], *out, code[600];
    const char *argv[] = { "python3", "-c", code, NULL };
    struct fx x;

    (void)state;
    make_root(&x);
    start(&x, "event", "active = on\n");
    snprintf(addr, sizeof addr, "127.0.0.1:%d", x.port);
    close(session(addr, no_bounce, NSTEPS(no_bounce)));
    snprintf(code, sizeof code, "import ftplib\nf = ftplib.FTP()\n"
             "f.connect('127.0.0.1', %d, timeout=20)\nf.login()\n"
             "f.set_pasv(False)\nb = bytearray()\n"
             "f.retrbinary('RETR hello.txt', b.extend)\n"
             "assert bytes(b) == b'hello, ftp\\n', b\nf.quit()\n", x.port);
    assert_int_equal(run(argv, NULL, NULL, 30, &out), 0);
    free(out);
    stop(&x);
    rm_tree(x.root);
    unlink(x.users);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ftp_seed_client),
        cmocka_unit_test(test_ftp_ftplib_table),
        cmocka_unit_test(test_ftp_ipv6),
        cmocka_unit_test(test_ftp_curl),
        cmocka_unit_test(test_ftp_lftp),
        cmocka_unit_test(test_ftp_anonymous),
        cmocka_unit_test(test_ftp_bad_password),
        cmocka_unit_test(test_ftp_slow_hash_holds_no_one),
        cmocka_unit_test(test_ftp_sync_refused),
        cmocka_unit_test(test_ftp_transfers),
        cmocka_unit_test(test_ftp_bad_input),
        cmocka_unit_test(test_ftp_active),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
