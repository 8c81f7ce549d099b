/* loader.c: load and check handler plugins. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
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

/*
 * A plugin file as loaded: one generation.  A file replaced at the same
 * path is a new generation: dlopen would hand back the loaded object for
 * a path it has open, so a new file is loaded from a copy of its own (a
 * memfd), and each generation is unloaded when its last server is gone.
 * The daemon's main thread alone loads and unloads.
 */
struct plugin {
    struct plugin *next;
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    void *dl;
    int memfd;                  /* the copy's, or -1 */
    int refs;
};

static struct plugin *plugins;

static bool
same_file(const struct plugin *p, const struct stat *st)
{
    return p->dev == st->st_dev && p->ino == st->st_ino &&
           p->size == st->st_size &&
           p->mtime.tv_sec == st->st_mtim.tv_sec &&
           p->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* A copy of path in a memfd, for dlopen to see a new object.  -1. */
static int
copy_to_memfd(const char *path)
{
    int in = open(path, O_RDONLY | O_CLOEXEC), fd;
    char buf[65536];
    ssize_t n;

    if (in < 0)
        return -1;
    fd = memfd_create("sockserv-plugin", MFD_CLOEXEC);
    while (fd >= 0 && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(fd, buf, (size_t)n) != n) {
            close(fd);
            fd = -1;
        }
    }
    close(in);
    return fd;
}

/* Opens path's current file: the generation already loaded, or a new
 * one.  NULL with the reason in err. */
static struct plugin *
generation(const char *path, char *err, size_t errlen)
{
    struct plugin *p, *g;
    struct stat st;
    bool older = false;
    char fdpath[64];

    if (stat(path, &st) < 0) {
        const char *why;
        void *dl;

        dlerror();              /* dlopen's own words for a missing file */
        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        why = dl == NULL ? dlerror() : NULL;
        snprintf(err, errlen, "%s: cannot load: %s", path,
                 why ? why : strerror(ENOENT));
        if (dl != NULL)
            dlclose(dl);
        return NULL;
    }
    for (p = plugins; p != NULL; p = p->next) {
        if (strcmp(p->path, path) != 0)
            continue;
        if (same_file(p, &st)) {
            p->refs++;
            return p;
        }
        older = true;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL || (g->path = strdup(path)) == NULL) {
        free(g);
        snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
        return NULL;
    }
    g->memfd = -1;
    dlerror();
    if (older) {
        g->memfd = copy_to_memfd(path);
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", g->memfd);
        g->dl = g->memfd < 0 ? NULL : dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    } else {
        g->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    if (g->dl == NULL) {
        const char *why = g->memfd < 0 && older ? strerror(errno)
                                                : dlerror();

        snprintf(err, errlen, "%s: cannot load: %s", path,
                 why ? why : "unknown error");
        if (g->memfd >= 0)
            close(g->memfd);
        free(g->path);
        free(g);
        return NULL;
    }
    g->dev = st.st_dev;
    g->ino = st.st_ino;
    g->size = st.st_size;
    g->mtime = st.st_mtim;
    g->refs = 1;
    g->next = plugins;
    plugins = g;
    return g;
}

void
loader_close(void *gen)
{
    struct plugin **pp, *g = gen;

    if (g == NULL || --g->refs > 0)
        return;
    for (pp = &plugins; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    dlclose(g->dl);
    if (g->memfd >= 0)
        close(g->memfd);
    free(g->path);
    free(g);
}

int
loader_identity(const void *gen, char *buf, size_t size)
{
    const struct plugin *g = gen;

    return snprintf(buf, size, "%s|%lu|%lu|%lld|%lld.%09ld", g->path,
                    (unsigned long)g->dev, (unsigned long)g->ino,
                    (long long)g->size, (long long)g->mtime.tv_sec,
                    g->mtime.tv_nsec);
}

const struct ss_handler *
loader_open(const char *path, unsigned kind, const char *type_name,
            void **gen, char *err, size_t errlen)
{
    const struct ss_handler *h;
    struct plugin *g = generation(path, err, errlen);
    char reason[512];

    *gen = NULL;
    if (g == NULL)
        return NULL;
    h = dlsym(g->dl, "sockserv_handler");
    if (h == NULL) {
        snprintf(err, errlen, "%s: no \"sockserv_handler\" symbol (not a "
                 "sockserv handler plugin?)", path);
        goto out_close;
    }
    if (ss_handler_check(h, kind, type_name, NULL, reason, sizeof reason) !=
        SS_CHECK_OK) {
        snprintf(err, errlen, "%s: %s", path, reason);
        goto out_close;
    }
    *gen = g;
    return h;
out_close:
    loader_close(g);
    return NULL;
}
