/* notify.h: tell systemd (sd_notify's protocol) how the daemon is doing. */
#ifndef SS_NOTIFY_H
#define SS_NOTIFY_H

#include <stddef.h>

/* Sends state ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET.  0 when sent or
 * when there is no $NOTIFY_SOCKET (not run by systemd), -1 (errno). */
int daemon_notify(const char *state);
/* READY=1 and STATUS=: every server listens (at start, after a reload). */
int daemon_notify_ready(size_t nservers);
/* RELOADING=1 with MONOTONIC_USEC= (systemd 253's Type=notify-reload
 * wants it), STATUS=: a reload begins; daemon_notify_ready ends it. */
int daemon_notify_reloading(void);
/* STOPPING=1, STATUS=: shutdown begins. */
int daemon_notify_stopping(void);

#endif
