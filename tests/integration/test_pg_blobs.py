"""
test_pg_blobs.py — where lifeboatd keeps message bodies on PostgreSQL (issue 12).

On a throw-away PostgreSQL server (tests/pg/pgserver):
- without blob_dir, a message accepted by SMTP has its body in the database (a blob_data row,
  the zstd frame of the very bytes later delivered) and nothing in data_dir/blobs; delivery
  to an aiosmtpd destination carries the same bytes; once delivered, the GC removes row and
  body; start-up recovery removes a body that no row names and keeps the queued ones;
- with blob_dir, two nodes share one directory: the same body sent to both is one file
  there (two references), each node has its own tmp/ in it, the database holds no bodies,
  and the GC removes the file once both copies are delivered.

Skipped, saying so, only when the PostgreSQL binaries are not installed.
"""
import hashlib
import os
import shutil
import subprocess

import pytest

import lbtest

HERE = os.path.dirname(os.path.abspath(__file__))
PGSERVER = os.path.join(HERE, "..", "pg", "pgserver")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
RCPT = "bob@acme.test"
SENDER = "alice@example.org"


def pgserver(*args):
    out = subprocess.run([PGSERVER, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"pgserver {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout.strip()


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """A PostgreSQL server for this module: (its pgserver directory, a temp directory)."""
    for b in ("initdb", "pg_ctl", "postgres", "psql"):
        if not os.access(os.path.join(PGBIN, b), os.X_OK):
            pytest.skip(f"{PGBIN}/{b} is not installed (apt-get install postgresql-15): "
                        "the tests of message bodies on PostgreSQL need it")
    top = tmp_path_factory.mktemp("pg_blobs")
    os.chmod(top, 0o755)
    pgdir = os.path.join(top, "pg")
    os.makedirs(pgdir)
    os.chmod(pgdir, 0o755)
    pgserver("start", "--fast", pgdir)
    try:
        yield pgdir, str(top)
    finally:
        pgserver("stop", "--rm", pgdir)
        shutil.rmtree(pgdir, ignore_errors=True)


def sql(pgdir, db, query):
    """The rows of query, as lists of strings."""
    out = pgserver("psql", pgdir, "-d", db, "-At", "-F", "\t", "-c", query)
    return [line.split("\t") for line in out.splitlines() if line]


def blob_files(directory):
    """The body files in a blobs directory: DIR/ab/abcdef... (not tmp/)."""
    found = []
    for fan in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        sub = os.path.join(directory, fan)
        if len(fan) == 2 and os.path.isdir(sub):
            found += [os.path.join(sub, n) for n in sorted(os.listdir(sub)) if len(n) == 64]
    return found


def unzstd(frame):
    if not shutil.which("zstd"):
        pytest.skip("the zstd program is not installed (apt-get install zstd): cannot read a stored body")
    out = subprocess.run(["zstd", "-d", "-q", "-c"], input=frame, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def send(lb, msgid, body=None):
    msg = lbtest.make_message(msgid, sender=SENDER, to=RCPT, body=body)
    qid = lbtest.submit(lb.smtp_port, SENDER, [RCPT], msg)
    return msg, qid


# --------------------------------------------------------------------- bodies in the database


@pytest.fixture(scope="module")
def db_node(pg):
    pgdir, top = pg
    url = pgserver("createdb", pgdir, "lb_blobs").splitlines()[-1]
    sink = lbtest.Sink("acme")
    lb = lbtest.Lifeboat(os.path.join(top, "db"), {"store": url, "node_name": "n1"})
    try:
        lb.add_domain("acme.test", "acme", sink.route)
        lb.start()
        yield lb, sink
    finally:
        try:
            problems = lbtest.finish([lb])
            assert not problems, "\n\n".join(problems)
        finally:
            sink.close()


def test_body_in_database_delivered_then_collected(pg, db_node):
    pgdir, _ = pg
    lb, sink = db_node
    sink.set_mode("data4xx")  # kept in the queue while we look
    msgid = lbtest.new_msgid("pgblob")
    msg, qid = send(lb, msgid)

    rows = sql(pgdir, "lb_blobs", "SELECT b.id, b.refs, b.size, b.stored_size, octet_length(d.data) "
                                  "FROM blobs b JOIN blob_data d ON d.id = b.id")
    assert len(rows) == 1, rows
    blob_id, refs, size, stored, octets = rows[0]
    assert refs == "1" and stored == octets
    assert blob_files(os.path.join(lb.data_dir, "blobs")) == [], "a body file in data_dir/blobs"
    frame = bytes.fromhex(sql(pgdir, "lb_blobs", f"SELECT encode(data, 'hex') FROM blob_data "
                                                 f"WHERE id = '{blob_id}'")[0][0])
    body = unzstd(frame)
    assert hashlib.sha256(body).hexdigest() == blob_id
    assert len(body) == int(size)

    # lifeboatctl reads it too (its own blob store, over its own connection).
    shown = lb.ctl_json("queue", "show", qid)
    assert "integration test" in str(shown.get("headers")), shown

    sink.set_mode("accept")
    got = sink.wait_messages(1, timeout=30)
    assert len(sink.with_message_id(msgid)) == 1
    lbtest.assert_relayed_unchanged(got[0].data, msg)
    _, rest = lbtest.strip_added_received(got[0].data)
    assert rest == body, "the delivered bytes are not the stored body"
    lb.wait_queue_empty()

    # Nothing references it any more: the writer's GC removes row and body together.
    lbtest.wait_for(lambda: sql(pgdir, "lb_blobs", "SELECT (SELECT count(*) FROM blobs), "
                                                   "(SELECT count(*) FROM blob_data)") == [["0", "0"]],
                    timeout=30, interval=0.5, what="the GC to remove the body")


def test_recovery_removes_orphan_bodies_keeps_queued(pg, db_node):
    pgdir, _ = pg
    lb, sink = db_node
    sink.set_mode("data4xx")
    msgid = lbtest.new_msgid("pgkept")
    msg, _ = send(lb, msgid, body="kept across a restart\r\n")
    orphan = "ab" * 32
    # What a crash between a body's write and its rows' commit would leave (were they
    # not one transaction): a body that no row names.
    sql(pgdir, "lb_blobs", f"INSERT INTO blob_data (id, data) VALUES ('{orphan}', '\\x00')")
    lb.stop()
    lb.start()
    assert "removed 1 message body" in lb.log(), lb.log()[-3000:]
    left = sql(pgdir, "lb_blobs", "SELECT d.id FROM blob_data d JOIN blobs b ON b.id = d.id")
    assert len(left) == 1 and left[0][0] != orphan
    assert sql(pgdir, "lb_blobs", f"SELECT count(*) FROM blob_data WHERE id = '{orphan}'") == [["0"]]
    sink.set_mode("accept")
    lbtest.wait_for(lambda: sink.with_message_id(msgid), timeout=30, what="the queued message after the restart")
    lbtest.assert_relayed_unchanged(sink.with_message_id(msgid)[0].data, msg)
    lb.wait_queue_empty()


# --------------------------------------------------------------------- a blob_dir two nodes share


@pytest.fixture(scope="module")
def shared_nodes(pg):
    pgdir, top = pg
    url = pgserver("createdb", pgdir, "lb_blobs_shared").splitlines()[-1]
    shared = os.path.join(top, "shared-blobs")
    sink = lbtest.Sink("acme-shared")
    nodes = [lbtest.Lifeboat(os.path.join(top, f"s{i}"), {"store": url, "node_name": f"s{i}", "blob_dir": shared})
             for i in (1, 2)]
    try:
        nodes[0].add_domain("acme.test", "acme", sink.route)
        for n in nodes:
            n.start()
        yield nodes, sink, shared
    finally:
        try:
            problems = lbtest.finish(nodes)
            assert not problems, "\n\n".join(problems)
        finally:
            sink.close()


def test_shared_blob_dir_one_file_for_two_nodes(pg, shared_nodes):
    pgdir, _ = pg
    nodes, sink, shared = shared_nodes
    sink.set_mode("data4xx")
    msgid = lbtest.new_msgid("shared")  # the same bytes through both nodes: one body
    msg = lbtest.make_message(msgid, sender=SENDER, to=RCPT)
    for n in nodes:
        lbtest.submit(n.smtp_port, SENDER, [RCPT], msg)

    files = blob_files(shared)
    assert len(files) == 1, files
    blob_id = os.path.basename(files[0])
    assert os.path.basename(os.path.dirname(files[0])) == blob_id[:2]
    assert sql(pgdir, "lb_blobs_shared", "SELECT id, refs FROM blobs") == [[blob_id, "2"]]
    assert sql(pgdir, "lb_blobs_shared", "SELECT count(*) FROM blob_data") == [["0"]]
    for n in nodes:
        assert blob_files(os.path.join(n.data_dir, "blobs")) == []
        assert os.path.isdir(os.path.join(shared, "tmp", os.path.basename(n.dir)))
    assert hashlib.sha256(unzstd(open(files[0], "rb").read())).hexdigest() == blob_id

    sink.set_mode("accept")
    lbtest.wait_for(lambda: len(sink.with_message_id(msgid)) == 2, timeout=30, what="both copies delivered")
    for d in sink.with_message_id(msgid):
        lbtest.assert_relayed_unchanged(d.data, msg)
    for n in nodes:
        n.wait_queue_empty()
    lbtest.wait_for(lambda: not blob_files(shared), timeout=30, interval=0.5, what="the GC to remove the file")
    assert sql(pgdir, "lb_blobs_shared", "SELECT count(*) FROM blobs") == [["0"]]
