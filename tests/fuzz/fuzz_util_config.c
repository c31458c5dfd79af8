/*
 * fuzz_util_config.c — libFuzzer target for the lifeboat.conf parser
 * (config_parse, src/util/config.c). The input is the file's text, copied into
 * a buffer of exactly its size (config_parse does not need a NUL, so ASan sees
 * any read past it); the error buffer is exactly as large as the daemon's.
 *
 * Checks config.h's promises: the text gives a config or an error, and an
 * error names the file and, for a line's mistake, a line the text has; a
 * config holds only what the checks allow (NUL-terminated strings, bounded
 * listen lists of valid ports, the cross-key rules). Then each line's value is
 * fed to the value parsers, and what they accept prints back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"

#define NAME "fuzz.conf"

static void check_str(const char *s, size_t size)
{
    if (strnlen(s, size) >= size)
        abort();
}

static void check_port(const char *p)
{
    check_str(p, 8);
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || v < 1 || v > 65535)
        abort();
}

static void check_listen(const struct config_listen_list *l)
{
    if (l->count > CONFIG_MAX_LISTEN)
        abort();
    for (size_t i = 0; i < l->count; i++) {
        check_str(l->addr[i].host, sizeof l->addr[i].host);
        if (!l->addr[i].host[0])
            abort();
        check_port(l->addr[i].port);
    }
}

static void check_config(const struct config *c)
{
    check_str(c->hostname, sizeof c->hostname);
    check_str(c->data_dir, sizeof c->data_dir);
    check_str(c->tls_cert_file, sizeof c->tls_cert_file);
    check_str(c->tls_key_file, sizeof c->tls_key_file);
    check_str(c->store, sizeof c->store);
    check_str(c->web_root, sizeof c->web_root);
    check_str(c->web_url, sizeof c->web_url);
    check_str(c->metrics_allow, sizeof c->metrics_allow);
    check_listen(&c->smtp_listen);
    check_listen(&c->submission_listen);
    check_listen(&c->http_listen);
    if (c->smtp_listen.count == 0)
        abort(); /* an MX without SMTP listeners is refused */
    if (c->outbound_relay.host[0])
        check_port(c->outbound_relay.port);
    if (c->retry_min_backoff == 0 || c->retry_min_backoff > c->retry_max_backoff)
        abort();
    if (!!c->tls_cert_file[0] != !!c->tls_key_file[0])
        abort();
    if (c->submission_listen.count && !c->tls_cert_file[0])
        abort();
    if (!c->max_recipients || !c->max_message_size || !c->smtp_max_connections || !c->delivery_concurrency ||
        !c->dr_probe_interval || !c->smtp_timeout || !c->smtp_data_timeout || !c->delivery_timeout ||
        !c->queue_lifetime || !c->archive_retention || !c->drain_concurrency)
        abort();
    if (c->log_level < 0 || c->log_level > 3)
        abort();
    if (strcmp(c->store, "sqlite") != 0 && strncmp(c->store, "postgresql://", 13) != 0 &&
        strncmp(c->store, "postgres://", 11) != 0)
        abort();
}

/* "FILE:LINE: ..." with 1 <= LINE <= lines, or "FILE: ..." for the checks
 * across keys. */
static void check_error(const char *err, size_t errlen, const char *text, size_t len)
{
    check_str(err, errlen);
    size_t n = strlen(NAME);
    if (strncmp(err, NAME, n) != 0 || (err[n] != ':'))
        abort();
    if (err[n + 1] == ' ')
        return;
    char *end;
    unsigned long line = strtoul(err + n + 1, &end, 10);
    unsigned long lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (line < 1 || line > lines || strncmp(end, ": ", 2) != 0)
        abort();
}

/* Each "key = value" line's value through the value parsers on their own. */
static void check_values(const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *eq = memchr(text + pos, '=', end - pos);
        if (eq) {
            size_t vl = end - (size_t)(eq + 1 - text);
            char *v = malloc(vl + 1);
            if (!v)
                return;
            memcpy(v, eq + 1, vl);
            v[vl] = '\0';
            unsigned secs, secs2;
            uint64_t bytes, bytes2;
            char back[32];
            if (config_parse_duration(v, &secs) == 0) {
                snprintf(back, sizeof back, "%u", secs);
                if (config_parse_duration(back, &secs2) != 0 || secs2 != secs)
                    abort();
            }
            if (config_parse_size(v, &bytes) == 0) {
                snprintf(back, sizeof back, "%llu", (unsigned long long)bytes);
                if (config_parse_size(back, &bytes2) != 0 || bytes2 != bytes)
                    abort();
            }
            struct config_listen l;
            if (config_parse_hostport(v, "25", &l) == 0) {
                check_str(l.host, sizeof l.host);
                check_port(l.port);
            }
            free(v);
        }
        pos = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    char *err = malloc(512); /* the smallest buffer lifeboatd passes (on reload) */
    if (!text || !err) {
        free(text);
        free(err);
        return 0;
    }
    memcpy(text, data, size);
    static struct config cfg; /* large: not on the stack */
    config_defaults(&cfg);
    err[0] = '\0';
    if (config_parse(&cfg, NAME, text, size, err, 512) == 0)
        check_config(&cfg);
    else
        check_error(err, 512, text, size);
    check_values(text, size);
    free(text);
    free(err);
    return 0;
}
