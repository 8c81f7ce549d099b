/* test_proxy.c: the PROXY protocol header parser (v1 text, v2 binary),
 * its need-more-bytes answers, CRC32C, and the proxy_protocol and
 * proxy_from values. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "proxy.h"
#include "support/crc32c.h"

#define ANY (SS_PROXY_V1 | SS_PROXY_V2)

/* ---- helpers --------------------------------------------------------------- */

static const unsigned char sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

/* A v2 header in b: signature, ver_cmd, fam, the length of what follows,
 * then addr and tlvs.  Returns its length. */
static size_t
v2_build(unsigned char *b, unsigned ver_cmd, unsigned fam, const void *addr,
         size_t alen, const void *tlvs, size_t tlen)
{
    size_t n = alen + tlen;

    memcpy(b, sig, 12);
    b[12] = (unsigned char)ver_cmd;
    b[13] = (unsigned char)fam;
    b[14] = (unsigned char)(n >> 8);
    b[15] = (unsigned char)n;
    if (alen > 0)
        memcpy(b + 16, addr, alen);
    if (tlen > 0)
        memcpy(b + 16 + alen, tlvs, tlen);
    return 16 + n;
}

/* 192.0.2.1:56324 -> 198.51.100.7:443 */
static const unsigned char inet_block[12] = {
    192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb,
};

/* Sets the CRC32C TLV value at b[at..at+4) right for the header b[0..n). */
static void
crc_fix(unsigned char *b, size_t n, size_t at)
{
    uint32_t c;

    memset(b + at, 0, 4);
    c = crc32c_bitwise(b, n);
    b[at] = (unsigned char)(c >> 24);
    b[at + 1] = (unsigned char)(c >> 16);
    b[at + 2] = (unsigned char)(c >> 8);
    b[at + 3] = (unsigned char)c;
}

/* ss is a sockaddr_in or sockaddr_in6 (family) of len bytes holding addr
 * (as inet_ntop writes it) and port. */
static void
assert_ip(const struct sockaddr_storage *ss, socklen_t len, int family,
          const char *addr, unsigned port)
{
    const struct sockaddr_in *in = (const void *)ss;
    const struct sockaddr_in6 *in6 = (const void *)ss;
    const void *bytes = family == AF_INET ? (const void *)&in->sin_addr
                                          : (const void *)&in6->sin6_addr;
    char text[INET6_ADDRSTRLEN];

    assert_int_equal(len, family == AF_INET ? sizeof *in : sizeof *in6);
    assert_int_equal(ss->ss_family, family);
    assert_non_null(inet_ntop(family, bytes, text, sizeof text));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(family == AF_INET ? in->sin_port : in6->sin6_port),
                     port);
}

#define assert_inet(ss, len, addr, port) \
    assert_ip(ss, len, AF_INET, addr, port)
#define assert_inet6(ss, len, addr, port) \
    assert_ip(ss, len, AF_INET6, addr, port)

/* s[0..n) on stderr, its control and high bytes as C escapes. */
static void
put_escaped(const void *s, size_t n)
{
    const unsigned char *p = s;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r')
            fputs("\\r", stderr);
        else if (p[i] == '\n')
            fputs("\\n", stderr);
        else if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
            fprintf(stderr, "\\x%02x", p[i]);
        else
            fputc(p[i], stderr);
    }
}

/* Parses s (a C string) with versions; expects -1, the reason why, and
 * no more bytes asked for.  A mismatch names the line and what came. */
static void
assert_refused(const char *s, unsigned versions, const char *why)
{
    struct ss_proxy_result r;
    int got = ss_proxy_parse(s, strlen(s), versions, &r);
    size_t need = ss_proxy_need(s, strlen(s), versions);

    if (got != -1 || r.why == NULL || strcmp(r.why, why) != 0 || need != 0) {
        fputs("\"", stderr);
        put_escaped(s, strlen(s));
        fprintf(stderr, "\" (versions %u): parse %d (%s), need %zu; wanted "
                "-1 (%s), need 0\n", versions, got,
                r.why != NULL ? r.why : "no reason", need, why);
        fail();
    }
}

/* A line and the reason it is refused for. */
struct refusal {
    const char *line;
    const char *why;
};

/* the reasons of the address and port tables, short enough for a row */
#define SRC_ADDR "v1: bad source address"
#define DST_ADDR "v1: bad destination address"
#define SRC_PORT "v1: bad source port"
#define DST_PORT "v1: bad destination port"

#define NROWS(a) (sizeof (a) / sizeof *(a))

static void
assert_refusals(const struct refusal *rows, size_t n, unsigned versions)
{
    for (size_t i = 0; i < n; i++)
        assert_refused(rows[i].line, versions, rows[i].why);
}

static void
assert_refused_bin(const unsigned char *b, size_t n, unsigned versions,
                   const char *why)
{
    struct ss_proxy_result r;

    assert_int_equal(ss_proxy_parse(b, n, versions, &r), -1);
    assert_string_equal(r.why, why);
}

/*
 * Every proper prefix of the header b[0..n) needs more bytes, and what
 * ss_proxy_need asks for never reaches past n; the header itself parses to
 * n, with or without bytes after it.  Then a reader that reads exactly
 * what ss_proxy_need says ends at n.
 */
static void
assert_every_split(const unsigned char *b, size_t n, unsigned versions)
{
    struct ss_proxy_result r;
    unsigned char *copy = malloc(n + 8);
    size_t have = 0, reads = 0;

    assert_non_null(copy);
    for (size_t k = 0; k < n; k++) {
        size_t need;

        /* an exact-size copy, so a read past k is a read past malloc's */
        unsigned char *part = malloc(k > 0 ? k : 1);

        assert_non_null(part);
        memcpy(part, b, k);
        assert_int_equal(ss_proxy_parse(part, k, versions, &r), 0);
        need = ss_proxy_need(part, k, versions);
        assert_true(need >= 1);
        assert_true(k + need <= n);
        free(part);
    }
    memcpy(copy, b, n);
    memcpy(copy + n, "GET /\r\n\0", 8);
    assert_int_equal(ss_proxy_parse(copy, n, versions, &r), (int)n);
    assert_int_equal(ss_proxy_parse(copy, n + 8, versions, &r), (int)n);
    assert_int_equal(ss_proxy_need(copy, n, versions), 0);
    while (ss_proxy_parse(copy, have, versions, &r) == 0) {
        have += ss_proxy_need(copy, have, versions);
        reads++;
        assert_true(have <= n);
    }
    assert_int_equal(have, n);
    assert_true(reads >= 1);
    free(copy);
}

/* ---- ss_proxy_crc32c ------------------------------------------------------- */

static void
test_ss_proxy_crc32c_vector(void **state)
{
    const char *s = "123456789";

    (void)state;
    assert_int_equal(ss_proxy_crc32c(0, s, 9), 0xe3069283u);
    assert_int_equal(crc32c_bitwise((const unsigned char *)s, 9),
                     0xe3069283u);
    /* in pieces */
    assert_int_equal(ss_proxy_crc32c(ss_proxy_crc32c(0, s, 4), s + 4, 5),
                     0xe3069283u);
    assert_int_equal(ss_proxy_crc32c(0, s, 0), 0);
}

/* ---- v1 -------------------------------------------------------------------- */

static void
test_ss_proxy_parse_v1_tcp4(void **state)
{
    const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
                    "GET / HTTP/1.1\r\n";
    struct ss_proxy_result r;

    (void)state;
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r), 47);
    assert_int_equal(r.version, 1);
    assert_false(r.local);
    assert_int_equal(r.socktype, SOCK_STREAM);
    assert_null(r.why);
    assert_inet(&r.src, r.srclen, "192.168.0.1", 56324);
    assert_inet(&r.dst, r.dstlen, "192.168.0.11", 443);
    /* v1 only, and the widest IPv4 line (56 bytes) */
    s = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_int_equal(ss_proxy_parse(s, strlen(s), SS_PROXY_V1, &r), 56);
    assert_inet(&r.src, r.srclen, "255.255.255.255", 65535);
    s = "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n";
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r), 32);
    assert_inet(&r.dst, r.dstlen, "0.0.0.0", 0);
}

static void
test_ss_proxy_parse_v1_tcp6(void **state)
{
    const char *s = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\nx";
    struct ss_proxy_result r;
    char wide[128];

    (void)state;
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r),
                     (int)strlen(s) - 1);
    assert_int_equal(r.version, 1);
    assert_false(r.local);
    assert_inet6(&r.src, r.srclen, "2001:db8::1", 1);
    assert_inet6(&r.dst, r.dstlen, "::1", 65535);
    /* the shortest and the widest (104 bytes) */
    s = "PROXY TCP6 :: :: 0 0\r\n";
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r), 22);
    snprintf(wide, sizeof wide, "PROXY TCP6 %s %s 65535 65535\r\n",
             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
             "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF");
    assert_int_equal(strlen(wide), 104);
    assert_int_equal(ss_proxy_parse(wide, 104, ANY, &r), 104);
    assert_inet6(&r.dst, r.dstlen, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                 65535);
}

static void
test_ss_proxy_parse_v1_unknown(void **state)
{
    const char *s = "PROXY UNKNOWN\r\nHELO";
    struct ss_proxy_result r;
    char worst[128];

    (void)state;
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r), 15);
    assert_int_equal(r.version, 1);
    assert_true(r.local);
    assert_int_equal(r.srclen, 0);
    assert_int_equal(r.dstlen, 0);
    /* what follows UNKNOWN is ignored, whatever it is */
    s = "PROXY UNKNOWN whatever it says 1 2\r\n";
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r),
                     (int)strlen(s));
    assert_true(r.local);
    /* the spec's worst case: 107 bytes, CRLF included */
    snprintf(worst, sizeof worst, "PROXY UNKNOWN %s %s 65535 65535\r\n",
             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_int_equal(strlen(worst), 107);
    assert_int_equal(ss_proxy_parse(worst, 107, ANY, &r), 107);
    assert_true(r.local);
    assert_refused("PROXY UNKNOWNX\r\n", ANY, "v1: unknown protocol");
}

static void
test_ss_proxy_parse_v1_too_long(void **state)
{
    char line[256];
    struct ss_proxy_result r;

    (void)state;
    /* 105 bytes and no CR: the CRLF may still come; at 106 it cannot */
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    assert_int_equal(ss_proxy_parse(line, 105, ANY, &r), 0);
    assert_int_equal(ss_proxy_need(line, 105, ANY), 2);
    assert_int_equal(ss_proxy_parse(line, 106, ANY, &r), -1);
    assert_string_equal(r.why, "v1: line longer than 107 bytes");
    assert_int_equal(ss_proxy_parse(line, 107, ANY, &r), -1);
    assert_string_equal(r.why, "v1: line longer than 107 bytes");
    assert_int_equal(ss_proxy_parse(line, 108, ANY, &r), -1);
    assert_string_equal(r.why, "v1: line longer than 107 bytes");
    /* CRLF at 107..108: one byte too long */
    memcpy(line + 106, "\r\n", 2);
    assert_int_equal(ss_proxy_parse(line, 200, ANY, &r), -1);
    assert_string_equal(r.why, "v1: line longer than 107 bytes");
    /* 106 bytes then CR: only the LF may follow */
    assert_int_equal(ss_proxy_parse(line, 107, ANY, &r), -1);
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(ss_proxy_parse(line, 106, ANY, &r), 0);
    assert_int_equal(ss_proxy_need(line, 106, ANY), 1);
    assert_int_equal(ss_proxy_parse(line, 200, ANY, &r), 107);
    /* a TCP4 line whose shortest ending would pass 107 bytes fails early */
    memset(line, '1', sizeof line);
    memcpy(line, "PROXY TCP4 1.2.3.4 5.6.7.8 ", 27);
    assert_int_equal(ss_proxy_parse(line, 28, ANY, &r), 0);
    assert_int_equal(ss_proxy_parse(line, 33, ANY, &r), -1);
    assert_string_equal(r.why, "v1: bad source port");
}

static void
test_ss_proxy_parse_v1_bad_address(void **state)
{
    static const struct refusal rows[] = {
        { "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", SRC_ADDR },
        { "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", SRC_ADDR },
        { "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", SRC_ADDR },
        { "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", SRC_ADDR },
        { "PROXY TCP4 1.2.3.4 5.6.7.8.9 1 2\r\n", DST_ADDR },
        { "PROXY TCP4 1.2.3.4 example.com 1 2\r\n", DST_ADDR },
        { "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", SRC_ADDR },
        { "PROXY TCP6 ::1 1::2::3 1 2\r\n", DST_ADDR },
        { "PROXY TCP6 ::1 ::g 1 2\r\n", DST_ADDR },
        /* two spaces: an empty field */
        { "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", SRC_ADDR },
        { "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", DST_ADDR },
        /* refused before the line ends, as soon as it cannot be an
         * address */
        { "PROXY TCP4 1.2.3.4x", SRC_ADDR },
        { "PROXY TCP4 1234567890123456", SRC_ADDR },
    };

    (void)state;
    /* a NUL inside an address: inet_pton would read "::ff" alone */
    {
        static const char nul[] = "PROXY TCP6 ::1 ::ff\0:1 1 2\r\n";
        struct ss_proxy_result r;

        assert_int_equal(ss_proxy_parse(nul, sizeof nul - 1, ANY, &r), -1);
        assert_string_equal(r.why, "v1: bad destination address");
        assert_int_equal(ss_proxy_parse(nul, 20, ANY, &r), -1);
        assert_string_equal(r.why, "v1: bad destination address");
    }
    assert_refusals(rows, NROWS(rows), ANY);
}

static void
test_ss_proxy_parse_v1_bad_port(void **state)
{
    static const struct refusal rows[] = {
        { "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", SRC_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", SRC_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", SRC_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", SRC_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8  80 2\r\n", SRC_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 2x\r\n", DST_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 00\r\n", DST_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 123456\r\n", DST_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 99999", DST_PORT },
    };

    (void)state;
    assert_refusals(rows, NROWS(rows), ANY);
}

static void
test_ss_proxy_parse_v1_missing_crlf(void **state)
{
    static const struct refusal rows[] = {
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n", "v1: LF without CR" },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\rX", "v1: CR not followed by LF" },
        { "PROXY TCP4 1.2.3.4\r 5.6.7.8 80 443\r\n", "v1: CR not followed by LF" },
        { "PROXY UNKNOWN\n", "v1: LF without CR" },
        { "PROXY UNKNOWN \r \r\n", "v1: CR not followed by LF" },
    };
    struct ss_proxy_result r;
    const char *s = "PROXY TCP4 1.2.3.4 5.6.7.8 80 443";

    (void)state;
    assert_refusals(rows, NROWS(rows), ANY);
    /* no end yet: more is needed, at least the CRLF */
    assert_int_equal(ss_proxy_parse(s, strlen(s), ANY, &r), 0);
    assert_null(r.why);
    assert_int_equal(ss_proxy_need(s, strlen(s), ANY), 2);
}

static void
test_ss_proxy_parse_v1_fields(void **state)
{
    static const struct refusal rows[] = {
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", "v1: too few fields" },
        { "PROXY TCP4\r\n", "v1: too few fields" },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 443 1\r\n", "v1: too many fields" },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n", "v1: too many fields" },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 80 443 ", "v1: too many fields" },
        { "PROXY UDP4 1.2.3.4 5.6.7.8 80 443\r\n", "v1: unknown protocol" },
        { "PROXY tcp4 1.2.3.4 5.6.7.8 80 443\r\n", "v1: unknown protocol" },
        { "PROXY  TCP4 1.2.3.4 5.6.7.8 80 443\r\n", "v1: unknown protocol" },
        { "PROXY \r\n", "v1: unknown protocol" },
        { "PROXY X", "v1: unknown protocol" },
        { "PROXYTCP4", "not a PROXY header" },
        { "proxy TCP4", "not a PROXY header" },
    };

    (void)state;
    assert_refusals(rows, NROWS(rows), ANY);
}

static void
test_ss_proxy_parse_v1_split(void **state)
{
    static const char *const lines[] = {
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
        "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n",
        "PROXY TCP6 :: :: 0 0\r\n",
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN 1.2.3.4 5.6.7.8 80 443\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        assert_every_split((const unsigned char *)lines[i], strlen(lines[i]),
                           ANY);
        assert_every_split((const unsigned char *)lines[i], strlen(lines[i]),
                           SS_PROXY_V1);
    }
}

/* ---- v2 -------------------------------------------------------------------- */

static void
test_ss_proxy_parse_v2_inet(void **state)
{
    unsigned char b[64];
    struct ss_proxy_result r;
    size_t n = v2_build(b, 0x21, 0x11, inet_block, 12, NULL, 0);

    (void)state;
    assert_int_equal(n, 28);
    memcpy(b + n, "data", 4);
    assert_int_equal(ss_proxy_parse(b, n + 4, ANY, &r), 28);
    assert_int_equal(r.version, 2);
    assert_false(r.local);
    assert_int_equal(r.socktype, SOCK_STREAM);
    assert_inet(&r.src, r.srclen, "192.0.2.1", 56324);
    assert_inet(&r.dst, r.dstlen, "198.51.100.7", 443);
    assert_every_split(b, n, ANY);
    assert_every_split(b, n, SS_PROXY_V2);
    /* UDP over IPv4: the same addresses, a datagram socket type */
    n = v2_build(b, 0x21, 0x12, inet_block, 12, NULL, 0);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 28);
    assert_int_equal(r.socktype, SOCK_DGRAM);
}

static void
test_ss_proxy_parse_v2_inet6(void **state)
{
    unsigned char a[36], b[64];
    struct ss_proxy_result r;
    size_t n;

    (void)state;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", a), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", a + 16), 1);
    memcpy(a + 32, "\x30\x39\x00\x50", 4);          /* 12345, 80 */
    n = v2_build(b, 0x21, 0x21, a, sizeof a, NULL, 0);
    assert_int_equal(n, 52);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 52);
    assert_int_equal(r.version, 2);
    assert_false(r.local);
    assert_inet6(&r.src, r.srclen, "2001:db8::1", 12345);
    assert_inet6(&r.dst, r.dstlen, "2001:db8::2", 80);
    assert_every_split(b, n, ANY);
}

static void
test_ss_proxy_parse_v2_unix(void **state)
{
    unsigned char a[216], b[256];
    struct ss_proxy_result r;
    const struct sockaddr_un *sun = (const void *)&r.src;
    size_t off = offsetof(struct sockaddr_un, sun_path), n;

    (void)state;
    memset(a, 0, sizeof a);
    memcpy(a, "/run/client.sock", 16);
    memcpy(a + 108 + 1, "abstract", 8);     /* "\0abstract" */
    n = v2_build(b, 0x21, 0x31, a, sizeof a, NULL, 0);
    assert_int_equal(n, 232);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 232);
    assert_false(r.local);
    assert_int_equal(r.socktype, SOCK_STREAM);
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_string_equal(sun->sun_path, "/run/client.sock");
    assert_int_equal(r.srclen, off + 17);
    sun = (const void *)&r.dst;
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_int_equal(r.dstlen, off + 9);
    assert_memory_equal(sun->sun_path, "\0abstract", 9);
    assert_every_split(b, n, ANY);
    /* unnamed: the family alone; a path that fills all 108 bytes */
    memset(a, 0, sizeof a);
    memset(a + 108, 'p', 108);
    n = v2_build(b, 0x21, 0x32, a, sizeof a, NULL, 0);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 232);
    assert_int_equal(r.socktype, SOCK_DGRAM);
    assert_int_equal(r.srclen, sizeof(sa_family_t));
    assert_int_equal(r.dstlen, off + 108);
}

static void
test_ss_proxy_parse_v2_local(void **state)
{
    unsigned char b[64], junk[20];
    struct ss_proxy_result r;
    size_t n = v2_build(b, 0x20, 0x00, NULL, 0, NULL, 0);

    (void)state;
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 16);
    assert_int_equal(r.version, 2);
    assert_true(r.local);
    assert_int_equal(r.socktype, 0);
    assert_int_equal(r.srclen, 0);
    assert_every_split(b, n, ANY);
    /* LOCAL skips the whole length, whatever the family and the bytes
     * say (a TLV walk would call this truncated) */
    memset(junk, 0xee, sizeof junk);
    n = v2_build(b, 0x20, 0xff, junk, sizeof junk, NULL, 0);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 36);
    assert_true(r.local);
    assert_every_split(b, n, ANY);
    /* PROXY with family UNSPEC: the real addresses too */
    n = v2_build(b, 0x21, 0x00, junk, sizeof junk, NULL, 0);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 36);
    assert_true(r.local);
    assert_int_equal(r.version, 2);
}

static void
test_ss_proxy_parse_v2_tlvs_skipped(void **state)
{
    /* ALPN "h2", an empty NOOP, AUTHORITY "example.com", a custom type */
    static const unsigned char tlvs[] = {
        0x01, 0x00, 0x02, 'h', '2',
        0x04, 0x00, 0x00,
        0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
        0xe0, 0x00, 0x01, 0x00,
    };
    unsigned char b[128];
    struct ss_proxy_result r;
    size_t n = v2_build(b, 0x21, 0x11, inet_block, 12, tlvs, sizeof tlvs);

    (void)state;
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), (int)(28 + sizeof tlvs));
    assert_inet(&r.src, r.srclen, "192.0.2.1", 56324);
    assert_every_split(b, n, ANY);
}

static void
test_ss_proxy_parse_v2_crc32c(void **state)
{
    unsigned char tlvs[] = {
        0x01, 0x00, 0x02, 'h', '2',
        0x03, 0x00, 0x04, 0, 0, 0, 0,
        0x04, 0x00, 0x03, 0, 0, 0,
    };
    unsigned char b[128];
    struct ss_proxy_result r;
    size_t n = v2_build(b, 0x21, 0x11, inet_block, 12, tlvs, sizeof tlvs);
    size_t at = 28 + 8;                 /* the CRC's value */

    (void)state;
    crc_fix(b, n, at);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), (int)n);
    assert_inet(&r.dst, r.dstlen, "198.51.100.7", 443);
    assert_every_split(b, n, ANY);
    /* TCP4 with only the CRC TLV; the table agrees with the bitwise CRC
     * over the zeroed header */
    n = v2_build(b, 0x21, 0x11, inet_block, 12, "\x03\x00\x04\0\0\0\0", 7);
    assert_int_equal(ss_proxy_crc32c(0, b, n), crc32c_bitwise(b, n));
    crc_fix(b, n, 31);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 35);
    assert_every_split(b, n, ANY);
}

static void
test_ss_proxy_parse_v2_crc32c_wrong(void **state)
{
    unsigned char tlvs[] = { 0x03, 0x00, 0x04, 0, 0, 0, 0 };
    unsigned char b[64];
    struct ss_proxy_result r;
    size_t n = v2_build(b, 0x21, 0x11, inet_block, 12, tlvs, sizeof tlvs);

    (void)state;
    crc_fix(b, n, 31);
    b[31] ^= 0x01;                      /* the CRC itself */
    assert_refused_bin(b, n, ANY, "v2: CRC32C mismatch");
    b[31] ^= 0x01;
    b[16] ^= 0x80;                      /* an address byte */
    assert_refused_bin(b, n, ANY, "v2: CRC32C mismatch");
    b[16] ^= 0x80;
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 35);
    /* a CRC TLV of another size, and two of them */
    n = v2_build(b, 0x21, 0x11, inet_block, 12, "\x03\x00\x02\0\0", 5);
    assert_refused_bin(b, n, ANY, "v2: CRC32C TLV not 4 bytes");
    n = v2_build(b, 0x21, 0x11, inet_block, 12,
                 "\x03\x00\x04\0\0\0\0\x03\x00\x04\0\0\0\0", 14);
    assert_refused_bin(b, n, ANY, "v2: two CRC32C TLVs");
}

static void
test_ss_proxy_parse_v2_truncated_tlv(void **state)
{
    unsigned char b[64];
    struct ss_proxy_result r;
    size_t n;

    (void)state;
    /* a value longer than what is left */
    n = v2_build(b, 0x21, 0x11, inet_block, 12, "\x01\x00\x05h2", 5);
    assert_refused_bin(b, n, ANY, "v2: truncated TLV");
    /* 1 and 2 bytes left: not even a TLV's type and length */
    n = v2_build(b, 0x21, 0x11, inet_block, 12, "\x04", 1);
    assert_refused_bin(b, n, ANY, "v2: truncated TLV");
    n = v2_build(b, 0x21, 0x11, inet_block, 12, "\x04\x00\x00\x04\x00", 5);
    assert_refused_bin(b, n, ANY, "v2: truncated TLV");
    /* the same bytes under LOCAL: skipped, not walked */
    n = v2_build(b, 0x20, 0x11, inet_block, 12, "\x04", 1);
    assert_int_equal(ss_proxy_parse(b, n, ANY, &r), 29);
}

static void
test_ss_proxy_parse_v2_over_cap(void **state)
{
    unsigned char *b = calloc(1, SS_PROXY_V2_MAX + 16);
    struct ss_proxy_result r;
    size_t pad = SS_PROXY_V2_MAX - 28 - 3;

    (void)state;
    assert_non_null(b);
    /* exactly 4096 bytes: 28 + a NOOP TLV of 4065 */
    v2_build(b, 0x21, 0x11, inet_block, 12, "\x04", 1);
    b[29] = (unsigned char)(pad >> 8);
    b[30] = (unsigned char)pad;
    b[14] = (SS_PROXY_V2_MAX - 16) >> 8;
    b[15] = (SS_PROXY_V2_MAX - 16) & 0xff;
    assert_int_equal(ss_proxy_parse(b, SS_PROXY_V2_MAX, ANY, &r),
                     SS_PROXY_V2_MAX);
    /* one more is refused as soon as the length is seen */
    b[15]++;
    assert_int_equal(ss_proxy_parse(b, 16, ANY, &r), -1);
    assert_string_equal(r.why, "v2: header longer than 4096 bytes");
    assert_int_equal(ss_proxy_need(b, 16, ANY), 0);
    b[14] = b[15] = 0xff;
    assert_int_equal(ss_proxy_parse(b, 16, ANY, &r), -1);
    assert_string_equal(r.why, "v2: header longer than 4096 bytes");
    free(b);
}

static void
test_ss_proxy_parse_v2_bad_header(void **state)
{
    unsigned char b[64];
    size_t n;

    (void)state;
    n = v2_build(b, 0x21, 0x11, inet_block, 12, NULL, 0);
    b[4] = 'X';                         /* the NUL in the signature */
    assert_refused_bin(b, n, ANY, "v2: bad signature");
    assert_refused_bin(b, 5, ANY, "v2: bad signature");
    b[4] = 0;
    b[11] = 0x0b;
    assert_refused_bin(b, n, ANY, "v2: bad signature");
    assert_refused_bin((const unsigned char *)"\r\n\r\nX", 5, ANY,
                       "v2: bad signature");
    n = v2_build(b, 0x11, 0x11, inet_block, 12, NULL, 0);
    assert_refused_bin(b, 13, ANY, "v2: version not 2");
    n = v2_build(b, 0x22, 0x11, inet_block, 12, NULL, 0);
    assert_refused_bin(b, 13, ANY, "v2: unknown command");
    n = v2_build(b, 0x21, 0x13, inet_block, 12, NULL, 0);
    assert_refused_bin(b, 14, ANY, "v2: unknown address family or protocol");
    n = v2_build(b, 0x21, 0x41, inet_block, 12, NULL, 0);
    assert_refused_bin(b, n, ANY, "v2: unknown address family or protocol");
    n = v2_build(b, 0x21, 0x10, inet_block, 12, NULL, 0);
    assert_refused_bin(b, n, ANY, "v2: unknown address family or protocol");
    /* the length must hold the family's addresses */
    n = v2_build(b, 0x21, 0x11, inet_block, 11, NULL, 0);
    assert_refused_bin(b, 16, ANY, "v2: length too short for the addresses");
    n = v2_build(b, 0x21, 0x21, inet_block, 12, NULL, 0);
    assert_refused_bin(b, n, ANY, "v2: length too short for the addresses");
}

/* ---- versions -------------------------------------------------------------- */

static void
test_ss_proxy_parse_versions_mask(void **state)
{
    unsigned char b[64];
    struct ss_proxy_result r;
    size_t n = v2_build(b, 0x21, 0x11, inet_block, 12, NULL, 0);
    const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\n";

    (void)state;
    assert_refused(v1, SS_PROXY_V2, "PROXY v1 header, only v2 accepted");
    assert_refused_bin(b, n, SS_PROXY_V1, "PROXY v2 header, only v1 accepted");
    assert_int_equal(ss_proxy_parse(v1, strlen(v1), SS_PROXY_V1, &r), 35);
    assert_int_equal(ss_proxy_parse(b, n, SS_PROXY_V2, &r), 28);
    assert_refused(v1, 0, "PROXY protocol off");
    assert_refused_bin(b, n, 0, "PROXY protocol off");
    /* not a PROXY header at all, whatever is allowed */
    assert_refused("GET / HTTP/1.1\r\n", ANY, "not a PROXY header");
    assert_refused("POST / HTTP/1.1\r\n", SS_PROXY_V2, "not a PROXY header");
    assert_refused("\r\nQUIT\r\n", SS_PROXY_V1, "not a PROXY header");
    assert_refused("\r\nQUIT\r\n", ANY, "v2: bad signature");
}

/* ---- ss_proxy_need --------------------------------------------------------- */

static void
test_ss_proxy_need_first_read(void **state)
{
    (void)state;
    /* the shortest header of what is allowed */
    assert_int_equal(ss_proxy_need("", 0, ANY), 15);
    assert_int_equal(ss_proxy_need("", 0, SS_PROXY_V1), 15);
    assert_int_equal(ss_proxy_need("", 0, SS_PROXY_V2), 16);
    assert_int_equal(ss_proxy_need("", 0, 0), 0);
    /* as the protocol name narrows */
    assert_int_equal(ss_proxy_need("PROXY ", 6, ANY), 9);
    assert_int_equal(ss_proxy_need("PROXY T", 7, ANY), 15);
    assert_int_equal(ss_proxy_need("PROXY TCP4", 10, ANY), 22);
    assert_int_equal(ss_proxy_need("PROXY TCP4 ", 11, ANY), 21);
    assert_int_equal(ss_proxy_need("PROXY TCP4 1", 12, ANY), 20);
    assert_int_equal(ss_proxy_need("PROXY TCP6 ", 11, ANY), 11);
    assert_int_equal(ss_proxy_need("PROXY UNKNOWN", 13, ANY), 2);
    assert_int_equal(ss_proxy_need("PROXY UNKNOWN\r", 14, ANY), 1);
    assert_int_equal(ss_proxy_need("\r\n\r\n", 4, ANY), 12);
}

static void
test_ss_proxy_need_v2_length(void **state)
{
    unsigned char b[512];
    size_t n = v2_build(b, 0x21, 0x11, inet_block, 12,
                        "\x04\x00\x64", 3);     /* NOOP of 100, not there */

    (void)state;
    assert_int_equal(n, 31);
    memset(b + n, 0, 100);
    n += 100;
    b[15] += 100;
    assert_int_equal(ss_proxy_need(b, 15, ANY), 1);
    assert_int_equal(ss_proxy_need(b, 16, ANY), 115);
    assert_int_equal(ss_proxy_need(b, 130, ANY), 1);
    assert_int_equal(ss_proxy_need(b, 131, ANY), 0);
    assert_every_split(b, n, ANY);
}

/* ---- config values --------------------------------------------------------- */

static void
test_ss_proxy_versions_parse_values(void **state)
{
    unsigned v = 99;

    (void)state;
    assert_int_equal(ss_proxy_versions_parse("off", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ss_proxy_versions_parse("v1", &v), 0);
    assert_int_equal(v, SS_PROXY_V1);
    assert_int_equal(ss_proxy_versions_parse("v2", &v), 0);
    assert_int_equal(v, SS_PROXY_V2);
    assert_int_equal(ss_proxy_versions_parse("any", &v), 0);
    assert_int_equal(v, SS_PROXY_V1 | SS_PROXY_V2);
    v = 7;
    assert_int_equal(ss_proxy_versions_parse("V1", &v), -1);
    assert_int_equal(ss_proxy_versions_parse("v3", &v), -1);
    assert_int_equal(ss_proxy_versions_parse("", &v), -1);
    assert_int_equal(ss_proxy_versions_parse(NULL, &v), -1);
    assert_int_equal(v, 7);
}

static void
test_ss_proxy_from_parse_default(void **state)
{
    struct ss_cidr *c = NULL;
    size_t n = 0;
    char err[128];

    (void)state;
    assert_int_equal(ss_proxy_from_parse(NULL, &c, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].family, AF_INET);
    assert_int_equal(c[0].bits, 32);
    assert_memory_equal(c[0].addr, "\x7f\0\0\x01", 4);
    assert_int_equal(c[1].family, AF_INET6);
    assert_int_equal(c[1].bits, 128);
    assert_int_equal(ss_proxy_from_parse("10.0.0.0/8, fd00::/8", &c, &n, err,
                                         sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].bits, 8);
    assert_int_equal(ss_proxy_from_parse("10.0.0.0/33", &c, &n, err,
                                         sizeof err), -1);
    assert_string_equal(err, "\"10.0.0.0/33\": invalid prefix length (0-32)");
    assert_int_equal(n, 2);                  /* unchanged on error */
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ss_proxy_crc32c_vector),
        cmocka_unit_test(test_ss_proxy_parse_v1_tcp4),
        cmocka_unit_test(test_ss_proxy_parse_v1_tcp6),
        cmocka_unit_test(test_ss_proxy_parse_v1_unknown),
        cmocka_unit_test(test_ss_proxy_parse_v1_too_long),
        cmocka_unit_test(test_ss_proxy_parse_v1_bad_address),
        cmocka_unit_test(test_ss_proxy_parse_v1_bad_port),
        cmocka_unit_test(test_ss_proxy_parse_v1_missing_crlf),
        cmocka_unit_test(test_ss_proxy_parse_v1_fields),
        cmocka_unit_test(test_ss_proxy_parse_v1_split),
        cmocka_unit_test(test_ss_proxy_parse_v2_inet),
        cmocka_unit_test(test_ss_proxy_parse_v2_inet6),
        cmocka_unit_test(test_ss_proxy_parse_v2_unix),
        cmocka_unit_test(test_ss_proxy_parse_v2_local),
        cmocka_unit_test(test_ss_proxy_parse_v2_tlvs_skipped),
        cmocka_unit_test(test_ss_proxy_parse_v2_crc32c),
        cmocka_unit_test(test_ss_proxy_parse_v2_crc32c_wrong),
        cmocka_unit_test(test_ss_proxy_parse_v2_truncated_tlv),
        cmocka_unit_test(test_ss_proxy_parse_v2_over_cap),
        cmocka_unit_test(test_ss_proxy_parse_v2_bad_header),
        cmocka_unit_test(test_ss_proxy_parse_versions_mask),
        cmocka_unit_test(test_ss_proxy_need_first_read),
        cmocka_unit_test(test_ss_proxy_need_v2_length),
        cmocka_unit_test(test_ss_proxy_versions_parse_values),
        cmocka_unit_test(test_ss_proxy_from_parse_default),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
