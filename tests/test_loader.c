/* test_loader.c: the plugin loader against real bad plugins (built by make
 * from tests/plugins/), and the lookup of `handler = NAME`. */
#include <errno.h>
#include <fcntl.h>
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

#include "loader.h"

/* the generation of the last plugin opened (they stay loaded) */
static void *test_gen;

#define PLUGINS SS_BUILD_DIR "/tests/plugins"

static char tmpdir[256];

static int
make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ss-test-loader.XXXXXX");
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

/* Creates tmpdir/rel (an empty file, or a directory when rel ends in /). */
static void
make_path(const char *rel)
{
    char path[512];
    size_t n;

    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    n = strlen(path);
    if (path[n - 1] == '/') {
        assert_int_equal(mkdir(path, 0755), 0);
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        assert_true(fd >= 0);
        close(fd);
    }
}

static void
tmp_path(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

/* loader_open must refuse path with exactly the expected message. */
static void
expect_refused(const char *path, unsigned kind, const char *type,
               const char *expected)
{
    char err[1024] = "";

    assert_null(loader_open(path, kind, type, &test_gen, err, sizeof err));
    assert_string_equal(err, expected);
}

/* ---- loader_open --------------------------------------------------------- */

static void
test_loader_open_good(void **state)
{
    const struct ss_handler *h, *h2;
    char err[512] = "";

    (void)state;
    h = loader_open(PLUGINS "/good.so", SS_STREAM, "tcp", &test_gen, err,
                    sizeof err);
    assert_non_null(h);
    assert_string_equal(err, "");
    assert_int_equal(h->abi, SOCKSERV_ABI);
    assert_string_equal(h->name, "good");
    assert_int_equal(h->kinds, SS_STREAM | SS_DGRAM);
    assert_non_null(h->handle);
    assert_int_equal(h->handle(NULL), 0);
    /* the same plugin for a datagram server, and when the kind is not
     * known yet (0) */
    h2 = loader_open(PLUGINS "/good.so", SS_DGRAM, "udp", &test_gen, err,
                     sizeof err);
    assert_ptr_equal(h2, h);
    assert_non_null(loader_open(PLUGINS "/good.so", 0, "", &test_gen, err,
                                sizeof err));
}

static void
test_loader_open_bad_abi(void **state)
{
    (void)state;
    expect_refused(PLUGINS "/bad_abi.so", SS_STREAM, "tcp",
                   PLUGINS "/bad_abi.so: built for ABI 99, sockserv has ABI "
                   "2");
    /* whatever the kind */
    expect_refused(PLUGINS "/bad_abi.so", 0, "",
                   PLUGINS "/bad_abi.so: built for ABI 99, sockserv has ABI "
                   "2");
}

static void
test_loader_open_no_symbol(void **state)
{
    (void)state;
    expect_refused(PLUGINS "/no_symbol.so", SS_STREAM, "tcp",
                   PLUGINS "/no_symbol.so: no \"sockserv_handler\" symbol "
                   "(not a sockserv handler plugin?)");
}

static void
test_loader_open_no_handle(void **state)
{
    (void)state;
    expect_refused(PLUGINS "/no_handle.so", SS_STREAM, "tcp",
                   PLUGINS "/no_handle.so: handler \"no_handle\" has no "
                   "handle hook");
}

static void
test_loader_open_kind_not_supported(void **state)
{
    char err[512];

    (void)state;
    expect_refused(PLUGINS "/dgram_only.so", SS_STREAM, "tcp",
                   PLUGINS "/dgram_only.so: handler \"dgram_only\" does not "
                   "support stream sockets (type = tcp)");
    expect_refused(PLUGINS "/dgram_only.so", SS_STREAM, "unix-stream",
                   PLUGINS "/dgram_only.so: handler \"dgram_only\" does not "
                   "support stream sockets (type = unix-stream)");
    expect_refused(PLUGINS "/stream_only.so", SS_DGRAM, "udp",
                   PLUGINS "/stream_only.so: handler \"stream_only\" does "
                   "not support datagram sockets (type = udp)");
    expect_refused(PLUGINS "/stream_only.so", SS_DGRAM, "unix-dgram",
                   PLUGINS "/stream_only.so: handler \"stream_only\" does "
                   "not support datagram sockets (type = unix-dgram)");
    /* and each is fine for its own kind */
    assert_non_null(loader_open(PLUGINS "/dgram_only.so", SS_DGRAM, "udp",
                                &test_gen, err, sizeof err));
    assert_non_null(loader_open(PLUGINS "/stream_only.so", SS_STREAM, "tcp",
                                &test_gen, err, sizeof err));
}

static void
test_loader_open_missing_file(void **state)
{
    char path[512], expect[1400];

    (void)state;
    tmp_path(path, sizeof path, "nosuch.so");
    snprintf(expect, sizeof expect, "%s: cannot load: %s: cannot open shared "
             "object file: No such file or directory", path, path);
    expect_refused(path, SS_STREAM, "tcp", expect);
}

static void
test_loader_open_not_elf(void **state)
{
    static const char junk[] = "this is not a shared object, just text that "
                               "is long enough to hold an ELF header\n";
    char path[512], expect[1400];
    FILE *fp;

    (void)state;
    tmp_path(path, sizeof path, "x.so");
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, sizeof junk - 1, fp), sizeof junk - 1);
    assert_int_equal(fclose(fp), 0);
    snprintf(expect, sizeof expect, "%s: cannot load: %s: invalid ELF header",
             path, path);
    expect_refused(path, SS_STREAM, "tcp", expect);

    /* an empty file */
    tmp_path(path, sizeof path, "empty.so");
    make_path("empty.so");
    snprintf(expect, sizeof expect, "%s: cannot load: %s: file too short",
             path, path);
    expect_refused(path, SS_STREAM, "tcp", expect);
}

static void
test_loader_open_unresolved_symbol(void **state)
{
    (void)state;
    /* RTLD_NOW: an undefined function is found at load, not at first call */
    expect_refused(PLUGINS "/needs_symbol.so", SS_STREAM, "tcp",
                   PLUGINS "/needs_symbol.so: cannot load: " PLUGINS
                   "/needs_symbol.so: undefined symbol: "
                   "ss_test_no_such_function");
}

static void
test_loader_open_error_truncated(void **state)
{
    char err[16];

    (void)state;
    memset(err, 'z', sizeof err);
    assert_null(loader_open(PLUGINS "/bad_abi.so", SS_STREAM, "tcp",
                            &test_gen, err, sizeof err));
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_memory_equal(err, PLUGINS, sizeof err - 1);
}

/* ---- loader_path -------------------------------------------------------- */

static void
assert_dirs(const struct loader_path *lp, size_t n, ...)
{
    va_list ap;

    assert_int_equal(lp->ndirs, n);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(lp->dirs[i], va_arg(ap, const char *));
    va_end(ap);
}

static void
test_loader_path_add_list_relative(void **state)
{
    struct loader_path lp = { 0 };

    (void)state;
    assert_int_equal(loader_path_add_list(&lp, "a:/abs/b::../c:", "/etc/ss"),
                     0);
    assert_dirs(&lp, 3, "/etc/ss/a", "/abs/b", "/etc/ss/../c");
    /* appended after what is there, in order */
    assert_int_equal(loader_path_add_list(&lp, "d", "conf"), 0);
    assert_dirs(&lp, 4, "/etc/ss/a", "/abs/b", "/etc/ss/../c", "conf/d");
    loader_path_free(&lp);
    assert_int_equal(lp.ndirs, 0);
    assert_null(lp.dirs);

    /* no base: as they are */
    assert_int_equal(loader_path_add_list(&lp, "a:/b", NULL), 0);
    assert_dirs(&lp, 2, "a", "/b");
    loader_path_free(&lp);
}

static void
test_loader_path_add_list_empty(void **state)
{
    struct loader_path lp = { 0 };

    (void)state;
    assert_int_equal(loader_path_add_list(&lp, NULL, "/base"), 0);
    assert_int_equal(loader_path_add_list(&lp, "", "/base"), 0);
    assert_int_equal(loader_path_add_list(&lp, ":::", "/base"), 0);
    assert_int_equal(loader_path_add(&lp, ""), 0);
    assert_int_equal(loader_path_add(&lp, NULL), 0);
    assert_int_equal(lp.ndirs, 0);
    loader_path_free(&lp);
}

static void
test_loader_path_add_list_too_long(void **state)
{
    struct loader_path lp = { 0 };
    char base[5000];

    (void)state;
    memset(base, 'b', sizeof base);
    base[0] = '/';
    base[sizeof base - 1] = '\0';
    errno = 0;
    assert_int_equal(loader_path_add_list(&lp, "/ok:rel", base), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_dirs(&lp, 1, "/ok");
    loader_path_free(&lp);
}

/* ---- loader_find -------------------------------------------------------- */

static void
test_loader_find_first_match_wins(void **state)
{
    struct loader_path lp = { 0 };
    char d1[512], d2[512], d3[512], want[600], err[512] = "";
    char *p;

    (void)state;
    make_path("d1/");
    make_path("d2/");
    make_path("d3/");
    make_path("d2/echo.so");
    make_path("d3/echo.so");
    make_path("d3/chat.so");
    make_path("d1/talk.so");
    make_path("d3/talk.so");
    tmp_path(d1, sizeof d1, "d1");
    tmp_path(d2, sizeof d2, "d2");
    tmp_path(d3, sizeof d3, "d3");
    assert_int_equal(loader_path_add(&lp, d1), 0);
    assert_int_equal(loader_path_add(&lp, d2), 0);
    assert_int_equal(loader_path_add(&lp, d3), 0);

    p = loader_find(&lp, "echo", "/nowhere", err, sizeof err);
    snprintf(want, sizeof want, "%s/echo.so", d2);
    assert_string_equal(p, want);
    free(p);
    p = loader_find(&lp, "chat", "/nowhere", err, sizeof err);
    snprintf(want, sizeof want, "%s/chat.so", d3);
    assert_string_equal(p, want);
    free(p);
    p = loader_find(&lp, "talk", NULL, err, sizeof err);
    snprintf(want, sizeof want, "%s/talk.so", d1);
    assert_string_equal(p, want);
    free(p);
    assert_string_equal(err, "");
    loader_path_free(&lp);
}

static void
test_loader_find_relative_to_plugin_path_base(void **state)
{
    struct loader_path lp = { 0 };
    char want[600], err[512] = "";
    char *p;

    (void)state;
    /* [global] plugin_path = plugins, relative to the INI file's dir */
    make_path("plugins/");
    make_path("plugins/hello.so");
    assert_int_equal(loader_path_add_list(&lp, "plugins", tmpdir), 0);
    p = loader_find(&lp, "hello", "/elsewhere", err, sizeof err);
    snprintf(want, sizeof want, "%s/plugins/hello.so", tmpdir);
    assert_string_equal(p, want);
    free(p);
    loader_path_free(&lp);
}

static void
test_loader_find_path_values(void **state)
{
    struct loader_path lp = { 0 };
    char err[512] = "";
    char *p;

    (void)state;
    /* a '/' or ".so" makes it a file, relative to the INI's directory;
     * the plugin path is not searched, and the file need not exist yet
     * (loader_open reports that) */
    assert_int_equal(loader_path_add(&lp, tmpdir), 0);
    p = loader_find(&lp, "../build/handlers/echo.so", "/etc/ss", err,
                    sizeof err);
    assert_string_equal(p, "/etc/ss/../build/handlers/echo.so");
    free(p);
    p = loader_find(&lp, "mine.so", "/etc/ss", err, sizeof err);
    assert_string_equal(p, "/etc/ss/mine.so");
    free(p);
    p = loader_find(&lp, "sub/mine", "/etc/ss", err, sizeof err);
    assert_string_equal(p, "/etc/ss/sub/mine");
    free(p);
    p = loader_find(&lp, "./mine.so", ".", err, sizeof err);
    assert_string_equal(p, "././mine.so");
    free(p);
    /* absolute paths stay as they are */
    p = loader_find(&lp, "/usr/lib/x.so", "/etc/ss", err, sizeof err);
    assert_string_equal(p, "/usr/lib/x.so");
    free(p);
    /* no base: as given */
    p = loader_find(&lp, "sub/mine.so", NULL, err, sizeof err);
    assert_string_equal(p, "sub/mine.so");
    free(p);
    assert_string_equal(err, "");
    loader_path_free(&lp);
}

static void
test_loader_find_not_found(void **state)
{
    struct loader_path lp = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(loader_path_add(&lp, "/no/such/a"), 0);
    assert_int_equal(loader_path_add(&lp, "/no/such/b"), 0);
    assert_null(loader_find(&lp, "nope", "/etc", err, sizeof err));
    assert_string_equal(err, "handler \"nope\": nope.so not found in "
                        "/no/such/a:/no/such/b");
    loader_path_free(&lp);

    assert_null(loader_find(&lp, "nope", "/etc", err, sizeof err));
    assert_string_equal(err, "handler \"nope\": nope.so not found in (no "
                        "plugin directories)");

    assert_null(loader_find(&lp, "", "/etc", err, sizeof err));
    assert_string_equal(err, "empty handler name");
}

static void
test_loader_find_not_found_truncated(void **state)
{
    struct loader_path lp = { 0 };
    char err[48];

    (void)state;
    for (int i = 0; i < 20; i++)
        assert_int_equal(loader_path_add(&lp, "/a/rather/long/directory"),
                         0);
    memset(err, 'z', sizeof err);
    assert_null(loader_find(&lp, "nope", "/etc", err, sizeof err));
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_memory_equal(err, "handler \"nope\": nope.so not found in /a/",
                        40);
    loader_path_free(&lp);
}

static void
test_loader_find_path_too_long(void **state)
{
    struct loader_path lp = { 0 };
    char base[5000], err[512];

    (void)state;
    memset(base, 'b', sizeof base);
    base[0] = '/';
    base[sizeof base - 1] = '\0';
    assert_null(loader_find(&lp, "x.so", base, err, sizeof err));
    assert_string_equal(err, "x.so: path too long");
}

static void
test_loader_find_then_open(void **state)
{
    struct loader_path lp = { 0 };
    const struct ss_handler *h;
    char err[512] = "";
    char *p;

    (void)state;
    /* the daemon's sequence: look the name up, then load and check it */
    assert_int_equal(loader_path_add_list(&lp, "/no/such:" PLUGINS, NULL),
                     0);
    p = loader_find(&lp, "good", NULL, err, sizeof err);
    assert_string_equal(p, PLUGINS "/good.so");
    h = loader_open(p, SS_DGRAM, "udp", &test_gen, err, sizeof err);
    assert_non_null(h);
    assert_string_equal(h->name, "good");
    free(p);
    p = loader_find(&lp, "bad_abi", NULL, err, sizeof err);
    assert_non_null(p);
    assert_null(loader_open(p, SS_STREAM, "tcp", &test_gen, err, sizeof err));
    assert_string_equal(err, PLUGINS "/bad_abi.so: built for ABI 99, "
                        "sockserv has ABI 2");
    free(p);
    loader_path_free(&lp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_open_good),
        cmocka_unit_test(test_loader_open_bad_abi),
        cmocka_unit_test(test_loader_open_no_symbol),
        cmocka_unit_test(test_loader_open_no_handle),
        cmocka_unit_test(test_loader_open_kind_not_supported),
        cmocka_unit_test(test_loader_open_missing_file),
        cmocka_unit_test(test_loader_open_not_elf),
        cmocka_unit_test(test_loader_open_unresolved_symbol),
        cmocka_unit_test(test_loader_open_error_truncated),
        cmocka_unit_test(test_loader_path_add_list_relative),
        cmocka_unit_test(test_loader_path_add_list_empty),
        cmocka_unit_test(test_loader_path_add_list_too_long),
        cmocka_unit_test(test_loader_find_first_match_wins),
        cmocka_unit_test(test_loader_find_relative_to_plugin_path_base),
        cmocka_unit_test(test_loader_find_path_values),
        cmocka_unit_test(test_loader_find_not_found),
        cmocka_unit_test(test_loader_find_not_found_truncated),
        cmocka_unit_test(test_loader_find_path_too_long),
        cmocka_unit_test(test_loader_find_then_open),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
