/*
 * route.c — a domain's route: the customer's own mail servers, tried in order
 * (see directory.h). Parsed from the --route argument, kept in the store in the
 * canonical form route_format writes, and parsed again by the delivery engine.
 */
#include "directory/directory.h"
#include "util/config.h"
#include "util/strlist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* A route host is a domain name (or dotted IPv4, which domain_is_valid also
 * accepts) or an IPv6 literal, which only the bracketed form can carry. A
 * bracketed name ("[mx.acme.test]:25", Postfix's "no MX lookup") is accepted
 * too: route hosts are always used as they are. */
static int route_host_ok(const char *host)
{
    if (strchr(host, ':')) {
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1;
    }
    return domain_is_valid(host);
}

int route_parse(const char *s, struct route *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return -1;
    const char *pos = s;
    char entry[DOMAIN_MAX + 16];
    int r;
    while ((r = strlist_next(&pos, entry, sizeof entry)) != 0) {
        if (r < 0 || !entry[0] || out->count == ROUTE_MAX_HOSTS)
            return -1;
        struct config_listen hp;
        if (config_parse_hostport(entry, "25", &hp) != 0 || !route_host_ok(hp.host))
            return -1;
        struct route_host *h = &out->hosts[out->count++];
        if (strlen(hp.host) >= sizeof h->host || strlen(hp.port) >= sizeof h->port)
            return -1;
        for (size_t i = 0; hp.host[i]; i++)
            h->host[i] = (char)tolower((unsigned char)hp.host[i]);
        memcpy(h->port, hp.port, strlen(hp.port) + 1);
    }
    return 0;
}

int route_format(const struct route *r, char *out, size_t outlen)
{
    size_t used = 0;
    if (outlen == 0)
        return -1;
    out[0] = 0;
    for (size_t i = 0; i < r->count; i++) {
        const struct route_host *h = &r->hosts[i];
        int v6 = strchr(h->host, ':') != NULL;
        int n = snprintf(out + used, outlen - used, "%s%s%s%s:%s", i ? "," : "", v6 ? "[" : "",
                         h->host, v6 ? "]" : "", h->port);
        if (n < 0 || (size_t)n >= outlen - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}
