/* fuzz_exec.c: libFuzzer target: the exec handler's command splitter
 * (handlers/exec_argv.h).  The invariants: a split gives 1 to
 * EXEC_ARGS_MAX words, none longer in all than the input; quoting each
 * word ("...", with \" and \\) and splitting the joined line gives the
 * same words back; a refusal names one of the documented reasons. */
#include <stdint.h>
#include <stdio.h>

#include "../../handlers/exec_argv.h"

/* Each word in double quotes, " and \ escaped, separated by a space. */
static char *
join_quoted(char **argv)
{
    size_t len = 1;
    char *out, *p;

    for (size_t i = 0; argv[i] != NULL; i++)
        len += 2 * strlen(argv[i]) + 3;
    if ((out = malloc(len)) == NULL)
        abort();
    p = out;
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (i > 0)
            *p++ = ' ';
        *p++ = '"';
        for (const char *s = argv[i]; *s != '\0'; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *cmd = malloc(size + 1), *joined;
    char **argv, **again;
    const char *why = NULL;
    size_t n = 0, total = 0;

    if (cmd == NULL)
        abort();
    memcpy(cmd, data, size);
    cmd[size] = '\0';           /* a NUL inside ends the line, as in a key */
    argv = exec_split(cmd, &why);
    if (argv == NULL) {
        if (why == NULL || (strcmp(why, "unterminated quote") != 0 &&
                            strcmp(why, "empty command") != 0 &&
                            strcmp(why, "too many arguments") != 0))
            abort();
        free(cmd);
        return 0;
    }
    for (; argv[n] != NULL; n++)
        total += strlen(argv[n]);
    if (n == 0 || n > EXEC_ARGS_MAX || total > strlen(cmd))
        abort();
    joined = join_quoted(argv);
    again = exec_split(joined, &why);
    if (again == NULL)
        abort();
    for (size_t i = 0; i <= n; i++)
        if ((argv[i] == NULL) != (again[i] == NULL) ||
            (argv[i] != NULL && strcmp(argv[i], again[i]) != 0))
            abort();
    (void)exec_env_name_ok(argv[0]);
    free(again);
    free(joined);
    free(argv);
    free(cmd);
    return 0;
}
