/* test_chat_redis.c: chat rooms shared through Redis: two daemons and a
 * redis-server of the test's own on a Unix socket; members on each see
 * one room; SIGKILL of a daemon, Redis stopped and restarted. */
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
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/chatcl.h"
#include "support/daemon.h"

#define WAIT_MS 5000            /* bound on anything that should be quick */
#define TTL 3                   /* redis_ttl of the tests' rooms */
/* the documented bound: a killed daemon's members leave within 4/3 ttl */
#define GONE_MS (TTL * 4000 / 3 + 1500)
/* reconnecting: back-off at most 5 s, then the link is up */
#define REJOIN_MS 12000

static const char split_msg[] =
    "* the room is split: the link to its other servers is down; until it "
    "is back you see this server's members only\n";
static const char rejoined_msg[] =
    "* the room is joined again: members on every server see each other\n";

static struct {
    struct ssd d[2];
    bool started[2];
    char dir[64];               /* the redis-server's directory */
    char sock[96];              /* fits sun_path */
    pid_t redis;
} t;

/* Counts the occurrences of needle in s. */
static int
count(const char *s, const char *needle)
{
    int n = 0;

    while ((s = strstr(s, needle)) != NULL) {
        n++;
        s += strlen(needle);
    }
    return n;
}

/* ---- redis-server ----------------------------------------------------------- */

/* True when the server on t.sock answers PING within one try. */
static bool
redis_pong(void)
{
    char buf[64];
    bool ok = false;
    int fd = ssd_connect(t.sock);

    if (fd < 0)
        return false;
    if (ssd_send_all(fd, "PING\r\n", 6) == 0 &&
        ssd_recv_n(fd, buf, 7, 1000) == 7)
        ok = memcmp(buf, "+PONG\r\n", 7) == 0;
    close(fd);
    return ok;
}

/* Sends one command (RESP text) to the server and checks the reply starts
 * with want. */
static void
redis_raw(const char *cmd, const char *want)
{
    char buf[256];
    ssize_t n;
    int fd = ssd_connect(t.sock);

    assert_true(fd >= 0);
    assert_int_equal(ssd_send_all(fd, cmd, strlen(cmd)), 0);
    n = ssd_recv_some(fd, buf, sizeof buf - 1, WAIT_MS);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_memory_equal(buf, want, strlen(want));
    close(fd);
}

/* Starts redis-server on t.sock and waits until it answers PING. */
static void
redis_start(void)
{
    double deadline = cl_now_ms() + 10000;
    int nul;

    t.redis = fork();
    assert_true(t.redis >= 0);
    if (t.redis == 0) {
        nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) {
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket",
               t.sock, "--save", "", "--appendonly", "no", "--dir", t.dir,
               (char *)NULL);
        _exit(127);
    }
    while (!redis_pong()) {
        int st;

        /* it may have exited: say so at once */
        assert_int_equal(waitpid(t.redis, &st, WNOHANG), 0);
        assert_true(cl_now_ms() < deadline);
        poll(NULL, 0, 10);      /* the next try; readiness is the PONG */
    }
}

static void
redis_stop(void)
{
    if (t.redis > 0) {
        kill(t.redis, SIGKILL);
        waitpid(t.redis, NULL, 0);
    }
    t.redis = 0;
    unlink(t.sock);
}

/* ---- two daemons, one room ------------------------------------------------- */

/* The suite runs twice: threading, then event mode. */
static const char *run_mode = "threading";

static const char *
room_ini(const char *sock)
{
    static char ini[512];

    snprintf(ini, sizeof ini, "[chat]\nhandler = chat\ntype = tcp\n"
             "mode = threading\nhost = 127.0.0.1\nport = 0\n"
             "redis = unix:%s\nroom = lobby\nredis_ttl = %d\n", sock, TTL);
    return ini;
}

/* Starts daemon i on the room. */
static void
launch(int i)
{
    assert_int_equal(ssd_start(&t.d[i], ssd_ini_mode(room_ini(t.sock),
                                                      run_mode), 1, NULL), 0);
    t.started[i] = true;
}

/* Starts daemon i on the room and waits until it is linked. */
static void
start(int i)
{
    launch(i);
    if (!ssd_log_wait(&t.d[i], "joined through redis", WAIT_MS)) {
        ssd_print_log(&t.d[i]);
        fail();
    }
}

/* Connects to daemon i and joins as nick. */
static struct cl *
join(int i, const char *nick)
{
    return cl_join(ssd_addr(&t.d[i], "chat"), nick);
}

/* Starts redis-server and both daemons, linked. */
static void
start_all(void)
{
    redis_start();
    start(0);
    start(1);
}

/* alice joins on daemon 0 and bob on daemon 1; alice sees bob come. */
static void
alice_and_bob(struct cl **a, struct cl **b)
{
    *a = join(0, "alice");
    *b = join(1, "bob");
    cl_expect(*a, "* bob joined\n");
}

/* Sends /list from c; seen gets the next line c receives: the reply. */
static void
list(struct cl *c, char *seen, size_t seensize)
{
    cl_send(c, "/list\n");
    assert_true(cl_wait_seen(c, "\n", WAIT_MS, seen, seensize));
}

static int
setup(void **unused)
{
    (void)unused;
    memset(&t, 0, sizeof t);
    snprintf(t.dir, sizeof t.dir, "/tmp/sockserv-redis-XXXXXX");
    if (mkdtemp(t.dir) == NULL)
        return -1;
    snprintf(t.sock, sizeof t.sock, "%s/redis.sock", t.dir);
    return 0;
}

static int
teardown(void **unused)
{
    int st = 0;

    (void)unused;
    cl_free_all();
    for (int i = 0; i < 2; i++) {
        if (!t.started[i])
            continue;
        if (ssd_stop(&t.d[i], SIGTERM) != 0) {
            ssd_print_log(&t.d[i]);
            st = -1;
        }
        ssd_cleanup(&t.d[i]);
    }
    redis_stop();
    rmdir(t.dir);
    memset(&t, 0, sizeof t);
    return st;
}

/* ---- the tests ------------------------------------------------------------ */

/* Join and leave notices, room and private messages, /list and nicknames
 * across the two daemons. */
static void
test_chat_redis_one_room(void **unused)
{
    struct cl *a, *b, *c, *x;
    char seen[8192];

    (void)unused;
    start_all();
    alice_and_bob(&a, &b);
    c = join(0, "carol");
    cl_expect(a, "* carol joined\n");
    cl_expect(b, "* carol joined\n");

    cl_send(a, "hello from one\n");
    cl_expect(b, "alice: hello from one\n");
    cl_expect(c, "alice: hello from one\n");
    cl_send(b, "hello from two\n");
    cl_expect(a, "bob: hello from two\n");
    cl_expect(c, "bob: hello from two\n");

    /* a private message crosses and reaches its target only */
    cl_send(b, "alice:psst secret\n");
    cl_expect(a, "bob (private): psst secret\n");
    cl_send(a, "/msg bob psst back\n");
    cl_expect(b, "alice (private): psst back\n");
    cl_send(b, "marker\n");
    assert_true(cl_wait_seen(c, "bob: marker\n", WAIT_MS, seen, sizeof seen));
    assert_null(strstr(seen, "secret"));

    /* /list shows everyone, on both sides */
    list(b, seen, sizeof seen);
    assert_non_null(strstr(seen, "* 3 online: bob "));
    assert_non_null(strstr(seen, "alice"));
    assert_non_null(strstr(seen, "carol"));
    cl_expect(a, "bob: marker\n");
    list(a, seen, sizeof seen);
    assert_non_null(strstr(seen, "* 3 online: "));
    assert_non_null(strstr(seen, "bob"));
    assert_non_null(strstr(seen, "alice"));

    /* a nickname taken on the other daemon is refused (any case) */
    x = cl_at_prompt(ssd_addr(&t.d[1], "chat"));
    cl_send(x, "ALICE\n");
    cl_expect(x, "error: the nickname \"ALICE\" is taken\n");
    cl_expect(x, "Please enter your nickname: ");
    cl_send(b, "/nick Carol\n");
    cl_expect(b, "error: the nickname \"Carol\" is taken\n");

    /* what another publisher puts on the channel is checked: garbage, a
     * bad nickname, a control character are refused or cleaned */
    redis_raw("PUBLISH sockserv:chat:lobby garbage\r\n", ":2");
    redis_raw("PUBLISH sockserv:chat:lobby \"1:0123456789abcdef:M:a b::x\""
              "\r\n", ":2");
    redis_raw("PUBLISH sockserv:chat:lobby \"1:0123456789abcdef:M:eve::"
              "x\x1b[2Jy\"\r\n", ":2");
    assert_true(ssd_log_wait(&t.d[0], "redis: malformed message of 7 bytes",
                             WAIT_MS));
    cl_expect(a, "eve: x\xEF\xBF\xBD[2Jy\n");
    cl_send(b, "still-here\n");
    assert_true(cl_wait_seen(a, "bob: still-here\n", WAIT_MS, seen,
                             sizeof seen));
    assert_null(strstr(seen, "a b"));

    /* a rename and a leave are seen across */
    cl_send(b, "/nick bobby\n");
    cl_expect(a, "* bob is now bobby\n");
    cl_send(b, "/quit\n");
    cl_expect(a, "* bobby left (quit)\n");
    cl_expect(c, "* bobby left (quit)\n");
    /* and the nickname is free again, on either daemon */
    cl_send(x, "bobby\n");
    cl_expect(x, "* welcome, bobby!");
    cl_expect(a, "* bobby joined\n");
}

/* 200 messages of one member arrive in order on the other daemon. */
static void
test_chat_redis_order(void **unused)
{
    struct cl *a, *b;
    char line[64], *all, *seen, *p;
    size_t len = 0;

    (void)unused;
    start_all();
    alice_and_bob(&a, &b);
    all = malloc(200 * 16);
    seen = malloc(64 * 1024);
    assert_non_null(all);
    assert_non_null(seen);
    for (int i = 0; i < 200; i++) {
        int n = snprintf(line, sizeof line, "m%03d\n", i);

        memcpy(all + len, line, (size_t)n);
        len += (size_t)n;
    }
    assert_int_equal(ssd_send_all(a->fd, all, len), 0);
    assert_true(cl_wait_seen(b, "alice: m199\n", WAIT_MS, seen, 64 * 1024));
    /* what came is m000..m199, each once, in the order sent */
    assert_int_equal(count(seen, "alice: m"), 200);
    p = seen;
    for (int i = 0; i < 200; i++) {
        snprintf(line, sizeof line, "alice: m%03d\n", i);
        p = strstr(p, line);
        if (p == NULL)
            fprintf(stderr, "m%03d missing or out of order\n", i);
        assert_non_null(p);
        p += strlen(line);
    }
    free(seen);
    free(all);
}

/* A daemon killed with SIGKILL: its members leave on the other within the
 * documented bound (4/3 redis_ttl), and their nicknames are free. */
static void
test_chat_redis_sigkill(void **unused)
{
    struct cl *a;
    double t0, took;

    (void)unused;
    start_all();
    a = join(0, "alice");
    (void)join(1, "bob");
    (void)join(1, "bert");
    cl_expect(a, "* bob joined\n");
    cl_expect(a, "* bert joined\n");
    t0 = cl_now_ms();
    assert_int_equal(ssd_stop(&t.d[1], SIGKILL), 128 + SIGKILL);
    t.started[1] = false;
    ssd_cleanup(&t.d[1]);
    cl_expect_within(a, "left (server gone)\n", GONE_MS);
    cl_expect_within(a, "left (server gone)\n", 1000);
    took = cl_now_ms() - t0;
    fprintf(stderr, "members of the killed daemon left after %.0f ms "
            "(bound %d ms)\n", took, TTL * 4000 / 3);
    assert_true(took <= GONE_MS);
    /* their nicknames are free now */
    (void)join(0, "bob");
    cl_expect(a, "* bob joined\n");
}

/* ---- workers = N ------------------------------------------------------------ */

/* Waits until needle is in d's log n times (every worker says it). */
static bool
log_count_wait(struct ssd *d, const char *needle, int n, int timeout_ms)
{
    double deadline = cl_now_ms() + timeout_ms;

    for (;;) {
        char *log = ssd_log_copy(d);
        int have = log ? count(log, needle) : 0;

        free(log);
        if (have >= n)
            return true;
        if (cl_now_ms() > deadline)
            return false;
        poll(NULL, 0, 10);      /* the next look; each line is the signal */
    }
}

/* The children of parent, up to max. */
static int
workers_of(pid_t parent, pid_t *out, int max)
{
    DIR *dp = opendir("/proc");
    struct dirent *e;
    int n = 0;

    assert_non_null(dp);
    while ((e = readdir(dp)) != NULL && n < max) {
        char path[300], buf[512], *rp;
        int pp = 0;
        FILE *fp;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if ((fp = fopen(path, "r")) == NULL)
            continue;
        if (fgets(buf, sizeof buf, fp) != NULL &&
            (rp = strrchr(buf, ')')) != NULL &&
            sscanf(rp + 1, " %*c %d", &pp) == 1 && pp == parent)
            out[n++] = (pid_t)atoi(e->d_name);
        fclose(fp);
    }
    closedir(dp);
    return n;
}

/* The inode of the server's end of client fd's connection (IPv4 on
 * loopback), from /proc/net/tcp; 0 if not found. */
static unsigned long
server_end(int fd)
{
    struct sockaddr_in me, peer;
    socklen_t len = sizeof me, plen = sizeof peer;
    char line[512];
    unsigned long inode = 0;
    FILE *fp;

    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &len), 0);
    assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
    fp = fopen("/proc/net/tcp", "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL) {
        unsigned la, lp, ra, rp;
        unsigned long ino;

        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %8X:%4X %8X:%4X %*X %*X:%*X %*X:%*X %*X "
                   "%*u %*d %lu", &la, &lp, &ra, &rp, &ino) == 5 &&
            lp == ntohs(peer.sin_port) && rp == ntohs(me.sin_port) &&
            ra == me.sin_addr.s_addr) {
            inode = ino;
            break;
        }
    }
    fclose(fp);
    return inode;
}

/* Which of the n workers holds the socket with that inode: its index, or
 * -1. */
static int
holder(const pid_t *w, int n, unsigned long inode)
{
    char want[64];

    snprintf(want, sizeof want, "socket:[%lu]", inode);
    for (int i = 0; i < n; i++) {
        char path[64];
        struct dirent *e;
        DIR *dp;

        snprintf(path, sizeof path, "/proc/%d/fd", (int)w[i]);
        if ((dp = opendir(path)) == NULL)
            continue;
        while ((e = readdir(dp)) != NULL) {
            char fdp[320], link[64];
            ssize_t k;

            snprintf(fdp, sizeof fdp, "%s/%s", path, e->d_name);
            k = readlink(fdp, link, sizeof link - 1);
            if (k > 0 && (link[k] = '\0', strcmp(link, want) == 0)) {
                closedir(dp);
                return i;
            }
        }
        closedir(dp);
    }
    return -1;
}

/*
 * workers = 2 on one daemon: each worker links to Redis, and members that
 * SO_REUSEPORT put in different processes are one room: joins, messages,
 * /list and nicknames span the workers.
 */
static void
test_chat_redis_workers(void **unused)
{
    enum { N = 16 };
    char ini[600], nick[16], seen[8192], want[64];
    struct cl *m[N];
    int where[N], first[2] = { -1, -1 };
    pid_t w[4];

    (void)unused;
    redis_start();
    snprintf(ini, sizeof ini, "%sworkers = 2\n", room_ini(t.sock));
    assert_int_equal(ssd_start(&t.d[0], ssd_ini_mode(ini, run_mode), 1,
                               NULL), 0);
    t.started[0] = true;
    if (!log_count_wait(&t.d[0], "joined through redis", 2, WAIT_MS)) {
        ssd_print_log(&t.d[0]);
        fail_msg("not both workers linked to redis");
    }
    /* the daemon serves as worker 1; worker 2 is its child */
    w[0] = t.d[0].pid;
    assert_int_equal(workers_of(t.d[0].pid, w + 1, 3), 1);
    /* N members: each sees every later one join, wherever it is */
    for (int i = 0; i < N; i++) {
        snprintf(nick, sizeof nick, "m%d", i);
        m[i] = join(0, nick);
        where[i] = holder(w, 2, server_end(m[i]->fd));
        assert_true(where[i] >= 0);
        if (first[where[i]] < 0)
            first[where[i]] = i;
        snprintf(want, sizeof want, "* %s joined\n", nick);
        for (int k = 0; k < i; k++)
            cl_expect(m[k], want);
    }
    /* SO_REUSEPORT spreads by address and port: both get members (all in
     * one would happen once in 2^15 runs) */
    fprintf(stderr, "members on worker 0 from m%d, on worker 1 from m%d\n",
            first[0], first[1]);
    assert_true(first[0] >= 0 && first[1] >= 0);
    /* a message and a private one across the workers */
    struct cl *a = m[first[0]], *b = m[first[1]];

    cl_send(a, "across\n");
    snprintf(want, sizeof want, "m%d: across\n", first[0]);
    cl_expect(b, want);
    snprintf(want, sizeof want, "/msg m%d psst\n", first[0]);
    cl_send(b, want);
    snprintf(want, sizeof want, "m%d (private): psst\n", first[1]);
    cl_expect(a, want);
    /* /list shows all N from either worker; a nickname is taken across */
    list(b, seen, sizeof seen);
    snprintf(want, sizeof want, "* %d online: ", N);
    if (strstr(seen, want) == NULL)
        fail_msg("want \"%s\" in \"%s\"", want, seen);
    /* a newcomer on either worker: both names are taken, one of them on
     * the other worker */
    struct cl *x = cl_at_prompt(ssd_addr(&t.d[0], "chat"));

    for (int k = 0; k < 2; k++) {
        snprintf(want, sizeof want, "m%d\n", first[k]);
        cl_send(x, want);
        snprintf(want, sizeof want, "error: the nickname \"m%d\" is "
                 "taken\n", first[k]);
        cl_expect(x, want);
        cl_expect(x, "Please enter your nickname: ");
    }
}

/* Redis stopped while both daemons run: each member is told once, the
 * local rooms work; Redis back: joined again, messages cross again. */
static void
test_chat_redis_split(void **unused)
{
    struct cl *a, *b, *c, *d;
    char seen[16384];

    (void)unused;
    start_all();
    a = join(0, "alice");
    c = join(0, "carol");
    b = join(1, "bob");
    cl_expect(a, "* bob joined\n");
    cl_expect(c, "* bob joined\n");

    redis_stop();
    cl_expect(a, split_msg);
    cl_expect(b, split_msg);
    cl_expect(c, split_msg);
    assert_true(ssd_log_wait(&t.d[0], "room \"lobby\" split", WAIT_MS));
    /* the local room goes on */
    cl_send(a, "local-1\n");
    cl_expect(c, "alice: local-1\n");
    list(a, seen, sizeof seen);
    assert_non_null(strstr(seen, "* 2 online:"));
    assert_null(strstr(seen, "bob"));
    /* a member who joins during the split is told too */
    d = cl_at_prompt(ssd_addr(&t.d[1], "chat"));
    cl_send(d, "dave\n");
    cl_expect(d, "* welcome, dave!");
    cl_expect(d, split_msg);
    cl_expect(b, "* dave joined\n");

    redis_start();
    /* told once: nothing more of the split before the rejoin */
    assert_true(cl_wait_seen(a, rejoined_msg, REJOIN_MS, seen, sizeof seen));
    assert_int_equal(count(seen, "split"), 0);
    assert_true(cl_wait_seen(b, rejoined_msg, REJOIN_MS, seen, sizeof seen));
    assert_int_equal(count(seen, "split"), 0);
    assert_null(strstr(seen, "local-1"));
    cl_expect(d, rejoined_msg);
    cl_expect(a, "* bob joined\n");
    cl_expect(a, "* dave joined\n");
    cl_expect(b, "* alice joined\n");
    cl_expect(b, "* carol joined\n");
    assert_true(ssd_log_wait(&t.d[0], "joined through redis", WAIT_MS));

    cl_send(a, "after-1\n");
    cl_expect(b, "alice: after-1\n");
    cl_expect(d, "alice: after-1\n");
    cl_send(b, "carol:after-2\n");
    cl_expect(c, "bob (private): after-2\n");
}

/* The same nickname taken on both sides of a split: when the room is
 * joined again the first claim keeps it, the other member is told and
 * disconnected. */
static void
test_chat_redis_split_same_nick(void **unused)
{
    static const char taken[] = "error: the nickname \"zed\" is taken on "
                                "another server of this room; join again "
                                "with another\n";
    struct cl *a, *b, *z[2], *other;
    double deadline;
    int loser = -1;

    (void)unused;
    start_all();
    alice_and_bob(&a, &b);
    redis_stop();
    cl_expect(a, split_msg);
    cl_expect(b, split_msg);
    z[0] = join(0, "zed");
    z[1] = join(1, "zed");
    redis_start();
    deadline = cl_now_ms() + REJOIN_MS;
    while (loser < 0 && cl_now_ms() < deadline) {
        for (int i = 0; i < 2 && loser < 0; i++) {
            if (ssd_log_wait(&t.d[i], "nickname taken on another server",
                             50))
                loser = i;
        }
    }
    assert_true(loser >= 0);
    assert_false(ssd_log_has(&t.d[1 - loser],
                             "nickname taken on another server"));
    cl_expect_within(z[loser], taken, WAIT_MS);
    assert_true(cl_closed(z[loser], WAIT_MS));
    /* the winner is in the joined room: the other daemon hears it */
    cl_expect_within(z[1 - loser], rejoined_msg, REJOIN_MS);
    other = loser == 0 ? a : b;
    cl_expect_within(other, rejoined_msg, REJOIN_MS);
    cl_send(z[1 - loser], "zed-speaks\n");
    cl_expect(other, "zed: zed-speaks\n");
}

/* Redis unreachable at start: not fatal; the room starts split, works
 * locally, and joins when Redis comes. */
static void
test_chat_redis_unreachable_at_start(void **unused)
{
    struct cl *a, *c;

    (void)unused;
    launch(0);
    assert_true(ssd_log_wait(&t.d[0], "room \"lobby\" split", WAIT_MS));
    a = join(0, "alice");
    cl_expect(a, split_msg);
    c = join(0, "carol");
    cl_expect(a, "* carol joined\n");
    cl_send(c, "hi\n");
    cl_expect(a, "carol: hi\n");
    redis_start();
    cl_expect_within(a, rejoined_msg, REJOIN_MS);
    cl_expect_within(c, rejoined_msg, REJOIN_MS);
    start(1);
    (void)join(1, "bob");
    cl_expect(a, "* bob joined\n");
}

#define ROOM_HEAD                                                         \
    "[chat]\nhandler = chat\ntype = tcp\nmode = threading\n"              \
    "host = 127.0.0.1\nport = 0\n"

/* A datagram room cannot be shared: a configuration error at its line;
 * the other keys' errors too; the example file loads. */
static void
test_chat_redis_config_errors(void **unused)
{
    char ini[4096], *out = NULL;
    FILE *fp;
    size_t n;
    int st;

    (void)unused;
    expect_config_error("[chat]\nhandler = chat\ntype = udp\n"
                        "mode = threading\nhost = 127.0.0.1\nport = 0\n"
                        "redis = unix:/tmp/none.sock\n",
                        "test.ini:7: redis = unix:/tmp/none.sock: a datagram "
                        "room cannot be shared through Redis");
    expect_config_error("[chat]\nhandler = chat\ntype = unix-dgram\n"
                        "mode = threading\npath = @DIR@/c.sock\n"
                        "redis = 127.0.0.1:6379\n",
                        "test.ini:6: redis = 127.0.0.1:6379: a datagram room "
                        "cannot be shared through Redis");
    expect_config_error(ROOM_HEAD "room = lobby\n",
                        "test.ini:7: room = lobby needs redis");
    expect_config_error(ROOM_HEAD "redis = localhost\n",
                        "test.ini:7: invalid redis \"localhost\" "
                        "(unix:PATH or HOST:PORT)");
    expect_config_error(ROOM_HEAD "redis = unix:relative.sock\n",
                        "test.ini:7: redis = unix:relative.sock: unix:PATH "
                        "needs an absolute path");
    expect_config_error(ROOM_HEAD "redis = [::1]:6379\nroom = a b\n",
                        "test.ini:8: room \"a b\" is not 1-64 letters");
    expect_config_error(ROOM_HEAD "redis = h:1\nredis_ttl = 2\n",
                        "test.ini:8:");
    /* conf/chat-redis.ini checks clean (no Redis needed to check) */
    fp = fopen(SS_SOURCE_DIR "/conf/chat-redis.ini", "r");
    assert_non_null(fp);
    n = fread(ini, 1, sizeof ini - 1, fp);
    fclose(fp);
    ini[n] = '\0';
    st = ssd_run(ini, (const char *const[]){ "--check", NULL }, &out);
    if (st != 0)
        fprintf(stderr, "status %d, output:\n%s\n", st, out ? out : "");
    assert_int_equal(st, 0);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_redis_one_room, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_sigkill, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_workers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_split, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_split_same_nick,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_unreachable_at_start,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_redis_config_errors, setup,
                                        teardown),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    rc = cmocka_run_group_tests_name("chat_redis (threading)", tests, NULL,
                                     NULL);
    run_mode = "event";
    rc |= cmocka_run_group_tests_name("chat_redis (event)", tests, NULL,
                                      NULL);
    return rc;
}
