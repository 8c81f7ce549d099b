/* fake_time.c: not a handler but an LD_PRELOAD shim for test_classics:
 * time() answers SS_FAKE_TIME (seconds since 1970) when it is set, so that
 * daytime and time can be checked at chosen instants, 2036's wrap among
 * them. */
#include <stdlib.h>
#include <time.h>

__attribute__((visibility("default"))) time_t
time(time_t *out)
{
    const char *s = getenv("SS_FAKE_TIME");
    struct timespec ts;
    time_t t = (time_t)-1;

    if (s != NULL)
        t = (time_t)strtoll(s, NULL, 10);
    else if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        t = ts.tv_sec;
    if (out != NULL)
        *out = t;
    return t;
}
