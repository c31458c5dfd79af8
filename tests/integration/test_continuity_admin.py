"""
Continuity administration through lifeboatctl (SPEC.md "Administration", issue 3): the
subscription rules (a minimum term of 12 calendar months, no cancelling inside it), continuity
refused without an active subscription, `continuity status --json` in SPEC's shape, and the two
operator extensions (`continuity events`, `mailbox list`). Exit codes: 0 done, 1 refused (one
clear line on stderr), 2 bad usage. The daemon runs meanwhile; lifeboatctl works on the store.
"""
import calendar
import datetime
import json
import re
import time

import pytest

import lbtest

SPEC_STATUS_KEYS = {"domain", "state", "since", "cause", "held", "waiting", "redelivered", "deleted"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def add_months(epoch, months):
    """epoch plus calendar months in UTC, the day clamped to the end of a shorter month."""
    t = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    month = t.month - 1 + months
    year, month = t.year + month // 12, month % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return int(t.replace(year=year, month=month, day=day).timestamp())


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def refused(lb, *args, code=1):
    """Runs a command that must be refused with the given exit code and one stderr line
    (for code 1; usage errors add the usage line). Returns the stderr text."""
    cp = lb.ctl(*args)
    assert cp.returncode == code, (
        f"lifeboatctl {' '.join(args)}: expected exit {code}, got {cp.returncode}\n"
        f"stdout: {cp.stdout!r}\nstderr: {cp.stderr!r}")
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert lines, f"lifeboatctl {' '.join(args)}: refused without saying why"
    if code == 1:
        assert len(lines) == 1, f"lifeboatctl {' '.join(args)}: want one clear line on stderr, got {cp.stderr!r}"
    return cp.stderr


def customer(lb, name):
    rows = [c for c in lb.ctl_json("customer", "list") if c["name"] == name]
    assert len(rows) == 1, rows
    return rows[0]


def domain(lb, name):
    rows = [d for d in lb.ctl_json("domain", "list") if d["name"] == name]
    assert len(rows) == 1, rows
    return rows[0]


def test_subscription_minimum_term(lifeboat):
    lb = lifeboat
    lb.add_customer("acme")
    assert customer(lb, "acme")["subscription"] == "none"

    # Fewer than 12 months is a refused value (1); a value that is no number is bad usage (2).
    for months in ("11", "0", "-12"):
        err = refused(lb, "subscription", "start", "acme", "--months", months)
        assert "12 months" in err, err
    refused(lb, "subscription", "start", "acme", "--months", "twelve", code=2)
    refused(lb, "subscription", "start", "acme", "--months", "12.5", code=2)
    refused(lb, "subscription", "start", "acme", "--months", code=2)
    refused(lb, "subscription", "start", code=2)
    refused(lb, "subscription", "start", "nosuch")
    assert customer(lb, "acme")["subscription"] == "none"

    before = int(time.time())
    out = lb.ctl_ok("subscription", "start", "acme").stdout
    after = int(time.time())
    assert "continuity and archive begin now" in out, out
    c = customer(lb, "acme")
    assert c["subscription"] == "active"
    assert before <= c["subscription_start"] <= after
    # The default term: 12 calendar months from now.
    assert c["subscription_end"] == add_months(c["subscription_start"], 12), c
    assert c["subscription_cancelled"] is None
    assert iso(c["subscription_end"]) in out, out
    assert "subscription active" in lb.ctl_ok("customer", "list").stdout

    # Started already: refused, and nothing changes.
    err = refused(lb, "subscription", "start", "acme", "--months", "24")
    assert "already" in err, err
    assert customer(lb, "acme") == c

    # A longer term counts calendar months too.
    lb.add_customer("globex")
    lb.ctl_ok("subscription", "start", "globex", "--months", "30")
    g = customer(lb, "globex")
    assert g["subscription_end"] == add_months(g["subscription_start"], 30), g


def test_subscription_cancel_refused_inside_term(lifeboat):
    lb = lifeboat
    lb.add_customer("acme")
    err = refused(lb, "subscription", "cancel", "acme")
    assert "no active subscription" in err, err
    refused(lb, "subscription", "cancel", "nosuch")
    refused(lb, "subscription", "cancel", code=2)

    lb.ctl_ok("subscription", "start", "acme", "--months", "12")
    c = customer(lb, "acme")
    err = refused(lb, "subscription", "cancel", "acme")
    # A clear message naming the date it can be cancelled from.
    assert "minimum term" in err, err
    assert iso(c["subscription_end"]) in err, err
    assert customer(lb, "acme")["subscription"] == "active"


def test_continuity_enable_needs_a_subscription(lifeboat):
    lb = lifeboat
    lb.add_domain("acme.test", "acme", "127.0.0.1:9")
    err = refused(lb, "continuity", "enable", "acme.test")
    assert "subscription" in err and "acme" in err, err
    err = refused(lb, "continuity", "enable", "acme.test", "--outgoing-to-own-server")
    assert "subscription" in err, err
    assert domain(lb, "acme.test")["continuity"] is False
    [st] = lb.ctl_json("continuity", "status", "acme.test")
    assert st["continuity"] is False and st["continuity_since"] is None

    lb.ctl_ok("subscription", "start", "acme")
    before = int(time.time())
    out = lb.ctl_ok("continuity", "enable", "acme.test").stdout
    after = int(time.time())
    assert "continuity enabled for acme.test" in out, out
    d = domain(lb, "acme.test")
    assert d["continuity"] is True and d["outgoing_to_own_server"] is False
    [st] = lb.ctl_json("continuity", "status", "acme.test")
    assert st["continuity"] is True
    since = st["continuity_since"]
    assert ISO_UTC.match(since), st
    assert iso(before) <= since <= iso(after), (since, before, after)

    # Enabling again only changes the flag: continuity_since stays (not retroactive either way).
    time.sleep(1.1)
    out = lb.ctl_ok("continuity", "enable", "ACME.test", "--outgoing-to-own-server").stdout
    assert "already" in out, out
    [st] = lb.ctl_json("continuity", "status", "acme.test")
    assert st["continuity_since"] == since and st["outgoing_to_own_server"] is True

    out = lb.ctl_ok("continuity", "disable", "acme.test").stdout
    assert "disabled" in out, out
    assert domain(lb, "acme.test")["continuity"] is False
    assert "not enabled" in lb.ctl_ok("continuity", "disable", "acme.test").stdout
    refused(lb, "continuity", "disable", "nosuch.test")
    refused(lb, "continuity", "enable", "nosuch.test")
    refused(lb, "continuity", "enable", code=2)
    refused(lb, "continuity", "enable", "acme.test", "--outgoing", code=2)


def test_status_json_shape_on_a_fresh_domain(lifeboat):
    lb = lifeboat
    assert lb.ctl_json("continuity", "status") == []
    lb.add_domain("acme.test", "acme", "127.0.0.1:9")
    lb.add_domain("other.test", "acme", "127.0.0.1:9")
    rows = lb.ctl_json("continuity", "status")
    assert isinstance(rows, list) and [r["domain"] for r in rows] == ["acme.test", "other.test"]
    for row in rows:
        assert SPEC_STATUS_KEYS <= set(row), row
        assert row["state"] == "normal"
        assert (row["held"], row["waiting"], row["redelivered"], row["deleted"]) == (0, 0, 0, 0)
        assert all(isinstance(row[k], int) and not isinstance(row[k], bool)
                   for k in ("held", "waiting", "redelivered", "deleted"))
        assert isinstance(row["cause"], str) and row["cause"] == ""
        # since: ISO 8601 UTC, and the same instant as since_epoch (normal since it was added)
        assert ISO_UTC.match(row["since"]), row
        assert row["since"] == iso(row["since_epoch"])
        assert abs(row["since_epoch"] - time.time()) < 120

    # One domain; --json before the noun works the same; an unknown domain is refused.
    one = lb.ctl_json("continuity", "status", "Acme.Test")
    assert len(one) == 1 and one[0]["domain"] == "acme.test"
    cp = lb.ctl("--json", "continuity", "status", "acme.test")
    assert cp.returncode == 0 and json.loads(cp.stdout) == one
    refused(lb, "continuity", "status", "nosuch.test")
    refused(lb, "continuity", "status", "a.test", "b.test", code=2)

    # The human table: a header and one line per domain.
    lines = lb.ctl_ok("continuity", "status").stdout.splitlines()
    assert lines[0].split() == ["DOMAIN", "CONTINUITY", "STATE", "SINCE", "HELD", "WAITING", "REDELIVERED",
                                "DELETED", "CAUSE"]
    assert lines[1].split()[:3] == ["acme.test", "off", "normal"]
    assert lines[1].split()[4:8] == ["0", "0", "0", "0"]
    assert len(lines) == 3


def test_events_and_mailbox_listings_when_empty(lifeboat):
    lb = lifeboat
    lb.add_domain("acme.test", "acme", "127.0.0.1:9")
    lb.add_user("bob@acme.test")
    lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
    assert lb.ctl_json("continuity", "events") == []
    assert lb.ctl_json("continuity", "events", "acme.test", "--limit", "5") == []
    assert "no continuity events" in lb.ctl_ok("continuity", "events").stdout
    refused(lb, "continuity", "events", "nosuch.test")
    refused(lb, "continuity", "events", "--limit", "0", code=2)

    assert lb.ctl_json("mailbox", "list", "bob@acme.test") == []
    assert lb.ctl_json("mailbox", "list", "sales@acme.test", "--folder", "INBOX") == []  # an alias: its user's
    assert "empty" in lb.ctl_ok("mailbox", "list", "bob@acme.test", "--folder", "trash").stdout
    refused(lb, "mailbox", "list", "nobody@acme.test")
    refused(lb, "mailbox", "list", "bob@acme.test", "--folder", "Junk", code=2)
    refused(lb, "mailbox", "list", code=2)


@pytest.mark.parametrize("args", [
    ("subscription",),
    ("subscription", "renew", "acme"),
    ("continuity",),
    ("continuity", "pause", "acme.test"),
    ("mailbox", "show", "bob@acme.test"),
])
def test_unknown_verbs_are_usage_errors(lifeboat, args):
    refused(lifeboat, *args, code=2)
