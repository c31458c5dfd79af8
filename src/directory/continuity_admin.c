/*
 * continuity_admin.c — subscriptions and the continuity settings of a domain
 * (see directory.h "subscriptions and continuity"), the rules SPEC.md's
 * "Administration" section fixes:
 *
 *   - a subscription commits to a minimum term of at least 12 calendar months
 *     and cannot be cancelled inside it; continuity and the archive begin when
 *     it starts;
 *   - continuity can only be enabled for a domain whose customer has an active
 *     subscription, and always for all of the domain's users;
 *   - enabling is not retroactive: continuity_since records the moment, and the
 *     continuity engine diverts only mail received at or after it.
 *
 * The clock is a parameter (now) so that the term rules can be tested without
 * waiting a year. Every check and the change it guards share one transaction.
 */
#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/timeutil.h"

#include <string.h>
#include <time.h>

int directory_subscription_active(const struct store_customer *c)
{
    return c->sub_start != 0 && c->sub_cancelled == 0;
}

int64_t directory_add_months(int64_t t, int months)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return t;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long month = (long)tm.tm_mon + months;
    tm.tm_year += (int)(month / 12);
    tm.tm_mon = (int)(month % 12);
    if (tm.tm_mon < 0) {
        tm.tm_mon += 12;
        tm.tm_year--;
    }
    int year = tm.tm_year + 1900;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int last = days[tm.tm_mon] + (tm.tm_mon == 1 && leap);
    if (tm.tm_mday > last) /* 31 January + 1 month: the last day of February */
        tm.tm_mday = last;
    return (int64_t)timegm(&tm);
}

const char *directory_state_name(int state)
{
    switch (state) {
    case DOMAIN_NORMAL:
        return "normal";
    case DOMAIN_OUTAGE:
        return "outage";
    case DOMAIN_RECOVERING:
        return "recovering";
    default:
        return "unknown";
    }
}

/* Reads the customer inside the transaction; -1 with the reason otherwise. */
static int customer_locked(struct store *st, const char *name, struct store_customer *c, char *err,
                           size_t errlen)
{
    int rc = store_customer_get(st, name, c);
    if (rc == STORE_NOTFOUND)
        return errbuf_failc(DIR_NOTFOUND, err, errlen, "customer %.200s does not exist", name);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "customer %.200s: store error", name);
    return 0;
}

int directory_subscription_start(struct store *st, const char *customer, int months, int64_t now, char *err,
                                 size_t errlen)
{
    if (!customer || !*customer)
        return errbuf_fail(err, errlen, "a customer name is required");
    if (months < SUBSCRIPTION_MIN_MONTHS)
        return errbuf_fail(err, errlen,
                           "customer %.200s: a subscription runs for at least %d months (the minimum term), not %d",
                           customer, SUBSCRIPTION_MIN_MONTHS, months);
    if (months > SUBSCRIPTION_MAX_MONTHS)
        return errbuf_fail(err, errlen, "customer %.200s: a term of %d months is too long (at most %d)", customer,
                           months, SUBSCRIPTION_MAX_MONTHS);
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_customer c;
    int rc = customer_locked(st, customer, &c, err, errlen);
    if (rc == 0 && directory_subscription_active(&c)) {
        char since[32], until[32];
        time_iso8601((time_t)c.sub_start, since, sizeof since);
        time_iso8601((time_t)c.sub_end, until, sizeof until);
        rc = errbuf_failc(DIR_EXISTS, err, errlen,
                         "customer %s already has an active subscription (since %s, minimum term until %s)", c.name,
                         since, until);
    } else if (rc == 0) {
        c.sub_start = now;
        c.sub_end = directory_add_months(now, months);
        c.sub_cancelled = 0;
        if (store_customer_update(st, &c) != STORE_OK)
            rc = errbuf_failc(DIR_STORE, err, errlen, "customer %s: store error", c.name);
    }
    return admin_end(st, rc, err, errlen);
}

struct disable_all {
    struct store *st;
    int64_t customer_id;
    int disabled;
    int failed;
};

static int disable_domain(const struct store_domain *d, void *arg)
{
    struct disable_all *a = arg;
    if (d->customer_id != a->customer_id || !d->continuity)
        return 0;
    if (store_domain_set_continuity(a->st, d->id, 0, d->outgoing_to_own, 0) != STORE_OK) {
        a->failed = 1;
        return 1;
    }
    a->disabled++;
    return 0;
}

int directory_subscription_cancel(struct store *st, const char *customer, int64_t now, int *disabled, char *err,
                                  size_t errlen)
{
    if (disabled)
        *disabled = 0;
    if (!customer || !*customer)
        return errbuf_fail(err, errlen, "a customer name is required");
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_customer c;
    struct disable_all all = {st, 0, 0, 0};
    int rc = customer_locked(st, customer, &c, err, errlen);
    if (rc == 0 && !directory_subscription_active(&c)) {
        rc = errbuf_failc(DIR_REFUSED, err, errlen, "customer %s has no active subscription to cancel", c.name);
    } else if (rc == 0 && now < c.sub_end) {
        char from[32];
        time_iso8601((time_t)c.sub_end, from, sizeof from);
        rc = errbuf_failc(DIR_REFUSED, err, errlen,
                         "customer %s: the subscription cannot be cancelled inside its minimum term; "
                         "it can be cancelled from %s",
                         c.name, from);
    } else if (rc == 0) {
        c.sub_cancelled = now;
        all.customer_id = c.id;
        /* Continuity needs a subscription: it ends with it, on every domain. */
        if (store_customer_update(st, &c) != STORE_OK || store_domain_list(st, disable_domain, &all) != STORE_OK ||
            all.failed)
            rc = errbuf_failc(DIR_STORE, err, errlen, "customer %s: store error", c.name);
    }
    rc = admin_end(st, rc, err, errlen);
    if (rc == 0 && disabled)
        *disabled = all.disabled;
    return rc;
}

/* Reads the domain named by the administrator inside the transaction. */
static int domain_locked(struct store *st, const char *domain, struct store_domain *d, char *err, size_t errlen)
{
    char name[DOMAIN_MAX + 1];
    if (admin_canonical(domain, name, sizeof name) != 0 || !domain_is_valid(name))
        return errbuf_fail(err, errlen, "\"%.200s\" is not a valid domain name", domain ? domain : "");
    int rc = store_domain_get(st, name, d);
    if (rc == STORE_NOTFOUND)
        return errbuf_failc(DIR_NOTFOUND, err, errlen, "domain %s is not hosted", name);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", name);
    return 0;
}

int directory_continuity_enable(struct store *st, const char *domain, int outgoing_to_own, int64_t now,
                                int *was_enabled, char *err, size_t errlen)
{
    if (was_enabled)
        *was_enabled = 0;
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_domain d;
    struct store_customer c;
    int rc = domain_locked(st, domain, &d, err, errlen);
    if (rc == 0 && store_customer_get_by_id(st, d.customer_id, &c) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: cannot read its customer (store error)", d.name);
    if (rc == 0 && !directory_subscription_active(&c))
        rc = errbuf_failc(DIR_REFUSED, err, errlen,
                         "domain %s: customer %s has no active subscription; continuity needs one "
                         "(subscription start %s)",
                         d.name, c.name, c.name);
    int enabled_before = rc == 0 && d.continuity;
    /* Enabled already: only the outgoing flag may change, the start stays (mail
     * deferred since then is continuity's already). Newly enabled: what is
     * queued for the domain now stays in the ordinary queue. The mark makes
     * that exact: continuity_since has a resolution of a second, and a deferral
     * and this command can fall into the same one. */
    if (rc == 0 &&
        (store_domain_set_continuity(st, d.id, 1, outgoing_to_own, enabled_before ? d.continuity_since : now) !=
             STORE_OK ||
         (!enabled_before && store_rcpt_mark_pre_continuity(st, d.name, NULL) != STORE_OK)))
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", d.name);
    rc = admin_end(st, rc, err, errlen);
    if (rc == 0 && was_enabled)
        *was_enabled = enabled_before;
    return rc;
}

int directory_continuity_disable(struct store *st, const char *domain, int *was_enabled, char *err,
                                 size_t errlen)
{
    if (was_enabled)
        *was_enabled = 0;
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_domain d;
    int rc = domain_locked(st, domain, &d, err, errlen);
    int enabled_before = rc == 0 && d.continuity;
    if (enabled_before && store_domain_set_continuity(st, d.id, 0, d.outgoing_to_own, 0) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", d.name);
    rc = admin_end(st, rc, err, errlen);
    if (rc == 0 && was_enabled)
        *was_enabled = enabled_before;
    return rc;
}
