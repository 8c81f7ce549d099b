/* handler.c: what a handler struct must be, checked in one place for the
 * plugin loader, an embedding program and a section's type and mode. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>

#include "internal.h"

/* The modes of a handler that lists none (ABI 1, or modes = 0). */
#define MODES_DEFAULT (SS_MODE_SYNC | SS_MODE_THREADING | SS_MODE_FORKING)

/* The modes h runs in, reading only what its ABI and size say it has. */
static unsigned
handler_modes(const struct ss_handler *h)
{
    size_t size = h->size ? h->size : sizeof *h;

    if (h->abi < 2 ||
        size < offsetof(struct ss_handler, modes) + sizeof h->modes ||
        h->modes == 0)
        return MODES_DEFAULT;
    return h->modes;
}

/*
 * Checks h: its ABI, its handle hook, and (when given: kind not 0, mode
 * not NULL) the socket kind of type_name and the mode.  Returns
 * SS_CHECK_OK, or which key is wrong with the reason in err (no prefix).
 */
enum ss_check
ss_handler_check(const struct ss_handler *h, unsigned kind,
                 const char *type_name, const struct ss_mode *mode,
                 char *err, size_t errlen)
{
    const char *name = h->name ? h->name : "?";

    if (h->abi < 1 || h->abi > SOCKSERV_ABI) {
        snprintf(err, errlen, "built for ABI %d, sockserv has ABI %d",
                 h->abi, SOCKSERV_ABI);
        return SS_CHECK_HANDLER;
    }
    if (h->handle == NULL) {
        snprintf(err, errlen, "handler \"%s\" has no handle hook", name);
        return SS_CHECK_HANDLER;
    }
    if (kind != 0 && !(h->kinds & kind)) {
        snprintf(err, errlen, "handler \"%s\" does not support %s sockets "
                 "(type = %s)", name, kind == SS_STREAM ? "stream"
                                                        : "datagram",
                 type_name);
        return SS_CHECK_TYPE;
    }
    if (mode != NULL && !(handler_modes(h) & mode->bit)) {
        char macro[16];         /* SS_MODE_ + the name in capitals */
        char list[64];
        size_t i;

        for (i = 0; mode->name[i] != '\0' && i < sizeof macro - 1; i++)
            macro[i] = (char)toupper((unsigned char)mode->name[i]);
        macro[i] = '\0';
        if (!(MODES_DEFAULT & mode->bit) && h->abi < 2)
            snprintf(err, errlen, "handler \"%s\" was built for ABI %d, "
                     "which runs in sync, threading and forking mode only: "
                     "rebuild it for ABI %d and list SS_MODE_%s in .modes "
                     "for mode = %s", name, h->abi, SOCKSERV_ABI,
                     macro, mode->name);
        else
            snprintf(err, errlen, "handler \"%s\" does not run in mode = "
                     "%s (it runs in %s)", name, mode->name,
                     ss_mode_names(handler_modes(h), list, sizeof list));
        return SS_CHECK_MODE;
    }
    return SS_CHECK_OK;
}
