/* proxy.c: parse the PROXY protocol header (HAProxy's, v1 and v2) that a
 * proxy puts before a connection's data, without reading past it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "proxy.h"

#define V1_MIN 15               /* "PROXY UNKNOWN\r\n" */
#define V2_HDR 16               /* signature, ver/cmd, fam, length */

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define PP2_TYPE_CRC32C 0x03

static const unsigned char v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == 108,
               "v2 carries 108-byte Unix paths");

/* CRC32C, reflected polynomial 0x82f63b78, one byte a step */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u,
    0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u, 0xd4ca64ebu,
    0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u,
    0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu,
    0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u,
    0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu,
    0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u,
    0xaa64d611u, 0x580f5512u, 0x4b5fa6e6u, 0xb93425e5u,
    0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u,
    0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u,
    0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u,
    0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u,
    0x0c38d26cu, 0xfe53516fu, 0xed03a29bu, 0x1f682198u,
    0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u,
    0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu, 0xc8ac71e8u,
    0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u,
    0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u,
    0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u,
    0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u,
    0x3cdb9bddu, 0xceb018deu, 0xdde0eb2au, 0x2f8b6829u,
    0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u,
    0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u,
    0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u,
    0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu,
    0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u,
    0xa24bb5a6u, 0x502036a5u, 0x4370c551u, 0xb11b4652u,
    0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du,
    0xef087a76u, 0x1d63f975u, 0x0e330a81u, 0xfc588982u,
    0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u,
    0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u,
    0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u,
    0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu,
    0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u,
    0xd3d3e1abu, 0x21b862a8u, 0x32e8915cu, 0xc083125fu,
    0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u,
    0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u,
    0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u,
    0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u,
    0x34f4f86au, 0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu,
    0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

uint32_t
ss_proxy_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    crc = ~crc;
    while (len-- > 0)
        crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int
fail(struct ss_proxy_result *out, const char *why)
{
    out->why = why;
    return -1;
}

static size_t
be16(const unsigned char *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* ---- v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1234 80\r\n" ------------------------ */

/* The fields after the protocol, in order, and what each may hold. */
enum { F_SRC, F_DST, F_SPORT, F_DPORT, F_COUNT };

static const char *const v1_bad[F_COUNT] = {
    "v1: bad source address", "v1: bad destination address",
    "v1: bad source port", "v1: bad destination port",
};

struct v1_proto {
    const char *name;
    int family;                 /* AF_INET, AF_INET6, AF_UNSPEC: UNKNOWN */
    size_t addr_min, addr_max;  /* text lengths of an address */
    size_t min_total;           /* the shortest valid line, CRLF included */
};

static const struct v1_proto v1_protos[] = {
    /* "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n" */
    { "TCP4", AF_INET, 7, INET_ADDRSTRLEN - 1, 32 },
    /* "PROXY TCP6 :: :: 0 0\r\n" */
    { "TCP6", AF_INET6, 2, INET6_ADDRSTRLEN - 1, 22 },
    { "UNKNOWN", AF_UNSPEC, 0, 0, V1_MIN },
};

static bool
is_port(const char *s, size_t n, unsigned *port)
{
    unsigned v = 0;

    if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
        return false;           /* no leading zeroes (the spec's rule) */
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

/* Could s[0..n) begin a valid field f?  (Cheap: the characters and the
 * length; the whole field is checked once it ends.) */
static bool
field_prefix_ok(const struct v1_proto *pr, int f, const char *s, size_t n)
{
    const char *ok;

    if (f >= F_SPORT) {
        unsigned dummy;

        if (n < 5 && (n < 2 || s[0] != '0')) {
            for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                    return false;
            return true;
        }
        return is_port(s, n, &dummy);
    }
    ok = pr->family == AF_INET ? "0123456789."
                               : "0123456789abcdefABCDEF:.";
    if (n > pr->addr_max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
            return false;
    return true;
}

/* Checks the whole field f and stores it in out. */
static bool
field_store(const struct v1_proto *pr, int f, const char *s, size_t n,
            struct ss_proxy_result *out)
{
    struct sockaddr_storage *ss = f == F_SRC || f == F_SPORT ? &out->src
                                                             : &out->dst;
    char text[INET6_ADDRSTRLEN];
    unsigned port;

    if (f >= F_SPORT) {
        if (!is_port(s, n, &port))
            return false;
        if (pr->family == AF_INET)
            ((struct sockaddr_in *)(void *)ss)->sin_port =
                htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)(void *)ss)->sin6_port =
                htons((uint16_t)port);
        return true;
    }
    /* inet_pton would stop at a NUL and take what comes before it */
    if (n < pr->addr_min || n > pr->addr_max || n >= sizeof text ||
        memchr(s, '\0', n) != NULL)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    if (pr->family == AF_INET) {
        struct sockaddr_in *in = (void *)ss;

        in->sin_family = AF_INET;
        if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
            return false;
        *(f == F_SRC ? &out->srclen : &out->dstlen) = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (void *)ss;

        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
            return false;
        *(f == F_SRC ? &out->srclen : &out->dstlen) = sizeof *in6;
    }
    return true;
}

/*
 * The shortest total a valid line can have, given that field f (of pr)
 * is under way with n characters and the rest have not started.
 */
static size_t
v1_min_total(const struct v1_proto *pr, size_t len, int f, size_t n)
{
    size_t more = 2;            /* CRLF */

    for (int i = f; i < F_COUNT; i++) {
        size_t min = i >= F_SPORT ? 1 : pr->addr_min;

        if (i == f)
            more += n < min ? min - n : 0;
        else
            more += 1 + min;    /* the space before it, and it */
    }
    return len + more;
}

static int
v1_scan(const char *p, size_t len, struct ss_proxy_result *out,
        size_t *need)
{
    size_t lim = len < SS_PROXY_V1_MAX ? len : SS_PROXY_V1_MAX;
    size_t textlen, pos, min_total;
    const char *lf;
    const struct v1_proto *pr = NULL;
    bool ended;                 /* the text is whole: CR (and LF?) seen */
    int f;

    if (memcmp(p, "PROXY ", len < 6 ? len : 6) != 0)
        return fail(out, "not a PROXY header");
    if (len < 6) {
        *need = V1_MIN - len;
        return 0;
    }
    lf = memchr(p, '\n', lim);
    if (lf != NULL) {
        textlen = (size_t)(lf - p);
        if (p[textlen - 1] != '\r')
            return fail(out, "v1: LF without CR");
        textlen--;
        ended = true;
    } else if (len >= SS_PROXY_V1_MAX) {
        return fail(out, "v1: line longer than 107 bytes");
    } else {
        textlen = len;
        ended = p[len - 1] == '\r';
        if (ended)
            textlen--;
    }
    if (memchr(p, '\r', textlen) != NULL)
        return fail(out, "v1: CR not followed by LF");

    /* the protocol */
    pos = 6;
    {
        const char *sp = memchr(p + pos, ' ', textlen - pos);
        size_t n = sp != NULL ? (size_t)(sp - (p + pos)) : textlen - pos;

        if (sp == NULL && !ended) {     /* under way */
            min_total = 0;
            for (size_t i = 0; i < sizeof v1_protos / sizeof *v1_protos;
                 i++) {
                const struct v1_proto *c = &v1_protos[i];

                if (n <= strlen(c->name) && memcmp(p + pos, c->name, n) == 0
                    && (min_total == 0 || c->min_total < min_total))
                    min_total = c->min_total;
            }
            if (min_total == 0)
                return fail(out, "v1: unknown protocol");
            *need = min_total - len;
            return 0;
        }
        for (size_t i = 0; i < sizeof v1_protos / sizeof *v1_protos; i++)
            if (strlen(v1_protos[i].name) == n &&
                memcmp(p + pos, v1_protos[i].name, n) == 0)
                pr = &v1_protos[i];
        if (pr == NULL)
            return fail(out, "v1: unknown protocol");
        pos += n;
    }
    if (pr->family == AF_UNSPEC) {
        /* the rest of the line is to be ignored */
        if (lf == NULL) {
            *need = ended ? 1 : 2;
            if (len + *need > SS_PROXY_V1_MAX)
                return fail(out, "v1: line longer than 107 bytes");
            return 0;
        }
        out->version = 1;
        out->local = true;
        return (int)(lf - p) + 1;
    }

    /* the four fields, each after a single space */
    for (f = 0; f < F_COUNT; f++) {
        const char *s, *sp;
        size_t n;

        /* the previous token ended at a space, or at the end of a text
         * that is whole (an unfinished one returned 0 below) */
        if (pos == textlen)
            return fail(out, "v1: too few fields");
        pos++;
        s = p + pos;
        sp = memchr(s, ' ', textlen - pos);
        n = sp != NULL ? (size_t)(sp - s) : textlen - pos;
        if (sp == NULL && !ended) {
            if (!field_prefix_ok(pr, f, s, n))
                return fail(out, v1_bad[f]);
            min_total = v1_min_total(pr, len, f, n);
            if (min_total > SS_PROXY_V1_MAX)
                return fail(out, "v1: line longer than 107 bytes");
            *need = min_total - len;
            return 0;
        }
        if (!field_store(pr, f, s, n, out))
            return fail(out, v1_bad[f]);
        pos += n;
    }
    if (pos != textlen)
        return fail(out, "v1: too many fields");
    if (lf == NULL) {
        *need = 1;              /* the LF after the CR */
        return 0;
    }
    out->version = 1;
    out->socktype = SOCK_STREAM;
    return (int)(lf - p) + 1;
}

/* ---- v2: the binary header ---------------------------------------------- */

/* Stores a 108-byte v2 Unix address as a sockaddr_un; returns its length
 * (as getpeername gives it: a path's NUL counts, an abstract name's
 * trailing NUL padding does not; unnamed is the family alone). */
static socklen_t
v2_unix(struct sockaddr_storage *ss, const unsigned char *a)
{
    struct sockaddr_un *sun = (void *)ss;
    size_t off = offsetof(struct sockaddr_un, sun_path), n;

    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, a, sizeof sun->sun_path);
    if (a[0] != '\0') {
        n = strnlen(sun->sun_path, sizeof sun->sun_path);
        return (socklen_t)(off + (n < sizeof sun->sun_path ? n + 1 : n));
    }
    n = sizeof sun->sun_path;
    while (n > 1 && a[n - 1] == '\0')
        n--;
    return n == 1 ? (socklen_t)sizeof(sa_family_t) : (socklen_t)(off + n);
}

/* Walks the TLVs in p[off..total); checks a CRC32C one against the whole
 * header. */
static int
v2_tlvs(const unsigned char *p, size_t off, size_t total,
        struct ss_proxy_result *out)
{
    static const unsigned char zero[4];
    size_t crc_at = 0;
    uint32_t crc;

    while (off < total) {
        size_t n;

        if (total - off < 3)
            return fail(out, "v2: truncated TLV");
        n = be16(p + off + 1);
        if (n > total - off - 3)
            return fail(out, "v2: truncated TLV");
        if (p[off] == PP2_TYPE_CRC32C) {
            if (n != 4)
                return fail(out, "v2: CRC32C TLV not 4 bytes");
            if (crc_at != 0)
                return fail(out, "v2: two CRC32C TLVs");
            crc_at = off + 3;
        }
        off += 3 + n;
    }
    if (crc_at == 0)
        return 0;
    crc = ss_proxy_crc32c(0, p, crc_at);
    crc = ss_proxy_crc32c(crc, zero, sizeof zero);
    crc = ss_proxy_crc32c(crc, p + crc_at + 4, total - crc_at - 4);
    if (crc != be32(p + crc_at))
        return fail(out, "v2: CRC32C mismatch");
    return 0;
}

static int
v2_scan(const unsigned char *p, size_t len, struct ss_proxy_result *out,
        size_t *need)
{
    static const size_t addr_len[] = { 0, 12, 36, 216 };  /* by family */
    unsigned cmd = 0, fam = 0;
    size_t total, alen = 0;

    if (memcmp(p, v2_sig, len < 12 ? len : 12) != 0)
        return fail(out, "v2: bad signature");
    if (len > 12) {
        if (p[12] >> 4 != 2)
            return fail(out, "v2: version not 2");
        cmd = p[12] & 0x0f;
        if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
            return fail(out, "v2: unknown command");
    }
    if (len > 13 && cmd == V2_CMD_PROXY) {
        /* LOCAL ignores the family; PROXY takes the spec's pairs */
        fam = p[13];
        if (fam != 0x00 && ((fam >> 4) < 1 || (fam >> 4) > 3 ||
                            (fam & 0x0f) < 1 || (fam & 0x0f) > 2))
            return fail(out, "v2: unknown address family or protocol");
        alen = addr_len[fam >> 4];
    }
    if (len < V2_HDR) {
        *need = V2_HDR - len;
        return 0;
    }
    total = V2_HDR + be16(p + 14);
    if (total > SS_PROXY_V2_MAX)
        return fail(out, "v2: header longer than 4096 bytes");
    if (total - V2_HDR < alen)
        return fail(out, "v2: length too short for the addresses");
    if (len < total) {
        *need = total - len;
        return 0;
    }
    out->version = 2;
    if (cmd == V2_CMD_LOCAL || fam == 0x00) {
        out->local = true;      /* the whole block skipped, TLVs too */
        return (int)total;
    }
    out->socktype = (fam & 0x0f) == 1 ? SOCK_STREAM : SOCK_DGRAM;
    switch (fam >> 4) {
    case 1: {
        struct sockaddr_in *s = (void *)&out->src, *d = (void *)&out->dst;

        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p + 16, 4);
        memcpy(&d->sin_addr, p + 20, 4);
        memcpy(&s->sin_port, p + 24, 2);
        memcpy(&d->sin_port, p + 26, 2);
        out->srclen = out->dstlen = sizeof *s;
        break;
    }
    case 2: {
        struct sockaddr_in6 *s = (void *)&out->src, *d = (void *)&out->dst;

        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p + 16, 16);
        memcpy(&d->sin6_addr, p + 32, 16);
        memcpy(&s->sin6_port, p + 48, 2);
        memcpy(&d->sin6_port, p + 50, 2);
        out->srclen = out->dstlen = sizeof *s;
        break;
    }
    default:
        out->srclen = v2_unix(&out->src, p + 16);
        out->dstlen = v2_unix(&out->dst, p + 16 + 108);
        break;
    }
    if (v2_tlvs(p, V2_HDR + alen, total, out) < 0)
        return -1;
    return (int)total;
}

/* ---- the two entry points ------------------------------------------------ */

static int
scan(const unsigned char *p, size_t len, unsigned versions,
     struct ss_proxy_result *out, size_t *need)
{
    memset(out, 0, sizeof *out);
    *need = 0;
    if ((versions & (SS_PROXY_V1 | SS_PROXY_V2)) == 0)
        return fail(out, "PROXY protocol off");
    if (len == 0) {
        *need = versions & SS_PROXY_V1 ? V1_MIN : V2_HDR;
        return 0;
    }
    if (p[0] == 'P') {
        if (!(versions & SS_PROXY_V1))
            return fail(out, memcmp(p, "PROXY ", len < 6 ? len : 6) == 0
                                 ? "PROXY v1 header, only v2 accepted"
                                 : "not a PROXY header");
        return v1_scan((const char *)p, len, out, need);
    }
    if (p[0] == v2_sig[0]) {
        if (!(versions & SS_PROXY_V2))
            return fail(out, memcmp(p, v2_sig, len < 12 ? len : 12) == 0
                                 ? "PROXY v2 header, only v1 accepted"
                                 : "not a PROXY header");
        return v2_scan(p, len, out, need);
    }
    return fail(out, "not a PROXY header");
}

int
ss_proxy_parse(const void *buf, size_t len, unsigned versions,
               struct ss_proxy_result *out)
{
    size_t need;

    return scan(buf, len, versions, out, &need);
}

size_t
ss_proxy_need(const void *buf, size_t len, unsigned versions)
{
    struct ss_proxy_result r;
    size_t need;

    return scan(buf, len, versions, &r, &need) == 0 ? need : 0;
}

int
ss_proxy_versions_parse(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned versions;
    } v[] = {
        { "off", 0 }, { "v1", SS_PROXY_V1 }, { "v2", SS_PROXY_V2 },
        { "any", SS_PROXY_V1 | SS_PROXY_V2 },
    };

    for (size_t i = 0; s != NULL && i < sizeof v / sizeof *v; i++) {
        if (strcmp(s, v[i].name) == 0) {
            *out = v[i].versions;
            return 0;
        }
    }
    return -1;
}

int
ss_proxy_from_parse(const char *list, struct ss_cidr **out, size_t *n,
                    char *err, size_t errlen)
{
    return ss_cidr_parse_list(list != NULL ? list : "127.0.0.1 ::1", out, n,
                              err, errlen);
}
