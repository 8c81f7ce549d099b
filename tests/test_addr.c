/* test_addr.c: host/port resolution, address text, Unix socket paths, and
 * the number, boolean and size parsers behind every config value. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"

/* ---- ss_addr_resolve ----------------------------------------------------- */

static bool
is_any(const struct addrinfo *ai)
{
    if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ai->ai_addr;

        return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
    }
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ai->ai_addr;

        return in->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    return false;
}

static bool
is_loopback(const struct addrinfo *ai)
{
    if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ai->ai_addr;

        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ai->ai_addr;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    return false;
}

static unsigned
port_of(const struct addrinfo *ai)
{
    if (ai->ai_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)
                      ai->ai_addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)(const void *)
                  ai->ai_addr)->sin_port);
}

/* Resolves host and formats the first result. */
static void
resolve_text(const char *host, int port, int socktype, char *out,
             size_t size)
{
    struct addrinfo *res;
    char err[256] = "";

    assert_int_equal(ss_addr_resolve(host, port, socktype, &res, err,
                                     sizeof err), 0);
    assert_string_equal(err, "");
    assert_non_null(res);
    assert_int_equal(res->ai_socktype, socktype);
    ss_addr_format(res->ai_addr, res->ai_addrlen, out, size);
    freeaddrinfo(res);
}

static void
test_ss_addr_resolve_wildcard(void **state)
{
    const char *hosts[] = { "", "*", NULL };
    struct addrinfo *res;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        assert_int_equal(ss_addr_resolve(hosts[i], 8000, SOCK_STREAM, &res,
                                         err, sizeof err), 0);
        /* every address; IPv6's wildcard first where there is IPv6 */
        assert_true(is_any(res));
        assert_int_equal(port_of(res), 8000);
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
            assert_true(is_any(ai));
        freeaddrinfo(res);
    }
}

static void
test_ss_addr_resolve_literals(void **state)
{
    char buf[SS_ADDRSTRLEN];

    (void)state;
    resolve_text("127.0.0.1", 8000, SOCK_STREAM, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:8000");
    resolve_text("::1", 0, SOCK_STREAM, buf, sizeof buf);
    assert_string_equal(buf, "[::1]:0");
    resolve_text("[::1]", 65535, SOCK_DGRAM, buf, sizeof buf);
    assert_string_equal(buf, "[::1]:65535");
    resolve_text("0.0.0.0", 1, SOCK_DGRAM, buf, sizeof buf);
    assert_string_equal(buf, "0.0.0.0:1");
}

static void
test_ss_addr_resolve_localhost(void **state)
{
    struct addrinfo *res;
    char err[256];

    (void)state;
    assert_int_equal(ss_addr_resolve("localhost", 80, SOCK_STREAM, &res, err,
                                     sizeof err), 0);
    assert_non_null(res);
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        assert_true(is_loopback(ai));
        assert_int_equal(port_of(ai), 80);
        assert_int_equal(ai->ai_socktype, SOCK_STREAM);
    }
    freeaddrinfo(res);
}

static void
test_ss_addr_resolve_bad_name(void **state)
{
    const char *bad[] = { "no such host", "[]", "[::1", "::1]", "1.2.3.4.5" };
    struct addrinfo *res = NULL;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ss_addr_resolve(bad[i], 80, SOCK_STREAM, &res, err,
                                         sizeof err), -1);
        /* the resolver's own reason */
        assert_true(strcmp(err, gai_strerror(EAI_NONAME)) == 0 ||
                    strcmp(err, gai_strerror(EAI_AGAIN)) == 0 ||
                    strcmp(err, gai_strerror(EAI_FAIL)) == 0);
    }
}

static void
test_ss_addr_resolve_name_too_long(void **state)
{
    char host[300], err[256];
    struct addrinfo *res = NULL;

    (void)state;
    memset(host, 'a', sizeof host);
    host[sizeof host - 1] = '\0';
    errno = 0;
    assert_int_equal(ss_addr_resolve(host, 80, SOCK_STREAM, &res, err,
                                     sizeof err), -1);
    assert_string_equal(err, "host name too long");
    assert_int_equal(errno, ENAMETOOLONG);
    assert_null(res);
}

/* ---- ss_addr_format ------------------------------------------------------ */

static void
test_ss_addr_format_ipv4(void **state)
{
    struct sockaddr_in in = { .sin_family = AF_INET,
                              .sin_port = htons(40123) };
    char buf[SS_ADDRSTRLEN];

    (void)state;
    inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
    ss_addr_format((struct sockaddr *)&in, sizeof in, buf, sizeof buf);
    assert_string_equal(buf, "192.0.2.7:40123");
}

static void
test_ss_addr_format_ipv6(void **state)
{
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6,
                                .sin6_port = htons(8000) };
    char buf[SS_ADDRSTRLEN];

    (void)state;
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    ss_addr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf);
    assert_string_equal(buf, "[::1]:8000");
    inet_pton(AF_INET6, "2001:db8::ff:1", &in6.sin6_addr);
    in6.sin6_port = htons(0);
    ss_addr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf);
    assert_string_equal(buf, "[2001:db8::ff:1]:0");
    /* a v4-mapped client of a dual-stack socket is shown as IPv4, as
     * allow/deny match it */
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
    in6.sin6_port = htons(5);
    ss_addr_format((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:5");
}

static void
test_ss_addr_format_unix_path(void **state)
{
    struct sockaddr_un sun;
    socklen_t len;
    char buf[SS_ADDRSTRLEN];

    (void)state;
    assert_int_equal(ss_addr_unix("/run/echo.sock", &sun, &len), 0);
    ss_addr_format((struct sockaddr *)&sun, len, buf, sizeof buf);
    assert_string_equal(buf, "/run/echo.sock");
    /* the kernel may leave out the terminating NUL */
    ss_addr_format((struct sockaddr *)&sun, len - 1, buf, sizeof buf);
    assert_string_equal(buf, "/run/echo.sock");
    /* or report the whole structure */
    ss_addr_format((struct sockaddr *)&sun, sizeof sun, buf, sizeof buf);
    assert_string_equal(buf, "/run/echo.sock");
}

static void
test_ss_addr_format_unix_unnamed(void **state)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    char buf[SS_ADDRSTRLEN];

    (void)state;
    /* an unbound client: accept() returns only the family */
    ss_addr_format((struct sockaddr *)&sun, sizeof(sa_family_t), buf,
                   sizeof buf);
    assert_string_equal(buf, "unix:unnamed");
    ss_addr_format((struct sockaddr *)&sun,
                   offsetof(struct sockaddr_un, sun_path) + 1, buf,
                   sizeof buf);
    assert_string_equal(buf, "unix:unnamed");
}

static void
test_ss_addr_format_unix_abstract(void **state)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    char buf[SS_ADDRSTRLEN];

    (void)state;
    memcpy(sun.sun_path, "\0echo", 5);
    ss_addr_format((struct sockaddr *)&sun,
                   offsetof(struct sockaddr_un, sun_path) + 5, buf,
                   sizeof buf);
    assert_string_equal(buf, "@echo");
}

static void
test_ss_addr_format_unknown_and_short(void **state)
{
    struct sockaddr_in in = { .sin_family = AF_INET,
                              .sin_port = htons(8000) };
    struct sockaddr sa = { .sa_family = AF_APPLETALK };
    char buf[SS_ADDRSTRLEN];

    (void)state;
    ss_addr_format(&sa, sizeof sa, buf, sizeof buf);
    assert_string_equal(buf, "unknown");
    ss_addr_format((struct sockaddr *)&in, 0, buf, sizeof buf);
    assert_string_equal(buf, "unknown");
    /* a small buffer truncates, always terminated */
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    ss_addr_format((struct sockaddr *)&in, sizeof in, buf, 6);
    assert_string_equal(buf, "127.0");
    /* size 0 writes nothing */
    buf[0] = 'x';
    ss_addr_format((struct sockaddr *)&in, sizeof in, buf, 0);
    assert_int_equal(buf[0], 'x');
}

/* ---- ss_addr_unix ------------------------------------------------------- */

static void
test_ss_addr_unix_lengths(void **state)
{
    struct sockaddr_un sun;
    char path[sizeof sun.sun_path + 8];
    socklen_t len = 0;

    (void)state;
    assert_int_equal(ss_addr_unix("/tmp/s", &sun, &len), 0);
    assert_int_equal(sun.sun_family, AF_UNIX);
    assert_string_equal(sun.sun_path, "/tmp/s");
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 7);

    /* the longest path that fits, with its NUL */
    memset(path, 'p', sizeof path);
    path[sizeof sun.sun_path - 1] = '\0';
    assert_int_equal(ss_addr_unix(path, &sun, &len), 0);
    assert_int_equal(len, sizeof sun);

    /* one more: too long, never silently cut */
    path[sizeof sun.sun_path - 1] = 'p';
    path[sizeof sun.sun_path] = '\0';
    errno = 0;
    assert_int_equal(ss_addr_unix(path, &sun, &len), -1);
    assert_int_equal(errno, ENAMETOOLONG);

    errno = 0;
    assert_int_equal(ss_addr_unix("", &sun, &len), -1);
    assert_int_equal(errno, EINVAL);
}

/* ---- parsers (util.c) --------------------------------------------------- */

static void
test_ss_parse_long_valid(void **state)
{
    long v = 0;

    (void)state;
    assert_true(ss_parse_long("42", 0, 100, &v));
    assert_int_equal(v, 42);
    assert_true(ss_parse_long("0", 0, 100, &v));
    assert_int_equal(v, 0);
    assert_true(ss_parse_long("100", 0, 100, &v));   /* bounds inclusive */
    assert_int_equal(v, 100);
    assert_true(ss_parse_long("-5", -10, 10, &v));
    assert_int_equal(v, -5);
    assert_true(ss_parse_long("9223372036854775807", 0, LONG_MAX, &v));
    assert_int_equal(v, LONG_MAX);
}

static void
test_ss_parse_long_invalid(void **state)
{
    const char *bad[] = { "", "x", "12x", "1.5", "1e3", "0x10", "1 ",
                          "101", "-1", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999" };
    long v = 77;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(ss_parse_long(bad[i], 0, 100, &v));
        assert_int_equal(v, 77);        /* untouched on failure */
    }
    assert_false(ss_parse_long("9223372036854775808", LONG_MIN, LONG_MAX,
                               &v));
    assert_false(ss_parse_long(NULL, 0, 100, &v));
    assert_int_equal(v, 77);
}

static void
test_ss_parse_double_valid(void **state)
{
    double v = -1;

    (void)state;
    assert_true(ss_parse_double("2.5", 0, 10, &v));
    assert_true(v == 2.5);
    assert_true(ss_parse_double("10", 0, 10, &v));
    assert_true(v == 10);
    assert_true(ss_parse_double("1e-3", 0, 10, &v));
    assert_true(v == 1e-3);
    assert_true(ss_parse_double("none", 0, 10, &v));
    assert_true(v == 0);
    v = 3;
    assert_true(ss_parse_double("NONE", 0, 10, &v));
    assert_true(v == 0);
}

static void
test_ss_parse_double_invalid(void **state)
{
    const char *bad[] = { "", "x", "1.5s", "10.001", "-0.5", "nan", "inf",
                          "-inf", "infinity", "1e400", "1,5" };
    double v = 7;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(ss_parse_double(bad[i], 0, 10, &v));
        assert_true(v == 7);
    }
    assert_false(ss_parse_double(NULL, 0, 10, &v));
    /* "none" is 0, so refused where 0 is out of range */
    assert_false(ss_parse_double("none", 1, 10, &v));
}

static void
test_ss_parse_bool_values(void **state)
{
    const char *yes[] = { "true", "yes", "on", "1", "TRUE", "Yes", "ON" };
    const char *no[] = { "false", "no", "off", "0", "False", "NO", "Off" };
    const char *bad[] = { "", "2", "y", "n", "tru", "yes ", "enabled", "-1" };
    bool v;

    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        v = false;
        assert_true(ss_parse_bool(yes[i], &v));
        assert_true(v);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        v = true;
        assert_true(ss_parse_bool(no[i], &v));
        assert_false(v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = true;
        assert_false(ss_parse_bool(bad[i], &v));
        assert_true(v);
    }
}

static void
test_ss_parse_size_suffixes(void **state)
{
    static const struct { const char *s; long v; } ok[] = {
        { "0", 0 }, { "512", 512 }, { "1k", 1024 }, { "1K", 1024 },
        { "64k", 65536 }, { "1kb", 1024 }, { "1KB", 1024 }, { "7b", 7 },
        { "1m", 1048576 }, { "2M", 2097152 }, { "1g", 1073741824 },
        { "1G", 1073741824 }, { "1gb", 1073741824 },
    };
    long v;

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        v = -1;
        assert_true(ss_parse_size(ok[i].s, 0, 1L << 30, &v));
        assert_int_equal(v, ok[i].v);
    }
}

static void
test_ss_parse_size_invalid(void **state)
{
    const char *bad[] = { "", "k", "-1", "-1k", "1x", "1kk", "1bb", "1.5k",
                          "1t", "0x10", "2g", "1025m", "1048577k",
                          "9223372036854775808", "99999999999g" };
    long v = 55;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(ss_parse_size(bad[i], 0, 1L << 30, &v));
        assert_int_equal(v, 55);
    }
    /* below the minimum, suffix or not */
    assert_false(ss_parse_size("16383", 16384, 1L << 30, &v));
    assert_false(ss_parse_size("15k", 16384, 1L << 30, &v));
    assert_true(ss_parse_size("16k", 16384, 1L << 30, &v));
    assert_int_equal(v, 16384);
    /* the largest value that fits a long, and the multiplication that
     * would overflow it */
    assert_true(ss_parse_size("9223372036854775807", 0, LONG_MAX, &v));
    assert_int_equal(v, LONG_MAX);
    assert_false(ss_parse_size("9007199254740992k", 0, LONG_MAX, &v));
    assert_false(ss_parse_size(NULL, 0, LONG_MAX, &v));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ss_addr_resolve_wildcard),
        cmocka_unit_test(test_ss_addr_resolve_literals),
        cmocka_unit_test(test_ss_addr_resolve_localhost),
        cmocka_unit_test(test_ss_addr_resolve_bad_name),
        cmocka_unit_test(test_ss_addr_resolve_name_too_long),
        cmocka_unit_test(test_ss_addr_format_ipv4),
        cmocka_unit_test(test_ss_addr_format_ipv6),
        cmocka_unit_test(test_ss_addr_format_unix_path),
        cmocka_unit_test(test_ss_addr_format_unix_unnamed),
        cmocka_unit_test(test_ss_addr_format_unix_abstract),
        cmocka_unit_test(test_ss_addr_format_unknown_and_short),
        cmocka_unit_test(test_ss_addr_unix_lengths),
        cmocka_unit_test(test_ss_parse_long_valid),
        cmocka_unit_test(test_ss_parse_long_invalid),
        cmocka_unit_test(test_ss_parse_double_valid),
        cmocka_unit_test(test_ss_parse_double_invalid),
        cmocka_unit_test(test_ss_parse_bool_values),
        cmocka_unit_test(test_ss_parse_size_suffixes),
        cmocka_unit_test(test_ss_parse_size_invalid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
