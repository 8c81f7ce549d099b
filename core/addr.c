/* addr.c: parse host/port and Unix paths, format addresses as text. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/*
 * Resolves host and port for bind.  "" and "*" mean every address (the
 * IPv6 wildcard first, which also takes IPv4 where the system allows);
 * "[::1]" may carry brackets.  Returns 0, or -1 with a reason in err.
 */
int
ss_addr_resolve(const char *host, int port, int socktype,
                struct addrinfo **res, char *err, size_t errlen)
{
    struct addrinfo hints;
    char name[256], serv[16];
    const char *node = NULL;
    size_t len;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (host != NULL && *host != '\0' && strcmp(host, "*") != 0) {
        len = strlen(host);
        if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
            host++;
            len -= 2;
        }
        if (len >= sizeof name) {
            snprintf(err, errlen, "host name too long");
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(name, host, len);
        name[len] = '\0';
        node = name;
    } else {
        hints.ai_family = AF_INET6;
    }
    snprintf(serv, sizeof serv, "%d", port);
    rc = getaddrinfo(node, serv, &hints, res);
    if (rc != 0 && node == NULL) {
        hints.ai_family = AF_INET;      /* no IPv6 here */
        rc = getaddrinfo(node, serv, &hints, res);
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", rc == EAI_SYSTEM ? strerror(errno)
                                                     : gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* Fills a sockaddr_un; -1 (ENAMETOOLONG) if the path does not fit. */
int
ss_addr_unix(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n = strlen(path);

    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof sun->sun_path) {
        errno = n == 0 ? EINVAL : ENAMETOOLONG;
        return -1;
    }
    memcpy(sun->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/*
 * Formats an address as "1.2.3.4:80", "[::1]:80", a Unix path, or
 * "unix:unnamed" for an unbound Unix peer.
 */
void
ss_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
               size_t size)
{
    char host[INET6_ADDRSTRLEN];

    if (size == 0)
        return;
    buf[0] = '\0';
    switch (len >= sizeof(sa_family_t) ? sa->sa_family : AF_UNSPEC) {
    case AF_INET: {
        const struct sockaddr_in *in = (const void *)sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const void *)sa;

        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* a dual-stack socket's IPv4 client, shown as IPv4 */
            inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, host,
                      sizeof host);
            snprintf(buf, size, "%s:%u", host, ntohs(in6->sin6_port));
            break;
        }
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const void *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);

        if (len <= off || (sun->sun_path[0] == '\0' && len == off + 1))
            snprintf(buf, size, "unix:unnamed");
        else if (sun->sun_path[0] == '\0')
            snprintf(buf, size, "@%.*s", (int)(len - off - 1),
                     sun->sun_path + 1);
        else
            snprintf(buf, size, "%.*s", (int)strnlen(sun->sun_path,
                     len - off), sun->sun_path);
        break;
    }
    default:
        snprintf(buf, size, "unknown");
        break;
    }
}
