"""
Continuity end to end (issue 3, SPEC.md "Continuity behaviour"): a customer's server that fails
in the ways real servers fail — 451 at MAIL or for every RCPT, 421, a closed port, a server that
accepts the connection and never answers, a Postfix that is stopped, a server flapping up and
down — and lifeboatd crashing in the middle of a recovery drain. Each "done when" of issue 3 is
shown with real peers (aiosmtpd, Postfix, smtplib):

  451 (MAIL, every RCPT), 421 (greeting, MAIL), refused, silent -> mailboxes within 1 s, unknown
      and inactive recipients stay queued: test_fault_diverts_into_mailboxes_within_a_second[*],
      test_address_and_alias_of_one_user_make_one_entry
  Postfix stopped, 200 messages, started: test_continuity_recovery.py::
      test_postfix_stopped_200_messages_come_back_once
  flapping every 2 s during 1,000 messages: test_continuity_recovery.py::
      test_flapping_server_1000_messages_nothing_lost_none_twice
  SIGKILL mid-drain: test_continuity_recovery.py::test_sigkill_mid_drain_then_drain_completes
  partial 4xx: test_partial_4xx_diverts_only_that_copy
  non-retroactivity, enable refused without a subscription:
      test_enabling_is_not_retroactive_and_needs_a_subscription (the other subscription rules
      and refused commands: test_continuity_admin.py)
  events, webhook, alert mail: test_events_webhook_and_alert_mail
  state kept across a restart: test_outage_state_survives_a_restart

Every test runs with dr_probe_interval = 1s and delivery_timeout = 3s, so an outage is noticed,
probed and drained in seconds. Mailboxes are read with `lifeboatctl mailbox list EMAIL --json`,
whose entries carry the queue ID the message came in with (msg_id): submit() takes it from the
"250 ... queued as ID" reply to DATA.
"""
import collections
import re
import time

import pytest

import lbtest
from lbtest import make_message, new_msgid, submit, wait_for

DELIVERY_TIMEOUT = 3  # seconds; the silent server's fault is this long after the connection
FAULT_DEADLINE = 1.0  # seconds from the fault to the copy in every mailbox (issue 3)

CONFIG = {
    "dr_probe_interval": "1s",
    "delivery_timeout": f"{DELIVERY_TIMEOUT}s",
    "drain_concurrency": "4",
    "drain_rate": "100",
}

SENDER = "alice@example.org"


# --------------------------------------------------------------------------- helpers


class Env:
    """lifeboatd + the acme.test destination sink, with continuity enabled and users:
    bob and carol registered and activated (sales@ an alias of carol), dave registered
    but not activated; nobody@acme.test is unknown (recipient check off)."""

    def __init__(self, lb, sink):
        self.lb = lb
        self.sink = sink
        lb.add_domain("acme.test", "acme", sink.route)
        lb.add_user("bob@acme.test")
        lb.add_user("carol@acme.test")
        lb.ctl_ok("alias", "add", "carol@acme.test", "sales@acme.test")
        lb.add_user("dave@acme.test", activate=False)
        lb.enable_continuity("acme.test", "acme")


@pytest.fixture
def env(lifeboat, sink):
    return Env(lifeboat, sink)


def entries_for(lb, user, qid):
    return [e for e in lb.mailbox(user) if e["msg_id"] == qid]


def wait_in_mailboxes(lb, expected, timeout):
    """expected: {user: queue ID}. Polls until each user's mailbox holds an entry of its
    message; returns {user: monotonic time}, taken at the start of the poll that first saw
    the entry (the entry was there no later than that lifeboatctl run)."""
    seen = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(expected):
        for user, qid in expected.items():
            if user in seen:
                continue
            t0 = time.monotonic()
            if entries_for(lb, user, qid):
                seen[user] = t0
        if len(seen) == len(expected):
            break
        if time.monotonic() > deadline:
            missing = sorted(set(expected) - set(seen))
            raise AssertionError(f"after {timeout}s no mailbox entry for {missing}:\n{lb.log()[-3000:]}")
        time.sleep(0.03)
    return seen


def log_lines(lb, qid, rcpt):
    """lifeboatd's log lines about queue ID qid's recipient rcpt (to=<rcpt>), in order."""
    return [ln for ln in lb.log().splitlines() if f"{qid}: to=<{rcpt}>" in ln]


def logged(lb, qid, rcpt, pattern):
    """The first log line about qid's rcpt that matches the regular expression, or None."""
    return next((ln for ln in log_lines(lb, qid, rcpt) if re.search(pattern, ln)), None)


DIVERTED = r", relay=continuity, .*status=continuity \("


def queued_rcpts(lb, qid):
    """The recipients of qid still waiting in the ordinary queue (`queue list --json`)."""
    for m in lb.queue():
        if m["id"] == qid:
            return sorted(m["recipients"])
    return []


def arrivals(sink):
    """{Message-ID: [recipient, ...]} over every transaction the sink accepted."""
    out = collections.defaultdict(list)
    for m in sink.messages:
        out[(m.header("Message-ID") or "").strip()].extend(r.lower() for r in m.rcpt_tos)
    return out


def event_pairs(lb, domain):
    """[(from, to)] of the domain's continuity events, oldest first."""
    evs = lb.continuity_events(domain)
    evs.sort(key=lambda e: (e.get("at_epoch", 0), e["id"]))
    return [(e["from"], e["to"]) for e in evs]


# --------------------------------------------------------------------------- faults


FAULTS = ["mail451", "rcpt451-all", "greeting421", "mail421", "refused", "silent"]


def make_fault(kind, sink):
    """Breaks the sink the given way; returns a function that mends it."""
    server = None
    if kind == "mail451":
        sink.set_mode("mail4xx")
    elif kind == "rcpt451-all":
        sink.set_mode("rcpt4xx")
    elif kind == "mail421":
        sink.set_mode("mail421")
    elif kind == "greeting421":
        sink.close()
        server = lbtest.SilentServer(sink.port, greeting="421 4.3.2 sink: too busy, try later")
    elif kind == "refused":
        sink.close()
    elif kind == "silent":
        sink.close()
        server = lbtest.SilentServer(sink.port)
    else:
        raise ValueError(kind)

    def mend():
        if server is not None:
            server.close()
        sink.set_mode("accept")
        sink.open()

    return server, mend


@pytest.mark.lifeboat_config(**CONFIG)
@pytest.mark.parametrize("fault", FAULTS)
def test_fault_diverts_into_mailboxes_within_a_second(env, fault):
    lb, sink = env.lb, env.sink
    server, mend = make_fault(fault, sink)
    try:
        msgid = new_msgid(f"fault-{fault}")
        data = make_message(msgid)
        rcpts = ["bob@acme.test", "sales@acme.test", "dave@acme.test", "nobody@acme.test"]
        qid = submit(lb.smtp_port, SENDER, rcpts, data)
        t_fault = time.monotonic()  # lifeboatd tries the server only after its 250 to us
        if fault == "silent":
            wait_for(lambda: server.accepted, timeout=5, what="lifeboatd connecting to the silent server")
            t_fault = server.accepted[0] + DELIVERY_TIMEOUT

        # Each registered, activated recipient's copy is in its user's INBOX within a second
        # of the fault; the alias's copy is carol's.
        seen = wait_in_mailboxes(lb, {"bob@acme.test": qid, "carol@acme.test": qid},
                                 timeout=max(0.0, t_fault - time.monotonic()) + 10)
        late = {u: round(t - t_fault, 3) for u, t in seen.items()}
        print(f"{fault}: in the mailboxes this long after the fault: {late}")
        assert max(late.values()) <= FAULT_DEADLINE, f"{fault}: mailbox copies later than {FAULT_DEADLINE}s: {late}"

        row = lb.continuity_status("acme.test")
        assert row["state"] == "outage", row
        assert row["cause"], f"an outage without a cause: {row}"
        assert row["held"] == 2 and row["waiting"] == 2, row
        assert "continuity: domain acme.test normal -> outage: " in lb.log()

        for user, rcpt in (("bob@acme.test", "bob@acme.test"), ("carol@acme.test", "sales@acme.test")):
            (e,) = entries_for(lb, user, qid)
            assert e["folder"] == "INBOX" and e["redeliver"] == "waiting", e
            assert e["sender"] == SENDER and [r.lower() for r in e["rcpts"]] == [rcpt], e
            assert logged(lb, qid, rcpt, DIVERTED), log_lines(lb, qid, rcpt)
        assert lb.mailbox("dave@acme.test") == [], "an inactive user got a mailbox entry"
        # Unknown and inactive recipients stay in the ordinary retry queue.
        assert queued_rcpts(lb, qid) == ["dave@acme.test", "nobody@acme.test"], lb.queue()
        for rcpt in ("dave@acme.test", "nobody@acme.test"):
            assert logged(lb, qid, rcpt, "status=deferred"), log_lines(lb, qid, rcpt)
            assert not logged(lb, qid, rcpt, "relay=continuity"), log_lines(lb, qid, rcpt)

        # In outage new mail goes straight to the mailboxes: no attempt against the dead
        # server first (for the silent server that would take delivery_timeout).
        msgid2 = new_msgid(f"fault2-{fault}")
        data2 = make_message(msgid2)
        qid2 = submit(lb.smtp_port, SENDER, ["bob@acme.test"], data2)
        t2 = time.monotonic()
        seen2 = wait_in_mailboxes(lb, {"bob@acme.test": qid2}, timeout=10)
        assert seen2["bob@acme.test"] - t2 <= FAULT_DEADLINE, (
            f"{fault}: in outage, new mail reached the mailbox only after {seen2['bob@acme.test'] - t2:.2f}s")
    finally:
        mend()

    # Recovery: everything reaches the server exactly once — the mailbox copies by the
    # drain, the unknown and inactive recipients' copies from the retry queue.
    lb.wait_continuity_state("acme.test", "normal", timeout=DELIVERY_TIMEOUT + 20)
    want = {msgid: sorted(rcpts), msgid2: ["bob@acme.test"]}
    wait_for(lambda: all(sorted(arrivals(sink).get(k, [])) == v for k, v in want.items()), timeout=20,
             what="every recipient's copy at the server")
    time.sleep(1.0)  # grace: nothing more arrives
    got = arrivals(sink)
    for k, v in want.items():
        assert sorted(got[k]) == v, f"{k}: recipients at the server {sorted(got[k])}, want each of {v} once"
    for m in sink.messages:
        if (m.header("Message-ID") or "").strip() == msgid:
            lbtest.assert_relayed_unchanged(m.data, data)
    row = lb.continuity_status("acme.test")
    assert row["waiting"] == 0 and row["held"] == 3 and row["redelivered"] == 3, row
    (e,) = entries_for(lb, "bob@acme.test", qid)
    assert e["redeliver"] == "redelivered", f"mail must stay readable after the drain: {e}"
    lb.wait_queue_empty(timeout=10)


@pytest.mark.lifeboat_config(**CONFIG)
def test_address_and_alias_of_one_user_make_one_entry(env):
    lb, sink = env.lb, env.sink
    sink.close()
    msgid = new_msgid("alias")
    data = make_message(msgid)
    qid = submit(lb.smtp_port, SENDER, ["carol@acme.test", "sales@acme.test"], data)
    wait_in_mailboxes(lb, {"carol@acme.test": qid}, timeout=10)
    time.sleep(0.3)
    entries = entries_for(lb, "carol@acme.test", qid)
    assert len(entries) == 1, f"one blob, one entry per user: {entries}"
    assert sorted(r.lower() for r in entries[0]["rcpts"]) == ["carol@acme.test", "sales@acme.test"], entries
    assert lb.continuity_status("acme.test")["held"] == 1
    sink.open()
    lb.wait_continuity_state("acme.test", "normal")
    wait_for(lambda: sorted(arrivals(sink).get(msgid, [])) == ["carol@acme.test", "sales@acme.test"],
             timeout=15, what="both recipients at the server")
    time.sleep(0.5)
    assert len(sink.with_message_id(msgid)) == 1, "re-delivered more than once"


# --------------------------------------------------------------------------- partial 4xx


@pytest.mark.lifeboat_config(**CONFIG)
def test_partial_4xx_diverts_only_that_copy(env):
    lb, sink = env.lb, env.sink
    sink.handler.temp_fail_rcpts.add("carol@acme.test")
    msgid = new_msgid("partial")
    data = make_message(msgid)
    t0 = time.monotonic()
    qid = submit(lb.smtp_port, SENDER, ["bob@acme.test", "carol@acme.test"], data)
    (m,) = wait_for(lambda: sink.with_message_id(msgid), timeout=10, what="bob's copy at the server")
    assert [r.lower() for r in m.rcpt_tos] == ["bob@acme.test"], m.rcpt_tos
    seen = wait_in_mailboxes(lb, {"carol@acme.test": qid}, timeout=10)
    assert seen["carol@acme.test"] - t0 <= FAULT_DEADLINE + 0.5, seen
    assert entries_for(lb, "bob@acme.test", qid) == [], "bob's copy was delivered: it has no place in the mailbox"
    assert logged(lb, qid, "carol@acme.test", DIVERTED), log_lines(lb, qid, "carol@acme.test")
    assert logged(lb, qid, "bob@acme.test", "status=sent"), log_lines(lb, qid, "bob@acme.test")

    # The domain stays normal: the server as a whole works. (A grace period: an outage
    # would show at once.)
    time.sleep(1.5)
    row = lb.continuity_status("acme.test")
    assert row["state"] == "normal", row
    assert ("normal", "outage") not in event_pairs(lb, "acme.test"), lb.continuity_events("acme.test")
    assert "acme.test normal -> outage" not in lb.log()

    # When the server takes carol's mail again, her copy goes back to it, once.
    sink.handler.temp_fail_rcpts.clear()
    wait_for(lambda: "carol@acme.test" in arrivals(sink).get(msgid, []), timeout=15,
             what="carol's copy at the server")
    wait_for(lambda: entries_for(lb, "carol@acme.test", qid)[0]["redeliver"] == "redelivered", timeout=5,
             what="carol's entry marked re-delivered")
    time.sleep(1.0)
    assert sorted(arrivals(sink)[msgid]) == ["bob@acme.test", "carol@acme.test"], arrivals(sink)[msgid]


# --------------------------------------------------------------------------- non-retroactivity


@pytest.mark.lifeboat_config(**CONFIG)
def test_enabling_is_not_retroactive_and_needs_a_subscription(lifeboat, sink):
    lb = lifeboat
    lb.add_domain("acme.test", "acme", sink.route)
    lb.add_user("bob@acme.test")

    # No subscription: refused, with one line saying why.
    cp = lb.ctl("continuity", "enable", "acme.test")
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    assert len([ln for ln in cp.stderr.splitlines() if ln.strip()]) == 1 and "subscription" in cp.stderr, cp.stderr
    assert lb.continuity_status("acme.test").get("continuity") is not True
    cp = lb.ctl("continuity", "enable", "nosuch.test")
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)

    # Continuity off, server down: the message is deferred in the ordinary queue. The
    # subscription starts (and continuity is enabled) right after, in the same wall-clock
    # second: the boundary must hold at any resolution of the stored times.
    lb.ctl_ok("customer", "list")  # warm-up, so the three commands below fit in one second
    sink.close()
    wait_for(lambda: time.time() % 1.0 < 0.2, timeout=2, interval=0.01, what="the start of a second")
    t_submit = time.time()
    old_id = new_msgid("old")
    old_qid = submit(lb.smtp_port, SENDER, ["bob@acme.test"], make_message(old_id))
    wait_for(lambda: logged(lb, old_qid, "bob@acme.test", "status=deferred"), timeout=10, interval=0.02,
             what="the old message deferred")
    lb.ctl_ok("subscription", "start", "acme")
    lb.ctl_ok("continuity", "enable", "acme.test")
    print(f"deferred and enabled within {time.time() - t_submit:.2f}s, same second: "
          f"{int(time.time()) == int(t_submit)}")
    assert lb.continuity_status("acme.test")["state"] == "normal"
    attempts_at_enable = next(m["attempts"] for m in lb.queue() if m["id"] == old_qid)

    # New mail is diverted ...
    new_id = new_msgid("new")
    new_qid = submit(lb.smtp_port, SENDER, ["bob@acme.test"], make_message(new_id))
    wait_in_mailboxes(lb, {"bob@acme.test": new_qid}, timeout=10)
    lb.wait_continuity_state("acme.test", "outage", timeout=5)
    # ... the old message stays in the ordinary queue, also after retries in the outage.
    def retried_twice_or_gone():
        rows = [m for m in lb.queue() if m["id"] == old_qid]
        return "gone" if not rows else rows[0]["attempts"] > attempts_at_enable + 1

    wait_for(retried_twice_or_gone, timeout=15, what="the old message retried twice after continuity was enabled")
    assert entries_for(lb, "bob@acme.test", old_qid) == [] and \
        not logged(lb, old_qid, "bob@acme.test", "relay=continuity"), (
        "continuity applied retroactively: the message deferred before `continuity enable` was diverted:\n"
        + "\n".join(log_lines(lb, old_qid, "bob@acme.test")))
    assert queued_rcpts(lb, old_qid) == ["bob@acme.test"], lb.queue()

    # Server back: the old one from the queue, the new one by the drain; each once.
    sink.open()
    lb.wait_continuity_state("acme.test", "normal", timeout=15)
    wait_for(lambda: sink.with_message_id(old_id) and sink.with_message_id(new_id), timeout=15,
             what="both messages at the server")
    lb.wait_queue_empty(timeout=10)
    time.sleep(0.5)
    assert len(sink.with_message_id(old_id)) == 1 and len(sink.with_message_id(new_id)) == 1


# --------------------------------------------------------------------------- events and alerts


@pytest.fixture
def webhook():
    w = lbtest.WebhookReceiver()
    yield w
    w.close()


@pytest.mark.lifeboat_config(**CONFIG)
def test_events_webhook_and_alert_mail(env, sink2, webhook):
    lb, sink = env.lb, env.sink
    # An admin of acme whose alternate address is at another customer's domain (sink2).
    lb.add_domain("ops.test", "opsco", sink2.route)
    lb.ctl_ok("user", "add", "admin@acme.test", "--role", "admin", "--activate", "--password-stdin",
              input="correct horse 9 battery\n")
    lb.ctl_ok("user", "set", "admin@acme.test", "--alt-email", "oncall@ops.test")
    lb.ctl_ok("domain", "set", "acme.test", "--webhook", webhook.url("/hook"))
    # The engine reads the domain table once a second and its alerts use that copy
    # (engine.c: alert_state_change(c, &cd->row, ...)): a webhook set less than a second
    # before a state change is missed. Known, reported; wait one refresh.
    time.sleep(1.2)

    sink.close()
    submit(lb.smtp_port, SENDER, ["bob@acme.test"], make_message(new_msgid("ev")))
    lb.wait_continuity_state("acme.test", "outage", timeout=10)

    def outage_event():
        for e in lb.continuity_events("acme.test"):
            if e["from"] == "normal" and e["to"] == "outage":
                return e
        return None

    e = wait_for(outage_event, timeout=5, what="the outage event")
    assert e["domain"] == "acme.test" and e["cause"], e
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", e["at"] or ""), e
    hook = wait_for(lambda: [p for p in webhook.json_posts() if p.get("state") == "outage"], timeout=10,
                    what="the webhook POST for the outage")[0]
    assert hook["domain"] == "acme.test" and hook["previous"] == "normal" and hook["cause"], hook
    with webhook.lock:
        path, headers, _ = webhook.posts[0]
    assert path == "/hook" and "json" in {k.lower(): v for k, v in headers.items()}.get("content-type", ""), headers

    def alerts(state):
        return [m for m in sink2.messages
                if "oncall@ops.test" in [r.lower() for r in m.rcpt_tos]
                and f"mail server {state}" in (m.header("Subject") or "")]

    (mail,) = wait_for(lambda: alerts("outage"), timeout=10, what="the outage alert at the admin's alt address")
    assert mail.mail_from in ("", "<>"), f"alerts go out with a null sender: {mail.mail_from!r}"
    assert "acme.test" in mail.header("Subject") and mail.header("Auto-Submitted"), mail.data[:600]
    assert b"normal -> outage" in mail.data, mail.data

    # Recovery: outage -> recovering -> normal, each an event, a POST and a mail.
    sink.open()
    lb.wait_continuity_state("acme.test", "normal", timeout=15)
    pairs = wait_for(lambda: (lambda p: p if ("recovering", "normal") in p else None)(event_pairs(lb, "acme.test")),
                     timeout=5, what="the recovery events")
    assert pairs == [("normal", "outage"), ("outage", "recovering"), ("recovering", "normal")], pairs
    wait_for(lambda: [p.get("state") for p in webhook.json_posts()] == ["outage", "recovering", "normal"],
             timeout=10, what="webhook POSTs for every state change")
    wait_for(lambda: alerts("recovering") and alerts("normal"), timeout=10, what="alert mails for the recovery")
    time.sleep(0.5)
    assert len(alerts("outage")) == 1 and len(alerts("recovering")) == 1 and len(alerts("normal")) == 1
    assert "continuity: domain acme.test outage -> recovering" in lb.log()
    assert "continuity: domain acme.test recovering -> normal" in lb.log()


# --------------------------------------------------------------------------- restart


@pytest.mark.lifeboat_config(**CONFIG)
def test_outage_state_survives_a_restart(env):
    """The state is in the store: a restarted lifeboatd is still in the outage (no new
    outage event), keeps diverting without trying the server, and recovers as usual."""
    lb, sink = env.lb, env.sink
    sink.close()
    first = new_msgid("before-restart")
    qid1 = submit(lb.smtp_port, SENDER, ["bob@acme.test"], make_message(first))
    lb.wait_continuity_state("acme.test", "outage", timeout=10)
    wait_in_mailboxes(lb, {"bob@acme.test": qid1}, timeout=5)

    lb.restart()
    row = lb.continuity_status("acme.test")
    assert row["state"] == "outage" and row["waiting"] == 1, row
    second = new_msgid("after-restart")
    qid2 = submit(lb.smtp_port, SENDER, ["bob@acme.test"], make_message(second))
    t0 = time.monotonic()
    seen = wait_in_mailboxes(lb, {"bob@acme.test": qid2}, timeout=10)
    assert seen["bob@acme.test"] - t0 <= FAULT_DEADLINE, "after the restart new mail was not diverted at once"
    assert event_pairs(lb, "acme.test") == [("normal", "outage")], lb.continuity_events("acme.test")
    assert lb.continuity_status("acme.test")["held"] == 2

    sink.open()
    lb.wait_continuity_state("acme.test", "normal", timeout=15)
    wait_for(lambda: sink.with_message_id(first) and sink.with_message_id(second), timeout=15,
             what="both messages at the server")
    time.sleep(0.5)
    assert len(sink.with_message_id(first)) == 1 and len(sink.with_message_id(second)) == 1
