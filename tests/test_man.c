/* test_man.c: the manual (scdoc sources in man/, built by make into
 * build/man/): every page renders without a warning, every key the
 * daemon knows is in sockserv.ini(5), every call of the public header is
 * in sockserv-handler(3). */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"

static const char *const pages[] = {
    "sockserv.8", "sockserv.ini.5", "sockserv-handler.3", "sockservctl.8",
};

/* The whole output of cmd (to free). */
static char *
run(const char *cmd)
{
    FILE *fp = popen(cmd, "r");
    size_t cap = 65536, len = 0, n;
    char *buf = malloc(cap);

    assert_non_null(fp);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    assert_int_equal(pclose(fp), 0);
    return buf;
}

static char *
slurp(const char *path)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "cat '%s'", path);
    return run(cmd);
}

/* Each page was built, and groff (and man, if there is one) renders it
 * with every warning on and says nothing. */
static void
test_man_pages_render_cleanly(void **state)
{
    char cmd[1024], *out;

    (void)state;
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        char page[300];

        snprintf(page, sizeof page, "%s", ssd_build_path("man/"));
        strncat(page, pages[i], sizeof page - strlen(page) - 1);
        assert_int_equal(access(page, R_OK), 0);
        snprintf(cmd, sizeof cmd, "groff -man -Tutf8 -ww -z '%s' 2>&1",
                 page);
        out = run(cmd);
        if (*out != '\0')
            fprintf(stderr, "%s: %s", pages[i], out);
        assert_string_equal(out, "");
        free(out);
        if (system("command -v man >/dev/null 2>&1") == 0) {
            snprintf(cmd, sizeof cmd, "MANWIDTH=80 man --warnings -l '%s' "
                     "2>&1 >/dev/null", page);
            out = run(cmd);
            if (*out != '\0')
                fprintf(stderr, "man %s: %s", pages[i], out);
            assert_string_equal(out, "");
            free(out);
        } else {
            fprintf(stderr, "test_man: no man(1) here; groff alone checked "
                    "%s\n", pages[i]);
        }
        /* the page has its name and a synopsis */
        out = slurp(page);
        assert_non_null(strstr(out, ".SH NAME"));
        assert_non_null(strstr(out, ".SH SYNOPSIS"));
        free(out);
    }
}

/* Every key sockserv --list-keys prints (the core's table and the
 * daemon's [global] keys) is documented as "*KEY* =" in sockserv.ini(5). */
static void
test_man_ini_has_every_key(void **state)
{
    char cmd[600], *keys, *page;
    int n = 0;

    (void)state;
    snprintf(cmd, sizeof cmd, "'%s' --list-keys", ssd_build_path("sockserv"));
    keys = run(cmd);
    page = slurp(SS_SOURCE_DIR "/man/sockserv.ini.5.scd");
    for (char *save, *l = strtok_r(keys, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        char want[128];
        const char *key = strchr(l, ' ');

        assert_non_null(key);
        snprintf(want, sizeof want, "\n*%s* =", key + 1);
        if (strstr(page, want) == NULL) {
            fprintf(stderr, "sockserv.ini(5) does not document %s\n", l);
            fail();
        }
        n++;
    }
    assert_true(n >= 30);               /* the list itself is there */
    assert_non_null(strstr(keys, "global"));
    free(keys);
    free(page);
}

/* Every ss_ function (or function type) the public header declares is in
 * sockserv-handler(3). */
static void
test_man_handler_page_has_every_call(void **state)
{
    char *header = slurp(SS_SOURCE_DIR "/core/sockserv.h");
    char *page = slurp(SS_SOURCE_DIR "/man/sockserv-handler.3.scd");
    regex_t re;
    regmatch_t m[2];
    int n = 0;

    (void)state;
    assert_int_equal(regcomp(&re, "[ *](ss_[a-z_]+)\\(", REG_EXTENDED), 0);
    for (const char *p = header; regexec(&re, p, 2, m, 0) == 0;
         p += m[0].rm_eo) {
        char want[80];

        snprintf(want, sizeof want, "%.*s(", (int)(m[1].rm_eo - m[1].rm_so),
                 p + m[1].rm_so);
        if (strstr(page, want) == NULL) {
            fprintf(stderr, "sockserv-handler(3) does not document %s\n",
                    want);
            fail();
        }
        n++;
    }
    regfree(&re);
    assert_true(n >= 50);
    /* and the ABI 2 struct */
    assert_non_null(strstr(page, "size_t size;"));
    assert_non_null(strstr(page, "unsigned modes;"));
    free(header);
    free(page);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_man_pages_render_cleanly),
        cmocka_unit_test(test_man_ini_has_every_key),
        cmocka_unit_test(test_man_handler_page_has_every_call),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
