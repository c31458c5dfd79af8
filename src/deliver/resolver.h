/*
 * resolver.h — asynchronous DNS for the delivery engine: c-ares driven by the
 * event loop (its sockets are watched by libevent events, its timeouts by a
 * libevent timer), so a slow name server never stalls SMTP.
 *
 * Two questions are asked: the MX hosts of a domain (RFC 5321 5.1, with RFC
 * 7505 null MX recognised) and the addresses of a host. Answers come back
 * through a callback on the loop thread; the callback may run before the call
 * that asked returns (numeric addresses, /etc/hosts), in which case that call
 * returns NULL. A pending question can be cancelled: its callback then never
 * runs.
 */
#ifndef LB_DELIVER_RESOLVER_H
#define LB_DELIVER_RESOLVER_H

#include <ares.h>
#include <event2/event.h>
#include <stddef.h>

#include "util/addr.h"

enum resolver_status {
    RESOLVER_OK = 0,
    RESOLVER_NODATA,   /* the name exists but has no record of that type */
    RESOLVER_NXDOMAIN, /* the name does not exist */
    RESOLVER_NULLMX,   /* RFC 7505: the domain accepts no mail */
    RESOLVER_TEMP,     /* name server failure, timeout, ...: try again later */
};

#define RESOLVER_MX_MAX 16

struct mx_host {
    char host[DOMAIN_MAX + 1];
    unsigned short preference;
};

struct resolver;
struct resolver_req;

/* hosts: sorted by preference (lowest first), n > 0 only with RESOLVER_OK.
 * error: a short text for the log ("Host not found", "Timeout while contacting DNS servers"). */
typedef void (*resolver_mx_cb)(void *arg, int status, const char *error, const struct mx_host *hosts,
                               size_t n);
/* ai: the addresses (NULL unless RESOLVER_OK); valid only during the call. */
typedef void (*resolver_addr_cb)(void *arg, int status, const char *error, const struct ares_addrinfo *ai);

/* servers: "ip[:port],..." to use instead of /etc/resolv.conf's (tests), or NULL. */
struct resolver *resolver_new(struct event_base *base, const char *servers, char *err, size_t errlen);
/* Cancels everything still pending (no callbacks run) and frees r. */
void resolver_free(struct resolver *r);

struct resolver_req *resolver_mx(struct resolver *r, const char *domain, resolver_mx_cb cb, void *arg);
/* Addresses (IPv4 and IPv6, in RFC 6724 order) of host, for TCP to port. */
struct resolver_req *resolver_addrs(struct resolver *r, const char *host, const char *port,
                                    resolver_addr_cb cb, void *arg);
void resolver_cancel(struct resolver_req *q);

#endif
