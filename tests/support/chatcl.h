/* chatcl.h: what the chat integration tests share: clients of a
 * line-based room (a socket or pipe with a receive buffer; wait for text,
 * send text, see the close) and the check of a refused configuration.
 * Failures are cmocka failures of the calling test. */
#ifndef SS_TEST_CHATCL_H
#define SS_TEST_CHATCL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CL_WAIT_MS 5000         /* cl_expect's bound */
#define CL_MAX 256              /* clients a test may wrap */

struct cl {
    int fd;
    char *buf;
    size_t len, cap;
};

/* CLOCK_MONOTONIC in milliseconds. */
double cl_now_ms(void);

/* A client on fd (asserts fd >= 0), kept until cl_free_all. */
struct cl *cl_wrap(int fd);
/* Closes and frees every client cl_wrap made (a test's teardown). */
void cl_free_all(void);

/* Reads what is there within timeout_ms into c's buffer (dropping its
 * older half when full).  Returns bytes read, 0 at end or reset, -1 on
 * error (ETIMEDOUT: nothing came). */
ssize_t cl_fill(struct cl *c, int timeout_ms);
/*
 * Waits until c has received needle.  Consumes the text through it; seen
 * (if not NULL) gets that text as a C string (on a timeout: what did
 * come).  Returns true if it came within timeout_ms.
 */
bool cl_wait_seen(struct cl *c, const char *needle, int timeout_ms,
                  char *seen, size_t seensize);
/* cl_wait_seen, or the test fails showing what came instead. */
void cl_expect_within(struct cl *c, const char *needle, int timeout_ms);
/* cl_expect_within CL_WAIT_MS. */
void cl_expect(struct cl *c, const char *needle);
/* Writes all of s (with write(2): c may be a pipe), or the test fails. */
void cl_send(struct cl *c, const char *s);
/* True if the peer closes c (EOF or reset) within timeout_ms; drops what
 * came before. */
bool cl_closed(struct cl *c, int timeout_ms);
/* Closes c's descriptor (c itself stays until cl_free_all). */
void cl_close(struct cl *c);

/* Connects to the chat room at addr (ssd_connect's form) and waits for
 * the default nickname prompt. */
struct cl *cl_at_prompt(const char *addr);
/* cl_at_prompt, then joins as nick: through the end of the welcome line. */
struct cl *cl_join(const char *addr, const char *nick);

/* ---- configuration ------------------------------------------------------ */

/* The daemon refuses ini (exit status 2) with text in its output; else the
 * test fails, showing the status and the output. */
void expect_config_error(const char *ini, const char *text);

#endif
