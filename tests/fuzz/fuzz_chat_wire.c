/* fuzz_chat_wire.c: libFuzzer target: the wire format of chat rooms
 * shared through Redis (chat_wire_parse), which reads what another
 * machine published.  The input is one pub/sub message, parsed from an
 * exact-size copy.  An accepted message must have its fields inside the
 * input, valid nicknames, the bounds of its type, and format back to the
 * same bytes; its text, cleaned as chat.c cleans it before any member sees
 * it, must be valid UTF-8 without control characters but tab. */
#include <stdint.h>

#include "../../handlers/chat.c"
#include "../../handlers/chat_redis.c"

static void
fz_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_chat_wire: %s: \"%.*s\" (%zu bytes)\n", what,
            (int)(size > 200 ? 200 : size), (const char *)data, size);
    abort();
}

static bool
fz_inside(const char *p, size_t len, const char *buf, size_t size)
{
    return p >= buf && p <= buf + size && len <= (size_t)(buf + size - p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1), *out, *clean;
    struct chat_wire w;
    ssize_t n;
    size_t i, k;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (chat_wire_parse(buf, size, &w) < 0) {
        free(buf);
        return 0;
    }
    if (!fz_inside(w.id, CHAT_ID_LEN, buf, size) ||
        !fz_inside(w.nick, w.nicklen, buf, size) ||
        !fz_inside(w.arg, w.arglen, buf, size) ||
        !fz_inside(w.text, w.textlen, buf, size))
        fz_fail("a field outside the input", data, size);
    if (!chat_id_valid(w.id, CHAT_ID_LEN) ||
        chat_nick_check(w.nick, w.nicklen) != NULL)
        fz_fail("an invalid id or nickname accepted", data, size);
    if (strchr("JLMPN", w.type) == NULL || w.type == '\0')
        fz_fail("an unknown type accepted", data, size);
    if ((w.type == 'P' || w.type == 'N') &&
        chat_nick_check(w.arg, w.arglen) != NULL)
        fz_fail("an invalid target accepted", data, size);
    if (w.textlen > CHAT_WIRE_TEXT_MAX ||
        (w.type == 'L' && w.textlen > CHAT_WHY_MAX) ||
        ((w.type == 'J' || w.type == 'N') && w.textlen != 0))
        fz_fail("a text over its type's bound", data, size);
    /* the same bytes again from the fields */
    out = malloc(CHAT_WIRE_MAX + 1);
    clean = malloc(3 * w.textlen + 3);
    if (out == NULL || clean == NULL)
        abort();
    {
        char id[CHAT_ID_LEN + 1];

        memcpy(id, w.id, CHAT_ID_LEN);
        id[CHAT_ID_LEN] = '\0';
        n = chat_wire_format(out, CHAT_WIRE_MAX + 1, id, w.type, w.nick,
                             w.nicklen, w.arg, w.arglen, w.text, w.textlen);
    }
    if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
        fz_fail("does not format back to itself", data, size);
    /* what a member would see of its text */
    k = chat_utf8_clean(w.text, w.textlen, clean);
    for (i = 0; i < k;) {
        uint32_t cp = 0;
        size_t bad = 0, m = chat_utf8_decode((const unsigned char *)clean + i,
                                             k - i, &cp, &bad);

        if (m == 0 || chat_is_control(cp))
            fz_fail("cleaned text not clean", data, size);
        i += m;
    }
    free(clean);
    free(out);
    free(buf);
    return 0;
}
