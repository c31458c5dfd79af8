/*
 * config.h — the lifeboat.conf parser (SPEC.md "Config file").
 *
 * "key = value" lines, '#' comments, durations "30s 5m 2h 5d" (a bare number is
 * seconds) and sizes "512K 25M 1G" (a bare number is bytes). A missing file, an
 * unknown key, a repeated key or a bad value is refused with a message that names
 * the file and line. Parsing is a pure function over a buffer (config_parse) so the
 * unit tests and fuzzers need no files; config_load reads the file and calls it.
 */
#ifndef LB_UTIL_CONFIG_H
#define LB_UTIL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTEN 8

struct config_listen {
    char host[256]; /* numeric address or name; "" never happens after parsing */
    char port[8];
};

struct config_listen_list {
    size_t count;
    struct config_listen addr[CONFIG_MAX_LISTEN];
};

/* smtp_invalid_line_endings: what a bare CR or LF in DATA/BDAT gets. */
enum config_line_endings {
    CONFIG_LINE_ENDINGS_REJECT = 0, /* 550 5.6.11 */
    CONFIG_LINE_ENDINGS_FIX,        /* accepted, stored as CRLF */
};

struct config {
    char hostname[256];
    char data_dir[1024];
    struct config_listen_list smtp_listen;
    struct config_listen_list submission_listen; /* count 0: off */
    struct config_listen_list http_listen;
    char tls_cert_file[1024]; /* "" : no TLS */
    char tls_key_file[1024];
    unsigned smtp_max_connections;
    unsigned smtp_client_limit; /* 0: no limit */
    uint64_t max_message_size;  /* bytes */
    unsigned max_recipients;
    unsigned queue_lifetime; /* seconds */
    unsigned retry_min_backoff;
    unsigned retry_max_backoff;
    unsigned dr_probe_interval;
    unsigned archive_retention;
    struct config_listen outbound_relay; /* host "" : MX lookup */
    char store[1024];                    /* "sqlite" or a postgresql:// URL */
    char blob_dir[1024];                 /* "": data_dir/blobs (SQLite) or in the database (PostgreSQL) */
    char node_name[64];                  /* this node's name in a cluster (claims, leases, logs) */
    unsigned claim_lease;                /* seconds a node's claim on queued work lasts unless renewed */
    int smtp_invalid_line_endings;       /* enum config_line_endings */

    /* Extensions beyond SPEC.md's table, documented in docs/OPERATIONS.md. */
    unsigned smtp_timeout;         /* idle time allowed between commands */
    unsigned smtp_data_timeout;    /* idle time allowed inside DATA/BDAT */
    unsigned delivery_concurrency; /* parallel connections per destination */
    unsigned delivery_timeout;     /* per SMTP client read/connect step */
    unsigned drain_concurrency;    /* continuity recovery drain: connections per domain */
    unsigned drain_rate;           /* continuity recovery drain: messages per second, 0: no limit */
    int log_level;                 /* enum log_level */
    char web_root[1024];           /* the webmail's files; "": $LIFEBOAT_WEB_ROOT or next to the binary */
    char web_url[512];             /* the webmail's public URL, for links in mail; "": from hostname */
    char metrics_allow[1024];      /* CIDR list of who may read /metrics; "": nobody */
};

/* Fills every field with its SPEC.md default. */
void config_defaults(struct config *cfg);

/*
 * Parses text (len bytes, need not be NUL-terminated) on top of cfg's current
 * values. name is used in error messages ("FILE:LINE: ..."). Returns 0 or -1 with
 * err filled.
 */
int config_parse(struct config *cfg, const char *name, const char *text, size_t len, char *err,
                 size_t errlen);

/* config_defaults + read path + config_parse. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Value parsers, exposed for the CLI and the tests. Return 0 or -1. */
int config_parse_duration(const char *s, unsigned *seconds);
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_hostport(const char *s, const char *default_port, struct config_listen *out);

#endif
