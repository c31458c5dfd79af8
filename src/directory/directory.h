/*
 * directory.h — customers, subscriptions, domains, users, aliases and passwords:
 * the rules on top of store.h's records.
 *
 * Used by lifeboatctl (administration), smtpd (who may receive, who may relay)
 * and later http (login). All functions take a store connection of the caller's
 * thread; the ones that change things are meant for lifeboatctl or the writer.
 * Errors: 0 on success, -1 with a one-line reason in err (for lifeboatctl to
 * print), or the STORE_* code where noted.
 */
#ifndef LB_DIRECTORY_DIRECTORY_H
#define LB_DIRECTORY_DIRECTORY_H

#include <stddef.h>

#include "store/store.h"

/* ---------------------------------------------------------------- passwords */

#define PASSWORD_HASH_MAX 256

/* argon2id (libsodium crypto_pwhash_str, interactive limits). 0 or -1. */
int password_hash(const char *password, char out[PASSWORD_HASH_MAX]);
/* 1 when password matches hash, 0 otherwise (constant-time in the hash check). */
int password_verify(const char *hash, const char *password);

/* ---------------------------------------------------------------- routes */

#define ROUTE_MAX_HOSTS 8

struct route_host {
    char host[DOMAIN_MAX + 1];
    char port[8];
};

struct route {
    size_t count;
    struct route_host hosts[ROUTE_MAX_HOSTS];
};

/* Parses "host[:port],host[:port]" (default port 25). 0 or -1. */
int route_parse(const char *s, struct route *out);

/* ---------------------------------------------------------------- CIDR lists */

/* 1 if ip (IPv4 or IPv6 text) is inside one of the comma-separated CIDRs in list
 * ("192.0.2.0/24,2001:db8::/32,198.51.100.7"). */
int cidr_list_match(const char *list, const char *ip);
/* 0 if every entry of list is a valid address or CIDR. */
int cidr_list_validate(const char *list);

/* ---------------------------------------------------------------- recipients */

enum rcpt_kind {
    RCPT_KIND_NOT_HOSTED = 0, /* domain is not ours */
    RCPT_KIND_UNKNOWN,        /* hosted domain, no such user or alias */
    RCPT_KIND_USER,           /* a registered user (maybe inactive or suspended) */
};

struct rcpt_lookup {
    int kind;                 /* enum rcpt_kind */
    struct store_domain domain;  /* valid unless NOT_HOSTED */
    struct store_user user;      /* valid when USER: the owner of the address or alias */
    int via_alias;
};

/* Classifies one recipient address (case-insensitive). STORE_OK or STORE_ERR. */
int directory_lookup_rcpt(struct store *st, const char *addr, struct rcpt_lookup *out);

/* 1 if client_ip is in any hosted domain's --outbound-from list (may relay to
 * non-hosted domains), 0 if not, STORE_ERR on failure. */
int directory_client_may_relay(struct store *st, const char *client_ip);

/* ---------------------------------------------------------------- administration */

int directory_customer_add(struct store *st, const char *name, char *err, size_t errlen);

/* domain add: customer must exist, route must parse. */
int directory_domain_add(struct store *st, const char *domain, const char *customer,
                         const char *routes, char *err, size_t errlen);

/* User creation and changes: the domain must be hosted; password (may be NULL)
 * is hashed here. role: "user", "admin" or "operator". */
int directory_user_add(struct store *st, const char *email, const char *name, const char *role,
                       const char *password, int activate, char *err, size_t errlen);

int directory_alias_add(struct store *st, const char *user_email, const char *alias, char *err,
                        size_t errlen);

#endif
