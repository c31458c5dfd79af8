"""
The control panel's operational data (issue 11): the outage dashboard's continuity status, events
and mail per minute, and the queue page (list, flush, hold, release, delete), through the admin API
and lifeboatctl, which return the same shapes (src/admin's views) and make the same store calls.

One daemon for the module, with a long retry backoff (1 h) so that deferred mail stays queued until
a flush, and a 1 s probe interval so an outage ends quickly:
  acme   acme.test (continuity on; its server sink_a, switched to 4xx for the outage) with user bob
         and admin ann; other.test (no continuity; sink_o)
  beta   beta.test (sink_b) with user carol and admin gina
  ops    ops.test with the operator oscar
"""
from urllib.parse import urlencode

import pytest

import lbtest
from lbtest import make_message, new_msgid, submit, wait_for
from test_http_api import PASSWORD, Client

COUNTERS = ("accepted", "delivered", "diverted", "redelivered", "deferred", "bounced")


@pytest.fixture(scope="module")
def sinks():
    made = {name: lbtest.Sink(name) for name in ("a", "o", "b", "ops")}
    yield made
    for s in made.values():
        s.close()


@pytest.fixture(scope="module")
def lb(tmp_path_factory, sinks):
    lb = lbtest.Lifeboat(tmp_path_factory.mktemp("admin_ops") / "lifeboat",
                         {"retry_min_backoff": "1h", "retry_max_backoff": "2h", "dr_probe_interval": "1s",
                          "delivery_timeout": "3s"})
    lb.start()
    lb.add_domain("acme.test", "acme", sinks["a"].route)
    lb.add_domain("other.test", "acme", sinks["o"].route)
    lb.add_domain("beta.test", "beta", sinks["b"].route)
    lb.add_domain("ops.test", "ops", sinks["ops"].route)
    for addr, role in (("bob@acme.test", "user"), ("ann@acme.test", "admin"), ("carol@beta.test", "user"),
                       ("gina@beta.test", "admin"), ("oscar@ops.test", "operator")):
        lb.ctl_ok("user", "add", addr, "--role", role, "--password-stdin", "--activate", input=PASSWORD + "\n")
    lb.enable_continuity("acme.test", "acme")
    yield lb
    problems = lbtest.finish([lb])
    assert not problems, "\n\n".join(problems)


@pytest.fixture(autouse=True)
def sinks_accept(sinks):
    for s in sinks.values():
        s.set_mode("accept")
        with s.handler.lock:
            s.handler.temp_fail_rcpts.clear()
    yield


def login(lb, addr):
    c = Client(lb.http_port)
    r = c.login(addr)
    assert r.status == 200, (addr, r.status, r.body)
    return c


def get(c, path, status=200, **params):
    r = c.request("GET", f"/api/v1/admin/{path}" + (f"?{urlencode(params)}" if params else ""))
    assert r.status == status, (path, params, r.status, r.body)
    return r.json


def post(c, path, body=None, status=200, method="POST"):
    r = c.request(method, f"/api/v1/admin/{path}", body)
    assert r.status == status, (method, path, r.status, r.body)
    return r.json


def mail(lb, rcpts, subject, sender="alice@example.org"):
    data = make_message(new_msgid("ops"), sender=sender, to=", ".join(rcpts), subject=subject)
    return submit(lb.smtp_port, sender, list(rcpts), data)


def arrived(sink, subject):
    return [m for m in sink.messages if f"Subject: {subject}\r\n".encode() in m.data]


def totals(view):
    """The counters of a stats view summed over its minutes (and a check of its shape)."""
    assert set(view) == {"domain", "hours", "from", "minutes"}, view
    assert view["from"] % 60 == 0
    t = dict.fromkeys(COUNTERS, 0)
    last = 0
    for m in view["minutes"]:
        assert set(m) == {"t", *COUNTERS}, m
        assert m["t"] % 60 == 0 and m["t"] > last and m["t"] >= view["from"], (m, last)
        last = m["t"]
        for k in COUNTERS:
            t[k] += m[k]
    return t


def ctl_stats(lb, domain):
    return totals(lb.ctl_json("continuity", "stats", domain))


def queued(lb, qid):
    """The `queue list --json` entry of qid, or None."""
    return next((m for m in lb.queue() if m["id"] == qid), None)


def deferred(lb, qid):
    """Waits until qid has been tried and deferred (its entry, attempts > 0)."""
    return wait_for(lambda: (lambda m: m if m and m["attempts"] > 0 else None)(queued(lb, qid)),
                    what=f"{qid} deferred")


# --------------------------------------------------------------------------- roles


def test_a_user_gets_403_everywhere(lb):
    bob = login(lb, "bob@acme.test")
    for path in ("continuity", "events", "stats", "queue", "stats?domain=acme.test"):
        r = bob.request("GET", f"/api/v1/admin/{path}")
        assert r.status == 403 and r.json["code"] == "admin_only", (path, r.status, r.body)
    for method, path in (("POST", "queue/flush"), ("POST", "queue/0000000000000001/hold"),
                         ("POST", "queue/0000000000000001/release"), ("DELETE", "queue/0000000000000001")):
        r = bob.request(method, f"/api/v1/admin/{path}", {} if path.endswith("flush") else None)
        assert r.status == 403 and r.json["code"] == "admin_only", (method, path, r.status, r.body)
    # Not logged in at all: 401.
    assert Client(lb.http_port).request("GET", "/api/v1/admin/stats").status == 401


# --------------------------------------------------------------------------- the dashboard


def test_counts_move_through_an_outage_and_a_recovery(lb, sinks):
    ann = login(lb, "ann@acme.test")
    before = totals(get(ann, "stats", domain="acme.test", hours=1))
    assert before == ctl_stats(lb, "acme.test")

    # Normal: accepted and delivered to the customer's server.
    for i in range(2):
        mail(lb, ["bob@acme.test"], f"ops-normal-{i}")
    wait_for(lambda: len(arrived(sinks["a"], "ops-normal-0") + arrived(sinks["a"], "ops-normal-1")) == 2,
             what="both delivered")
    wait_for(lambda: totals(get(ann, "stats", domain="acme.test", hours=1))["delivered"] == before["delivered"] + 2,
             what="two delivered counted")

    # The server answers 4xx: the domain goes into outage and the mail into bob's mailbox.
    sinks["a"].set_mode("mail4xx")
    mail(lb, ["bob@acme.test"], "ops-outage-0")
    lb.wait_continuity_state("acme.test", "outage")
    mail(lb, ["bob@acme.test"], "ops-outage-1")
    wait_for(lambda: totals(get(ann, "stats", domain="acme.test", hours=1))["diverted"] == before["diverted"] + 2,
             what="two diverted counted")
    (row,) = get(ann, "continuity", domain="acme.test")
    assert row["state"] == "outage" and row["held"] >= 2 and row["waiting"] >= 2, row
    assert set(row) >= {"domain", "state", "since", "cause", "held", "waiting", "redelivered", "deleted"}
    events = get(ann, "events", domain="acme.test", limit=5)
    assert events[0]["domain"] == "acme.test" and events[0]["state"] == "outage", events
    assert set(events[0]) >= {"id", "domain", "at", "state", "cause"}

    # Recovery: the probe passes, the drain re-delivers both, the domain is normal again.
    sinks["a"].set_mode("accept")
    lb.wait_continuity_state("acme.test", "normal", timeout=30)
    wait_for(lambda: arrived(sinks["a"], "ops-outage-0") and arrived(sinks["a"], "ops-outage-1"),
             what="both re-delivered")
    after = totals(get(ann, "stats", domain="acme.test", hours=1))
    assert after["accepted"] == before["accepted"] + 4
    assert after["delivered"] == before["delivered"] + 2
    assert after["diverted"] == before["diverted"] + 2
    assert after["redelivered"] == before["redelivered"] + 2
    assert after["bounced"] == before["bounced"]
    # lifeboatctl reads the same counters through the same view.
    assert ctl_stats(lb, "acme.test") == after
    states = [e["state"] for e in get(ann, "events", domain="acme.test")]
    assert states[:3] == ["normal", "recovering", "outage"], states

    # The customer's view sums its domains; the operator's sums everyone's.
    acme_all = totals(get(ann, "stats"))
    assert acme_all["accepted"] >= after["accepted"]
    oscar = login(lb, "oscar@ops.test")
    assert totals(get(oscar, "stats", customer="acme")) == acme_all
    assert totals(get(oscar, "stats"))["accepted"] >= acme_all["accepted"]
    assert [r["domain"] for r in get(ann, "continuity")] == ["acme.test", "other.test"]
    assert {r["domain"] for r in get(oscar, "continuity")} >= {"acme.test", "beta.test", "ops.test"}
    assert lb.ctl_json("continuity", "status", "acme.test") == get(oscar, "continuity", domain="acme.test")


def test_dashboard_parameters(lb):
    ann = login(lb, "ann@acme.test")
    view = get(ann, "stats")
    assert view["hours"] == 24 and view["domain"] is None
    assert get(ann, "stats", hours=48)["hours"] == 48
    for bad in ("0", "49", "x", "-1", "1.5"):
        r = ann.request("GET", f"/api/v1/admin/stats?hours={bad}")
        assert r.status == 400 and "hours" in r.json["error"], (bad, r.status, r.body)
    for bad in ("0", "1001", "ten"):
        assert ann.request("GET", f"/api/v1/admin/events?limit={bad}").status == 400
    assert lb.ctl("continuity", "stats", "--hours", "49").returncode == 2
    assert lb.ctl("continuity", "stats", "nosuch.test").returncode == 1


# --------------------------------------------------------------------------- the queue


def test_hold_keeps_a_message_until_release(lb, sinks):
    ann = login(lb, "ann@acme.test")
    sinks["o"].set_mode("rcpt4xx")
    qid = mail(lb, ["dora@other.test"], "ops-held")
    deferred(lb, qid)
    assert totals(get(ann, "stats", domain="other.test", hours=1))["deferred"] >= 1

    lb.ctl_ok("queue", "hold", qid)
    entry = queued(lb, qid)
    assert entry["held"] is True and entry["recipients"] == ["dora@other.test"], entry
    assert set(entry) >= {"id", "sender", "recipients", "attempts", "next_attempt", "last_reply", "held"}
    assert "451" in entry["last_reply"]
    (api_entry,) = [m for m in get(ann, "queue") if m["id"] == qid]
    assert api_entry == entry  # the API and lifeboatctl give the same entry

    # The server takes mail again and the queue is flushed: a later message goes, the held one stays.
    sinks["o"].set_mode("accept")
    post(ann, "queue/flush", {"domain": "other.test"})
    mail(lb, ["erin@other.test"], "ops-after-hold")
    wait_for(lambda: arrived(sinks["o"], "ops-after-hold"), what="the later message delivered")
    lb.ctl_ok("queue", "flush")
    mail(lb, ["erin@other.test"], "ops-after-hold-2")
    wait_for(lambda: arrived(sinks["o"], "ops-after-hold-2"), what="another later message delivered")
    assert not arrived(sinks["o"], "ops-held")
    assert queued(lb, qid)["held"] is True

    # Released through the API: delivered at once (the release kicks the runner).
    r = post(ann, f"queue/{qid.lower()}/release")
    assert r == {"id": qid, "held": False, "changed": 1}, r
    wait_for(lambda: arrived(sinks["o"], "ops-held"), what="the released message delivered")
    lb.wait_queue_empty()
    entries = get(ann, "audit")["entries"]
    assert any(e["action"] == "queue.release" and e["target"] == f"queue:{qid}" and e["actor"] == "ann@acme.test"
               for e in entries), entries


def test_flush_of_a_domain_flushes_only_that_domain(lb, sinks):
    sinks["o"].set_mode("rcpt4xx")
    sinks["b"].set_mode("rcpt4xx")
    q_other = mail(lb, ["fred@other.test"], "ops-flush-other")
    q_beta = mail(lb, ["gus@beta.test"], "ops-flush-beta")
    deferred(lb, q_other)
    deferred(lb, q_beta)
    sinks["o"].set_mode("accept")
    sinks["b"].set_mode("accept")

    assert "1 recipient(s) of other.test" in lb.ctl_ok("queue", "flush", "other.test").stdout
    wait_for(lambda: arrived(sinks["o"], "ops-flush-other"), what="other.test's message delivered")
    wait_for(lambda: queued(lb, q_other) is None, what="other.test's message gone from the queue")
    entry = queued(lb, q_beta)
    assert entry and not arrived(sinks["b"], "ops-flush-beta"), entry  # not due for an hour

    # acme's admin cannot flush beta's domain; beta's admin can.
    ann, gina = login(lb, "ann@acme.test"), login(lb, "gina@beta.test")
    assert post(ann, "queue/flush", {"domain": "beta.test"}, status=404)["code"] == "not_found"
    assert post(ann, "queue/flush", {"domain": 7}, status=400)
    assert post(ann, "queue/flush", {"what": "ever"}, status=400)
    assert post(gina, "queue/flush", {"domain": "beta.test"}) == {"domain": "beta.test", "flushed": 1}
    wait_for(lambda: arrived(sinks["b"], "ops-flush-beta"), what="beta's message delivered")


def test_another_customers_message_is_not_there(lb, sinks):
    sinks["o"].set_mode("rcpt4xx")
    sinks["b"].set_mode("rcpt4xx")
    q_beta = mail(lb, ["hal@beta.test"], "ops-beta-only")
    q_both = mail(lb, ["ida@other.test", "jay@beta.test"], "ops-both")
    deferred(lb, q_beta)
    deferred(lb, q_both)
    ann, gina, oscar = login(lb, "ann@acme.test"), login(lb, "gina@beta.test"), login(lb, "oscar@ops.test")

    # acme's admin never sees beta's message, and every action on it answers 404.
    ann_queue = {m["id"]: m for m in get(ann, "queue")}
    assert q_beta not in ann_queue
    assert ann_queue[q_both]["recipients"] == ["ida@other.test"]  # its own copy only
    for method, path in (("POST", f"queue/{q_beta}/hold"), ("POST", f"queue/{q_beta}/release"),
                         ("DELETE", f"queue/{q_beta}"), ("POST", "queue/NOT-A-QUEUE-ID/hold"),
                         ("DELETE", "queue/0000000000000001")):
        assert post(ann, path, method=method, status=404)["code"] == "not_found", (method, path)
    for path in ("continuity", "events", "stats"):
        assert get(ann, path, status=404, domain="beta.test")["code"] == "not_found"
    assert get(ann, "queue", status=404, customer="beta")["code"] == "not_found"
    gina_queue = {m["id"]: m for m in get(gina, "queue")}
    assert gina_queue[q_both]["recipients"] == ["jay@beta.test"]
    assert q_beta in gina_queue and all(r.endswith("@beta.test") for m in gina_queue.values()
                                        for r in m["recipients"])
    assert {r["domain"] for r in get(gina, "continuity")} == {"beta.test"}
    assert all(e["domain"] == "beta.test" for e in get(gina, "events"))

    # beta's admin holds and deletes its copy of the shared message; acme's copy stays queued.
    assert post(gina, f"queue/{q_both}/hold") == {"id": q_both, "held": True, "changed": 1}
    assert {m["id"]: m for m in get(ann, "queue")}[q_both]["held"] is False
    assert post(gina, f"queue/{q_both}", method="DELETE") == {"id": q_both, "deleted": True}
    entry = queued(lb, q_both)
    assert entry["recipients"] == ["ida@other.test"], entry
    assert q_both not in {m["id"] for m in get(gina, "queue")}

    # The operator sees everything, or one customer with ?customer=.
    assert {q_beta, q_both} <= {m["id"] for m in get(oscar, "queue")}
    assert {m["id"] for m in get(oscar, "queue", customer="beta")} == set(gina_queue) - {q_both}
    assert post(oscar, f"queue/{q_beta}", method="DELETE")["deleted"] is True
    assert queued(lb, q_beta) is None
    audit = get(gina, "audit")["entries"]
    assert [e["action"] for e in audit if e["target"] == f"queue:{q_both}"] == ["queue.delete", "queue.hold"]
    assert any(e["action"] == "queue.delete" and e["target"] == f"queue:{q_beta}" for e in audit), audit

    # lifeboatctl's delete: the whole message.
    lb.ctl_ok("queue", "delete", q_both)
    assert queued(lb, q_both) is None
    assert lb.ctl("queue", "hold", q_both).returncode == 1
    assert lb.ctl("queue", "release", "nonsense").returncode == 1
