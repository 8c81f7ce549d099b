/* test_activation.c: systemd's socket activation, run for real with
 * systemd-socket-activate (no systemd as PID 1): sections take their
 * sockets by name (LISTEN_FDNAMES), else by address; a socket no section
 * takes is closed with a warning; one of the wrong kind is an error. */
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/daemon.h"


/* Starts sockserv under systemd-socket-activate with the listen options
 * in args (before the daemon's path); waits for its "Listening on ... as
 * N." lines. */
static void
start_activated(struct ssd *d, const char *ini, const char **args, int nfds)
{
    char want[32];

    ssd_daemon = "systemd-socket-activate";
    assert_int_equal(ssd_start(d, ini, 0, args), 0);
    ssd_daemon = NULL;
    snprintf(want, sizeof want, " as %d.", 2 + nfds);
    assert_true(ssd_log_wait(d, want, 10000));
}

static bool
echoes(int fd, const char *what)
{
    char buf[64];

    return fd >= 0 && ssd_send_str(fd, what) == 0 &&
           ssd_recv_until(fd, buf, sizeof buf, what, 5000);
}

static void
test_activation_by_name_and_by_address(void **state)
{
    char ini[512], sock[320], tcp[64], spare[64], port[32];
    const char *args[12];
    struct ssd d;
    struct stat st;
    int p = ssd_free_port(), q = ssd_free_port(), fd;

    (void)state;
    snprintf(ini, sizeof ini,
             "[echo]\nhandler = echo\ntype = unix-stream\nmode = event\n"
             "path = @DIR@/not-this.sock\n"
             "[other]\nhandler = echo\nmode = threading\nport = %d\n", p);
    /* the unix socket lives in a directory of its own: the INI's is made
     * by ssd_start */
    snprintf(sock, sizeof sock, "/tmp/sockserv-sa-%d.sock", (int)getpid());
    unlink(sock);
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", p);
    snprintf(spare, sizeof spare, "127.0.0.1:%d", q);
    args[0] = "-l";
    args[1] = sock;
    args[2] = "-l";
    args[3] = tcp;
    args[4] = "-l";
    args[5] = spare;
    args[6] = "--fdname=echo:unknown:unknown";
    args[7] = ssd_build_path("sockserv");
    args[8] = NULL;
    start_activated(&d, ini, args, 3);

    /* the first connection starts the daemon */
    fd = ssd_connect(sock);
    assert_true(echoes(fd, "by name"));
    close(fd);
    assert_true(ssd_log_wait(&d, "echo: socket from systemd (fd 3, named "
                             "echo)", 5000));
    assert_true(ssd_log_has(&d, "echo: listening on /tmp/sockserv-sa-"));
    snprintf(port, sizeof port, "127.0.0.1:%d", p);
    fd = ssd_connect(port);
    assert_true(echoes(fd, "by address"));
    close(fd);
    assert_true(ssd_log_has(&d, "other: socket from systemd (fd 4)"));
    assert_true(ssd_log_has(&d, "warning: sockserv: inherited socket 5 "
                                "matches no section; closed"));
    assert_false(ssd_log_has(&d, "not-this.sock"));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    /* systemd's socket file is systemd's: left where it is */
    assert_int_equal(stat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    unlink(sock);
    ssd_cleanup(&d);
}

/* A socket named after a section of another type is an error (exit 1),
 * said with the section's name. */
static void
test_activation_wrong_kind(void **state)
{
    char tcp[64];
    const char *args[8];
    struct ssd d;
    int p = ssd_free_port(), fd;

    (void)state;
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", p);
    args[0] = "-l";
    args[1] = tcp;
    args[2] = "--fdname=u";
    args[3] = ssd_build_path("sockserv");
    args[4] = NULL;
    start_activated(&d, "[u]\nhandler = echo\ntype = udp\nport = 0\n", args,
                    1);
    fd = ssd_connect(tcp);
    assert_true(fd >= 0);
    assert_true(ssd_log_wait(&d, "error: u: inherited socket 3 is not a udp "
                             "socket", 5000));
    assert_int_equal(ssd_wait(&d), 1);
    close(fd);
    ssd_cleanup(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_by_name_and_by_address),
        cmocka_unit_test(test_activation_wrong_kind),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
