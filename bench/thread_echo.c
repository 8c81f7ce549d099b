/* thread_echo.c: the plainest C blocking echo server, a thread per connection. */
/*
 * Usage: thread_echo PORT.  Binds 127.0.0.1:PORT (0 = any), prints the
 * port, then accepts forever: each connection gets a detached thread with
 * the default stack that reads and writes back until EOF.  No features.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void *
echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    ssize_t n, w, off;

    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (off = 0; off < n; off += w)
            if ((w = write(fd, buf + off, n - off)) < 0)
                goto out;
out:
    close(fd);
    return NULL;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof sin;
    pthread_attr_t attr;
    pthread_t t;
    int lfd, fd, one = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: thread_echo PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sin.sin_port = htons(atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
        perror("thread_echo");
        return 1;
    }
    printf("%d\n", ntohs(sin.sin_port));
    fflush(stdout);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(10000);
            continue;
        }
        if (pthread_create(&t, &attr, echo, (void *)(intptr_t)fd) != 0)
            close(fd);
    }
}
