/* fuzz_ftp.c: libFuzzer target: the ftp handler's pure parsers (command
 * line, path resolution, PORT/EPRT, passive_ports, users file lines and
 * listing lines).  The invariants: a parsed verb is upper-case letters; a
 * resolved path starts with '/', has no "." or ".." component, no "//",
 * and no control character. */
#include <stdint.h>

#include "../../handlers/ftp_proto.h"

static void
check_path(const char *p)
{
    if (p[0] != '/' || strstr(p, "//") != NULL || strstr(p, "/./") != NULL ||
        strstr(p, "/../") != NULL)
        abort();
    size_t n = strlen(p);

    if ((n >= 2 && strcmp(p + n - 2, "/.") == 0) ||
        (n >= 3 && strcmp(p + n - 3, "/..") == 0))
        abort();
    for (; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[FTP_LINE_MAX + 1], out[FTP_PATH_MAX], cwd[FTP_PATH_MAX];
    struct ftp_cmd cmd;
    struct sockaddr_storage ss;
    socklen_t len;
    struct ftp_user u;
    struct stat st;
    int lo, hi;
    size_t n = size < FTP_LINE_MAX ? size : FTP_LINE_MAX;

    memcpy(line, data, n);
    line[n] = '\0';
    if (ftp_parse_line(line, n, &cmd) == FTP_OK) {
        for (const char *v = cmd.verb; *v != '\0'; v++)
            if (*v < 'A' || *v > 'Z')
                abort();
        if (ftp_path_resolve("/a/b", cmd.arg, out, sizeof out) == 0) {
            check_path(out);
            memcpy(cwd, out, strlen(out) + 1);
            if (ftp_path_resolve(cwd, "../x/./..", out, sizeof out) == 0)
                check_path(out);
        }
        (void)ftp_parse_port(cmd.arg, &ss, &len);
        (void)ftp_parse_eprt(cmd.arg, &ss, &len);
        if (ftp_parse_range(cmd.arg, &lo, &hi) == 0 &&
            (lo < 1024 || hi < lo || hi > 65535))
            abort();
        memset(&st, 0, sizeof st);
        st.st_size = (off_t)size;
        st.st_mode = (mode_t)(size & 1 ? S_IFDIR | 0755 : S_IFREG | 0644);
        (void)ftp_list_line(&st, cmd.arg, 0, out, sizeof out);
        (void)ftp_mlsx_line(&st, cmd.arg, true, out, sizeof out);
        (void)ftp_quote(cmd.arg, out, sizeof out);
    }
    memcpy(line, data, n);
    line[n] = '\0';
    (void)ftp_parse_user_line(line, &u);
    return 0;
}
