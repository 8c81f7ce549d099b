/* peer.c: a test plugin that first says who it thinks the client is
 * (ss_request_peer, and the port of ss_request_addr), then echoes. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "sockserv.h"

static int
handle(struct ss_request *req)
{
    const struct sockaddr *sa;
    socklen_t len;
    unsigned port = 0;
    char buf[1024];
    ssize_t n;

    sa = ss_request_addr(req, &len);
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        port = ntohs(((const struct sockaddr_in6 *)
                      (const void *)sa)->sin6_port);
    if (ss_printf(req, "peer %s port %u\n", ss_request_peer(req), port) < 0)
        return -1;
    while ((n = ss_read(req, buf, sizeof buf)) > 0)
        if (ss_write(req, buf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "peer",
    .description = "says the client's address, then echoes",
    .kinds = SS_STREAM,
    .handle = handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING |
             SS_MODE_EVENT,
};
