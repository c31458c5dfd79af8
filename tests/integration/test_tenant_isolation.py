"""
One customer never acts as, nor reads the mail of, another (issue 10, findings 1 and 5).

Finding 1: with `domain set acme.test --outbound-from 127.0.0.1/32`, a client at 127.0.0.1 sent
`MAIL FROM:<carol@beta.test>` to an outside address: 250, relayed, and archived as beta's outbound
mail. Now the client relays as the customer whose network matched: another customer's domain in
MAIL FROM gets `550 5.7.1` at RCPT, another's address in the From header `550 5.7.1` after the
data, and what it does relay is filed in its own customer's archive only.

Finding 7 (part): the reset request is answered before any work on the address is done.

Finding 5: a password reset mail to an alternate address at another customer's domain was archived
as that customer's inbound mail, so their admin could read the token and take the account over.
System mail that carries a credential is never archived.

One daemon for the module: acme (acme.test, its server's network 127.0.0.1/32) and beta
(beta.test), both subscribed; beta.test is routed to the sink and the internet (outbound_relay) is
the sink too, so every message that leaves is seen there.
"""
import json
import smtplib
import time
import urllib.request

import pytest

import lbtest
from lbtest import wait_for


@pytest.fixture(scope="module")
def sink():
    s = lbtest.Sink()
    s.open()
    yield s
    s.close()


@pytest.fixture(scope="module")
def lb(tmp_path_factory, sink):
    lb = lbtest.Lifeboat(tmp_path_factory.mktemp("tenants") / "lifeboat",
                         {"outbound_relay": sink.route, "web_url": "https://mail.example.net/"})
    lb.start()
    lb.add_domain("acme.test", "acme", sink.route, outbound_from="127.0.0.1/32")
    lb.add_domain("beta.test", "beta", sink.route)
    for customer in ("acme", "beta"):
        lb.ctl_ok("subscription", "start", customer)
    lb.add_user("bob@acme.test")
    lb.add_user("carol@beta.test")
    yield lb
    problems = lbtest.finish([lb])
    assert not problems, "\n\n".join(problems)


def archive(lb, customer):
    """The archive entries a customer keeps, as (direction, envelope sender, [recipients]), read from
    the store itself: whatever a search or a filter would show, this is what is there."""
    rows = lbtest.sql(lb, "SELECT a.id, a.direction, a.sender FROM archive a JOIN customers c "
                          "ON c.id = a.customer_id WHERE c.name = ? ORDER BY a.id", (customer,))
    out = []
    for entry_id, direction, sender in rows:
        rcpts = [r[0] for r in lbtest.sql(lb, "SELECT addr FROM archive_addrs WHERE entry_id = ? AND kind = 1 "
                                              "ORDER BY addr", (entry_id,))]
        out.append(("outbound" if direction == 1 else "inbound", sender, rcpts))
    return out


def arrived(sink, subject):
    return [m for m in sink.messages if f"Subject: {subject}".encode() in m.data]


def session(lb):
    s = smtplib.SMTP("127.0.0.1", lb.smtp_port, local_hostname="mail.acme.test", timeout=30)
    s.ehlo()
    return s


def test_other_customers_envelope_sender_refused(lb, sink):
    with session(lb) as s:
        assert s.mail("carol@beta.test")[0] == 250
        code, text = s.rcpt("someone@example.net")
        assert code == 550 and text.startswith(b"5.7.1 <carol@beta.test>: Sender address rejected"), text
        # A sender nobody hosts is not acme's either.
        s.rset()
        assert s.mail("ceo@example.org")[0] == 250
        assert s.rcpt("someone@example.net")[0] == 550
    assert "Sender address rejected: not owned by the relaying customer" in lb.log()
    assert archive(lb, "beta") == []


def test_other_customers_from_header_refused(lb, sink):
    msg = (b"From: Carol <carol@beta.test>\r\nTo: someone@example.net\r\nSubject: spoofed-from\r\n\r\n"
           b"I am not Carol.\r\n")
    with session(lb) as s:
        assert s.mail("bob@acme.test")[0] == 250
        assert s.rcpt("someone@example.net")[0] == 250
        code, text = s.data(msg)
        assert code == 550 and b"5.7.1" in text, text
    assert archive(lb, "beta") == []
    assert not arrived(sink, "spoofed-from")


def test_own_mail_relayed_and_filed_for_its_customer_only(lb, sink):
    msg = (b"From: Bob <bob@acme.test>\r\nTo: someone@example.net, carol@beta.test\r\n"
           b"Subject: own-mail\r\n\r\nHello.\r\n")
    lbtest.submit(lb.smtp_port, "bob@acme.test", ["someone@example.net"], msg)
    bounce = (b"From: MAILER-DAEMON@mx.acme.test\r\nTo: someone@example.net\r\n"
              b"Subject: own-bounce\r\n\r\nUndeliverable.\r\n")
    lbtest.submit(lb.smtp_port, "", ["someone@example.net"], bounce)
    wait_for(lambda: arrived(sink, "own-mail") and arrived(sink, "own-bounce"), what="both relayed")
    assert archive(lb, "acme") == [("outbound", "bob@acme.test", ["someone@example.net"]),
                                   ("outbound", "", ["someone@example.net"])]
    assert archive(lb, "beta") == []


def reset_request(lb, address):
    req = urllib.request.Request(f"http://127.0.0.1:{lb.http_port}/api/v1/password-reset/request",
                                 data=json.dumps({"email": address}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def test_reset_mail_to_another_customers_address_not_archived(lb, sink):
    lb.ctl_ok("user", "set", "bob@acme.test", "--alt-email", "bob.private@beta.test")
    assert reset_request(lb, "bob@acme.test")[0] == 202
    mails = wait_for(lambda: [m for m in sink.messages if "bob.private@beta.test" in m.rcpt_tos],
                     what="the reset mail at beta's server")
    assert b"#reset=" in mails[0].data  # it did go out, with its link
    lb.wait_queue_empty()
    # Neither beta's admin (the recipient's customer) nor anyone else can read it in the archive.
    assert archive(lb, "beta") == []
    assert not [e for e in archive(lb, "acme") if "bob.private@beta.test" in e[2]]


def test_reset_answer_comes_before_any_work(lb, sink):
    """The reset request is answered before the address is looked at (issue 10, finding 7): the
    review timed the old handler, which composed and queued the mail first, and could tell who has
    an alternate address. Here the store is held locked by another process while two requests come,
    one for a user with an alternate address and one for nobody: both answers come at once; the mail
    goes out once the lock is gone."""
    lb.add_user("dora@acme.test")
    lb.ctl_ok("user", "set", "dora@acme.test", "--alt-email", "dora.home@example.net")
    with lbtest.store_locked(lb):
        for who in ("dora@acme.test", "nobody@acme.test"):
            t0 = time.monotonic()
            status, _ = reset_request(lb, who)
            assert status == 202
            assert time.monotonic() - t0 < 1.0, f"the answer for {who} waited for the store"
        time.sleep(0.5)
    wait_for(lambda: [m for m in sink.messages if "dora.home@example.net" in m.rcpt_tos],
             what="the reset mail once the store is free again")
