/*
 * domain_admin.c — creating customers and their domains, and changing a
 * domain's settings (see directory.h "administration"). Every input is checked
 * here, not in lifeboatctl, so the control panel's API gets the same rules.
 */
#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/strlist.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int directory_customer_add(struct store *st, const char *name, char *err, size_t errlen)
{
    struct store_customer c;
    if (!name || !admin_text_ok(name, sizeof c.name))
        return errbuf_fail(err, errlen, "customer name must be 1 to %zu characters, no control characters",
                           sizeof c.name - 1);
    if (isspace((unsigned char)name[0]) || isspace((unsigned char)name[strlen(name) - 1]))
        return errbuf_fail(err, errlen, "customer \"%s\": name starts or ends with a space", name);
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    int rc = store_customer_get(st, name, &c);
    if (rc == STORE_OK)
        rc = errbuf_failc(DIR_EXISTS, err, errlen, "customer %s already exists", name);
    else if (rc != STORE_NOTFOUND)
        rc = errbuf_failc(DIR_STORE, err, errlen, "customer %s: store error", name);
    else if ((rc = store_customer_add(st, name, NULL)) == STORE_EXISTS)
        rc = errbuf_failc(DIR_EXISTS, err, errlen, "customer %s already exists", name);
    else if (rc != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "customer %s: store error", name);
    return admin_end(st, rc, err, errlen);
}

/* Parses a --route argument into its canonical text for store_domain.routes. */
static int routes_canonical(const char *domain, const char *routes, char *out, size_t outlen, char *err,
                            size_t errlen)
{
    struct route r;
    if (!routes || route_parse(routes, &r) != 0)
        return errbuf_fail(err, errlen,
                           "domain %s: bad route \"%.200s\" (expected HOST[:PORT][,HOST[:PORT]...], at most %d hosts)",
                           domain, routes ? routes : "", ROUTE_MAX_HOSTS);
    if (route_format(&r, out, outlen) != 0)
        return errbuf_fail(err, errlen, "domain %s: route is too long", domain);
    return 0;
}

int directory_domain_add(struct store *st, const char *domain, const char *customer, const char *routes,
                         char *err, size_t errlen)
{
    struct store_domain d;
    memset(&d, 0, sizeof d);
    if (admin_canonical(domain, d.name, sizeof d.name) != 0 || !domain_is_valid(d.name))
        return errbuf_fail(err, errlen, "\"%.200s\" is not a valid domain name", domain ? domain : "");
    if (!customer || !*customer)
        return errbuf_fail(err, errlen, "domain %s: a customer is required", d.name);
    if (routes_canonical(d.name, routes, d.routes, sizeof d.routes, err, errlen) != 0)
        return -1;
    d.created = time_now();

    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_customer c;
    struct store_domain old;
    int rc = store_customer_get(st, customer, &c);
    if (rc == STORE_NOTFOUND) {
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "domain %s: customer %s does not exist", d.name, customer);
    } else if (rc != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", d.name);
    } else if ((rc = store_domain_get(st, d.name, &old)) != STORE_NOTFOUND) {
        rc = rc == STORE_OK ? errbuf_failc(DIR_EXISTS, err, errlen, "domain %s already exists", d.name)
                            : errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", d.name);
    } else {
        d.customer_id = c.id;
        rc = store_domain_add(st, &d, NULL);
        if (rc == STORE_EXISTS)
            rc = errbuf_failc(DIR_EXISTS, err, errlen, "domain %s already exists", d.name);
        else if (rc != STORE_OK)
            rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", d.name);
    }
    return admin_end(st, rc, err, errlen);
}

/* Rewrites a CIDR list in canonical form ("192.0.2.7/24, ::1" ->
 * "192.0.2.0/24,::1"), so that the listing shows what is enforced. */
static int outbound_canonical(const char *domain, const char *list, char *out, size_t outlen, char *err,
                              size_t errlen)
{
    size_t used = 0;
    out[0] = 0;
    if (!*list || !strcmp(list, "none"))
        return 0;
    /* "a,,b" is a typo worth refusing: strlist keeps the empty entry */
    const char *pos = list;
    char one[64], text[64];
    int r;
    while ((r = strlist_next(&pos, one, sizeof one)) != 0) {
        struct cidr c;
        if (r < 0 || !one[0])
            return errbuf_fail(err, errlen, "domain %s: bad --outbound-from \"%.200s\": empty or overlong entry",
                               domain, list);
        if (cidr_parse(one, &c) != 0 || cidr_format(&c, text, sizeof text) != 0)
            return errbuf_fail(err, errlen,
                               "domain %s: bad --outbound-from entry \"%s\" (expected an address or a CIDR like 192.0.2.0/24)",
                               domain, one);
        size_t tl = strlen(text);
        if (used + 1 + tl + 1 > outlen)
            return errbuf_fail(err, errlen, "domain %s: --outbound-from list is too long", domain);
        if (used)
            out[used++] = ',';
        memcpy(out + used, text, tl + 1);
        used += tl;
    }
    return 0;
}

static int webhook_ok(const char *url)
{
    const char *rest;
    if (!strncasecmp(url, "https://", 8))
        rest = url + 8;
    else if (!strncasecmp(url, "http://", 7))
        rest = url + 7;
    else
        return 0;
    if (!*rest || *rest == '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* A DKIM selector is one or more DNS labels. */
static int selector_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* Checks the key file now (a typo should fail here, not at the first signed
 * message) and stores its absolute path, since lifeboatd runs elsewhere. */
static int dkim_key_canonical(const char *domain, const char *file, char *out, size_t outlen, char *err,
                              size_t errlen)
{
    char abs[PATH_MAX];
    struct stat sb;
    if (!realpath(file, abs) || stat(abs, &sb) != 0 || !S_ISREG(sb.st_mode) || access(abs, R_OK) != 0)
        return errbuf_fail(err, errlen, "domain %s: DKIM key %.200s is not a readable file", domain, file);
    if (strlen(abs) >= outlen)
        return errbuf_fail(err, errlen, "domain %s: DKIM key path is too long", domain);
    /* The contents too: the selector's .txt record or a public key given by
     * mistake must fail now, not as a warning on every message sent. */
    char why[512];
    if (directory_dkim_key_file_check(abs, why, sizeof why) != 0)
        return errbuf_fail(err, errlen, "domain %s: DKIM %s", domain, why);
    memcpy(out, abs, strlen(abs) + 1);
    return 0;
}

/* Applies ch to d after checking every value; d is only a local copy. */
static int domain_apply(struct store_domain *d, const struct directory_domain_changes *ch, char *err,
                        size_t errlen)
{
    if (ch->routes && routes_canonical(d->name, ch->routes, d->routes, sizeof d->routes, err, errlen) != 0)
        return -1;
    if (ch->recipient_check == 0 || ch->recipient_check == 1)
        d->recipient_check = ch->recipient_check;
    if (ch->outbound_from &&
        outbound_canonical(d->name, ch->outbound_from, d->outbound_from, sizeof d->outbound_from, err,
                           errlen) != 0)
        return -1;
    if (ch->webhook) {
        if (*ch->webhook && strcmp(ch->webhook, "none") != 0) {
            if (!webhook_ok(ch->webhook) || strlen(ch->webhook) >= sizeof d->webhook)
                return errbuf_fail(err, errlen, "domain %s: bad webhook URL \"%.200s\" (expected http:// or https://)",
                                   d->name, ch->webhook);
            memcpy(d->webhook, ch->webhook, strlen(ch->webhook) + 1);
        } else {
            d->webhook[0] = 0;
        }
    }
    if (!!ch->dkim_selector != !!ch->dkim_key_file)
        return errbuf_fail(err, errlen, "domain %s: --dkim-selector and --dkim-key go together", d->name);
    if (ch->dkim_selector) {
        if (!*ch->dkim_selector && !*ch->dkim_key_file) {
            d->dkim_selector[0] = d->dkim_key_file[0] = 0;
        } else {
            if (!selector_ok(ch->dkim_selector) || strlen(ch->dkim_selector) >= sizeof d->dkim_selector)
                return errbuf_fail(err, errlen, "domain %s: bad DKIM selector \"%.100s\"", d->name,
                                   ch->dkim_selector);
            if (dkim_key_canonical(d->name, ch->dkim_key_file, d->dkim_key_file, sizeof d->dkim_key_file,
                                   err, errlen) != 0)
                return -1;
            memcpy(d->dkim_selector, ch->dkim_selector, strlen(ch->dkim_selector) + 1);
        }
    }
    return 0;
}

int directory_domain_set(struct store *st, const char *domain, const struct directory_domain_changes *ch,
                         char *err, size_t errlen)
{
    char name[DOMAIN_MAX + 1];
    if (admin_canonical(domain, name, sizeof name) != 0 || !domain_is_valid(name))
        return errbuf_fail(err, errlen, "\"%.200s\" is not a valid domain name", domain ? domain : "");
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_domain d;
    int rc = store_domain_get(st, name, &d);
    if (rc == STORE_NOTFOUND)
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "domain %s is not hosted", name);
    else if (rc != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", name);
    else if ((rc = domain_apply(&d, ch, err, errlen)) == 0 && store_domain_update(st, &d) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", name);
    return admin_end(st, rc, err, errlen);
}
