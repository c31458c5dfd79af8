#!/usr/bin/python3
"""tests/pg/schema_check.py — does src/store/store_schema_pg.c make what SQLite's
migrations (src/store/store_schema.c) make?

Makes a SQLite database the real way (lifeboatctl on a fresh data_dir runs every
migration), makes the PostgreSQL schema the same way in two fresh databases of a
server started by tests/pg/pgserver (lifeboatctl with store = the database's URL:
the baseline script of store_schema_pg.c, whose text pg_schema_dump prints for a
check of its own), and compares, table by table: the columns, their types (INTEGER ->
bigint, TEXT -> text or, for COLLATE NOCASE, citext, BLOB -> bytea), NOT NULL,
defaults, primary keys, unique constraints, foreign keys with their ON DELETE, the
indexes (columns, order, uniqueness, partial or not), and the schema version. The
FTS5 table archive_fts is PostgreSQL's (id, tsv) instead, whose helper functions
get a short functional check. ctest runs it as pg_schema_matches (LB_TEST_PG=ON).

--sqlite-extra FILE applies FILE (tests/pg/sqlite_migration_9.sql) to the SQLite
database when it is older than the PostgreSQL schema: a check of a SQLite
migration that store_schema.c does not have yet.
"""
import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

PSQL = "/usr/lib/postgresql/15/bin/psql"
HERE = os.path.dirname(os.path.abspath(__file__))

# SQLite's FTS5 table and its shadow tables; PostgreSQL's archive_fts is checked apart.
FTS = "archive_fts"
PG_FTS_COLUMNS = {"id": ("bigint", True), "tsv": ("tsvector", True)}

problems = []


def problem(msg):
    problems.append(msg)


# ---------------------------------------------------------------- PostgreSQL


def psql(url, sql, rows=True):
    """Runs sql (one query string, one PQexec) on url; rows as lists of fields."""
    out = subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\x1f", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"psql: {out.stderr.strip()}")
    if not rows:
        return []
    return [line.split("\x1f") for line in out.stdout.splitlines()]


def db_url(server, name):
    return re.sub(r"/[^/?]*(\?.*)?$", lambda m: "/" + name + (m.group(1) or ""), server)


def pg_schema(url):
    s = {"tables": {}, "pk": {}, "unique": set(), "fks": set(), "indexes": {}}
    for t, c, nullable, default, dtype, udt in psql(
        url,
        "SELECT table_name, column_name, is_nullable, coalesce(column_default, ''), data_type, udt_name "
        "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    ):
        typ = udt if dtype == "USER-DEFINED" else dtype
        s["tables"].setdefault(t, {})[c] = (typ, nullable == "NO", norm_default(default))
    # Primary keys, unique constraints and foreign keys, columns in key order.
    for t, kind, cols, reft, refcols, ondel in psql(
        url,
        "SELECT c.conrelid::regclass::text, c.contype,"
        " (SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i)"
        "  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),"
        " coalesce(c.confrelid::regclass::text, ''),"
        " coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i)"
        "  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n), ''),"
        " c.confdeltype::text"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f')",
    ):
        if kind == "p":
            s["pk"][t] = cols
        elif kind == "u":
            s["unique"].add((t, cols))
        else:
            ondel = {"a": "NO ACTION", "c": "CASCADE", "n": "SET NULL", "r": "RESTRICT", "d": "SET DEFAULT"}[ondel]
            s["fks"].add((t, cols, reft, refcols, ondel))
    constraint_indexes = {
        r[0]
        for r in psql(
            url,
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = 'public' AND c.contype IN ('p', 'u')",
        )
    }
    for name, t, unique, cols, where in psql(
        url,
        "SELECT i.relname, t.relname, x.indisunique::text,"
        " (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, false)"
        "   || CASE WHEN x.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END, ',' ORDER BY k)"
        "  FROM generate_series(1, x.indnkeyatts) k),"
        " coalesce(pg_get_expr(x.indpred, x.indrelid), '')"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'",
    ):
        if name in constraint_indexes:
            continue
        s["indexes"][name] = (t, unique == "true", cols, norm_where(where))
    s["version"] = int(psql(url, "SELECT max(version) FROM schema_version")[0][0])
    return s


def norm_where(w):
    """A partial index's predicate, spelled alike: (refs = 0) -> refs = 0."""
    return re.sub(r"\s+", " ", w.replace("(", "").replace(")", "")).strip().lower()


def norm_default(d):
    """'' for none; casts and parentheses dropped: ''::citext -> '', (1) -> 1."""
    d = d.strip()
    d = re.sub(r"::[a-z ]+$", "", d)
    while d.startswith("(") and d.endswith(")"):
        d = d[1:-1].strip()
    return d


# -------------------------------------------------------------------- SQLite


def sqlite_db(lifeboatctl, work, extra, version_wanted):
    data = os.path.join(work, "data")
    conf = os.path.join(work, "lifeboat.conf")
    with open(conf, "w") as f:
        f.write(f"data_dir = {data}\n")
    out = subprocess.run([lifeboatctl, "-c", conf, "customer", "list"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"lifeboatctl: {out.stdout}{out.stderr}")
    path = os.path.join(data, "lifeboat.db")
    db = sqlite3.connect(path)
    version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if extra and version < version_wanted:
        with open(extra) as f:
            db.executescript("BEGIN;" + f.read() + f"; INSERT INTO schema_version VALUES ({version_wanted}); COMMIT;")
        print(f"SQLite: applied {os.path.basename(extra)} to version {version} (now {version_wanted})")
    return db


def sqlite_schema(db):
    s = {"tables": {}, "pk": {}, "unique": set(), "fks": set(), "indexes": {}}
    tables = [
        (n, sql)
        for n, sql in db.execute("SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        if not n.startswith("sqlite_") and not n.startswith(FTS + "_")
    ]
    for t, sql in tables:
        cols = {}
        pk = []
        for _, c, typ, notnull, default, pkpos in db.execute(f"PRAGMA table_info({t})"):
            nocase = re.search(r"\b%s\s+TEXT\b[^,]*?COLLATE\s+NOCASE" % re.escape(c), sql, re.I)
            typ = {"INTEGER": "bigint", "TEXT": "citext" if nocase else "text", "BLOB": "bytea", "": ""}[typ.upper()]
            # An INTEGER PRIMARY KEY is the rowid: never NULL.
            cols[c] = (typ, bool(notnull) or (pkpos > 0 and (typ == "bigint" or "WITHOUT ROWID" in sql)),
                       norm_default(default or ""))
            if pkpos:
                pk.append((pkpos, c))
        s["tables"][t] = cols
        if pk:
            s["pk"][t] = ",".join(c for _, c in sorted(pk))
        for _, seq, reft, frm, to, _, ondel, _ in db.execute(f"PRAGMA foreign_key_list({t})"):
            s["fks"].add((t, frm, reft, to or "id", ondel))
        for _, name, unique, origin, partial in db.execute(f"PRAGMA index_list({t})"):
            cols_ = [
                (r[2] or "", r[3])
                for r in db.execute(f"PRAGMA index_xinfo({name})")
                if r[5]  # key columns only
            ]
            key = ",".join(c + (" DESC" if desc else "") for c, desc in cols_)
            if origin == "u":
                s["unique"].add((t, key))
            elif origin == "c":
                sql_ = db.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (name,)).fetchone()[0]
                where = re.search(r"\bWHERE\b(.*)$", sql_, re.I | re.S) if partial else None
                s["indexes"][name] = (t, bool(unique), key, norm_where(where.group(1)) if where else "")
    # A foreign key spanning several columns would be one row per column: none here.
    s["version"] = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return s


# ------------------------------------------------------------------- compare


def compare(sq, pg, label):
    st, pt = set(sq["tables"]), set(pg["tables"])
    for t in sorted(st - pt):
        problem(f"{label}: table {t} of SQLite is missing")
    for t in sorted(pt - st):
        problem(f"{label}: table {t} is not in SQLite's schema")
    for t in sorted(st & pt):
        if t == FTS:
            if {c: v[:2] for c, v in pg["tables"][t].items()} != PG_FTS_COLUMNS:
                problem(f"{label}: archive_fts has {pg['tables'][t]}, wanted id BIGINT and tsv tsvector NOT NULL")
            continue
        sc, pc = sq["tables"][t], pg["tables"][t]
        for c in sc:
            if c not in pc:
                problem(f"{label}: column {t}.{c} of SQLite is missing")
            elif sc[c] != pc[c]:
                problem(f"{label}: column {t}.{c}: SQLite (type, not null, default) {sc[c]}, PostgreSQL {pc[c]}")
        for c in pc:
            if c not in sc:
                problem(f"{label}: column {t}.{c} is not in SQLite's schema")
        if sq["pk"].get(t) != pg["pk"].get(t):
            problem(f"{label}: primary key of {t}: SQLite {sq['pk'].get(t)}, PostgreSQL {pg['pk'].get(t)}")
    fts_fk = (FTS, "id", "archive", "id", "CASCADE")
    for what in ("unique", "fks"):
        pgset = pg[what] - {fts_fk}
        for x in sorted(sq[what] - pgset):
            problem(f"{label}: {what} {x} of SQLite is missing")
        for x in sorted(pgset - sq[what]):
            problem(f"{label}: {what} {x} is not in SQLite's schema")
    if fts_fk not in pg["fks"]:
        problem(f"{label}: archive_fts.id does not reference archive(id) ON DELETE CASCADE")
    pgidx = dict(pg["indexes"])
    gin = pgidx.pop("archive_fts_tsv", None)
    if not gin or gin[0] != FTS:
        problem(f"{label}: no GIN index archive_fts_tsv on archive_fts")
    for name in sorted(set(sq["indexes"]) | set(pgidx)):
        a, b = sq["indexes"].get(name), pgidx.get(name)
        if a != b:
            problem(f"{label}: index {name}: SQLite (table, unique, columns, where) {a}, PostgreSQL {b}")
    if sq["version"] != pg["version"]:
        problem(
            f"{label}: schema version: SQLite {sq['version']}, PostgreSQL {pg['version']}"
            + (" (SQLite's migration 9 not in store_schema.c yet: --sqlite-extra "
               "tests/pg/sqlite_migration_9.sql checks it)" if sq["version"] < pg["version"] else "")
        )


def check_fts(url):
    """The helpers' semantics as store_schema_pg.c documents them."""
    psql(
        url,
        "INSERT INTO customers (name, created) VALUES ('Acme', 1);"
        "INSERT INTO blobs VALUES ('b', 1, 1, 2);"
        "INSERT INTO archive (customer_id, msg_id, blob, direction, sender, received, size, date)"
        " VALUES (1, 'm1', 'b', 0, 's', 1, 1, 1), (1, 'm2', 'b', 0, 's', 1, 1, 1);"
        "INSERT INTO archive_fts VALUES (1, archive_fts_vector('Quarterly Ärger report',"
        " 'Alice <alice@example.org>', 'bob@acme.test', 'Naïve ΩMEGA body, O''Brien''s', 'report.pdf')),"
        " (2, archive_fts_vector('hello', 'bob@acme.test', 'alice@example.org', '', NULL));",
        rows=False,
    )
    cases = [
        ("archive_fts_phrase('alice@example.org', 'B')", "1"),  # From: only
        ("archive_fts_phrase('ALICE@Example.org', 'C')", "2"),  # To: only
        ("archive_fts_phrase('alice@example.org', '')", "1,2"),
        ("archive_fts_phrase('arger', '')", "1"),  # diacritics and case
        ("archive_fts_phrase('ωmega', '') && archive_fts_phrase('naive', '')", "1"),
        ("archive_fts_phrase('o''brien''s', '')", "1"),
        ("archive_fts_phrase('report pdf', '')", "1"),  # attachments
        ("archive_fts_phrase('example alice', '')", ""),  # a phrase keeps its order
    ]
    for q, want in cases:
        got = psql(url, f"SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM archive_fts WHERE tsv @@ ({q})")
        if got[0][0] != want:
            problem(f"full text: {q} found [{got[0][0]}], wanted [{want}]")
    psql(url, "DELETE FROM archive WHERE id = 2", rows=False)
    if psql(url, "SELECT count(*) FROM archive_fts")[0][0] != "1":
        problem("full text: deleting an archive entry did not delete its archive_fts row")


def make_pg_db(lifeboatctl, work, url, tag):
    """Makes the PostgreSQL schema the real way: lifeboatctl opens the store on
    an empty database, which runs the baseline script and records its version."""
    conf = os.path.join(work, f"{tag}.conf")
    with open(conf, "w") as f:
        f.write(f"data_dir = {os.path.join(work, tag)}\nstore = {url}\n")
    out = subprocess.run([lifeboatctl, "-c", conf, "customer", "list"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"lifeboatctl on PostgreSQL: {out.stdout}{out.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pgserver-dir", required=True, help="the directory of a server that tests/pg/pgserver started")
    ap.add_argument("--dump", required=True, help="pg_schema_dump (prints store_pg_schema_sql())")
    ap.add_argument("--lifeboatctl", required=True)
    ap.add_argument("--sqlite-extra", help="SQL to bring the SQLite database to the PostgreSQL version")
    ap.add_argument("--keep", action="store_true", help="keep the databases and the temporary directory")
    args = ap.parse_args()

    with open(os.path.join(args.pgserver_dir, "url")) as f:
        server = f.read().strip()
    schema = subprocess.run([args.dump], capture_output=True, text=True, check=True).stdout
    if "?" in schema:
        problem("the PostgreSQL script contains '?' (a placeholder rewriter would touch it)")

    work = tempfile.mkdtemp(prefix="lb_schema_check_")
    names = [f"lbs_{os.getpid()}_{i}" for i in (1, 2)]
    try:
        for n in names:
            psql(server, f"DROP DATABASE IF EXISTS {n}", rows=False)
            psql(server, f"CREATE DATABASE {n}", rows=False)
            make_pg_db(args.lifeboatctl, work, db_url(server, n), n)
        pg1, pg2 = (pg_schema(db_url(server, n)) for n in names)
        if pg1 != pg2:
            problem("the script made two different schemas in two fresh databases")
        sdb = sqlite_db(args.lifeboatctl, work, args.sqlite_extra, pg1["version"])
        sq = sqlite_schema(sdb)
        sdb.close()
        compare(sq, pg1, "PostgreSQL")
        check_fts(db_url(server, names[0]))
        ntables = len(sq["tables"])
        ncols = sum(len(c) for c in sq["tables"].values())
    finally:
        if not args.keep:
            for n in names:
                try:
                    psql(server, f"DROP DATABASE IF EXISTS {n} WITH (FORCE)", rows=False)
                except RuntimeError as e:
                    print(e, file=sys.stderr)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}, databases {', '.join(names)}")
    for p in problems:
        print("MISMATCH", p)
    if problems:
        print(f"schema_check: {len(problems)} mismatches")
        return 1
    print(
        f"schema version {pg1['version']}: {ntables} tables, {ncols} columns, {len(sq['indexes'])} indexes, "
        f"{len(sq['fks'])} foreign keys match"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
