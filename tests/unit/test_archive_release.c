/*
 * test_archive_release.c — archive_release_run and archive_release_allowed:
 * a release in normal state is queued for the customer's server, during an
 * outage it is a mailbox copy that is never re-delivered; originals versus
 * chosen recipients; the audit row; who may release to whom.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "archive/archive.h"
#include "test_store_fixture.h"

#define T0 1700000000

struct fx {
    struct tmp_store s; /* first: tmp_store_teardown frees the fx */
    int64_t acme, beta, acme_dom, beta_dom;
    struct store_user bob, carol, dave, admin, beta_admin, op;
    int64_t inbound, outbound; /* archive entries of acme */
};

static void user(struct store *st, int64_t dom, const char *email, int role, int active, struct store_user *out)
{
    assert_int_equal(store_user_get_by_id(st, tmp_user_add(st, dom, email, role, active), out), STORE_OK);
}

static int64_t entry(struct fx *f, int direction, const char *sender, const char *const *rcpts, size_t n)
{
    struct store_archive_entry e = {.customer_id = f->acme, .direction = direction, .received = T0, .size = 10};
    snprintf(e.msg_id, sizeof e.msg_id, "ORIG%08zu", n);
    snprintf(e.blob, sizeof e.blob, "%064d", 1);
    snprintf(e.sender, sizeof e.sender, "%s", sender);
    snprintf(e.prefix, sizeof e.prefix, "Received: from orig\r\n");
    int64_t id = 0;
    assert_int_equal(store_archive_add(f->s.st, &e, rcpts, n, &id), STORE_OK);
    return id;
}

static int setup(void **state)
{
    struct fx *f = tmp_store_setup(sizeof *f, "lb_archive_release");
    struct store *st = f->s.st;
    f->acme = tmp_customer_add(st, "acme");
    f->beta = tmp_customer_add(st, "beta");
    f->acme_dom = tmp_domain_add(st, f->acme, "acme.test");
    f->beta_dom = tmp_domain_add(st, f->beta, "beta.test");
    assert_int_equal(store_domain_set_continuity(st, f->acme_dom, 1, 0, T0 - 100), STORE_OK);
    user(st, f->acme_dom, "bob@acme.test", ROLE_USER, 1, &f->bob);
    user(st, f->acme_dom, "carol@acme.test", ROLE_USER, 1, &f->carol);
    user(st, f->acme_dom, "dave@acme.test", ROLE_USER, 0, &f->dave);
    user(st, f->acme_dom, "admin@acme.test", ROLE_ADMIN, 1, &f->admin);
    user(st, f->beta_dom, "admin@beta.test", ROLE_ADMIN, 1, &f->beta_admin);
    user(st, f->beta_dom, "op@beta.test", ROLE_OPERATOR, 1, &f->op);
    assert_int_equal(store_alias_add(st, f->bob.id, "sales@acme.test"), STORE_OK);
    char blob[BLOB_ID_SIZE];
    snprintf(blob, sizeof blob, "%064d", 1);
    assert_int_equal(store_blob_add(st, blob, 10, 10), STORE_OK);
    const char *in[] = {"bob@acme.test", "carol@acme.test"};
    f->inbound = entry(f, DIR_INBOUND, "alice@example.org", in, 2);
    const char *out[] = {"x@example.net", "sales@acme.test"};
    f->outbound = entry(f, DIR_OUTBOUND, "carol@acme.test", out, 2);
    *state = f;
    return 0;
}

struct rcpts {
    char v[8][ADDR_MAX + 1];
    size_t n;
};

static int collect_rcpt(const struct store_rcpt *r, void *arg)
{
    struct rcpts *l = arg;
    if (l->n < 8)
        snprintf(l->v[l->n++], sizeof l->v[0], "%s", r->rcpt);
    return 0;
}

static int last_entry(const struct store_mailbox_entry *e, void *arg)
{
    *(struct store_mailbox_entry *)arg = *e;
    return 0;
}

static void test_release_normal(void **state)
{
    struct fx *f = *state;
    struct archive_release r = {.entry_id = f->inbound, .actor = "lifeboatctl (uid 0)"};
    assert_int_equal(archive_release_run(f->s.st, &r, T0 + 10), STORE_OK);
    assert_true(queueid_is_valid(r.queue_id));
    assert_int_equal(r.queued, 2);
    assert_int_equal(r.to_mailbox, 0);
    struct store_msg m;
    assert_int_equal(store_message_get(f->s.st, r.queue_id, &m), STORE_OK);
    assert_string_equal(m.sender, "alice@example.org");
    assert_string_equal(m.prefix, "Received: from orig\r\n");
    assert_int_equal(m.direction, DIR_INBOUND);
    assert_int_equal(m.received, T0 + 10);
    struct rcpts l = {0};
    assert_int_equal(store_rcpt_list(f->s.st, r.queue_id, collect_rcpt, &l), STORE_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "bob@acme.test");
    assert_string_equal(l.v[1], "carol@acme.test");
    /* the blob: two entries and the queued message */
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT refs FROM blobs"), 3);
    /* the audit row */
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM audit WHERE action = 'archive.release' AND "
                                          "actor = 'lifeboatctl (uid 0)' AND target = 'archive:1' AND "
                                          "detail LIKE '%bob@acme.test carol@acme.test%'"),
                     1);

    /* chosen recipients; the same address twice is one */
    const char *to[] = {"Carol@Acme.test", "carol@acme.test"};
    r = (struct archive_release){.entry_id = f->inbound, .to = to, .nto = 2, .actor = "x"};
    assert_int_equal(archive_release_run(f->s.st, &r, T0 + 11), STORE_OK);
    assert_int_equal(r.queued, 1);
    l.n = 0;
    assert_int_equal(store_rcpt_list(f->s.st, r.queue_id, collect_rcpt, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "carol@acme.test");

    /* an outbound entry: only the customer's own recipients are mailed again */
    r = (struct archive_release){.entry_id = f->outbound, .actor = "x"};
    assert_int_equal(archive_release_run(f->s.st, &r, T0 + 12), STORE_OK);
    assert_int_equal(r.queued, 1);
    l.n = 0;
    assert_int_equal(store_rcpt_list(f->s.st, r.queue_id, collect_rcpt, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "sales@acme.test");

    /* no such entry: nothing happens */
    int64_t audits = tmp_raw_count(&f->s.t, "SELECT count(*) FROM audit");
    r = (struct archive_release){.entry_id = 999, .actor = "x"};
    assert_int_equal(archive_release_run(f->s.st, &r, T0), STORE_NOTFOUND);
    assert_string_equal(r.queue_id, "");
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM audit"), audits);
}

static void test_release_outage(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_domain_set_state(f->s.st, f->acme_dom, DOMAIN_OUTAGE, "test", T0, NULL), STORE_OK);
    /* bob (by his alias too) and carol get copies; dave is not activated: queued */
    const char *to[] = {"bob@acme.test", "sales@acme.test", "carol@acme.test", "dave@acme.test"};
    struct archive_release r = {.entry_id = f->inbound, .to = to, .nto = 4, .actor = "admin@acme.test"};
    assert_int_equal(archive_release_run(f->s.st, &r, T0 + 20), STORE_OK);
    assert_int_equal(r.to_mailbox, 3);
    assert_int_equal(r.queued, 1);
    struct rcpts l = {0};
    assert_int_equal(store_rcpt_list(f->s.st, r.queue_id, collect_rcpt, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "dave@acme.test");

    struct store_mailbox_entry e = {0};
    assert_int_equal(store_mailbox_list(f->s.st, f->bob.id, FOLDER_INBOX, last_entry, &e), STORE_OK);
    assert_string_equal(e.msg_id, r.queue_id);
    assert_string_equal(e.rcpts, "bob@acme.test,sales@acme.test");
    assert_int_equal(e.redeliver, REDELIVER_NONE); /* never re-delivered at recovery */
    assert_string_equal(e.sender, "alice@example.org");
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM mailbox"), 2);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM mailbox WHERE redeliver <> 0"), 0);
    /* and nothing waits for the drain */
    struct store_continuity_counts c;
    assert_int_equal(store_continuity_counts(f->s.st, f->acme_dom, &c), STORE_OK);
    assert_int_equal(c.waiting, 0);
}

static void test_allowed(void **state)
{
    struct fx *f = *state;
    struct store_archive_entry e;
    assert_int_equal(store_archive_get(f->s.st, f->inbound, &e), STORE_OK);
    /* an operator: any address of the entry's customer, none elsewhere */
    assert_true(archive_release_allowed(f->s.st, &f->op, &e, "dave@acme.test"));
    assert_false(archive_release_allowed(f->s.st, &f->op, &e, "admin@beta.test"));
    assert_false(archive_release_allowed(f->s.st, &f->op, &e, "x@example.net"));
    /* an admin: their own customer's entries only */
    assert_true(archive_release_allowed(f->s.st, &f->admin, &e, "carol@acme.test"));
    assert_false(archive_release_allowed(f->s.st, &f->beta_admin, &e, "carol@acme.test"));
    assert_false(archive_release_allowed(f->s.st, &f->beta_admin, &e, "admin@beta.test"));
    /* a user: to their own addresses, of entries they take part in */
    assert_true(archive_release_allowed(f->s.st, &f->bob, &e, "bob@acme.test"));
    assert_true(archive_release_allowed(f->s.st, &f->bob, &e, "sales@acme.test"));
    assert_false(archive_release_allowed(f->s.st, &f->bob, &e, "carol@acme.test"));
    assert_false(archive_release_allowed(f->s.st, &f->dave, &e, "dave@acme.test")); /* not a participant */
    /* bob takes part in the outbound entry through his alias */
    assert_int_equal(store_archive_get(f->s.st, f->outbound, &e), STORE_OK);
    assert_true(archive_release_allowed(f->s.st, &f->bob, &e, "bob@acme.test"));
    assert_true(archive_release_allowed(f->s.st, &f->carol, &e, "carol@acme.test")); /* the sender */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_release_normal, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_release_outage, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_allowed, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
