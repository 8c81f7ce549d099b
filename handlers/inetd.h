/* inetd.h: what daytime, time and chargen share: no datagram reply to a
 * source port below 1024. */
#ifndef SS_HANDLERS_INETD_H
#define SS_HANDLERS_INETD_H

#include <netinet/in.h>
#include <stdbool.h>

#include "sockserv.h"

/*
 * True when the request may be answered.  A datagram from a port below
 * 1024 may be another service (echo, chargen, ...) whose source was
 * forged: answering it could start a loop between two servers, so, as
 * inetd does, it gets no reply.  The drop is logged at debug level only,
 * so that a flood of forged datagrams cannot flood the log.  Streams, and
 * Unix datagram clients (no port), are always answered.
 */
static inline bool
inetd_may_reply(struct ss_request *req)
{
    socklen_t len;
    const struct sockaddr *sa = ss_request_addr(req, &len);
    unsigned port;

    if (ss_request_kind(req) != SS_DGRAM)
        return true;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    else
        return true;
    if (port >= 1024)
        return true;
    ss_log(SS_LOG_DEBUG, "%s: %s: source port %u is below 1024, datagram "
           "dropped without reply", ss_server_name(ss_request_server(req)),
           ss_request_peer(req), port);
    return false;
}

#endif
