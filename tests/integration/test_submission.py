"""
The submission port (issue 4, item 5; SPEC.md "SMTP behaviour": AUTH PLAIN/LOGIN on submission
only, after STARTTLS): users keep sending from their own mail clients during an outage.

The daemon runs with submission_listen on a free port, a self-signed certificate
(test_smtp_basics.tls_files) and outbound_relay pointing at the sink, which stands for the internet.
acme.test is routed to a closed port with continuity on, so its own users' mail is diverted into
their mailboxes, as in an outage. Users and passwords are the webmail tests' (test_http_api), so the
webmail's Sent folder and login lockout can be looked at through the HTTP API.
"""
import base64
import email
import email.policy
import http.client
import json
import re
import select
import smtplib
import socket
import subprocess

import pytest

import lbtest
from lbtest import wait_for
from test_dkim import dkim_key, dkim_verify, dns  # noqa: F401  (fixtures used by name)
from test_http_api import PASSWORD
from test_smtp_basics import client_tls_context, tls_files  # noqa: F401

# directory_lockout_default (src/directory/lockout.c): failures per account in the window.
ACCOUNT_MAX = 5


@pytest.fixture
def sub(make_lifeboat, sink, tls_files):  # noqa: F811
    port = lbtest.free_port()
    lb = make_lifeboat(outbound_relay=sink.route, tls_cert_file=tls_files[0], tls_key_file=tls_files[1],
                       submission_listen=f"127.0.0.1:{port}", dr_probe_interval="1s", delivery_timeout="3s")
    lb.submission_port = port
    lb.start()
    dead = f"127.0.0.1:{lbtest.free_port()}"
    lb.add_domain("acme.test", "acme", dead)
    lb.add_user("bob@acme.test", name="Bob")
    lb.add_user("carol@acme.test")
    lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
    lb.enable_continuity("acme.test", "acme")
    return lb


class Client:
    """The webmail API over HTTPS (with a certificate configured the HTTP listener speaks TLS too):
    login keeps the session cookie and the CSRF token, like test_http_api.Client."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=client_tls_context())
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        resp.json = json.loads(payload) if payload and resp.getheader("Content-Type", "").startswith(
            "application/json") else None
        return resp

    def login(self, email_addr, password=PASSWORD):
        r = self.request("POST", "/api/v1/login", {"email": email_addr, "password": password})
        if r.status == 200:
            self.cookie = r.getheader("Set-Cookie").split(";", 1)[0]
            self.csrf = r.json["csrf"]
        return r


def tls_client(lb, port=None):
    """smtplib after EHLO, STARTTLS, EHLO."""
    c = smtplib.SMTP("127.0.0.1", port or lb.submission_port, local_hostname="client.example.org", timeout=30)
    c.ehlo()
    code, _ = c.starttls(context=client_tls_context())
    assert code == 220
    c.ehlo()
    return c


def plain_b64(user, password, authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def message(subject, sender="bob@acme.test", to="dave@example.net", extra=""):
    """A message as a mail client writes it, but without Date and Message-ID (the port adds them)."""
    return (f"From: Bob <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Hello from my own mail client.\r\n").encode()


def login(c, mech="PLAIN", user="bob@acme.test", password=PASSWORD):
    c.user, c.password = user, password
    authobject = {"PLAIN": c.auth_plain, "LOGIN": c.auth_login}[mech]
    return c.auth(mech, authobject)


# --------------------------------------------------------------------------- sending


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtplib_login_and_send_to_the_internet(sub, sink, mech):
    with tls_client(sub) as c:
        assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        code, text = login(c, mech)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        refused = c.sendmail("bob@acme.test", ["dave@example.net"], message(f"via {mech}"))
        assert refused == {}
    (d,) = sink.wait_messages(1, timeout=30)
    assert d.mail_from == "bob@acme.test" and d.rcpt_tos == ["dave@example.net"]
    received, rest = lbtest.strip_added_received(d.data)
    assert len(received) == 1 and b" with ESMTPSA id " in received[0], received
    assert PASSWORD.encode() not in d.data and b"bob" not in received[0].lower()
    msg = email.message_from_bytes(rest, policy=email.policy.default)
    assert msg["Subject"] == f"via {mech}" and msg["Date"]
    assert msg["Message-ID"].strip().endswith("@acme.test>")
    assert rest.endswith(message(f"via {mech}")), "the message itself must arrive unchanged"

    log = sub.log()
    m = re.search(r": ([0-9A-F]{16}): client=\[127\.0\.0\.1\], sasl_method=" + mech +
                  r", sasl_username=bob@acme\.test$", log, re.M)
    assert m, log[-3000:]
    assert f"{m.group(1)}: from=<bob@acme.test>, size=" in log
    assert PASSWORD not in log and plain_b64("bob@acme.test", PASSWORD) not in log


def test_plain_through_the_continuation(sub, sink):
    with tls_client(sub) as c:
        c.user, c.password = "Sales@ACME.test", PASSWORD  # an alias logs in as its user
        code, _ = c.auth("PLAIN", c.auth_plain, initial_response_ok=False)
        assert code == 235
        assert c.sendmail("sales@acme.test", ["dave@example.net"], message("alias", sender="sales@acme.test")) == {}
    (d,) = sink.wait_messages(1, timeout=30)
    assert d.mail_from == "sales@acme.test"


def test_swaks_tls_auth_login(sub, sink, tmp_path):
    cp = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{sub.submission_port}", "--tls", "--auth", "LOGIN",
         "--auth-user", "bob@acme.test", "--auth-password", PASSWORD, "--from", "bob@acme.test",
         "--to", "erin@example.net", "--header", "Subject: swaks over submission", "--helo", "swaks.example.org",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, f"swaks failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-2000:]}"
    assert "334 VXNlcm5hbWU6" in cp.stdout and "235 2.7.0" in cp.stdout
    (d,) = sink.wait_messages(1, timeout=30)
    assert d.rcpt_tos == ["erin@example.net"]
    assert email.message_from_bytes(d.data)["Subject"] == "swaks over submission"


def test_sent_copy_in_the_webmail(sub, sink):
    with tls_client(sub) as c:
        login(c)
        c.sendmail("bob@acme.test", ["dave@example.net"], message("keep a copy"))
    sink.wait_messages(1, timeout=30)
    web = Client(sub.http_port)
    assert web.login("bob@acme.test").status == 200
    sent = web.request("GET", "/api/v1/messages?folder=Sent").json
    assert sent["total"] == 1, sent
    assert sent["messages"][0]["subject"] == "keep a copy"
    view = web.request("GET", f"/api/v1/messages/{sent['messages'][0]['id']}").json
    assert "own mail client" in view["text"]
    other = Client(sub.http_port)
    assert other.login("carol@acme.test").status == 200
    assert other.request("GET", "/api/v1/messages?folder=Sent").json["total"] == 0


def test_hosted_recipient_in_outage_lands_in_the_mailbox(sub, sink):
    with tls_client(sub) as c:
        login(c)
        c.sendmail("bob@acme.test", ["carol@acme.test", "dave@example.net"],
                   message("lunch during the outage", to="carol@acme.test"))
    (out,) = sink.wait_messages(1, timeout=30)
    assert out.rcpt_tos == ["dave@example.net"]
    sub.wait_continuity_state("acme.test", "outage", timeout=20)
    entry = wait_for(lambda: next(iter(sub.mailbox("carol@acme.test")), None), timeout=20,
                     what="carol's copy in her mailbox")
    assert entry["folder"] == "INBOX", entry
    carol = Client(sub.http_port)
    assert carol.login("carol@acme.test").status == 200
    listing = carol.request("GET", "/api/v1/messages?folder=INBOX").json
    assert listing["total"] == 1 and listing["messages"][0]["subject"] == "lunch during the outage", listing
    assert "status=continuity" in sub.log()
    assert len(sink.messages) == 1


def test_submitted_mail_is_dkim_signed(sub, sink, dkim_key, dns):  # noqa: F811
    sub.ctl_ok("domain", "set", "acme.test", "--dkim-selector", "sel", "--dkim-key", str(dkim_key[0]))
    with tls_client(sub) as c:
        login(c)
        c.sendmail("bob@acme.test", ["dave@example.net"], message("signed"))
    (d,) = sink.wait_messages(1, timeout=30)
    _, rest = lbtest.strip_added_received(d.data)
    assert rest.startswith(b"DKIM-Signature: "), rest[:200]
    result, out = dkim_verify(d.data, dns)
    assert result == "pass", out
    assert "dkim=signed d=acme.test s=sel" in sub.log()


# --------------------------------------------------------------------------- AUTH rules


def test_no_auth_before_tls_nor_on_port_25(sub):
    with lbtest.RawSMTP(sub.submission_port) as c:
        ext = c.ehlo()
        assert "STARTTLS" in ext and not any(e.startswith("AUTH") for e in ext), ext
        code, text = c.cmd("AUTH PLAIN " + plain_b64("bob@acme.test", PASSWORD))
        assert (code, text) == (530, "530 5.7.0 Must issue a STARTTLS command first")
        code, text = c.cmd("MAIL FROM:<bob@acme.test>")
        assert (code, text) == (530, "530 5.7.0 Authentication required")
    with tls_client(sub, port=sub.smtp_port) as c:
        assert not c.has_extn("auth")
        code, _ = c.docmd("AUTH", "PLAIN " + plain_b64("bob@acme.test", PASSWORD))
        assert code == 503
    with tls_client(sub) as c:
        assert c.has_extn("auth")
        code, text = c.docmd("MAIL", "FROM:<bob@acme.test>")
        assert (code, text) == (530, b"5.7.0 Authentication required")
        code, _ = c.docmd("RCPT", "TO:<dave@example.net>")
        assert code == 503


def test_wrong_password_then_lockout_shared_with_the_webmail(sub):
    web = Client(sub.http_port)
    # Two failures on the webmail...
    for _ in range(2):
        assert web.login("bob@acme.test", "wrong password").status == 401
    # ... and the rest on the submission port, with both mechanisms.
    with tls_client(sub) as c:
        for i in range(ACCOUNT_MAX - 2):
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                login(c, "PLAIN" if i % 2 else "LOGIN", password=f"guess {i}")
            assert e.value.smtp_code == 535 and e.value.smtp_error == b"5.7.8 Authentication credentials invalid"
        # Locked: the right password is refused too, here and on the webmail.
        code, text = c.docmd("AUTH", "PLAIN " + plain_b64("bob@acme.test", PASSWORD))
        assert (code, text) == (454, b"4.7.0 Too many failed logins, try again later")
    assert web.login("bob@acme.test").status == 429
    # Another account is not locked.
    with tls_client(sub) as c:
        assert login(c, user="carol@acme.test")[0] == 235
    log = sub.log()
    assert log.count("warning: unknown[127.0.0.1]: SASL LOGIN authentication failed") == 2
    assert log.count("warning: unknown[127.0.0.1]: SASL PLAIN authentication failed") == 1
    assert "too many failed logins" in log
    assert "guess" not in log and PASSWORD not in log


def test_sender_spoofing_refused_alias_allowed(sub, sink):
    with tls_client(sub) as c:
        login(c)
        for sender in ("carol@acme.test", "ceo@example.com", ""):
            code, text = c.docmd("MAIL", f"FROM:<{sender}>")
            assert code == 553 and b"Sender address rejected: not owned by user bob@acme.test" in text, text
        # The envelope is bob's own, the header From is not.
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("bob@acme.test", ["dave@example.net"], message("spoof", sender="carol@acme.test"))
        assert e.value.smtp_code == 550 and e.value.smtp_error == b"5.7.1 From header not owned by user"
        c.rset()
        assert c.sendmail("sales@acme.test", ["dave@example.net"], message("alias", sender="sales@acme.test")) == {}
    (d,) = sink.wait_messages(1, timeout=30)
    assert email.message_from_bytes(d.data)["Subject"] == "alias"
    assert "553 5.7.1 <carol@acme.test>: Sender address rejected" in sub.log()


# --------------------------------------------------------------------------- robustness


def test_other_sessions_answered_while_auths_are_checked(sub):
    """argon2id runs on worker threads: with ten checks queued on them (two at a time), a new
    session's EHLO is answered before most of them. Were the checks on the event loop, the EHLO
    would wait behind all of them (tried, with the check moved onto the loop: all ten came first)."""
    clients = [tls_client(sub) for _ in range(10)]
    try:
        for c in clients:
            c.send(f"AUTH PLAIN {plain_b64('bob@acme.test', PASSWORD)}\r\n")
        with lbtest.RawSMTP(sub.submission_port) as other:
            other.ehlo()
            answered = [c for c in clients if c.sock.pending() or select.select([c.sock], [], [], 0)[0]]
        assert len(answered) <= 4, f"{len(answered)} of 10 AUTHs answered before another session's EHLO"
        for c in clients:
            assert c.getreply()[0] == 235
    finally:
        for c in clients:
            c.close()


def test_client_leaving_during_the_check(sub):
    before = sub.log().count("disconnect from [127.0.0.1]")
    for i in range(6):
        c = tls_client(sub)
        c.send(f"AUTH PLAIN {plain_b64('bob@acme.test', 'wrong' if i % 2 else PASSWORD)}\r\n")
        if i % 3 == 0:  # some leave with a reset, the others with a FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    # Every session was checked and let go; the daemon goes on (ASan is checked at teardown).
    wait_for(lambda: sub.log().count("disconnect from [127.0.0.1]") >= before + 6, what="six disconnects")
    wait_for(lambda: sub.log().count("SASL PLAIN authentication failed") == 3, what="three failures counted")
    with tls_client(sub) as c:
        assert login(c, user="carol@acme.test")[0] == 235


def test_submission_port_needs_a_certificate(make_lifeboat):
    lb = make_lifeboat(submission_listen=f"127.0.0.1:{lbtest.free_port()}")
    with pytest.raises(AssertionError, match="exited with 1 during start-up"):
        lb.start()
    assert "submission_listen needs tls_cert_file and tls_key_file" in lb.log()
