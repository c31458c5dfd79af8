/*
 * test_directory_ldap.c — the LDAP sync's decisions without a directory:
 * the pure parts (proxyAddresses, userAccountControl, which entry is a user
 * of the domain, the settings' checks, readiness reasons) and the apply step
 * on a real store (what a list of directory users does to users and aliases:
 * local users untouched, suspension instead of deletion, the sync's own
 * suspension lifted, aliases only into the same customer's domains).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"
#include "test_directory_fixture.h"

/* ---------------------------------------------------------------- pure */

static void test_proxy_addresses(void **state)
{
    (void)state;
    char out[ADDR_MAX + 1];
    int primary = -1;
    assert_int_equal(ldap_proxy_address("SMTP:Alice@Acme.TEST", out, sizeof out, &primary), 1);
    assert_string_equal(out, "alice@acme.test");
    assert_int_equal(primary, 1);
    assert_int_equal(ldap_proxy_address("smtp:a.archer@acme.test", out, sizeof out, &primary), 1);
    assert_int_equal(primary, 0);
    assert_int_equal(ldap_proxy_address("sMtP:x@acme.test", out, sizeof out, &primary), 1); /* any case */
    assert_int_equal(primary, 0);
    assert_int_equal(ldap_proxy_address("X500:/o=acme/cn=alice", out, sizeof out, NULL), 0);
    assert_int_equal(ldap_proxy_address("sip:alice@acme.test", out, sizeof out, NULL), 0);
    assert_int_equal(ldap_proxy_address("smtp:", out, sizeof out, NULL), 0);
    assert_int_equal(ldap_proxy_address("smtp:not an address", out, sizeof out, NULL), 0);
    assert_int_equal(ldap_proxy_address("alice@acme.test", out, sizeof out, NULL), 0); /* no type */
    assert_int_equal(ldap_proxy_address(NULL, out, sizeof out, NULL), 0);
}

static void test_uac_disabled_bit(void **state)
{
    (void)state;
    assert_int_equal(ldap_uac_disabled("512"), 0);   /* NORMAL_ACCOUNT */
    assert_int_equal(ldap_uac_disabled("514"), 1);   /* NORMAL_ACCOUNT | ACCOUNTDISABLE */
    assert_int_equal(ldap_uac_disabled("66050"), 1); /* + DONT_EXPIRE_PASSWORD */
    assert_int_equal(ldap_uac_disabled("66048"), 0);
    assert_int_equal(ldap_uac_disabled("2"), 1);
    assert_int_equal(ldap_uac_disabled("-2147483646"), 1); /* bit 31 as AD writes it, and bit 2 */
    assert_int_equal(ldap_uac_disabled(""), 0);
    assert_int_equal(ldap_uac_disabled("disabled"), 0);
    assert_int_equal(ldap_uac_disabled(NULL), 0);
}

static void test_url_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ldap_url_check("ldap://dc1.acme.test", 0, err, sizeof err), 0);
    assert_int_equal(ldap_url_check("ldap://dc1.acme.test:389/", 1, err, sizeof err), 0);
    assert_int_equal(ldap_url_check("ldaps://127.0.0.1:636", 0, err, sizeof err), 0);
    assert_int_equal(ldap_url_check("LDAPS://[2001:db8::1]:636", 0, err, sizeof err), 0);
    assert_int_equal(ldap_url_check("ldaps://dc1.acme.test", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "StartTLS"));
    assert_int_equal(ldap_url_check("http://dc1.acme.test", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldapi:///var/run/slapd", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldap://dc1:0", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldap://dc1:65536", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldap://dc1:", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldap://dc1/dc=acme,dc=test?mail", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldap://", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("ldap://[::1", 0, err, sizeof err), -1);
    assert_int_equal(ldap_url_check("", 0, err, sizeof err), -1);
}

static void test_filter_check(void **state)
{
    (void)state;
    assert_int_equal(ldap_filter_check(LDAP_FILTER_DEFAULT), 0);
    assert_int_equal(ldap_filter_check("(mail=*)"), 0);
    assert_int_equal(ldap_filter_check("(&(objectClass=user)(!(cn=a\\29b)))"), 0); /* an escaped ')' */
    assert_int_equal(ldap_filter_check("mail=*"), -1);
    assert_int_equal(ldap_filter_check("(mail=*"), -1);
    assert_int_equal(ldap_filter_check("(mail=*))"), -1);
    assert_int_equal(ldap_filter_check("(mail=*)(cn=*)"), -1); /* two filters */
    assert_int_equal(ldap_filter_check("(mail=*\n)"), -1);
    assert_int_equal(ldap_filter_check(""), -1);
}

static void test_interval_parse(void **state)
{
    (void)state;
    int64_t s = 0;
    assert_int_equal(ldap_interval_parse("3h", &s), 0);
    assert_int_equal(s, 10800);
    assert_int_equal(ldap_interval_parse("90m", &s), 0);
    assert_int_equal(s, 5400);
    assert_int_equal(ldap_interval_parse("600", &s), 0);
    assert_int_equal(s, 600);
    assert_int_equal(ldap_interval_parse("1s", &s), -1); /* below LDAP_INTERVAL_MIN */
    assert_int_equal(ldap_interval_parse("3x", &s), -1);
    assert_int_equal(ldap_interval_parse("", &s), -1);
}

static void test_entry_mail_upn_and_domain(void **state)
{
    (void)state;
    char *mail[] = {"Alice@ACME.test", NULL}, *upn[] = {"carol@acme.test", NULL}, *other[] = {"x@other.test", NULL};
    char *display[] = {"Alice Archer", NULL}, *cn[] = {"Alice A", NULL}, *uac[] = {"514", NULL};
    char *proxy[] = {"SMTP:alice@acme.test", "smtp:a.archer@acme.test", "smtp:A.Archer@acme.test",
                     "X500:/o=acme", "smtp:alice@other.test", NULL};
    char *alt[] = {"aa@acme.test", "not an address", NULL};
    struct ldap_person p;

    struct ldap_entry_values e = {.dn = "uid=alice,dc=acme", .mail = mail, .upn = other, .display_name = display,
                                  .cn = cn, .proxy = proxy, .alt = alt, .uac = uac};
    assert_int_equal(ldap_person_from_entry(&e, "acme.test", &p), 1);
    assert_string_equal(p.email, "alice@acme.test");  /* mail wins over the UPN, canonical */
    assert_string_equal(p.name, "Alice Archer");      /* displayName before cn */
    assert_string_equal(p.dn, "uid=alice,dc=acme");
    assert_int_equal(p.disabled, 1);
    /* The primary (the user's own address) is no alias; repeats count once;
     * other domains stay in (the sync decides which are ours). */
    assert_int_equal(p.naliases, 3);
    assert_string_equal(p.aliases[0], "a.archer@acme.test");
    assert_string_equal(p.aliases[1], "alice@other.test");
    assert_string_equal(p.aliases[2], "aa@acme.test");
    ldap_person_free(&p);

    /* No mail: the userPrincipalName; no displayName: cn. */
    struct ldap_entry_values c = {.dn = "uid=carol,dc=acme", .upn = upn, .cn = cn};
    assert_int_equal(ldap_person_from_entry(&c, "acme.test", &p), 1);
    assert_string_equal(p.email, "carol@acme.test");
    assert_string_equal(p.name, "Alice A");
    assert_int_equal(p.disabled, 0);
    assert_int_equal(p.naliases, 0);
    ldap_person_free(&p);

    /* A mail in another domain is another domain's user, whatever the UPN. */
    struct ldap_entry_values o = {.dn = "uid=x,dc=acme", .mail = other, .upn = upn};
    assert_int_equal(ldap_person_from_entry(&o, "acme.test", &p), 0);
    /* Nothing to go by. */
    struct ldap_entry_values n = {.dn = "uid=n,dc=acme", .cn = cn};
    assert_int_equal(ldap_person_from_entry(&n, "acme.test", &p), 0);
    /* A subdomain is not the domain. */
    char *sub[] = {"x@eu.acme.test", NULL};
    struct ldap_entry_values s = {.dn = "uid=s,dc=acme", .mail = sub};
    assert_int_equal(ldap_person_from_entry(&s, "acme.test", &p), 0);
}

static void test_entry_name_cleaned(void **state)
{
    (void)state;
    char *mail[] = {"n@acme.test", NULL};
    char long_name[600];
    memset(long_name, 'a', sizeof long_name);
    /* a two-byte character across the cut at 255 bytes */
    long_name[254] = (char)0xc3;
    long_name[255] = (char)0xa9;
    long_name[sizeof long_name - 1] = 0;
    char *names[] = {"  Line\none\tTab  ", NULL}, *longs[] = {long_name, NULL};
    struct ldap_person p;
    struct ldap_entry_values e = {.dn = "uid=n", .mail = mail, .display_name = names};
    assert_int_equal(ldap_person_from_entry(&e, "acme.test", &p), 1);
    assert_string_equal(p.name, "Line one Tab");
    ldap_person_free(&p);
    e.display_name = longs;
    assert_int_equal(ldap_person_from_entry(&e, "acme.test", &p), 1);
    assert_true(strlen(p.name) <= 254);
    assert_int_equal((unsigned char)p.name[strlen(p.name) - 1], 'a'); /* no half character */
    ldap_person_free(&p);
}

static void test_readiness_reasons(void **state)
{
    (void)state;
    struct store_user_readiness u = {.has_password = 1, .active = 1, .last_login = 1000};
    assert_int_equal(directory_readiness_reasons(&u), 0);
    u.has_password = 0;
    assert_int_equal(directory_readiness_reasons(&u), READINESS_NO_PASSWORD);
    u.last_login = 0;
    assert_int_equal(directory_readiness_reasons(&u), READINESS_NO_PASSWORD | READINESS_NEVER_LOGGED_IN);
    /* A directory user needs no local password, but a cached one. */
    u = (struct store_user_readiness){.ldap = 1, .active = 1, .last_login = 1000};
    assert_int_equal(directory_readiness_reasons(&u), READINESS_LDAP_NO_CACHE);
    u.ldap_cached = 1;
    assert_int_equal(directory_readiness_reasons(&u), 0);
    u.suspended = 1;
    u.active = 0;
    assert_int_equal(directory_readiness_reasons(&u), READINESS_SUSPENDED | READINESS_NOT_ACTIVATED);
    /* Every reason has a code, a text and something to do. */
    for (unsigned bit = 1; bit < (1u << READINESS_REASONS); bit <<= 1) {
        struct directory_readiness_text t;
        directory_readiness_describe(bit, &u, &t);
        assert_true(*t.code && *t.text && *t.fix);
        assert_string_not_equal(t.code, "unknown");
    }
    struct directory_readiness_text t;
    u.sync_suspended = 1;
    directory_readiness_describe(READINESS_SUSPENDED, &u, &t);
    assert_non_null(strstr(t.fix, "directory")); /* enable it there, not here */
}

/* ---------------------------------------------------------------- apply, on a store */

static int setup(void **state)
{
    if (directory_fixture_setup(state, "ldap") != 0)
        return -1;
    struct fixture *f = *state;
    if (directory_customer_add(f->st, "acme", f->err, sizeof f->err) != 0 ||
        directory_customer_add(f->st, "other", f->err, sizeof f->err) != 0 ||
        directory_domain_add(f->st, "acme.test", "acme", "127.0.0.1:25", f->err, sizeof f->err) != 0 ||
        directory_domain_add(f->st, "acme-sales.test", "acme", "127.0.0.1:25", f->err, sizeof f->err) != 0 ||
        directory_domain_add(f->st, "other.test", "other", "127.0.0.1:25", f->err, sizeof f->err) != 0 ||
        directory_user_add(f->st, "local@acme.test", "Local Lou", NULL, "local password 1", 1, f->err,
                           sizeof f->err) != 0)
        return -1;
    return 0;
}

static void add_person(struct ldap_person_list *l, const char *email, const char *name, int disabled,
                       const char *const *aliases)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    struct ldap_person *p = &l->v[l->n++];
    memset(p, 0, sizeof *p);
    char dn[400];
    snprintf(dn, sizeof dn, "mail=%s,dc=acme", email);
    p->dn = strdup(dn);
    snprintf(p->email, sizeof p->email, "%s", email);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->disabled = disabled;
    size_t n = 0;
    while (aliases && aliases[n])
        n++;
    if (n) {
        p->aliases = calloc(n, sizeof *p->aliases);
        for (size_t i = 0; i < n; i++)
            snprintf(p->aliases[i], ADDR_MAX + 1, "%s", aliases[i]);
        p->naliases = n;
    }
}

static void apply(struct fixture *f, const struct ldap_person_list *l, struct store_ldap_report *rep)
{
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    memset(rep, 0, sizeof *rep);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(directory_ldap_apply(f->st, &d, l, rep), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
}

static struct store_user user(struct fixture *f, const char *email)
{
    struct store_user u;
    assert_int_equal(store_user_get(f->st, email, &u), STORE_OK);
    return u;
}

static int64_t alias_owner(struct fixture *f, const char *alias)
{
    int64_t id = 0;
    return store_alias_get(f->st, alias, &id) == STORE_OK ? id : 0;
}

static void test_apply_adds_updates_suspends(void **state)
{
    struct fixture *f = *state;
    struct ldap_person_list l = {0};
    const char *alice_aliases[] = {"a.archer@acme.test", "alice@acme-sales.test", "alice@other.test",
                                   "alice@nowhere.test", NULL};
    add_person(&l, "alice@acme.test", "Alice", 0, alice_aliases);
    add_person(&l, "bob@acme.test", "Bob", 0, NULL);
    add_person(&l, "dave@acme.test", "Dave", 1, NULL);
    add_person(&l, "local@acme.test", "Not Local", 0, NULL);
    add_person(&l, "alice@acme.test", "Alice Twice", 0, NULL);
    struct store_ldap_report rep;
    apply(f, &l, &rep);
    assert_int_equal(rep.added, 3);
    assert_int_equal(rep.aliases, 2); /* other.test is another customer's, nowhere.test not hosted */
    assert_int_equal(rep.nerrors, 2); /* the local user, the second alice */
    assert_non_null(strstr(rep.errors, "local@acme.test: a local user has this address"));
    assert_non_null(strstr(rep.errors, "alice@acme.test: more than one entry"));
    struct store_user alice = user(f, "alice@acme.test"), dave = user(f, "dave@acme.test");
    assert_string_equal(alice.name, "Alice");
    assert_true(alice.active && !alice.suspended && !alice.pw_hash[0]);
    assert_true(dave.suspended);
    assert_int_equal(alias_owner(f, "a.archer@acme.test"), alice.id);
    assert_int_equal(alias_owner(f, "alice@acme-sales.test"), alice.id);
    assert_int_equal(alias_owner(f, "alice@other.test"), 0);
    struct store_user local = user(f, "local@acme.test");
    assert_string_equal(local.name, "Local Lou");
    assert_true(local.pw_hash[0]);
    assert_int_equal(directory_user_is_ldap(f->st, local.id), 0);
    assert_int_equal(directory_user_is_ldap(f->st, alice.id), 1);

    /* Again, the same: nothing changes. */
    apply(f, &l, &rep);
    assert_int_equal(rep.added + rep.updated + rep.suspended + rep.aliases + rep.aliases_removed, 0);

    /* An administrator suspends bob; then bob and an alias leave the
     * directory, alice is renamed, dave is enabled. */
    struct directory_user_changes ch = {.active = -1, .suspended = 1};
    assert_int_equal(directory_user_set(f->st, "bob@acme.test", &ch, f->err, sizeof f->err), 0);
    ldap_person_list_free(&l);
    const char *fewer[] = {"a.archer@acme.test", NULL};
    add_person(&l, "alice@acme.test", "Alice Archer", 0, fewer);
    add_person(&l, "dave@acme.test", "Dave", 0, NULL);
    apply(f, &l, &rep);
    assert_int_equal(rep.added, 0);
    assert_int_equal(rep.updated, 2);   /* alice's name; dave's suspension lifted (the sync's own) */
    assert_int_equal(rep.suspended, 0); /* bob was suspended already (by the administrator) */
    assert_int_equal(rep.aliases_removed, 1);
    assert_int_equal(alias_owner(f, "alice@acme-sales.test"), 0);
    assert_false(user(f, "dave@acme.test").suspended);
    assert_true(user(f, "bob@acme.test").suspended); /* never deleted */

    /* bob comes back: the administrator's suspension stays. */
    add_person(&l, "bob@acme.test", "Bob", 0, NULL);
    apply(f, &l, &rep);
    assert_true(user(f, "bob@acme.test").suspended);

    /* dave leaves: suspended by the sync, then back: lifted. */
    ldap_person_list_free(&l);
    add_person(&l, "alice@acme.test", "Alice Archer", 0, fewer);
    add_person(&l, "bob@acme.test", "Bob", 0, NULL);
    apply(f, &l, &rep);
    assert_int_equal(rep.suspended, 1);
    assert_true(user(f, "dave@acme.test").suspended);
    add_person(&l, "dave@acme.test", "Dave", 0, NULL);
    apply(f, &l, &rep);
    assert_false(user(f, "dave@acme.test").suspended);
    ldap_person_list_free(&l);
}

static void test_apply_alias_conflicts(void **state)
{
    struct fixture *f = *state;
    /* An alias an administrator gave the local user, and an entry that wants it. */
    assert_int_equal(directory_alias_add(f->st, "local@acme.test", "sales@acme.test", f->err, sizeof f->err), 0);
    struct ldap_person_list l = {0};
    const char *wants[] = {"sales@acme.test", "local@acme.test", NULL};
    add_person(&l, "erin@acme.test", "Erin", 0, wants);
    struct store_ldap_report rep;
    apply(f, &l, &rep);
    assert_int_equal(rep.added, 1);
    assert_int_equal(rep.aliases, 0);
    assert_int_equal(rep.nerrors, 2);
    struct store_user local = user(f, "local@acme.test");
    assert_int_equal(alias_owner(f, "sales@acme.test"), local.id); /* still the local user's */
    /* An alias the administrator gave a directory user stays when the entry
     * does not list it (only the sync's own go). */
    struct store_user erin = user(f, "erin@acme.test");
    assert_int_equal(directory_alias_add(f->st, "erin@acme.test", "e@acme.test", f->err, sizeof f->err), 0);
    apply(f, &l, &rep);
    assert_int_equal(alias_owner(f, "e@acme.test"), erin.id);
    ldap_person_list_free(&l);
}

static void test_settings_set(void **state)
{
    struct fixture *f = *state;
    struct directory_ldap_changes ch = {.url = "ldap://dc1.acme.test", .base = "dc=acme,dc=test", .starttls = -1};
    /* A bind DN without its password is refused (it would bind anonymously). */
    ch.bind_dn = "cn=sync,dc=acme,dc=test";
    assert_refused_as(directory_ldap_set(f->st, "acme.test", &ch, 100, f->err, sizeof f->err), DIR_INVALID,
                      "ldap acme.test: a bind DN needs its password (an empty one would be an anonymous bind)");
    ch.bind_password = "s3cret";
    assert_ok(directory_ldap_set(f->st, "acme.test", &ch, 100, f->err, sizeof f->err));
    struct store_domain d;
    struct store_ldap_settings s;
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_int_equal(store_ldap_settings_get(f->st, d.id, &s), STORE_OK);
    assert_string_equal(s.filter, LDAP_FILTER_DEFAULT);
    assert_int_equal(s.interval, LDAP_INTERVAL_DEFAULT);
    assert_int_equal(s.starttls, 0);
    /* An update keeps what it does not name, the password too. */
    struct directory_ldap_changes up = {.interval = "30m", .starttls = 1};
    assert_ok(directory_ldap_set(f->st, "acme.test", &up, 200, f->err, sizeof f->err));
    assert_int_equal(store_ldap_settings_get(f->st, d.id, &s), STORE_OK);
    assert_string_equal(s.bind_password, "s3cret");
    assert_string_equal(s.url, "ldap://dc1.acme.test");
    assert_int_equal(s.interval, 1800);
    assert_int_equal(s.starttls, 1);
    assert_int_equal(s.updated, 200);
    struct directory_ldap_changes bad = {.url = "ldaps://dc1.acme.test", .starttls = 1};
    assert_refused_as(directory_ldap_set(f->st, "acme.test", &bad, 300, f->err, sizeof f->err), DIR_INVALID,
                      "ldap acme.test: StartTLS is for ldap:// URLs; ldaps:// is TLS from the start");
    struct directory_ldap_changes nodomain = {.url = "ldap://x", .base = "dc=x", .starttls = -1};
    assert_refused_as(directory_ldap_set(f->st, "nowhere.test", &nodomain, 300, f->err, sizeof f->err),
                      DIR_NOTFOUND, "ldap: domain nowhere.test is not hosted");
    struct directory_ldap_changes nourl = {.base = "dc=x", .starttls = -1};
    assert_refused_as(directory_ldap_set(f->st, "acme-sales.test", &nourl, 300, f->err, sizeof f->err),
                      DIR_INVALID, "ldap acme-sales.test: the URL and the base DN are required");
}

struct readiness_seen {
    const char *email;
    int found;
    unsigned reasons;
    struct store_user_readiness u;
};

static int readiness_cb(const struct store_user_readiness *u, unsigned reasons, void *arg)
{
    struct readiness_seen *x = arg;
    if (strcmp(u->email, x->email) == 0) {
        x->found++;
        x->reasons = reasons;
        x->u = *u;
    }
    return 0;
}

static void test_login_records_last_login_and_cache(void **state)
{
    struct fixture *f = *state;
    struct ldap_person_list l = {0};
    add_person(&l, "frank@acme.test", "Frank", 0, NULL);
    struct store_ldap_report rep;
    apply(f, &l, &rep);
    ldap_person_list_free(&l);
    struct store_user frank = user(f, "frank@acme.test");
    struct directory_auth auth = {.ok = 1, .source = DIRECTORY_AUTH_LDAP_BIND};
    assert_int_equal(password_hash("frank-pw", auth.cache_hash), 0);
    struct directory_login_attempt none = {0};
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(directory_login_succeeded(f->st, frank.id, &none, &auth, 12345), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    struct store_ldap_user lu;
    assert_int_equal(store_ldap_user_get(f->st, frank.id, &lu), STORE_OK);
    assert_true(password_verify(lu.pw_cache, "frank-pw"));
    /* With the directory unreachable (no settings: nobody to ask) the cache decides. */
    struct directory_auth out;
    assert_int_equal(directory_password_check_login(f->st, &frank, "frank-pw", &out), 1);
    assert_int_equal(out.source, DIRECTORY_AUTH_LDAP_CACHE);
    assert_int_equal(out.directory_down, 1);
    assert_int_equal(directory_password_check_login(f->st, &frank, "frank-pw2", &out), 0);
    /* A local user: the local hash; nobody: never. */
    struct store_user local = user(f, "local@acme.test");
    assert_int_equal(directory_password_check_login(f->st, &local, "local password 1", &out), 1);
    assert_int_equal(out.source, DIRECTORY_AUTH_LOCAL);
    assert_int_equal(directory_password_check_login(f->st, NULL, "local password 1", &out), 0);
    /* Readiness sees the login and the cache. */
    struct readiness_seen seen = {.email = "frank@acme.test"};
    assert_int_equal(directory_readiness(f->st, frank.domain_id, 0, readiness_cb, &seen), STORE_OK);
    assert_int_equal(seen.found, 1);
    assert_int_equal(seen.reasons, 0);
    assert_int_equal(seen.u.last_login, 12345);
    assert_true(seen.u.ldap && seen.u.ldap_cached);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_addresses),
        cmocka_unit_test(test_uac_disabled_bit),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_filter_check),
        cmocka_unit_test(test_interval_parse),
        cmocka_unit_test(test_entry_mail_upn_and_domain),
        cmocka_unit_test(test_entry_name_cleaned),
        cmocka_unit_test(test_readiness_reasons),
        cmocka_unit_test_setup_teardown(test_apply_adds_updates_suspends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_alias_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_records_last_login_and_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
