/*
 * test_directory_admin.c — the directory on a real (temporary) SQLite store:
 * administration rules and their one-line errors, recipient lookup with aliases
 * and case differences, and who may relay.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_directory_fixture.h"
#include "test_dkim_helpers.h"
#include "util/log.h"

static int setup(void **state)
{
    return directory_fixture_setup(state, "test_directory_admin");
}

/* acme (acme.test, acme.example) and other (other.test), a few users. */
static void populate(struct fixture *f)
{
    assert_ok(directory_customer_add(f->st, "acme", ERR));
    assert_ok(directory_customer_add(f->st, "other", ERR));
    assert_ok(directory_domain_add(f->st, "Acme.TEST", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "acme.example", "acme", "mx.acme.test:2525", ERR));
    assert_ok(directory_domain_add(f->st, "other.test", "other", "[192.0.2.25]:25", ERR));
    assert_ok(directory_user_add(f->st, "Bob@Acme.Test", "Bob Builder", "user", "s3cret-pass", 1, ERR));
    assert_ok(directory_user_add(f->st, "carol@acme.test", NULL, NULL, NULL, 0, ERR));
    assert_ok(directory_user_add(f->st, "dave@other.test", NULL, "admin", NULL, 1, ERR));
}

static void test_customers(void **state)
{
    struct fixture *f = *state;
    assert_ok(directory_customer_add(f->st, "acme", ERR));
    assert_refused(directory_customer_add(f->st, "acme", ERR), "customer acme already exists");
    assert_ok(directory_customer_add(f->st, "Acme Corp", ERR));
    assert_refused(directory_customer_add(f->st, "", ERR),
                   "customer name must be 1 to 127 characters, no control characters");
    assert_refused(directory_customer_add(f->st, "bad\nname", ERR),
                   "customer name must be 1 to 127 characters, no control characters");
    assert_refused(directory_customer_add(f->st, " acme", ERR), "customer \" acme\": name starts or ends with a space");
    struct store_customer c;
    assert_int_equal(store_customer_get(f->st, "Acme Corp", &c), STORE_OK);
}

/* The kind of a refusal is a code the HTTP API maps to its status. */
static void test_refusal_kinds(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_refused_as(directory_customer_add(f->st, "acme", ERR), DIR_EXISTS, "customer acme already exists");
    assert_refused_as(directory_user_add(f->st, "not an address", NULL, NULL, NULL, 1, ERR), DIR_INVALID,
                      "user \"not an address\" is not a valid address");
    assert_refused_as(directory_user_set(f->st, "nobody@acme.test", &(struct directory_user_changes){.active = 1,
                                                                                                    .suspended = -1},
                                         ERR),
                      DIR_NOTFOUND, "user nobody@acme.test does not exist");
    assert_refused_as(directory_user_add(f->st, "eve@acme.test", NULL, NULL, "short", 1, ERR), DIR_POLICY,
                      "user eve@acme.test: password must be at least 8 characters");
    assert_refused_as(directory_continuity_enable(f->st, "acme.test", 0, 1000, NULL, ERR), DIR_REFUSED,
                      "domain acme.test: customer acme has no active subscription; continuity needs one "
                      "(subscription start acme)");
}

/* Inside a caller's transaction (a writer job) a call is a savepoint: its
 * refusal undoes only its own changes, and its success is the caller's to
 * commit or roll back. */
static void test_nested_in_transaction(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_ok(directory_user_add(f->st, "erin@acme.test", NULL, NULL, NULL, 1, ERR));
    assert_refused_as(directory_user_add(f->st, "erin@acme.test", NULL, NULL, NULL, 1, ERR), DIR_EXISTS,
                      "user erin@acme.test already exists");
    assert_true(store_in_transaction(f->st));
    assert_int_equal(store_savepoint_depth(f->st), 0);
    assert_int_equal(store_rollback(f->st), STORE_OK);
    struct store_user u;
    assert_int_equal(store_user_get(f->st, "erin@acme.test", &u), STORE_NOTFOUND);

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_ok(directory_user_add(f->st, "erin@acme.test", NULL, NULL, NULL, 1, ERR));
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_user_get(f->st, "erin@acme.test", &u), STORE_OK);
}

static void test_domains(void **state)
{
    struct fixture *f = *state;
    assert_refused(directory_domain_add(f->st, "example.com", "acme", "mx.example.com", ERR),
                   "domain example.com: customer acme does not exist");
    assert_ok(directory_customer_add(f->st, "acme", ERR));
    assert_refused(directory_domain_add(f->st, "bad domain", "acme", "mx.example.com", ERR),
                   "\"bad domain\" is not a valid domain name");
    assert_refused(directory_domain_add(f->st, "example.com", "acme", "mx.example.com:99999", ERR),
                   "domain example.com: bad route \"mx.example.com:99999\" (expected HOST[:PORT][,HOST[:PORT]...], at most 8 hosts)");
    assert_ok(directory_domain_add(f->st, "Example.COM", "acme", "MX1.example.com, mx2.example.com:2525", ERR));
    assert_refused(directory_domain_add(f->st, "example.com", "acme", "mx.example.com", ERR),
                   "domain example.com already exists");

    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "example.com", &d), STORE_OK);
    assert_string_equal(d.name, "example.com");
    assert_string_equal(d.routes, "mx1.example.com:25,mx2.example.com:2525");
    assert_int_equal(d.recipient_check, 0);
    assert_string_equal(d.outbound_from, "");
}

static void test_domain_set(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct directory_domain_changes ch = {.recipient_check = -1};
    assert_refused(directory_domain_set(f->st, "nowhere.test", &ch, ERR), "domain nowhere.test is not hosted");

    ch.routes = "[2001:db8::25]:2525,mx9.acme.test";
    ch.recipient_check = 1;
    ch.outbound_from = " 192.0.2.77/24 , 2001:DB8::/32,198.51.100.7";
    ch.webhook = "https://hooks.acme.test/lifeboat";
    assert_ok(directory_domain_set(f->st, "ACME.test", &ch, ERR));
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_string_equal(d.routes, "[2001:db8::25]:2525,mx9.acme.test:25");
    assert_int_equal(d.recipient_check, 1);
    assert_string_equal(d.outbound_from, "192.0.2.0/24,2001:db8::/32,198.51.100.7");
    assert_string_equal(d.webhook, "https://hooks.acme.test/lifeboat");

    /* Only what is given changes. */
    struct directory_domain_changes only_check = {.recipient_check = 0};
    assert_ok(directory_domain_set(f->st, "acme.test", &only_check, ERR));
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_int_equal(d.recipient_check, 0);
    assert_string_equal(d.outbound_from, "192.0.2.0/24,2001:db8::/32,198.51.100.7");

    /* Bad values are refused and nothing changes. */
    struct directory_domain_changes bad = {.recipient_check = 1, .outbound_from = "192.0.2.0/24,10.0.0.0/33"};
    assert_refused(directory_domain_set(f->st, "acme.test", &bad, ERR),
                   "domain acme.test: bad --outbound-from entry \"10.0.0.0/33\" (expected an address or a CIDR like 192.0.2.0/24)");
    bad.outbound_from = "192.0.2.0/24,";
    assert_refused(directory_domain_set(f->st, "acme.test", &bad, ERR),
                   "domain acme.test: bad --outbound-from \"192.0.2.0/24,\": empty or overlong entry");
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_int_equal(d.recipient_check, 0);
    struct directory_domain_changes hook = {.recipient_check = -1, .webhook = "ftp://x.test/"};
    assert_refused(directory_domain_set(f->st, "acme.test", &hook, ERR),
                   "domain acme.test: bad webhook URL \"ftp://x.test/\" (expected http:// or https://)");
    hook.webhook = "";
    assert_ok(directory_domain_set(f->st, "acme.test", &hook, ERR));
    struct directory_domain_changes clear = {.recipient_check = -1, .outbound_from = ""};
    assert_ok(directory_domain_set(f->st, "acme.test", &clear, ERR));
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_string_equal(d.outbound_from, "");
    assert_string_equal(d.webhook, "");

    /* DKIM: selector and key together, the key a readable file, kept absolute. */
    struct directory_domain_changes dkim = {.recipient_check = -1, .dkim_selector = "s1"};
    assert_refused(directory_domain_set(f->st, "acme.test", &dkim, ERR),
                   "domain acme.test: --dkim-selector and --dkim-key go together");
    char key[128], want[256];
    snprintf(key, sizeof key, "%s/dkim.key", f->t.root);
    snprintf(want, sizeof want, "domain acme.test: DKIM key %s is not a readable file", key);
    dkim.dkim_key_file = key;
    assert_refused(directory_domain_set(f->st, "acme.test", &dkim, ERR), want);
    /* A file that is no private key is refused at set time, not at the first message. */
    FILE *kf = fopen(key, "w");
    assert_non_null(kf);
    fputs("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", kf);
    fclose(kf);
    assert_int_equal(directory_domain_set(f->st, "acme.test", &dkim, ERR), -1);
    assert_non_null(strstr(f->err, "domain acme.test: DKIM key file "));
    EVP_PKEY *pk = tk_rsa(1024);
    size_t pemlen = 0;
    unsigned char *pem = tk_private(pk, TK_PKCS8_PEM, &pemlen);
    kf = fopen(key, "w");
    assert_non_null(kf);
    assert_int_equal(fwrite(pem, 1, pemlen, kf), pemlen);
    fclose(kf);
    free(pem);
    EVP_PKEY_free(pk);
    assert_ok(directory_domain_set(f->st, "acme.test", &dkim, ERR));
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_string_equal(d.dkim_selector, "s1");
    assert_string_equal(d.dkim_key_file, key);
    dkim.dkim_selector = "bad selector";
    assert_refused(directory_domain_set(f->st, "acme.test", &dkim, ERR),
                   "domain acme.test: bad DKIM selector \"bad selector\"");
}

static void test_users(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_refused(directory_user_add(f->st, "eve@nowhere.test", NULL, NULL, NULL, 0, ERR),
                   "user eve@nowhere.test: domain nowhere.test is not hosted");
    assert_refused(directory_user_add(f->st, "not-an-address", NULL, NULL, NULL, 0, ERR),
                   "user \"not-an-address\" is not a valid address");
    assert_refused(directory_user_add(f->st, "BOB@acme.test", NULL, NULL, NULL, 0, ERR),
                   "user bob@acme.test already exists");
    assert_refused(directory_user_add(f->st, "eve@acme.test", NULL, "root", NULL, 0, ERR),
                   "user eve@acme.test: unknown role \"root\" (expected user, admin or operator)");
    assert_refused(directory_user_add(f->st, "eve@acme.test", NULL, NULL, "", 0, ERR),
                   "user eve@acme.test: the password is empty");

    struct store_user u;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &u), STORE_OK);
    assert_string_equal(u.email, "bob@acme.test");
    assert_string_equal(u.name, "Bob Builder");
    assert_int_equal(u.role, ROLE_USER);
    assert_int_equal(u.active, 1);
    assert_int_equal(u.suspended, 0);
    assert_int_equal(strncmp(u.pw_hash, "$argon2id$", 10), 0);
    assert_true(password_verify(u.pw_hash, "s3cret-pass"));
    assert_int_equal(store_user_get(f->st, "carol@acme.test", &u), STORE_OK);
    assert_string_equal(u.pw_hash, "");
    assert_int_equal(u.active, 0);
    assert_int_equal(store_user_get(f->st, "dave@other.test", &u), STORE_OK);
    assert_int_equal(u.role, ROLE_ADMIN);

    /* user set */
    struct directory_user_changes ch = {.active = 1, .suspended = -1, .password = "n3w-password", .alt_email = "Carol@Home.example",
                                        .role = "operator"};
    assert_ok(directory_user_set(f->st, "CAROL@acme.test", &ch, ERR));
    assert_int_equal(store_user_get(f->st, "carol@acme.test", &u), STORE_OK);
    assert_int_equal(u.active, 1);
    assert_int_equal(u.role, ROLE_OPERATOR);
    assert_string_equal(u.alt_email, "carol@home.example");
    assert_true(password_verify(u.pw_hash, "n3w-password"));

    struct directory_user_changes suspend = {.active = -1, .suspended = 1};
    assert_ok(directory_user_set(f->st, "carol@acme.test", &suspend, ERR));
    assert_int_equal(store_user_get(f->st, "carol@acme.test", &u), STORE_OK);
    assert_int_equal(u.suspended, 1);
    assert_int_equal(u.active, 1);
    assert_true(password_verify(u.pw_hash, "n3w-password")); /* untouched */
    struct directory_user_changes activate = {.active = 1, .suspended = -1};
    assert_ok(directory_user_set(f->st, "carol@acme.test", &activate, ERR));
    assert_int_equal(store_user_get(f->st, "carol@acme.test", &u), STORE_OK);
    assert_int_equal(u.suspended, 0);

    struct directory_user_changes bad = {.active = -1, .suspended = -1, .alt_email = "nope"};
    assert_refused(directory_user_set(f->st, "carol@acme.test", &bad, ERR),
                   "alternate address \"nope\" is not a valid address");
    bad.alt_email = "carol@ACME.test";
    assert_refused(directory_user_set(f->st, "carol@acme.test", &bad, ERR),
                   "user carol@acme.test: the alternate address must be another address");
    bad.alt_email = "";
    assert_ok(directory_user_set(f->st, "carol@acme.test", &bad, ERR));
    assert_int_equal(store_user_get(f->st, "carol@acme.test", &u), STORE_OK);
    assert_string_equal(u.alt_email, "");
    assert_refused(directory_user_set(f->st, "nobody@acme.test", &activate, ERR), "user nobody@acme.test does not exist");

    /* user del */
    assert_ok(directory_user_del(f->st, "Carol@Acme.Test", ERR));
    assert_int_equal(store_user_get(f->st, "carol@acme.test", &u), STORE_NOTFOUND);
    assert_refused(directory_user_del(f->st, "carol@acme.test", ERR), "user carol@acme.test does not exist");
}

static void test_aliases(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_ok(directory_alias_add(f->st, "BOB@acme.test", "Sales@ACME.test", ERR));
    assert_ok(directory_alias_add(f->st, "bob@acme.test", "bob@acme.example", ERR)); /* same customer */
    assert_refused(directory_alias_add(f->st, "bob@acme.test", "sales@acme.test", ERR),
                   "alias sales@acme.test already exists (for bob@acme.test)");
    assert_refused(directory_alias_add(f->st, "carol@acme.test", "SALES@acme.test", ERR),
                   "alias sales@acme.test already exists (for bob@acme.test)");
    assert_refused(directory_alias_add(f->st, "bob@acme.test", "Carol@acme.test", ERR),
                   "alias carol@acme.test: the address is a user's own address");
    assert_refused(directory_alias_add(f->st, "bob@acme.test", "x@nowhere.test", ERR),
                   "alias x@nowhere.test: domain nowhere.test is not hosted");
    assert_refused(directory_alias_add(f->st, "bob@acme.test", "bob@other.test", ERR),
                   "alias bob@other.test: domain other.test belongs to another customer than user bob@acme.test");
    assert_refused(directory_alias_add(f->st, "nobody@acme.test", "x@acme.test", ERR),
                   "alias x@acme.test: user nobody@acme.test does not exist");
    assert_refused(directory_alias_add(f->st, "bob@acme.test", "no at sign", ERR),
                   "alias \"no at sign\" is not a valid address");
    /* An address that is an alias cannot become a user. */
    assert_refused(directory_user_add(f->st, "sales@acme.test", NULL, NULL, NULL, 0, ERR),
                   "user sales@acme.test: the address is already an alias");

    int64_t owner;
    struct store_user bob;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &bob), STORE_OK);
    assert_int_equal(store_alias_get(f->st, "sales@acme.test", &owner), STORE_OK);
    assert_int_equal(owner, bob.id);

    assert_ok(directory_alias_del(f->st, "SALES@acme.test", ERR));
    assert_int_equal(store_alias_get(f->st, "sales@acme.test", &owner), STORE_NOTFOUND);
    assert_refused(directory_alias_del(f->st, "sales@acme.test", ERR), "alias sales@acme.test does not exist");

    /* Deleting a user drops the user's aliases. */
    assert_ok(directory_user_del(f->st, "bob@acme.test", ERR));
    assert_int_equal(store_alias_get(f->st, "bob@acme.example", &owner), STORE_NOTFOUND);
}

static void test_lookup_rcpt(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_ok(directory_alias_add(f->st, "bob@acme.test", "info@acme.example", ERR));
    struct rcpt_lookup l;

    assert_int_equal(directory_lookup_rcpt(f->st, "someone@example.org", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_NOT_HOSTED);
    assert_int_equal(directory_lookup_rcpt(f->st, "postmaster", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_NOT_HOSTED);
    assert_int_equal(directory_lookup_rcpt(f->st, "", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_NOT_HOSTED);
    /* A subdomain of a hosted domain is not hosted. */
    assert_int_equal(directory_lookup_rcpt(f->st, "bob@sub.acme.test", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_NOT_HOSTED);

    assert_int_equal(directory_lookup_rcpt(f->st, "nobody@ACME.test", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_UNKNOWN);
    assert_string_equal(l.domain.name, "acme.test");

    assert_int_equal(directory_lookup_rcpt(f->st, "BoB@aCmE.TeSt", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_USER);
    assert_int_equal(l.via_alias, 0);
    assert_string_equal(l.user.email, "bob@acme.test");
    assert_string_equal(l.domain.name, "acme.test");

    assert_int_equal(directory_lookup_rcpt(f->st, "INFO@Acme.Example", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_USER);
    assert_int_equal(l.via_alias, 1);
    assert_string_equal(l.user.email, "bob@acme.test");
    assert_string_equal(l.domain.name, "acme.example"); /* the recipient's domain, for routing */

    /* Inactive users are still users; the caller decides what that means. */
    assert_int_equal(directory_lookup_rcpt(f->st, "carol@acme.test", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_USER);
    assert_int_equal(l.user.active, 0);

    /* After the user goes, neither the address nor the alias is known. */
    assert_ok(directory_user_del(f->st, "bob@acme.test", ERR));
    assert_int_equal(directory_lookup_rcpt(f->st, "bob@acme.test", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_UNKNOWN);
    assert_int_equal(directory_lookup_rcpt(f->st, "info@acme.example", &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_UNKNOWN);

    /* Overlong input is classified, not overflowed. */
    char longaddr[1200];
    memset(longaddr, 'a', sizeof longaddr);
    memcpy(longaddr + sizeof longaddr - 11, "@acme.test", 11);
    assert_int_equal(directory_lookup_rcpt(f->st, longaddr, &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_UNKNOWN);
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[10] = '@';
    longaddr[sizeof longaddr - 1] = 0;
    assert_int_equal(directory_lookup_rcpt(f->st, longaddr, &l), STORE_OK);
    assert_int_equal(l.kind, RCPT_KIND_NOT_HOSTED);
}

/* The relay decision: a client's network names the customer it relays for,
 * and the sender must be that customer's (issue 10, finding 1). */
static int relay(struct fixture *f, const char *ip, const char *sender, int64_t *cid)
{
    int64_t tmp;
    return directory_relay_check(f->st, ip, sender, cid ? cid : &tmp);
}

static void test_relay_check(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct store_customer acme, other;
    assert_int_equal(store_customer_get(f->st, "acme", &acme), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "other", &other), STORE_OK);
    assert_int_equal(relay(f, "192.0.2.7", "", NULL), DIRECTORY_RELAY_DENIED);
    struct directory_domain_changes a = {.recipient_check = -1, .outbound_from = "192.0.2.0/24"};
    struct directory_domain_changes b = {.recipient_check = -1, .outbound_from = "2001:db8:1::/48,203.0.113.9"};
    assert_ok(directory_domain_set(f->st, "acme.test", &a, ERR));
    assert_ok(directory_domain_set(f->st, "other.test", &b, ERR));

    /* the networks */
    int64_t cid = 0;
    assert_int_equal(relay(f, "192.0.2.7", "bob@acme.test", &cid), DIRECTORY_RELAY_OK);
    assert_int_equal(cid, acme.id);
    assert_int_equal(relay(f, "::ffff:192.0.2.7", "bob@acme.test", NULL), DIRECTORY_RELAY_OK);
    assert_int_equal(relay(f, "192.0.3.7", "bob@acme.test", NULL), DIRECTORY_RELAY_DENIED);
    assert_int_equal(relay(f, "203.0.113.9", "dave@other.test", &cid), DIRECTORY_RELAY_OK);
    assert_int_equal(cid, other.id);
    assert_int_equal(relay(f, "203.0.113.10", "dave@other.test", NULL), DIRECTORY_RELAY_DENIED);
    assert_int_equal(relay(f, "2001:db8:1:ffff::1", "dave@other.test", NULL), DIRECTORY_RELAY_OK);
    assert_int_equal(relay(f, "2001:db8:2::1", "dave@other.test", NULL), DIRECTORY_RELAY_DENIED);
    assert_int_equal(relay(f, "127.0.0.1", "", NULL), DIRECTORY_RELAY_DENIED);
    assert_int_equal(relay(f, "", "", NULL), DIRECTORY_RELAY_DENIED);
    assert_int_equal(relay(f, "garbage", "", NULL), DIRECTORY_RELAY_DENIED);
    assert_int_equal(relay(f, NULL, "", NULL), DIRECTORY_RELAY_DENIED);

    /* the sender: the customer's domains (all of them), their subdomains, <> */
    assert_int_equal(relay(f, "192.0.2.7", "x@acme.example", NULL), DIRECTORY_RELAY_OK);
    assert_int_equal(relay(f, "192.0.2.7", "bounces@mx.Acme.test", NULL), DIRECTORY_RELAY_OK);
    assert_int_equal(relay(f, "192.0.2.7", "", &cid), DIRECTORY_RELAY_OK);
    assert_int_equal(cid, acme.id);
    /* another customer's domain, or nobody's: not from acme's network */
    assert_int_equal(relay(f, "192.0.2.7", "dave@other.test", &cid), DIRECTORY_RELAY_NOT_OWNED);
    assert_int_equal(cid, 0);
    assert_int_equal(relay(f, "192.0.2.7", "x@example.net", NULL), DIRECTORY_RELAY_NOT_OWNED);
    assert_int_equal(relay(f, "192.0.2.7", "x@notacme.test", NULL), DIRECTORY_RELAY_NOT_OWNED);
    assert_int_equal(directory_customer_owns_domain(f->st, acme.id, "acme.test"), 1);
    assert_int_equal(directory_customer_owns_domain(f->st, acme.id, "a.b.acme.example"), 1);
    assert_int_equal(directory_customer_owns_domain(f->st, acme.id, "other.test"), 0);
    assert_int_equal(directory_customer_owns_domain(f->st, acme.id, ""), 0);

    /* one gateway for both customers: the sender says which */
    struct directory_domain_changes shared = {.recipient_check = -1, .outbound_from = "192.0.2.0/24"};
    assert_ok(directory_domain_set(f->st, "other.test", &shared, ERR));
    assert_int_equal(relay(f, "192.0.2.7", "dave@other.test", &cid), DIRECTORY_RELAY_OK);
    assert_int_equal(cid, other.id);
    assert_int_equal(relay(f, "192.0.2.7", "bob@acme.test", &cid), DIRECTORY_RELAY_OK);
    assert_int_equal(cid, acme.id);

    struct directory_domain_changes none = {.recipient_check = -1, .outbound_from = ""};
    assert_ok(directory_domain_set(f->st, "acme.test", &none, ERR));
    assert_ok(directory_domain_set(f->st, "other.test", &none, ERR));
    assert_int_equal(relay(f, "192.0.2.7", "bob@acme.test", NULL), DIRECTORY_RELAY_DENIED);
}

int main(void)
{
    log_init("test", "localhost", 1);
    log_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_in_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_rcpt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
