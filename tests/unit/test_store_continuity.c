/*
 * test_store_continuity.c — store.h's continuity section on a temporary SQLite
 * store: migration 2 over a version-1 database, domain state and events,
 * diverting recipients into mailboxes (one entry per user and message, linked
 * recipients, blob references), re-delivery, deletion (tombstones and counts),
 * folders and flags, entries added directly, user deletion, and atomicity.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store/store.h"
#include "test_store_fixture.h"
#include "util/log.h"

#define BLOB_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define BLOB_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BLOB_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct fixture {
    struct tmp_data_dir t;
    struct store *st;
    int64_t customer, acme, other; /* domains acme.test and other.test */
    int64_t bob, carol, dave;      /* bob and carol @acme.test, dave@other.test */
};

static int64_t add_domain(struct store *st, int64_t customer, const char *name)
{
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.customer_id = customer;
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.routes, sizeof d.routes, "127.0.0.1:25");
    d.created = 1000;
    int64_t id = 0;
    assert_int_equal(store_domain_add(st, &d, &id), STORE_OK);
    return id;
}

static int64_t add_user(struct store *st, int64_t domain, const char *email)
{
    struct store_user u;
    memset(&u, 0, sizeof u);
    u.domain_id = domain;
    snprintf(u.email, sizeof u.email, "%s", email);
    u.active = 1;
    int64_t id = 0;
    assert_int_equal(store_user_add(st, &u, &id), STORE_OK);
    return id;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, "test_store_continuity") != 0 || tmp_store_open(&f->t, &f->st) != 0)
        return -1;
    assert_int_equal(store_customer_add(f->st, "acme", &f->customer), STORE_OK);
    f->acme = add_domain(f->st, f->customer, "acme.test");
    f->other = add_domain(f->st, f->customer, "other.test");
    f->bob = add_user(f->st, f->acme, "bob@acme.test");
    f->carol = add_user(f->st, f->acme, "carol@acme.test");
    f->dave = add_user(f->st, f->other, "dave@other.test");
    assert_int_equal(store_alias_add(f->st, f->bob, "sales@acme.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->st, f->bob, "bob@other.test"), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

static int64_t blob_refs(struct fixture *f, const char *blob)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT coalesce((SELECT refs FROM blobs WHERE id = '%s'), -1)", blob);
    return tmp_raw_count(&f->t, sql);
}

static int64_t mailbox_rows(struct fixture *f)
{
    return tmp_raw_count(&f->t, "SELECT count(*) FROM mailbox");
}

static int messages(struct fixture *f, const char *id)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = '%s'", id);
    return (int)tmp_raw_count(&f->t, sql);
}

/* Queues a message (recording its blob first) with the given recipients. */
static void queue_msg(struct fixture *f, const char *id, const char *blob, int64_t received, const char *const *rcpts,
                      size_t n)
{
    assert_int_equal(store_blob_add(f->st, blob, 500, 300), STORE_OK);
    struct store_msg_new m = {
        .size = 500,
        .sender = "alice@example.org",
        .prefix = "Received: from client.example.org\r\n",
        .received = received,
        .client_addr = "192.0.2.1",
        .helo = "client.example.org",
        .direction = DIR_INBOUND,
        .nrcpt = n,
        .rcpts = rcpts,
    };
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.blob, sizeof m.blob, "%s", blob);
    assert_int_equal(store_message_insert(f->st, &m), STORE_OK);
}

struct rcpts {
    struct store_rcpt r[8];
    int n;
};

static int collect_rcpt(const struct store_rcpt *r, void *arg)
{
    struct rcpts *c = arg;
    if (c->n < 8)
        c->r[c->n++] = *r;
    return 0;
}

static struct rcpts rcpts_of(struct fixture *f, const char *msg_id)
{
    struct rcpts c = {0};
    assert_int_equal(store_rcpt_list(f->st, msg_id, collect_rcpt, &c), STORE_OK);
    return c;
}

struct entries {
    struct store_mailbox_entry e[16];
    int n;
};

static int collect_entry(const struct store_mailbox_entry *e, void *arg)
{
    struct entries *c = arg;
    if (c->n < 16)
        c->e[c->n++] = *e;
    return 0;
}

static struct entries due(struct fixture *f, int64_t domain, size_t limit)
{
    struct entries c = {0};
    assert_int_equal(store_mailbox_redelivery_due(f->st, domain, limit, collect_entry, &c), STORE_OK);
    return c;
}

static struct entries list(struct fixture *f, int64_t user, int folder)
{
    struct entries c = {0};
    assert_int_equal(store_mailbox_list(f->st, user, folder, collect_entry, &c), STORE_OK);
    return c;
}

static struct store_continuity_counts counts(struct fixture *f, int64_t domain)
{
    struct store_continuity_counts c;
    assert_int_equal(store_continuity_counts(f->st, domain, &c), STORE_OK);
    return c;
}

#define assert_counts(f, domain, h, w, r, d)                                                      \
    do {                                                                                           \
        struct store_continuity_counts c_ = counts(f, domain);                                     \
        assert_int_equal(c_.held, (h));                                                            \
        assert_int_equal(c_.waiting, (w));                                                         \
        assert_int_equal(c_.redelivered, (r));                                                     \
        assert_int_equal(c_.deleted, (d));                                                         \
    } while (0)

/* Starts an outage of the domain and returns its id. */
static int64_t outage(struct fixture *f, int64_t domain, int64_t now)
{
    int64_t ev = 0;
    assert_int_equal(store_domain_set_state(f->st, domain, DOMAIN_OUTAGE, "connect: refused", now, &ev),
                     STORE_OK);
    assert_true(ev > 0);
    return ev;
}

/* ------------------------------------------------------------- migration */

/* Migration 1 exactly as it shipped (migrations are never edited, so this
 * copy stays true): a version-1 database to migrate. */
static const char schema_v1[] =
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  created INTEGER NOT NULL, sub_start INTEGER NOT NULL DEFAULT 0, sub_end INTEGER NOT NULL DEFAULT 0,"
    "  sub_cancelled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE domains (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE, routes TEXT NOT NULL DEFAULT '',"
    "  recipient_check INTEGER NOT NULL DEFAULT 0, outbound_from TEXT NOT NULL DEFAULT '',"
    "  webhook TEXT NOT NULL DEFAULT '', dkim_selector TEXT NOT NULL DEFAULT '',"
    "  dkim_key_file TEXT NOT NULL DEFAULT '', continuity INTEGER NOT NULL DEFAULT 0,"
    "  outgoing_to_own INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
    "CREATE INDEX domains_customer ON domains(customer_id);"
    "CREATE TABLE users (id INTEGER PRIMARY KEY, domain_id INTEGER NOT NULL REFERENCES domains(id),"
    "  email TEXT NOT NULL UNIQUE COLLATE NOCASE, name TEXT NOT NULL DEFAULT '', role INTEGER NOT NULL DEFAULT 0,"
    "  pw_hash TEXT NOT NULL DEFAULT '', active INTEGER NOT NULL DEFAULT 0, suspended INTEGER NOT NULL DEFAULT 0,"
    "  alt_email TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);"
    "CREATE INDEX users_domain ON users(domain_id);"
    "CREATE TABLE aliases (alias TEXT PRIMARY KEY COLLATE NOCASE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE) WITHOUT ROWID;"
    "CREATE INDEX aliases_user ON aliases(user_id);"
    "CREATE TABLE blobs (id TEXT PRIMARY KEY, size INTEGER NOT NULL, stored_size INTEGER NOT NULL,"
    "  refs INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0)) WITHOUT ROWID;"
    "CREATE INDEX blobs_unreferenced ON blobs(id) WHERE refs = 0;"
    "CREATE TABLE messages (id TEXT PRIMARY KEY, blob TEXT NOT NULL REFERENCES blobs(id), size INTEGER NOT NULL,"
    "  sender TEXT NOT NULL, prefix TEXT NOT NULL, received INTEGER NOT NULL, client_addr TEXT NOT NULL,"
    "  helo TEXT NOT NULL, direction INTEGER NOT NULL, is_bounce INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE recipients (id INTEGER PRIMARY KEY,"
    "  msg_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE, rcpt TEXT NOT NULL, domain TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL,"
    "  last_reply TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX recipients_msg ON recipients(msg_id);"
    "CREATE INDEX recipients_due ON recipients(state, next_attempt);"
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (1);"
    /* Some data of a running version-1 installation. */
    "INSERT INTO customers (id, name, created) VALUES (1, 'acme', 500);"
    "INSERT INTO domains (id, customer_id, name, routes, continuity, created) "
    "  VALUES (1, 1, 'acme.test', '127.0.0.1:25', 1, 777);"
    "INSERT INTO users (id, domain_id, email, active, created) VALUES (1, 1, 'bob@acme.test', 1, 800);"
    "INSERT INTO blobs VALUES ('" BLOB_A "', 500, 300, 1);"
    "INSERT INTO messages VALUES ('00000000000000A1', '" BLOB_A "', 500, 'alice@example.org', '', 900,"
    "  '192.0.2.1', 'client', 0, 0);"
    "INSERT INTO recipients (msg_id, rcpt, domain, next_attempt) VALUES ('00000000000000A1', 'bob@acme.test',"
    "  'acme.test', 900);";

static void test_migration_from_version_1(void **state)
{
    struct fixture *f = *state;
    tmp_skip_on_pg(&f->t, "a SQLite database of version 1");
    /* Replace the fixture's database by a version-1 one. */
    store_close(f->st);
    f->st = NULL;
    tmp_data_dir_remove(&f->t);
    assert_int_equal(tmp_data_dir_make(&f->t, "test_store_continuity_v1"), 0);
    assert_int_equal(mkdir(f->t.cfg.data_dir, 0700), 0);
    sqlite3 *db = tmp_raw_open(&f->t);
    char *msg = NULL;
    if (sqlite3_exec(db, schema_v1, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("version-1 schema: %s", msg);
    sqlite3_close(db);

    assert_int_equal(tmp_store_open(&f->t, &f->st), 0);
    /* Migrated past version 2 (later migrations may follow). */
    assert_true(tmp_raw_count(&f->t, "SELECT max(version) FROM schema_version") >= 2);
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "acme.test", &d), STORE_OK);
    assert_int_equal(d.state, DOMAIN_NORMAL);
    assert_int_equal(d.state_since, 777); /* normal since the domain was added */
    assert_int_equal(d.continuity, 1);
    assert_int_equal(d.continuity_since, 0);
    assert_int_equal(d.outage_id, 0);
    assert_string_equal(d.state_cause, "");

    /* The old queue is usable: its recipient diverts into the new mailbox table. */
    struct rcpts r = rcpts_of(f, "00000000000000A1");
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].mailbox_entry_id, 0);
    int64_t entry = 0;
    assert_int_equal(store_mailbox_divert(f->st, r.r[0].id, 1, 0, 1000, &entry), STORE_OK);
    assert_true(entry > 0);
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    assert_counts(f, 1, 0, 1, 0, 0);
}

/* ------------------------------------------------------ domain state, events */

static void test_domain_continuity_fields(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    assert_int_equal(store_domain_get_by_id(f->st, f->acme, &d), STORE_OK);
    assert_int_equal(d.state, DOMAIN_NORMAL);
    assert_int_equal(d.state_since, 1000); /* created */
    assert_int_equal(d.continuity, 0);
    assert_int_equal(d.continuity_since, 0);

    assert_int_equal(store_domain_set_continuity(f->st, f->acme, 1, 1, 5000), STORE_OK);
    assert_int_equal(store_domain_set_continuity(f->st, 4242, 1, 0, 5000), STORE_NOTFOUND);
    int64_t ev = outage(f, f->acme, 6000);

    /* store_domain_update writes the settings and leaves the state alone, even
     * from a struct whose state fields say something else. */
    assert_int_equal(store_domain_get(f->st, "ACME.test", &d), STORE_OK);
    assert_int_equal(d.continuity, 1);
    assert_int_equal(d.outgoing_to_own, 1);
    assert_int_equal(d.continuity_since, 5000);
    d.state = DOMAIN_NORMAL;
    d.state_since = 1;
    d.outage_id = 0;
    d.continuity_since = 2;
    snprintf(d.state_cause, sizeof d.state_cause, "bogus");
    d.recipient_check = 1;
    assert_int_equal(store_domain_update(f->st, &d), STORE_OK);

    /* Every read fills the state: get, get_by_id and list. */
    struct store_domain again;
    assert_int_equal(store_domain_get_by_id(f->st, f->acme, &again), STORE_OK);
    assert_int_equal(again.recipient_check, 1);
    assert_int_equal(again.state, DOMAIN_OUTAGE);
    assert_int_equal(again.state_since, 6000);
    assert_int_equal(again.outage_id, ev);
    assert_int_equal(again.continuity_since, 5000);
    assert_string_equal(again.state_cause, "connect: refused");
    assert_int_equal(tmp_raw_count(&f->t, "SELECT state FROM domains WHERE name = 'acme.test'"), DOMAIN_OUTAGE);
}

static int collect_event(const struct store_event *e, void *arg)
{
    struct store_event *out = arg;
    for (int i = 0; i < 8; i++)
        if (out[i].id == 0) {
            out[i] = *e;
            break;
        }
    return 0;
}

static void test_state_machine_and_events(void **state)
{
    struct fixture *f = *state;
    int64_t ev1 = 0, ev2 = 0, ev3 = 0, ev4 = 0, ev5 = 0, same = -1;
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_OUTAGE, "421 busy", 100, &ev1), STORE_OK);
    /* The state it is in already: nothing happens, no event. */
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_OUTAGE, "again", 101, &same), STORE_OK);
    assert_int_equal(same, 0);
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_RECOVERING, "probe passed", 200, &ev2),
                     STORE_OK);
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_OUTAGE, "451 during drain", 300, &ev3),
                     STORE_OK);
    struct store_domain d;
    assert_int_equal(store_domain_get_by_id(f->st, f->acme, &d), STORE_OK);
    assert_int_equal(d.outage_id, ev1); /* back from recovering: the same outage */
    assert_int_equal(d.state_since, 300);
    assert_string_equal(d.state_cause, "451 during drain");
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_RECOVERING, "probe passed", 400, &ev4),
                     STORE_OK);
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_NORMAL, "drained", 500, NULL), STORE_OK);
    assert_int_equal(store_domain_get_by_id(f->st, f->acme, &d), STORE_OK);
    assert_int_equal(d.state, DOMAIN_NORMAL);
    assert_int_equal(d.outage_id, ev1); /* the last outage, for the counts */
    /* A new outage gets a new id. */
    assert_int_equal(store_domain_set_state(f->st, f->other, DOMAIN_OUTAGE, "timeout", 550, NULL), STORE_OK);
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_OUTAGE, "refused", 600, &ev5), STORE_OK);
    assert_int_equal(store_domain_get_by_id(f->st, f->acme, &d), STORE_OK);
    assert_int_equal(d.outage_id, ev5);
    assert_true(ev1 < ev2 && ev2 < ev3 && ev3 < ev4 && ev4 < ev5);

    /* Newest first, per domain or for all, with a limit. */
    struct store_event evs[8];
    memset(evs, 0, sizeof evs);
    assert_int_equal(store_event_list(f->st, f->acme, 0, collect_event, evs), STORE_OK);
    assert_int_equal(evs[0].id, ev5);
    assert_int_equal(evs[0].from_state, DOMAIN_NORMAL);
    assert_int_equal(evs[0].to_state, DOMAIN_OUTAGE);
    assert_int_equal(evs[0].at, 600);
    assert_string_equal(evs[0].cause, "refused");
    assert_int_equal(evs[1].to_state, DOMAIN_NORMAL);
    assert_int_equal(evs[1].from_state, DOMAIN_RECOVERING);
    assert_int_equal(evs[5].id, ev1);
    assert_int_equal(evs[5].domain_id, f->acme);
    assert_int_equal(evs[6].id, 0); /* six events, no more */
    memset(evs, 0, sizeof evs);
    assert_int_equal(store_event_list(f->st, 0, 2, collect_event, evs), STORE_OK);
    assert_int_equal(evs[0].id, ev5);
    assert_int_equal(evs[1].domain_id, f->other);
    assert_int_equal(evs[2].id, 0);

    /* Errors: unknown domain, no such state. */
    assert_int_equal(store_domain_set_state(f->st, 4242, DOMAIN_OUTAGE, "x", 1, NULL), STORE_NOTFOUND);
    assert_int_equal(store_domain_set_state(f->st, f->acme, 7, "x", 1, NULL), STORE_ERR);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM domain_events"), 7);
}

static void test_event_cause_is_cut_on_a_character(void **state)
{
    struct fixture *f = *state;
    char cause[600];
    /* 254 ASCII bytes then 'é' (2 bytes) straddling the 255-byte limit. */
    memset(cause, 'x', 254);
    strcpy(cause + 254, "\xc3\xa9 and more");
    int64_t ev = 0;
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_OUTAGE, cause, 1, &ev), STORE_OK);
    struct store_event evs[8];
    memset(evs, 0, sizeof evs);
    assert_int_equal(store_event_list(f->st, f->acme, 1, collect_event, evs), STORE_OK);
    assert_int_equal(strlen(evs[0].cause), 254);
    struct store_domain d;
    assert_int_equal(store_domain_get_by_id(f->st, f->acme, &d), STORE_OK);
    assert_int_equal(strlen(d.state_cause), 254);
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_NORMAL, NULL, 2, NULL), STORE_OK);
}

/* ---------------------------------------------------------------- diverting */

static void test_divert_address_and_alias_one_entry(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "Sales@acme.test", "carol@acme.test", "zed@acme.test"};
    queue_msg(f, "00000000000000A1", BLOB_A, 100, r, 4);
    struct rcpts rc = rcpts_of(f, "00000000000000A1");

    int64_t e1 = 0, e2 = 0, e3 = 0, again = 0;
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 110, &e1), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 111, &e2), STORE_OK);
    assert_int_equal(e1, e2); /* one entry for bob, whatever the number of his addresses */
    assert_int_equal(store_mailbox_divert(f->st, rc.r[2].id, f->carol, out, 112, &e3), STORE_OK);
    assert_true(e3 != e1);
    /* Diverting the same recipient again changes nothing. */
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 113, &again), STORE_OK);
    assert_int_equal(again, e1);
    assert_int_equal(mailbox_rows(f), 2);
    /* One blob: the message's reference and one per entry. */
    assert_int_equal(blob_refs(f, BLOB_A), 3);

    struct store_mailbox_entry e;
    assert_int_equal(store_mailbox_get(f->st, e1, &e), STORE_OK);
    assert_int_equal(e.user_id, f->bob);
    assert_int_equal(e.domain_id, f->acme);
    assert_string_equal(e.msg_id, "00000000000000A1");
    assert_string_equal(e.blob, BLOB_A);
    assert_string_equal(e.prefix, "Received: from client.example.org\r\n");
    assert_string_equal(e.sender, "alice@example.org");
    assert_string_equal(e.rcpts, "bob@acme.test,sales@acme.test");
    assert_int_equal(e.size, 500);
    assert_int_equal(e.received, 110);
    assert_int_equal(e.folder, FOLDER_INBOX);
    assert_int_equal(e.seen, 0);
    assert_int_equal(e.redeliver, REDELIVER_WAITING);
    assert_int_equal(e.outage_id, out);
    assert_int_equal(e.direction, DIR_INBOUND);

    /* Both of bob's recipients point at his entry; the unknown one stays queued. */
    rc = rcpts_of(f, "00000000000000A1");
    assert_int_equal(rc.r[0].state, RCPT_CONTINUITY);
    assert_int_equal(rc.r[0].mailbox_entry_id, e1);
    assert_int_equal(rc.r[1].state, RCPT_CONTINUITY);
    assert_int_equal(rc.r[1].mailbox_entry_id, e1);
    assert_int_equal(rc.r[2].mailbox_entry_id, e3);
    assert_int_equal(rc.r[3].state, RCPT_QUEUED);
    assert_int_equal(rc.r[3].mailbox_entry_id, 0);
    assert_int_equal(messages(f, "00000000000000A1"), 1);
    assert_counts(f, f->acme, 2, 2, 0, 0);

    /* A final recipient cannot be diverted; unknown recipient or user: NOTFOUND. */
    assert_int_equal(store_rcpt_update(f->st, rc.r[3].id, RCPT_BOUNCED, 1, 0, "550 no"), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[3].id, f->carol, out, 120, NULL), STORE_ERR);
    assert_int_equal(store_mailbox_divert(f->st, 99999, f->carol, out, 120, NULL), STORE_NOTFOUND);
    const char *r2[] = {"carol@acme.test"};
    queue_msg(f, "00000000000000A2", BLOB_B, 130, r2, 1);
    rc = rcpts_of(f, "00000000000000A2");
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, 4242, out, 130, NULL), STORE_NOTFOUND);
    assert_int_equal(rcpts_of(f, "00000000000000A2").r[0].state, RCPT_QUEUED);
}

static void test_redelivered_releases_the_message(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "sales@acme.test", "carol@acme.test"};
    queue_msg(f, "00000000000000B1", BLOB_A, 100, r, 3);
    struct rcpts rc = rcpts_of(f, "00000000000000B1");
    int64_t bob = 0, carol = 0;
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, &bob), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[2].id, f->carol, out, 102, &carol), STORE_OK);
    struct entries d = due(f, f->acme, 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.e[0].id, bob); /* oldest first */

    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_RECOVERING, "probe ok", 200, NULL), STORE_OK);
    assert_int_equal(store_mailbox_redelivered(f->st, bob), STORE_OK);
    rc = rcpts_of(f, "00000000000000B1");
    assert_int_equal(rc.r[0].state, RCPT_REDELIVERED);
    assert_int_equal(rc.r[1].state, RCPT_REDELIVERED);
    assert_int_equal(rc.r[2].state, RCPT_CONTINUITY);
    assert_int_equal(messages(f, "00000000000000B1"), 1); /* carol's copy still pending */
    assert_int_equal(blob_refs(f, BLOB_A), 3);
    /* Twice is harmless (a drain that crashed after its commit asks again). */
    assert_int_equal(store_mailbox_redelivered(f->st, bob), STORE_OK);
    assert_counts(f, f->acme, 2, 1, 1, 0);

    assert_int_equal(store_mailbox_redelivered(f->st, carol), STORE_OK);
    assert_int_equal(messages(f, "00000000000000B1"), 0); /* the last copy: released */
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM recipients"), 0);
    assert_int_equal(blob_refs(f, BLOB_A), 2); /* the entries' own references remain */
    assert_int_equal(due(f, f->acme, 0).n, 0);
    assert_counts(f, f->acme, 2, 0, 2, 0);

    /* Still readable in the webmail after the drain. */
    struct store_mailbox_entry e;
    assert_int_equal(store_mailbox_get(f->st, bob, &e), STORE_OK);
    assert_int_equal(e.redeliver, REDELIVER_DONE);
    assert_int_equal(list(f, f->bob, FOLDER_INBOX).n, 1);
    assert_int_equal(store_mailbox_redelivered(f->st, 4242), STORE_NOTFOUND);
}

static void test_delete_never_redelivered(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "sales@acme.test"};
    queue_msg(f, "00000000000000C1", BLOB_A, 100, r, 2);
    struct rcpts rc = rcpts_of(f, "00000000000000C1");
    int64_t e = 0;
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, &e), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(blob_refs(f, BLOB_A), 2);

    assert_int_equal(store_mailbox_delete(f->st, e), STORE_OK);
    assert_int_equal(due(f, f->acme, 0).n, 0);
    assert_int_equal(messages(f, "00000000000000C1"), 0); /* both copies settled: released */
    assert_int_equal(blob_refs(f, BLOB_A), 0);            /* and the entry's reference dropped */
    struct store_mailbox_entry got;
    assert_int_equal(store_mailbox_get(f->st, e, &got), STORE_NOTFOUND);
    assert_int_equal(list(f, f->bob, -1).n, 0);
    assert_int_equal(store_mailbox_delete(f->st, e), STORE_NOTFOUND);
    assert_int_equal(store_mailbox_move(f->st, e, FOLDER_TRASH), STORE_NOTFOUND);
    assert_int_equal(store_mailbox_set_redeliver(f->st, e, REDELIVER_WAITING), STORE_NOTFOUND);
    assert_int_equal(store_mailbox_redelivered(f->st, e), STORE_NOTFOUND);
    /* Counted as deleted and held (a tombstone keeps the outage's count). */
    assert_counts(f, f->acme, 1, 0, 0, 1);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM mailbox WHERE purged = 1 AND blob IS NULL"), 1);
}

static void test_delete_recipients_when_message_stays(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "carol@acme.test"};
    queue_msg(f, "00000000000000C2", BLOB_A, 100, r, 2);
    struct rcpts rc = rcpts_of(f, "00000000000000C2");
    int64_t e = 0;
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, &e), STORE_OK);
    assert_int_equal(store_mailbox_delete(f->st, e), STORE_OK);
    rc = rcpts_of(f, "00000000000000C2");
    assert_int_equal(rc.r[0].state, RCPT_DELETED);
    assert_int_equal(rc.r[1].state, RCPT_QUEUED);
    assert_int_equal(messages(f, "00000000000000C2"), 1);
    assert_int_equal(blob_refs(f, BLOB_A), 1);
    /* bob's other address arriving later joins what he deleted: never re-delivered. */
}

static void test_divert_after_delete_or_redelivery(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "sales@acme.test", "bob@other.test"};
    queue_msg(f, "00000000000000D1", BLOB_A, 100, r, 3);
    struct rcpts rc = rcpts_of(f, "00000000000000D1");
    int64_t e = 0, e2 = 0;

    /* Re-delivered already: a later copy makes the entry wait again, for the
     * new address only (the first one must not get it twice). */
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, &e), STORE_OK);
    assert_int_equal(store_mailbox_redelivered(f->st, e), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 102, &e2), STORE_OK);
    assert_int_equal(e2, e);
    struct entries d = due(f, f->acme, 0);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.e[0].rcpts, "sales@acme.test");
    assert_int_equal(store_mailbox_redelivered(f->st, e), STORE_OK);
    rc = rcpts_of(f, "00000000000000D1");
    assert_int_equal(rc.r[0].state, RCPT_REDELIVERED);
    assert_int_equal(rc.r[1].state, RCPT_REDELIVERED);

    /* Deleted for good: a later copy is deleted too, and settles the message. */
    assert_int_equal(store_mailbox_delete(f->st, e), STORE_OK);
    assert_int_equal(messages(f, "00000000000000D1"), 1);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[2].id, f->bob, out, 103, &e2), STORE_OK);
    assert_int_equal(e2, e);
    assert_int_equal(messages(f, "00000000000000D1"), 0);
    assert_int_equal(due(f, f->acme, 0).n, 0);
    assert_int_equal(blob_refs(f, BLOB_A), 0);
    /* One entry of this outage, re-delivered, then deleted by the user: it
     * counts as re-delivered (deleted counts what was never re-delivered). */
    assert_counts(f, f->acme, 1, 0, 1, 0);
}

static void test_counts_per_outage_and_pruning(void **state)
{
    struct fixture *f = *state;
    int64_t first = outage(f, f->acme, 100);
    const char *r1[] = {"bob@acme.test"}, *r2[] = {"carol@acme.test"}, *r3[] = {"sales@acme.test"};
    queue_msg(f, "00000000000000E1", BLOB_A, 100, r1, 1);
    queue_msg(f, "00000000000000E2", BLOB_B, 101, r2, 1);
    queue_msg(f, "00000000000000E3", BLOB_C, 102, r3, 1);
    int64_t e1 = 0, e2 = 0, e3 = 0;
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000E1").r[0].id, f->bob, first, 110, &e1),
                     STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000E2").r[0].id, f->carol, first, 111, &e2),
                     STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000E3").r[0].id, f->bob, first, 112, &e3),
                     STORE_OK);
    assert_counts(f, f->acme, 3, 3, 0, 0);
    assert_counts(f, f->other, 0, 0, 0, 0);
    struct store_continuity_counts c;
    assert_int_equal(store_continuity_counts(f->st, 4242, &c), STORE_NOTFOUND);

    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_RECOVERING, "probe ok", 200, NULL), STORE_OK);
    assert_int_equal(store_mailbox_redelivered(f->st, e1), STORE_OK);
    assert_int_equal(store_mailbox_delete(f->st, e2), STORE_OK);
    assert_counts(f, f->acme, 3, 1, 1, 1);
    /* Back to outage before e3 went: the same outage, the same counts. */
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_OUTAGE, "451", 210, NULL), STORE_OK);
    assert_counts(f, f->acme, 3, 1, 1, 1);
    /* The user deleting a re-delivered entry does not change the counts. */
    assert_int_equal(store_mailbox_delete(f->st, e1), STORE_OK);
    assert_counts(f, f->acme, 3, 1, 1, 1);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM mailbox WHERE purged = 1"), 2);

    /* Normal, then a new outage: its counts start at zero, the old waiting
     * entry still waits, and the old tombstones are gone. */
    assert_int_equal(store_domain_set_state(f->st, f->acme, DOMAIN_NORMAL, "operator", 300, NULL), STORE_OK);
    assert_counts(f, f->acme, 3, 1, 1, 1); /* the last outage's */
    outage(f, f->acme, 400);
    assert_counts(f, f->acme, 0, 1, 0, 0);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM mailbox WHERE purged = 1"), 0);
    assert_int_equal(due(f, f->acme, 0).e[0].id, e3);
}

static void test_entries_outside_an_outage_are_deleted_outright(void **state)
{
    struct fixture *f = *state;
    /* A partial 4xx diverts with the domain normal: outage_id 0. */
    const char *r[] = {"bob@acme.test"};
    queue_msg(f, "00000000000000F1", BLOB_A, 100, r, 1);
    int64_t e = 0;
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000F1").r[0].id, f->bob, 0, 101, &e),
                     STORE_OK);
    assert_counts(f, f->acme, 0, 1, 0, 0);
    assert_int_equal(store_mailbox_delete(f->st, e), STORE_OK);
    assert_int_equal(mailbox_rows(f), 0);
    assert_counts(f, f->acme, 0, 0, 0, 0);
    assert_int_equal(messages(f, "00000000000000F1"), 0);
    assert_int_equal(blob_refs(f, BLOB_A), 0);
}

static void test_due_order_limit_and_domains(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "carol@acme.test", "dave@other.test"};
    queue_msg(f, "00000000000000G1", BLOB_A, 100, r, 3);
    struct rcpts rc = rcpts_of(f, "00000000000000G1");
    int64_t late = 0, early = 0, dave = 0;
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 300, &late), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->carol, out, 200, &early), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[2].id, f->dave, 0, 250, &dave), STORE_OK);
    struct entries d = due(f, f->acme, 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.e[0].id, early);
    assert_int_equal(d.e[1].id, late);
    d = due(f, f->acme, 1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.e[0].id, early);
    d = due(f, f->other, 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.e[0].id, dave);
    assert_int_equal(d.e[0].domain_id, f->other);
}

static void assert_plan_uses(struct fixture *f, const char *sql, const char *index)
{
    sqlite3 *db = tmp_raw_open(&f->t);
    sqlite3_stmt *s;
    char explain[1024];
    snprintf(explain, sizeof explain, "EXPLAIN QUERY PLAN %s", sql);
    assert_int_equal(sqlite3_prepare_v2(db, explain, -1, &s, NULL), SQLITE_OK);
    char plan[1024] = "";
    while (sqlite3_step(s) == SQLITE_ROW) {
        strncat(plan, (const char *)sqlite3_column_text(s, 3), sizeof plan - strlen(plan) - 2);
        strcat(plan, ";");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    if (!strstr(plan, index) || strstr(plan, "TEMP B-TREE"))
        fail_msg("plan of %s: %s", sql, plan);
}

/* The drain's and the webmail's questions walk an index in order. */
static void test_queries_use_indexes(void **state)
{
    struct fixture *f = *state;
    tmp_skip_on_pg(&f->t, "SQLite's query plans");
    assert_plan_uses(f, "SELECT id FROM mailbox WHERE domain_id = ?1 AND redeliver = 1 ORDER BY received, id LIMIT ?2",
                     "mailbox_waiting");
    assert_plan_uses(f,
                     "SELECT id FROM mailbox WHERE user_id = ?1 AND folder = ?2 AND purged = 0 "
                     "ORDER BY received DESC, id DESC",
                     "mailbox_folder");
    assert_plan_uses(f, "SELECT count(*) FROM mailbox WHERE domain_id = ?1 AND outage_id = ?2", "mailbox_outage");
    assert_plan_uses(f, "SELECT id FROM recipients WHERE mailbox_entry_id = ?1 AND state = 3", "recipients_mailbox");
}

/* ------------------------------------------------------- folders and flags */

static void test_folders_flags_and_redeliver_marks(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r1[] = {"bob@acme.test"}, *r2[] = {"sales@acme.test"};
    queue_msg(f, "00000000000000H1", BLOB_A, 100, r1, 1);
    queue_msg(f, "00000000000000H2", BLOB_B, 101, r2, 1);
    int64_t e1 = 0, e2 = 0;
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000H1").r[0].id, f->bob, out, 110, &e1),
                     STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000H2").r[0].id, f->bob, out, 120, &e2),
                     STORE_OK);
    struct entries l = list(f, f->bob, FOLDER_INBOX);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.e[0].id, e2); /* newest first */

    /* Trash keeps it re-deliverable. */
    assert_int_equal(store_mailbox_move(f->st, e1, FOLDER_TRASH), STORE_OK);
    assert_int_equal(list(f, f->bob, FOLDER_INBOX).n, 1);
    assert_int_equal(list(f, f->bob, FOLDER_TRASH).n, 1);
    assert_int_equal(list(f, f->bob, -1).n, 2);
    assert_int_equal(due(f, f->acme, 0).n, 2);
    assert_int_equal(store_mailbox_move(f->st, e1, 3), STORE_ERR);
    assert_int_equal(store_mailbox_move(f->st, 4242, FOLDER_SENT), STORE_NOTFOUND);

    /* Marked deleted: out of the drain, counted as deleted; restored: back. */
    assert_int_equal(store_mailbox_set_redeliver(f->st, e1, REDELIVER_DELETED), STORE_OK);
    assert_int_equal(due(f, f->acme, 0).n, 1);
    assert_counts(f, f->acme, 2, 1, 0, 1);
    assert_int_equal(rcpts_of(f, "00000000000000H1").r[0].state, RCPT_CONTINUITY);
    assert_int_equal(store_mailbox_set_redeliver(f->st, e1, REDELIVER_WAITING), STORE_OK);
    assert_int_equal(due(f, f->acme, 0).n, 2);
    assert_int_equal(store_mailbox_set_redeliver(f->st, e1, REDELIVER_DONE), STORE_ERR);
    assert_int_equal(store_mailbox_set_redeliver(f->st, 4242, REDELIVER_NONE), STORE_NOTFOUND);
    /* Done is final. */
    assert_int_equal(store_mailbox_redelivered(f->st, e2), STORE_OK);
    assert_int_equal(store_mailbox_set_redeliver(f->st, e2, REDELIVER_WAITING), STORE_OK);
    struct store_mailbox_entry e;
    assert_int_equal(store_mailbox_get(f->st, e2, &e), STORE_OK);
    assert_int_equal(e.redeliver, REDELIVER_DONE);
    /* Marked not to go back, the drain cannot mark it done either. */
    assert_int_equal(store_mailbox_set_redeliver(f->st, e1, REDELIVER_NONE), STORE_OK);
    assert_int_equal(store_mailbox_redelivered(f->st, e1), STORE_NOTFOUND);

    /* Flags and folder counts. */
    assert_int_equal(store_mailbox_set_flags(f->st, e2, 1, -1), STORE_OK);
    assert_int_equal(store_mailbox_set_flags(f->st, e1, -1, 1), STORE_OK);
    assert_int_equal(store_mailbox_set_flags(f->st, 4242, 1, 1), STORE_NOTFOUND);
    assert_int_equal(store_mailbox_get(f->st, e2, &e), STORE_OK);
    assert_int_equal(e.seen, 1);
    assert_int_equal(e.flagged, 0);
    assert_int_equal(store_mailbox_get(f->st, e1, &e), STORE_OK);
    assert_int_equal(e.seen, 0);
    assert_int_equal(e.flagged, 1);
    struct store_folder_counts fc;
    assert_int_equal(store_mailbox_folder_counts(f->st, f->bob, &fc), STORE_OK);
    assert_int_equal(fc.total[FOLDER_INBOX], 1);
    assert_int_equal(fc.unread[FOLDER_INBOX], 0);
    assert_int_equal(fc.total[FOLDER_TRASH], 1);
    assert_int_equal(fc.unread[FOLDER_TRASH], 1);
    assert_int_equal(fc.total[FOLDER_SENT], 0);
    assert_int_equal(store_mailbox_folder_counts(f->st, f->carol, &fc), STORE_OK);
    assert_int_equal(fc.total[FOLDER_INBOX], 0);
    struct entries none = {0};
    assert_int_equal(store_mailbox_list(f->st, f->bob, 7, collect_entry, &none), STORE_ERR);
}

/* ------------------------------------------------------ entries added directly */

static void test_mailbox_add_sent_copy(void **state)
{
    struct fixture *f = *state;
    struct store_mailbox_entry e;
    memset(&e, 0, sizeof e);
    e.user_id = f->bob;
    e.domain_id = f->other; /* ignored: the user's domain is taken */
    snprintf(e.msg_id, sizeof e.msg_id, "00000000000000J1");
    snprintf(e.blob, sizeof e.blob, "%s", BLOB_C);
    snprintf(e.sender, sizeof e.sender, "bob@acme.test");
    snprintf(e.rcpts, sizeof e.rcpts, "bob@acme.test");
    e.size = 42;
    e.received = 500;
    e.folder = FOLDER_SENT;
    e.seen = 1;
    e.redeliver = REDELIVER_WAITING;
    e.direction = DIR_OUTBOUND;
    int64_t id = 0;
    assert_int_equal(store_mailbox_add(f->st, &e, 30, &id), STORE_OK);
    assert_true(id > 0);
    assert_int_equal(blob_refs(f, BLOB_C), 1); /* recorded and referenced */
    assert_int_equal(tmp_raw_count(&f->t, "SELECT stored_size FROM blobs WHERE id = '" BLOB_C "'"), 30);
    assert_int_equal(store_mailbox_add(f->st, &e, 30, NULL), STORE_EXISTS);
    assert_int_equal(blob_refs(f, BLOB_C), 1);

    struct store_mailbox_entry got;
    assert_int_equal(store_mailbox_get(f->st, id, &got), STORE_OK);
    assert_int_equal(got.domain_id, f->acme);
    assert_int_equal(got.folder, FOLDER_SENT);
    assert_int_equal(got.direction, DIR_OUTBOUND);
    assert_int_equal(got.seen, 1);
    struct entries d = due(f, f->acme, 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.e[0].id, id);

    /* The same message diverted into his INBOX too (he wrote to himself). */
    const char *r[] = {"bob@acme.test"};
    queue_msg(f, "00000000000000J1", BLOB_C, 500, r, 1);
    int64_t in = 0;
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000J1").r[0].id, f->bob, 0, 501, &in),
                     STORE_OK);
    assert_true(in != id);

    /* No such user; a bad folder. */
    e.user_id = 4242;
    assert_int_equal(store_mailbox_add(f->st, &e, 30, NULL), STORE_NOTFOUND);
    e.user_id = f->carol;
    e.folder = 9;
    assert_int_equal(store_mailbox_add(f->st, &e, 30, NULL), STORE_ERR);
    assert_int_equal(blob_refs(f, BLOB_C), 3);

    /* Deleting a sent copy does not touch the outbound message's recipients. */
    assert_int_equal(store_mailbox_delete(f->st, id), STORE_OK);
    assert_int_equal(rcpts_of(f, "00000000000000J1").r[0].state, RCPT_CONTINUITY);
    assert_int_equal(blob_refs(f, BLOB_C), 2);
}

/* ------------------------------------------------------------ user deletion */

static void test_user_del_drops_the_mailbox(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "carol@acme.test"};
    queue_msg(f, "00000000000000K1", BLOB_A, 100, r, 2);
    struct rcpts rc = rcpts_of(f, "00000000000000K1");
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->carol, out, 101, NULL), STORE_OK);
    const char *r2[] = {"bob@acme.test"};
    queue_msg(f, "00000000000000K2", BLOB_B, 102, r2, 1);
    int64_t gone = 0;
    assert_int_equal(store_mailbox_divert(f->st, rcpts_of(f, "00000000000000K2").r[0].id, f->bob, out, 103, &gone),
                     STORE_OK);
    assert_int_equal(store_mailbox_delete(f->st, gone), STORE_OK); /* a tombstone of bob's */
    assert_int_equal(blob_refs(f, BLOB_A), 3);

    assert_int_equal(store_user_del(f->st, f->bob), STORE_OK);
    char sql[100];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM mailbox WHERE user_id = %lld", (long long)f->bob);
    assert_int_equal(tmp_raw_count(&f->t, sql), 0);
    assert_int_equal(mailbox_rows(f), 1); /* carol's */
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    rc = rcpts_of(f, "00000000000000K1");
    assert_int_equal(rc.r[0].state, RCPT_DELETED);
    assert_int_equal(rc.r[0].mailbox_entry_id, 0); /* its entry is gone */
    assert_int_equal(rc.r[1].state, RCPT_CONTINUITY);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM aliases"), 0);
    assert_int_equal(store_user_del(f->st, f->bob), STORE_NOTFOUND);
}

/* ------------------------------------------------------------ non-retroactivity */

static void test_mark_pre_continuity(void **state)
{
    struct fixture *f = *state;
    const char *r[] = {"bob@acme.test", "carol@ACME.test", "dave@other.test"};
    queue_msg(f, "00000000000000M1", BLOB_A, 100, r, 3);
    struct rcpts rc = rcpts_of(f, "00000000000000M1");
    assert_int_equal(rc.r[0].pre_continuity, 0);
    assert_int_equal(store_rcpt_update(f->st, rc.r[1].id, RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    unsigned marked = 99;
    assert_int_equal(store_rcpt_mark_pre_continuity(f->st, "Acme.Test", &marked), STORE_OK);
    assert_int_equal(marked, 1); /* queued and of the domain: bob only */
    rc = rcpts_of(f, "00000000000000M1");
    assert_int_equal(rc.r[0].pre_continuity, 1);
    assert_int_equal(rc.r[1].pre_continuity, 0);
    assert_int_equal(rc.r[2].pre_continuity, 0);
    struct store_rcpt one;
    assert_int_equal(store_rcpt_get(f->st, rc.r[0].id, &one), STORE_OK);
    assert_int_equal(one.pre_continuity, 1);
    /* Mail queued afterwards is not marked. */
    queue_msg(f, "00000000000000M2", BLOB_B, 101, r, 1);
    assert_int_equal(rcpts_of(f, "00000000000000M2").r[0].pre_continuity, 0);
    assert_int_equal(store_rcpt_mark_pre_continuity(f->st, "nosuch.test", &marked), STORE_OK);
    assert_int_equal(marked, 0);
}

/* ------------------------------------------------------------ atomicity */

static void test_divert_rolls_back_whole(void **state)
{
    struct fixture *f = *state;
    int64_t out = outage(f, f->acme, 100);
    const char *r[] = {"bob@acme.test", "sales@acme.test"};
    queue_msg(f, "00000000000000L1", BLOB_A, 100, r, 2);
    struct rcpts rc = rcpts_of(f, "00000000000000L1");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(store_rollback(f->st), STORE_OK);
    assert_int_equal(mailbox_rows(f), 0);
    assert_int_equal(blob_refs(f, BLOB_A), 1);
    rc = rcpts_of(f, "00000000000000L1");
    assert_int_equal(rc.r[0].state, RCPT_QUEUED);
    assert_int_equal(rc.r[0].mailbox_entry_id, 0);

    /* A divert that fails inside a transaction leaves the rest of it alone. */
    char addr[ADDR_MAX + 1];
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, NULL), STORE_OK);
    const char *many[4];
    char names[4][ADDR_MAX + 1];
    for (int i = 0; i < 4; i++) {
        memset(addr, 'a' + i, 300);
        snprintf(addr + 300, sizeof addr - 300, "@acme.test");
        snprintf(names[i], sizeof names[i], "%s", addr);
        many[i] = names[i];
        assert_int_equal(store_alias_add(f->st, f->bob, addr), STORE_OK);
    }
    assert_int_equal(store_commit(f->st), STORE_OK);
    queue_msg(f, "00000000000000L2", BLOB_B, 100, many, 4);
    rc = rcpts_of(f, "00000000000000L2");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[0].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[1].id, f->bob, out, 101, NULL), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->st, rc.r[2].id, f->bob, out, 101, NULL), STORE_OK);
    /* A fourth 310-byte address does not fit the entry's 1024-byte list. */
    assert_int_equal(store_mailbox_divert(f->st, rc.r[3].id, f->bob, out, 101, NULL), STORE_ERR);
    assert_int_equal(store_commit(f->st), STORE_OK);
    rc = rcpts_of(f, "00000000000000L2");
    assert_int_equal(rc.r[2].state, RCPT_CONTINUITY);
    assert_int_equal(rc.r[3].state, RCPT_QUEUED);
    assert_int_equal(rc.r[3].mailbox_entry_id, 0);
    assert_int_equal(rcpts_of(f, "00000000000000L1").r[0].state, RCPT_CONTINUITY);
}

int main(void)
{
    log_init("test_store_continuity", "test", 1);
    log_set_level(LOG_LEVEL_ERR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migration_from_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_continuity_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_machine_and_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_cause_is_cut_on_a_character, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divert_address_and_alias_one_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_releases_the_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_never_redelivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_recipients_when_message_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divert_after_delete_or_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_per_outage_and_pruning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_outside_an_outage_are_deleted_outright, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_order_limit_and_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_use_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folders_flags_and_redeliver_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_add_sent_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_del_drops_the_mailbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_pre_continuity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divert_rolls_back_whole, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
