/* mode_sync.c: one request at a time, in the serving thread (TCPServer). */
#include "internal.h"

static long
sync_max_requests(const struct ss_server *srv)
{
    (void)srv;
    return 1;
}

static bool
sync_wait_slot(struct ss_server *srv)
{
    return !atomic_load(&srv->stop);
}

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

const struct ss_mode ss_mode_sync = {
    .name = "sync",
    .bit = SS_MODE_SYNC,
    .max_requests = sync_max_requests,
    .wait_slot = sync_wait_slot,
    .process = sync_process,
    .wait = sync_wait,
};
