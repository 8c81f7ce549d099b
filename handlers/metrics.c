/* metrics.c: the Prometheus text format (version 0.0.4) for every server
 * of the daemon, on GET /metrics over HTTP/1.0 and 1.1.
 *
 * One request per connection (Connection: close).  The request head is
 * read whole, at most HTTP_MAX_HEAD bytes within HTTP_HEAD_SECONDS, then
 * parsed by http_parse (fuzzed by tests/fuzz/fuzz_http.c): a request line
 * over HTTP_MAX_LINE is 400, a header line over it or a head over
 * HTTP_MAX_HEAD (or over HTTP_MAX_HEADERS lines) is 431, another path
 * 404, another method than GET or HEAD 405.
 *
 * The counters come from ss_servers_foreach and ss_server_stats, which
 * are exact and already summed over a forking server's children.  The
 * handler itself runs in sync, threading and event mode, not forking: a
 * forked child could read the counters (they are shared), but the list
 * of servers is guarded by a lock that another thread of the daemon may
 * hold at the moment of the fork.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sockserv.h"

#define HTTP_MAX_LINE 8192      /* the request line, and each header line */
#define HTTP_MAX_HEAD 16384     /* the whole head */
#define HTTP_MAX_HEADERS 100
#define HTTP_HEAD_SECONDS 10    /* to send the whole head */
#define LINGER_SECONDS 1        /* reading what follows a refused head */
#define LINGER_BYTES 65536

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

/* A parsed request head; path points into the parsed buffer. */
struct http_req {
    enum http_method method;
    int minor;                  /* HTTP/1.minor */
    const char *path;           /* "/metrics" (the query cut off) */
    size_t path_len;
};

/* tchar of RFC 9110: the characters of a method or a header name. */
static int
is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
                                                          c) != NULL);
}

/* Length of line starting at p (before "\n" or "\r\n"), or -1 when no
 * '\n' comes within max bytes of what is there; *next: after the '\n'. */
static long
line_len(const char *p, size_t avail, size_t max, size_t *next)
{
    const char *nl = memchr(p, '\n', avail < max + 1 ? avail : max + 1);
    size_t n;

    if (nl == NULL)
        return -1;
    n = (size_t)(nl - p);
    *next = n + 1;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    return (long)n;
}

/* The request line: METHOD SP TARGET SP HTTP/1.x.  0 or an HTTP status. */
static int
parse_request_line(const char *p, size_t n, struct http_req *r)
{
    size_t i = 0, m, t0, t;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    m = i;
    if (m == 0 || i == n || p[i] != ' ')
        return 400;
    r->method = m == 3 && memcmp(p, "GET", 3) == 0 ? HTTP_GET
              : m == 4 && memcmp(p, "HEAD", 4) == 0 ? HTTP_HEAD
              : HTTP_OTHER;
    t0 = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t0 || i == n || p[i] != ' ')
        return 400;
    t = i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 ||
        p[i + 5] < '0' || p[i + 5] > '9' || p[i + 6] != '.' ||
        p[i + 7] < '0' || p[i + 7] > '9')
        return 400;
    if (p[i + 5] != '1')
        return 505;
    r->minor = p[i + 7] - '0';
    /* absolute-form (http://host/path): the path after the authority */
    r->path = p + t0;
    r->path_len = t - t0;
    if (p[t0] != '/') {
        const char *s = memchr(r->path, ':', r->path_len), *slash;

        if (s == NULL || (size_t)(r->path + r->path_len - s) < 3 ||
            memcmp(s, "://", 3) != 0)
            return r->method == HTTP_OTHER ? 0 : 400; /* OPTIONS * ... */
        s += 3;
        slash = memchr(s, '/', (size_t)(r->path + r->path_len - s));
        r->path_len = slash ? (size_t)(r->path + r->path_len - slash) : 0;
        r->path = slash ? slash : s;
    }
    for (size_t k = 0; k < r->path_len; k++) {
        if (r->path[k] == '?' || r->path[k] == '#') {
            r->path_len = k;
            break;
        }
    }
    return 0;
}

/* A header line: NAME ":" value, no control character but tab.  0 or an
 * HTTP status; *host set for Host. */
static int
parse_header(const char *p, size_t n, bool *host)
{
    size_t i = 0;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':')
        return 400;         /* also obs-fold: a line that starts blank */
    if (i == 4 && strncasecmp(p, "host", 4) == 0) {
        if (*host)
            return 400;     /* two Host headers */
        *host = true;
    }
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 400;
    }
    return 0;
}

/*
 * Parses an HTTP/1.x request head in buf[0..len).  Returns the head's
 * length (> 0) when it is complete, 0 when more bytes are needed, or
 * minus an HTTP status: -400 (malformed, a request line over
 * HTTP_MAX_LINE, HTTP/1.1 without Host), -431 (a header line over
 * HTTP_MAX_LINE, a head over HTTP_MAX_HEAD or HTTP_MAX_HEADERS), -505
 * (not HTTP/1).  Never reads past len.
 */
static long
http_parse(const char *buf, size_t len, struct http_req *r)
{
    size_t pos = 0, next;
    long n;
    int rc, headers = 0;
    bool host = false;

    memset(r, 0, sizeof *r);
    if (len > HTTP_MAX_HEAD)
        len = HTTP_MAX_HEAD;
    n = line_len(buf, len, HTTP_MAX_LINE, &next);
    if (n < 0)
        return len > HTTP_MAX_LINE ? -400 : 0;
    if (memchr(buf, '\r', (size_t)n) != NULL)
        return -400;        /* a bare CR */
    rc = parse_request_line(buf, (size_t)n, r);
    if (rc != 0)
        return -rc;
    pos = next;
    for (;;) {
        n = line_len(buf + pos, len - pos, HTTP_MAX_LINE, &next);
        if (n < 0) {
            if (len - pos > HTTP_MAX_LINE)
                return -431;
            return len == HTTP_MAX_HEAD ? -431 : 0;
        }
        if (n == 0)
            break;
        if (++headers > HTTP_MAX_HEADERS)
            return -431;
        if (memchr(buf + pos, '\r', (size_t)n) != NULL)
            return -400;
        rc = parse_header(buf + pos, (size_t)n, &host);
        if (rc != 0)
            return -rc;
        pos += next;
    }
    if (r->minor >= 1 && !host)
        return -400;
    return (long)(pos + next);
}

/* True when buf[0..len) holds the end of a head ("\n\n" or "\n\r\n"),
 * looking from `from` on (what the previous look did not see). */
static bool
head_complete(const char *buf, size_t len, size_t from)
{
    for (size_t i = from > 2 ? from - 2 : 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if ((i + 1 < len && buf[i + 1] == '\n') ||
            (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') ||
            (i == 0) || (i == 1 && buf[0] == '\r'))
            return true;
    }
    return false;
}

/* ---- the exposition ----------------------------------------------------- */

/* A label value: backslash, double quote and newline escaped. */
static void
put_label(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

struct server_info {
    char *name, *type, *mode, *address;
    struct ss_server_stats st;
};

struct snapshot {
    struct server_info *v;
    size_t n, cap;
    bool failed;
};

/* Under the servers' lock: copies only. */
static void
take(struct ss_server *srv, void *arg)
{
    struct snapshot *s = arg;
    struct server_info *e;

    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct server_info *v = realloc(s->v, cap * sizeof *v);

        if (v == NULL) {
            s->failed = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    e = &s->v[s->n++];
    e->name = strdup(ss_server_name(srv));
    e->type = strdup(ss_server_type(srv));
    e->mode = strdup(ss_server_mode(srv));
    e->address = strdup(ss_server_address(srv));
    if (ss_server_stats(srv, &e->st, sizeof e->st) < 0)
        memset(&e->st, 0, sizeof e->st);
    if (!e->name || !e->type || !e->mode || !e->address)
        s->failed = true;
}

static void
snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].type);
        free(s->v[i].mode);
        free(s->v[i].address);
    }
    free(s->v);
}

enum { V_ACCEPTED, V_ACTIVE, V_IN, V_OUT, V_UPTIME };

static const struct family {
    const char *name, *type, *help;
    int value;
} families[] = {
    { "sockserv_accepted_total", "counter",
      "Requests admitted (connections or datagrams).", V_ACCEPTED },
    { "sockserv_active_requests", "gauge",
      "Admitted requests not ended yet.", V_ACTIVE },
    { "sockserv_bytes_received_total", "counter",
      "Bytes read by requests.", V_IN },
    { "sockserv_bytes_sent_total", "counter",
      "Bytes written by requests.", V_OUT },
    { "sockserv_uptime_seconds", "gauge",
      "Seconds since the server started listening.", V_UPTIME },
};

static void
put_value(FILE *f, const struct server_info *e, int which)
{
    switch (which) {
    case V_ACCEPTED: fprintf(f, "%llu\n", e->st.accepted); break;
    case V_ACTIVE: fprintf(f, "%lld\n", e->st.active); break;
    case V_IN: fprintf(f, "%llu\n", e->st.bytes_in); break;
    case V_OUT: fprintf(f, "%llu\n", e->st.bytes_out); break;
    default: fprintf(f, "%.3f\n", e->st.uptime); break;
    }
}

/* The exposition of every server, into f. */
static void
exposition(FILE *f, const struct snapshot *s)
{
    fputs("# HELP sockserv_server_info A server of the daemon: its type, "
          "mode and address.\n# TYPE sockserv_server_info gauge\n", f);
    for (size_t i = 0; i < s->n; i++) {
        fputs("sockserv_server_info{server=\"", f);
        put_label(f, s->v[i].name);
        fputs("\",type=\"", f);
        put_label(f, s->v[i].type);
        fputs("\",mode=\"", f);
        put_label(f, s->v[i].mode);
        fputs("\",address=\"", f);
        put_label(f, s->v[i].address);
        fputs("\"} 1\n", f);
    }
    for (size_t k = 0; k < sizeof families / sizeof *families; k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", families[k].name,
                families[k].help, families[k].name, families[k].type);
        for (size_t i = 0; i < s->n; i++) {
            fprintf(f, "%s{server=\"", families[k].name);
            put_label(f, s->v[i].name);
            fputs("\"} ", f);
            put_value(f, &s->v[i], families[k].value);
        }
    }
    fputs("# HELP sockserv_refused_total Requests refused before any "
          "handler code ran, by reason.\n"
          "# TYPE sockserv_refused_total counter\n", f);
    for (size_t i = 0; i < s->n; i++) {
        for (int r = 0; r < SS_REFUSED_REASONS; r++) {
            fputs("sockserv_refused_total{server=\"", f);
            put_label(f, s->v[i].name);
            fprintf(f, "\",reason=\"%s\"} %llu\n",
                    ss_refusal_name((enum ss_refusal)r), s->v[i].st.refused[r]);
        }
    }
}

/* ---- the request -------------------------------------------------------- */

static const char *
reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

/* Sends one response and its body (not for HEAD).  0 or -1. */
static int
respond(struct ss_request *req, int minor, int status, const char *type,
        const char *body, size_t len, bool head_only)
{
    if (ss_printf(req, "HTTP/1.%d %d %s\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                  minor > 1 ? 1 : minor, status, reason_phrase(status), type, len,
                  status == 405 ? "Allow: GET, HEAD\r\n" : "") < 0)
        return -1;
    return head_only || len == 0 ? 0 : ss_write(req, body, len);
}

static int
respond_error(struct ss_request *req, int minor, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status,
                     reason_phrase(status));

    return respond(req, minor, status, "text/plain; charset=utf-8", body,
                   (size_t)n, false);
}

/* After a refused head: reads (and drops) what the client still sends,
 * briefly, so that closing with unread bytes does not reset the
 * connection before the client has read the answer. */
static void
linger(struct ss_request *req)
{
    char sink[4096];
    size_t total = 0;

    while (total < LINGER_BYTES && ss_poll(req, LINGER_SECONDS * 1000) > 0) {
        ssize_t n = ss_read(req, sink, sizeof sink);

        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

static int
serve_metrics(struct ss_request *req, const struct http_req *r)
{
    struct snapshot s = { 0 };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc;

    if (f == NULL)
        return respond_error(req, r->minor, 500);
    ss_servers_foreach(take, &s);
    if (!s.failed)
        exposition(f, &s);
    snapshot_free(&s);
    if (fclose(f) != 0 || s.failed) {
        free(text);
        return respond_error(req, r->minor, 500);
    }
    rc = respond(req, r->minor, 200, "text/plain; version=0.0.4; "
                 "charset=utf-8", text, len, r->method == HTTP_HEAD);
    free(text);
    return rc;
}

/* Milliseconds since t0 (CLOCK_MONOTONIC). */
static long
elapsed_ms(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000 +
           (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static int
metrics_handle(struct ss_request *req)
{
    char *buf = malloc(HTTP_MAX_HEAD);
    struct timespec t0;
    struct http_req r;
    size_t len = 0, before = 0;
    long rc = 0;
    int status;

    if (buf == NULL)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* parsed once the head is whole (or too long): a client that sends a
     * byte at a time costs one pass, not one per byte */
    for (;;) {
        long left = HTTP_HEAD_SECONDS * 1000L - elapsed_ms(&t0);
        ssize_t n;
        int ready;

        if (len == HTTP_MAX_HEAD || head_complete(buf, len, before) ||
            (len > HTTP_MAX_LINE && memchr(buf, '\n', len) == NULL)) {
            rc = http_parse(buf, len, &r);
            if (rc != 0)
                break;
        }
        before = len;
        ready = left > 0 ? ss_poll(req, (int)left) : 0;
        if (ready <= 0) {
            if (ready == 0 && len > 0)
                (void)respond_error(req, 1, 408);
            free(buf);
            return 0;
        }
        n = ss_read(req, buf + len, HTTP_MAX_HEAD - len);
        if (n <= 0) {
            free(buf);
            return n < 0 ? -1 : 0;
        }
        len += (size_t)n;
    }
    if (rc < 0) {
        status = (int)-rc;
        (void)respond_error(req, r.minor ? r.minor : 1, status);
        linger(req);
        free(buf);
        return 0;
    }
    if (r.path_len != 8 || memcmp(r.path, "/metrics", 8) != 0)
        status = 404;
    else if (r.method == HTTP_OTHER)
        status = 405;
    else
        status = 200;
    if (status == 200)
        rc = serve_metrics(req, &r);
    else
        rc = respond_error(req, r.minor, status);
    free(buf);
    return rc < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "metrics",
    .description = "Prometheus metrics of every server on GET /metrics",
    .kinds = SS_STREAM,
    .handle = metrics_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_EVENT,
};
