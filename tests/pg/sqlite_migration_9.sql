-- tests/pg/sqlite_migration_9.sql — the SQLite side of schema version 9
-- (several nodes), for the lead to append to src/store/store_schema.c as
-- migration 9; until then tests/pg/schema_check.py --sqlite-extra applies it
-- to a version-8 SQLite database to compare with store_schema_pg.c.
-- Delete this file once store_schema.c has the migration.
-- Nodes of a cluster (lifeboatctl cluster status).
CREATE TABLE nodes (
  name TEXT PRIMARY KEY,
  started INTEGER NOT NULL,
  heartbeat INTEGER NOT NULL,
  version TEXT NOT NULL DEFAULT '',
  addr TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
-- Message bodies in the database (PostgreSQL without blob_dir; unused on SQLite,
-- kept so that both schemas are the same).
CREATE TABLE blob_data (
  id TEXT PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
  data BLOB NOT NULL
) WITHOUT ROWID;
-- Leases: the node working on a recipient / mailbox entry, until when.
ALTER TABLE recipients ADD COLUMN claim_node TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailbox ADD COLUMN claim_node TEXT NOT NULL DEFAULT '';
ALTER TABLE mailbox ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;
-- login_failures gets an explicit id (the code used its rowid, which
-- PostgreSQL has not): the table is made again with id = the old rowid.
CREATE TABLE login_failures_new (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  at INTEGER NOT NULL,
  pending INTEGER NOT NULL DEFAULT 0);
INSERT INTO login_failures_new (id, key, at, pending) SELECT rowid, key, at, pending FROM login_failures;
DROP TABLE login_failures;
ALTER TABLE login_failures_new RENAME TO login_failures;
CREATE INDEX login_failures_key ON login_failures(key, at);
CREATE INDEX login_failures_at ON login_failures(at);
