/* loader.c: load and check handler plugins. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

int
loader_path_add(struct loader_path *lp, const char *dir)
{
    char **d;

    if (dir == NULL || *dir == '\0')
        return 0;
    d = realloc(lp->dirs, (lp->ndirs + 1) * sizeof *d);
    if (d == NULL)
        return -1;
    lp->dirs = d;
    lp->dirs[lp->ndirs] = strdup(dir);
    if (lp->dirs[lp->ndirs] == NULL)
        return -1;
    lp->ndirs++;
    return 0;
}

int
loader_path_add_list(struct loader_path *lp, const char *list,
                     const char *base)
{
    char *copy, *dir, *save = NULL;
    int rc = 0;

    if (list == NULL)
        return 0;
    copy = strdup(list);
    if (copy == NULL)
        return -1;
    for (dir = strtok_r(copy, ":", &save); dir != NULL && rc == 0;
         dir = strtok_r(NULL, ":", &save)) {
        char buf[4096];

        if (base != NULL && dir[0] != '/') {
            if (snprintf(buf, sizeof buf, "%s/%s", base, dir) >=
                (int)sizeof buf) {
                errno = ENAMETOOLONG;
                rc = -1;
                break;
            }
            rc = loader_path_add(lp, buf);
        } else {
            rc = loader_path_add(lp, dir);
        }
    }
    free(copy);
    return rc;
}

void
loader_path_free(struct loader_path *lp)
{
    for (size_t i = 0; i < lp->ndirs; i++)
        free(lp->dirs[i]);
    free(lp->dirs);
    lp->dirs = NULL;
    lp->ndirs = 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

char *
loader_find(const struct loader_path *lp, const char *name, const char *base,
            char *err, size_t errlen)
{
    char buf[4096];
    size_t used;

    if (*name == '\0') {
        snprintf(err, errlen, "empty handler name");
        return NULL;
    }
    if (strchr(name, '/') != NULL || ends_with(name, ".so")) {
        if (name[0] == '/' || base == NULL)
            snprintf(buf, sizeof buf, "%s", name);
        else if (snprintf(buf, sizeof buf, "%s/%s", base, name) >=
                 (int)sizeof buf) {
            snprintf(err, errlen, "%s: path too long", name);
            return NULL;
        }
        return strdup(buf);
    }
    for (size_t i = 0; i < lp->ndirs; i++) {
        if (snprintf(buf, sizeof buf, "%s/%s.so", lp->dirs[i], name) >=
            (int)sizeof buf)
            continue;
        if (access(buf, F_OK) == 0)
            return strdup(buf);
    }
    used = (size_t)snprintf(err, errlen, "handler \"%s\": %s.so not found "
                            "in ", name, name);
    for (size_t i = 0; i < lp->ndirs && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s%s",
                                 i ? ":" : "", lp->dirs[i]);
    if (lp->ndirs == 0 && used < errlen)
        snprintf(err + used, errlen - used, "(no plugin directories)");
    return NULL;
}

const struct ss_handler *
loader_open(const char *path, unsigned kind, const char *type_name,
            char *err, size_t errlen)
{
    const struct ss_handler *h;
    void *dl;

    dlerror();
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *why = dlerror();

        snprintf(err, errlen, "%s: cannot load: %s", path,
                 why ? why : "unknown error");
        return NULL;
    }
    h = dlsym(dl, "sockserv_handler");
    if (h == NULL) {
        snprintf(err, errlen, "%s: no \"sockserv_handler\" symbol (not a "
                 "sockserv handler plugin?)", path);
        goto out_close;
    }
    if (h->abi != SOCKSERV_ABI) {
        snprintf(err, errlen, "%s: built for ABI %d, sockserv has ABI %d",
                 path, h->abi, SOCKSERV_ABI);
        goto out_close;
    }
    if (h->handle == NULL) {
        snprintf(err, errlen, "%s: handler \"%s\" has no handle hook", path,
                 h->name ? h->name : "?");
        goto out_close;
    }
    if (kind != 0 && !(h->kinds & kind)) {
        snprintf(err, errlen, "%s: handler \"%s\" does not support %s "
                 "sockets (type = %s)", path, h->name ? h->name : "?",
                 kind == SS_STREAM ? "stream" : "datagram", type_name);
        goto out_close;
    }
    return h;       /* plugins stay loaded until exit */
out_close:
    dlclose(dl);
    return NULL;
}
