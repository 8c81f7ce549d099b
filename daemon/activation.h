/* activation.h: the sockets systemd passes (socket activation). */
#ifndef SS_ACTIVATION_H
#define SS_ACTIVATION_H

#include <stdbool.h>
#include <stddef.h>

#include "sockserv.h"

struct inherited {
    int fd;
    char *name;                 /* LISTEN_FDNAMES' entry, "" if none */
    bool used;
};

struct activation {
    struct inherited *v;
    size_t n;
};

/*
 * Takes the sockets passed to this process (LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES, as sd_listen_fds_with_names(3) documents) and removes
 * the variables, so no child inherits them.  0 (none is fine), or -1
 * after logging why.
 */
int activation_take(struct activation *);
/*
 * The inherited socket for srv: the one named after its section, else an
 * unnamed one bound to its address.  Adopts it (0), finds none (1), or
 * fails (-1, the server's error set).
 */
int activation_adopt(struct activation *, struct ss_server *);
/* Closes (with a warning) what no section took, and frees the list. */
void activation_done(struct activation *);

#endif
