/* ftp_proto.h: the ftp handler's pure parts (no sockets, no files): the
 * command line, virtual paths, PORT/EPRT arguments, the users file's lines
 * and the listing lines.  Included by ftp.c, its unit test and its fuzz
 * target. */
#ifndef SS_FTP_PROTO_H
#define SS_FTP_PROTO_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define FTP_LINE_MAX 512        /* a command line, CRLF included */
#define FTP_PATH_MAX 1024       /* a virtual path ("/a/b") */
#define FTP_VERB_MAX 8

/* One parsed command: the verb in upper case and its argument. */
struct ftp_cmd {
    char verb[FTP_VERB_MAX + 1];
    const char *arg;            /* into the line; "" when none */
};

enum ftp_parse {
    FTP_OK,
    FTP_EMPTY,                  /* a blank line: ignored */
    FTP_BAD,                    /* no verb, or a verb too long: 500 */
    FTP_BAD_CHAR,               /* NUL or a control character: 501 */
};

/*
 * Parses one command line of len bytes (its CRLF or LF may end it) in
 * place.  Telnet bytes ahead of the verb (IAC IP, IAC DM: what ftplib's
 * abort sends ahead of ABOR) are skipped.  A NUL, CR or LF inside the line
 * or any other control character (tab aside) makes it FTP_BAD_CHAR.
 */
static enum ftp_parse
ftp_parse_line(char *line, size_t len, struct ftp_cmd *cmd)
{
    size_t i = 0, v = 0;

    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    while (i < len && (unsigned char)line[i] >= 0x80)
        i++;                    /* telnet IAC sequences */
    for (size_t j = i; j < len; j++) {
        unsigned char c = (unsigned char)line[j];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return FTP_BAD_CHAR;
    }
    line[len] = '\0';
    while (i < len && line[i] == ' ')
        i++;
    if (i == len)
        return FTP_EMPTY;
    while (i < len && line[i] != ' ') {
        unsigned char c = (unsigned char)line[i];

        if (v == FTP_VERB_MAX || !isalpha(c))
            return FTP_BAD;
        cmd->verb[v++] = (char)toupper(c);
        i++;
    }
    cmd->verb[v] = '\0';
    if (i < len)
        i++;                    /* the one space */
    cmd->arg = line + i;
    return FTP_OK;
}

/*
 * Resolves arg against cwd (both virtual paths below the root, "/" being
 * the root) into out: absolute, normalised, with "." and ".." taken
 * lexically and ".." at the root staying there, so the result never leaves
 * the root by name (symlinks are the kernel's: RESOLVE_IN_ROOT).  Returns
 * 0, or -1 with errno (ENAMETOOLONG, EINVAL for a control character).
 */
static int
ftp_path_resolve(const char *cwd, const char *arg, char *out, size_t size)
{
    char tmp[2 * FTP_PATH_MAX + 2];
    size_t n = 0;
    char *save = NULL, *tok;
    int len;

    for (const char *p = arg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            errno = EINVAL;
            return -1;
        }
    len = snprintf(tmp, sizeof tmp, "%s/%s", arg[0] == '/' ? "" : cwd, arg);
    if (len < 0 || (size_t)len >= sizeof tmp || size < 2) {
        errno = ENAMETOOLONG;
        return -1;
    }
    out[0] = '\0';
    for (tok = strtok_r(tmp, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        size_t tl = strlen(tok);

        if (strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;            /* the slash */
            out[n] = '\0';
            continue;
        }
        if (n + 1 + tl + 1 > size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        out[n++] = '/';
        memcpy(out + n, tok, tl);
        n += tl;
        out[n] = '\0';
    }
    if (n == 0) {
        out[0] = '/';
        out[1] = '\0';
    }
    return 0;
}

/* The path for openat2 below the root: "a/b", or "." for the root. */
static const char *
ftp_path_rel(const char *vpath)
{
    return vpath[1] == '\0' ? "." : vpath + 1;
}

/* Writes s as a quoted 257 name: each '"' doubled (RFC 959).  Returns
 * false when it does not fit. */
static bool
ftp_quote(const char *s, char *out, size_t size)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (n + 3 > size)
            return false;
        if (*s == '"')
            out[n++] = '"';
        out[n++] = *s;
    }
    if (n + 1 > size)
        return false;
    out[n] = '\0';
    return true;
}

/* Parses a decimal number within 0..max, the whole string.  0 or -1. */
static int
ftp_parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (unsigned)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return 0;
}

/* PORT h1,h2,h3,h4,p1,p2 into an IPv4 address.  0 or -1. */
static int
ftp_parse_port(const char *arg, struct sockaddr_storage *ss, socklen_t *len)
{
    unsigned long long v[6];
    char buf[64], *save = NULL, *tok;
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    int i = 0;

    if (strlen(arg) >= sizeof buf)
        return -1;
    memcpy(buf, arg, strlen(arg) + 1);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (i == 6 || ftp_parse_num(tok, 255, &v[i]) < 0)
            return -1;
        i++;
    }
    if (i != 6)
        return -1;
    memset(ss, 0, sizeof *ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl((uint32_t)(v[0] << 24 | v[1] << 16 |
                                            v[2] << 8 | v[3]));
    sin->sin_port = htons((uint16_t)(v[4] << 8 | v[5]));
    *len = sizeof *sin;
    return 0;
}

/* EPRT |1|132.235.1.2|6275| or |2|::1|6275| (RFC 2428).  0 or -1. */
static int
ftp_parse_eprt(const char *arg, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[128], *f[4], d;
    size_t al = strlen(arg);
    unsigned long long port, proto;
    int nf = 0;

    if (al < 7 || al >= sizeof buf)
        return -1;
    d = arg[0];
    if (d < 33 || d > 126 || arg[al - 1] != d)
        return -1;
    memcpy(buf, arg, al + 1);
    for (char *p = buf; *p != '\0'; p++) {
        if (*p != d)
            continue;
        *p = '\0';
        if (nf < 4)
            f[nf] = p + 1;
        nf++;
    }
    if (nf != 4)
        return -1;
    if (ftp_parse_num(f[0], 2, &proto) < 0 ||
        ftp_parse_num(f[2], 65535, &port) < 0 || port == 0)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (proto == 1) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        if (inet_pton(AF_INET, f[1], &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof *sin;
    } else if (proto == 2) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, f[1], &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof *sin6;
    } else {
        return -1;
    }
    return 0;
}

/* "LOW-HIGH", 1024 <= LOW <= HIGH <= 65535.  0 or -1. */
static int
ftp_parse_range(const char *s, int *lo, int *hi)
{
    char buf[32], *dash;
    unsigned long long a, b;

    if (strlen(s) >= sizeof buf)
        return -1;
    memcpy(buf, s, strlen(s) + 1);
    dash = strchr(buf, '-');
    if (dash == NULL)
        return -1;
    *dash = '\0';
    if (ftp_parse_num(buf, 65535, &a) < 0 ||
        ftp_parse_num(dash + 1, 65535, &b) < 0 || a < 1024 || b < a)
        return -1;
    *lo = (int)a;
    *hi = (int)b;
    return 0;
}

/* One user of the users file. */
struct ftp_user {
    char *name, *hash, *home;   /* home: a virtual path, "/" by default */
};

/*
 * Splits a users file line "name:crypt-hash[:home]" in place (its newline
 * gone).  Returns 1 for a user, 0 for a blank or '#' line, -1 when
 * malformed (an empty name or hash, a name with a space or control
 * character).
 */
static int
ftp_parse_user_line(char *line, struct ftp_user *u)
{
    char *c1, *c2;
    size_t n = strlen(line);

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n == 0 || line[0] == '#')
        return 0;
    c1 = strchr(line, ':');
    if (c1 == NULL || c1 == line)
        return -1;
    *c1 = '\0';
    c2 = strchr(c1 + 1, ':');
    if (c2 != NULL)
        *c2 = '\0';
    for (const char *p = line; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -1;
    if (c1[1] == '\0')
        return -1;
    u->name = line;
    u->hash = c1 + 1;
    u->home = c2 != NULL && c2[1] != '\0' ? c2 + 1 : (char *)"/";
    return 1;
}

/* YYYYMMDDHHMMSS in UTC (MDTM, MLSD's modify). */
static void
ftp_time14(time_t t, char *out, size_t size)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y%m%d%H%M%S",
                                              &tm) == 0)
        snprintf(out, size, "19700101000000");
}

/* One `ls -l` line (LIST), CRLF ended; now: for "recent" dates.  The
 * length, or 0 when it does not fit. */
static size_t
ftp_list_line(const struct stat *st, const char *name, time_t now,
              char *out, size_t size)
{
    char mode[11], date[16];
    struct tm tm;
    time_t t = st->st_mtime;
    int n;

    mode[0] = S_ISDIR(st->st_mode) ? 'd' : S_ISLNK(st->st_mode) ? 'l' : '-';
    for (int i = 0; i < 9; i++)
        mode[1 + i] = st->st_mode & (0400 >> i) ? "rwxrwxrwx"[i] : '-';
    mode[10] = '\0';
    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof tm);
    if (t > now - 180 * 86400 && t < now + 86400)
        strftime(date, sizeof date, "%b %e %H:%M", &tm);
    else
        strftime(date, sizeof date, "%b %e  %Y", &tm);
    n = snprintf(out, size, "%s %3lu ftp      ftp      %12lld %s %s\r\n",
                 mode, (unsigned long)st->st_nlink, (long long)st->st_size,
                 date, name);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* One MLSD/MLST facts line (RFC 3659), "facts; name", without CRLF;
 * writable: the perm fact offers writes. */
static size_t
ftp_mlsx_line(const struct stat *st, const char *name, bool writable,
              char *out, size_t size)
{
    char t14[16];
    bool dir = S_ISDIR(st->st_mode);
    int n;

    ftp_time14(st->st_mtime, t14, sizeof t14);
    n = snprintf(out, size, "type=%s;size=%lld;modify=%s;perm=%s; %s",
                 dir ? "dir" : "file", (long long)st->st_size, t14,
                 dir ? (writable ? "elcdmpf" : "el")
                     : (writable ? "radfw" : "r"), name);
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

#endif
