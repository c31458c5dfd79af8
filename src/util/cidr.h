/*
 * cidr.h — networks written as "address[/prefix]" and comma-separated lists of
 * them: a domain's --outbound-from (who may relay out through lifeboat) and
 * metrics_allow (who may scrape /metrics). Pure functions.
 */
#ifndef LB_UTIL_CIDR_H
#define LB_UTIL_CIDR_H

#include <stddef.h>

/* One network: an address and a prefix length (32 or 128 for a bare address).
 * IPv4 is kept as such (family AF_INET, 4 bytes used). Host bits beyond the
 * prefix are cleared when parsing, so "192.0.2.7/24" means 192.0.2.0/24. */
struct cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

/* Parses one "address[/prefix]" entry (no spaces). 0 or -1. */
int cidr_parse(const char *s, struct cidr *out);
/* "192.0.2.0/24", "2001:db8::/32", or the bare address for a /32 or /128. 0 or -1. */
int cidr_format(const struct cidr *c, char *out, size_t outlen);
/* 1 if ip (numeric text) is inside c. An IPv4-mapped IPv6 client address
 * (::ffff:192.0.2.7, as a dual-stack socket reports it) matches IPv4 networks;
 * an IPv6 zone ("%eth0") is ignored. */
int cidr_match(const struct cidr *c, const char *ip);

/* 1 if ip (IPv4 or IPv6 text) is inside one of the comma-separated CIDRs in list
 * ("192.0.2.0/24,2001:db8::/32,198.51.100.7"). Invalid entries never match. */
int cidr_list_match(const char *list, const char *ip);
/* 0 if every entry of list is a valid address or CIDR (an empty list is valid:
 * it matches nothing), -1 otherwise. */
int cidr_list_validate(const char *list);

#endif
