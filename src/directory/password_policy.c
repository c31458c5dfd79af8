/*
 * password_policy.c — what a new password must look like (see directory.h
 * "password policy").
 *
 * Each customer may set a policy (lifeboatctl policy set): a minimum length
 * and which classes of characters must occur. Customers without one get
 * password_policy_default: at least 8 characters, no class required (length
 * is what makes a password hard to guess; composition rules mostly make it
 * hard to remember). The policy applies wherever a password is set: the
 * webmail's password change and reset, and lifeboatctl user add/set.
 *
 * The check itself is a pure function over the password. Length counts
 * characters (UTF-8 code points, so "pässwörd" is 8), not bytes; a password
 * must be valid UTF-8 without control characters (it has to be typed again
 * on another device), and is never longer than PASSWORD_BYTES_MAX bytes
 * (argon2id's cost does not depend on the length, but nothing needs more).
 * Classes follow Unicode through GLib: an upper-case letter (or a title-case
 * one), a lower-case letter, a decimal digit, and a special character, which
 * is anything that is neither a letter nor a digit (punctuation, symbols, the
 * space; not a combining mark, which belongs to its letter). A letter without case (CJK, Arabic) counts as neither upper nor lower.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "directory/admin_internal.h"
#include "directory/directory.h"

const struct password_policy password_policy_default = {
    .min_length = PASSWORD_POLICY_DEFAULT_LENGTH,
    .upper = 0,
    .lower = 0,
    .digit = 0,
    .special = 0,
};

/* ---------------------------------------------------------------- the check */

struct pw_classes {
    size_t chars;
    int upper, lower, digit, special, control;
};

/* Counts the characters of s (valid UTF-8) and which classes occur. */
static void classify(const char *s, struct pw_classes *c)
{
    memset(c, 0, sizeof *c);
    for (const char *p = s; *p; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        c->chars++;
        if (g_unichar_iscntrl(u))
            c->control = 1;
        else if (g_unichar_isupper(u) || g_unichar_istitle(u))
            c->upper = 1;
        else if (g_unichar_islower(u))
            c->lower = 1;
        else if (g_unichar_isdigit(u))
            c->digit = 1;
        else if (!g_unichar_isalpha(u) && !g_unichar_ismark(u)) /* a combining accent belongs to its letter */
            c->special = 1;
    }
}

/* Appends the class names in "a, b and c" form. */
static void append_list(char *out, size_t outlen, const char *const *items, size_t n)
{
    size_t len = strlen(out);
    for (size_t i = 0; i < n && len < outlen; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
        int w = snprintf(out + len, outlen - len, "%s%s", sep, items[i]);
        len += w > 0 ? (size_t)w : 0;
    }
}

int password_policy_check(const struct password_policy *p, const char *password, char *msg, size_t msglen)
{
    char scratch[PASSWORD_POLICY_MSG_MAX];
    if (!msg || !msglen) {
        msg = scratch;
        msglen = sizeof scratch;
    }
    msg[0] = 0;
    if (!password)
        password = "";
    /* What no policy can allow comes first, on its own. */
    if (strlen(password) > PASSWORD_BYTES_MAX) {
        snprintf(msg, msglen, "password must be at most %d bytes", PASSWORD_BYTES_MAX);
        return -1;
    }
    if (!g_utf8_validate(password, -1, NULL)) {
        snprintf(msg, msglen, "password must be valid UTF-8");
        return -1;
    }
    struct pw_classes c;
    classify(password, &c);
    if (c.control) {
        snprintf(msg, msglen, "password must not contain control characters");
        return -1;
    }

    unsigned min = p->min_length ? p->min_length : 1; /* never an empty password */
    int short_ = c.chars < min;
    const char *missing[4];
    size_t nmissing = 0;
    if (p->upper && !c.upper)
        missing[nmissing++] = "an upper-case letter";
    if (p->lower && !c.lower)
        missing[nmissing++] = "a lower-case letter";
    if (p->digit && !c.digit)
        missing[nmissing++] = "a digit";
    if (p->special && !c.special)
        missing[nmissing++] = "a special character";
    if (!short_ && nmissing == 0)
        return 0;

    snprintf(msg, msglen, "password must");
    if (short_) {
        size_t len = strlen(msg);
        snprintf(msg + len, msglen - len, " be at least %u character%s", min, min == 1 ? "" : "s");
    }
    if (nmissing) {
        size_t len = strlen(msg);
        snprintf(msg + len, msglen - len, "%s contain ", short_ ? " and" : "");
        append_list(msg, msglen, missing, nmissing);
    }
    return -1;
}

void password_policy_describe(const struct password_policy *p, char *out, size_t outlen)
{
    const char *classes[4];
    size_t n = 0;
    if (p->upper)
        classes[n++] = "an upper-case letter";
    if (p->lower)
        classes[n++] = "a lower-case letter";
    if (p->digit)
        classes[n++] = "a digit";
    if (p->special)
        classes[n++] = "a special character";
    snprintf(out, outlen, "at least %u character%s", p->min_length, p->min_length == 1 ? "" : "s");
    if (n) {
        size_t len = strlen(out);
        snprintf(out + len, outlen - len, ", with ");
        append_list(out, outlen, classes, n);
    }
}

/* ---------------------------------------------------------------- in the store */

int directory_password_policy_get(struct store *st, int64_t customer_id, struct password_policy *out,
                                  int *is_default)
{
    struct store_password_policy sp;
    int rc = store_password_policy_get(st, customer_id, &sp);
    if (rc == STORE_NOTFOUND) {
        *out = password_policy_default;
        if (is_default)
            *is_default = 1;
        return STORE_OK;
    }
    if (rc != STORE_OK)
        return STORE_ERR;
    *out = (struct password_policy){
        .min_length = sp.min_length, .upper = sp.upper, .lower = sp.lower, .digit = sp.digit, .special = sp.special};
    if (is_default)
        *is_default = 0;
    return STORE_OK;
}

int directory_password_check(struct store *st, int64_t domain_id, const char *password, char *msg,
                             size_t msglen)
{
    struct store_domain d;
    struct password_policy p;
    int rc = store_domain_get_by_id(st, domain_id, &d);
    if (rc == STORE_OK)
        rc = directory_password_policy_get(st, d.customer_id, &p, NULL);
    if (rc != STORE_OK) {
        snprintf(msg, msglen, "cannot read the password policy (store error)");
        return -1;
    }
    return password_policy_check(&p, password, msg, msglen) == 0 ? 0 : 1;
}

/* One rule of a change: 1 or 0 set it, anything else leaves it. */
static void apply_flag(int *rule, int change)
{
    if (change == 0 || change == 1)
        *rule = change;
}

int directory_password_policy_set(struct store *st, const char *customer, const struct directory_policy_changes *ch,
                                  struct password_policy *result, char *err, size_t errlen)
{
    if (!customer || !*customer)
        return errbuf_fail(err, errlen, "policy: the customer name is missing");
    if (ch->min_length != -1 && (ch->min_length < 1 || ch->min_length > PASSWORD_POLICY_LENGTH_MAX))
        return errbuf_fail(err, errlen, "policy of customer %.128s: the minimum length must be from 1 to %d",
                           customer, PASSWORD_POLICY_LENGTH_MAX);
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_customer c;
    struct password_policy p;
    int rc = store_customer_get(st, customer, &c);
    if (rc == STORE_NOTFOUND)
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "customer %.128s does not exist", customer);
    else if (rc != STORE_OK || directory_password_policy_get(st, c.id, &p, NULL) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "policy of customer %.128s: store error", customer);
    if (rc == 0) {
        if (ch->min_length != -1)
            p.min_length = (unsigned)ch->min_length;
        apply_flag(&p.upper, ch->upper);
        apply_flag(&p.lower, ch->lower);
        apply_flag(&p.digit, ch->digit);
        apply_flag(&p.special, ch->special);
        struct store_password_policy sp = {.customer_id = c.id,
                                           .min_length = p.min_length,
                                           .upper = p.upper,
                                           .lower = p.lower,
                                           .digit = p.digit,
                                           .special = p.special};
        if (store_password_policy_set(st, &sp) != STORE_OK)
            rc = errbuf_failc(DIR_STORE, err, errlen, "policy of customer %s: store error", c.name);
        else if (result)
            *result = p;
    }
    return admin_end(st, rc, err, errlen);
}
