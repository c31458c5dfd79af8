"""
Continuity under load (issue 3): the recovery drain brings everything back exactly once — from a
stopped Postfix with 200 messages held, through a server flapping up and down every 2 seconds
during 1,000 messages, and across a SIGKILL of lifeboatd in the middle of a drain.

"Exactly once" is counted at the destination by Message-ID: every message sent must be there,
none twice (for the SIGKILL, at most drain_concurrency twice: the entries whose 250 came in
between the server's answer and the commit that records it).
"""
import collections
import time

import pytest

import lbtest
from lbtest import new_msgid, read_banner, submit_many, wait_for

SENDER = "alice@example.org"

CONFIG = {
    "dr_probe_interval": "1s",
    "delivery_timeout": "3s",
}


def setup_domain(lb, route):
    lb.add_domain("acme.test", "acme", route)
    lb.add_user("bob@acme.test")
    lb.enable_continuity("acme.test", "acme")


def small_message(msgid, i):
    """Smaller than make_message (these tests send hundreds), still with a dot line."""
    return (f"From: Alice <{SENDER}>\r\nTo: Bob <bob@acme.test>\r\nSubject: load {i}\r\n"
            f"Date: Fri, 27 Nov 2026 22:00:00 +0000\r\nMessage-ID: {msgid}\r\n\r\n"
            f"Message number {i}.\r\n.leading dot\r\n").encode()


def postfix_message_ids(pf):
    out = []
    for raw in pf.delivered():
        for line in raw.split(b"\n"):
            if not line.strip():
                break
            if line.lower().startswith(b"message-id:"):
                out.append(line.split(b":", 1)[1].strip().decode())
    return out


def dupes(ids):
    return {k: n for k, n in collections.Counter(ids).items() if n > 1}


# --------------------------------------------------------------------------- Postfix stopped


@pytest.mark.lifeboat_config(**CONFIG, drain_concurrency="4", drain_rate="100")
def test_postfix_stopped_200_messages_come_back_once(lifeboat, postfix_dest):
    lb, pf = lifeboat, postfix_dest
    setup_domain(lb, pf.route)
    pf.stop()
    wait_for(lambda: read_banner(pf.port) is None, timeout=10, what="Postfix gone")

    ids = [new_msgid(f"pf{i}") for i in range(200)]
    t0 = time.monotonic()
    submit_many(lb.smtp_port, [(SENDER, ["bob@acme.test"], small_message(m, i)) for i, m in enumerate(ids)],
                connections=4)
    print(f"200 messages submitted in {time.monotonic() - t0:.1f}s")
    row = wait_for(lambda: (lambda r: r if r["held"] == 200 else None)(lb.continuity_status("acme.test")),
                   timeout=30, what="200 messages held")
    assert row["state"] == "outage" and row["waiting"] == 200, row
    assert len(lb.mailbox("bob@acme.test")) == 200
    lb.wait_queue_empty(timeout=10)

    pf.start()
    t0 = time.monotonic()
    lb.wait_continuity_state("acme.test", "normal", timeout=60)
    pf.wait_delivered(200, timeout=60)
    print(f"drained into Postfix in {time.monotonic() - t0:.1f}s")
    time.sleep(1.0)  # grace: nothing more arrives
    got = postfix_message_ids(pf)
    assert not dupes(got), f"delivered twice: {dupes(got)}"
    assert sorted(got) == sorted(ids), f"missing: {sorted(set(ids) - set(got))[:10]}"

    row = lb.continuity_status("acme.test")
    assert (row["state"], row["held"], row["redelivered"], row["waiting"], row["deleted"]) == \
        ("normal", 200, 200, 0, 0), row
    assert {e["redeliver"] for e in lb.mailbox("bob@acme.test")} == {"redelivered"}
    lb.wait_queue_empty(timeout=10)


# --------------------------------------------------------------------------- flapping


@pytest.mark.lifeboat_config(**CONFIG, drain_concurrency="4", drain_rate="200")
def test_flapping_server_1000_messages_nothing_lost_none_twice(lifeboat, sink):
    lb = lifeboat
    setup_domain(lb, sink.route)
    ids = [new_msgid(f"flap{i}") for i in range(1000)]
    flapper = lbtest.Flapper(sink, period=2.0)
    t0 = time.monotonic()
    try:
        # Spread over 10 s, so that the messages meet about five flips: mail arriving while
        # the server is up, down, probed, and drained into.
        submit_many(lb.smtp_port, [(SENDER, ["bob@acme.test"], small_message(m, i)) for i, m in enumerate(ids)],
                    connections=4, spread=10.0)
        sent_in = time.monotonic() - t0
        flips_sending = flapper.flips
        # One more round after the last message: a drain cut short by an outage.
        wait_for(lambda: flapper.flips >= flips_sending + 2, timeout=10, what="two more flips")
    finally:
        flips = flapper.flips
        flapper.stop()  # leaves the server up
    print(f"1000 messages sent in {sent_in:.1f}s during {flips_sending} flips; {flips} flips in all")
    assert flips_sending >= 3, "the server did not flap while the messages came in"

    t1 = time.monotonic()
    wait_for(lambda: len({(m.header("Message-ID") or "").strip() for m in sink.messages}) >= 1000,
             timeout=120, interval=0.5, what="1000 distinct messages at the server")
    lb.wait_continuity_state("acme.test", "normal", timeout=30)
    lb.wait_queue_empty(timeout=30)
    print(f"everything at the server {time.monotonic() - t1:.1f}s after the last flip")
    time.sleep(1.5)  # grace: nothing more arrives

    got = lbtest.message_ids(sink.messages)
    assert not dupes(got), f"{len(dupes(got))} message(s) delivered twice, e.g. {list(dupes(got).items())[:5]}"
    assert sorted(got) == sorted(ids), f"missing: {sorted(set(ids) - set(got))[:10]}"
    entries = lb.mailbox("bob@acme.test")
    print(f"{len(entries)} of them went through the mailbox; events: {len(lb.continuity_events('acme.test'))}")
    assert entries, "no message was diverted: the flapping never caused an outage"
    assert {e["redeliver"] for e in entries} == {"redelivered"}, collections.Counter(e["redeliver"] for e in entries)
    row = lb.continuity_status("acme.test")
    assert row["waiting"] == 0, row


# --------------------------------------------------------------------------- SIGKILL mid-drain

DRAIN_CONCURRENCY = 2


@pytest.mark.lifeboat_config(**CONFIG, drain_concurrency=str(DRAIN_CONCURRENCY), drain_rate="5")
def test_sigkill_mid_drain_then_drain_completes(lifeboat, sink):
    lb = lifeboat
    setup_domain(lb, sink.route)
    sink.close()
    ids = [new_msgid(f"kill{i}") for i in range(30)]
    submit_many(lb.smtp_port, [(SENDER, ["bob@acme.test"], small_message(m, i)) for i, m in enumerate(ids)],
                connections=2)
    wait_for(lambda: lb.continuity_status("acme.test")["waiting"] == 30, timeout=20, what="30 messages held")

    sink.open()
    wait_for(lambda: len(sink.messages) >= 8, timeout=30, what="the drain under way")
    lb.kill()
    at_kill = len(sink.messages)
    assert at_kill < 30, "the drain finished before the kill: make it slower"
    print(f"SIGKILL after {at_kill} re-deliveries")

    lb.start()
    wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= set(ids), timeout=60, interval=0.3,
             what="every message at the server after the restart")
    lb.wait_continuity_state("acme.test", "normal", timeout=15)
    time.sleep(1.0)
    got = lbtest.message_ids(sink.messages)
    extra = dupes(got)
    print(f"duplicates after the SIGKILL: {sum(n - 1 for n in extra.values())} {extra}")
    assert sorted(set(got)) == sorted(ids)
    assert all(n == 2 for n in extra.values()) and len(extra) <= DRAIN_CONCURRENCY, (
        f"more duplicates than entries in flight at the kill (at most {DRAIN_CONCURRENCY}): {extra}")
    row = lb.continuity_status("acme.test")
    assert row["waiting"] == 0 and row["held"] == 30 and row["redelivered"] == 30, row
