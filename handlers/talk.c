/* talk.c: a two-person walkie-talkie: pairs clients, relays between them. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sockserv.h"

#define TALK_PEER_MAX   128             /* "[v6]:port" or a socket path */
#define TALK_BUF        16384           /* one ss_read */
#define TALK_EARLY_MAX  16384           /* bytes a waiter may send early */
#define TALK_WAIT_DEF   300.0           /* wait_timeout default, seconds */
#define TALK_BACKLOG_DEF (1024L * 1024) /* max_backlog default, bytes */
#define TALK_SLICE_MS   250             /* a waiter's poll, to see pairing */

/* Why a pair ends. */
enum talk_end { TALK_BYE, TALK_LEFT, TALK_NOT_READING };

/* Where a connection stands; changed only under the server's lock. */
enum talk_state { TALK_NEW, TALK_QUEUED, TALK_PAIRED, TALK_DROPPED };

/*
 * Two paired connections.  Each side's thread owns one reference and one
 * hold on the other side's request (it ss_send()s there); the last one to
 * leave frees the pair.
 */
struct talk_pair {
    struct ss_request *side[2];         /* [0] waited, [1] arrived */
    char peer[2][TALK_PEER_MAX];
    bool ended;                         /* under the lock */
    int refs;                           /* under the lock */
};

/* One connection, from handle's start to its end. */
struct talk_conn {
    struct ss_request *req;
    struct talk_conn *next;             /* in the waiting queue */
    enum talk_state state;
    struct talk_pair *pair;
    int side;                           /* its index in pair->side */
    char peer[TALK_PEER_MAX];
    size_t nearly;                      /* bytes sent before pairing */
    char early[TALK_EARLY_MAX];
    char buf[TALK_BUF];
};

/* The server's state: the waiting queue, oldest first. */
struct talk {
    pthread_mutex_t lock;
    struct talk_conn *head, *tail;
    double wait_timeout;                /* seconds, 0: no limit */
    const char *name;                   /* the server's (section's) name */
    unsigned long unnamed;              /* unix clients named so far */
};

/*
 * Returns true if msg[0..len) is the word bye alone, in any case, with an
 * optional line ending (LF, CRLF or CR).
 */
static bool
talk_is_bye(const char *msg, size_t len)
{
    static const char bye[] = "bye";

    if (len > 0 && msg[len - 1] == '\n')
        len--;
    if (len > 0 && msg[len - 1] == '\r')
        len--;
    if (len != 3)
        return false;
    for (size_t i = 0; i < 3; i++)
        if ((msg[i] | 0x20) != bye[i])
            return false;
    return true;
}

/*
 * Finds a bye message in one read: the read itself or one of its lines
 * (what follows a newline) may be it.  Returns its offset, so the bytes
 * before it can still be relayed, or -1.  A client that sends without
 * newlines sends one message per read, so the read is the message.
 */
static long
talk_find_bye(const char *buf, size_t len)
{
    size_t start = 0;

    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) + 1 : len;

        if (talk_is_bye(buf + start, end - start))
            return (long)start;
        start = end;
    }
    return -1;
}

/*
 * Names c by its client's address; unbound Unix clients, which all share
 * the address "unix:unnamed", get a number so logs and partners can tell
 * them apart.
 */
static void
talk_name(struct talk *t, struct talk_conn *c, const char *peer)
{
    unsigned long n;

    if (peer && *peer && strcmp(peer, "unix:unnamed") != 0) {
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        return;
    }
    pthread_mutex_lock(&t->lock);
    n = ++t->unnamed;
    pthread_mutex_unlock(&t->lock);
    snprintf(c->peer, sizeof c->peer, "unix:unnamed#%lu", n);
}

/* Milliseconds from now until deadline, 0 when it has passed. */
static int
talk_ms_left(const struct timespec *deadline)
{
    struct timespec now;
    long long ns, ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000 +
         (deadline->tv_nsec - now.tv_nsec);
    if (ns <= 0)
        return 0;
    ms = (ns + 999999) / 1000000;   /* up: 0 only once the deadline passed */
    return ms > 86400000 ? 86400000 : (int)ms;
}

/* Removes c from the queue, if it is there.  Call with the lock held. */
static void
talk_dequeue(struct talk *t, struct talk_conn *c)
{
    struct talk_conn **pp;

    for (pp = &t->head; *pp; pp = &(*pp)->next) {
        if (*pp != c)
            continue;
        *pp = c->next;
        if (t->tail == c) {
            struct talk_conn *last = t->head;

            while (last && last->next)
                last = last->next;
            t->tail = last;
        }
        c->next = NULL;
        return;
    }
}

/*
 * Pairs c with the oldest waiting client, or queues it.  The waiter is
 * told, first of all, who it talks to and that it speaks first; c then
 * gets what the waiter sent while it waited.  A waiter that cannot be told
 * is gone: it is dropped and the next one tried.  Returns 1 when paired,
 * 0 when queued, -1 when out of memory.
 */
static int
talk_arrive(struct talk *t, struct talk_conn *c)
{
    struct talk_pair *p = calloc(1, sizeof *p);
    struct talk_conn *w;

    if (!p)
        return -1;
    pthread_mutex_lock(&t->lock);
    while ((w = t->head) != NULL) {
        t->head = w->next;
        if (!t->head)
            t->tail = NULL;
        w->next = NULL;
        /* ss_send never blocks, so it may run under the lock. */
        if (ss_sendf(w->req, "%s: connected to %s, you speak first\n",
                     t->name, c->peer) == 0)
            break;
        w->state = TALK_DROPPED;        /* its reads end: it returns */
        ss_log(SS_LOG_INFO, "%s: %s left the queue (gone when %s came)",
               t->name, w->peer, c->peer);
    }
    if (!w) {
        c->state = TALK_QUEUED;
        if (t->tail)
            t->tail->next = c;
        else
            t->head = c;
        t->tail = c;
        pthread_mutex_unlock(&t->lock);
        free(p);
        ss_log(SS_LOG_INFO, "%s: %s waits for a partner", t->name, c->peer);
        return 0;
    }
    p->side[0] = w->req;
    p->side[1] = c->req;
    memcpy(p->peer[0], w->peer, sizeof p->peer[0]);
    memcpy(p->peer[1], c->peer, sizeof p->peer[1]);
    p->refs = 2;
    ss_request_hold(w->req);            /* for c's thread */
    ss_request_hold(c->req);            /* for w's thread */
    w->pair = c->pair = p;
    w->side = 0;
    c->side = 1;
    w->state = c->state = TALK_PAIRED;
    /* If c is already gone, its first read ends the pair and tells w. */
    if (w->nearly > 0)
        (void)ss_send(c->req, w->early, w->nearly);
    w->nearly = 0;
    pthread_mutex_unlock(&t->lock);
    ss_log(SS_LOG_INFO, "%s: paired %s with %s", t->name, p->peer[0],
           p->peer[1]);
    return 1;
}

/*
 * Ends c's pair, once: the first side to call this tells the other side
 * why and closes it; later calls do nothing.
 */
static void
talk_end(struct talk *t, struct talk_conn *c, enum talk_end why)
{
    struct talk_pair *p = c->pair;
    struct ss_request *other;
    const char *me, *them;
    bool ended;

    pthread_mutex_lock(&t->lock);
    ended = p->ended;
    p->ended = true;
    pthread_mutex_unlock(&t->lock);
    if (ended)
        return;
    other = p->side[!c->side];
    me = p->peer[c->side];
    them = p->peer[!c->side];
    switch (why) {
    case TALK_BYE:
    case TALK_LEFT:
        ss_sendf(other, "%s: %s %s\n", t->name, me,
                 why == TALK_BYE ? "said bye" : "left");
        ss_request_close(other, true);
        ss_log(SS_LOG_INFO, "%s: %s <-> %s ended: %s %s", t->name,
               p->peer[0], p->peer[1], me,
               why == TALK_BYE ? "said bye" : "left");
        break;
    case TALK_NOT_READING:
        ss_sendf(c->req, "%s: %s is not reading, closing\n", t->name, them);
        ss_request_close(other, false);
        ss_request_close(c->req, true);
        ss_log(SS_LOG_WARNING, "%s: %s <-> %s ended: %s is not reading "
               "(backlog full)", t->name, p->peer[0], p->peer[1], them);
        break;
    }
}

/*
 * Takes what a waiting client sent before it was paired: kept for the
 * partner, or, if it is bye or too much, the end of the wait.  Call with
 * the lock held.  Returns 0, or -1 when c must leave (the reason is
 * written into note).
 */
static int
talk_keep_early(struct talk *t, struct talk_conn *c, size_t len, bool bye,
                const char **note)
{
    if (bye) {
        *note = "said bye while waiting";
        goto out_leave;
    }
    if (len > sizeof c->early - c->nearly) {
        *note = "sent too much while waiting";
        goto out_leave;
    }
    memcpy(c->early + c->nearly, c->buf, len);
    c->nearly += len;
    return 0;
out_leave:
    talk_dequeue(t, c);
    c->state = TALK_DROPPED;
    return -1;
}

/*
 * Leaves the queue on the client's end or error.  Returns true if c was
 * still waiting (then it is done), false if it was paired meanwhile.
 */
static bool
talk_leave_queue(struct talk *t, struct talk_conn *c, const char *why)
{
    enum talk_state st;

    pthread_mutex_lock(&t->lock);
    st = c->state;
    if (st == TALK_QUEUED) {
        talk_dequeue(t, c);
        c->state = TALK_DROPPED;
    }
    pthread_mutex_unlock(&t->lock);
    if (st == TALK_PAIRED)
        return false;
    if (st == TALK_QUEUED)
        ss_log(SS_LOG_INFO, "%s: %s left the queue (%s)", t->name, c->peer,
               why);
    return true;
}

/*
 * Ends c's wait if it is still queued: it is told and closed.  Returns
 * true if so, false if it was paired or dropped meanwhile.
 */
static bool
talk_time_out(struct talk *t, struct talk_conn *c)
{
    enum talk_state st;

    pthread_mutex_lock(&t->lock);
    st = c->state;
    if (st == TALK_QUEUED) {
        talk_dequeue(t, c);
        c->state = TALK_DROPPED;
    }
    pthread_mutex_unlock(&t->lock);
    if (st != TALK_QUEUED)
        return false;
    ss_log(SS_LOG_INFO, "%s: %s waited %g s, nobody came", t->name, c->peer,
           t->wait_timeout);
    ss_sendf(c->req, "%s: nobody came within %g s, goodbye\n", t->name,
             t->wait_timeout);
    ss_request_close(c->req, true);
    return true;
}

/*
 * Waits for c's client to have bytes, as long as c may wait.  While c is
 * queued only wait_timeout applies (the server's silence timeout does not:
 * waiting is silent), so it polls in slices and notices being paired
 * within one; once paired, ss_read and its timeout take over.  Returns 1
 * when ss_read may be called, 0 when c was dropped or timed out (and is
 * done), -1 on error.
 */
static int
talk_poll(struct talk *t, struct talk_conn *c, const struct timespec *dl)
{
    for (;;) {
        enum talk_state st;
        int ms, r;

        pthread_mutex_lock(&t->lock);
        st = c->state;
        pthread_mutex_unlock(&t->lock);
        if (st == TALK_DROPPED)
            return 0;
        if (st == TALK_PAIRED)
            return 1;
        ms = TALK_SLICE_MS;
        if (t->wait_timeout > 0) {
            ms = talk_ms_left(dl);
            if (ms == 0 && talk_time_out(t, c))
                return 0;
            if (ms > TALK_SLICE_MS)
                ms = TALK_SLICE_MS;
        }
        r = ss_poll(c->req, ms);
        if (r != 0)
            return r;
    }
}

/*
 * Relays c's client to its partner until bye, an end, or the pair ends.
 * While c waits, what it sends is kept for the partner to come.  Returns
 * 0, or the errno of a failed read (ETIMEDOUT: silent for the server's
 * timeout) for the core to report.
 */
static int
talk_relay(struct talk *t, struct talk_conn *c)
{
    struct timespec dl;
    time_t secs = (time_t)t->wait_timeout;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += secs;
    dl.tv_nsec += (long)((t->wait_timeout - (double)secs) * 1e9);
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    for (;;) {
        const char *note = NULL;
        struct talk_pair *p;
        ssize_t n;
        long bye;
        size_t len;
        int r;

        r = talk_poll(t, c, &dl);
        if (r == 0)
            return 0;
        n = r < 0 ? -1 : ss_read(c->req, c->buf, sizeof c->buf);
        if (n <= 0) {
            int err = n < 0 ? errno : 0;

            if (!talk_leave_queue(t, c, err ? strerror(err) : "closed"))
                talk_end(t, c, TALK_LEFT);
            return err;
        }
        bye = talk_find_bye(c->buf, (size_t)n);
        len = bye >= 0 ? (size_t)bye : (size_t)n;

        pthread_mutex_lock(&t->lock);
        if (c->state == TALK_QUEUED) {
            r = talk_keep_early(t, c, len, bye >= 0, &note);
            pthread_mutex_unlock(&t->lock);
            if (r == 0) {
                ss_log(SS_LOG_DEBUG, "%s: %s sent %zu bytes while waiting, "
                       "kept for its partner", t->name, c->peer, len);
                continue;
            }
            ss_log(SS_LOG_INFO, "%s: %s left the queue (%s)", t->name,
                   c->peer, note);
            if (bye < 0) {
                ss_sendf(c->req, "%s: too much input before a partner "
                         "came, goodbye\n", t->name);
                ss_request_close(c->req, true);
            }
            return 0;
        }
        p = c->state == TALK_PAIRED && !c->pair->ended ? c->pair : NULL;
        pthread_mutex_unlock(&t->lock);
        if (!p)
            return 0;                   /* the other side ended it */
        if (len > 0 && ss_send(p->side[!c->side], c->buf, len) < 0) {
            talk_end(t, c, TALK_NOT_READING);
            return 0;
        }
        if (bye >= 0) {
            talk_end(t, c, TALK_BYE);
            return 0;
        }
    }
}

/* Drops c's share of its pair: its reference and its hold. */
static void
talk_leave_pair(struct talk *t, struct talk_conn *c)
{
    struct talk_pair *p = c->pair;
    struct ss_request *other;
    bool last;

    if (!p)
        return;
    other = p->side[!c->side];
    pthread_mutex_lock(&t->lock);
    p->ended = true;
    last = --p->refs == 0;
    c->pair = NULL;
    pthread_mutex_unlock(&t->lock);
    ss_request_release(other);
    if (last)
        free(p);
}

/*
 * One client, from arrival to the end of its conversation: pairs or
 * queues it, relays, then lets go of its pair.  Returns -1 (errno set)
 * when its connection failed, so the core reports it, else 0.
 */
static int
talk_handle(struct ss_request *req)
{
    struct talk *t = ss_request_state(req);
    struct talk_conn *c = calloc(1, sizeof *c);
    int r, err = 0;

    if (!c)
        return -1;
    c->req = req;
    talk_name(t, c, ss_request_peer(req));
    r = talk_arrive(t, c);
    if (r >= 0)
        err = talk_relay(t, c);
    pthread_mutex_lock(&t->lock);
    if (c->state == TALK_QUEUED)        /* never left by talk_relay */
        talk_dequeue(t, c);
    c->state = TALK_DROPPED;
    pthread_mutex_unlock(&t->lock);
    talk_leave_pair(t, c);
    free(c);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return r < 0 ? -1 : 0;
}

/*
 * Reads the options.  The modes in which clients can meet are in .modes:
 * sync serves one client at a time and forking puts each client in a
 * process of its own, so only threading and event can pair them.
 */
static int
talk_init(struct ss_server *s, void **state)
{
    struct talk *t;
    double wait;
    long backlog;
    int rc = 0;

    /* Every option is read, so each bad one is reported. */
    if (ss_option_double(s, "wait_timeout", TALK_WAIT_DEF, 0, 86400,
                         &wait) < 0)
        rc = -1;
    if (ss_option_long(s, "max_backlog", TALK_BACKLOG_DEF, 1024,
                       1024L * 1024 * 1024, &backlog) < 0)
        rc = -1;
    /* workers = N: two clients in different processes would never meet */
    if (ss_server_workers(s) > 1)
        rc = ss_server_errorf(s, "workers", "talk pairs clients within one "
                              "process; workers = %ld would leave clients "
                              "of different workers waiting: use "
                              "workers = 1", ss_server_workers(s));
    if (rc < 0)
        return -1;
    t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return -1;
    }
    t->wait_timeout = wait;
    t->name = ss_server_name(s);
    ss_server_set_max_backlog(s, (size_t)backlog);
    *state = t;
    return 0;
}

/* Frees the server's state; every request has ended by now. */
static void
talk_fini(void *state)
{
    struct talk *t = state;

    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

SOCKSERV_HANDLER = {
    .abi = SOCKSERV_ABI,
    .name = "talk",
    .description = "a two-person walkie-talkie: pairs clients in arrival "
                   "order and relays between them",
    .kinds = SS_STREAM,
    .init = talk_init,
    .fini = talk_fini,
    .handle = talk_handle,
    .size = sizeof(struct ss_handler),
    .modes = SS_MODE_THREADING | SS_MODE_EVENT,
};
