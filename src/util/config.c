/*
 * config.c — see config.h. A table maps each key to a typed setter; the line
 * loop only splits "key = value" and reports errors with the line number.
 */
#include "util/cidr.h"
#include "util/config.h"
#include "util/log.h"
#include "util/strlist.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (gethostname(cfg->hostname, sizeof cfg->hostname) != 0 || !cfg->hostname[0])
        snprintf(cfg->hostname, sizeof cfg->hostname, "localhost");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "/var/lib/lifeboat");
    cfg->smtp_listen.count = 1;
    snprintf(cfg->smtp_listen.addr[0].host, sizeof cfg->smtp_listen.addr[0].host, "0.0.0.0");
    snprintf(cfg->smtp_listen.addr[0].port, sizeof cfg->smtp_listen.addr[0].port, "25");
    cfg->http_listen.count = 1;
    snprintf(cfg->http_listen.addr[0].host, sizeof cfg->http_listen.addr[0].host, "127.0.0.1");
    snprintf(cfg->http_listen.addr[0].port, sizeof cfg->http_listen.addr[0].port, "8080");
    cfg->smtp_max_connections = 10000;
    cfg->smtp_client_limit = 50;
    cfg->max_message_size = 25u * 1024 * 1024;
    cfg->max_recipients = 1000;
    cfg->queue_lifetime = 5 * 86400;
    cfg->retry_min_backoff = 5 * 60;
    cfg->retry_max_backoff = 3600;
    cfg->dr_probe_interval = 30;
    cfg->archive_retention = 90 * 86400;
    snprintf(cfg->metrics_allow, sizeof cfg->metrics_allow, "127.0.0.0/8,::1");
    snprintf(cfg->store, sizeof cfg->store, "sqlite");
    /* The node's name defaults to the host's first label, made safe. */
    snprintf(cfg->node_name, sizeof cfg->node_name, "%.*s", (int)strcspn(cfg->hostname, "."), cfg->hostname);
    for (char *c = cfg->node_name; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", *c))
            *c = '_';
    cfg->smtp_timeout = 300;
    cfg->smtp_data_timeout = 600;
    cfg->delivery_concurrency = 20;
    cfg->delivery_timeout = 300;
    cfg->drain_concurrency = 4;
    cfg->drain_rate = 20;
    cfg->claim_lease = 60;
    cfg->log_level = LOG_LEVEL_INFO;
}

int config_parse_duration(const char *s, unsigned *seconds)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned long long mult = 1;
    if (*end) {
        switch (*end) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        case 'w': mult = 7 * 86400; break;
        default: return -1;
        }
        if (end[1])
            return -1;
    }
    if (v > 0xffffffffull / mult)
        return -1;
    *seconds = (unsigned)(v * mult);
    return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned long long mult = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mult = 1024ull; break;
        case 'M': mult = 1024ull * 1024; break;
        case 'G': mult = 1024ull * 1024 * 1024; break;
        default: return -1;
        }
        if (end[1] && !(toupper((unsigned char)end[1]) == 'B' && !end[2]))
            return -1;
    }
    if (v > UINT64_MAX / mult)
        return -1;
    *bytes = v * mult;
    return 0;
}

static int port_ok(const char *p)
{
    if (!*p || strlen(p) > 5)
        return 0;
    for (const char *c = p; *c; c++)
        if (!isdigit((unsigned char)*c))
            return 0;
    long v = strtol(p, NULL, 10);
    return v > 0 && v <= 65535;
}

int config_parse_hostport(const char *s, const char *default_port, struct config_listen *out)
{
    memset(out, 0, sizeof *out);
    const char *host = s, *host_end, *port = NULL;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return -1;
        if (host_end[1] == ':')
            port = host_end + 2;
        else if (host_end[1])
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            return -1; /* bare IPv6 needs brackets */
        host_end = colon ? colon : s + strlen(s);
        if (colon)
            port = colon + 1;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof out->host)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == ':' || c == '_'))
            return -1;
    }
    memcpy(out->host, host, hl);
    if (!port)
        port = default_port;
    if (!port || !port_ok(port))
        return -1;
    snprintf(out->port, sizeof out->port, "%s", port);
    return 0;
}

/* may_be_off: "off"/"none" is an empty list (submission and HTTP may be off; an MX
 * without SMTP listeners is a mistake). */
static int parse_listen_list(const char *v, const char *default_port, int may_be_off,
                             struct config_listen_list *l)
{
    memset(l, 0, sizeof *l);
    if (!strcmp(v, "off") || !strcmp(v, "none"))
        return may_be_off ? 0 : -1;
    const char *pos = v;
    char tok[300];
    int r;
    while ((r = strlist_next(&pos, tok, sizeof tok)) != 0) {
        if (r < 0 || l->count == CONFIG_MAX_LISTEN)
            return -1;
        if (!*tok || config_parse_hostport(tok, default_port, &l->addr[l->count]) != 0)
            return -1; /* an empty entry ("a:25,") is a typo, not a wish */
        l->count++;
    }
    return 0;
}

enum key_type { K_STRING, K_PATH, K_LISTEN, K_UINT, K_DURATION, K_SIZE, K_HOSTPORT, K_STORE, K_LEVEL, K_CIDRS,
                K_LINE_ENDINGS, K_NODE };

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* for strings */
    const char *default_port;
    const char *expect; /* shown in error messages */
};

#define F(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
static const struct key_def keys[] = {
    {"hostname", K_STRING, F(hostname), NULL, "a host name"},
    {"data_dir", K_PATH, F(data_dir), NULL, "a directory path"},
    {"smtp_listen", K_LISTEN, F(smtp_listen), "25", "host:port[,host:port...]"},
    {"submission_listen", K_LISTEN, F(submission_listen), "587", "host:port[,host:port...] or off"},
    {"http_listen", K_LISTEN, F(http_listen), "8080", "host:port[,host:port...]"},
    {"tls_cert_file", K_PATH, F(tls_cert_file), NULL, "a file path"},
    {"tls_key_file", K_PATH, F(tls_key_file), NULL, "a file path"},
    {"smtp_max_connections", K_UINT, F(smtp_max_connections), NULL, "a number"},
    {"smtp_client_limit", K_UINT, F(smtp_client_limit), NULL, "a number (0: no limit)"},
    {"max_message_size", K_SIZE, F(max_message_size), NULL, "a size like 25M"},
    {"max_recipients", K_UINT, F(max_recipients), NULL, "a number"},
    {"queue_lifetime", K_DURATION, F(queue_lifetime), NULL, "a duration like 5d"},
    {"retry_min_backoff", K_DURATION, F(retry_min_backoff), NULL, "a duration like 5m"},
    {"retry_max_backoff", K_DURATION, F(retry_max_backoff), NULL, "a duration like 1h"},
    {"dr_probe_interval", K_DURATION, F(dr_probe_interval), NULL, "a duration like 30s"},
    {"archive_retention", K_DURATION, F(archive_retention), NULL, "a duration like 90d"},
    {"outbound_relay", K_HOSTPORT, F(outbound_relay), "25", "host:port or none"},
    {"store", K_STORE, F(store), NULL, "sqlite or a postgresql:// URL"},
    {"blob_dir", K_PATH, F(blob_dir), NULL, "a directory path"},
    {"claim_lease", K_DURATION, F(claim_lease), NULL, "a duration like 60s (5s at least)"},
    {"node_name", K_NODE, F(node_name), NULL, "a name of letters, digits, '.', '-' and '_' (up to 63)"},
    {"smtp_invalid_line_endings", K_LINE_ENDINGS, F(smtp_invalid_line_endings), NULL, "reject or fix"},
    {"smtp_timeout", K_DURATION, F(smtp_timeout), NULL, "a duration like 5m"},
    {"smtp_data_timeout", K_DURATION, F(smtp_data_timeout), NULL, "a duration like 10m"},
    {"delivery_concurrency", K_UINT, F(delivery_concurrency), NULL, "a number"},
    {"delivery_timeout", K_DURATION, F(delivery_timeout), NULL, "a duration like 5m"},
    {"drain_concurrency", K_UINT, F(drain_concurrency), NULL, "a number"},
    {"drain_rate", K_UINT, F(drain_rate), NULL, "messages per second (0: no limit)"},
    {"log_level", K_LEVEL, F(log_level), NULL, "debug, info, warning or error"},
    {"web_root", K_PATH, F(web_root), NULL, "a directory path"},
    {"web_url", K_STRING, F(web_url), NULL, "a URL like https://mail.example.com/"},
    {"metrics_allow", K_CIDRS, F(metrics_allow), NULL, "comma-separated addresses or networks, or none"},
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])

static int set_value(struct config *cfg, const struct key_def *k, const char *v)
{
    char *field = (char *)cfg + k->offset;
    switch (k->type) {
    case K_STRING:
    case K_PATH:
        if (!*v || strlen(v) >= k->size)
            return -1;
        if (k->type == K_STRING)
            for (const char *c = v; *c; c++)
                if (isspace((unsigned char)*c))
                    return -1;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_LISTEN:
        return parse_listen_list(v, k->default_port, k->offset != offsetof(struct config, smtp_listen),
                                 (struct config_listen_list *)field);
    case K_UINT: {
        if (!isdigit((unsigned char)*v))
            return -1;
        errno = 0;
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || n > 0xffffffffu)
            return -1;
        *(unsigned *)field = (unsigned)n;
        return 0;
    }
    case K_DURATION:
        return config_parse_duration(v, (unsigned *)field);
    case K_SIZE:
        return config_parse_size(v, (uint64_t *)field);
    case K_HOSTPORT:
        if (!strcmp(v, "none")) {
            memset(field, 0, sizeof(struct config_listen));
            return 0;
        }
        return config_parse_hostport(v, k->default_port, (struct config_listen *)field);
    case K_STORE:
        if (strcmp(v, "sqlite") != 0 && strncmp(v, "postgresql://", 13) != 0 &&
            strncmp(v, "postgres://", 11) != 0)
            return -1;
        if (strlen(v) >= k->size)
            return -1;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_NODE:
        if (!*v || strlen(v) >= k->size || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "0123456789.-_") != strlen(v))
            return -1;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_CIDRS:
        if (!strcmp(v, "none")) {
            field[0] = '\0';
            return 0;
        }
        if (strlen(v) >= k->size || cidr_list_validate(v) != 0)
            return -1;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_LINE_ENDINGS:
        if (!strcmp(v, "reject"))
            *(int *)field = CONFIG_LINE_ENDINGS_REJECT;
        else if (!strcmp(v, "fix"))
            *(int *)field = CONFIG_LINE_ENDINGS_FIX;
        else
            return -1;
        return 0;
    case K_LEVEL: {
        static const char *names[] = {"debug", "info", "warning", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, names[i])) {
                *(int *)field = i;
                return 0;
            }
        return -1;
    }
    }
    return -1;
}

int config_parse(struct config *cfg, const char *name, const char *text, size_t len, char *err,
                 size_t errlen)
{
    unsigned char seen[NKEYS] = {0};
    size_t pos = 0;
    unsigned lineno = 0;
    while (pos < len) {
        lineno++;
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        char line[4096];
        size_t ll = end - pos;
        if (ll >= sizeof line) {
            snprintf(err, errlen, "%s:%u: line too long", name, lineno);
            return -1;
        }
        memcpy(line, text + pos, ll);
        line[ll] = 0;
        pos = end + 1;
        if (memchr(line, 0, ll)) {
            snprintf(err, errlen, "%s:%u: NUL byte in line", name, lineno);
            return -1;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%u: expected \"key = value\", got \"%.60s\"", name, lineno, s);
            return -1;
        }
        char *kend = eq;
        while (kend > s && isspace((unsigned char)kend[-1]))
            kend--;
        *kend = 0;
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        size_t i;
        for (i = 0; i < NKEYS; i++)
            if (!strcmp(keys[i].name, s))
                break;
        if (i == NKEYS) {
            snprintf(err, errlen, "%s:%u: unknown key \"%.60s\"", name, lineno, s);
            return -1;
        }
        if (seen[i]) {
            snprintf(err, errlen, "%s:%u: \"%s\" is set twice", name, lineno, s);
            return -1;
        }
        seen[i] = 1;
        if (!*v) {
            snprintf(err, errlen, "%s:%u: %s has no value (expected %s)", name, lineno, s,
                     keys[i].expect);
            return -1;
        }
        if (set_value(cfg, &keys[i], v) != 0) {
            snprintf(err, errlen, "%s:%u: bad value \"%.80s\" for %s (expected %s)", name, lineno, v,
                     s, keys[i].expect);
            return -1;
        }
    }
    if (cfg->retry_min_backoff == 0 || cfg->retry_min_backoff > cfg->retry_max_backoff) {
        snprintf(err, errlen, "%s: retry_min_backoff must be above 0 and not above retry_max_backoff",
                 name);
        return -1;
    }
    if (!!cfg->tls_cert_file[0] != !!cfg->tls_key_file[0]) {
        snprintf(err, errlen, "%s: tls_cert_file and tls_key_file go together", name);
        return -1;
    }
    /* AUTH is only offered after STARTTLS: without a certificate the
     * submission port could never let anyone send. */
    if (cfg->submission_listen.count > 0 && !cfg->tls_cert_file[0]) {
        snprintf(err, errlen, "%s: submission_listen needs tls_cert_file and tls_key_file (AUTH only after STARTTLS)",
                 name);
        return -1;
    }
    if (cfg->max_recipients == 0 || cfg->max_message_size == 0 || cfg->smtp_max_connections == 0) {
        snprintf(err, errlen, "%s: max_recipients, max_message_size and smtp_max_connections must be above 0",
                 name);
        return -1;
    }
    if (cfg->delivery_concurrency == 0 || cfg->dr_probe_interval == 0 || cfg->smtp_timeout == 0 ||
        cfg->smtp_data_timeout == 0 || cfg->delivery_timeout == 0 || cfg->queue_lifetime == 0 ||
        cfg->archive_retention == 0) {
        snprintf(err, errlen,
                 "%s: delivery_concurrency, dr_probe_interval, the timeouts, queue_lifetime and "
                 "archive_retention must be above 0",
                 name);
        return -1;
    }
    if (cfg->drain_concurrency == 0) {
        snprintf(err, errlen, "%s: drain_concurrency must be above 0", name);
        return -1;
    }
    if (cfg->claim_lease < 5) {
        snprintf(err, errlen, "%s: claim_lease must be 5s at least (nodes renew their claims every third of it)",
                 name);
        return -1;
    }
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    config_defaults(cfg);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 20)) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: file too large", path);
                return -1;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    int rc = config_parse(cfg, path, buf ? buf : "", len, err, errlen);
    free(buf);
    return rc;
}
