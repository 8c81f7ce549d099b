/* test_install.c: `make install` into a temporary prefix, an out-of-tree
 * handler built with pkg-config against it, loaded by the installed
 * daemon and talked to; DESTDIR staging. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"

static int
sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static bool
exists(const char *dir, const char *rel)
{
    char path[1024];

    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

/* The installed units name the installed daemon, are Type=notify and
 * reload by SIGHUP; systemd-analyze (when there is one) finds nothing
 * to say about them. */
static void
check_units(const char *prefix)
{
    char path[600], line[1200], want[1200];
    bool start = false, notify = false, reload = false, named = false;
    FILE *fp;

    snprintf(path, sizeof path, "%s/lib/systemd/system/sockserv.service",
             prefix);
    snprintf(want, sizeof want, "ExecStart=%s/bin/sockserv %s/etc/sockserv/"
             "sockserv.ini\n", prefix, prefix);
    fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL) {
        start |= strcmp(line, want) == 0;
        notify |= strcmp(line, "Type=notify\n") == 0;
        reload |= strcmp(line, "ExecReload=/bin/kill -HUP $MAINPID\n") == 0;
        assert_null(strchr(line, '@'));         /* every @VAR@ filled */
    }
    fclose(fp);
    assert_true(start && notify && reload);
    snprintf(path, sizeof path, "%s/lib/systemd/system/sockserv.socket",
             prefix);
    fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL)
        named |= strcmp(line, "FileDescriptorName=echo\n") == 0;
    fclose(fp);
    assert_true(named);
    if (system("command -v systemd-analyze >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_install: no systemd-analyze here: units not "
                "verified\n");
        return;
    }
    /* verify wants the ExecStart= binary; --man=no: the pages are not on
     * this system's MANPATH */
    assert_int_equal(sh("cd / && out=$(systemd-analyze verify --man=no "
                        "%s/lib/systemd/system/sockserv.service "
                        "%s/lib/systemd/system/sockserv.socket 2>&1) && "
                        "{ [ -z \"$out\" ] || { echo \"$out\" >&2; "
                        "false; }; }", prefix, prefix), 0);
}

static void
test_install_prefix_and_oot_handler(void **state)
{
    char tmp[] = "/tmp/sockserv-install-XXXXXX", prefix[256], daemon[300];
    char ini[1024], buf[256];
    struct ssd d;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(tmp));
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    assert_int_equal(sh("make -s -C %s B=%s install PREFIX=%s >/dev/null",
                        SS_SOURCE_DIR, SS_BUILD_DIR, prefix), 0);
    assert_true(exists(prefix, "bin/sockserv"));
    assert_true(exists(prefix, "bin/sockservctl"));
    assert_true(exists(prefix, "lib/sockserv/handlers/metrics.so"));
    assert_true(exists(prefix, "lib/libsockserv.so"));
    assert_true(exists(prefix, "include/sockserv.h"));
    assert_true(exists(prefix, "lib/sockserv/handlers/echo.so"));
    assert_true(exists(prefix, "lib/pkgconfig/sockserv.pc"));
    assert_true(exists(prefix, "share/man/man8/sockserv.8"));
    assert_true(exists(prefix, "share/man/man8/sockservctl.8"));
    assert_true(exists(prefix, "share/man/man5/sockserv.ini.5"));
    assert_true(exists(prefix, "share/man/man3/sockserv-handler.3"));
    assert_true(exists(prefix, "lib/systemd/system/sockserv.service"));
    assert_true(exists(prefix, "lib/systemd/system/sockserv.socket"));
    check_units(prefix);

    /* a plugin author's build: only the installed header and .pc; with
     * --libs (linked against the installed libsockserv.so) and without
     * (the ss_* functions come from the daemon that loads it) */
    for (int i = 0; i < 2; i++)
        assert_int_equal(sh("cd %s && export PKG_CONFIG_PATH=%s/lib/pkgconfig"
                            " && cc -std=c11 -Wall -Wextra -Werror -shared "
                            "-fPIC -o %s/hello%d.so %s/tests/oot/hello.c "
                            "$(pkg-config --cflags %s sockserv)", tmp, prefix,
                            tmp, i, SS_SOURCE_DIR, i == 0 ? "--libs" : ""),
                         0);
    snprintf(ini, sizeof ini, "[hello]\nhandler = %s/hello0.so\ntype = tcp\n"
             "mode = threading\nport = 0\n[echo]\nhandler = echo\ntype = udp"
             "\nport = 0\n[plain]\nhandler = %s/hello1.so\nmode = forking\n"
             "port = 0\n", tmp, tmp);
    snprintf(daemon, sizeof daemon, "%s/bin/sockserv", prefix);
    ssd_daemon = daemon;
    assert_int_equal(ssd_start(&d, ini, 3, NULL), 0);
    for (int i = 0; i < 2; i++) {
        fd = ssd_connect(ssd_addr(&d, i == 0 ? "hello" : "plain"));
        assert_int_equal(ssd_send_str(fd, "world\n"), 0);
        assert_true(ssd_recv_until(fd, buf, sizeof buf, "hello, world\n",
                                   5000));
        close(fd);
    }
    /* the installed daemon finds its installed handlers (echo) */
    fd = ssd_dgram(ssd_addr(&d, "echo"));
    assert_int_equal(ssd_send_str(fd, "e"), 0);
    assert_int_equal(ssd_recv_some(fd, buf, sizeof buf, 5000), 1);
    close(fd);
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    ssd_cleanup(&d);
    ssd_daemon = NULL;
    assert_int_equal(sh("rm -rf %s", tmp), 0);
}

static void
test_install_destdir(void **state)
{
    char tmp[] = "/tmp/sockserv-destdir-XXXXXX", pc[512];
    char line[256];
    FILE *fp;
    bool prefix_ok = false;

    (void)state;
    assert_non_null(mkdtemp(tmp));
    assert_int_equal(sh("make -s -C %s B=%s install PREFIX=/opt/ss "
                        "DESTDIR=%s >/dev/null", SS_SOURCE_DIR, SS_BUILD_DIR,
                        tmp), 0);
    assert_true(exists(tmp, "opt/ss/bin/sockserv"));
    assert_true(exists(tmp, "opt/ss/include/sockserv.h"));
    snprintf(pc, sizeof pc, "%s/opt/ss/lib/pkgconfig/sockserv.pc", tmp);
    fp = fopen(pc, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL)
        prefix_ok |= strcmp(line, "prefix=/opt/ss\n") == 0;
    fclose(fp);
    assert_true(prefix_ok);     /* the .pc names the final prefix */
    assert_int_equal(sh("rm -rf %s", tmp), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_prefix_and_oot_handler),
        cmocka_unit_test(test_install_destdir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
