/* exec_argv.h: the exec handler's command splitter (no I/O), included by
 * exec.c and its fuzz target. */
#ifndef SS_EXEC_ARGV_H
#define SS_EXEC_ARGV_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_ARGS_MAX 256       /* arguments in a command, argv[0] included */

/*
 * Splits a command line into words, as `command` is documented: words are
 * separated by spaces and tabs; a double-quoted part belongs to the word
 * around it and keeps its spaces ("" is an empty word); inside quotes \"
 * and \\ stand for " and \, elsewhere a backslash is itself.  Returns a
 * NULL-terminated argv in one allocation (free() it), or NULL with *why
 * ("unterminated quote", "empty command", "too many arguments", "out of
 * memory").
 */
static char **
exec_split(const char *cmd, const char **why)
{
    size_t len = strlen(cmd), nargs = 0;
    size_t maxargs = len / 2 + 2;
    char **argv, *out;
    const char *p = cmd;

    if (maxargs > EXEC_ARGS_MAX + 1)
        maxargs = EXEC_ARGS_MAX + 1;
    argv = malloc(maxargs * sizeof *argv + len + 1);
    if (argv == NULL) {
        *why = "out of memory";
        return NULL;
    }
    out = (char *)(argv + maxargs);
    for (;;) {
        bool quoted = false;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (nargs == maxargs - 1) {
            *why = "too many arguments";
            goto out_fail;
        }
        argv[nargs++] = out;
        for (; *p != '\0' && (quoted || (*p != ' ' && *p != '\t')); p++) {
            if (*p == '"') {
                quoted = !quoted;
            } else if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                *out++ = *++p;
            } else {
                *out++ = *p;
            }
        }
        if (quoted) {
            *why = "unterminated quote";
            goto out_fail;
        }
        *out++ = '\0';
    }
    if (nargs == 0) {
        *why = "empty command";
        goto out_fail;
    }
    argv[nargs] = NULL;
    return argv;
out_fail:
    free(argv);
    return NULL;
}

/* True for a name an environment variable may have: [A-Za-z_][A-Za-z0-9_]*. */
static bool
exec_env_name_ok(const char *name)
{
    if (!((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') ||
          *name == '_'))
        return false;
    for (name++; *name != '\0'; name++)
        if (!((*name >= 'A' && *name <= 'Z') ||
              (*name >= 'a' && *name <= 'z') ||
              (*name >= '0' && *name <= '9') || *name == '_'))
            return false;
    return true;
}

#endif
