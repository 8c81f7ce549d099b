/* test_config.c: the INI reader (every FILE:LINE error, good files) and the
 * core keys, defaults and handler options of a server's settings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "internal.h"

/* ---- the INI reader ------------------------------------------------------ */

/* Loads text as "t.ini"; *errs gets everything printed on err (to free). */
static int
load_str(struct conf *conf, const char *text, char **errs)
{
    size_t len = 0;
    FILE *fp = open_memstream(errs, &len);
    int rc;

    assert_non_null(fp);
    rc = conf_load_string(conf, "t.ini", text, fp);
    fclose(fp);
    return rc;
}

/* The file text must fail with exactly the expected error output. */
static void
expect_errors(const char *text, const char *expected)
{
    struct conf conf;
    char *errs = NULL;

    assert_int_equal(load_str(&conf, text, &errs), -1);
    assert_string_equal(errs, expected);
    conf_free(&conf);
    free(errs);
}

/* Loads a good file: no error, nothing printed. */
static void
load_good(struct conf *conf, const char *text)
{
    char *errs = NULL;

    assert_int_equal(load_str(conf, text, &errs), 0);
    assert_string_equal(errs, "");
    assert_int_equal(conf->nerrors, 0);
    free(errs);
}

static void
assert_kv(const struct conf_section *sec, const char *key, const char *value,
          int line)
{
    const struct conf_kv *kv = conf_get(sec, key);

    assert_non_null(kv);
    assert_string_equal(kv->value, value);
    assert_int_equal(kv->line, line);
}

static void
test_conf_load_string_line_too_long(void **state)
{
    /* inih reads at most 200 bytes (198 characters, newline and NUL) */
    char text[512], line[300];
    struct conf conf;

    (void)state;
    memset(line, 'v', sizeof line);
    memcpy(line, "k=", 2);
    line[198] = '\0';           /* 198 characters: the longest allowed */
    snprintf(text, sizeof text, "[s]\n%s\n", line);
    load_good(&conf, text);
    assert_int_equal(strlen(conf_get(conf_find(&conf, "s"), "k")->value),
                     196);
    conf_free(&conf);

    line[198] = 'v';
    line[199] = '\0';           /* 199: refused, not split in two */
    snprintf(text, sizeof text, "[s]\n%s\nx = 1\n", line);
    expect_errors(text, "t.ini:2: line too long (199 characters, at most "
                  "198)\n");
}

static void
test_conf_load_string_indented_line(void **state)
{
    (void)state;
    /* inih would silently append it to "a"'s value */
    expect_errors("[s]\na = 1\n  b = 2\n",
                  "t.ini:3: indented line: remove the indentation (a key = "
                  "value or [section] starts a line)\n");
    expect_errors("[s]\na = 1\n\tcontinued\n",
                  "t.ini:3: indented line: remove the indentation (a key = "
                  "value or [section] starts a line)\n");
    expect_errors("  [s]\n",
                  "t.ini:1: indented line: remove the indentation (a key = "
                  "value or [section] starts a line)\n");
}

static void
test_conf_load_string_not_key_value(void **state)
{
    (void)state;
    expect_errors("[s]\nport 8000\n", "t.ini:2: expected \"key = value\" or "
                  "\"[section]\", not \"port 8000\"\n");
    expect_errors("[s]\r\njunk\r\n", "t.ini:2: expected \"key = value\" or "
                  "\"[section]\", not \"junk\"\n");
}

static void
test_conf_load_string_bad_section_header(void **state)
{
    (void)state;
    expect_errors("[s\n", "t.ini:1: invalid section header \"[s\" (expected "
                  "[name])\n");
    expect_errors("[]\n", "t.ini:1: invalid section header \"[]\" (expected "
                  "[name])\n");
    expect_errors("[s] port = 1\n", "t.ini:1: invalid section header \"[s] "
                  "port = 1\" (expected [name])\n");
}

static void
test_conf_load_string_missing_key(void **state)
{
    (void)state;
    expect_errors("[s]\n= 8000\n", "t.ini:2: missing key before \"=\"\n");
    expect_errors("[s]\n=\n", "t.ini:2: missing key before \"=\"\n");
}

static void
test_conf_load_string_key_outside_section(void **state)
{
    (void)state;
    expect_errors("; a comment first\nport = 1\n[s]\n",
                  "t.ini:2: \"port\" outside any section (put it under "
                  "[global] or a server's [name])\n");
}

static void
test_conf_load_string_duplicate_key(void **state)
{
    struct conf conf;
    char *errs = NULL;

    (void)state;
    assert_int_equal(load_str(&conf, "[s]\nport = 1\n\nport = 2\n", &errs),
                     -1);
    assert_string_equal(errs, "t.ini:4: duplicate key \"port\" in [s] (first "
                        "on line 2)\n");
    /* the first value is the one kept */
    assert_kv(conf_find(&conf, "s"), "port", "1", 2);
    conf_free(&conf);
    free(errs);
    /* the same key in another section is fine */
    load_good(&conf, "[a]\nport = 1\n[b]\nport = 2\n");
    conf_free(&conf);
}

static void
test_conf_load_string_duplicate_section(void **state)
{
    struct conf conf;
    char *errs = NULL;

    (void)state;
    assert_int_equal(load_str(&conf, "[s]\na = 1\n[t]\n[s]\nb = 2\n", &errs),
                     -1);
    assert_string_equal(errs, "t.ini:4: duplicate section [s] (first on "
                        "line 1)\n");
    /* the repeated section's keys are dropped, not merged or misfiled */
    assert_int_equal(conf.nsec, 2);
    assert_string_equal(conf.sec[0].name, "s");
    assert_string_equal(conf.sec[1].name, "t");
    assert_int_equal(conf.sec[0].nkv, 1);
    assert_int_equal(conf.sec[1].nkv, 0);
    assert_null(conf_get(&conf.sec[0], "b"));
    conf_free(&conf);
    free(errs);
}

static void
test_conf_load_string_section_name_too_long(void **state)
{
    char name[64], text[128];
    struct conf conf;

    (void)state;
    memset(name, 'n', sizeof name);
    name[47] = '\0';            /* the longest allowed */
    snprintf(text, sizeof text, "[%s]\nport = 1\n", name);
    load_good(&conf, text);
    assert_int_equal(conf.nsec, 1);
    assert_kv(conf_find(&conf, name), "port", "1", 2);
    conf_free(&conf);

    name[47] = 'n';
    name[48] = '\0';
    snprintf(text, sizeof text, "[%s]\nport = 1\n", name);
    expect_errors(text, "t.ini:1: section name too long (48 characters, at "
                  "most 47)\n");
}

/*
 * Regression (fixed; was core/config.c, ini_read_sections): a refused section header (too
 * long, or a duplicate) is recorded as a section named "", so a second
 * refused header is also reported as "duplicate section [] (first on line
 * N)", an error that is not in the file.
 */
static void
test_conf_load_string_two_refused_sections(void **state)
{
    char name[64], text[256];

    (void)state;
    memset(name, 'n', sizeof name);
    name[50] = '\0';
    snprintf(text, sizeof text, "[%s]\n[%s]\n", name, name);
    expect_errors(text, "t.ini:1: section name too long (50 characters, at "
                  "most 47)\n"
                  "t.ini:2: section name too long (50 characters, at most "
                  "47)\n");
    snprintf(text, sizeof text, "[s]\n[s]\n[%s]\n", name);
    expect_errors(text, "t.ini:2: duplicate section [s] (first on line 1)\n"
                  "t.ini:3: section name too long (50 characters, at most "
                  "47)\n");
}

/*
 * Regression (fixed; was core/config.c, ini_read_sections/on_key): "[ ]" passes the reader's
 * header check (it is not "[]"), becomes a section with an empty name,
 * and is then silently deleted with its keys: no error at all, so the
 * daemon runs without that server and says nothing.
 */
static void
test_conf_load_string_blank_section_name(void **state)
{
    struct conf conf;
    char *errs = NULL;
    int rc;

    (void)state;
    rc = load_str(&conf, "[ ]\nport = 1\n", &errs);
    /* expected: refused like "[]" (whatever the wording), not a silently
     * dropped section */
    assert_int_equal(rc, -1);
    assert_memory_equal(errs, "t.ini:1: ", 9);
    conf_free(&conf);
    free(errs);
}

/*
 * Regression (fixed; was core/config.c, ini_read): inih also splits "key: value", but the
 * reader only checks for '='.  "port: 8000" is refused, yet a ':' before
 * an '=' is taken as the delimiter: "host:port = x" silently becomes key
 * "host" with value "port = x".
 */
static void
test_conf_load_string_colon_delimiter(void **state)
{
    (void)state;
    expect_errors("[s]\nport: 8000\n", "t.ini:2: expected \"key = value\" or "
                  "\"[section]\", not \"port: 8000\"\n");
    /* refused too (whatever the wording), not misread */
    struct conf conf;
    char *errs = NULL;

    assert_int_equal(load_str(&conf, "[s]\nhost:port = x\n", &errs), -1);
    assert_memory_equal(errs, "t.ini:2: ", 9);
    assert_null(conf_get(conf_find(&conf, "s"), "host"));
    conf_free(&conf);
    free(errs);
}

static void
test_conf_load_string_every_error_reported(void **state)
{
    struct conf conf;
    char *errs = NULL;

    (void)state;
    assert_int_equal(load_str(&conf, "x = 1\n[s]\n  y\nz\n= 2\n[s]\n",
                              &errs), -1);
    assert_string_equal(errs,
        "t.ini:1: \"x\" outside any section (put it under [global] or a "
        "server's [name])\n"
        "t.ini:3: indented line: remove the indentation (a key = value or "
        "[section] starts a line)\n"
        "t.ini:4: expected \"key = value\" or \"[section]\", not \"z\"\n"
        "t.ini:5: missing key before \"=\"\n"
        "t.ini:6: duplicate section [s] (first on line 2)\n");
    assert_int_equal(conf.nerrors, 5);
    conf_free(&conf);
    free(errs);
}

static void
test_conf_load_string_good_file(void **state)
{
    struct conf conf;
    const struct conf_section *g, *e;

    (void)state;
    load_good(&conf,
              "; sockserv\n"
              "# another comment style\n"
              "\n"
              "[global]\n"
              "plugin_path = ../build/handlers ; inline comment\n"
              "log_level=debug\n"
              "[echo]\n"
              "handler = echo\n"
              "reply = a;b c  ;  comment\n"
              "host = \n"
              "port = 8000\n"
              "[empty]\n"
              "\n"
              "[last]\n"
              "k = no newline at the end");
    assert_string_equal(conf.path, "t.ini");
    assert_string_equal(conf.dir, ".");
    assert_int_equal(conf.nsec, 4);
    g = conf_find(&conf, "global");
    assert_ptr_equal(g, &conf.sec[0]);
    assert_int_equal(g->line, 4);
    assert_int_equal(g->nkv, 2);
    assert_kv(g, "plugin_path", "../build/handlers", 5);
    assert_kv(g, "log_level", "debug", 6);
    e = conf_find(&conf, "echo");
    assert_int_equal(e->line, 7);
    assert_int_equal(e->nkv, 4);
    /* keys in file order */
    assert_string_equal(e->kv[0].key, "handler");
    assert_string_equal(e->kv[3].key, "port");
    assert_kv(e, "handler", "echo", 8);
    /* ';' starts a comment only after whitespace */
    assert_kv(e, "reply", "a;b c", 9);
    assert_kv(e, "host", "", 10);
    assert_kv(e, "port", "8000", 11);
    /* an empty section is kept, with its line */
    assert_non_null(conf_find(&conf, "empty"));
    assert_int_equal(conf_find(&conf, "empty")->line, 12);
    assert_int_equal(conf_find(&conf, "empty")->nkv, 0);
    assert_kv(conf_find(&conf, "last"), "k", "no newline at the end", 15);
    assert_null(conf_find(&conf, "nosuch"));
    assert_null(conf_get(e, "nosuch"));
    assert_null(conf_get(NULL, "port"));
    conf_free(&conf);
    assert_int_equal(conf.nsec, 0);
    assert_null(conf.sec);
}

static void
test_conf_load_string_crlf_and_bom(void **state)
{
    struct conf conf;
    const struct conf_section *s;

    (void)state;
    load_good(&conf, "\xEF\xBB\xBF[s]\r\n"
              "port = 1\r\n"
              "\r\n"
              "reply = x y\r\n"
              "[t]\r\n");
    assert_int_equal(conf.nsec, 2);
    s = conf_find(&conf, "s");
    assert_non_null(s);                 /* the BOM is not in the name */
    assert_int_equal(s->line, 1);
    assert_kv(s, "port", "1", 2);       /* no '\r' left in values */
    assert_kv(s, "reply", "x y", 4);
    assert_int_equal(conf_find(&conf, "t")->line, 5);
    conf_free(&conf);

    /* a BOM only counts on the first line: later, it is part of the key
     * (which no one then claims) */
    load_good(&conf, "[s]\n\xEF\xBB\xBFport = 1\n");
    assert_null(conf_get(conf_find(&conf, "s"), "port"));
    assert_kv(conf_find(&conf, "s"), "\xEF\xBB\xBFport", "1", 2);
    conf_free(&conf);
}

static void
test_conf_load_string_section_spaces(void **state)
{
    struct conf conf;

    (void)state;
    load_good(&conf, "[ spaced ]\nport = 1\n[s] ; comment\nk = v\n");
    assert_int_equal(conf.nsec, 2);
    assert_kv(conf_find(&conf, "spaced"), "port", "1", 2);
    assert_kv(conf_find(&conf, "s"), "k", "v", 4);
    conf_free(&conf);
}

static void
test_conf_error_format(void **state)
{
    struct conf conf = { 0 };
    char *out = NULL;
    size_t len = 0;

    (void)state;
    conf.path = "dir/x.ini";
    conf.err = open_memstream(&out, &len);
    assert_non_null(conf.err);
    conf_error(&conf, 7, "invalid %s \"%s\"", "type", "tpc");
    conf_error(&conf, 0, "no servers");
    fclose(conf.err);
    assert_string_equal(out, "dir/x.ini:7: invalid type \"tpc\"\n"
                        "dir/x.ini: no servers\n");
    assert_int_equal(conf.nerrors, 2);
    free(out);
}

/* ---- files ------------------------------------------------------------- */

static char tmpdir[256];

static int
make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ss-test-config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
remove_tmpdir(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void
test_conf_load_file(void **state)
{
    char path[300], expect[400];
    struct conf conf;
    char *errs = NULL;
    size_t len = 0;
    FILE *err;

    (void)state;
    snprintf(path, sizeof path, "%s/good.ini", tmpdir);
    write_file(path, "[s]\nport = 1\n\n[t]\nhost = ::1\n");
    err = open_memstream(&errs, &len);
    assert_int_equal(conf_load(&conf, path, err), 0);
    fclose(err);
    assert_string_equal(errs, "");
    free(errs);
    assert_string_equal(conf.path, path);
    assert_string_equal(conf.dir, tmpdir);    /* for relative paths */
    assert_int_equal(conf.nsec, 2);
    assert_kv(conf_find(&conf, "t"), "host", "::1", 5);
    conf_free(&conf);

    /* errors name the file as given */
    snprintf(path, sizeof path, "%s/bad.ini", tmpdir);
    write_file(path, "[s]\nport = 1\nport = 2\n");
    err = open_memstream(&errs, &len);
    assert_int_equal(conf_load(&conf, path, err), -1);
    fclose(err);
    snprintf(expect, sizeof expect, "%s:3: duplicate key \"port\" in [s] "
             "(first on line 2)\n", path);
    assert_string_equal(errs, expect);
    free(errs);
    conf_free(&conf);
}

static void
test_conf_load_missing_file(void **state)
{
    char path[300], expect[400];
    struct conf conf;
    char *errs = NULL;
    size_t len = 0;
    FILE *err;

    (void)state;
    snprintf(path, sizeof path, "%s/nosuch.ini", tmpdir);
    err = open_memstream(&errs, &len);
    assert_int_equal(conf_load(&conf, path, err), -1);
    fclose(err);
    snprintf(expect, sizeof expect, "%s: cannot open: No such file or "
             "directory\n", path);
    assert_string_equal(errs, expect);
    free(errs);
    conf_free(&conf);
}

static void
test_conf_load_unreadable_file(void **state)
{
    char expect[400];
    struct conf conf;
    char *errs = NULL;
    size_t len = 0;
    FILE *err;

    (void)state;
    /* a directory opens but cannot be read (works as root too) */
    err = open_memstream(&errs, &len);
    assert_int_equal(conf_load(&conf, tmpdir, err), -1);
    fclose(err);
    snprintf(expect, sizeof expect, "%s: read error: Is a directory\n",
             tmpdir);
    assert_string_equal(errs, expect);
    free(errs);
    conf_free(&conf);
}

static void
test_conf_load_permission_denied(void **state)
{
    char path[300], expect[400];
    struct conf conf;
    char *errs = NULL;
    size_t len = 0;
    FILE *err;

    (void)state;
    if (geteuid() == 0) {
        fprintf(stderr, "skipped: root reads mode 000 files, so an "
                "unreadable file cannot be made here\n");
        skip();
    }
    snprintf(path, sizeof path, "%s/secret.ini", tmpdir);
    write_file(path, "[s]\n");
    assert_int_equal(chmod(path, 0), 0);
    err = open_memstream(&errs, &len);
    assert_int_equal(conf_load(&conf, path, err), -1);
    fclose(err);
    snprintf(expect, sizeof expect, "%s: cannot open: Permission denied\n",
             path);
    assert_string_equal(errs, expect);
    free(errs);
    conf_free(&conf);
}

/* ---- the core keys ------------------------------------------------------ */

#define MAXERR 16

struct errs {
    int n;
    int line[MAXERR];
    char msg[MAXERR][SS_ERRLEN];
};

static void
on_error(void *arg, int line, const char *msg)
{
    struct errs *e = arg;

    assert_true(e->n < MAXERR);
    e->line[e->n] = line;
    snprintf(e->msg[e->n], sizeof e->msg[0], "%s", msg);
    e->n++;
}

static int
handle_nop(struct ss_request *req)
{
    (void)req;
    return 0;
}

static const struct ss_handler plain = {
    .abi = SOCKSERV_ABI, .name = "plain", .kinds = SS_STREAM | SS_DGRAM,
    .handle = handle_nop,
};
static const struct ss_handler streams = {
    .abi = SOCKSERV_ABI, .name = "streams", .kinds = SS_STREAM,
    .handle = handle_nop,
};
static const struct ss_handler dgrams = {
    .abi = SOCKSERV_ABI, .name = "dgrams", .kinds = SS_DGRAM,
    .handle = handle_nop,
};

/* A server named "s" whose section is on line 1, errors into e. */
static struct ss_server *
new_server(const struct ss_handler *h, struct errs *e)
{
    struct ss_server *srv = ss_server_new("s", h);

    assert_non_null(srv);
    memset(e, 0, sizeof *e);
    ss_server_set_line(srv, 1);
    ss_server_set_error_fn(srv, on_error, e);
    return srv;
}

/* Sets key = value on line; must be refused with exactly msg. */
static void
expect_set_error(const char *key, const char *value, const char *msg)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);
    int line;

    assert_int_equal(ss_server_set(srv, key, value, 3), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 3);
    assert_string_equal(e.msg[0], msg);
    assert_string_equal(ss_server_error(srv, &line), msg);
    assert_int_equal(line, 3);
    assert_true(ss_server_error_is_config(srv));
    ss_server_free(srv);
}

static void
test_ss_server_set_invalid_values(void **state)
{
    (void)state;
    expect_set_error("type", "tpc", "invalid type \"tpc\" (tcp, udp, "
                     "unix-stream, unix-dgram)");
    expect_set_error("type", "TCP", "invalid type \"TCP\" (tcp, udp, "
                     "unix-stream, unix-dgram)");
    expect_set_error("mode", "fork", "invalid mode \"fork\" (sync, "
                     "threading, forking, event)");
    expect_set_error("port", "70000", "invalid port \"70000\" (0-65535)");
    expect_set_error("port", "-1", "invalid port \"-1\" (0-65535)");
    expect_set_error("port", "80x", "invalid port \"80x\" (0-65535)");
    expect_set_error("port", "", "invalid port \"\" (0-65535)");
    expect_set_error("request_queue_size", "0", "invalid request_queue_size "
                     "\"0\" (1-65535)");
    expect_set_error("max_children", "many", "invalid max_children \"many\" "
                     "(1-1000000)");
    expect_set_error("max_packet_size", "16777217", "invalid max_packet_size "
                     "\"16777217\" (1-16777216)");
    expect_set_error("allow_reuse_address", "maybe", "invalid "
                     "allow_reuse_address \"maybe\" (true or false, yes or "
                     "no, on or off, 1 or 0)");
    expect_set_error("daemon_threads", "2", "invalid daemon_threads \"2\" "
                     "(true or false, yes or no, on or off, 1 or 0)");
    expect_set_error("timeout", "-1", "invalid timeout \"-1\" (seconds, "
                     "0-86400, or none)");
    expect_set_error("timeout", "5s", "invalid timeout \"5s\" (seconds, "
                     "0-86400, or none)");
    expect_set_error("timeout", "86401", "invalid timeout \"86401\" (seconds, "
                     "0-86400, or none)");
    expect_set_error("shutdown_timeout", "nan", "invalid shutdown_timeout "
                     "\"nan\" (seconds, 0-3600, or none)");
    expect_set_error("thread_stack_size", "1k", "invalid thread_stack_size "
                     "\"1k\" (bytes, with k/m/g, 16384-1073741824)");
    expect_set_error("thread_stack_size", "2g", "invalid thread_stack_size "
                     "\"2g\" (bytes, with k/m/g, 16384-1073741824)");
}

static void
test_ss_server_set_duplicate_key(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    assert_int_equal(ss_server_set(srv, "port", "1", 3), 0);
    assert_int_equal(ss_server_set(srv, "port", "1", 5), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 5);
    assert_string_equal(e.msg[0], "duplicate key \"port\" (first set on line "
                        "3)");
    /* a handler key too */
    assert_int_equal(ss_server_set(srv, "reply", "x", 6), 0);
    assert_int_equal(ss_server_set(srv, "reply", "y", 8), -1);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.line[1], 8);
    assert_string_equal(e.msg[1], "duplicate key \"reply\" (first set on "
                        "line 6)");
    /* a refused value does not count as set */
    assert_int_equal(ss_server_set(srv, "mode", "bogus", 9), -1);
    assert_int_equal(ss_server_set(srv, "mode", "forking", 10), 0);
    assert_string_equal(ss_server_mode(srv), "forking");
    ss_server_free(srv);
}

/*
 * Regression (fixed; was core/settings.c, ss_server_set): an embedding program passes line 0
 * ("no line"); the key is then recorded as set on line -1, and a repeat
 * says "(first set on line -1)".
 */
static void
test_ss_server_set_duplicate_key_without_lines(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    assert_int_equal(ss_server_set(srv, "port", "1", 0), 0);
    assert_int_equal(ss_server_set(srv, "port", "2", 0), -1);
    assert_int_equal(e.n, 1);
    assert_null(strstr(e.msg[0], "line -1"));
    ss_server_free(srv);
}

static void
test_ss_server_set_missing_key_or_value(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    assert_int_equal(ss_server_set(srv, "port", NULL, 4), -1);
    assert_int_equal(ss_server_set(srv, NULL, "1", 5), -1);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.line[0], 4);
    assert_string_equal(e.msg[0], "missing key or value");
    ss_server_free(srv);
}

/* Sets pairs "key", "value" (NULL-terminated) on lines 2, 3, ... */
static void
set_keys(struct ss_server *srv, ...)
{
    va_list ap;
    const char *key;
    int line = 2;

    va_start(ap, srv);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);

        assert_int_equal(ss_server_set(srv, key, value, line++), 0);
    }
    va_end(ap);
}

static void
test_ss_server_init_missing_port(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    set_keys(srv, "type", "udp", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "[s]: type udp needs \"port\" (0 = any "
                        "free port)");
    ss_server_free(srv);

    /* tcp is the default type */
    srv = new_server(&plain, &e);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.msg[0], "[s]: type tcp needs \"port\" (0 = any "
                        "free port)");
    ss_server_free(srv);
}

static void
test_ss_server_init_unix_needs_path(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    set_keys(srv, "type", "unix-stream", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "[s]: type unix-stream needs \"path\"");
    ss_server_free(srv);

    srv = new_server(&plain, &e);
    set_keys(srv, "type", "unix-dgram", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_string_equal(e.msg[0], "[s]: type unix-dgram needs \"path\"");
    ss_server_free(srv);
}

static void
test_ss_server_init_host_with_unix(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    /* every problem is reported, each on its own line */
    set_keys(srv, "type", "unix-stream", "host", "127.0.0.1", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "[s]: type unix-stream needs \"path\"");
    assert_int_equal(e.line[1], 3);
    assert_string_equal(e.msg[1], "\"host\" does not apply to type "
                        "unix-stream (use \"path\")");
    ss_server_free(srv);

    srv = new_server(&plain, &e);
    set_keys(srv, "type", "unix-dgram", "path", "/tmp/x.sock", "port", "1",
             NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 4);
    assert_string_equal(e.msg[0], "\"port\" does not apply to type "
                        "unix-dgram (use \"path\")");
    ss_server_free(srv);
}

static void
test_ss_server_init_path_with_tcp(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    set_keys(srv, "port", "0", "path", "/tmp/x.sock", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 3);
    assert_string_equal(e.msg[0], "\"path\" does not apply to type tcp (use "
                        "\"host\" and \"port\")");
    ss_server_free(srv);
}

static void
test_ss_server_init_invalid_host(void **state)
{
    static const char prefix[] = "invalid host \"no such host\": ";
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    set_keys(srv, "host", "no such host", "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 2);
    assert_memory_equal(e.msg[0], prefix, sizeof prefix - 1);
    /* the resolver's reason follows, whichever the system gives */
    assert_true(strcmp(e.msg[0] + sizeof prefix - 1,
                       gai_strerror(EAI_NONAME)) == 0 ||
                strcmp(e.msg[0] + sizeof prefix - 1,
                       gai_strerror(EAI_AGAIN)) == 0 ||
                strcmp(e.msg[0] + sizeof prefix - 1,
                       gai_strerror(EAI_FAIL)) == 0);
    ss_server_free(srv);
}

static void
test_ss_server_init_kind_not_supported(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&streams, &e);

    (void)state;
    set_keys(srv, "port", "0", "type", "udp", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 3);     /* the type's line */
    assert_string_equal(e.msg[0], "handler \"streams\" does not support "
                        "datagram sockets (type = udp)");
    assert_true(ss_server_error_is_config(srv));
    ss_server_free(srv);

    /* the default type (tcp): the section's line */
    srv = new_server(&dgrams, &e);
    set_keys(srv, "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "handler \"dgrams\" does not support "
                        "stream sockets (type = tcp)");
    ss_server_free(srv);

    srv = new_server(&dgrams, &e);
    set_keys(srv, "path", "/tmp/x.sock", "type", "unix-dgram", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_int_equal(e.n, 0);
    ss_server_free(srv);
}

static void
test_ss_server_init_bad_handler(void **state)
{
    static const struct ss_handler future = {
        .abi = SOCKSERV_ABI + 1, .name = "future", .kinds = SS_STREAM,
        .handle = handle_nop,
    };
    static const struct ss_handler nohandle = {
        .abi = SOCKSERV_ABI, .name = "nohandle", .kinds = SS_STREAM,
    };
    struct errs e;
    struct ss_server *srv = new_server(&future, &e);

    (void)state;
    set_keys(srv, "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "handler \"future\": built for ABI 3, "
                        "sockserv has ABI 2");
    ss_server_free(srv);

    srv = new_server(&nohandle, &e);
    set_keys(srv, "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.msg[0], "handler \"nohandle\" has no handle hook");
    ss_server_free(srv);
}

static void
test_ss_server_init_defaults(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    set_keys(srv, "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_int_equal(e.n, 0);
    assert_string_equal(ss_server_type(srv), "tcp");
    assert_string_equal(ss_server_mode(srv), "sync");
    assert_int_equal(ss_server_kind(srv), SS_STREAM);
    assert_int_equal(srv->set.request_queue_size, 128);
    assert_true(srv->set.allow_reuse_address);
    assert_false(srv->set.allow_reuse_port);
    assert_int_equal(srv->set.max_packet_size, 65507);
    assert_int_equal(srv->set.max_children, 40);
    assert_true(srv->set.block_on_close);
    assert_false(srv->set.daemon_threads);
    assert_true(srv->set.timeout == 0);
    assert_true(srv->set.shutdown_timeout == 5);
    assert_true(ss_server_shutdown_timeout(srv) == 5);
    assert_null(srv->set.host);
    assert_int_equal(srv->set.port, 0);
    ss_server_free(srv);
}

static void
test_ss_server_init_reuse_address_default(void **state)
{
    struct errs e;
    struct ss_server *srv;

    (void)state;
    /* datagrams: false unless set */
    srv = new_server(&plain, &e);
    set_keys(srv, "type", "udp", "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_false(srv->set.allow_reuse_address);
    assert_int_equal(ss_server_kind(srv), SS_DGRAM);
    ss_server_free(srv);

    srv = new_server(&plain, &e);
    set_keys(srv, "type", "udp", "port", "0", "allow_reuse_address", "yes",
             NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_true(srv->set.allow_reuse_address);
    ss_server_free(srv);

    srv = new_server(&plain, &e);
    set_keys(srv, "port", "0", "allow_reuse_address", "off", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_false(srv->set.allow_reuse_address);
    ss_server_free(srv);

    srv = new_server(&plain, &e);
    set_keys(srv, "type", "unix-stream", "path", "/tmp/x.sock", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_true(srv->set.allow_reuse_address);
    ss_server_free(srv);
}

static void
test_ss_server_set_every_core_key(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&plain, &e);

    (void)state;
    set_keys(srv, "type", "tcp", "mode", "threading", "host", "::1",
             "port", "8000", "request_queue_size", "5",
             "allow_reuse_port", "TRUE", "timeout", "2.5",
             "shutdown_timeout", "none", "max_children", "2",
             "daemon_threads", "on", "block_on_close", "0",
             "max_threads", "10", "max_spare_threads", "0",
             "thread_stack_size", "64k", "max_packet_size", "1024", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_int_equal(e.n, 0);
    assert_string_equal(ss_server_mode(srv), "threading");
    assert_string_equal(srv->set.host, "::1");
    assert_int_equal(srv->set.port, 8000);
    assert_int_equal(srv->set.request_queue_size, 5);
    assert_true(srv->set.allow_reuse_port);
    assert_true(srv->set.timeout == 2.5);
    assert_true(srv->set.shutdown_timeout == 0);
    assert_int_equal(srv->set.max_children, 2);
    assert_true(srv->set.daemon_threads);
    assert_false(srv->set.block_on_close);
    assert_int_equal(srv->set.max_threads, 10);
    assert_int_equal(srv->set.max_spare_threads, 0);
    assert_int_equal(srv->set.thread_stack_size, 65536);
    assert_int_equal(srv->set.max_packet_size, 1024);
    ss_server_free(srv);

    srv = new_server(&plain, &e);
    set_keys(srv, "mode", "forking", "port", "65535", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_string_equal(ss_server_mode(srv), "forking");
    ss_server_free(srv);
}

/* ---- the handler's options --------------------------------------------- */

/* What opts_init read, and how often fini ran. */
static struct {
    const char *greeting;
    long count;
    bool loud;
    double ratio;
    int inits, finis;
} got;

/*
 * A handler that reads four options of its own; "greeting" also steers
 * how it refuses: "refuse" (an error on greeting's line), "section" (the
 * section's line), "mode" (on mode's line), "fail" (no message).
 */
static int
opts_init(struct ss_server *srv, void **state)
{
    int rc = 0;

    got.inits++;
    got.greeting = ss_option(srv, "greeting");
    rc |= ss_option_long(srv, "count", 7, 1, 100, &got.count);
    rc |= ss_option_bool(srv, "loud", false, &got.loud);
    rc |= ss_option_double(srv, "ratio", 0.5, 0, 1, &got.ratio);
    if (rc != 0)
        return -1;
    if (got.greeting != NULL && strcmp(got.greeting, "refuse") == 0)
        return ss_server_errorf(srv, "greeting", "greeting \"%s\" is not "
                                "allowed", got.greeting);
    if (got.greeting != NULL && strcmp(got.greeting, "section") == 0)
        return ss_server_errorf(srv, NULL, "[%s]: refused",
                                ss_server_name(srv));
    if (got.greeting != NULL && strcmp(got.greeting, "mode") == 0)
        return ss_server_errorf(srv, "mode", "mode = %s not supported (use "
                                "threading)", ss_server_mode(srv));
    if (got.greeting != NULL && strcmp(got.greeting, "fail") == 0)
        return -1;
    *state = &got;
    return 0;
}

static void
opts_fini(void *state)
{
    assert_ptr_equal(state, &got);
    got.finis++;
}

static const struct ss_handler opts = {
    .abi = SOCKSERV_ABI, .name = "opts", .kinds = SS_STREAM | SS_DGRAM,
    .init = opts_init, .fini = opts_fini, .handle = handle_nop,
};

static int
reset_got(void **state)
{
    (void)state;
    memset(&got, 0, sizeof got);
    return 0;
}

static void
test_ss_option_defaults(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    set_keys(srv, "port", "0", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_int_equal(got.inits, 1);
    assert_null(got.greeting);
    assert_int_equal(got.count, 7);
    assert_false(got.loud);
    assert_true(got.ratio == 0.5);
    assert_ptr_equal(ss_server_state(srv), &got);
    /* init runs once */
    assert_int_equal(ss_server_init(srv), 0);
    assert_int_equal(got.inits, 1);
    ss_server_free(srv);
    assert_int_equal(got.finis, 1);
}

static void
test_ss_option_values(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    set_keys(srv, "port", "0", "greeting", "hello there", "count", "100",
             "loud", "Yes", "ratio", "0.25", NULL);
    assert_int_equal(ss_server_init(srv), 0);
    assert_int_equal(e.n, 0);
    assert_string_equal(got.greeting, "hello there");
    assert_int_equal(got.count, 100);
    assert_true(got.loud);
    assert_true(got.ratio == 0.25);
    ss_server_free(srv);
}

static void
test_ss_option_invalid_values(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    set_keys(srv, "port", "0", "count", "101", "loud", "maybe",
             "ratio", "1.5", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 3);
    assert_int_equal(e.line[0], 3);
    assert_string_equal(e.msg[0], "invalid count \"101\" (1-100)");
    assert_int_equal(e.line[1], 4);
    assert_string_equal(e.msg[1], "invalid loud \"maybe\" (true or false, "
                        "yes or no, on or off, 1 or 0)");
    assert_int_equal(e.line[2], 5);
    assert_string_equal(e.msg[2], "invalid ratio \"1.5\" (0-1)");
    assert_true(ss_server_error_is_config(srv));
    ss_server_free(srv);
    assert_int_equal(got.finis, 0);     /* init failed: no state to free */
}

static void
test_ss_server_errorf_key_line(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);
    int line;

    (void)state;
    set_keys(srv, "port", "0", "greeting", "refuse", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 3);
    assert_string_equal(e.msg[0], "greeting \"refuse\" is not allowed");
    assert_string_equal(ss_server_error(srv, &line),
                        "greeting \"refuse\" is not allowed");
    assert_int_equal(line, 3);
    assert_true(ss_server_error_is_config(srv));
    ss_server_free(srv);
}

static void
test_ss_server_errorf_section_line(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    ss_server_set_line(srv, 12);
    set_keys(srv, "port", "0", "greeting", "section", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 12);
    assert_string_equal(e.msg[0], "[s]: refused");
    ss_server_free(srv);
}

static void
test_ss_server_errorf_core_key_line(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    set_keys(srv, "port", "0", "mode", "forking", "greeting", "mode", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 3);     /* where mode was set */
    assert_string_equal(e.msg[0], "mode = forking not supported (use "
                        "threading)");
    ss_server_free(srv);

    /* mode not set: the section's line */
    srv = new_server(&opts, &e);
    set_keys(srv, "port", "0", "greeting", "mode", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "mode = sync not supported (use "
                        "threading)");
    ss_server_free(srv);
}

static void
test_ss_server_init_handler_fails_silently(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    set_keys(srv, "port", "0", "greeting", "fail", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 1);
    assert_string_equal(e.msg[0], "[s]: handler \"opts\" failed to "
                        "initialise");
    assert_false(ss_server_error_is_config(srv));   /* a runtime failure */
    ss_server_free(srv);
}

static void
test_ss_server_init_unknown_key(void **state)
{
    struct errs e;
    struct ss_server *srv = new_server(&opts, &e);

    (void)state;
    set_keys(srv, "port", "0", "greeting", "hi", "colour", "red",
             "Port", "1", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.line[0], 4);
    assert_string_equal(e.msg[0], "unknown key \"colour\" (not a sockserv "
                        "key, and handler \"opts\" does not take it)");
    assert_int_equal(e.line[1], 5);     /* keys are case-sensitive */
    assert_string_equal(e.msg[1], "unknown key \"Port\" (not a sockserv "
                        "key, and handler \"opts\" does not take it)");
    assert_true(ss_server_error_is_config(srv));
    /* init had succeeded: its state is freed at once */
    assert_int_equal(got.finis, 1);
    assert_null(ss_server_state(srv));
    ss_server_free(srv);
    assert_int_equal(got.finis, 1);

    /* a handler without init claims nothing */
    srv = new_server(&plain, &e);
    set_keys(srv, "port", "0", "reply", "x", NULL);
    assert_int_equal(ss_server_init(srv), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.line[0], 3);
    assert_string_equal(e.msg[0], "unknown key \"reply\" (not a sockserv "
                        "key, and handler \"plain\" does not take it)");
    ss_server_free(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_load_string_line_too_long),
        cmocka_unit_test(test_conf_load_string_indented_line),
        cmocka_unit_test(test_conf_load_string_not_key_value),
        cmocka_unit_test(test_conf_load_string_bad_section_header),
        cmocka_unit_test(test_conf_load_string_missing_key),
        cmocka_unit_test(test_conf_load_string_key_outside_section),
        cmocka_unit_test(test_conf_load_string_duplicate_key),
        cmocka_unit_test(test_conf_load_string_duplicate_section),
        cmocka_unit_test(test_conf_load_string_section_name_too_long),
        cmocka_unit_test(test_conf_load_string_two_refused_sections),
        cmocka_unit_test(test_conf_load_string_blank_section_name),
        cmocka_unit_test(test_conf_load_string_colon_delimiter),
        cmocka_unit_test(test_conf_load_string_every_error_reported),
        cmocka_unit_test(test_conf_load_string_good_file),
        cmocka_unit_test(test_conf_load_string_crlf_and_bom),
        cmocka_unit_test(test_conf_load_string_section_spaces),
        cmocka_unit_test(test_conf_error_format),
        cmocka_unit_test(test_conf_load_file),
        cmocka_unit_test(test_conf_load_missing_file),
        cmocka_unit_test(test_conf_load_unreadable_file),
        cmocka_unit_test(test_conf_load_permission_denied),
        cmocka_unit_test(test_ss_server_set_invalid_values),
        cmocka_unit_test(test_ss_server_set_duplicate_key),
        cmocka_unit_test(test_ss_server_set_duplicate_key_without_lines),
        cmocka_unit_test(test_ss_server_set_missing_key_or_value),
        cmocka_unit_test(test_ss_server_set_every_core_key),
        cmocka_unit_test(test_ss_server_init_missing_port),
        cmocka_unit_test(test_ss_server_init_unix_needs_path),
        cmocka_unit_test(test_ss_server_init_host_with_unix),
        cmocka_unit_test(test_ss_server_init_path_with_tcp),
        cmocka_unit_test(test_ss_server_init_invalid_host),
        cmocka_unit_test(test_ss_server_init_kind_not_supported),
        cmocka_unit_test(test_ss_server_init_bad_handler),
        cmocka_unit_test(test_ss_server_init_defaults),
        cmocka_unit_test(test_ss_server_init_reuse_address_default),
        cmocka_unit_test_setup(test_ss_option_defaults, reset_got),
        cmocka_unit_test_setup(test_ss_option_values, reset_got),
        cmocka_unit_test_setup(test_ss_option_invalid_values, reset_got),
        cmocka_unit_test_setup(test_ss_server_errorf_key_line, reset_got),
        cmocka_unit_test_setup(test_ss_server_errorf_section_line, reset_got),
        cmocka_unit_test_setup(test_ss_server_errorf_core_key_line,
                               reset_got),
        cmocka_unit_test_setup(test_ss_server_init_handler_fails_silently,
                               reset_got),
        cmocka_unit_test_setup(test_ss_server_init_unknown_key, reset_got),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
