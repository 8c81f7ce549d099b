/* daytime.c: RFC 867 daytime: the date and time in UTC as one line of text,
 * in xinetd's format ("05 DEC 2026 08:55:01 UTC\r\n"), on a stream (then
 * the connection closes) or as the reply to any datagram. */
#include <time.h>

#include "inetd.h"
#include "sockserv.h"

/*
 * Sends the current time.  The month names are spelt here, not taken from
 * the locale, and the zone is always UTC, so every server and every mode
 * says the same thing.  Returns 0 or -1.
 */
static int
daytime_handle(struct ss_request *req)
{
    static const char month[12][4] = {
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
        "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    };
    time_t now = time(NULL);
    struct tm tm;

    if (!inetd_may_reply(req))
        return 0;
    if (now == (time_t)-1 || gmtime_r(&now, &tm) == NULL)
        return -1;
    return ss_printf(req, "%02d %s %04d %02d:%02d:%02d UTC\r\n", tm.tm_mday,
                     month[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "daytime",
    .description = "RFC 867 daytime: \"05 DEC 2026 08:55:01 UTC\"",
    .kinds = SS_STREAM | SS_DGRAM,
    .handle = daytime_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
