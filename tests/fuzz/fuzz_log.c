/* fuzz_log.c: libFuzzer target: $JOURNAL_STREAM's "DEV:INO" parser and the
 * line formatter on any bytes.  Checks that an accepted value prints back
 * as itself (digits, one colon, nothing else), and that every sink's line
 * fits its buffer, is NUL-terminated and ends with the message (or a cut
 * of it), whatever the message holds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_log: %s\n", what);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), line[256], back[64];
    unsigned long long dev, ino;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (ss_log_parse_journal_stream(s, &dev, &ino)) {
        snprintf(back, sizeof back, "%llu:%llu", dev, ino);
        /* leading zeros are the only other spelling */
        if (strchr(s, ':') == NULL || strspn(s, "0123456789:") != strlen(s))
            fail("accepted something that is not DEV:INO");
        if (s[0] != '0' && strchr(s, ':')[1] != '0' &&
            strcmp(back, s) != 0)
            fail("DEV:INO does not print back as itself");
    }
    for (int sink = SS_SINK_STDERR; sink <= SS_SINK_SYSLOG; sink++) {
        for (int level = SS_LOG_DEBUG; level <= SS_LOG_ERROR; level++) {
            size_t cap = 1 + (size % sizeof line);
            size_t n = ss_log_format((enum ss_log_sink)sink,
                                     (enum ss_log_level)level, s, line, cap);

            if (n >= cap || line[n] != '\0')
                fail("the line overran its buffer or lost its NUL");
            if (cap == sizeof line && strlen(s) < 100 &&
                (n < strlen(s) || strcmp(line + n - strlen(s), s) != 0))
                fail("a short message is not at the end of its line");
        }
    }
    free(s);
    return 0;
}
