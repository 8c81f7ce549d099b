/* config.c: parse the INI file with inih, keeping every key's line. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define SS_MAX_SECTION 48       /* inih keeps 50 bytes of a section name */

/*
 * Debian's inih gives the handler no line number and splits lines longer
 * than INI_MAX_LINE, so lines come through this reader, which counts them
 * and refuses what inih would misread: over-long lines, indented lines
 * (inih joins them to the previous key) and lines that are neither a
 * section nor key = value.  A refused line reaches inih as an empty one.
 */
struct reader {
    struct conf *conf;
    FILE *fp;                   /* or text */
    const char *text;
    int line;
    char *buf;
    size_t cap;
};

static ssize_t
next_line(struct reader *r)
{
    if (r->fp != NULL)
        return getline(&r->buf, &r->cap, r->fp);
    if (*r->text == '\0')
        return -1;
    const char *nl = strchr(r->text, '\n');
    size_t n = nl ? (size_t)(nl - r->text) + 1 : strlen(r->text);

    if (n + 1 > r->cap) {
        char *p = realloc(r->buf, n + 1);

        if (p == NULL)
            return -1;
        r->buf = p;
        r->cap = n + 1;
    }
    memcpy(r->buf, r->text, n);
    r->buf[n] = '\0';
    r->text += n;
    return (ssize_t)n;
}

static bool
blank_or_comment(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0' || *s == ';' || *s == '#';
}

static char *
ini_read(char *str, int num, void *stream)
{
    struct reader *r = stream;
    ssize_t n = next_line(r);
    size_t len;

    if (n < 0)
        return NULL;
    r->line++;
    len = strcspn(r->buf, "\r\n");
    if (r->line == 1 && len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0)
        memmove(r->buf, r->buf + 3, (len -= 3) + 1);
    r->buf[len] = '\0';
    if (len + 2 > (size_t)num) {
        conf_error(r->conf, r->line, "line too long (%zu characters, at "
                   "most %d)", len, num - 2);
        goto out_empty;
    }
    if (blank_or_comment(r->buf))
        goto out_empty;
    if (isspace((unsigned char)r->buf[0])) {
        conf_error(r->conf, r->line, "indented line: remove the "
                   "indentation (a key = value or [section] starts a line)");
        goto out_empty;
    }
    if (r->buf[0] == '[') {
        char *end = strchr(r->buf, ']');

        if (end == NULL || !blank_or_comment(end + 1) || end == r->buf + 1) {
            conf_error(r->conf, r->line, "invalid section header \"%s\" "
                       "(expected [name])", r->buf);
            goto out_empty;
        }
    } else if (strchr(r->buf, '=') != NULL && strchr(r->buf, ':') != NULL &&
               strchr(r->buf, ':') < strchr(r->buf, '=')) {
        conf_error(r->conf, r->line, "':' in a key (write \"key = value\"): "
                   "\"%s\"", r->buf);
        goto out_empty;
    } else if (strchr(r->buf, '=') == NULL) {
        conf_error(r->conf, r->line, "expected \"key = value\" or "
                   "\"[section]\", not \"%s\"", r->buf);
        goto out_empty;
    } else if (r->buf[0] == '=') {
        conf_error(r->conf, r->line, "missing key before \"=\"");
        goto out_empty;
    }
    memcpy(str, r->buf, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
out_empty:
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

void
conf_error(struct conf *conf, int line, const char *fmt, ...)
{
    va_list ap;

    if (line > 0)
        fprintf(conf->err, "%s:%d: ", conf->path, line);
    else
        fprintf(conf->err, "%s: ", conf->path);
    va_start(ap, fmt);
    vfprintf(conf->err, fmt, ap);
    va_end(ap);
    fputc('\n', conf->err);
    conf->nerrors++;
}

const struct conf_section *
conf_find(const struct conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->nsec; i++)
        if (strcmp(conf->sec[i].name, name) == 0)
            return &conf->sec[i];
    return NULL;
}

const struct conf_kv *
conf_get(const struct conf_section *sec, const char *key)
{
    for (size_t i = 0; sec != NULL && i < sec->nkv; i++)
        if (strcmp(sec->kv[i].key, key) == 0)
            return &sec->kv[i];
    return NULL;
}

static struct conf_section *
add_section(struct conf *conf, const char *name, int line)
{
    struct conf_section *s = realloc(conf->sec,
                                     (conf->nsec + 1) * sizeof *s);

    if (s == NULL)
        return NULL;
    conf->sec = s;
    s = &conf->sec[conf->nsec];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->line = line;
    if (s->name == NULL)
        return NULL;
    conf->nsec++;
    return s;
}

static int
on_key(void *user, const char *section, const char *key, const char *value)
{
    struct reader *r = user;
    struct conf *conf = r->conf;
    struct conf_section *sec = NULL;
    struct conf_kv *kv;

    if (*section == '\0') {
        conf_error(conf, r->line, "\"%s\" outside any section (put it "
                   "under [global] or a server's [name])", key);
        return 1;
    }
    if (conf->nsec > 0) {
        const char *name = conf->sec[conf->nsec - 1].name;
        size_t n = strlen(name);

        while (isspace((unsigned char)*section))
            section++;
        if (n > 0 && strncmp(name, section, n) == 0 &&
            blank_or_comment(section + n))
            sec = &conf->sec[conf->nsec - 1];
    }
    if (sec == NULL)
        return 1;       /* a refused duplicate section: already reported */
    if (*key == '\0') {
        conf_error(conf, r->line, "missing key before \"=\"");
        return 1;
    }
    const struct conf_kv *dup = conf_get(sec, key);

    if (dup != NULL) {
        conf_error(conf, r->line, "duplicate key \"%s\" in [%s] (first on "
                   "line %d)", key, section, dup->line);
        return 1;
    }
    kv = realloc(sec->kv, (sec->nkv + 1) * sizeof *kv);
    if (kv == NULL)
        goto out_nomem;
    sec->kv = kv;
    kv = &sec->kv[sec->nkv];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = r->line;
    if (kv->key == NULL || kv->value == NULL) {
        free(kv->key);
        free(kv->value);
        goto out_nomem;
    }
    sec->nkv++;
    return 1;
out_nomem:
    conf_error(conf, r->line, "%s", strerror(ENOMEM));
    return 0;
}

/*
 * Sections are recorded from the reader's view of the header lines, so
 * empty sections and their lines are known; inih splits the keys.
 */
static char *
ini_read_sections(char *str, int num, void *stream)
{
    struct reader *r = stream;
    char *s = ini_read(str, num, stream);

    if (s != NULL && s[0] == '[') {
        char name[256];
        char *end = strchr(s, ']');
        char *b = s + 1;
        size_t n;

        while (isspace((unsigned char)*b))
            b++;
        while (end > b && isspace((unsigned char)end[-1]))
            end--;
        n = (size_t)(end - b);
        if (n >= SS_MAX_SECTION) {
            conf_error(r->conf, r->line, "section name too long (%zu "
                       "characters, at most %d)", n, SS_MAX_SECTION - 1);
            return add_section(r->conf, "", r->line) ? s : NULL;
        }
        if (n == 0) {
            conf_error(r->conf, r->line, "empty section name");
            return add_section(r->conf, "", r->line) ? s : NULL;
        }
        memcpy(name, b, n);
        name[n] = '\0';
        const struct conf_section *dup = conf_find(r->conf, name);

        if (dup != NULL) {
            conf_error(r->conf, r->line, "duplicate section [%s] (first on "
                       "line %d)", name, dup->line);
            /* an unnamed section takes its keys, dropped after parsing */
            if (add_section(r->conf, "", r->line) == NULL)
                return NULL;
        } else if (add_section(r->conf, name, r->line) == NULL) {
            conf_error(r->conf, r->line, "%s", strerror(ENOMEM));
            return NULL;
        }
    }
    return s;
}

static int
load(struct conf *conf, const char *path, FILE *fp, const char *text,
     FILE *err)
{
    struct reader r = { .conf = conf, .fp = fp, .text = text };
    char *copy;
    int rc;

    memset(conf, 0, sizeof *conf);
    conf->err = err;
    conf->path = strdup(path);
    copy = strdup(path);
    if (conf->path == NULL || copy == NULL) {
        free(copy);
        fprintf(err, "%s: %s\n", path, strerror(ENOMEM));
        return -1;
    }
    conf->dir = strdup(dirname(copy));
    free(copy);
    rc = ini_parse_stream(ini_read_sections, &r, on_key, &r);
    free(r.buf);
    if (rc > 0 && conf->nerrors == 0)
        conf_error(conf, rc, "syntax error");
    else if (rc < 0)
        conf_error(conf, 0, "cannot parse: %s", strerror(ENOMEM));
    /* sections whose duplicate header was refused carry an empty name */
    for (size_t i = 0; i < conf->nsec; i++) {
        if (conf->sec[i].name[0] != '\0')
            continue;
        free(conf->sec[i].name);
        for (size_t k = 0; k < conf->sec[i].nkv; k++) {
            free(conf->sec[i].kv[k].key);
            free(conf->sec[i].kv[k].value);
        }
        free(conf->sec[i].kv);
        memmove(&conf->sec[i], &conf->sec[i + 1],
                (conf->nsec - i - 1) * sizeof conf->sec[0]);
        conf->nsec--;
        i--;
    }
    return conf->nerrors > 0 ? -1 : 0;
}

int
conf_load(struct conf *conf, const char *path, FILE *err)
{
    FILE *fp = fopen(path, "r");
    int rc;

    if (fp == NULL) {
        memset(conf, 0, sizeof *conf);
        fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    rc = load(conf, path, fp, NULL, err);
    if (ferror(fp)) {
        conf_error(conf, 0, "read error: %s", strerror(errno));
        rc = -1;
    }
    fclose(fp);
    return rc;
}

int
conf_load_string(struct conf *conf, const char *name, const char *text,
                 FILE *err)
{
    return load(conf, name, NULL, text, err);
}

void
conf_free(struct conf *conf)
{
    for (size_t i = 0; i < conf->nsec; i++) {
        for (size_t k = 0; k < conf->sec[i].nkv; k++) {
            free(conf->sec[i].kv[k].key);
            free(conf->sec[i].kv[k].value);
        }
        free(conf->sec[i].kv);
        free(conf->sec[i].name);
    }
    free(conf->sec);
    free(conf->path);
    free(conf->dir);
    memset(conf, 0, sizeof *conf);
}
