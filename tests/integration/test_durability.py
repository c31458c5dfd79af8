"""
Issue 2, done-when 3 (and SPEC's SIGTERM): lifeboatd killed with SIGKILL while messages are
queued: after restart all are delivered, none twice beyond the in-flight ones. SIGTERM: exit
0, and what was queued is delivered after the restart.
"""
import collections
import errno
import os
import signal
import smtplib
import subprocess
import time

import pytest

import lbtest
from lbtest import make_message, new_msgid, wait_for


def send_many(lb, n, tag):
    sent = {}
    with smtplib.SMTP("127.0.0.1", lb.smtp_port, timeout=30) as c:
        for i in range(n):
            mid = new_msgid(f"{tag}{i}")
            msg = make_message(mid, subject=f"{tag} {i}")
            # A 250 here is lifeboat's promise: the message is on stable storage.
            assert c.sendmail("alice@example.org", ["bob@acme.test"], msg, mail_options=["BODY=8BITMIME"]) == {}
            sent[mid] = msg
    return sent


def assert_each_once(sink, sent, timeout=60):
    wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= set(sent), timeout=timeout,
             what=f"all {len(sent)} messages at the sink")
    counts = collections.Counter(lbtest.message_ids(sink.messages))
    twice = {m: c for m, c in counts.items() if c > 1}
    assert not twice, f"delivered more than once: {twice}"
    for m in sink.messages:
        lbtest.assert_relayed_unchanged(m.data, sent[m.header("Message-ID").strip()])


def test_sigkill_with_queued_mail(acme, sink):
    sink.close()  # the customer's server is down: everything stays queued
    sent = send_many(acme, 20, "kill")
    wait_for(lambda: len(acme.queue()) == 20, timeout=15, what="20 queued messages")
    acme.kill()
    acme.start()
    assert len(acme.queue()) == 20, "queued messages lost across SIGKILL"
    sink.open()
    acme.ctl_ok("queue", "flush")
    assert_each_once(sink, sent)
    acme.wait_queue_empty()
    # Let a wrong second delivery of anything show itself before counting again.
    time.sleep(1.5)
    assert_each_once(sink, sent)


def test_sigkill_during_delivery(acme, sink):
    """Killed while deliveries are in flight: every message arrives; duplicates only for
    the deliveries that were in flight at the kill (bounded by delivery_concurrency)."""
    sink.close()
    sent = send_many(acme, 30, "inflight")
    sink.handler.data_delay = 0.3
    sink.open()
    acme.ctl_ok("queue", "flush")
    wait_for(lambda: len(sink.messages) >= 3, timeout=30, what="the first deliveries")
    acme.kill()
    sink.handler.data_delay = 0.0
    acme.start()
    acme.ctl_ok("queue", "flush")
    wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= set(sent), timeout=60,
             what="all messages delivered after the restart")
    acme.wait_queue_empty()
    counts = collections.Counter(lbtest.message_ids(sink.messages))
    dups = sum(c - 1 for c in counts.values())
    assert dups <= 20, f"{dups} duplicate deliveries: more than could have been in flight"


def test_sigterm_exits_0_and_queue_survives(acme, sink):
    sink.close()
    sent = send_many(acme, 5, "term")
    wait_for(lambda: len(acme.queue()) == 5, timeout=15, what="5 queued messages")
    acme.stop()  # asserts exit code 0
    acme.start()
    sink.open()
    acme.ctl_ok("queue", "flush")
    assert_each_once(sink, sent)
    acme.wait_queue_empty()


def test_sigterm_with_a_session_open(acme, sink):
    """An idle session does not keep the daemon from stopping: exit 0 within the grace."""
    c = lbtest.RawSMTP(acme.smtp_port)
    c.ehlo()
    assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
    try:
        acme.stop(timeout=25)
    finally:
        c.close()
    acme.start()
    sent = send_many(acme, 1, "after-term")
    assert_each_once(sink, sent)


# ------------------------------------------------------------------ full disk, reload


def ehlo_size(lb):
    with lbtest.RawSMTP(lb.smtp_port) as c:
        for e in c.ehlo():
            if e.upper().startswith("SIZE "):
                return int(e.split()[1])
    return None


@pytest.mark.sqlite_only("fills data_dir's file system, where SQLite keeps rows and bodies; on PostgreSQL "
                        "both live in the database server (test_pg_blobs covers bodies there)")
def test_full_disk_gets_451_and_nothing_half_written(make_lifeboat, sink):
    """data_dir on a small tmpfs, filled up: DATA gets 451 4.3.0 (the sender will retry),
    the daemon carries on, and once there is room again mail flows; the refused message
    leaves nothing behind and is never delivered."""
    lb = make_lifeboat()
    os.makedirs(lb.data_dir)
    cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", lb.data_dir],
                        capture_output=True, text=True)
    assert cp.returncode == 0, f"cannot mount a tmpfs for the test (needs root): {cp.stderr}"
    filler = os.path.join(lb.data_dir, "filler")
    try:
        lb.start()
        lb.add_domain("acme.test", "acme", sink.route)
        first = send_many(lb, 1, "before-full")
        sink.wait_messages(1)

        with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush at close on a full disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        os.sync()

        refused_id = new_msgid("disk-full")
        with lbtest.RawSMTP(lb.smtp_port) as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
            assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            noise = os.urandom(60000).hex()  # does not compress: needs real blocks on disk
            body = make_message(refused_id, body="".join(noise[i:i + 76] + "\r\n" for i in range(0, len(noise), 76)))
            c.send(lbtest.dot_stuff(body) + b".\r\n")
            code, text = c.reply(timeout=20)
            assert code == 451 and " 4.3.0" in text, f"full disk: expected 451 4.3.0, got {text!r}"
            assert c.cmd("RSET")[0] == 250  # the session carries on

        os.unlink(filler)
        second = send_many(lb, 1, "after-full")
        wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= set(first) | set(second), timeout=30,
                 what="delivery after the disk has room again")
        lb.wait_queue_empty()
        assert refused_id not in lbtest.message_ids(sink.messages)
        tmpdir = os.path.join(lb.data_dir, "tmp")
        leftovers = os.listdir(tmpdir) if os.path.isdir(tmpdir) else []
        assert leftovers == [], f"half-written files left in {tmpdir}: {leftovers}"
        lb.stop()
    finally:
        if lb.running():
            lb.kill()
        subprocess.run(["umount", "-l", lb.data_dir], capture_output=True)


def test_sighup_reloads_config(lifeboat):
    lb = lifeboat
    assert ehlo_size(lb) == 10 * 1024 * 1024
    lb.settings["max_message_size"] = "1M"
    lb.write_config()
    lb.signal(signal.SIGHUP)
    wait_for(lambda: ehlo_size(lb) == 1024 * 1024, timeout=10, what="the new SIZE after SIGHUP")

    # A bad file is refused, the running configuration kept, the line named in the log.
    with open(lb.conf, "a") as f:
        f.write("max_recipients = lots\n")
    bad_line = sum(1 for _ in open(lb.conf))
    lb.signal(signal.SIGHUP)
    wait_for(lambda: f"lifeboat.conf:{bad_line}" in lb.log(), timeout=10, what="the reload error in the log")
    assert lb.running()
    assert ehlo_size(lb) == 1024 * 1024


def test_port_in_use_refused(acme, make_lifeboat):
    """A second daemon on a port that is taken exits non-zero and says why."""
    other = make_lifeboat()
    other.settings["smtp_listen"] = f"127.0.0.1:{acme.smtp_port}"
    other.write_config()
    cp = subprocess.run([lbtest.LIFEBOATD, "-c", other.conf, "--foreground"], capture_output=True, text=True,
                        env=lbtest.sanitizer_env(), timeout=30)
    assert cp.returncode != 0
    assert str(acme.smtp_port) in cp.stderr or "in use" in cp.stderr.lower(), cp.stderr
    assert not lbtest.sanitizer_findings(cp.stderr), cp.stderr
    assert lbtest.read_banner(acme.smtp_port).startswith("220")


def test_sigterm_during_delivery(acme, sink):
    """SIGTERM while the customer's server is slowly taking messages: exit 0, and after the
    restart every message arrives (twice at most for the ones that were in flight)."""
    sink.close()
    sent = send_many(acme, 6, "term-inflight")
    sink.handler.data_delay = 1.5
    sink.open()
    acme.ctl_ok("queue", "flush")
    wait_for(lambda: sink.handler.data_active > 0, timeout=20, what="a delivery in flight")
    acme.stop()  # asserts exit 0
    sink.handler.data_delay = 0.0
    acme.start()
    acme.ctl_ok("queue", "flush")
    wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= set(sent), timeout=60,
             what="all messages after the restart")
    acme.wait_queue_empty()
    counts = collections.Counter(lbtest.message_ids(sink.messages))
    assert max(counts.values()) <= 2, counts
