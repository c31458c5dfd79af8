/*
 * ldap_entry.c — the pure parts of the LDAP sync (directory.h, "LDAP"): what
 * a directory entry says about a user, and the checks of the settings.
 *
 * Active Directory's habits are decided here: an entry without mail is known
 * by its userPrincipalName; proxyAddresses holds typed values of which only
 * "smtp:" (an alias) and "SMTP:" (the primary address) are mail addresses;
 * userAccountControl is a decimal bit field whose bit 2 (0x2) is
 * ACCOUNTDISABLE. No I/O, no store: unit-tested over plain strings.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "directory/directory.h"
#include "util/addr.h"
#include "util/errbuf.h"

int ldap_proxy_address(const char *value, char *out, size_t outlen, int *primary)
{
    if (!value || strncasecmp(value, "smtp:", 5) != 0)
        return 0;
    const char *a = value + 5;
    if (!addr_is_valid(a) || addr_canonical(a, out, outlen) != 0)
        return 0;
    if (primary)
        *primary = strncmp(value, "SMTP:", 5) == 0;
    return 1;
}

int ldap_uac_disabled(const char *value)
{
    if (!value)
        return 0;
    while (isspace((unsigned char)*value))
        value++;
    /* A signed 32-bit value in decimal (AD writes flags above bit 30 as
     * negative numbers); anything else says nothing about the account. */
    errno = 0;
    char *end;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value)
        return 0;
    return (v & 0x2) != 0;
}

/* host: a name of letters, digits, '-', '.', '_', or a [v6] literal. */
static int host_ok(const char *h, size_t n)
{
    if (n == 0)
        return 0;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return 0;
    return 1;
}

int ldap_url_check(const char *url, int starttls, char *err, size_t errlen)
{
    if (!url || !*url)
        return errbuf_fail(err, errlen, "the directory URL is empty");
    const char *rest;
    int ldaps = 0;
    if (strncasecmp(url, "ldap://", 7) == 0)
        rest = url + 7;
    else if (strncasecmp(url, "ldaps://", 8) == 0) {
        rest = url + 8;
        ldaps = 1;
    } else
        return errbuf_fail(err, errlen, "the directory URL must start with ldap:// or ldaps://");
    size_t len = strlen(rest);
    if (len && rest[len - 1] == '/')
        len--;
    /* host[:port]; the port is what follows the last ':' after a ']' or in a name. */
    size_t hostlen = len;
    const char *close = rest[0] == '[' ? memchr(rest, ']', len) : NULL;
    const char *colon = NULL;
    for (size_t i = close ? (size_t)(close - rest) : 0; i < len; i++)
        if (rest[i] == ':')
            colon = rest + i;
    if (rest[0] == '[' && !close)
        return errbuf_fail(err, errlen, "the directory URL has an unclosed [ in its host");
    if (colon) {
        hostlen = (size_t)(colon - rest);
        size_t plen = len - hostlen - 1;
        if (plen == 0 || plen > 5)
            return errbuf_fail(err, errlen, "the directory URL has a bad port");
        long port = 0;
        for (size_t i = 1; i <= plen; i++) {
            if (!isdigit((unsigned char)colon[i]))
                return errbuf_fail(err, errlen, "the directory URL has a bad port");
            port = port * 10 + (colon[i] - '0');
        }
        if (port < 1 || port > 65535)
            return errbuf_fail(err, errlen, "the directory URL has a bad port");
    }
    if (!host_ok(rest, hostlen))
        return errbuf_fail(err, errlen, "the directory URL must be ldap[s]://HOST[:PORT] (no path, DN or filter)");
    if (starttls && ldaps)
        return errbuf_fail(err, errlen, "StartTLS is for ldap:// URLs; ldaps:// is TLS from the start");
    return 0;
}

int ldap_filter_check(const char *f)
{
    if (!f || f[0] != '(')
        return -1;
    int depth = 0;
    size_t n = strlen(f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (c == '\\') { /* an escaped character (\28 or the old \( form) */
            if (i + 1 >= n)
                return -1;
            i++;
            continue;
        }
        if (c == '(')
            depth++;
        else if (c == ')' && --depth < 0)
            return -1;
        if (depth == 0 && i + 1 < n) /* one filter, nothing after it */
            return -1;
    }
    return depth == 0 ? 0 : -1;
}

int ldap_interval_parse(const char *s, int64_t *seconds)
{
    unsigned v;
    if (config_parse_duration(s, &v) != 0 || v < LDAP_INTERVAL_MIN)
        return -1;
    *seconds = v;
    return 0;
}

/* ------------------------------------------------------------------ entries */

static const char *first(char **vals)
{
    return vals && vals[0] ? vals[0] : NULL;
}

/* A display name: control characters become spaces, spaces around it go,
 * and a name too long is cut before the character that does not fit (so a
 * cut never leaves half a UTF-8 sequence; it may drop one whole character
 * more, which is harmless). */
static void copy_name(char *out, size_t outlen, const char *s)
{
    size_t n = 0;
    if (s)
        while (*s == ' ')
            s++;
    for (; s && *s && n + 1 < outlen; s++)
        out[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
    if (s && *s) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0 && (unsigned char)out[n - 1] >= 0xc0)
            n--;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = 0;
}

static int add_alias(struct ldap_person *p, const char *canon)
{
    if (!strcmp(canon, p->email))
        return 0;
    for (size_t i = 0; i < p->naliases; i++)
        if (!strcmp(p->aliases[i], canon))
            return 0;
    if (p->naliases >= LDAP_PERSON_ALIASES_MAX)
        return 0;
    if (!p->aliases) {
        p->aliases = calloc(LDAP_PERSON_ALIASES_MAX, sizeof *p->aliases);
        if (!p->aliases)
            return -1;
    }
    memcpy(p->aliases[p->naliases++], canon, strlen(canon) + 1);
    return 0;
}

int ldap_person_from_entry(const struct ldap_entry_values *e, const char *domain, struct ldap_person *out)
{
    memset(out, 0, sizeof *out);
    /* The entry's address: mail, or (Active Directory without Exchange)
     * userPrincipalName. A mail in another domain is another domain's user
     * even if the UPN is in this one. */
    const char *addr = first(e->mail) ? first(e->mail) : first(e->upn);
    if (!addr || !e->dn || !addr_is_valid(addr) || addr_canonical(addr, out->email, sizeof out->email) != 0 ||
        !addr_in_domain(out->email, domain))
        return 0;
    out->dn = strdup(e->dn);
    if (!out->dn)
        return -1;
    const char *name = first(e->display_name) ? first(e->display_name) : first(e->cn);
    copy_name(out->name, sizeof out->name, name);
    for (char **v = e->uac; v && *v; v++)
        if (ldap_uac_disabled(*v))
            out->disabled = 1;
    char canon[ADDR_MAX + 1];
    for (char **v = e->proxy; v && *v; v++)
        if (ldap_proxy_address(*v, canon, sizeof canon, NULL) && add_alias(out, canon) != 0)
            goto oom;
    for (char **v = e->alt; v && *v; v++)
        if (addr_is_valid(*v) && addr_canonical(*v, canon, sizeof canon) == 0 && add_alias(out, canon) != 0)
            goto oom;
    return 1;
oom:
    ldap_person_free(out);
    return -1;
}

void ldap_person_free(struct ldap_person *p)
{
    if (!p)
        return;
    free(p->dn);
    free(p->aliases);
    memset(p, 0, sizeof *p);
}

void ldap_person_list_free(struct ldap_person_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        ldap_person_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}
