/* test_ftp_unit.c: the ftp handler's pure parsers (handlers/ftp_proto.h),
 * without sockets or files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../handlers/ftp_proto.h"

static void
test_ftp_parse_line_cases(void **state)
{
    char l1[] = "retr  a b\r\n", l2[] = "\xff\xf4\xff\xf2" "ABOR\r\n",
         l3[] = "CWD a\rb\r\n", l4[] = "   \r\n", l5[] = "123\r\n",
         l6[] = "ABCDEFGHIJ x\r\n";
    struct ftp_cmd c;

    (void)state;
    assert_int_equal(ftp_parse_line(l1, strlen(l1), &c), FTP_OK);
    assert_string_equal(c.verb, "RETR");
    assert_string_equal(c.arg, " a b");
    assert_int_equal(ftp_parse_line(l2, strlen(l2), &c), FTP_OK);
    assert_string_equal(c.verb, "ABOR");
    assert_int_equal(ftp_parse_line(l3, strlen(l3), &c), FTP_BAD_CHAR);
    assert_int_equal(ftp_parse_line(l4, strlen(l4), &c), FTP_EMPTY);
    assert_int_equal(ftp_parse_line(l5, strlen(l5), &c), FTP_BAD);
    assert_int_equal(ftp_parse_line(l6, strlen(l6), &c), FTP_BAD);
    /* a NUL inside the line */
    char l7[] = "CWD a\0b\r\n";
    assert_int_equal(ftp_parse_line(l7, sizeof l7 - 1, &c), FTP_BAD_CHAR);
}

static void
test_ftp_path_resolve_stays_inside(void **state)
{
    char out[FTP_PATH_MAX];

    (void)state;
    assert_int_equal(ftp_path_resolve("/a/b", "../../../..", out,
                                      sizeof out), 0);
    assert_string_equal(out, "/");
    assert_int_equal(ftp_path_resolve("/a/b", "/etc/../x//./y", out,
                                      sizeof out), 0);
    assert_string_equal(out, "/x/y");
    assert_int_equal(ftp_path_resolve("/a", "c", out, sizeof out), 0);
    assert_string_equal(out, "/a/c");
    assert_string_equal(ftp_path_rel("/"), ".");
    assert_string_equal(ftp_path_rel("/a/c"), "a/c");
    assert_int_equal(ftp_path_resolve("/", "a\nb", out, sizeof out), -1);
    assert_int_equal(errno, EINVAL);
}

static void
test_ftp_port_eprt_range_users(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct ftp_user u;
    char l1[] = "damu:$y$x$y\n", l2[] = "root:$6$s$h:/home\n", l3[] = ":x\n",
         l4[] = "# c\n";
    int lo, hi;

    (void)state;
    assert_int_equal(ftp_parse_port("127,0,0,1,200,10", &ss, &len), 0);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 51210);
    assert_int_equal(ftp_parse_port("127,0,0,1,256,10", &ss, &len), -1);
    assert_int_equal(ftp_parse_port("1,2,3", &ss, &len), -1);
    assert_int_equal(ftp_parse_eprt("|2|::1|6275|", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ftp_parse_eprt("|3|::1|6275|", &ss, &len), -1);
    assert_int_equal(ftp_parse_eprt("|1|1.2.3.4|0|", &ss, &len), -1);
    assert_int_equal(ftp_parse_range("50000-50100", &lo, &hi), 0);
    assert_int_equal(lo, 50000);
    assert_int_equal(ftp_parse_range("80-90", &lo, &hi), -1);
    assert_int_equal(ftp_parse_range("6000-5000", &lo, &hi), -1);
    assert_int_equal(ftp_parse_user_line(l1, &u), 1);
    assert_string_equal(u.name, "damu");
    assert_string_equal(u.hash, "$y$x$y");
    assert_string_equal(u.home, "/");
    assert_int_equal(ftp_parse_user_line(l2, &u), 1);
    assert_string_equal(u.home, "/home");
    assert_int_equal(ftp_parse_user_line(l3, &u), -1);
    assert_int_equal(ftp_parse_user_line(l4, &u), 0);
}

static void
test_ftp_listing_lines(void **state)
{
    struct stat st;
    char out[256];

    (void)state;
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFREG | 0644;
    st.st_size = 1234;
    st.st_nlink = 1;
    st.st_mtime = 86400 * 365;
    assert_true(ftp_list_line(&st, "a b", 86400 * 366, out, sizeof out) > 0);
    assert_string_equal(out, "-rw-r--r--   1 ftp      ftp              1234 "
                        "Jan  1 00:00 a b\r\n");
    assert_true(ftp_mlsx_line(&st, "f", false, out, sizeof out) > 0);
    assert_string_equal(out, "type=file;size=1234;modify=19710101000000;"
                        "perm=r; f");
    assert_true(ftp_quote("a\"b", out, sizeof out));
    assert_string_equal(out, "a\"\"b");
    assert_false(ftp_quote("abcdef", out, 4));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ftp_parse_line_cases),
        cmocka_unit_test(test_ftp_path_resolve_stays_inside),
        cmocka_unit_test(test_ftp_port_eprt_range_users),
        cmocka_unit_test(test_ftp_listing_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
