/* config.h: the INI file, read with inih, as sections of key = value. */
#ifndef SS_CONFIG_H
#define SS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct conf_kv {
    char *key, *value;
    int line;
};

struct conf_section {
    char *name;
    int line;
    struct conf_kv *kv;
    size_t nkv;
};

struct conf {
    char *path;                 /* as given */
    char *dir;                  /* its directory, for relative paths */
    struct conf_section *sec;   /* in file order, [global] included */
    size_t nsec;
    int nerrors;
    FILE *err;                  /* where FILE:LINE: messages go */
};

/*
 * Reads path into conf, printing every error as "FILE:LINE: message" on
 * err.  Returns 0, or -1 when there was any error.
 */
int conf_load(struct conf *, const char *path, FILE *err);
/* Same, from a string (for tests); name stands for the file. */
int conf_load_string(struct conf *, const char *name, const char *text,
                     FILE *err);
void conf_free(struct conf *);
/* Prints one "FILE:LINE: message" (LINE 0: "FILE: message"), counts it. */
void conf_error(struct conf *, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const struct conf_section *conf_find(const struct conf *, const char *name);
const struct conf_kv *conf_get(const struct conf_section *, const char *key);

#endif
