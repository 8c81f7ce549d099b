/* mode_sync.c: one request at a time, in the serving thread (TCPServer). */
#include "internal.h"

static void
sync_process(struct ss_server *srv, struct ss_request *req)
{
    (void)srv;
    ss_request_run(req);
}

static void
sync_wait(struct ss_server *srv, double deadline)
{
    ss_server_wait_idle(srv, deadline);
}

static void
sync_stop(struct ss_server *srv)
{
    (void)srv;
}

const struct ss_mode ss_mode_sync = {
    .name = "sync",
    .process = sync_process,
    .wait = sync_wait,
    .stop = sync_stop,
};
