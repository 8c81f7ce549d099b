/* test_control.c: the control socket and sockservctl (status, reload,
 * stop; text and JSON) and the metrics handler scraped by curl: the
 * counters read back are exactly the traffic the test made, in threading,
 * forking and event mode. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"

#define NAME_Q "q\"b\\s"        /* a section named q"b\s */

/* The metrics server's mode is spelled without spaces so that
 * ssd_ini_mode leaves it alone (metrics does not run forking). */
static const char ini_text[] =
    "[global]\n"
    "control = ctl.sock\n"
    "[open]\nhandler = echo\ntype = tcp\nmode = threading\nport = 0\n"
    "[acl]\nhandler = echo\ntype = tcp\nmode = threading\nport = 0\n"
    "deny = 127.0.0.1\n"
    "[maxconn]\nhandler = echo\ntype = tcp\nmode = threading\nport = 0\n"
    "max_connections = 1\n"
    "[persrc]\nhandler = echo\ntype = tcp\nmode = threading\nport = 0\n"
    "max_per_source = 1\n"
    "[rate]\nhandler = echo\ntype = tcp\nmode = threading\nport = 0\n"
    "rate_limit = 1\n"
    "[udp]\nhandler = echo\ntype = udp\nmode = threading\nport = 0\n"
    "[" NAME_Q "]\nhandler = echo\ntype = tcp\nmode = threading\nport = 0\n"
    "[metrics]\nhandler = metrics\ntype = tcp\nmode=threading\nport = 0\n";
#define NSERVERS 8

/* Runs the shell command cmd; its stdout in *out, to free.  Returns its
 * exit status (-1 if it did not exit). */
static int
run_cmd(const char *cmd, char **out)
{
    char chunk[4096];
    size_t len = 0, n;
    FILE *p, *m;
    int st;

    *out = NULL;
    m = open_memstream(out, &len);
    assert_non_null(m);
    p = popen(cmd, "r");
    assert_non_null(p);
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        fwrite(chunk, 1, n, m);
    st = pclose(p);
    fclose(m);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs sockservctl with args; its stdout (and stderr) in *out, to free.
 * Returns its exit status. */
static int
ctl(const struct ssd *d, const char *args, char **out)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd, "%s -s %s/ctl.sock %s 2>&1",
             ssd_build_path("sockservctl"), d->dir, args);
    return run_cmd(cmd, out);
}

/* The number after "key": in the JSON object of server name (its name
 * as JSON writes it). */
static long long
json_num(const char *json, const char *jname, const char *key)
{
    char pat[128];
    const char *s, *end;

    snprintf(pat, sizeof pat, "{\"name\":\"%s\"", jname);
    s = strstr(json, pat);
    if (s == NULL) {
        fprintf(stderr, "no server %s in %s\n", jname, json);
        fail();
    }
    end = strstr(s + 1, "{\"name\"");
    snprintf(pat, sizeof pat, "\"%s\":", key);
    s = strstr(s, pat);
    if (s == NULL || (end != NULL && s > end)) {
        fprintf(stderr, "no %s for %s in %s\n", key, jname, json);
        fail();
    }
    return strtoll(s + strlen(pat), NULL, 10);
}

/* Waits (5 s) until no request of any server but metrics runs: every
 * byte and end is counted by then.  Returns the status JSON, to free. */
static char *
settled_status(const struct ssd *d)
{
    struct timespec t0, now, nap = { 0, 20 * 1000000L };
    char *out;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        bool busy = false;
        const char *p;

        assert_int_equal(ctl(d, "status --json", &out), 0);
        for (p = out; (p = strstr(p, "\"active\":")) != NULL; p++)
            busy |= strtol(p + 9, NULL, 10) != 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!busy || now.tv_sec - t0.tv_sec > 5)
            return out;
        free(out);
        nanosleep(&nap, NULL);      /* a poll with a deadline */
    }
}

/* A connection that gets in: its echo comes back.  Returns the fd. */
static int
admitted(const char *addr)
{
    char buf[8];
    int fd = ssd_connect(addr);

    assert_true(fd >= 0);
    assert_int_equal(ssd_send_str(fd, "k"), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "k", 5000));
    return fd;
}

/* A connection that is refused: closed before any echo. */
static void
refused(const char *addr)
{
    int fd = ssd_connect(addr);

    assert_true(fd >= 0);
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
}

/* One connection to addr: true when it got in (echo), false when it was
 * closed unanswered. */
static bool
try_once(const char *addr)
{
    char buf[8];
    int fd = ssd_connect(addr);
    bool in;

    assert_true(fd >= 0);
    in = ssd_send_str(fd, "k") == 0 &&
         ssd_recv_until(fd, buf, sizeof buf, "k", 5000);
    shutdown(fd, SHUT_WR);
    if (in)
        assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    return in;
}

struct traffic {
    int open_n, acl_m, maxconn_m, persrc_m, rate_in, rate_out, udp_n, q_n;
};

/* Server name admits one connection at a time: one gets in and is held
 * while m more are refused, then it ends.  Returns m. */
static int
over_limit(struct ssd *d, const char *name, int m)
{
    int fd = admitted(ssd_addr(d, name));

    for (int i = 0; i < m; i++)
        refused(ssd_addr(d, name));
    shutdown(fd, SHUT_WR);
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    return m;
}

/* Makes the traffic whose counts the tests read back. */
static void
make_traffic(struct ssd *d, struct traffic *t)
{
    t->open_n = 4;
    for (int i = 0; i < t->open_n; i++)
        assert_true(ssd_echo_once(ssd_addr(d, "open")));
    t->acl_m = 3;
    for (int i = 0; i < t->acl_m; i++)
        refused(ssd_addr(d, "acl"));
    t->maxconn_m = over_limit(d, "maxconn", 2);
    t->persrc_m = over_limit(d, "persrc", 2);
    /* rate_limit = 1: the first gets in, then what comes within the same
     * second is refused; the exact split depends on timing, so it is
     * observed and compared */
    t->rate_in = t->rate_out = 0;
    for (int i = 0; i < 4; i++) {
        if (try_once(ssd_addr(d, "rate")))
            t->rate_in++;
        else
            t->rate_out++;
    }
    assert_true(t->rate_in >= 1);
    assert_true(t->rate_out >= 1);
    t->udp_n = 3;
    for (int i = 0; i < t->udp_n; i++) {
        char buf[16];
        int u = ssd_dgram(ssd_addr(d, "udp"));

        assert_true(u >= 0);
        assert_int_equal(send(u, "hello", 5, 0), 5);
        assert_int_equal(ssd_recv_n(u, buf, 5, 5000), 5);
        close(u);
    }
    t->q_n = 2;
    for (int i = 0; i < t->q_n; i++)
        assert_true(ssd_echo_once(ssd_addr(d, NAME_Q)));
}

static void
check_status_json(const char *j, const struct traffic *t)
{
    assert_int_equal(json_num(j, "open", "accepted"), t->open_n);
    assert_int_equal(json_num(j, "open", "bytes_in"), t->open_n);
    assert_int_equal(json_num(j, "open", "bytes_out"), t->open_n);
    assert_int_equal(json_num(j, "open", "active"), 0);
    assert_int_equal(json_num(j, "acl", "accepted"), 0);
    assert_int_equal(json_num(j, "acl", "acl"), t->acl_m);
    assert_int_equal(json_num(j, "maxconn", "accepted"), 1);
    assert_int_equal(json_num(j, "maxconn", "max_connections"), t->maxconn_m);
    assert_int_equal(json_num(j, "persrc", "accepted"), 1);
    assert_int_equal(json_num(j, "persrc", "max_per_source"), t->persrc_m);
    assert_int_equal(json_num(j, "rate", "accepted"), t->rate_in);
    assert_int_equal(json_num(j, "rate", "rate_limit"), t->rate_out);
    assert_int_equal(json_num(j, "rate", "bytes_in"), t->rate_in);
    assert_int_equal(json_num(j, "udp", "accepted"), t->udp_n);
    assert_int_equal(json_num(j, "udp", "bytes_in"), 5 * t->udp_n);
    assert_int_equal(json_num(j, "udp", "bytes_out"), 5 * t->udp_n);
    assert_int_equal(json_num(j, "q\\\"b\\\\s", "accepted"), t->q_n);
    for (const char *s = "open\0acl\0maxconn\0persrc\0rate\0udp\0"; *s;
         s += strlen(s) + 1)
        assert_int_equal(json_num(j, s, "verify_request"), 0);
}

/* state: the mode (IN_MODE in main) */
static void
test_control_status(void **state)
{
    const char *mode = *state;
    struct ssd d;
    struct traffic t;
    struct stat st;
    char *out, path[400];

    assert_int_equal(ssd_start(&d, ssd_ini_mode(ini_text, mode), NSERVERS,
                               NULL), 0);
    snprintf(path, sizeof path, "%s/ctl.sock", d.dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    make_traffic(&d, &t);
    out = settled_status(&d);
    check_status_json(out, &t);
    assert_non_null(strstr(out, "\"mode\":\"" ));
    free(out);
    /* the text form names each server and its counters */
    assert_int_equal(ctl(&d, "status", &out), 0);
    assert_non_null(strstr(out, "[open]\n"));
    assert_non_null(strstr(out, "  handler    echo\n"));
    assert_non_null(strstr(out, "acl 3,"));
    free(out);
    assert_int_equal(ctl(&d, "reload --json", &out), 0);
    assert_string_equal(out, "{\"ok\":true,\"message\":\"reload requested\"}\n");
    free(out);
    assert_true(ssd_log_wait(&d, "reload requested", 5000));
    assert_int_equal(ctl(&d, "stop", &out), 0);
    assert_string_equal(out, "stopping\n");
    free(out);
    assert_int_equal(ssd_wait(&d), 0);
    assert_int_equal(stat(path, &st), -1);      /* removed at exit */
    ssd_cleanup(&d);
}

/* One forking server is served from the main thread (solo): the control
 * socket still answers, from its own thread. */
static void
test_control_solo_forking(void **state)
{
    struct ssd d;
    char *out;

    (void)state;
    assert_int_equal(ssd_start(&d, "[global]\ncontrol = ctl.sock\n"
                               "[one]\nhandler = echo\ntype = tcp\n"
                               "mode = forking\nport = 0\n", 1, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_true(ssd_echo_once(ssd_addr(&d, "one")));
    out = settled_status(&d);
    assert_int_equal(json_num(out, "one", "accepted"), 3);
    assert_int_equal(json_num(out, "one", "bytes_out"), 3);
    free(out);
    assert_int_equal(ctl(&d, "stop --json", &out), 0);
    assert_string_equal(out, "{\"ok\":true,\"message\":\"stopping\"}\n");
    free(out);
    assert_int_equal(ssd_wait(&d), 0);
    ssd_cleanup(&d);
}

/* Errors: no daemon (1), a bad command (2), a bad key. */
static void
test_control_errors(void **state)
{
    struct ssd d = { 0 };
    char *out;

    (void)state;
    snprintf(d.dir, sizeof d.dir, "/nonexistent");
    assert_int_equal(ctl(&d, "status", &out), 1);
    assert_non_null(strstr(out, "sockservctl: /nonexistent/ctl.sock: "));
    free(out);
    assert_int_equal(ctl(&d, "frobnicate", &out), 2);
    free(out);
    assert_int_equal(ctl(&d, "status --bogus", &out), 2);
    free(out);
    assert_int_equal(ssd_run("[global]\ncontrol = /nonexistent/dir/c.sock\n"
                             "[e]\nhandler = echo\ntype = tcp\nport = 0\n",
                             NULL, &out), 1);
    assert_non_null(strstr(out, "control /nonexistent/dir/c.sock: "));
    free(out);
}

/* ---- metrics ------------------------------------------------------------ */

/* Runs curl on url; the response (headers and body) in *out. */
static int
curl(const char *args, const char *url, char **out)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd, "curl -sS --max-time 10 %s '%s'", args, url);
    return run_cmd(cmd, out);
}

static bool
name_ok(const char *s, size_t n, bool colon)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || (colon && c == ':');

        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/*
 * Checks a Prometheus text exposition: names, one HELP and one TYPE per
 * family before its samples, label values with only \\ \" \n escapes,
 * numeric values.  Fails the test with the offending line.
 */
static void
check_exposition(const char *text)
{
    char families[64][64];
    int nfam = 0, lineno = 0;
    char cur[64] = "";
    bool help = false, type = false;

    for (const char *p = text; *p; ) {
        const char *e = strchr(p, '\n'), *q;
        size_t n;

        assert_non_null(e);     /* every line ends in \n */
        n = (size_t)(e - p);
        lineno++;
        if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
            bool is_help = p[2] == 'H';
            const char *nm = p + 7, *sp = memchr(nm, ' ', (size_t)(e - nm));

            assert_non_null(sp);
            assert_true(name_ok(nm, (size_t)(sp - nm), true));
            if (strlen(cur) != (size_t)(sp - nm) ||
                strncmp(cur, nm, (size_t)(sp - nm)) != 0) {
                /* a new family: never seen before */
                snprintf(cur, sizeof cur, "%.*s", (int)(sp - nm), nm);
                for (int i = 0; i < nfam; i++)
                    if (strcmp(families[i], cur) == 0) {
                        fprintf(stderr, "line %d: family %s again\n", lineno,
                                cur);
                        fail();
                    }
                assert_true(nfam < 64);
                snprintf(families[nfam++], sizeof families[0], "%s", cur);
                help = type = false;
            }
            if ((is_help && help) || (!is_help && type)) {
                fprintf(stderr, "line %d: two %s lines\n", lineno,
                        is_help ? "HELP" : "TYPE");
                fail();
            }
            if (!is_help) {
                assert_true(strncmp(sp + 1, "counter\n", 8) == 0 ||
                            strncmp(sp + 1, "gauge\n", 6) == 0);
                type = true;
            } else {
                help = true;
            }
            p = e + 1;
            continue;
        }
        assert_true(n > 0 && p[0] != '#');
        /* a sample: name{l="v",...} value */
        q = p;
        while (q < e && *q != '{' && *q != ' ')
            q++;
        assert_true(name_ok(p, (size_t)(q - p), true));
        if ((size_t)(q - p) != strlen(cur) ||
            strncmp(p, cur, strlen(cur)) != 0 || !help || !type) {
            fprintf(stderr, "line %d: sample %.*s not after its HELP and "
                    "TYPE\n", lineno, (int)n, p);
            fail();
        }
        if (*q == '{') {
            q++;
            while (*q != '}') {
                const char *ln = q;

                while (q < e && *q != '=')
                    q++;
                assert_true(name_ok(ln, (size_t)(q - ln), false));
                assert_true(q[1] == '"');
                for (q += 2; *q != '"'; q++) {
                    assert_true(q < e);
                    if (*q == '\\') {
                        q++;
                        assert_true(*q == '\\' || *q == '"' || *q == 'n');
                    }
                }
                q++;
                if (*q == ',')
                    q++;
                else
                    assert_true(*q == '}');
            }
            q++;
        }
        assert_true(*q == ' ');
        {
            char *end;

            strtod(q + 1, &end);
            assert_true(end == e && end > q + 1);
        }
        p = e + 1;
    }
    assert_true(nfam >= 7);
}

/* The value of one sample, found by its whole name{labels} text. */
static long long
sample(const char *text, const char *series)
{
    char pat[256];
    const char *s;

    snprintf(pat, sizeof pat, "\n%s ", series);
    s = strstr(text, pat);
    if (s == NULL) {
        fprintf(stderr, "no sample %s in:\n%s\n", series, text);
        fail();
    }
    return strtoll(s + strlen(pat), NULL, 10);
}

/* state: the mode */
static void
test_metrics(void **state)
{
    const char *mode = *state;
    struct ssd d;
    struct traffic t;
    char url[256], *out, *body, *json;

    assert_int_equal(ssd_start(&d, ssd_ini_mode(ini_text, mode), NSERVERS,
                               NULL), 0);
    make_traffic(&d, &t);
    json = settled_status(&d);      /* every request of the traffic ended */
    free(json);
    snprintf(url, sizeof url, "http://%s/metrics", ssd_addr(&d, "metrics"));
    assert_int_equal(curl("-i", url, &out), 0);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(out, "\r\nContent-Type: text/plain; "
                                "version=0.0.4"));
    body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    body += 3;                      /* keep a '\n' before the first line */
    check_exposition(body + 1);
    assert_int_equal(sample(body, "sockserv_accepted_total{server=\"open\"}"),
                     t.open_n);
    assert_int_equal(sample(body, "sockserv_bytes_received_total"
                            "{server=\"open\"}"), t.open_n);
    assert_int_equal(sample(body, "sockserv_bytes_sent_total"
                            "{server=\"open\"}"), t.open_n);
    assert_int_equal(sample(body, "sockserv_active_requests"
                            "{server=\"open\"}"), 0);
    assert_int_equal(sample(body, "sockserv_refused_total{server=\"acl\","
                            "reason=\"acl\"}"), t.acl_m);
    assert_int_equal(sample(body, "sockserv_refused_total{server=\"maxconn\","
                            "reason=\"max_connections\"}"), t.maxconn_m);
    assert_int_equal(sample(body, "sockserv_refused_total{server=\"persrc\","
                            "reason=\"max_per_source\"}"), t.persrc_m);
    assert_int_equal(sample(body, "sockserv_refused_total{server=\"rate\","
                            "reason=\"rate_limit\"}"), t.rate_out);
    assert_int_equal(sample(body, "sockserv_accepted_total{server=\"rate\"}"),
                     t.rate_in);
    assert_int_equal(sample(body, "sockserv_accepted_total{server=\"udp\"}"),
                     t.udp_n);
    assert_int_equal(sample(body, "sockserv_accepted_total"
                            "{server=\"q\\\"b\\\\s\"}"), t.q_n);
    /* this scrape is the metrics server's first request, running now */
    assert_int_equal(sample(body, "sockserv_accepted_total"
                            "{server=\"metrics\"}"), 1);
    assert_int_equal(sample(body, "sockserv_active_requests"
                            "{server=\"metrics\"}"), 1);
    free(out);

    /* Python's prometheus_client reads it, the odd name unescaped */
    {
        char cmd[1024], line[512] = "";
        FILE *p;

        snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import sys, "
                 "urllib.request\nfrom prometheus_client.parser import "
                 "text_string_to_metric_families as parse\n"
                 "t = urllib.request.urlopen(sys.argv[1]).read().decode()\n"
                 "for f in parse(t):\n"
                 " for s in f.samples:\n"
                 "  if s.name == \"sockserv_accepted_total\" and "
                 "s.labels[\"server\"] == sys.argv[2]: print(int(s.value))\n"
                 "' '%s' 'q\"b\\s' 2>&1", url);
        p = popen(cmd, "r");
        assert_non_null(p);
        if (fgets(line, sizeof line, p) == NULL)
            line[0] = '\0';
        if (pclose(p) != 0 || strtol(line, NULL, 10) != t.q_n) {
            fprintf(stderr, "prometheus_client (python3-prometheus-client, "
                    "scripts/install-deps installs it): %s\n", line);
            fail();
        }
    }
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* One raw HTTP exchange: sends req, returns what came back (to free). */
static char *
http_raw(const char *addr, const char *req, size_t len)
{
    char *buf = calloc(1, 65536);
    int fd = ssd_connect(addr);
    size_t have = 0;

    assert_non_null(buf);
    assert_true(fd >= 0);
    assert_int_equal(ssd_send_all(fd, req, len), 0);
    for (;;) {
        ssize_t n = ssd_recv_some(fd, buf + have, 65535 - have, 5000);

        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    return buf;
}

static void
expect_status(const char *addr, const char *req, size_t len,
              const char *status)
{
    char *r = http_raw(addr, req, len);

    if (strncmp(r, status, strlen(status)) != 0) {
        fprintf(stderr, "sent %.60s...: got %.80s, wanted %s\n", req, r,
                status);
        fail();
    }
    free(r);
}

/* state: the mode */
static void
test_metrics_http(void **state)
{
    static const char ini[] =
        "[metrics]\nhandler = metrics\ntype = tcp\nmode = threading\n"
        "port = 0\n";
    const char *mode = *state, *a;
    struct ssd d;
    char *big, *r;
    size_t n;

    assert_int_equal(ssd_start(&d, ssd_ini_mode(ini, mode), 1, NULL), 0);
    a = ssd_addr(&d, "metrics");
#define S(x) x, sizeof x - 1
    expect_status(a, S("GET /metrics HTTP/1.0\r\n\r\n"), "HTTP/1.0 200 OK\r\n");
    expect_status(a, S("GET /metrics?x=1 HTTP/1.1\nHost: a\n\n"),
                  "HTTP/1.1 200 OK\r\n");
    expect_status(a, S("GET /other HTTP/1.1\r\nHost: a\r\n\r\n"),
                  "HTTP/1.1 404 ");
    expect_status(a, S("POST /metrics HTTP/1.1\r\nHost: a\r\n"
                       "Content-Length: 0\r\n\r\n"), "HTTP/1.1 405 ");
    expect_status(a, S("GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 400 ");
    expect_status(a, S("GARBAGE\r\n\r\n"), "HTTP/1.1 400 ");
    expect_status(a, S("GET /metrics HTTP/2.0\r\n\r\n"), "HTTP/1.1 505 ");
    r = http_raw(a, S("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(strlen(strstr(r, "\r\n\r\n")) == 4);   /* no body */
    free(r);
#undef S
    /* a header over the limit: 431; a request line over it: 400 */
    big = malloc(40000);
    assert_non_null(big);
    n = (size_t)snprintf(big, 40000, "GET /metrics HTTP/1.1\r\nHost: a\r\n"
                         "X-Big: ");
    memset(big + n, 'x', 20000);
    n += 20000;
    memcpy(big + n, "\r\n\r\n", 4);
    expect_status(a, big, n + 4, "HTTP/1.1 431 ");
    n = (size_t)snprintf(big, 40000, "GET /");
    memset(big + n, 'a', 10000);
    n += 10000;
    memcpy(big + n, " HTTP/1.1\r\n\r\n", 13);
    expect_status(a, big, n + 13, "HTTP/1.1 400 ");
    free(big);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
}

/* forking is refused at the mode line, naming the modes it runs in */
static void
test_metrics_forking_refused(void **state)
{
    char *out;

    (void)state;
    assert_int_equal(ssd_run("[m]\nhandler = metrics\ntype = tcp\n"
                             "mode = forking\nport = 0\n", NULL, &out), 2);
    assert_non_null(strstr(out, ":4: "));
    free(out);
}

/* f run in one mode, as the test "f_mode" (test_metrics_event...); the
 * mode reaches f as its state */
#define IN_MODE(f, mode) { #f "_" #mode, f, NULL, NULL, #mode }

int
main(void)
{
    const struct CMUnitTest tests[] = {
        IN_MODE(test_control_status, threading),
        IN_MODE(test_control_status, forking),
        IN_MODE(test_control_status, event),
        cmocka_unit_test(test_control_solo_forking),
        cmocka_unit_test(test_control_errors),
        IN_MODE(test_metrics, threading),
        IN_MODE(test_metrics, forking),
        IN_MODE(test_metrics, event),
        IN_MODE(test_metrics_http, threading),
        IN_MODE(test_metrics_http, event),
        IN_MODE(test_metrics_http, sync),
        cmocka_unit_test(test_metrics_forking_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
