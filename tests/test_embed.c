/* test_embed.c: a program links libsockserv, defines its own handler and
 * runs a server with no plugin and no INI file, as Python code uses
 * socketserver; the verify_request, handle_error and service_actions
 * hooks; the program's own log callback. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockserv.h"
#include "support/daemon.h"

static atomic_int handled, errors, services, setups, finishes;
static atomic_bool allow = true;

/* Upper-cases each line: a StreamRequestHandler with readline. */
static int
upper_setup(struct ss_request *req)
{
    (void)req;
    atomic_fetch_add(&setups, 1);
    return 0;
}

static int
upper_handle(struct ss_request *req)
{
    char line[64];
    ssize_t n;

    atomic_fetch_add(&handled, 1);
    while ((n = ss_readline(req, line, sizeof line)) > 0) {
        if (strncmp(line, "fail", 4) == 0) {
            errno = EPROTO;
            return -1;
        }
        for (ssize_t i = 0; i < n; i++)
            if (line[i] >= 'a' && line[i] <= 'z')
                line[i] = (char)(line[i] - 'a' + 'A');
        if (ss_printf(req, "%s", line) < 0)
            return -1;
    }
    return n < 0 ? -1 : 0;
}

static void
upper_finish(struct ss_request *req)
{
    (void)req;
    atomic_fetch_add(&finishes, 1);
}

static const struct ss_handler upper = {
    .abi = SOCKSERV_ABI,
    .name = "upper",
    .description = "upper-cases lines",
    .kinds = SS_STREAM | SS_DGRAM,
    .setup = upper_setup,
    .handle = upper_handle,
    .finish = upper_finish,
};

static bool
verify(struct ss_server *srv, const struct sockaddr *sa, socklen_t len,
       void *arg)
{
    (void)srv;
    (void)sa;
    (void)len;
    assert_ptr_equal(arg, &allow);
    return atomic_load(&allow);
}

static void
on_error(struct ss_server *srv, struct ss_request *req, void *arg)
{
    (void)srv;
    (void)req;
    (void)arg;
    atomic_fetch_add(&errors, 1);
}

static void
service(struct ss_server *srv, void *arg)
{
    (void)srv;
    (void)arg;
    atomic_fetch_add(&services, 1);
}

static void *
serve(void *arg)
{
    ss_server_serve_forever(arg);
    return NULL;
}

static struct ss_server *
make(const char *type, const char *mode)
{
    struct ss_server *s = ss_server_new("upper", &upper);

    assert_non_null(s);
    assert_int_equal(ss_server_set(s, "type", type, 0), 0);
    assert_int_equal(ss_server_set(s, "mode", mode, 0), 0);
    assert_int_equal(ss_server_set(s, "host", "127.0.0.1", 0), 0);
    assert_int_equal(ss_server_set(s, "port", "0", 0), 0);
    return s;
}

static void
test_embed_threading_tcp_server(void **state)
{
    struct ss_server *s = make("tcp", "threading");
    pthread_t tid;
    char buf[128];
    int fd;

    (void)state;
    ss_server_set_verify_request(s, verify, &allow);
    ss_server_set_handle_error(s, on_error, NULL);
    ss_server_set_service_actions(s, service, NULL);
    assert_int_equal(ss_server_start(s), 0);
    assert_non_null(strstr(ss_server_address(s), "127.0.0.1:"));
    assert_string_equal(ss_server_mode(s), "threading");
    assert_int_equal(ss_server_kind(s), SS_STREAM);
    assert_int_equal(pthread_create(&tid, NULL, serve, s), 0);

    fd = ssd_connect(ss_server_address(s));
    assert_int_equal(ssd_send_str(fd, "hello\nwor"), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "HELLO\n", 5000));
    assert_int_equal(ssd_send_str(fd, "ld\n"), 0);
    assert_true(ssd_recv_until(fd, buf, sizeof buf, "WORLD\n", 5000));
    /* a failing handle reaches handle_error; finish still runs */
    assert_int_equal(ssd_send_str(fd, "fail\n"), 0);
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    /* the core calls handle_error and finish before it closes */
    assert_int_equal(atomic_load(&errors), 1);
    assert_int_equal(atomic_load(&setups), 1);
    assert_int_equal(atomic_load(&finishes), 1);

    /* verify_request refuses before any handler code runs */
    atomic_store(&allow, false);
    fd = ssd_connect(ss_server_address(s));
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    assert_int_equal(atomic_load(&setups), 1);
    atomic_store(&allow, true);

    ss_server_shutdown(s);
    assert_int_equal(pthread_join(tid, NULL), 0);
    assert_true(atomic_load(&services) > 0);
    ss_server_close(s);
    ss_server_free(s);
}

/* handle_request serves exactly one request, or times out. */
static void
test_embed_handle_request_udp(void **state)
{
    struct ss_server *s = make("udp", "sync");
    char buf[64];
    int fd;

    (void)state;
    assert_int_equal(ss_server_start(s), 0);
    assert_int_equal(ss_server_handle_request(s, 0.05), -1);
    assert_int_equal(errno, ETIMEDOUT);
    fd = ssd_dgram(ss_server_address(s));
    assert_int_equal(ssd_send_str(fd, "abc\n"), 0);
    assert_int_equal(ss_server_handle_request(s, 5), 0);
    assert_int_equal(ssd_recv_some(fd, buf, sizeof buf, 5000), 4);
    assert_memory_equal(buf, "ABC\n", 4);
    close(fd);
    ss_server_close(s);
    ss_server_free(s);
}

/* Configuration errors come back to the program, with no exit. */
static void
test_embed_errors(void **state)
{
    struct ss_server *s = ss_server_new("x", &upper);
    int line = -1;

    (void)state;
    assert_int_equal(ss_server_set(s, "type", "carrier-pigeon", 7), -1);
    assert_string_equal(ss_server_error(s, &line), "invalid type "
                        "\"carrier-pigeon\" (tcp, udp, unix-stream, "
                        "unix-dgram)");
    assert_int_equal(line, 7);
    assert_true(ss_server_error_is_config(s));
    assert_int_equal(ss_server_start(s), -1);   /* no port */
    assert_non_null(strstr(ss_server_error(s, NULL), "needs \"port\""));
    ss_server_free(s);
}

/* The program's own log callback gets the library's lines, with their
 * level, and the program's stderr gets nothing. */
static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static char lines[4096];
static int warnings;

static void
on_log(enum ss_log_level level, const char *line, void *arg)
{
    assert_ptr_equal(arg, lines);
    pthread_mutex_lock(&lines_lock);
    strncat(lines, line, sizeof lines - strlen(lines) - 2);
    strcat(lines, "\n");
    warnings += level == SS_LOG_WARNING;
    pthread_mutex_unlock(&lines_lock);
}

static void
test_embed_log_callback(void **state)
{
    struct ss_server *s = make("tcp", "threading");
    struct stat before, after;
    pthread_t tid;
    char buf[64];
    int fd, p[2], saved;
    ssize_t n;

    (void)state;
    ss_log_set_callback(on_log, lines);
    /* stderr becomes a pipe the test reads: nothing may arrive there */
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    assert_int_equal(fstat(STDERR_FILENO, &before), 0);
    ss_server_set_verify_request(s, verify, &allow);
    assert_int_equal(ss_server_set(s, "timeout", "0.2", 0), 0);
    assert_int_equal(ss_server_start(s), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, s), 0);
    /* a silent client: the core logs that it closed it */
    fd = ssd_connect(ss_server_address(s));
    assert_true(ssd_closed_within(fd, 5000));
    close(fd);
    ss_log(SS_LOG_WARNING, "upper: %s", "from the program");
    ss_server_shutdown(s);
    assert_int_equal(pthread_join(tid, NULL), 0);
    ss_server_close(s);
    ss_server_free(s);
    ss_log_set_callback(NULL, NULL);
    assert_int_equal(fstat(STDERR_FILENO, &after), 0);
    n = read(p[0], buf, sizeof buf);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    assert_true(n < 0 && errno == EAGAIN);     /* stderr got nothing */
    assert_true(before.st_ino == after.st_ino);  /* and is still ours */
    pthread_mutex_lock(&lines_lock);
    assert_non_null(strstr(lines, ": silent for 0.2s, closed\n"));
    assert_non_null(strstr(lines, "upper: from the program\n"));
    assert_int_equal(warnings, 1);
    pthread_mutex_unlock(&lines_lock);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_threading_tcp_server),
        cmocka_unit_test(test_embed_handle_request_udp),
        cmocka_unit_test(test_embed_errors),
        cmocka_unit_test(test_embed_log_callback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
