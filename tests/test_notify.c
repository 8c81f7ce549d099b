/* test_notify.c: sd_notify's protocol (daemon/notify.c) to a socket of
 * the test's own, by path and abstract; then the daemon: READY=1 with
 * STATUS= once every server listens, STOPPING=1 when it stops. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "notify.h"
#include "support/daemon.h"

static char tmp[64], sock_path[128];

/* A datagram socket at path, or abstract (name starting with '@'). */
static int
listen_at(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(n < sizeof sa.sun_path);
    if (name[0] != '@')
        unlink(name);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    assert_int_equal(bind(fd, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                      n + (name[0] != '@'))), 0);
    return fd;
}

/* The next datagram within ms, NUL-terminated; false on timeout. */
static bool
next_msg(int fd, char *buf, size_t size, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    ssize_t n;

    if (poll(&pfd, 1, ms) != 1)
        return false;
    n = recv(fd, buf, size - 1, 0);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/sockserv-notify-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    snprintf(sock_path, sizeof sock_path, "%s/notify.sock", tmp);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(sock_path);
    return rmdir(tmp);
}

static void
test_notify_path_socket(void **state)
{
    char buf[256];
    unsigned long long usec;
    struct timespec ts;
    int fd = listen_at(sock_path);

    (void)state;
    setenv("NOTIFY_SOCKET", sock_path, 1);
    assert_int_equal(daemon_notify_ready(3), 0);
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_string_equal(buf, "READY=1\nSTATUS=serving 3 servers");
    assert_int_equal(daemon_notify_ready(1), 0);
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_string_equal(buf, "READY=1\nSTATUS=serving 1 server");
    assert_int_equal(daemon_notify_reloading(), 0);
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu\n", &usec),
                     1);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* CLOCK_MONOTONIC, in microseconds, taken just now */
    assert_true(usec <= (unsigned long long)ts.tv_sec * 1000000ULL +
                (unsigned long long)ts.tv_nsec / 1000);
    assert_true(usec + 5000000ULL >= (unsigned long long)ts.tv_sec *
                1000000ULL);
    assert_non_null(strstr(buf, "\nSTATUS=reloading the configuration"));
    assert_int_equal(daemon_notify_stopping(), 0);
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_string_equal(buf, "STOPPING=1\nSTATUS=shutting down");
    close(fd);
    unlink(sock_path);
    /* nobody listens: -1, and the caller goes on */
    assert_int_equal(daemon_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_notify_abstract_socket(void **state)
{
    char name[64], buf[64];
    int fd;

    (void)state;
    snprintf(name, sizeof name, "@sockserv-test-%d", (int)getpid());
    fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(daemon_notify("STATUS=x"), 0);
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_string_equal(buf, "STATUS=x");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_notify_without_systemd(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(daemon_notify_ready(1), 0);       /* nothing to do */
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(daemon_notify_ready(1), 0);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(daemon_notify_ready(1), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "/", 1);
    assert_int_equal(daemon_notify_ready(1), -1);
    unsetenv("NOTIFY_SOCKET");
}

/* The daemon with NOTIFY_SOCKET in its environment (ssd_start passes the
 * environment on): READY=1 only after both servers listen, STOPPING=1
 * on SIGTERM. */
static void
test_notify_daemon(void **state)
{
    char buf[256];
    struct ssd d;
    int fd = listen_at(sock_path);

    (void)state;
    setenv("NOTIFY_SOCKET", sock_path, 1);
    assert_int_equal(ssd_start(&d, "[a]\nhandler = echo\nport = 0\n"
                               "[b]\nhandler = echo\ntype = udp\nport = 0\n"
                               "mode = threading\n", 2, NULL), 0);
    unsetenv("NOTIFY_SOCKET");
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_string_equal(buf, "READY=1\nSTATUS=serving 2 servers");
    /* ready means serving */
    assert_true(ssd_echo_once(ssd_addr(&d, "a")));
    assert_int_equal(ssd_stop(&d, SIGTERM), 0);
    assert_true(next_msg(fd, buf, sizeof buf, 5000));
    assert_string_equal(buf, "STOPPING=1\nSTATUS=shutting down");
    assert_false(next_msg(fd, buf, sizeof buf, 0));
    ssd_cleanup(&d);
    close(fd);
    unlink(sock_path);
}

/* A daemon that cannot start never says READY=1. */
static void
test_notify_daemon_failed_start(void **state)
{
    char *out, buf[256], ini[128];
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof sa;
    int fd = listen_at(sock_path);
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    (void)state;
    /* its port is taken: it cannot bind */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(busy, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(busy, 1), 0);
    assert_int_equal(getsockname(busy, (struct sockaddr *)&sa, &len), 0);
    snprintf(ini, sizeof ini, "[a]\nhandler = echo\nhost = 127.0.0.1\n"
             "port = %d\n", ntohs(sa.sin_port));
    setenv("NOTIFY_SOCKET", sock_path, 1);
    assert_int_equal(ssd_run(ini, NULL, &out), 1);
    unsetenv("NOTIFY_SOCKET");
    close(busy);
    assert_non_null(strstr(out, "Address already in use"));
    free(out);
    assert_false(next_msg(fd, buf, sizeof buf, 0));
    close(fd);
    unlink(sock_path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path_socket),
        cmocka_unit_test(test_notify_abstract_socket),
        cmocka_unit_test(test_notify_without_systemd),
        cmocka_unit_test(test_notify_daemon),
        cmocka_unit_test(test_notify_daemon_failed_start),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
