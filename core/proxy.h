/* proxy.h: the PROXY protocol (HAProxy's, v1 and v2) header parser; not
 * installed, not for plugins. */
#ifndef SS_PROXY_H
#define SS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "internal.h"

/* versions: proxy_protocol = off (0) | v1 | v2 | any (both) */
#define SS_PROXY_V1 1u
#define SS_PROXY_V2 2u

/* the longest v1 line, CRLF included (the spec's figure) */
#define SS_PROXY_V1_MAX 107
/* the longest v2 header we take, 16 + length included: the spec allows
 * 16 + 65535, but a header is meant to fit one segment; 4096 holds the
 * addresses of any family and a few hundred bytes of TLVs many times over */
#define SS_PROXY_V2_MAX 4096
/* a buffer this size holds any header ss_proxy_parse accepts */
#define SS_PROXY_MAX SS_PROXY_V2_MAX

struct ss_proxy_result {
    int version;                /* 1 or 2 */
    /*
     * true: use the connection's own addresses (v1 UNKNOWN, v2 LOCAL, v2
     * PROXY with family UNSPEC); src and dst are then empty (length 0).
     */
    bool local;
    int socktype;               /* SOCK_STREAM, SOCK_DGRAM (v2 only), 0 if local */
    /* AF_INET, AF_INET6, or (v2) AF_UNIX; ports in network order */
    struct sockaddr_storage src, dst;
    socklen_t srclen, dstlen;
    const char *why;            /* on -1: a static reason, no address in it */
};

/*
 * Parses the PROXY header at the start of buf[0..len), which holds the
 * first bytes of a connection.  versions is SS_PROXY_V1 | SS_PROXY_V2.
 * Returns the header's length (> 0) once it is complete and valid, with
 * out filled; 0 if buf is a valid beginning that needs more bytes; -1 if
 * it is malformed (or a version not in versions), out->why saying why.
 * Never reads past len; bytes after the header do not change the result.
 */
int ss_proxy_parse(const void *buf, size_t len, unsigned versions,
                   struct ss_proxy_result *out);

/*
 * How many more bytes the caller may read after buf[0..len) without
 * reading past the header: >= 1 while ss_proxy_parse returns 0 for the
 * same arguments, 0 otherwise (then it returns > 0 or -1).  len + the
 * answer never exceeds the longest valid header starting with buf, and so
 * never SS_PROXY_MAX.  Read at most this many bytes, append them, parse
 * again.
 */
size_t ss_proxy_need(const void *buf, size_t len, unsigned versions);

/*
 * Parses a proxy_protocol value: "off", "v1", "v2" or "any" into the
 * versions mask (0 for off).  Returns 0, or -1 for anything else.
 */
int ss_proxy_versions_parse(const char *s, unsigned *out);

/*
 * Parses a proxy_from list (addresses and CIDR blocks, as allow/deny);
 * NULL means the default, "127.0.0.1 ::1".  Returns 0, or -1 with the
 * offending word in err.
 */
int ss_proxy_from_parse(const char *list, struct ss_cidr **out, size_t *n,
                        char *err, size_t errlen);

/*
 * CRC32C (Castagnoli, as in iSCSI and SCTP) of buf, continuing crc (0 to
 * start): ss_proxy_crc32c(ss_proxy_crc32c(0, a, n), b, m) is the CRC of a
 * followed by b.
 */
uint32_t ss_proxy_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
