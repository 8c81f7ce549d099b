/* control.h: the daemon's control socket ([global] control = PATH), which
 * sockservctl talks to: status, reload, stop. */
#ifndef SS_CONTROL_H
#define SS_CONTROL_H

#include "config.h"

/*
 * Binds [global] control (relative to the INI file's directory), mode
 * 0600, owned by [global] user when there is one.  Does nothing without
 * the key.  Returns 0, or -1 after logging why.  Before privileges drop.
 */
int control_open(const struct conf *, const struct conf_section *global);
/* Serves the socket from a thread of its own (signals blocked in it).
 * 0, or -1 after logging why.  In the process that keeps serving. */
int control_start(void);
/* Stops the thread, closes and removes the socket. */
void control_close(void);

/*
 * `sockservctl reload`: asks the daemon to reload its configuration as
 * SIGHUP does.  Called from the control thread; it must only ask (a flag
 * and a wakeup of the main thread), not reload there.  control.c has a
 * weak stand-in that logs "reload requested"; the daemon's reload
 * defines the real one.
 */
void daemon_reload_request(void);

/* The protocol, one request per connection: the client sends a line
 * ("status", "status json", "reload", "reload json", "stop", "stop json"),
 * the daemon answers "ok\n" or "error\n", then the text, then closes. */
#define CONTROL_MAX_REQUEST 256

#endif
