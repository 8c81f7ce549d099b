/* loader.h: find, open and check handler plugins. */
#ifndef SS_LOADER_H
#define SS_LOADER_H

#include <stddef.h>

#include "sockserv.h"

struct loader_path {
    char **dirs;
    size_t ndirs;
};

int loader_path_add(struct loader_path *, const char *dir);
/* Adds each directory of a colon-separated list; relative ones are taken
 * relative to base (NULL: as they are). */
int loader_path_add_list(struct loader_path *, const char *list,
                         const char *base);
void loader_path_free(struct loader_path *);

/*
 * Resolves `handler = NAME`: a value with a '/' or ending in ".so" is a
 * file (relative to base); otherwise NAME.so in the first directory that
 * has it.  Returns a malloc'd path, or NULL with the reason in err.
 */
char *loader_find(const struct loader_path *, const char *name,
                  const char *base, char *err, size_t errlen);

/*
 * Opens a plugin and checks it: the sockserv_handler symbol, the ABI
 * version, a handle hook, and (when kind is not 0) the socket kind
 * (ss_handler_check).  A file replaced since it was loaded is loaded
 * again, as a new generation; *gen is the generation, for loader_close.
 * Returns the handler, or NULL with "FILE: reason" in err.
 */
const struct ss_handler *loader_open(const char *path, unsigned kind,
                                     const char *type_name, void **gen,
                                     char *err, size_t errlen);
/* Lets go of a generation: unloaded with the last that held it. */
void loader_close(void *gen);
/* "path|dev|ino|size|mtime" of a generation: what a reload compares. */
int loader_identity(const void *gen, char *buf, size_t size);

#endif
