/* fuzz_config.c: libFuzzer target: the INI reader, then its keys applied to
 * a server as the daemon applies them (ss_server_set, ss_server_init). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sockserv.h"

/* A handler that reads options of each kind, as a plugin's init does. */
static int
fz_init(struct ss_server *s, void **state)
{
    long n;
    double d;
    bool b;

    *state = NULL;
    (void)ss_option(s, "text");
    if (ss_option_long(s, "count", 3, -5, 1000, &n) < 0 ||
        ss_option_double(s, "ratio", 0.5, 0, 1e6, &d) < 0 ||
        ss_option_bool(s, "flag", false, &b) < 0)
        return -1;
    if (n == 999)
        return ss_server_errorf(s, "count", "refused %ld", n);
    *state = malloc(16);
    return *state != NULL ? 0 : -1;
}

static void
fz_fini(void *state)
{
    free(state);
}

static int
fz_handle(struct ss_request *req)
{
    (void)req;
    return 0;
}

static const struct ss_handler fz_handler = {
    .abi = SOCKSERV_ABI, .name = "fuzz", .kinds = SS_STREAM | SS_DGRAM,
    .init = fz_init, .fini = fz_fini, .handle = fz_handle,
};

static FILE *devnull;

static void
on_error(void *arg, int line, const char *msg)
{
    struct conf *conf = arg;

    conf_error(conf, line, "%s", msg);
}

/* Builds, initialises and frees one server from a section, as main.c. */
static void
apply(struct conf *conf, const struct conf_section *sec)
{
    struct ss_server *srv = ss_server_new(sec->name, &fz_handler);
    int failed = 0;

    if (srv == NULL)
        return;
    ss_server_set_error_fn(srv, on_error, conf);
    ss_server_set_line(srv, sec->line);
    for (size_t i = 0; i < sec->nkv; i++) {
        const struct conf_kv *kv = &sec->kv[i];

        if (strcmp(kv->key, "handler") == 0)
            continue;
        if (ss_server_set(srv, kv->key, kv->value, kv->line) < 0)
            failed = 1;
    }
    if (!failed && ss_server_init(srv) == 0) {
        (void)ss_server_type(srv);
        (void)ss_server_mode(srv);
        (void)ss_server_kind(srv);
        (void)ss_server_shutdown_timeout(srv);
    } else {
        (void)ss_server_error(srv, NULL);
        (void)ss_server_error_is_config(srv);
    }
    ss_server_free(srv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf conf;
    char *text;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        ss_log_set_level((enum ss_log_level)(SS_LOG_ERROR + 1));
    }
    if (size > 1 << 16)
        return -1;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    memset(&conf, 0, sizeof conf);
    /* the daemon stops at a file with errors, before any server */
    if (conf_load_string(&conf, "fuzz.ini", text, devnull) < 0)
        goto out;
    (void)conf_find(&conf, "global");
    for (size_t i = 0; i < conf.nsec; i++) {
        const struct conf_section *sec = &conf.sec[i];

        (void)conf_get(sec, "type");
        if (strcmp(sec->name, "global") != 0)
            apply(&conf, sec);
    }
out:
    conf_free(&conf);
    free(text);
    return 0;
}
