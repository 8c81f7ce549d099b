/* dgram.c: the datagram transport (udp, unix-dgram): each packet is a
 * request; reads come from it, writes collect one reply sent at finish. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int
dgram_bind(struct ss_server *srv, const struct sockaddr *sa, socklen_t len)
{
    (void)sa;
    (void)len;
    srv->pkt = malloc((size_t)srv->set.max_packet_size + 1);
    return srv->pkt ? 0 : -1;
}

/*
 * Receives one datagram into the server's buffer.  A datagram larger than
 * max_packet_size is dropped and logged, never truncated.
 */
static struct ss_request *
dgram_get_request(struct ss_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct ss_request *req;
    ssize_t n;

    /* MSG_TRUNC: n is the datagram's whole length, so one byte of room
     * past max_packet_size tells an oversized one (udp and unix-dgram) */
    for (;;) {
        sslen = sizeof ss;
        n = recvfrom(srv->fd, srv->pkt, (size_t)srv->set.max_packet_size + 1,
                     MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)&ss, &sslen);
        if (n >= 0)
            break;
        if (errno != EINTR) {
            if (errno == EWOULDBLOCK || errno == ECONNREFUSED)
                errno = EAGAIN;     /* ICMP errors from earlier replies */
            return NULL;
        }
    }
    if (n > srv->set.max_packet_size) {
        char peer[SS_ADDRSTRLEN];

        ss_addr_format((struct sockaddr *)&ss, sslen, peer,
                       sizeof peer);
        ss_log(SS_LOG_WARNING, "%s: %s: datagram of %zd bytes is over "
               "max_packet_size %ld, dropped", srv->name, peer, n,
               srv->set.max_packet_size);
        errno = EAGAIN;
        return NULL;
    }
    if (sslen < sizeof(sa_family_t)) {
        /* an unbound Unix client: no name, and no way to reply */
        ss.ss_family = AF_UNIX;
        sslen = sizeof(sa_family_t);
    }
    req = ss_request_new(srv, -1, (struct sockaddr *)&ss, sslen);
    if (req == NULL)
        return NULL;
    req->rbuf = srv->pkt;
    req->rlen = (size_t)n;
    return req;
}

/* Gives the request its own copy of the packet (it outlives the buffer). */
int
ss_dgram_own_packet(struct ss_request *req)
{
    char *copy;

    if (req->fd >= 0 || req->rbuf_owned)
        return 0;
    copy = malloc(req->rlen ? req->rlen : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, req->rbuf, req->rlen);
    req->rbuf = copy;
    req->rbuf_owned = true;
    return 0;
}

static ssize_t
dgram_read(struct ss_request *req, void *buf, size_t len)
{
    (void)req;
    (void)buf;
    (void)len;
    return 0;                   /* ss_read served the packet already */
}

static int
dgram_write(struct ss_request *req, const void *buf, size_t len)
{
    size_t max = (size_t)req->srv->set.max_packet_size;

    if (len > max - req->wlen) {
        errno = EMSGSIZE;
        return -1;
    }
    if (req->wlen + len > req->wcap) {
        size_t cap = req->wcap ? req->wcap : 512;
        char *p;

        while (cap < req->wlen + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        p = realloc(req->wbuf, cap);
        if (p == NULL)
            return -1;
        req->wbuf = p;
        req->wcap = cap;
    }
    memcpy(req->wbuf + req->wlen, buf, len);
    req->wlen += len;
    return 0;
}

static int
dgram_poll(struct ss_request *req, int timeout_ms)
{
    (void)req;
    (void)timeout_ms;
    return 1;                   /* the packet is all there is */
}

int
ss_server_sendto(struct ss_server *srv, const struct sockaddr *to,
                 socklen_t tolen, const void *buf, size_t len)
{
    if (to->sa_family == AF_UNIX &&
        tolen <= offsetof(struct sockaddr_un, sun_path) + 1) {
        errno = EDESTADDRREQ;   /* an unbound Unix client: no way back */
        return -1;
    }
    /* never blocks: a Unix peer that does not read loses the datagram
     * (EAGAIN), as a network would, instead of stalling the server */
    for (;;) {
        ssize_t n = sendto(srv->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT, to,
                           tolen);

        if (n >= 0) {
            ss_stats_add(&srv->stats->bytes_out, (size_t)n);
            return 0;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* Sends the collected reply, as DatagramRequestHandler.finish does (an
 * empty reply is not sent). */
static void
dgram_finish(struct ss_request *req)
{
    if (req->wlen == 0)
        return;
    if (ss_server_sendto(req->srv, (struct sockaddr *)&req->addr,
                         req->addrlen, req->wbuf, req->wlen) < 0)
        ss_log(SS_LOG_DEBUG, "%s: %s: reply: %s", req->srv->name, ss_request_peer(req),
               strerror(errno));
}

const struct ss_transport ss_dgram_transport = {
    .kind = SS_DGRAM,
    .bind = dgram_bind,
    .get_request = dgram_get_request,
    .read = dgram_read,
    .write = dgram_write,
    .poll = dgram_poll,
    .finish = dgram_finish,
};
