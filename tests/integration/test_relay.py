"""
Issue 2, done-when 4: relay attempts to non-hosted domains from anywhere but
`--outbound-from` are refused (a matrix proves it); unknown users with recipient-check on get
`550 5.1.1`; aliases and case-insensitive domains match.

Client addresses: the whole of 127.0.0.0/8 is loopback on Linux, so a client can connect
from 127.0.0.1 or 127.0.0.2 and lifeboatd sees two different client IPs.
"""
import pytest

import lbtest
from lbtest import RawSMTP, make_message, new_msgid, wait_for

INSIDE = "127.0.0.2"   # in acme.test's --outbound-from
OUTSIDE = "127.0.0.1"  # in nobody's


@pytest.fixture
def hosted(make_lifeboat, sink, sink2):
    """acme.test (recipient-check on, user bob, alias sales) and other.test (another
    customer, recipient-check off) routed to sink; mail to the internet goes to sink2
    through outbound_relay so a relay that should not happen would be seen."""
    lb = make_lifeboat(outbound_relay=sink2.route)
    lb.start()
    lb.add_domain("acme.test", "acme", sink.route, recipient_check=True, outbound_from=f"{INSIDE}/32")
    lb.add_domain("other.test", "other", sink.route, recipient_check=False, outbound_from="10.9.9.0/24")
    lb.add_user("bob@acme.test")
    lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
    return lb


def rcpt_reply(lb, source, sender, rcpt):
    with RawSMTP(lb.smtp_port, source=source) as c:
        c.ehlo()
        code, text = c.cmd(f"MAIL FROM:<{sender}>")
        assert code == 250, text
        code, text = c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("QUIT")
        return code, text


def run_matrix(lb, cases):
    """cases: (source, sender, rcpt, expected code, expected enhanced code or None).
    Returns the rows that did not match, as a readable table."""
    bad = []
    for source, sender, rcpt, want, want_enh in cases:
        code, text = rcpt_reply(lb, source, sender, rcpt)
        ok = code == want and (want_enh is None or f" {want_enh}" in text.split("\n")[0])
        if not ok:
            bad.append(f"from {source} MAIL <{sender}> RCPT <{rcpt}>: expected {want} {want_enh or ''}, got {text!r}")
    return bad


def test_relay_matrix(hosted, sink, sink2):
    lb = hosted
    cases = []
    for source in (OUTSIDE, INSIDE):
        for sender in ("bob@acme.test", "someone@example.net"):
            cases += [
                (source, sender, "bob@acme.test", 250, None),         # hosted, recipient known
                (source, sender, "anyone@other.test", 250, None),     # hosted by another customer
                (source, sender, "Anyone@OTHER.Test", 250, None),
            ]
    # Not hosted: only a client inside an --outbound-from list may relay.
    for sender in ("bob@acme.test", "someone@example.net", ""):
        cases.append((OUTSIDE, sender, "someone@example.com", 554, "5.7.1"))
        cases.append((OUTSIDE, sender, "someone@EXAMPLE.com", 554, "5.7.1"))
    cases.append((INSIDE, "bob@acme.test", "someone@example.com", 250, None))
    bad = run_matrix(lb, cases)
    assert not bad, "relay matrix:\n" + "\n".join(bad)

    # The allowed relay really goes out (to outbound_relay); refused ones never do.
    msgid = new_msgid("relay-ok")
    _m, rcodes, dcode = lbtest.send_raw_message(lb.smtp_port, "bob@acme.test", ["someone@example.com"],
                                                lbtest.dot_stuff(make_message(msgid, sender="bob@acme.test",
                                                                              to="someone@example.com")),
                                                source=INSIDE)
    assert rcodes == [250] and dcode == 250
    got = sink2.wait_messages(1)
    assert [r.lower() for r in got[0].rcpt_tos] == ["someone@example.com"]
    _m, rcodes, dcode = lbtest.send_raw_message(lb.smtp_port, "bob@acme.test", ["someone@example.com"],
                                                lbtest.dot_stuff(make_message(new_msgid("relay-no"))),
                                                source=OUTSIDE)
    assert rcodes == [554] and dcode is None
    lb.wait_queue_empty()
    assert len(sink2.messages) == 1


def test_relay_follows_outbound_from_changes(hosted):
    lb = hosted
    # Narrow acme.test's list to a network the client is not in: refused.
    lb.ctl_ok("domain", "set", "acme.test", "--outbound-from", "10.9.9.0/24")
    wait_for(lambda: rcpt_reply(lb, INSIDE, "bob@acme.test", "someone@example.com")[0] == 554, timeout=10,
             what="relay from 127.0.0.2 refused after --outbound-from 10.9.9.0/24")
    code, text = rcpt_reply(lb, INSIDE, "bob@acme.test", "someone@example.com")
    assert code == 554 and " 5.7.1" in text, text
    # Widen it to all of loopback: both client addresses may relay.
    lb.ctl_ok("domain", "set", "acme.test", "--outbound-from", "127.0.0.0/8")
    wait_for(lambda: rcpt_reply(lb, OUTSIDE, "bob@acme.test", "someone@example.com")[0] == 250, timeout=10,
             what="relay from 127.0.0.1 allowed after --outbound-from 127.0.0.0/8")
    assert rcpt_reply(lb, INSIDE, "bob@acme.test", "someone@example.com")[0] == 250


@pytest.mark.parametrize("rcpt", [
    "@acme.test:someone@example.com",     # source route: the real target is example.com
    "@other.test,@acme.test:someone@example.com",
    "someone%example.com@acme.test",       # percent hack: a local part at acme.test, unknown there
    "someone@example.com@acme.test",
    "\"someone@example.com\"@acme.test",
    "someone@example.com.",
    "someone@[192.0.2.1]",
    "someone@[127.0.0.1]",
    "someone",
    "postmaster@example.com",
])
def test_open_relay_tricks_refused(hosted, sink2, rcpt):
    code, text = rcpt_reply(hosted, OUTSIDE, "someone@example.net", rcpt)
    assert 500 <= code <= 599, f"RCPT TO:<{rcpt}> from a client outside --outbound-from: {text!r}"


def test_recipient_check(hosted, sink):
    lb = hosted
    cases = [
        (OUTSIDE, "someone@example.net", "nobody@acme.test", 550, "5.1.1"),
        (OUTSIDE, "someone@example.net", "NOBODY@ACME.TEST", 550, "5.1.1"),
        (OUTSIDE, "someone@example.net", "bob@acme.test", 250, None),
        (OUTSIDE, "someone@example.net", "Bob@ACME.test", 250, None),   # case-insensitive
        (OUTSIDE, "someone@example.net", "BOB@acme.TEST", 250, None),
        (OUTSIDE, "someone@example.net", "sales@acme.test", 250, None),  # alias
        (OUTSIDE, "someone@example.net", "Sales@Acme.Test", 250, None),
        (OUTSIDE, "someone@example.net", "whoever@other.test", 250, None),  # recipient-check off
        (OUTSIDE, "", "bob@acme.test", 250, None),  # null sender (bounces) accepted too
    ]
    bad = run_matrix(lb, cases)
    assert not bad, "recipient check:\n" + "\n".join(bad)

    # Mail to the mixed-case address and to the alias is delivered to the customer's server.
    msgid = new_msgid("case")
    _m, rcodes, dcode = lbtest.send_raw_message(lb.smtp_port, "someone@example.net",
                                                ["Bob@ACME.test", "sales@acme.test", "nobody@acme.test"],
                                                lbtest.dot_stuff(make_message(msgid)))
    assert rcodes == [250, 250, 550] and dcode == 250
    wait_for(lambda: sink.with_message_id(msgid), timeout=20, what="delivery to the customer's server")
    lb.wait_queue_empty()
    delivered = sorted(r.lower() for m in sink.with_message_id(msgid) for r in m.rcpt_tos)
    # The alias may be delivered as itself or as bob (the customer's server knows both).
    assert "bob@acme.test" in delivered, delivered
    assert "nobody@acme.test" not in delivered, delivered


def test_recipient_check_follows_directory_changes(hosted):
    lb = hosted
    lb.ctl_ok("domain", "set", "acme.test", "--recipient-check", "off")
    wait_for(lambda: rcpt_reply(lb, OUTSIDE, "x@example.net", "nobody@acme.test")[0] == 250, timeout=10,
             what="unknown user accepted with recipient-check off")
    lb.ctl_ok("domain", "set", "acme.test", "--recipient-check", "on")
    wait_for(lambda: rcpt_reply(lb, OUTSIDE, "x@example.net", "nobody@acme.test")[0] == 550, timeout=10,
             what="unknown user refused again with recipient-check on")
    lb.ctl_ok("alias", "del", "sales@acme.test")
    wait_for(lambda: rcpt_reply(lb, OUTSIDE, "x@example.net", "sales@acme.test")[0] == 550, timeout=10,
             what="deleted alias refused")
    lb.ctl_ok("user", "del", "bob@acme.test")
    wait_for(lambda: rcpt_reply(lb, OUTSIDE, "x@example.net", "bob@acme.test")[0] == 550, timeout=10,
             what="deleted user refused")
