/* chatcl.c: what the chat integration tests share (chatcl.h). */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "chatcl.h"
#include "daemon.h"

static struct cl *clients[CL_MAX];
static int nclients;

double
cl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

struct cl *
cl_wrap(int fd)
{
    struct cl *c = calloc(1, sizeof *c);

    assert_non_null(c);
    assert_true(fd >= 0);
    assert_true(nclients < CL_MAX);
    c->fd = fd;
    c->cap = 256 * 1024;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
    clients[nclients++] = c;
    return c;
}

void
cl_free_all(void)
{
    for (int i = 0; i < nclients; i++) {
        cl_close(clients[i]);
        free(clients[i]->buf);
        free(clients[i]);
        clients[i] = NULL;
    }
    nclients = 0;
}

ssize_t
cl_fill(struct cl *c, int timeout_ms)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    ssize_t n;

    if (c->len == c->cap) {
        memmove(c->buf, c->buf + c->cap / 2, c->cap - c->cap / 2);
        c->len = c->cap - c->cap / 2;
    }
    if (poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    n = read(c->fd, c->buf + c->len, c->cap - c->len);
    if (n < 0 && errno == ECONNRESET)
        n = 0;
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

bool
cl_wait_seen(struct cl *c, const char *needle, int timeout_ms, char *seen,
             size_t seensize)
{
    double deadline = cl_now_ms() + timeout_ms;
    size_t nlen = strlen(needle);

    for (;;) {
        char *hit = memmem(c->buf, c->len, needle, nlen);

        if (hit != NULL) {
            size_t end = (size_t)(hit - c->buf) + nlen;

            if (seen != NULL && seensize > 0) {
                size_t k = end < seensize - 1 ? end : seensize - 1;

                memcpy(seen, c->buf, k);
                seen[k] = '\0';
            }
            memmove(c->buf, c->buf + end, c->len - end);
            c->len -= end;
            return true;
        }
        if (cl_fill(c, (int)(deadline - cl_now_ms())) <= 0) {
            if (seen != NULL && seensize > 0) {
                size_t k = c->len < seensize - 1 ? c->len : seensize - 1;

                memcpy(seen, c->buf, k);
                seen[k] = '\0';
            }
            return false;
        }
    }
}

void
cl_expect_within(struct cl *c, const char *needle, int timeout_ms)
{
    char seen[8192];

    if (!cl_wait_seen(c, needle, timeout_ms, seen, sizeof seen)) {
        fprintf(stderr, "expected \"%s\", got \"%s\"\n", needle, seen);
        fail();
    }
}

void
cl_expect(struct cl *c, const char *needle)
{
    cl_expect_within(c, needle, CL_WAIT_MS);
}

void
cl_send(struct cl *c, const char *s)
{
    size_t len = strlen(s);

    while (len > 0) {
        ssize_t n = write(c->fd, s, len);

        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

bool
cl_closed(struct cl *c, int timeout_ms)
{
    double deadline = cl_now_ms() + timeout_ms;

    for (;;) {
        ssize_t n;

        c->len = 0;
        n = cl_fill(c, (int)(deadline - cl_now_ms()));
        if (n == 0)
            return true;
        if (n < 0)
            return errno != ETIMEDOUT;
    }
}

void
cl_close(struct cl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

struct cl *
cl_at_prompt(const char *addr)
{
    struct cl *c = cl_wrap(ssd_connect(addr));

    cl_expect(c, "Please enter your nickname: ");
    return c;
}

struct cl *
cl_join(const char *addr, const char *nick)
{
    struct cl *c = cl_at_prompt(addr);
    char line[64], welcome[80];

    snprintf(line, sizeof line, "%s\n", nick);
    cl_send(c, line);
    snprintf(welcome, sizeof welcome, "* welcome, %s!", nick);
    cl_expect(c, welcome);
    cl_expect(c, "\n");
    return c;
}

void
expect_config_error(const char *ini, const char *text)
{
    const struct ssd_config_case c = { ini, text };

    assert_int_equal(ssd_config_errors(&c, 1), 0);
}
