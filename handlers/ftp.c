/* ftp.c: an FTP server (RFC 959, 2428 and a subset of 3659) confined to a
 * root directory; its data connections go through the core (ss_conn_*). */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <crypt.h>

#include "sockserv.h"
#include "ftp_proto.h"

#define FTP_FAIL_DELAY_MS 1000  /* after a wrong password */
#define FTP_MAX_FAILURES 3      /* then the connection is closed */
#define FTP_CHUNK (1 << 20)     /* sendfile per look at the control line */
#define FTP_BUF 65536
#define FTP_STOR_BUF (256 * 1024) /* binary STOR's reads, for its length only */

enum anon { ANON_OFF, ANON_READ, ANON_WRITE };

/* The server's: what init read. */
struct ftp {
    int root;                   /* O_PATH directory of root */
    enum anon anon;
    struct ftp_user *users;
    size_t nusers;
    char *users_text;           /* the users file, split in place */
    int port_lo, port_hi;       /* 0, 0: any */
    bool have_pasv_addr;
    struct in_addr pasv_addr;
    bool active;
    long data_timeout_ms;
};

/* One session's (on the heap: an event-mode stack stays small). */
struct session {
    struct ss_request *req;
    const struct ftp *ftp;
    char in[2 * FTP_LINE_MAX];  /* what the client sent, not yet a line */
    size_t inlen;
    bool discarding;            /* inside a line over FTP_LINE_MAX */
    char user[64];
    bool user_given, logged_in, writable, anonymous;
    int failures;
    char cwd[FTP_PATH_MAX];
    bool ascii;
    unsigned long long rest;
    struct ss_conn *pasv;       /* listener of the last PASV/EPSV */
    bool have_port;             /* PORT/EPRT given */
    struct sockaddr_storage port_addr;
    socklen_t port_len;
    bool epsv_all;
    char rnfr[FTP_PATH_MAX];    /* RNFR's path, "" when none */
    bool quit;
    char *buf;                  /* FTP_BUF, for transfers */
};

/* ---- the root ------------------------------------------------------------- */

/* Opens vpath below the root, with symlinks and ".." resolved inside it. */
static int
root_open(const struct ftp *f, const char *vpath, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd;

    do
        fd = syscall(SYS_openat2, f->root, ftp_path_rel(vpath), &how,
                     sizeof how);
    while (fd < 0 && errno == EAGAIN);
    return (int)fd;
}

/* Opens vpath's parent directory (O_PATH) and points *base at its last
 * name.  -1 for the root itself (it has no name to act on). */
static int
root_parent(const struct ftp *f, char *vpath, const char **base)
{
    char *slash = strrchr(vpath, '/');
    int fd;

    if (vpath[1] == '\0' || slash == NULL) {
        errno = EPERM;
        return -1;
    }
    *slash = '\0';
    fd = root_open(f, vpath[0] == '\0' ? "/" : vpath,
                   O_PATH | O_DIRECTORY, 0);
    *slash = '/';
    *base = slash + 1;
    return fd;
}

/* ---- replies and lines ----------------------------------------------------- */

static int reply(struct session *, const char *fmt, ...) SS_PRINTF(2, 3);

static int
reply(struct session *s, const char *fmt, ...)
{
    char line[FTP_PATH_MAX + 128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    return ss_write(s->req, line, (size_t)n);
}

/* Replies with errno's meaning for a failed file operation. */
static int
reply_errno(struct session *s, const char *what)
{
    int e = errno;

    if (e == ENOENT || e == ENOTDIR)
        return reply(s, "550 %s: No such file or directory", what);
    if (e == EACCES || e == EPERM || e == EXDEV || e == ELOOP)
        return reply(s, "550 %s: Permission denied", what);
    if (e == EEXIST)
        return reply(s, "550 %s: File exists", what);
    if (e == ENOTEMPTY)
        return reply(s, "550 %s: Directory not empty", what);
    if (e == EISDIR)
        return reply(s, "550 %s: Is a directory", what);
    if (e == ENOSPC || e == EDQUOT)
        return reply(s, "452 %s: No space left", what);
    return reply(s, "550 %s: %s", what, strerror(e));
}

/*
 * Takes more of what the client sent into s->in; 1, 0 at its end, -1.
 * A full buffer holds no line end: it is a line over the limit.
 */
static int
fill(struct session *s)
{
    ssize_t n;

    if (s->inlen == sizeof s->in)
        return 1;
    n = ss_read(s->req, s->in + s->inlen, sizeof s->in - s->inlen);
    if (n <= 0)
        return (int)n;
    s->inlen += (size_t)n;
    return 1;
}

/*
 * The length of the first line in s->in, its LF included, or 0 when none
 * is complete.  ftplib's abort sends "ABOR\r\n" as urgent data, and
 * without SO_OOBINLINE the urgent byte (the LF) never arrives inline: a
 * buffer holding just ABOR and CR is a complete line.
 */
static size_t
line_end(const struct session *s)
{
    const char *nl = memchr(s->in, '\n', s->inlen);
    size_t i = 0;

    if (nl != NULL)
        return (size_t)(nl - s->in) + 1;
    while (i < s->inlen && (unsigned char)s->in[i] >= 0x80)
        i++;                    /* telnet IAC IP, IAC DM */
    if (s->inlen - i == 5 && strncasecmp(s->in + i, "ABOR\r", 5) == 0)
        return s->inlen;
    return 0;
}

/*
 * The next command line into line (NUL-ended, CRLF kept for the parser),
 * its length in *len.  A line over FTP_LINE_MAX is answered 500 and
 * skipped.  Returns 1, 0 at the end, -1 on error.
 */
static int
next_line(struct session *s, char *line, size_t *len)
{
    for (;;) {
        size_t take = line_end(s);

        if (take > 0 && !s->discarding && take <= FTP_LINE_MAX) {
            memcpy(line, s->in, take);
            line[take] = '\0';
            *len = take;
            memmove(s->in, s->in + take, s->inlen - take);
            s->inlen -= take;
            return 1;
        }
        if (take > 0) {         /* the end of a line too long */
            memmove(s->in, s->in + take, s->inlen - take);
            s->inlen -= take;
            if (!s->discarding && reply(s, "500 Command line too long") < 0)
                return -1;
            s->discarding = false;
            continue;
        }
        if (s->inlen > FTP_LINE_MAX) {
            if (!s->discarding && reply(s, "500 Command line too long") < 0)
                return -1;
            s->discarding = true;
            s->inlen = 0;
        }
        int rc = fill(s);

        if (rc <= 0)
            return rc;
    }
}

/*
 * Waits ms without blocking the thread (ss_poll suspends in event mode),
 * keeping what the client sends meanwhile for later; a client that fills
 * the buffer meanwhile is cut short.  0, or -1 when the client left.
 */
static int
pause_ms(struct session *s, int ms)
{
    double end_ms = ms;
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int left, rc;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        left = (int)(end_ms - ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
        if (left <= 0)
            return 0;
        rc = ss_poll(s->req, left);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        if (s->inlen == sizeof s->in)
            return -1;          /* flooding while it waits */
        if (fill(s) <= 0)
            return -1;
    }
}

/* ---- login ------------------------------------------------------------------ */

static const struct ftp_user *
find_user(const struct ftp *f, const char *name)
{
    for (size_t i = 0; i < f->nusers; i++)
        if (strcmp(f->users[i].name, name) == 0)
            return &f->users[i];
    return NULL;
}

static bool
is_anonymous(const char *name)
{
    return strcmp(name, "anonymous") == 0 || strcmp(name, "ftp") == 0;
}

/* A password check, on the heap: in event mode it runs on a thread of its
 * own (ss_run_blocking) while the session waits. */
struct pw_check {
    char *pass;
    const char *hash;
    bool ok;
};

static void
pw_check_run(void *arg)
{
    struct pw_check *c = arg;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    const char *h;

    if (cd == NULL)
        return;
    h = crypt_r(c->pass, c->hash, cd);
    c->ok = h != NULL && h[0] != '*' && strlen(h) == strlen(c->hash) &&
            strcmp(h, c->hash) == 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
}

/* A yescrypt or sha512 hash takes milliseconds on purpose: it runs where
 * it holds up no other session. */
static bool
password_ok(struct session *s, const struct ftp_user *u, const char *pass)
{
    struct pw_check *c = calloc(1, sizeof *c);
    bool ok;

    if (c == NULL || (c->pass = strdup(pass)) == NULL) {
        free(c);
        return false;
    }
    c->hash = u->hash;
    (void)ss_run_blocking(s->req, pw_check_run, c);
    ok = c->ok;
    explicit_bzero(c->pass, strlen(c->pass));
    free(c->pass);
    free(c);
    return ok;
}

static int
cmd_user(struct session *s, const char *arg)
{
    if (s->logged_in)
        return reply(s, "530 Already logged in");
    if (arg[0] == '\0')
        return reply(s, "501 USER needs a name");
    if (is_anonymous(arg) && s->ftp->anon == ANON_OFF)
        return reply(s, "530 This server does not allow anonymous logins");
    snprintf(s->user, sizeof s->user, "%s", arg);
    s->user_given = true;
    return reply(s, "331 Please specify the password");
}

static int
cmd_pass(struct session *s, const char *arg)
{
    const struct ftp_user *u;

    if (s->logged_in)
        return reply(s, "230 Already logged in");
    if (!s->user_given)
        return reply(s, "503 Login with USER first");
    s->user_given = false;
    if (is_anonymous(s->user) && s->ftp->anon != ANON_OFF) {
        s->logged_in = s->anonymous = true;
        s->writable = s->ftp->anon == ANON_WRITE;
        snprintf(s->cwd, sizeof s->cwd, "/");
        ss_log(SS_LOG_INFO, "%s: %s: anonymous login",
               ss_server_name(ss_request_server(s->req)),
               ss_request_peer(s->req));
        return reply(s, "230 Login successful");
    }
    u = find_user(s->ftp, s->user);
    if (u != NULL && password_ok(s, u, arg)) {
        s->logged_in = s->writable = true;
        if (ftp_path_resolve("/", u->home, s->cwd, sizeof s->cwd) < 0)
            snprintf(s->cwd, sizeof s->cwd, "/");
        ss_log(SS_LOG_INFO, "%s: %s: user %s logged in",
               ss_server_name(ss_request_server(s->req)),
               ss_request_peer(s->req), s->user);
        return reply(s, "230 Login successful");
    }
    s->failures++;
    ss_log(SS_LOG_WARNING, "%s: %s: login failed for %s (%d)",
           ss_server_name(ss_request_server(s->req)),
           ss_request_peer(s->req), s->user, s->failures);
    if (pause_ms(s, FTP_FAIL_DELAY_MS) < 0)
        return -1;
    if (s->failures >= FTP_MAX_FAILURES) {
        s->quit = true;
        return reply(s, "421 Too many login failures, closing");
    }
    return reply(s, "530 Login incorrect");
}

/* ---- data connections ------------------------------------------------------- */

static void
pasv_close(struct session *s)
{
    ss_conn_close(s->pasv);
    s->pasv = NULL;
}

static int
cmd_pasv(struct session *s, bool extended, const char *arg)
{
    struct sockaddr_storage local;
    socklen_t len;
    int port;

    if (extended && strcasecmp(arg, "ALL") == 0) {
        s->epsv_all = true;
        return reply(s, "200 EPSV ALL ok");
    }
    if (extended && arg[0] != '\0' && strcmp(arg, "1") != 0 &&
        strcmp(arg, "2") != 0)
        return reply(s, "522 Network protocol not supported, use (1,2)");
    if (!extended && s->epsv_all)
        return reply(s, "503 EPSV ALL given: use EPSV");
    pasv_close(s);              /* its port goes back at once */
    s->have_port = false;
    if (ss_request_sockname(s->req, &local, &len) < 0)
        return reply(s, "425 Cannot open a passive port: %s",
                     strerror(errno));
    if (!extended && local.ss_family == AF_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr) &&
        !s->ftp->have_pasv_addr)
        return reply(s, "522 PASV is IPv4 only: use EPSV");
    s->pasv = ss_request_listen(s->req, NULL, 0, s->ftp->port_lo,
                                s->ftp->port_hi);
    if (s->pasv == NULL || (port = ss_conn_port(s->pasv)) < 0) {
        pasv_close(s);
        return reply(s, "425 Cannot open a passive port: %s",
                     strerror(errno));
    }
    if (extended)
        return reply(s, "229 Entering Extended Passive Mode (|||%d|)", port);

    unsigned char a[4];

    if (s->ftp->have_pasv_addr)
        memcpy(a, &s->ftp->pasv_addr, 4);
    else if (local.ss_family == AF_INET)
        memcpy(a, &((struct sockaddr_in *)&local)->sin_addr, 4);
    else
        memcpy(a, ((struct sockaddr_in6 *)&local)->sin6_addr.s6_addr + 12, 4);
    return reply(s, "227 Entering Passive Mode (%u,%u,%u,%u,%d,%d)", a[0],
                 a[1], a[2], a[3], port >> 8, port & 0xff);
}

static int
cmd_port(struct session *s, bool extended, const char *arg)
{
    struct sockaddr_storage a;
    socklen_t len;
    int port;

    if (!s->ftp->active)
        return reply(s, "502 Active mode is off: use PASV or EPSV");
    if (s->epsv_all)
        return reply(s, "503 EPSV ALL given: use EPSV");
    if ((extended ? ftp_parse_eprt(arg, &a, &len)
                  : ftp_parse_port(arg, &a, &len)) < 0)
        return reply(s, extended ? "522 Bad EPRT, use (1,2)"
                                 : "501 Bad PORT argument");
    port = a.ss_family == AF_INET
        ? ntohs(((struct sockaddr_in *)&a)->sin_port)
        : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    {
        socklen_t plen;
        const struct sockaddr *peer = ss_request_addr(s->req, &plen);
        struct sockaddr_storage pv;

        /* only to the client's own address (no FTP bounce), and no port
         * of a system service */
        memcpy(&pv, peer, plen);
        if (port < 1024 || !(a.ss_family == pv.ss_family ||
                             a.ss_family == AF_INET))
            return reply(s, "500 Illegal PORT: not the client's address");
        if (a.ss_family == AF_INET && pv.ss_family == AF_INET6) {
            /* an IPv4 client on a dual-stack socket: its mapped form */
            struct sockaddr_in6 m = { .sin6_family = AF_INET6,
                                      .sin6_port =
                                      ((struct sockaddr_in *)&a)->sin_port };

            m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
            memcpy(m.sin6_addr.s6_addr + 12,
                   &((struct sockaddr_in *)&a)->sin_addr, 4);
            memcpy(&a, &m, sizeof m);
            len = sizeof m;
        }
        if (!(a.ss_family == AF_INET
              ? ((struct sockaddr_in *)&a)->sin_addr.s_addr ==
                ((struct sockaddr_in *)&pv)->sin_addr.s_addr
              : memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
                       &((struct sockaddr_in6 *)&pv)->sin6_addr, 16) == 0))
            return reply(s, "500 Illegal PORT: not the client's address");
    }
    pasv_close(s);
    s->port_addr = a;
    s->port_len = len;
    s->have_port = true;
    return reply(s, "200 %s command successful", extended ? "EPRT" : "PORT");
}

/* The data connection for a transfer (425 replied when there is none). */
static struct ss_conn *
data_open(struct session *s)
{
    struct ss_conn *c = NULL;

    if (s->pasv != NULL) {
        c = ss_conn_accept(s->pasv, (int)s->ftp->data_timeout_ms);
        pasv_close(s);
    } else if (s->have_port) {
        c = ss_request_connect(s->req, (struct sockaddr *)&s->port_addr,
                               s->port_len, (int)s->ftp->data_timeout_ms);
        s->have_port = false;
    } else {
        (void)reply(s, "425 Use PASV or EPSV first");
        return NULL;
    }
    if (c == NULL)
        (void)reply(s, "425 Failed to establish connection: %s",
                    strerror(errno));
    return c;
}

/*
 * Looks at the control connection between two chunks of a transfer: an
 * ABOR there (or the client's end) stops it.  Another command waits in
 * the buffer for after the transfer.  Returns true to stop.
 */
static bool
aborted(struct session *s, bool *gone)
{
    size_t take;

    if (ss_poll(s->req, 0) > 0 && s->inlen < sizeof s->in &&
        fill(s) <= 0) {
        *gone = true;
        return true;
    }
    if ((take = line_end(s)) > 0) {
        char line[FTP_LINE_MAX + 1];
        struct ftp_cmd cmd;

        if (take <= FTP_LINE_MAX) {
            memcpy(line, s->in, take);
            if (ftp_parse_line(line, take, &cmd) == FTP_OK &&
                strcmp(cmd.verb, "ABOR") == 0) {
                memmove(s->in, s->in + take, s->inlen - take);
                s->inlen -= take;
                return true;
            }
        }
    }
    return false;
}

/* Ends a transfer: 226, or 426 (then 226 for an ABOR). */
static int
data_done(struct session *s, struct ss_conn *c, int rc, bool abor,
          bool gone)
{
    ss_conn_close(c);
    s->rest = 0;
    if (gone) {
        s->quit = true;
        return 0;
    }
    if (abor) {
        if (reply(s, "426 Transfer aborted") < 0)
            return -1;
        return reply(s, "226 ABOR successful");
    }
    if (rc < 0)
        return reply(s, "426 Connection closed; transfer aborted: %s",
                     strerror(errno));
    return reply(s, "226 Transfer complete");
}

/* Sends buf, with LF made CRLF when ascii.  0 or -1. */
static int
send_text(struct session *s, struct ss_conn *c, const char *p, size_t n)
{
    char out[2 * 4096];
    size_t o = 0;

    if (!s->ascii)
        return ss_conn_write(c, p, n);
    for (size_t i = 0; i < n; i++) {
        if (o + 2 > sizeof out) {
            if (ss_conn_write(c, out, o) < 0)
                return -1;
            o = 0;
        }
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = p[i];
    }
    return o > 0 ? ss_conn_write(c, out, o) : 0;
}

/* ---- commands on files -------------------------------------------------------- */

/* Resolves arg into vpath; replies 550 (and returns false) when it cannot. */
static bool
resolve(struct session *s, const char *arg, char *vpath)
{
    if (ftp_path_resolve(s->cwd, arg, vpath, FTP_PATH_MAX) == 0)
        return true;
    (void)reply(s, "553 Bad file name");
    return false;
}

static bool
may_write(struct session *s)
{
    if (s->writable)
        return true;
    (void)reply(s, "550 Permission denied (read-only)");
    return false;
}

static int
cmd_retr(struct session *s, const char *arg)
{
    char vpath[FTP_PATH_MAX];
    struct ss_conn *c;
    struct stat st;
    off_t off;
    int fd, rc = 0;
    bool abor = false, gone = false;

    if (!resolve(s, arg, vpath))
        return 0;
    fd = root_open(s->ftp, vpath, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
    if (fd < 0)
        return reply_errno(s, arg);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return reply(s, "550 %s: Not a plain file", arg);
    }
    off = (off_t)s->rest;
    s->rest = 0;
    if ((c = data_open(s)) == NULL) {
        close(fd);
        return 0;
    }
    if (reply(s, "150 Opening %s mode data connection for %s (%lld bytes)",
              s->ascii ? "ASCII" : "BINARY", arg,
              (long long)st.st_size) < 0) {
        close(fd);
        ss_conn_close(c);
        return -1;
    }
    if (!s->ascii) {
        ssize_t n;

        while (!(abor = aborted(s, &gone)) &&
               (n = ss_conn_sendfile(c, fd, &off, FTP_CHUNK)) != 0) {
            if (n < 0) {
                rc = -1;
                break;
            }
            if (n < FTP_CHUNK)
                break;
        }
    } else {
        ssize_t n;

        while (!(abor = aborted(s, &gone)) &&
               (n = pread(fd, s->buf, 4096, off)) != 0) {
            if (n < 0 || send_text(s, c, s->buf, (size_t)n) < 0) {
                rc = -1;
                break;
            }
            off += n;
        }
    }
    if (rc < 0 && !abor)
        abor = aborted(s, &gone);       /* an ABOR may explain the failure */
    close(fd);
    return data_done(s, c, rc, abor, gone);
}

/* STOR (append false) or APPE (true). */
static int
cmd_stor(struct session *s, const char *arg, bool append)
{
    char vpath[FTP_PATH_MAX];
    struct ss_conn *c;
    int fd, rc = 0, flags = O_WRONLY | O_CREAT | O_NOCTTY | O_NONBLOCK;
    bool abor = false, gone = false, cr = false;
    off_t off = (off_t)s->rest;
    char *buf = s->buf, *big = NULL;
    size_t cap = FTP_BUF;

    if (!may_write(s) || !resolve(s, arg, vpath))
        return 0;
    if (append)
        flags |= O_APPEND;
    else if (off == 0)
        flags |= O_TRUNC;
    s->rest = 0;
    fd = root_open(s->ftp, vpath, flags, 0644);
    if (fd < 0)
        return reply_errno(s, arg);
    {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return reply(s, "550 %s: Not a plain file", arg);
        }
    }
    if (!append && off > 0 && lseek(fd, off, SEEK_SET) < 0) {
        close(fd);
        return reply_errno(s, arg);
    }
    if ((c = data_open(s)) == NULL) {
        close(fd);
        return 0;
    }
    if (reply(s, "150 Ok to send data") < 0) {
        close(fd);
        ss_conn_close(c);
        return -1;
    }
    /* a binary upload reads in 256 KiB: a quarter of the reads (and of
     * the looks at the control line) per MiB; the session's own 64 KiB
     * buffer stays what an idle session holds */
    if (!s->ascii && (big = malloc(FTP_STOR_BUF)) != NULL) {
        buf = big;
        cap = FTP_STOR_BUF;
    }
    for (;;) {
        ssize_t n;
        size_t o = 0;

        if ((abor = aborted(s, &gone)))
            break;
        n = ss_conn_read(c, buf, cap);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        if (s->ascii) {         /* CRLF becomes LF */
            size_t w = 0;

            for (ssize_t i = 0; i < n; i++) {
                if (cr && buf[i] != '\n')
                    buf[w++] = '\r';
                cr = buf[i] == '\r';
                if (!cr)
                    buf[w++] = buf[i];
            }
            n = (ssize_t)w;
        }
        while (o < (size_t)n) {
            ssize_t w = write(fd, buf + o, (size_t)n - o);

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -1;
                break;
            }
            o += (size_t)w;
        }
        if (rc < 0)
            break;
    }
    if (cr && rc == 0 && write(fd, "\r", 1) != 1)
        rc = -1;
    /* a partial upload (client gone, ABOR) is kept as it is */
    free(big);
    close(fd);
    return data_done(s, c, rc, abor, gone);
}

/* LIST (mode 0), NLST (1) or MLSD (2). */
static int
cmd_list(struct session *s, const char *arg, int mode)
{
    char vpath[FTP_PATH_MAX], line[FTP_PATH_MAX + 160];
    struct ss_conn *c;
    struct stat st;
    DIR *d = NULL;
    int fd, rc = 0;
    bool abor = false, gone = false, ascii = s->ascii;
    time_t now = time(NULL);

    while (mode != 2 && arg[0] == '-') {        /* ls options: ignored */
        arg = strchr(arg, ' ');
        arg = arg ? arg + 1 : "";
    }
    if (!resolve(s, arg, vpath))
        return 0;
    fd = root_open(s->ftp, vpath, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0)
        return reply_errno(s, arg[0] ? arg : ".");
    if (fstat(fd, &st) < 0) {
        close(fd);
        return reply_errno(s, arg);
    }
    if (S_ISDIR(st.st_mode)) {
        if ((d = fdopendir(fd)) == NULL) {
            close(fd);
            return reply_errno(s, arg);
        }
    } else if (mode == 2) {
        close(fd);
        return reply(s, "501 %s: Not a directory", arg);
    }
    if ((c = data_open(s)) == NULL)
        goto out_close;
    if (reply(s, "150 Here comes the directory listing") < 0) {
        ss_conn_close(c);
        rc = -1;
        goto out_close;
    }
    s->ascii = false;           /* lines are made with CRLF already */
    if (d == NULL) {
        const char *name = strrchr(vpath, '/') + 1;
        size_t n = mode == 0 ? ftp_list_line(&st, name, now, line,
                                             sizeof line)
                             : (size_t)snprintf(line, sizeof line, "%s\r\n",
                                                name);

        rc = ss_conn_write(c, line, n);
    } else {
        struct dirent *e;

        while (rc == 0 && (e = readdir(d)) != NULL) {
            size_t n;

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            if (mode == 0) {
                n = ftp_list_line(&st, e->d_name, now, line, sizeof line);
            } else if (mode == 1) {
                int k = snprintf(line, sizeof line, "%s\r\n", e->d_name);

                n = k < 0 || (size_t)k >= sizeof line ? 0 : (size_t)k;
            } else {
                n = ftp_mlsx_line(&st, e->d_name, s->writable, line,
                                  sizeof line - 2);
                if (n > 0) {
                    line[n++] = '\r';
                    line[n++] = '\n';
                }
            }
            if (n > 0)
                rc = ss_conn_write(c, line, n);
        }
        abor = aborted(s, &gone);
    }
    s->ascii = ascii;
    if (d != NULL)
        closedir(d);
    return data_done(s, c, rc, abor, gone);
out_close:
    if (d != NULL)
        closedir(d);
    else
        close(fd);
    return rc;
}

static int
cmd_cwd(struct session *s, const char *arg)
{
    char vpath[FTP_PATH_MAX];
    int fd;

    if (!resolve(s, arg[0] ? arg : "/", vpath))
        return 0;
    fd = root_open(s->ftp, vpath, O_PATH | O_DIRECTORY, 0);
    if (fd < 0)
        return reply(s, "550 Failed to change directory");
    close(fd);
    memcpy(s->cwd, vpath, strlen(vpath) + 1);
    return reply(s, "250 Directory successfully changed");
}

static int
cmd_pwd(struct session *s)
{
    char q[2 * FTP_PATH_MAX + 1];

    if (!ftp_quote(s->cwd, q, sizeof q))
        return reply(s, "550 Path too long");
    return reply(s, "257 \"%s\" is the current directory", q);
}

/* SIZE (0), MDTM (1) or MLST (2). */
static int
cmd_stat(struct session *s, const char *arg, int what)
{
    char vpath[FTP_PATH_MAX], line[FTP_PATH_MAX + 160];
    struct stat st;
    int fd;

    if (!resolve(s, arg[0] ? arg : ".", vpath))
        return 0;
    fd = root_open(s->ftp, vpath, O_PATH, 0);
    if (fd < 0)
        return reply_errno(s, arg);
    if (fstat(fd, &st) < 0) {
        close(fd);
        return reply_errno(s, arg);
    }
    close(fd);
    if (what == 0) {
        if (!S_ISREG(st.st_mode))
            return reply(s, "550 %s: Not a plain file", arg);
        return reply(s, "213 %lld", (long long)st.st_size);
    }
    if (what == 1) {
        ftp_time14(st.st_mtime, line, sizeof line);
        return reply(s, "213 %s", line);
    }
    if (ftp_mlsx_line(&st, vpath, s->writable, line, sizeof line) == 0)
        return reply(s, "550 Path too long");
    if (reply(s, "250-Listing %s", vpath) < 0 || reply(s, " %s", line) < 0)
        return -1;
    return reply(s, "250 End");
}

/* MKD, RMD, DELE. */
static int
cmd_change(struct session *s, const char *arg, const char *verb)
{
    char vpath[FTP_PATH_MAX], q[2 * FTP_PATH_MAX + 1];
    const char *base;
    int dfd, rc;

    if (!may_write(s) || !resolve(s, arg, vpath))
        return 0;
    if ((dfd = root_parent(s->ftp, vpath, &base)) < 0)
        return reply_errno(s, arg);
    if (strcmp(verb, "MKD") == 0)
        rc = mkdirat(dfd, base, 0755);
    else
        rc = unlinkat(dfd, base, strcmp(verb, "RMD") == 0 ? AT_REMOVEDIR : 0);
    close(dfd);
    if (rc < 0)
        return reply_errno(s, arg);
    if (strcmp(verb, "MKD") == 0)
        return ftp_quote(vpath, q, sizeof q)
               ? reply(s, "257 \"%s\" created", q)
               : reply(s, "257 Created");
    return reply(s, "250 %s command successful", verb);
}

static int
cmd_rnfr(struct session *s, const char *arg)
{
    char vpath[FTP_PATH_MAX];
    int fd;

    if (!may_write(s) || !resolve(s, arg, vpath))
        return 0;
    fd = root_open(s->ftp, vpath, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0)
        return reply_errno(s, arg);
    close(fd);
    memcpy(s->rnfr, vpath, strlen(vpath) + 1);
    return reply(s, "350 Ready for RNTO");
}

static int
cmd_rnto(struct session *s, const char *arg)
{
    char vpath[FTP_PATH_MAX];
    const char *b1, *b2;
    int d1, d2, rc;

    if (s->rnfr[0] == '\0')
        return reply(s, "503 RNFR first");
    if (!may_write(s) || !resolve(s, arg, vpath)) {
        s->rnfr[0] = '\0';
        return 0;
    }
    d1 = root_parent(s->ftp, s->rnfr, &b1);
    d2 = d1 < 0 ? -1 : root_parent(s->ftp, vpath, &b2);
    rc = d2 < 0 ? -1 : renameat(d1, b1, d2, b2);
    if (rc < 0)
        rc = reply_errno(s, arg);
    else
        rc = reply(s, "250 Rename successful");
    if (d1 >= 0)
        close(d1);
    if (d2 >= 0)
        close(d2);
    s->rnfr[0] = '\0';
    return rc;
}

/* ---- the command table ---------------------------------------------------------- */

static int
cmd_feat(struct session *s)
{
    if (reply(s, "211-Features:") < 0 || reply(s, " EPSV") < 0 ||
        reply(s, " PASV") < 0 || reply(s, " MDTM") < 0 ||
        reply(s, " MLST type*;size*;modify*;perm*;") < 0 ||
        reply(s, " REST STREAM") < 0 || reply(s, " SIZE") < 0 ||
        reply(s, " TVFS") < 0 || reply(s, " UTF8") < 0 ||
        (s->ftp->active && reply(s, " EPRT") < 0))
        return -1;
    return reply(s, "211 End");
}

static int
cmd_type(struct session *s, const char *arg)
{
    if (strcasecmp(arg, "I") == 0 || strcasecmp(arg, "L 8") == 0) {
        s->ascii = false;
        return reply(s, "200 Switching to Binary mode");
    }
    if (strcasecmp(arg, "A") == 0 || strcasecmp(arg, "A N") == 0) {
        s->ascii = true;
        return reply(s, "200 Switching to ASCII mode");
    }
    return reply(s, "504 Type not supported");
}

static int
cmd_rest(struct session *s, const char *arg)
{
    unsigned long long v;

    if (ftp_parse_num(arg, (unsigned long long)INT64_MAX, &v) < 0)
        return reply(s, "501 REST needs a byte count");
    s->rest = v;
    return reply(s, "350 Restart position accepted (%llu)", v);
}

/* The verbs it knows: another is 502, logged in or not. */
static const char *const known[] = {
    "QUIT", "USER", "PASS", "NOOP", "SYST", "FEAT", "OPTS", "HELP", "AUTH",
    "PBSZ", "PROT", "PWD", "XPWD", "CWD", "XCWD", "CDUP", "XCUP", "TYPE",
    "MODE", "STRU", "PASV", "EPSV", "PORT", "EPRT", "RETR", "STOR", "APPE",
    "LIST", "NLST", "MLSD", "SIZE", "MDTM", "MLST", "REST", "MKD", "XMKD",
    "RMD", "XRMD", "DELE", "RNFR", "RNTO", "ABOR", "ALLO", "STAT",
};

/* Runs one parsed command.  0, or -1 when the connection is lost. */
static int
dispatch(struct session *s, struct ftp_cmd *c)
{
    const char *v = c->verb, *a = c->arg;
    size_t k = 0;

    while (k < sizeof known / sizeof *known && strcmp(known[k], v) != 0)
        k++;
    if (k == sizeof known / sizeof *known)
        return reply(s, "502 Command not implemented");

    if (strcmp(v, "QUIT") == 0) {
        s->quit = true;
        return reply(s, "221 Goodbye");
    }
    if (strcmp(v, "USER") == 0)
        return cmd_user(s, a);
    if (strcmp(v, "PASS") == 0)
        return cmd_pass(s, a);
    if (strcmp(v, "NOOP") == 0)
        return reply(s, "200 NOOP ok");
    if (strcmp(v, "SYST") == 0)
        return reply(s, "215 UNIX Type: L8");
    if (strcmp(v, "FEAT") == 0)
        return cmd_feat(s);
    if (strcmp(v, "OPTS") == 0)
        return strncasecmp(a, "UTF8", 4) == 0 || strncasecmp(a, "MLST", 4) == 0
               ? reply(s, "200 OK") : reply(s, "501 Option not understood");
    if (strcmp(v, "HELP") == 0)
        return reply(s, "214 See RFC 959");
    if (strcmp(v, "AUTH") == 0 || strcmp(v, "PBSZ") == 0 ||
        strcmp(v, "PROT") == 0)
        return reply(s, "502 No TLS here");
    if (!s->logged_in)
        return reply(s, "530 Please login with USER and PASS");
    if (strcmp(v, "RNTO") != 0)
        s->rnfr[0] = strcmp(v, "RNFR") == 0 ? s->rnfr[0] : '\0';
    if (strcmp(v, "PWD") == 0 || strcmp(v, "XPWD") == 0)
        return cmd_pwd(s);
    if (strcmp(v, "CWD") == 0 || strcmp(v, "XCWD") == 0)
        return cmd_cwd(s, a);
    if (strcmp(v, "CDUP") == 0 || strcmp(v, "XCUP") == 0)
        return cmd_cwd(s, "..");
    if (strcmp(v, "TYPE") == 0)
        return cmd_type(s, a);
    if (strcmp(v, "MODE") == 0)
        return strcasecmp(a, "S") == 0 ? reply(s, "200 Mode set to S")
                                       : reply(s, "504 Only stream mode");
    if (strcmp(v, "STRU") == 0)
        return strcasecmp(a, "F") == 0 ? reply(s, "200 Structure set to F")
                                       : reply(s, "504 Only file structure");
    if (strcmp(v, "PASV") == 0)
        return cmd_pasv(s, false, a);
    if (strcmp(v, "EPSV") == 0)
        return cmd_pasv(s, true, a);
    if (strcmp(v, "PORT") == 0)
        return cmd_port(s, false, a);
    if (strcmp(v, "EPRT") == 0)
        return cmd_port(s, true, a);
    if (strcmp(v, "RETR") == 0)
        return cmd_retr(s, a);
    if (strcmp(v, "STOR") == 0)
        return cmd_stor(s, a, false);
    if (strcmp(v, "APPE") == 0)
        return cmd_stor(s, a, true);
    if (strcmp(v, "LIST") == 0)
        return cmd_list(s, a, 0);
    if (strcmp(v, "NLST") == 0)
        return cmd_list(s, a, 1);
    if (strcmp(v, "MLSD") == 0)
        return cmd_list(s, a, 2);
    if (strcmp(v, "SIZE") == 0)
        return cmd_stat(s, a, 0);
    if (strcmp(v, "MDTM") == 0)
        return cmd_stat(s, a, 1);
    if (strcmp(v, "MLST") == 0)
        return cmd_stat(s, a, 2);
    if (strcmp(v, "REST") == 0)
        return cmd_rest(s, a);
    if (strcmp(v, "MKD") == 0 || strcmp(v, "XMKD") == 0)
        return cmd_change(s, a, "MKD");
    if (strcmp(v, "RMD") == 0 || strcmp(v, "XRMD") == 0)
        return cmd_change(s, a, "RMD");
    if (strcmp(v, "DELE") == 0)
        return cmd_change(s, a, "DELE");
    if (strcmp(v, "RNFR") == 0)
        return cmd_rnfr(s, a);
    if (strcmp(v, "RNTO") == 0)
        return cmd_rnto(s, a);
    if (strcmp(v, "ABOR") == 0)
        return reply(s, "225 No transfer to abort");
    if (strcmp(v, "ALLO") == 0)
        return reply(s, "202 ALLO not needed");
    if (strcmp(v, "STAT") == 0 && a[0] == '\0')
        return reply(s, "211 sockserv ftp: logged in%s",
                     s->anonymous ? " anonymously" : "");
    return reply(s, "502 Command not implemented");
}

/* ---- the handler ------------------------------------------------------------------ */

static int
ftp_handle(struct ss_request *req)
{
    struct session *s = calloc(1, sizeof *s);
    char line[FTP_LINE_MAX + 1];
    size_t len;
    int rc = 0;

    if (s == NULL || (s->buf = malloc(FTP_BUF)) == NULL) {
        free(s);
        return -1;
    }
    s->req = req;
    s->ftp = ss_request_state(req);
    snprintf(s->cwd, sizeof s->cwd, "/");
    if (reply(s, "220 sockserv ftp ready") < 0)
        rc = -1;
    while (rc == 0 && !s->quit && (rc = next_line(s, line, &len)) > 0) {
        struct ftp_cmd cmd;

        switch (ftp_parse_line(line, len, &cmd)) {
        case FTP_OK:
            rc = dispatch(s, &cmd);
            break;
        case FTP_EMPTY:
            rc = 0;
            break;
        case FTP_BAD:
            rc = reply(s, "500 Syntax error, command unrecognized");
            break;
        case FTP_BAD_CHAR:
            rc = reply(s, "501 Control character in the command line");
            break;
        }
    }
    pasv_close(s);
    free(s->buf);
    free(s);
    return rc < 0 ? -1 : 0;
}

/* ---- init -------------------------------------------------------------------------- */

static void
ftp_fini(void *state)
{
    struct ftp *f = state;

    if (f == NULL)
        return;
    if (f->root >= 0)
        close(f->root);
    free(f->users);
    free(f->users_text);
    free(f);
}

/* Reads the users file into f.  0, or -1 after a configuration error. */
static int
load_users(struct ss_server *srv, struct ftp *f, const char *path)
{
    FILE *fp = fopen(path, "re");
    char *save = NULL, *line;
    size_t cap = 0, lineno = 0;
    long size;

    if (fp == NULL)
        return ss_server_errorf(srv, "users", "users \"%s\": %s", path,
                                strerror(errno));
    if (fseek(fp, 0, SEEK_END) < 0 || (size = ftell(fp)) < 0 ||
        size > 16 << 20 || fseek(fp, 0, SEEK_SET) < 0 ||
        (f->users_text = malloc((size_t)size + 1)) == NULL ||
        fread(f->users_text, 1, (size_t)size, fp) != (size_t)size) {
        fclose(fp);
        return ss_server_errorf(srv, "users", "users \"%s\": cannot read",
                                path);
    }
    fclose(fp);
    f->users_text[size] = '\0';
    /* split on newlines by hand: strtok would skip blank lines' numbers */
    for (line = f->users_text; line != NULL; line = save) {
        struct ftp_user u;
        char *nl = strchr(line, '\n');
        int r;

        save = nl ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        if ((r = ftp_parse_user_line(line, &u)) == 0)
            continue;
        if (r < 0)
            return ss_server_errorf(srv, "users", "users \"%s\", line %zu: "
                                    "not name:crypt-hash[:home]", path,
                                    lineno);
        if (f->nusers == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct ftp_user *nu = realloc(f->users, nc * sizeof *nu);

            if (nu == NULL)
                return -1;
            f->users = nu;
            cap = nc;
        }
        f->users[f->nusers++] = u;
    }
    return 0;
}

static int
init_state(struct ss_server *srv, struct ftp *f)
{
    const char *root = ss_option(srv, "root");
    const char *anon = ss_option(srv, "anonymous");
    const char *users = ss_option(srv, "users");
    const char *ports = ss_option(srv, "passive_ports");
    const char *paddr = ss_option(srv, "passive_address");
    double dt;

    if (root == NULL)
        return ss_server_errorf(srv, NULL, "ftp needs \"root\" (the "
                                "directory it serves)");
    f->root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (f->root < 0)
        return ss_server_errorf(srv, "root", "root \"%s\": %s", root,
                                strerror(errno));
    if (anon == NULL || strcmp(anon, "read") == 0)
        f->anon = ANON_READ;
    else if (strcmp(anon, "off") == 0)
        f->anon = ANON_OFF;
    else if (strcmp(anon, "write") == 0)
        f->anon = ANON_WRITE;
    else
        return ss_server_errorf(srv, "anonymous", "invalid anonymous \"%s\" "
                                "(off, read, write)", anon);
    if (users != NULL && load_users(srv, f, users) < 0)
        return -1;
    if (ports != NULL && ftp_parse_range(ports, &f->port_lo, &f->port_hi) < 0)
        return ss_server_errorf(srv, "passive_ports", "invalid passive_ports "
                                "\"%s\" (LOW-HIGH, 1024-65535)", ports);
    if (paddr != NULL) {
        if (inet_pton(AF_INET, paddr, &f->pasv_addr) != 1)
            return ss_server_errorf(srv, "passive_address", "invalid "
                                    "passive_address \"%s\" (an IPv4 "
                                    "address)", paddr);
        f->have_pasv_addr = true;
    }
    if (ss_option_bool(srv, "active", false, &f->active) < 0 ||
        ss_option_double(srv, "data_timeout", 30, 0.1, 3600, &dt) < 0)
        return -1;
    f->data_timeout_ms = (long)(dt * 1000);
    return 0;
}

static int
ftp_init(struct ss_server *srv, void **state)
{
    struct ftp *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    f->root = -1;
    if (init_state(srv, f) < 0) {
        ftp_fini(f);
        return -1;
    }
    *state = f;
    return 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "ftp",
    .description = "FTP server (RFC 959, 2428, 3659 subset) below a root",
    .kinds = SS_STREAM,
    .init = ftp_init,
    .fini = ftp_fini,
    .handle = ftp_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_THREADING | SS_MODE_FORKING | SS_MODE_EVENT,
};
