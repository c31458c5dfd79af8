/*
 * cidr.c — networks written as "address[/prefix]" and comma-separated lists of
 * them (cidr.h): a domain's --outbound-from, the clients that may relay mail
 * out through lifeboat, and who may read /metrics. This guards the open-relay door, so parsing is
 * strict (inet_pton, a decimal prefix in range, nothing else) and anything that
 * does not parse never matches.
 */
#include "util/cidr.h"
#include "util/strlist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define CIDR_TEXT_MAX 64 /* longest IPv6 text (45) + "/128", with room */

int cidr_parse(const char *s, struct cidr *out)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(s);
    if (n == 0 || n >= CIDR_TEXT_MAX)
        return -1;
    char addr[CIDR_TEXT_MAX];
    memcpy(addr, s, n + 1);

    char *slash = strchr(addr, '/');
    long prefix = -1;
    if (slash) {
        *slash = 0;
        const char *d = slash + 1;
        size_t dl = strlen(d);
        if (dl == 0 || dl > 3)
            return -1;
        for (size_t i = 0; i < dl; i++)
            if (!isdigit((unsigned char)d[i]))
                return -1;
        prefix = 0;
        for (size_t i = 0; i < dl; i++)
            prefix = prefix * 10 + (d[i] - '0');
    }

    unsigned max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    if (prefix > (long)max)
        return -1;
    out->prefix = prefix < 0 ? max : (unsigned)prefix;

    /* Clear the host bits so that matching is a plain masked compare. */
    for (unsigned bit = out->prefix; bit < max; bit++)
        out->addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    return 0;
}

/* Client address text -> family and bytes. An IPv4-mapped IPv6 address is
 * folded to IPv4, and a zone suffix is dropped. */
static int client_addr_parse(const char *ip, int *family, unsigned char bytes[16])
{
    char buf[CIDR_TEXT_MAX];
    size_t n = strcspn(ip, "%");
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, ip, n);
    buf[n] = 0;
    if (inet_pton(AF_INET, buf, bytes) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, bytes) != 1)
        return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(bytes, mapped, sizeof mapped) == 0) {
        memmove(bytes, bytes + 12, 4);
        *family = AF_INET;
        return 0;
    }
    *family = AF_INET6;
    return 0;
}

static int cidr_match_bytes(const struct cidr *c, int family, const unsigned char *bytes)
{
    if (c->family != family)
        return 0;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, bytes, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (bytes[full] & mask) == c->addr[full];
}

int cidr_match(const struct cidr *c, const char *ip)
{
    int family;
    unsigned char bytes[16];
    if (!ip || client_addr_parse(ip, &family, bytes) != 0)
        return 0;
    return cidr_match_bytes(c, family, bytes);
}

/* Calls fn for each trimmed entry of a comma-separated list; stops at the first
 * non-zero result and returns it. An empty entry is passed as "". */
static int cidr_list_each(const char *list, int (*fn)(const char *entry, void *arg), void *arg)
{
    if (!*list)
        return 0;
    const char *pos = list;
    char entry[CIDR_TEXT_MAX];
    /* an entry too long to be an address comes as "", which is invalid */
    while (strlist_next(&pos, entry, sizeof entry) != 0) {
        int rc = fn(entry, arg);
        if (rc)
            return rc;
    }
    return 0;
}

struct match_arg {
    int family;
    unsigned char bytes[16];
};

static int match_one(const char *entry, void *arg)
{
    const struct match_arg *m = arg;
    struct cidr c;
    return cidr_parse(entry, &c) == 0 && cidr_match_bytes(&c, m->family, m->bytes);
}

int cidr_list_match(const char *list, const char *ip)
{
    struct match_arg m;
    if (!list || !ip || client_addr_parse(ip, &m.family, m.bytes) != 0)
        return 0;
    return cidr_list_each(list, match_one, &m) == 1;
}

static int invalid_one(const char *entry, void *arg)
{
    (void)arg;
    struct cidr c;
    return cidr_parse(entry, &c) != 0;
}

int cidr_list_validate(const char *list)
{
    if (!list)
        return -1;
    return cidr_list_each(list, invalid_one, NULL) ? -1 : 0;
}

int cidr_format(const struct cidr *c, char *out, size_t outlen)
{
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(c->family, c->addr, text, sizeof text))
        return -1;
    unsigned max = c->family == AF_INET ? 32 : 128;
    int n = c->prefix == max ? snprintf(out, outlen, "%s", text)
                             : snprintf(out, outlen, "%s/%u", text, c->prefix);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
