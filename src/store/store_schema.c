/*
 * store_schema.c — the database schema and its numbered migrations.
 *
 * The schema only ever moves forward: migration N turns version N-1 into N and
 * is applied in one transaction together with the new number in schema_version,
 * so a crash leaves either the old or the new schema, never half of one.
 * Opening an up-to-date database costs one read and takes no write lock (the
 * daemon and lifeboatctl open the file all the time). Two processes opening an
 * old database at once are serialised by BEGIN IMMEDIATE and the version is
 * re-read inside the transaction, so each migration runs exactly once.
 *
 * To change the schema, append a migration; never edit one that has shipped.
 * 1: directory, queue, blob references. 2: continuity (domain state, events,
 * mailboxes). 3: webmail sessions and login failures. 4: password policies and
 * password reset tokens. 5: the archive (entries, participants, an FTS5
 * index, legal holds) and the audit trail. 6: pending login attempts, operator
 * holds. 7: LDAP settings, sync reports, directory users, last login.
 * 8: per-minute statistics, queue holds, a queued message's sending customer.
 * 9: several nodes (node heartbeats, leases on recipients and mailbox entries,
 * bodies in the database), login_failures with an id.
 *
 * PostgreSQL starts a new database at version 9 with one script
 * (store_schema_pg.c) that gives the same tables, columns and indexes; a
 * migration after 9 must carry the PostgreSQL form of its change too.
 *
 * Addresses and domain names are stored lower-case and compared with COLLATE
 * NOCASE (ASCII folding, like util/addr.h), so a lookup by any spelling hits the
 * unique index.
 */
#include "store/store_internal.h"

#include <stdio.h>

#include "util/log.h"

struct migration {
    int version;
    const char *what;
    const char *sql;
};

static const struct migration migrations[] = {
    {1, "directory, queue and blob references",
     /* The directory. */
     "CREATE TABLE customers ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     "  created INTEGER NOT NULL,"
     "  sub_start INTEGER NOT NULL DEFAULT 0,"
     "  sub_end INTEGER NOT NULL DEFAULT 0,"
     "  sub_cancelled INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE domains ("
     "  id INTEGER PRIMARY KEY,"
     "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
     "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     "  routes TEXT NOT NULL DEFAULT '',"
     "  recipient_check INTEGER NOT NULL DEFAULT 0,"
     "  outbound_from TEXT NOT NULL DEFAULT '',"
     "  webhook TEXT NOT NULL DEFAULT '',"
     "  dkim_selector TEXT NOT NULL DEFAULT '',"
     "  dkim_key_file TEXT NOT NULL DEFAULT '',"
     "  continuity INTEGER NOT NULL DEFAULT 0,"
     "  outgoing_to_own INTEGER NOT NULL DEFAULT 0,"
     "  created INTEGER NOT NULL);"
     "CREATE INDEX domains_customer ON domains(customer_id);"
     "CREATE TABLE users ("
     "  id INTEGER PRIMARY KEY,"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id),"
     "  email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     "  name TEXT NOT NULL DEFAULT '',"
     "  role INTEGER NOT NULL DEFAULT 0,"
     "  pw_hash TEXT NOT NULL DEFAULT '',"
     "  active INTEGER NOT NULL DEFAULT 0,"
     "  suspended INTEGER NOT NULL DEFAULT 0,"
     "  alt_email TEXT NOT NULL DEFAULT '',"
     "  created INTEGER NOT NULL);"
     "CREATE INDEX users_domain ON users(domain_id);"
     "CREATE TABLE aliases ("
     "  alias TEXT PRIMARY KEY COLLATE NOCASE,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE"
     ") WITHOUT ROWID;"
     "CREATE INDEX aliases_user ON aliases(user_id);"
     /* Message bodies: one row per blob file, counting the rows that use it. */
     "CREATE TABLE blobs ("
     "  id TEXT PRIMARY KEY,"
     "  size INTEGER NOT NULL,"
     "  stored_size INTEGER NOT NULL,"
     "  refs INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0)"
     ") WITHOUT ROWID;"
     "CREATE INDEX blobs_unreferenced ON blobs(id) WHERE refs = 0;"
     /* The queue. Queue IDs sort by arrival, so messages append at the end. */
     "CREATE TABLE messages ("
     "  id TEXT PRIMARY KEY,"
     "  blob TEXT NOT NULL REFERENCES blobs(id),"
     "  size INTEGER NOT NULL,"
     "  sender TEXT NOT NULL,"
     "  prefix TEXT NOT NULL,"
     "  received INTEGER NOT NULL,"
     "  client_addr TEXT NOT NULL,"
     "  helo TEXT NOT NULL,"
     "  direction INTEGER NOT NULL,"
     "  is_bounce INTEGER NOT NULL"
     ") WITHOUT ROWID;"
     "CREATE TABLE recipients ("
     "  id INTEGER PRIMARY KEY,"
     "  msg_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
     "  rcpt TEXT NOT NULL,"
     "  domain TEXT NOT NULL,"
     "  state INTEGER NOT NULL DEFAULT 0,"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  next_attempt INTEGER NOT NULL,"
     "  last_reply TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX recipients_msg ON recipients(msg_id);"
     /* The queue runner's question: who is due (state queued, next_attempt <= now)? */
     "CREATE INDEX recipients_due ON recipients(state, next_attempt);"},

    {2, "continuity: domain state, events, mailboxes",
     /* Per-domain continuity state (store_domain_set_state). state_since starts
      * at the domain's creation: "normal since it was added". */
     "ALTER TABLE domains ADD COLUMN continuity_since INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE domains ADD COLUMN state INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE domains ADD COLUMN state_since INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE domains ADD COLUMN state_cause TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE domains ADD COLUMN outage_id INTEGER NOT NULL DEFAULT 0;"
     "UPDATE domains SET state_since = created;"
     /* The timeline: one row per state change, never updated. */
     "CREATE TABLE domain_events ("
     "  id INTEGER PRIMARY KEY,"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id),"
     "  at INTEGER NOT NULL,"
     "  from_state INTEGER NOT NULL,"
     "  to_state INTEGER NOT NULL,"
     "  cause TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX domain_events_domain ON domain_events(domain_id, id);"
     /* Continuity mailboxes: one row per user and message (and direction: the
      * Sent copy of a message a user mailed to themselves is a second row). An
      * entry holds its own blob reference. Deleted for good, an entry of an
      * outage stays as a tombstone (purged = 1, blob NULL) so the outage's
      * counts hold; tombstones of a domain go when its next outage starts. */
     "CREATE TABLE mailbox ("
     "  id INTEGER PRIMARY KEY,"
     "  user_id INTEGER NOT NULL REFERENCES users(id),"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id),"
     "  msg_id TEXT NOT NULL,"
     "  direction INTEGER NOT NULL DEFAULT 0,"
     "  blob TEXT REFERENCES blobs(id),"
     "  prefix TEXT NOT NULL DEFAULT '',"
     "  sender TEXT NOT NULL,"
     "  rcpts TEXT NOT NULL,"
     "  size INTEGER NOT NULL,"
     "  received INTEGER NOT NULL,"
     "  folder INTEGER NOT NULL DEFAULT 0,"
     "  seen INTEGER NOT NULL DEFAULT 0,"
     "  flagged INTEGER NOT NULL DEFAULT 0,"
     "  redeliver INTEGER NOT NULL DEFAULT 1,"
     "  outage_id INTEGER NOT NULL DEFAULT 0,"
     "  purged INTEGER NOT NULL DEFAULT 0);"
     /* A user's folder, newest first (also the users(id) foreign key's index). */
     "CREATE INDEX mailbox_folder ON mailbox(user_id, folder, received DESC, id DESC);"
     /* The drain's question: a domain's waiting entries, oldest first. */
     "CREATE INDEX mailbox_waiting ON mailbox(domain_id, received, id) WHERE redeliver = 1;"
     /* store_continuity_counts and the pruning of tombstones. */
     "CREATE INDEX mailbox_outage ON mailbox(domain_id, outage_id, redeliver);"
     "CREATE UNIQUE INDEX mailbox_msg_user ON mailbox(msg_id, user_id, direction);"
     /* The blobs(id) foreign key's check when the GC forgets a blob. */
     "CREATE INDEX mailbox_blob ON mailbox(blob);"
     /* A diverted recipient points at the entry that holds its copy. */
     "ALTER TABLE recipients ADD COLUMN mailbox_entry_id INTEGER REFERENCES mailbox(id) ON DELETE SET NULL;"
     "CREATE INDEX recipients_mailbox ON recipients(mailbox_entry_id) WHERE mailbox_entry_id IS NOT NULL;"
     /* Queued when continuity was enabled for its domain: never diverted (not
      * retroactive, exactly: the mark is set in the enabling transaction). */
     "ALTER TABLE recipients ADD COLUMN pre_continuity INTEGER NOT NULL DEFAULT 0;"},

    {3, "webmail sessions and login failures",
     /* One row per logged-in browser (store_sessions.c). Only a hash of the
      * cookie's token is kept, so a copy of the database opens no session.
      * The sessions go with their user. */
     "CREATE TABLE http_sessions ("
     "  token_hash TEXT PRIMARY KEY,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  csrf TEXT NOT NULL,"
     "  created INTEGER NOT NULL,"
     "  last_seen INTEGER NOT NULL,"
     "  client_addr TEXT NOT NULL DEFAULT ''"
     ") WITHOUT ROWID;"
     "CREATE INDEX http_sessions_user ON http_sessions(user_id);"
     "CREATE INDEX http_sessions_last_seen ON http_sessions(last_seen);"
     /* Failed logins, one row each, keyed by "account:EMAIL" or "addr:IP": the
      * lockout counts the rows of a key within its window. */
     "CREATE TABLE login_failures ("
     "  key TEXT NOT NULL,"
     "  at INTEGER NOT NULL);"
     "CREATE INDEX login_failures_key ON login_failures(key, at);"
     "CREATE INDEX login_failures_at ON login_failures(at);"},

    {4, "password policies and password resets",
     /* One row per customer that has a policy (lifeboatctl policy set); a
      * customer without one gets directory's defaults. */
     "CREATE TABLE password_policy ("
     "  customer_id INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,"
     "  min_length INTEGER NOT NULL,"
     "  require_upper INTEGER NOT NULL DEFAULT 0,"
     "  require_lower INTEGER NOT NULL DEFAULT 0,"
     "  require_digit INTEGER NOT NULL DEFAULT 0,"
     "  require_special INTEGER NOT NULL DEFAULT 0);"
     /* Reset tokens mailed to a user's alternate address (store_password.c).
      * Only the SHA-256 of the token is kept. used is when it was used or
      * voided by a newer request, 0 while it is usable. The rows outlive their
      * use until they expire: they are also the count of reset mails per
      * account for the rate limit. */
     "CREATE TABLE password_resets ("
     "  token_hash TEXT PRIMARY KEY,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  created INTEGER NOT NULL,"
     "  expires INTEGER NOT NULL,"
     "  used INTEGER NOT NULL DEFAULT 0"
     ") WITHOUT ROWID;"
     "CREATE INDEX password_resets_user ON password_resets(user_id, created);"
     "CREATE INDEX password_resets_expires ON password_resets(expires);"
     /* Reset requests per client address, one row each, for the rate limit
      * (login_failures has its own, shorter window and purge). */
     "CREATE TABLE password_reset_requests ("
     "  client_addr TEXT NOT NULL,"
     "  at INTEGER NOT NULL);"
     "CREATE INDEX password_reset_requests_addr ON password_reset_requests(client_addr, at);"
     "CREATE INDEX password_reset_requests_at ON password_reset_requests(at);"},

    {5, "the archive: entries, participants, full-text index, legal holds, audit trail",
     /* One row per message and customer involved (store_archive.c). Each entry
      * holds its own reference on the message's blob. The fields from subject
      * on are the indexer's (indexed = 1 once it has been there); date starts
      * as received so that date filters work before the indexer came by. */
     "CREATE TABLE archive ("
     "  id INTEGER PRIMARY KEY,"
     "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
     "  msg_id TEXT NOT NULL,"
     "  blob TEXT NOT NULL REFERENCES blobs(id),"
     "  prefix TEXT NOT NULL DEFAULT '',"
     "  direction INTEGER NOT NULL,"
     "  sender TEXT NOT NULL,"
     "  received INTEGER NOT NULL,"
     "  size INTEGER NOT NULL,"
     "  indexed INTEGER NOT NULL DEFAULT 0,"
     "  date INTEGER NOT NULL,"
     "  subject TEXT NOT NULL DEFAULT '',"
     "  from_hdr TEXT NOT NULL DEFAULT '',"
     "  to_hdr TEXT NOT NULL DEFAULT '',"
     "  has_attachment INTEGER NOT NULL DEFAULT 0);"
     /* An admin's search: the customer's entries, newest first. */
     "CREATE INDEX archive_customer ON archive(customer_id, id);"
     /* A date range within a customer (the index is kept up as the indexer
      * sets the date from the Date: header). */
     "CREATE INDEX archive_date ON archive(customer_id, date);"
     /* The indexer's work list, oldest first; empty once it has caught up. */
     "CREATE INDEX archive_unindexed ON archive(id) WHERE indexed = 0;"
     /* Retention: the oldest first. */
     "CREATE INDEX archive_received ON archive(received);"
     /* The blobs(id) foreign key's check when the GC forgets a blob. */
     "CREATE INDEX archive_blob ON archive(blob);"
     /* Participants: the envelope sender (kind 0) and recipients (kind 1) of
      * an entry, pos keeping their order. Keyed by address, so "the entries of
      * my addresses, newest first" is a range of the primary key. */
     "CREATE TABLE archive_addrs ("
     "  addr TEXT NOT NULL COLLATE NOCASE,"
     "  entry_id INTEGER NOT NULL REFERENCES archive(id) ON DELETE CASCADE,"
     "  kind INTEGER NOT NULL,"
     "  pos INTEGER NOT NULL,"
     "  PRIMARY KEY (addr, entry_id, kind)"
     ") WITHOUT ROWID;"
     "CREATE INDEX archive_addrs_entry ON archive_addrs(entry_id, kind, pos);"
     /* The full-text index, rowid = archive.id. A normal FTS5 table (it keeps
      * its own copy of the text): SQLite 3.40 has no contentless_delete, and
      * a contentless or external-content table needs the original text to
      * delete a row, which would mean parsing every purged message again.
      * columnsize=0: ranking is not used (results are newest first). */
     "CREATE VIRTUAL TABLE archive_fts USING fts5("
     "  subject, from_hdr, to_hdr, body, attachments,"
     "  tokenize = 'unicode61 remove_diacritics 2', columnsize = 0);"
     /* Legal holds: the whole customer (user_id 0) or one user, whose address
      * is kept too so the hold outlives the user's deletion. */
     "CREATE TABLE archive_holds ("
     "  id INTEGER PRIMARY KEY,"
     "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
     "  user_id INTEGER NOT NULL DEFAULT 0,"
     "  email TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
     "  created INTEGER NOT NULL,"
     "  created_by TEXT NOT NULL DEFAULT '',"
     "  UNIQUE (customer_id, user_id));"
     /* The audit trail: who did what, when, to whose data. Never updated. */
     "CREATE TABLE audit ("
     "  id INTEGER PRIMARY KEY,"
     "  at INTEGER NOT NULL,"
     "  customer_id INTEGER NOT NULL DEFAULT 0,"
     "  actor TEXT NOT NULL,"
     "  action TEXT NOT NULL,"
     "  target TEXT NOT NULL DEFAULT '',"
     "  detail TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX audit_customer ON audit(customer_id, id);"},

    {6, "login attempts counted before the check; legal holds an operator set",
     /* A login attempt is a failure row from before its password is checked
      * (pending = 1) until it fails (0) or succeeds (deleted), so parallel
      * attempts see each other. */
     "ALTER TABLE login_failures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;"
     /* A hold an operator set is not a customer admin's to lift. lifeboatctl
      * is the operator's tool, so its holds are the operator's. */
     "ALTER TABLE archive_holds ADD COLUMN by_operator INTEGER NOT NULL DEFAULT 0;"
     "UPDATE archive_holds SET by_operator = 1 WHERE created_by LIKE 'lifeboatctl%';"},

    {7, "LDAP / Active Directory: settings and last report per domain, directory users, last login",
     /* The directory a domain's users come from. The bind password must be
      * usable to bind, so it is kept as given (the database is the daemon's
      * alone, mode 0700) and never handed out by lifeboatctl or the API. */
     "CREATE TABLE ldap_settings ("
     "  domain_id INTEGER PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,"
     "  url TEXT NOT NULL,"
     "  bind_dn TEXT NOT NULL DEFAULT '',"
     "  bind_password TEXT NOT NULL DEFAULT '',"
     "  base TEXT NOT NULL,"
     "  filter TEXT NOT NULL,"
     "  interval INTEGER NOT NULL,"
     "  starttls INTEGER NOT NULL DEFAULT 0,"
     "  updated INTEGER NOT NULL);"
     /* The last sync of each domain, for the panel and ldap status. */
     "CREATE TABLE ldap_reports ("
     "  domain_id INTEGER PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,"
     "  at INTEGER NOT NULL,"
     "  ok INTEGER NOT NULL,"
     "  duration_ms INTEGER NOT NULL DEFAULT 0,"
     "  entries INTEGER NOT NULL DEFAULT 0,"
     "  added INTEGER NOT NULL DEFAULT 0,"
     "  updated INTEGER NOT NULL DEFAULT 0,"
     "  suspended INTEGER NOT NULL DEFAULT 0,"
     "  aliases INTEGER NOT NULL DEFAULT 0,"
     "  aliases_removed INTEGER NOT NULL DEFAULT 0,"
     "  nerrors INTEGER NOT NULL DEFAULT 0,"
     "  errors TEXT NOT NULL DEFAULT '');"
     /* A user made by the sync (a user without a row is local): the entry's
      * DN to bind as at login, the argon2id hash of the last password the
      * directory accepted (the fallback while it cannot be reached), and
      * whether the sync suspended the user (so only such a suspension is
      * lifted when the entry comes back). */
     "CREATE TABLE ldap_users ("
     "  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
     "  dn TEXT NOT NULL,"
     "  pw_cache TEXT NOT NULL DEFAULT '',"
     "  sync_suspended INTEGER NOT NULL DEFAULT 0);"
     /* Aliases the sync made: the ones it may take away again. */
     "ALTER TABLE aliases ADD COLUMN from_ldap INTEGER NOT NULL DEFAULT 0;"
     /* Every successful login (webmail, submission), for readiness. */
     "ALTER TABLE users ADD COLUMN last_login INTEGER NOT NULL DEFAULT 0;"},

    {8, "per-minute statistics; queue holds; the sending customer of a queued message",
     /* Counters per hosted domain and minute (store_stats.c), moved by the
      * transactions that make the state changes they count. Sparse: a row
      * exists only for a minute in which something happened. Kept about two
      * days (the daily retention pass purges older minutes). */
     "CREATE TABLE stats_minute ("
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  minute INTEGER NOT NULL,"
     "  accepted INTEGER NOT NULL DEFAULT 0,"
     "  delivered INTEGER NOT NULL DEFAULT 0,"
     "  diverted INTEGER NOT NULL DEFAULT 0,"
     "  redelivered INTEGER NOT NULL DEFAULT 0,"
     "  deferred INTEGER NOT NULL DEFAULT 0,"
     "  bounced INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (domain_id, minute)"
     ") WITHOUT ROWID;"
     "CREATE INDEX stats_minute_minute ON stats_minute(minute);"
     /* A held recipient is not tried until it is released (queue hold). */
     "ALTER TABLE recipients ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
     /* Who sends an outbound message (queue.h's sender_customer_id), so that a
      * customer's admin sees and manages its queued outbound mail. Mail
      * queued before this migration has none: only an operator sees it. */
     "ALTER TABLE messages ADD COLUMN sender_customer_id INTEGER NOT NULL DEFAULT 0;"},

    {9, "several nodes: node heartbeats, leases, bodies in the database",
     /* The nodes of a cluster and their heartbeats (lifeboatctl cluster status). */
     "CREATE TABLE nodes ("
     "  name TEXT PRIMARY KEY,"
     "  started INTEGER NOT NULL,"
     "  heartbeat INTEGER NOT NULL,"
     "  version TEXT NOT NULL DEFAULT '',"
     "  addr TEXT NOT NULL DEFAULT ''"
     ") WITHOUT ROWID;"
     /* Message bodies kept in the database (PostgreSQL without blob_dir; the
      * same table here keeps both schemas one). No foreign key: blob.c
      * writes a body in the transaction that records its blobs row and
      * deletes it with that row, in its own order (blob.c explains why). */
     "CREATE TABLE blob_data ("
     "  id TEXT PRIMARY KEY,"
     "  data BLOB NOT NULL"
     ") WITHOUT ROWID;"
     /* Leases: the node working on a recipient or a mailbox entry, until when. */
     "ALTER TABLE recipients ADD COLUMN claim_node TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE recipients ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE mailbox ADD COLUMN claim_node TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE mailbox ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;"
     /* login_failures gets an explicit id (the code used SQLite's rowid,
      * which PostgreSQL has not); id keeps the old rowid. */
     "CREATE TABLE login_failures_new ("
     "  id INTEGER PRIMARY KEY,"
     "  key TEXT NOT NULL,"
     "  at INTEGER NOT NULL,"
     "  pending INTEGER NOT NULL DEFAULT 0);"
     "INSERT INTO login_failures_new (id, key, at, pending) SELECT rowid, key, at, pending FROM login_failures;"
     "DROP TABLE login_failures;"
     "ALTER TABLE login_failures_new RENAME TO login_failures;"
     "CREATE INDEX login_failures_key ON login_failures(key, at);"
     "CREATE INDEX login_failures_at ON login_failures(at);"},
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

int store_schema_version(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

/* A new PostgreSQL database starts at the version its baseline script
 * (store_schema_pg.c) describes, the same schema as SQLite's at that version;
 * later migrations carry both dialects. */
static const struct migration *pg_baseline(void)
{
    static struct migration m;
    m.version = STORE_PG_BASELINE_VERSION;
    m.what = "the whole schema (PostgreSQL baseline)";
    m.sql = store_pg_schema_sql();
    return &m;
}

/* The schema version recorded in the database, 0 for a new one, -1 on error. */
static int current_version(struct store *st)
{
    static const char sql_has_lite[] =
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'";
    static const char sql_has_pg[] = "SELECT 1 WHERE to_regclass('schema_version') IS NOT NULL";
    static const char sql_get[] = "SELECT max(version) FROM schema_version";
    const char *sql_has = st->kind == DB_PG ? sql_has_pg : sql_has_lite;
    struct db_stmt *stmt = stmt_get(st, sql_has);
    if (!stmt)
        return -1;
    int rc = db_step(stmt);
    stmt_put(st, sql_has, stmt);
    if (rc == DB_DONE)
        return 0;
    if (rc != DB_ROW) {
        db_rc(st, rc, "read schema version");
        return -1;
    }
    if (!(stmt = stmt_get(st, sql_get)))
        return -1;
    rc = db_step(stmt);
    int version = rc == DB_ROW ? db_col_int(stmt, 0) : -1;
    if (rc != DB_ROW)
        db_rc(st, rc, "read schema version");
    stmt_put(st, sql_get, stmt);
    return version;
}

static int apply(struct store *st, const struct migration *m, char *err, size_t errlen)
{
    if (store_begin(st) != STORE_OK) {
        snprintf(err, errlen, "schema migration %d: cannot start a transaction: %s", m->version, db_errmsg(st));
        return -1;
    }
    /* Nodes of a cluster starting together take turns here (SQLite's BEGIN
     * IMMEDIATE already serialises); the lock goes with the transaction. */
    if (st->kind == DB_PG && st->ops->exec(st, "SELECT pg_advisory_xact_lock(7311001)") != DB_DONE) {
        snprintf(err, errlen, "schema migration %d: cannot lock the schema: %s", m->version, db_errmsg(st));
        store_rollback(st);
        return -1;
    }
    /* Another process may have migrated while we waited for the lock. */
    int version = current_version(st);
    if (version < 0 || version >= m->version) {
        store_rollback(st);
        if (version < 0)
            snprintf(err, errlen, "schema migration %d: cannot read the schema version", m->version);
        return version < 0 ? -1 : 0;
    }
    char sql_version[192];
    snprintf(sql_version, sizeof sql_version,
             "CREATE TABLE IF NOT EXISTS schema_version (version %s NOT NULL);"
             "INSERT INTO schema_version VALUES (%d)",
             st->kind == DB_PG ? "BIGINT" : "INTEGER", m->version);
    if (st->ops->exec(st, m->sql) != DB_DONE || st->ops->exec(st, sql_version) != DB_DONE) {
        snprintf(err, errlen, "schema migration %d (%s) failed: %s", m->version, m->what, db_errmsg(st));
        store_rollback(st);
        return -1;
    }
    if (store_commit(st) != STORE_OK) {
        snprintf(err, errlen, "schema migration %d: commit failed: %s", m->version, db_errmsg(st));
        store_rollback(st);
        return -1;
    }
    log_info("store: schema migrated to version %d (%s)", m->version, m->what);
    return 0;
}

int store_migrate(struct store *st, char *err, size_t errlen)
{
    int version = current_version(st);
    if (version < 0) {
        snprintf(err, errlen, "cannot read the schema version: %s", db_errmsg(st));
        return -1;
    }
    if (version > store_schema_version()) {
        snprintf(err, errlen,
                 "the database has schema version %d, newer than this lifeboat knows (%d): "
                 "run the newer lifeboat or restore a backup",
                 version, store_schema_version());
        return -1;
    }
    if (st->kind == DB_PG && version < STORE_PG_BASELINE_VERSION) {
        if (version != 0) {
            snprintf(err, errlen, "the database has schema version %d, older than any PostgreSQL schema", version);
            return -1;
        }
        if (apply(st, pg_baseline(), err, errlen) != 0)
            return -1;
        if ((version = current_version(st)) < 0) {
            snprintf(err, errlen, "cannot read the schema version: %s", db_errmsg(st));
            return -1;
        }
    }
    for (size_t i = 0; i < NMIGRATIONS; i++)
        if (migrations[i].version > version && apply(st, &migrations[i], err, errlen) != 0)
            return -1;
    return 0;
}
