/* fuzz_http.c: libFuzzer target: the metrics handler's HTTP request-head
 * parser (http_parse, head_complete) and its label escaping, without
 * sockets.  The input is a request head as a client sends it.  Checks that
 * nothing is read past the length given (each call gets an exact-size
 * copy), that an accepted head lies within the input and parses the same
 * alone, that every prefix of an accepted head asks for more, that a
 * refused prefix means a refused whole, that the end-of-head scan agrees
 * with the parser however the bytes arrive, and that a label value comes
 * back whole from its escaped form. */
#include <stdint.h>

#include "../../handlers/metrics.c"

static void
fz_fail(const char *what, size_t len)
{
    fprintf(stderr, "fuzz_http: %s (input of %zu bytes)\n", what, len);
    abort();
}

/* http_parse on an exact-size heap copy of data[0..len). */
static long
parse_copy(const uint8_t *data, size_t len, struct http_req *r,
           ptrdiff_t *path_off)
{
    char *p = malloc(len ? len : 1);
    long rc;

    if (p == NULL)
        abort();
    memcpy(p, data, len);
    rc = http_parse(p, len, r);
    *path_off = r->path ? r->path - p : -1;
    if (rc > 0 && (r->path < p || r->path + r->path_len > p + rc))
        fz_fail("path outside the head", len);
    free(p);
    return rc;
}

static bool
complete_copy(const uint8_t *data, size_t len, size_t from)
{
    char *p = malloc(len ? len : 1);
    bool rc;

    if (p == NULL)
        abort();
    memcpy(p, data, len);
    rc = head_complete(p, len, from);
    free(p);
    return rc;
}

/* Escapes data as a label value, then reads it back. */
static void
check_label(const uint8_t *data, size_t len)
{
    char *name = malloc(len + 1), *out = NULL;
    size_t outlen = 0, k = 0;
    FILE *f;

    if (name == NULL)
        abort();
    memcpy(name, data, len);
    name[len] = '\0';
    f = open_memstream(&out, &outlen);
    if (f == NULL)
        abort();
    put_label(f, name);
    if (fclose(f) != 0)
        abort();
    for (size_t i = 0; i < outlen; i++) {
        char c = out[i];

        if (c == '\n' || c == '"')
            fz_fail("raw newline or quote in a label value", len);
        if (c == '\\') {
            if (++i == outlen)
                fz_fail("label value ends in a lone backslash", len);
            c = out[i] == 'n' ? '\n' : out[i];
            if (out[i] != 'n' && out[i] != '\\' && out[i] != '"')
                fz_fail("unknown escape in a label value", len);
        }
        if (name[k++] != c)
            fz_fail("label value does not read back", len);
    }
    if (name[k] != '\0')
        fz_fail("label value cut short", len);
    free(out);
    free(name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_req r, r2;
    ptrdiff_t off, off2;
    long rc, rc2;
    size_t len = size > HTTP_MAX_HEAD + 64 ? HTTP_MAX_HEAD + 64 : size;
    bool seen = false;

    rc = parse_copy(data, len, &r, &off);
    if (rc > 0 && (size_t)rc > len)
        fz_fail("head longer than the input", len);
    if (rc < 0 && rc != -400 && rc != -431 && rc != -505)
        fz_fail("unexpected status", len);
    if (rc > 0 && !complete_copy(data, (size_t)rc, 0))
        fz_fail("accepted head that head_complete does not see", len);
    if (rc > 0) {
        rc2 = parse_copy(data, (size_t)rc, &r2, &off2);
        if (rc2 != rc || off2 != off || r2.path_len != r.path_len ||
            r2.method != r.method || r2.minor != r.minor)
            fz_fail("the head alone parses differently", len);
    }
    /* prefixes: of an accepted head, each asks for more; a refused one
     * means the whole is refused */
    for (size_t k = 0; k < len; k += 1 + k / 4) {
        rc2 = parse_copy(data, k, &r2, &off2);
        if (rc > 0 && k < (size_t)rc && rc2 != 0)
            fz_fail("a prefix of an accepted head is not 'need more'", k);
        if (rc2 < 0 && rc >= 0)
            fz_fail("a refused prefix of a head that is not refused", k);
    }
    /* the end-of-head scan, fed in pieces as reads come, sees what a
     * scan of the whole sees */
    for (size_t at = 0, step = 1; at < len; at += step, step = step * 3 + 1) {
        size_t upto = at + step < len ? at + step : len;

        seen |= complete_copy(data, upto, at);
        if (seen)
            break;
    }
    if (seen != complete_copy(data, len, 0))
        fz_fail("head_complete differs when fed in pieces", len);
    if (!seen && len < HTTP_MAX_HEAD && rc > 0)
        fz_fail("parsed a head with no end", len);
    check_label(data, size < 4096 ? size : 4096);
    return 0;
}
