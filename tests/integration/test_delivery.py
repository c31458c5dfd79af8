"""
Issue 2, done-when 2: a destination answering 4xx, then 2xx: delivered after retry; 5xx: an
RFC 3464 DSN reaches the sender (never one for the null sender). Also the queue's view of it
(`queue list --json`), queue_lifetime expiry, routes tried in order, and the log lines.

The sender's domain, bounce.test, is hosted too and routed to sink2, so a DSN to
alice@bounce.test can be seen arriving.
"""
import email
import email.policy
import re
import smtplib
import threading
import time

import pytest

import lbtest
from lbtest import make_message, new_msgid, wait_for

SENDER = "alice@bounce.test"


@pytest.fixture
def two_domains(lifeboat, sink, sink2):
    lifeboat.add_domain("acme.test", "acme", sink.route)
    lifeboat.add_domain("bounce.test", "bouncer", sink2.route)
    return lifeboat


def send(lb, msg, sender=SENDER, rcpts=("bob@acme.test",)):
    with smtplib.SMTP("127.0.0.1", lb.smtp_port, timeout=30) as c:
        assert c.sendmail(sender, list(rcpts), msg, mail_options=["BODY=8BITMIME"]) == {}


def queue_entry(lb, rcpt):
    for e in lb.queue():
        if rcpt in [r.lower() for r in e["recipients"]]:
            return e
    return None


def assert_queue_shape(entry):
    for key in ("id", "sender", "recipients", "attempts", "next_attempt", "last_reply"):
        assert key in entry, f"queue list --json entry lacks {key!r}: {entry}"
    assert isinstance(entry["id"], str) and entry["id"]
    assert isinstance(entry["recipients"], list)
    assert isinstance(entry["attempts"], int)


@pytest.mark.parametrize("stage", ["rcpt4xx", "data4xx", "mail4xx"])
def test_4xx_then_2xx_delivered_after_retry(two_domains, sink, sink2, stage):
    lb = two_domains
    sink.set_mode(stage)
    msgid = new_msgid("retry")
    msg = make_message(msgid, sender=SENDER)
    send(lb, msg)

    # While the destination defers: the queue shows the attempts and the last reply.
    entry = wait_for(lambda: (e := queue_entry(lb, "bob@acme.test")) and e["attempts"] >= 1 and e["last_reply"]
                     and e, timeout=20, what="a deferred queue entry with attempts and last_reply")
    assert_queue_shape(entry)
    assert entry["sender"] == SENDER
    assert "451" in entry["last_reply"], entry
    assert sink.messages == []
    # More than one attempt with retry_min_backoff = 1s.
    wait_for(lambda: (e := queue_entry(lb, "bob@acme.test")) and e["attempts"] >= 2, timeout=20,
             what="a second attempt")
    assert re.search(r"to=<bob@acme\.test>.*status=deferred", lb.log()), "no status=deferred log line"

    sink.set_mode("accept")
    got = sink.wait_messages(1, timeout=20)
    assert len(sink.with_message_id(msgid)) == 1
    lbtest.assert_relayed_unchanged(got[0].data, msg)
    lb.wait_queue_empty()
    assert re.search(r"to=<bob@acme\.test>.*status=sent", lb.log())
    # No DSN for a message that was finally delivered.
    assert sink2.messages == []


def test_retry_respects_backoff_bounds(two_domains, sink):
    """retry_min_backoff = 1s, retry_max_backoff = 2s: the attempts of a deferred recipient
    are at least ~1 s and at most ~2 s apart (1.5 s of slack for a loaded machine)."""
    lb = two_domains
    sink.set_mode("rcpt4xx")
    send(lb, make_message(new_msgid("backoff"), sender=SENDER))
    wait_for(lambda: len(sink.handler.rcpt_attempts) >= 4, timeout=30, what="four delivery attempts")
    times = [t for _a, t in sink.handler.rcpt_attempts[:4]]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    assert all(g >= 0.8 for g in gaps), f"retried sooner than retry_min_backoff: gaps {gaps}"
    assert all(g <= 3.5 for g in gaps), f"retried later than retry_max_backoff (+1.5 s): gaps {gaps}"
    sink.set_mode("accept")
    sink.wait_messages(1, timeout=10)
    lb.wait_queue_empty()


def dsn_parts(data):
    m = email.message_from_bytes(data, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    types = [p.get_content_type() for p in parts]
    assert types[0] == "text/plain", types
    assert types[1] == "message/delivery-status", types
    assert types[2] in ("message/rfc822", "text/rfc822-headers"), types
    # message/delivery-status: first block per-message fields, then one per recipient.
    blocks = parts[1].get_payload()
    return m, blocks, parts


def test_5xx_sends_dsn_to_sender(two_domains, sink, sink2):
    lb = two_domains
    sink.set_mode("rcpt5xx")
    msgid = new_msgid("bounce")
    msg = make_message(msgid, sender=SENDER)
    send(lb, msg)

    dsn = sink2.wait_messages(1, timeout=30)[0]
    assert dsn.mail_from in ("", "<>"), f"a DSN must have the null sender, got {dsn.mail_from!r}"
    assert [r.lower() for r in dsn.rcpt_tos] == [SENDER]
    m, blocks, parts = dsn_parts(dsn.data)
    from_ = (m["From"] or "").lower()
    assert "mailer-daemon" in from_ or "postmaster" in from_ or "lifeboat.test" in from_, from_
    assert SENDER in (m["To"] or "")
    per_msg = blocks[0]
    assert "lifeboat.test" in (per_msg["Reporting-MTA"] or "")
    rcpt_blocks = blocks[1:]
    assert len(rcpt_blocks) == 1
    rb = rcpt_blocks[0]
    assert "bob@acme.test" in rb["Final-Recipient"].lower()
    assert rb["Action"].strip().lower() == "failed"
    assert rb["Status"].strip().startswith("5.")
    assert "550" in (rb["Diagnostic-Code"] or ""), rb["Diagnostic-Code"]
    # The original message (or its headers) comes back.
    assert msgid.encode() in parts[2].as_bytes()

    lb.wait_queue_empty()
    assert re.search(r"to=<bob@acme\.test>.*status=bounced", lb.log())
    assert sink.messages == []


def test_no_dsn_for_null_sender(two_domains, sink, sink2):
    """A bouncing null-sender message makes no DSN. A second, ordinary bouncing message sent
    after it serves as the marker: once its DSN arrived and the queue is empty, a DSN
    for the first one would have arrived too."""
    lb = two_domains
    sink.set_mode("rcpt5xx")
    null_id = new_msgid("nullsender")
    send(lb, make_message(null_id, sender=""), sender="")
    wait_for(lambda: re.search(r"to=<bob@acme\.test>.*status=bounced", lb.log()), timeout=30,
             what="the null-sender message to bounce")
    marker_id = new_msgid("marker")
    send(lb, make_message(marker_id, sender=SENDER))
    sink2.wait_messages(1, timeout=30)
    lb.wait_queue_empty()
    time.sleep(1.0)  # room for a wrong extra DSN to show up
    dsns = sink2.messages
    assert len(dsns) == 1, f"expected only the marker's DSN, got {len(dsns)}"
    assert marker_id.encode() in dsns[0].data
    assert null_id.encode() not in dsns[0].data


def test_dsn_for_one_of_two_recipients(two_domains, sink, sink2):
    lb = two_domains
    sink.handler.perm_fail_rcpts.add("gone@acme.test")
    msgid = new_msgid("partial")
    msg = make_message(msgid, sender=SENDER)
    send(lb, msg, rcpts=("bob@acme.test", "gone@acme.test"))
    got = sink.wait_messages(1)
    assert [r.lower() for r in got[0].rcpt_tos] == ["bob@acme.test"]
    dsn = sink2.wait_messages(1)[0]
    _m, blocks, _parts = dsn_parts(dsn.data)
    finals = [b["Final-Recipient"].lower() for b in blocks[1:]]
    assert len(finals) == 1 and "gone@acme.test" in finals[0], finals
    lb.wait_queue_empty()


@pytest.mark.lifeboat_config(queue_lifetime="3s")
def test_queue_lifetime_expiry_bounces(two_domains, sink, sink2):
    lb = two_domains
    sink.set_mode("rcpt4xx")
    msgid = new_msgid("expire")
    send(lb, make_message(msgid, sender=SENDER))
    dsn = sink2.wait_messages(1, timeout=30)[0]
    assert dsn.mail_from in ("", "<>")
    _m, blocks, parts = dsn_parts(dsn.data)
    rb = blocks[1]
    assert "bob@acme.test" in rb["Final-Recipient"].lower()
    assert rb["Action"].strip().lower() == "failed"
    assert rb["Status"].strip().startswith("4."), rb["Status"]
    assert msgid.encode() in parts[2].as_bytes()
    lb.wait_queue_empty()
    assert sink.messages == []


def test_route_hosts_tried_in_order(lifeboat, sink):
    """--route with a dead first host: the second one gets the message."""
    dead = lbtest.free_port()
    lifeboat.add_domain("acme.test", "acme", f"127.0.0.1:{dead},{sink.route}")
    msgid = new_msgid("route")
    msg = make_message(msgid)
    send(lifeboat, msg, sender="alice@example.org")
    got = sink.wait_messages(1, timeout=30)
    lbtest.assert_relayed_unchanged(got[0].data, msg)
    lifeboat.wait_queue_empty()


def test_log_lines_carry_queue_id(acme, sink):
    msgid = new_msgid("log")
    send(acme, make_message(msgid), sender="alice@example.org")
    sink.wait_messages(1)
    line = wait_for(lambda: re.search(
        r"\b([0-9A-Za-z]{6,}): to=<bob@acme\.test>, relay=[^,\s]*\[127\.0\.0\.1\]:%d, .*delay=[0-9.]+, .*status=sent \(250"
        % sink.port, acme.log()), timeout=10, what="a status=sent log line")
    qid = line.group(1)
    # Every line about the message starts with its queue ID; the receiving side logged it too.
    lines_with_id = [ln for ln in acme.log().splitlines() if qid in ln]
    assert len(lines_with_id) >= 2, lines_with_id
    assert any(f"{qid}: from=<alice@example.org>" in ln for ln in lines_with_id), lines_with_id


def test_concurrent_sessions_all_delivered_once(acme, sink):
    """20 sessions at once, 5 messages each (the group-commit path): every message is
    accepted, delivered once, unchanged."""
    errors = []
    sent = {}

    def client(n):
        try:
            with smtplib.SMTP("127.0.0.1", acme.smtp_port, timeout=30) as c:
                for i in range(5):
                    mid = new_msgid(f"conc{n}-{i}")
                    msg = make_message(mid, subject=f"concurrent {n}/{i}")
                    sent[mid] = msg
                    assert c.sendmail("alice@example.org", ["bob@acme.test"], msg,
                                      mail_options=["BODY=8BITMIME"]) == {}
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(sent) == 100
    sink.wait_messages(100, timeout=60)
    ids = lbtest.message_ids(sink.messages)
    assert sorted(ids) == sorted(sent), "missing or duplicated messages"
    for m in sink.messages:
        lbtest.assert_relayed_unchanged(m.data, sent[m.header("Message-ID").strip()])
    acme.wait_queue_empty()


@pytest.mark.lifeboat_config(delivery_concurrency="2")
def test_delivery_concurrency_limit_and_connection_reuse(acme, sink):
    """12 queued messages for one destination: never more than delivery_concurrency
    connections at once, and connections are reused (fewer sessions than messages)."""
    sink.close()
    sent = set()
    with smtplib.SMTP("127.0.0.1", acme.smtp_port, timeout=30) as c:
        for i in range(12):
            mid = new_msgid(f"reuse{i}")
            assert c.sendmail("alice@example.org", ["bob@acme.test"], make_message(mid),
                              mail_options=["BODY=8BITMIME"]) == {}
            sent.add(mid)
    sink.handler.data_delay = 0.2
    sink.open()
    acme.ctl_ok("queue", "flush")
    wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= sent, timeout=60, what="all 12 messages")
    acme.wait_queue_empty()
    assert sink.handler.data_active_max <= 2, f"{sink.handler.data_active_max} deliveries at once"
    assert sink.handler.sessions < 12, f"{sink.handler.sessions} SMTP sessions for 12 messages: no reuse"


def test_dsn_that_bounces_is_dropped(two_domains, sink, sink2):
    """The DSN itself is refused by the sender's server: no DSN about the DSN, no loop."""
    lb = two_domains
    sink.set_mode("rcpt5xx")
    sink2.set_mode("rcpt5xx")
    send(lb, make_message(new_msgid("double-bounce"), sender=SENDER))
    wait_for(lambda: any(a.lower() == SENDER for a, _t in sink2.handler.rcpt_attempts), timeout=30,
             what="the DSN's delivery attempt")
    lb.wait_queue_empty()
    time.sleep(1.0)
    attempts = [a.lower() for a, _t in sink2.handler.rcpt_attempts]
    assert attempts == [SENDER], f"DSN attempts at the sender's server: {attempts}"
    assert sink.messages == [] and sink2.messages == []


def test_4xx_for_one_recipient_retries_only_that_one(two_domains, sink, sink2):
    lb = two_domains
    sink.handler.temp_fail_rcpts.add("carol@acme.test")
    msgid = new_msgid("partial4xx")
    msg = make_message(msgid, sender=SENDER)
    send(lb, msg, rcpts=("bob@acme.test", "carol@acme.test"))
    wait_for(lambda: [a for a, _t in sink.handler.rcpt_attempts if a.lower() == "carol@acme.test"][1:],
             timeout=30, what="a retry for carol")
    entry = queue_entry(lb, "carol@acme.test")
    assert entry and [r.lower() for r in entry["recipients"]] == ["carol@acme.test"], entry
    sink.handler.temp_fail_rcpts.clear()
    wait_for(lambda: "carol@acme.test" in [r.lower() for m in sink.messages for r in m.rcpt_tos], timeout=30,
             what="carol's copy")
    lb.wait_queue_empty()
    delivered = sorted(r.lower() for m in sink.with_message_id(msgid) for r in m.rcpt_tos)
    assert delivered == ["bob@acme.test", "carol@acme.test"], f"each recipient once: {delivered}"
    bob_attempts = [a for a, _t in sink.handler.rcpt_attempts if a.lower() == "bob@acme.test"]
    assert len(bob_attempts) == 1, f"bob was sent to again on carol's retries: {len(bob_attempts)} RCPTs"
    for m in sink.messages:
        lbtest.assert_relayed_unchanged(m.data, msg)
    assert sink2.messages == []
