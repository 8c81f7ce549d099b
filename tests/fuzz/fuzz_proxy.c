/* fuzz_proxy.c: libFuzzer target: the PROXY header parser on any bytes
 * (the first picks the versions allowed), whole, cut at many points, and
 * read the way a caller does, ss_proxy_need bytes at a time.  Checks that
 * it never reads past len (every cut is its own exact-size copy), that a
 * header's length is within the input and the limits, that a header's
 * every prefix asks for more and never for bytes past the header, that a
 * refusal of a prefix stays a refusal, and that a header refused only for
 * its CRC32C is accepted once the CRC is set right. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxy.h"

static size_t fz_len;

static void
fail(const char *what, size_t at)
{
    fprintf(stderr, "fuzz_proxy: %s (input %zu bytes, at %zu)\n", what,
            fz_len, at);
    abort();
}

/* ss_proxy_parse on an exact-size copy of the first n bytes of p */
static int
parse_copy(const unsigned char *p, size_t n, unsigned versions,
           struct ss_proxy_result *out, size_t *need)
{
    unsigned char *c = malloc(n > 0 ? n : 1);
    int rc;

    if (c == NULL)
        abort();
    memcpy(c, p, n);
    rc = ss_proxy_parse(c, n, versions, out);
    *need = ss_proxy_need(c, n, versions);
    free(c);
    return rc;
}

/* What any answer must look like, whatever the input. */
static void
check_answer(const unsigned char *p, size_t n, int rc,
             const struct ss_proxy_result *r, size_t need)
{
    size_t cap = n > 0 && p[0] == 'P' ? SS_PROXY_V1_MAX : SS_PROXY_V2_MAX;

    if (rc < -1 || (rc > 0 && (size_t)rc > n))
        fail("returned more than it was given", n);
    if (rc == -1) {
        if (r->why == NULL || r->why[0] == '\0')
            fail("refused without a reason", n);
        if (need != 0)
            fail("needs more after a refusal", n);
        return;
    }
    if (r->why != NULL)
        fail("a reason without a refusal", n);
    if (rc == 0) {
        if (need == 0)
            fail("needs more but not one byte", n);
        if (n + need > cap)
            fail("asks for more than the longest header", n);
        return;
    }
    if (need != 0)
        fail("needs more after a whole header", n);
    if ((size_t)rc > cap || (r->version != 1 && r->version != 2) ||
        (r->version == 1) != (p[0] == 'P'))
        fail("a header of the wrong length or version", n);
    if (r->local) {
        if (r->srclen != 0 || r->dstlen != 0 || r->socktype != 0)
            fail("a local header with addresses", n);
        return;
    }
    if (r->srclen == 0 || r->dstlen == 0 ||
        r->srclen > sizeof(struct sockaddr_un) ||
        r->dstlen > sizeof(struct sockaddr_un) ||
        r->src.ss_family != r->dst.ss_family ||
        (r->socktype != SOCK_STREAM && r->socktype != SOCK_DGRAM))
        fail("bad addresses", n);
    if ((r->src.ss_family == AF_INET &&
         r->srclen != sizeof(struct sockaddr_in)) ||
        (r->src.ss_family == AF_INET6 &&
         r->srclen != sizeof(struct sockaddr_in6)) ||
        (r->src.ss_family == AF_UNIX && r->version != 2))
        fail("an address of the wrong length or family", n);
}

/*
 * Reads p[0..n) as a caller would: never more than ss_proxy_need says,
 * in pieces whose sizes come from the input.  The end must agree with
 * the whole input's answer rc.
 */
static void
check_reader(const unsigned char *p, size_t n, unsigned versions, int rc)
{
    struct ss_proxy_result r;
    size_t have = 0, need;
    int got;

    for (;;) {
        got = parse_copy(p, have, versions, &r, &need);
        check_answer(p, have, got, &r, need);
        if (got != 0)
            break;
        if (have + need > n) {
            if (rc > 0)
                fail("the reader ran out before a header ended", have);
            return;
        }
        have += 1 + (have < n ? p[have] : 0) % need;
    }
    if (got == -1 && rc != -1)
        fail("a prefix refused, the whole accepted", have);
    if (got > 0 && (got != rc || (size_t)got != have))
        fail("the reader's header differs from the whole input's", have);
}

/* Every prefix of a header of length rc: needs more, inside the header. */
static void
check_prefixes(const unsigned char *p, int rc, unsigned versions)
{
    struct ss_proxy_result r;
    size_t need, step = rc > 512 ? (size_t)rc / 64 : 1;

    for (size_t k = 0; k < (size_t)rc; k += k < 32 ? 1 : step) {
        if (parse_copy(p, k, versions, &r, &need) != 0)
            fail("a header's prefix did not ask for more", k);
        if (k + need > (size_t)rc)
            fail("asked for bytes past the header", k);
    }
}

/* If a v2 header was refused for its CRC alone, set it right: then it
 * must pass. */
static void
check_crc_fix(const unsigned char *p, size_t n, unsigned versions)
{
    size_t total, off, at = 0;
    unsigned char *c;
    uint32_t crc;
    struct ss_proxy_result r;
    size_t need;

    if (n < 16)
        return;
    total = 16 + ((size_t)p[14] << 8 | p[15]);
    off = 16 + ((p[13] >> 4) == 1 ? 12 : (p[13] >> 4) == 2 ? 36 : 216);
    while (off + 3 <= total && total <= n) {
        size_t len = (size_t)p[off + 1] << 8 | p[off + 2];

        if (p[off] == 0x03 && len == 4)
            at = off + 3;
        off += 3 + len;
    }
    if (at == 0 || total > n)
        fail("a CRC32C mismatch without a CRC32C TLV", n);
    c = malloc(total);
    if (c == NULL)
        abort();
    memcpy(c, p, total);
    memset(c + at, 0, 4);
    crc = ss_proxy_crc32c(0, c, total);
    c[at] = (unsigned char)(crc >> 24);
    c[at + 1] = (unsigned char)(crc >> 16);
    c[at + 2] = (unsigned char)(crc >> 8);
    c[at + 3] = (unsigned char)crc;
    if (parse_copy(c, total, versions, &r, &need) != (int)total)
        fail("a header with its CRC32C set right is refused", at);
    free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ss_proxy_result r, again;
    unsigned versions;
    size_t need;
    int rc;

    if (size < 1 || size > 2 * SS_PROXY_MAX)
        return -1;
    versions = data[0] & 3 ? data[0] & 3u : SS_PROXY_V1 | SS_PROXY_V2;
    data++;
    size--;
    fz_len = size;

    rc = ss_proxy_parse(data, size, versions, &r);
    need = ss_proxy_need(data, size, versions);
    check_answer(data, size, rc, &r, need);
    check_reader(data, size, versions, rc);
    if (rc > 0) {
        /* the header alone gives the same answer: what follows is not
         * looked at */
        if (parse_copy(data, (size_t)rc, versions, &again, &need) != rc ||
            memcmp(&r, &again, sizeof r) != 0)
            fail("the header alone parses differently", (size_t)rc);
        check_prefixes(data, rc, versions);
    }
    if (rc == -1 && strcmp(r.why, "v2: CRC32C mismatch") == 0)
        check_crc_fix(data, size, versions);
    /* the CRC in two pieces is the CRC of the whole */
    if (size > 0) {
        size_t cut = data[0] % size;

        if (ss_proxy_crc32c(ss_proxy_crc32c(0, data, cut), data + cut,
                            size - cut) != ss_proxy_crc32c(0, data, size))
            fail("CRC32C in pieces differs", cut);
    }
    return 0;
}
