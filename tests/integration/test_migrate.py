"""
`lifeboatctl migrate --to postgresql://...` (issue 12 item 4, SPEC.md "Administration"): a
single-node SQLite installation, made the real way (lifeboatd, SMTP, lifeboatctl, the webmail),
copied into PostgreSQL on a throw-away server (tests/pg/pgserver):

  the counts match on every table, the bodies are the files' bytes, and lifeboatd on the copy
      serves the same mailbox message to the same user (logged in again, and still logged in
      with the session of the old daemon), the same archive search results and the same queue:
      test_migrate_then_run_on_postgresql
  interrupted (stopped after a few batches, then SIGKILLed mid-copy), run again: it goes on, the
      counts match; a third run has nothing to do: test_interrupted_migration_resumes
  refused: a target with data of its own (left untouched), a target holding another
      installation's copy, a running daemon (and a daemon while a copy holds the lock), a config
      already on PostgreSQL, bad usage: test_refusals
  with blob_dir set the bodies stay files, and the check wants them all there:
      test_blob_dir_keeps_bodies_as_files

The populated installation is made once per module and copied (data_dir and all) for each test,
so that each test migrates an installation of its own.
"""
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess

import pytest

import lbtest
from lbtest import make_message, new_msgid, submit, wait_for
from test_http_api import Client

PGSERVER = os.path.join(os.path.dirname(__file__), "..", "pg", "pgserver")
PASSWORD = "correct horse 9 battery"
# The installation to move is a SQLite one, also in the suite's PostgreSQL pass.
CONFIG = {"dr_probe_interval": "1s", "delivery_timeout": "3s", "store": "sqlite"}


# --------------------------------------------------------------------------- PostgreSQL


class PgServer:
    """A throw-away PostgreSQL server (tests/pg/pgserver) with a database per test."""

    def __init__(self, dirpath):
        self.dir = str(dirpath)
        cp = subprocess.run([PGSERVER, "start", "--fast", self.dir], capture_output=True, text=True, timeout=120)
        assert cp.returncode == 0, f"pgserver start failed:\n{cp.stdout}\n{cp.stderr}"

    def createdb(self, name):
        cp = subprocess.run([PGSERVER, "createdb", self.dir, name], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stderr
        return cp.stdout.strip().splitlines()[-1]

    def psql(self, db, sql):
        """Runs sql in database db; the rows, fields separated by '|'."""
        cp = subprocess.run([PGSERVER, "psql", self.dir, "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                            capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, f"{sql}: {cp.stderr}"
        return [ln for ln in cp.stdout.splitlines() if ln]

    def stop(self):
        subprocess.run([PGSERVER, "stop", "--rm", self.dir], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    server = PgServer(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


# --------------------------------------------------------------------------- the installation


def archive_all(lb):
    return sorted(lb.ctl_json("archive", "search", "--limit", "0"), key=lambda e: e["id"])


def archive_find(lb, *words):
    return sorted(e["id"] for e in lb.ctl_json("archive", "search", *words, "--limit", "0"))


class Installation:
    """A SQLite installation with a bit of everything, made by a stopped lifeboatd; and what
    it showed before it stopped, to compare a copy with."""

    def __init__(self, workdir, sink):
        lb = lbtest.Lifeboat(workdir, CONFIG)
        self.lb = lb
        lb.start()
        try:
            self._populate(lb, sink)
        finally:
            if lb.running():
                lb.stop()
        lb.check_sanitizers()

    def _populate(self, lb, sink):
        dead = f"127.0.0.1:{lbtest.free_port()}"
        lb.add_domain("acme.test", "acme", sink.route)
        lb.add_domain("globex.test", "globex", dead)
        lb.add_user("bob@acme.test", name="Bob")
        lb.add_user("carol@acme.test")
        lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
        lb.add_user("eve@globex.test")
        lb.ctl_ok("policy", "set", "acme", "--min-length", "10", "--digit")
        lb.enable_continuity("acme.test", "acme")  # a subscription: the archive begins

        # Delivered and archived: a few dozen, so that small batches make many of them.
        for i in range(24):
            rcpt = ("bob@acme.test", "carol@acme.test", "sales@acme.test")[i % 3]
            submit(lb.smtp_port, "alice@example.org", [rcpt],
                   make_message(new_msgid("mig"), to=rcpt, subject=f"Quarterly kumquat {i}"))
        sink.wait_messages(24)

        # The destination answers 4xx: an outage, and the message diverted into bob's mailbox.
        sink.set_mode("rcpt4xx")
        self.diverted_qid = submit(lb.smtp_port, "ceo@example.org", ["bob@acme.test"],
                                   make_message(new_msgid("mig"), sender="ceo@example.org",
                                                subject="Outage zebrafish report"))
        wait_for(lambda: [e for e in lb.mailbox("bob@acme.test") if e["msg_id"] == self.diverted_qid],
                 timeout=30, what="the diverted message in bob's mailbox")
        lb.wait_continuity_state("acme.test", "outage")

        # Queued: globex.test's server is a closed port and it has no continuity.
        self.queued_qid = submit(lb.smtp_port, "alice@example.org", ["eve@globex.test"],
                                 make_message(new_msgid("mig"), to="eve@globex.test", subject="Waiting"))
        assert [m for m in lb.queue() if m["id"] == self.queued_qid]

        lb.ctl_ok("archive", "hold", "--customer", "acme")  # a legal hold and an audit entry
        wait_for(lambda: all(e["indexed"] for e in archive_all(lb)), timeout=60, interval=0.3,
                 what="the archive indexer")

        # The webmail as bob sees it, and a session that stays open.
        self.client = Client(lb.http_port)
        assert self.client.login("bob@acme.test").status == 200
        self.inbox = self.client.request("GET", "/api/v1/messages?folder=INBOX").json
        (self.entry,) = [m for m in self.inbox["messages"] if m["subject"] == "Outage zebrafish report"]
        self.raw = self.client.request("GET", f"/api/v1/messages/{self.entry['id']}/raw").body
        self.api_archive = self.client.request("GET", "/api/v1/archive?q=kumquat&limit=200").json
        self.archive = archive_all(lb)
        self.kumquat = archive_find(lb, "kumquat")
        self.zebrafish = archive_find(lb, "zebrafish")
        self.events = lb.continuity_events("acme.test")
        assert len(self.archive) >= 25 and len(self.kumquat) == 24 and len(self.zebrafish) == 1
        assert self.inbox["total"] == 1

    def clone(self, workdir, **overrides):
        """A Lifeboat (not started) on a copy of this installation's data_dir."""
        lb = lbtest.Lifeboat(workdir, {**CONFIG, **overrides})
        shutil.copytree(self.lb.data_dir, lb.data_dir)
        lock = os.path.join(lb.data_dir, "lifeboatd.lock")
        if os.path.exists(lock):
            os.unlink(lock)
        return lb


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    sink = lbtest.Sink("acme")
    try:
        yield Installation(tmp_path_factory.mktemp("installation"), sink)
    finally:
        sink.close()


@pytest.fixture
def clones(tmp_path):
    """Factory for clones of the installation; each is stopped and checked at teardown."""
    made = []

    def factory(inst, name="clone", **overrides):
        lb = inst.clone(tmp_path / name, **overrides)
        made.append(lb)
        return lb

    yield factory
    problems = lbtest.finish(made)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def migrate(lb, url, *args, env=None):
    """lifeboatctl migrate --to url ARGS on lb's config; the CompletedProcess."""
    e = lbtest.sanitizer_env()
    e.update(env or {})
    cp = subprocess.run([lbtest.LIFEBOATCTL, "-c", lb.conf, "migrate", "--to", url, *args], capture_output=True,
                        text=True, timeout=300, env=e)
    found = lbtest.sanitizer_findings(cp.stderr)
    assert not found, f"sanitizer report from lifeboatctl migrate:\n{cp.stderr[-6000:]}"
    return cp


def counts_of(cp):
    """The count check of a migrate --json run: {table: (source, target)}."""
    out = json.loads(cp.stdout)
    return {r["table"]: (r["source"], r["target"]) for r in out["counts"]}


def text_counts(stdout):
    """The count check as migrate prints it: {table: (sqlite, postgresql)}."""
    lines = stdout.split("count check", 1)[1].splitlines()[1:]
    rows = {}
    for ln in lines:
        m = re.match(r"^(\S+(?: files)?)\s+(\d+)\s+(\d+)", ln)
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return rows


# --------------------------------------------------------------------------- tests


def test_migrate_then_run_on_postgresql(pg, installation, clones):
    inst = installation
    lb = clones(inst)
    url = pg.createdb("migrate_main")
    db = "migrate_main"

    cp = migrate(lb, url, "--json")
    assert cp.returncode == 0, f"migrate failed:\n{cp.stdout}\n{cp.stderr}"
    out = json.loads(cp.stdout)
    assert out["state"] == "copied" and out["complete"] is True
    counts = counts_of(cp)
    assert all(s == t for s, t in counts.values()), counts
    expect_some = ["customers", "domains", "users", "aliases", "password_policy", "messages", "recipients",
                   "mailbox", "domain_events", "archive", "archive_addrs", "archive_fts", "archive_holds", "audit",
                   "http_sessions", "blobs", "blob_data", "stats_minute"]
    for table in expect_some:
        assert counts[table][0] > 0, f"the installation has no {table} rows: the test does not show their copy"
    assert counts["customers"] == (2, 2) and counts["users"] == (3, 3) and counts["aliases"] == (1, 1)
    assert counts["archive_fts"][0] == counts["archive"][0] == len(inst.archive)
    assert counts["blob_data"][0] == counts["blobs"][0]
    assert "schema_version" not in counts and "nodes" not in counts
    assert re.search(r"^  customers +2 of 2 rows", cp.stderr, re.M), cp.stderr  # progress: stderr with --json

    # The bodies: each blob_data row holds its file's bytes.
    for row in pg.psql(db, "SELECT id, encode(sha256(data), 'hex') FROM blob_data"):
        blob_id, digest = row.split("|")
        with open(os.path.join(lb.data_dir, "blobs", blob_id[:2], blob_id), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, blob_id
    # New rows get ids past the copied ones.
    top = int(pg.psql(db, "SELECT max(id) FROM archive")[0])
    assert int(pg.psql(db, "SELECT nextval(pg_get_serial_sequence('archive', 'id'))")[0]) > top

    # Run again: nothing to do.
    again = migrate(lb, url)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr

    # lifeboatd on the copy: the same config with store = the URL (same data_dir).
    lb.settings["store"] = url
    lb.write_config()
    lb.start()

    # The session the old daemon opened is still good; a new login works too.
    old = Client(lb.http_port)
    old.cookie, old.csrf = inst.client.cookie, inst.client.csrf
    assert old.request("GET", "/api/v1/me").status == 200
    c = Client(lb.http_port)
    assert c.login("bob@acme.test").status == 200
    assert c.login("sales@acme.test").status == 200  # the alias
    inbox = c.request("GET", "/api/v1/messages?folder=INBOX").json
    assert inbox == inst.inbox
    one = c.request("GET", f"/api/v1/messages/{inst.entry['id']}")
    assert one.status == 200 and one.json["subject"] == "Outage zebrafish report"
    assert c.request("GET", f"/api/v1/messages/{inst.entry['id']}/raw").body == inst.raw

    # The archive finds the same messages (lifeboatctl and the webmail's API).
    assert archive_all(lb) == inst.archive
    assert archive_find(lb, "kumquat") == inst.kumquat
    assert archive_find(lb, "zebrafish") == inst.zebrafish
    assert archive_find(lb, "--from", "ceo@example.org") == inst.zebrafish
    api = c.request("GET", "/api/v1/archive?q=kumquat&limit=200").json
    assert sorted(m["id"] for m in api["messages"]) == sorted(m["id"] for m in inst.api_archive["messages"])
    assert api["total"] == inst.api_archive["total"] == 16  # bob's and his alias's

    # The rest of the state: the queue, the domain's outage and its events, holds, users.
    assert [m for m in lb.queue() if m["id"] == inst.queued_qid]
    assert lb.continuity_status("acme.test")["state"] == "outage"
    events = lb.continuity_events("acme.test")
    assert inst.events and all(e in events for e in inst.events), (inst.events, events)
    assert [h["customer"] for h in lb.ctl_json("archive", "holds")] == ["acme"]
    assert sorted(u["email"] for u in lb.ctl_json("user", "list")) == [
        "bob@acme.test", "carol@acme.test", "eve@globex.test"]
    lb.ctl_ok("customer", "add", "initech")  # a new row: the sequences moved past the copied ids


def test_interrupted_migration_resumes(pg, installation, clones):
    lb = clones(installation)
    url = pg.createdb("migrate_resume")
    db = "migrate_resume"

    # Stopped after 7 batches of 2 rows: some tables copied, one half-way.
    cp = migrate(lb, url, "--batch", "2", env={"LIFEBOAT_MIGRATE_STOP_AFTER": "7"})
    assert cp.returncode == 1 and "stopped after 7 batches" in cp.stderr, cp.stdout + cp.stderr
    copied = int(pg.psql(db, "SELECT sum(copied) FROM migrate_progress WHERE item <> ''")[0])
    assert 7 <= copied <= 14
    assert pg.psql(db, "SELECT count(*) FROM migrate_progress WHERE item <> '' AND done = 0 AND copied > 0") == ["1"]

    # Killed mid-copy (one row per transaction, SIGKILL once the users table is done).
    proc = subprocess.Popen([lbtest.LIFEBOATCTL, "-c", lb.conf, "migrate", "--to", url, "--batch", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lbtest.sanitizer_env())
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.split()[:1] == ["users"]:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert "resuming the copy of" in seen[0]
    assert pg.psql(db, "SELECT done FROM migrate_progress WHERE item = ''") == ["0"]
    # No node (nor lifeboatctl) starts on half an installation.
    conf = os.path.join(os.path.dirname(lb.conf), "half.conf")
    with open(conf, "w") as f:
        f.write(f"data_dir = {lb.data_dir}-half\nstore = {url}\n")
    cp = subprocess.run([lbtest.LIFEBOATCTL, "-c", conf, "customer", "list"], capture_output=True, text=True,
                        env=lbtest.sanitizer_env())
    assert cp.returncode != 0 and "migrate has not finished" in cp.stderr, cp.stdout + cp.stderr

    # Run again: it goes on and completes; the counts match.
    cp = migrate(lb, url)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "resuming the copy of" in cp.stdout and "copy complete" in cp.stdout
    rows = text_counts(cp.stdout)
    assert rows and all(s == t for s, t in rows.values()), cp.stdout
    assert rows["archive"][0] == len(installation.archive) and rows["blob_data"][0] > 0
    # Nothing copied twice: PostgreSQL's own counts are the source's.
    assert int(pg.psql(db, "SELECT count(*) FROM archive_addrs")[0]) == rows["archive_addrs"][0]

    cp = migrate(lb, url)
    assert cp.returncode == 0 and "nothing to do" in cp.stdout, cp.stdout + cp.stderr


def test_refusals(pg, installation, clones, tmp_path):
    lb = clones(installation)

    # A database with data of its own: refused, and left as it was (no lifeboat tables).
    url = pg.createdb("migrate_foreign")
    pg.psql("migrate_foreign", "CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)")
    cp = migrate(lb, url)
    assert cp.returncode == 1 and "not empty (table invoices has rows)" in cp.stderr, cp.stderr
    assert pg.psql("migrate_foreign", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == ["invoices"]

    # A copy of another installation: refused.
    url = pg.createdb("migrate_other")
    other = clones(installation, "other")
    assert migrate(other, url).returncode == 0
    cp = migrate(lb, url)
    assert cp.returncode == 1 and "holds a copy of another installation" in cp.stderr, cp.stderr

    # The daemon runs: refused, naming it.
    url = pg.createdb("migrate_running")
    lb.start()
    cp = migrate(lb, url)
    assert cp.returncode == 1 and re.search(r"lifeboatd \(pid \d+\) is running on .*: stop it first", cp.stderr), \
        cp.stderr
    lb.stop()
    assert pg.psql("migrate_running", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == ["0"]

    # And the other way round: while a copy holds the lock, the daemon does not start.
    with open(os.path.join(lb.data_dir, "lifeboatd.lock"), "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.truncate(0)
        f.write(f"{os.getpid()} migrate\n")
        f.flush()
        with pytest.raises(AssertionError, match=r"exited with 1 during start-up"):
            lb.start()
    assert re.search(rf"lifeboatctl migrate \(pid {os.getpid()}\) is copying the installation", lb.log())

    # The config already says PostgreSQL; bad usage.
    onpg = clones(installation, "onpg", store=url)
    cp = migrate(onpg, url)
    assert cp.returncode == 1 and "copies a SQLite installation" in cp.stderr, cp.stderr
    assert migrate(lb, "mysql://x").returncode == 2
    cp = lb.ctl("migrate")
    assert cp.returncode == 2 and "--to" in cp.stderr
    assert migrate(lb, url, "--batch", "0").returncode == 2

    # After all that, the right target still takes the copy.
    cp = migrate(lb, url)
    assert cp.returncode == 0 and "copy complete" in cp.stdout, cp.stdout + cp.stderr


def test_blob_dir_keeps_bodies_as_files(pg, installation, clones, tmp_path):
    """With blob_dir set, the bodies stay files there (every node mounts it): nothing goes into
    blob_data, and the count check wants every body present in blob_dir."""
    shared = tmp_path / "shared"
    lb = clones(installation, blob_dir=str(shared))
    url = pg.createdb("migrate_blob_dir")
    cp = migrate(lb, url)
    assert cp.returncode == 1 and "lacks bodies" in cp.stderr, cp.stdout + cp.stderr
    rows = text_counts(cp.stdout)
    assert rows["blob files"][0] > 0 and rows["blob files"][1] == 0
    shutil.copytree(os.path.join(lb.data_dir, "blobs"), shared)
    cp = migrate(lb, url)
    assert cp.returncode == 0 and "stay files in blob_dir" in cp.stdout, cp.stdout + cp.stderr
    rows = text_counts(cp.stdout)
    assert rows["blob files"][0] == rows["blob files"][1] == rows["blobs"][0]
    assert pg.psql("migrate_blob_dir", "SELECT count(*) FROM blob_data") == ["0"]
