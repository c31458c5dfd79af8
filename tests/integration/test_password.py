"""
Passwords against the real daemon (issue 4 item 2, SPEC.md "HTTP API" and `policy set`): the
customer's password policy (lifeboatctl policy set/show, applied to `user add/set
--password-stdin` and to the webmail), POST /api/v1/password (wrong current password counts
for the lockout, the policy's message, every other session ends, the current one stays), and
the reset by mail: POST /api/v1/password-reset/request always answers 202 and mails a one-time
link only to an active user's alternate address, built from the config and never from the
Host header; /confirm sets the password once, ends the sessions, refuses used, voided and
expired tokens; rate limits per account and per client address.

The `web` fixture of test_http_api.py is reused (acme.test with bob, carol and the alias sales@
for bob; globex.test with eve); this module's `lifeboat` fixture sends mail to the internet
through outbound_relay = the sink, where the reset mails arrive.
"""
import hashlib
import http.client
import json
import re
import time

import pytest

import lbtest
from test_http_api import PASSWORD, Client, web  # noqa: F401  (the fixture is used by name)

NEW_PASSWORD = "a new password 42"
BOB_ALT = "bob.home@example.net"
CAROL_ALT = "carol.home@example.net"
LINK = re.compile(r"(\S*)#reset=([0-9a-f]{64})")


@pytest.fixture
def lifeboat(make_lifeboat, sink):
    lb = make_lifeboat(outbound_relay=sink.route)
    lb.start()
    return lb


def reset_request(lb, email, source=None, headers=None):
    """POST /api/v1/password-reset/request from the given source address."""
    conn = http.client.HTTPConnection("127.0.0.1", lb.http_port, timeout=30,
                                      source_address=(source, 0) if source else None)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request("POST", "/api/v1/password-reset/request", body=json.dumps({"email": email}).encode(), headers=h)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, json.loads(body)


def confirm(lb, token, new, **extra):
    c = Client(lb.http_port)
    return c.request("POST", "/api/v1/password-reset/confirm", {"token": token, "new": new, **extra})


def reset_mails(sink, to):
    return [m for m in sink.messages if to in [a.lower() for a in m.rcpt_tos]]


def wait_reset_mail(sink, to, count=1):
    from lbtest import wait_for
    mails = wait_for(lambda: len(reset_mails(sink, to)) >= count and reset_mails(sink, to), timeout=30,
                     what=f"{count} reset mail(s) to {to}")
    msg = mails[count - 1].message()
    body = msg.get_payload(decode=True).decode()
    m = LINK.search(body)
    assert m, body
    return mails[count - 1], msg, m.group(1), m.group(2)


def logs_in(lb, email, password):
    return Client(lb.http_port).login(email, password).status


# --------------------------------------------------------------------------- change


def test_change_password_wrong_then_right_ends_other_sessions(web):  # noqa: F811
    me, other = Client(web.http_port), Client(web.http_port)
    assert me.login("bob@acme.test").status == 200
    assert other.login("bob@acme.test").status == 200
    carol = Client(web.http_port)
    assert carol.login("carol@acme.test").status == 200

    r = me.request("POST", "/api/v1/password", {"old": "not it", "new": NEW_PASSWORD})
    assert r.status == 403 and r.json == {"error": "current password is wrong", "code": "wrong_password"}
    assert logs_in(web, "bob@acme.test", NEW_PASSWORD) == 401

    r = me.request("POST", "/api/v1/password", {"old": PASSWORD, "new": NEW_PASSWORD})
    assert r.status == 200 and r.json == {"ok": True}, r.body
    assert me.request("GET", "/api/v1/me").status == 200          # the session that asked stays
    assert other.request("GET", "/api/v1/me").status == 401       # every other one ended
    assert carol.request("GET", "/api/v1/me").status == 200       # other users untouched
    assert logs_in(web, "bob@acme.test", PASSWORD) == 401
    assert logs_in(web, "bob@acme.test", NEW_PASSWORD) == 200
    assert logs_in(web, "sales@acme.test", NEW_PASSWORD) == 200   # the alias logs in as bob
    log = web.log()
    assert "http: password changed for bob@acme.test, client=127.0.0.1" in log
    assert NEW_PASSWORD not in log and PASSWORD not in log


def test_change_password_follows_the_policy(web):  # noqa: F811
    web.ctl_ok("policy", "set", "acme", "--min-length", "12", "--digit")
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    for weak, why in (("short", "password must be at least 12 characters and contain a digit"),
                      ("long but no digits", "password must contain a digit"),
                      ("abc1", "password must be at least 12 characters")):
        r = c.request("POST", "/api/v1/password", {"old": PASSWORD, "new": weak})
        assert r.status == 400 and r.json == {"error": why, "code": "password_policy"}, (weak, r.body)
    assert logs_in(web, "bob@acme.test", PASSWORD) == 200
    # globex keeps the defaults (8 characters).
    e = Client(web.http_port)
    assert e.login("eve@globex.test").status == 200
    r = e.request("POST", "/api/v1/password", {"old": PASSWORD, "new": "seven77"})
    assert r.status == 400 and r.json == {"error": "password must be at least 8 characters", "code": "password_policy"}
    assert e.request("POST", "/api/v1/password", {"old": PASSWORD, "new": "eight888"}).status == 200
    # A password longer than 1024 bytes is refused, counted in bytes; length in characters.
    r = c.request("POST", "/api/v1/password", {"old": PASSWORD, "new": "é1" * 400})  # 1200 bytes
    assert r.status == 400 and r.json == {"error": "password must be at most 1024 bytes", "code": "password_policy"}
    r = c.request("POST", "/api/v1/password", {"old": PASSWORD, "new": "ééééééééééé1"})  # 12 chars
    assert r.status == 200, r.body


def test_wrong_current_password_counts_for_the_lockout(web):  # noqa: F811
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    for _ in range(5):
        r = c.request("POST", "/api/v1/password", {"old": "guess", "new": NEW_PASSWORD})
        assert r.status == 403
    r = c.request("POST", "/api/v1/password", {"old": PASSWORD, "new": NEW_PASSWORD})
    assert r.status == 429 and "error" in r.json
    assert int(r.getheader("Retry-After")) > 0
    assert logs_in(web, "bob@acme.test", PASSWORD) == 429
    assert logs_in(web, "carol@acme.test", PASSWORD) == 200


def test_change_needs_session_csrf_and_fields(web):  # noqa: F811
    anon = Client(web.http_port)
    assert anon.request("POST", "/api/v1/password", {"old": PASSWORD, "new": NEW_PASSWORD}).status == 401
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/password", {"old": PASSWORD, "new": NEW_PASSWORD}, csrf=False)
    assert r.status == 403
    for body in ({"old": PASSWORD}, {"new": NEW_PASSWORD}, {"old": PASSWORD, "new": 7}, {"old": None, "new": "x"}):
        r = c.request("POST", "/api/v1/password", body)
        assert r.status == 400 and "error" in r.json, body
    r = c.request("POST", "/api/v1/password", raw_body=b'{"old": ', headers={"Content-Type": "application/json"})
    assert r.status == 400 and "error" in r.json
    r = c.request("POST", "/api/v1/password", raw_body=b'[1]', headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert logs_in(web, "bob@acme.test", PASSWORD) == 200


# --------------------------------------------------------------------------- lifeboatctl


def test_ctl_policy_set_show_and_user_passwords(web):  # noqa: F811
    assert web.ctl_json("policy", "show", "acme") == {
        "customer": "acme", "min_length": 8, "upper": False, "lower": False, "digit": False, "special": False,
        "default": True, "text": "at least 8 characters"}
    cp = web.ctl_ok("policy", "show", "acme")
    assert cp.stdout == "password policy of customer acme: at least 8 characters (the defaults)\n"
    cp = web.ctl_ok("policy", "set", "acme", "--min-length", "12", "--upper", "--digit")
    assert cp.stdout == ("password policy of customer acme: at least 12 characters, with an upper-case letter "
                         "and a digit\n")
    cp = web.ctl_ok("policy", "set", "acme", "--no-upper", "--special")
    assert web.ctl_json("policy", "show", "acme") == {
        "customer": "acme", "min_length": 12, "upper": False, "lower": False, "digit": True, "special": True,
        "default": False, "text": "at least 12 characters, with a digit and a special character"}
    assert web.ctl_json("policy", "show", "globex")["default"] is True

    # Bad usage: 2; refused: 1.
    for args in (["policy", "set", "acme"], ["policy", "set", "acme", "--upper", "--no-upper"],
                 ["policy", "set", "acme", "--min-length", "0"], ["policy", "set", "acme", "--min-length", "x"],
                 ["policy", "set", "acme", "--min-length", "257"], ["policy", "set", "--digit"],
                 ["policy", "set", "acme", "--bogus"], ["policy", "show"]):
        cp = web.ctl(*args)
        assert cp.returncode == 2, (args, cp.stderr)
    cp = web.ctl("policy", "set", "initech", "--digit")
    assert cp.returncode == 1 and cp.stderr == "lifeboatctl: customer initech does not exist\n"
    cp = web.ctl("policy", "show", "initech")
    assert cp.returncode == 1 and "initech" in cp.stderr

    # An administrator gets the webmail's message.
    cp = web.ctl("user", "set", "bob@acme.test", "--password-stdin", input="short\n")
    assert cp.returncode == 1
    assert cp.stderr == ("lifeboatctl: user bob@acme.test: password must be at least 12 characters and contain "
                         "a digit and a special character\n")
    cp = web.ctl("user", "add", "dave@acme.test", "--password-stdin", "--activate", input="longenoughbutplain\n")
    assert cp.returncode == 1
    assert cp.stderr == "lifeboatctl: user dave@acme.test: password must contain a digit and a special character\n"
    assert logs_in(web, "bob@acme.test", PASSWORD) == 200
    before = Client(web.http_port)
    assert before.login("bob@acme.test", PASSWORD).status == 200
    web.ctl_ok("user", "set", "bob@acme.test", "--password-stdin", input="it is 12 chars+1\n")
    # A password set by an administrator ends the user's sessions.
    assert before.request("GET", "/api/v1/me").status == 401
    assert logs_in(web, "bob@acme.test", "it is 12 chars+1") == 200
    web.ctl_ok("user", "add", "dave@acme.test", "--password-stdin", "--activate", input="dave's pass: 7 7 7\n")
    assert logs_in(web, "dave@acme.test", "dave's pass: 7 7 7") == 200


# --------------------------------------------------------------------------- reset


def test_reset_request_answers_202_and_mails_nobody_without_an_alt_address(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "eve@globex.test", "--alt-email", "eve.home@example.net", "--suspend")
    web.ctl_ok("user", "add", "frank@acme.test", "--password-stdin", input=PASSWORD + "\n")  # not activated
    web.ctl_ok("user", "set", "frank@acme.test", "--alt-email", "frank.home@example.net")
    for who in ("nobody@acme.test", "carol@acme.test",      # unknown; no alternate address
                "eve@globex.test", "frank@acme.test",       # suspended; not activated
                "not an address", "x" * 5000 + "@acme.test", ""):
        assert reset_request(web, who) == (202, {"ok": True}), who
    time.sleep(1.5)  # a grace period: proving no mail is sent
    assert sink.messages == []
    assert web.queue() == []
    assert web.log().count("http: password reset request for no active user with an alternate address") == 7
    # Missing field or bad JSON: 400.
    c = Client(web.http_port)
    assert c.request("POST", "/api/v1/password-reset/request", {"mail": "bob@acme.test"}).status == 400
    assert c.request("POST", "/api/v1/password-reset/request", {"email": 3}).status == 400
    r = c.request("POST", "/api/v1/password-reset/request", raw_body=b"{", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "error" in r.json


def test_reset_by_mail_then_login_with_the_new_password(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    web.ctl_ok("policy", "set", "acme", "--min-length", "12", "--digit")
    session = Client(web.http_port)
    assert session.login("bob@acme.test").status == 200

    # By the alias, any spelling.
    assert reset_request(web, "Sales@ACME.test") == (202, {"ok": True})
    d, msg, base, token = wait_reset_mail(sink, BOB_ALT)
    assert d.mail_from in ("", "<>")  # the null sender: a bounce of it would go nowhere useful
    assert [a.lower() for a in d.rcpt_tos] == [BOB_ALT]
    assert "postmaster@lifeboat.test" in msg["From"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "bob@acme.test" in msg["Subject"]
    assert base == f"http://lifeboat.test:{web.http_port}/"
    # Only the token's SHA-256 is stored.
    rows = lbtest.sql(web, "SELECT token_hash FROM password_resets")
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(),)]
    assert token not in web.log()

    # The policy holds, and a refused password leaves the token usable.
    r = confirm(web, token, "weak")
    assert r.status == 400 and r.json == {"error": "password must be at least 12 characters and contain a digit",
                                    "code": "password_policy"}
    assert session.request("GET", "/api/v1/me").status == 200
    r = confirm(web, token, NEW_PASSWORD)
    assert r.status == 200 and r.json == {"ok": True}, r.body
    assert session.request("GET", "/api/v1/me").status == 401  # every session ended
    assert logs_in(web, "bob@acme.test", PASSWORD) == 401
    assert logs_in(web, "bob@acme.test", NEW_PASSWORD) == 200
    assert "http: password reset for bob@acme.test, client=127.0.0.1" in web.log()

    # Single use.
    r = confirm(web, token, "yet another one 43")
    assert r.status == 400 and r.json == {"error": "invalid or expired reset token", "code": "invalid_token"}
    assert logs_in(web, "bob@acme.test", NEW_PASSWORD) == 200
    for bad in ("0" * 64, token.upper(), token[:-1], "", "../" + token):
        r = confirm(web, bad, "yet another one 43")
        assert r.status == 400 and r.json == {"error": "invalid or expired reset token", "code": "invalid_token"}, bad
    c = Client(web.http_port)
    for body in ({"token": token}, {"new": NEW_PASSWORD}, {"token": 1, "new": NEW_PASSWORD}):
        r = c.request("POST", "/api/v1/password-reset/confirm", body)
        assert r.status == 400 and "error" in r.json


def test_reset_link_comes_from_web_url_never_the_host_header(make_lifeboat, sink):
    lb = make_lifeboat(outbound_relay=sink.route, web_url="https://mail.acme.example/webmail/")
    lb.start()
    lb.add_domain("acme.test", "acme", "127.0.0.1:9")
    lb.add_user("bob@acme.test")
    lb.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    assert reset_request(lb, "bob@acme.test", headers={"Host": "evil.example",
                                                        "X-Forwarded-Host": "evil.example"})[0] == 202
    _, msg, base, token = wait_reset_mail(sink, BOB_ALT)
    assert base == "https://mail.acme.example/webmail/"
    assert b"evil.example" not in msg.as_bytes()
    assert confirm(lb, token, NEW_PASSWORD).status == 200


def test_expired_and_voided_tokens_are_refused(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    assert reset_request(web, "bob@acme.test")[0] == 202
    _, _, _, first = wait_reset_mail(sink, BOB_ALT, 1)
    assert reset_request(web, "bob@acme.test")[0] == 202
    _, _, _, second = wait_reset_mail(sink, BOB_ALT, 2)
    assert first != second
    # A newer request voids the older token.
    r = confirm(web, first, NEW_PASSWORD)
    assert r.status == 400 and r.json == {"error": "invalid or expired reset token", "code": "invalid_token"}
    # An hour later the newer one has expired too (moved back in the store rather than waited for).
    lbtest.sql(web, "UPDATE password_resets SET created = created - 3601, expires = expires - 3601")
    r = confirm(web, second, NEW_PASSWORD)
    assert r.status == 400 and r.json == {"error": "invalid or expired reset token", "code": "invalid_token"}
    assert logs_in(web, "bob@acme.test", PASSWORD) == 200


def test_a_token_of_one_user_cannot_change_another(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    web.ctl_ok("user", "set", "carol@acme.test", "--alt-email", CAROL_ALT)
    assert reset_request(web, "bob@acme.test")[0] == 202
    _, _, _, token = wait_reset_mail(sink, BOB_ALT)
    # Whatever else the body says, the token decides whose password it is.
    r = confirm(web, token, NEW_PASSWORD, email="carol@acme.test", user="carol@acme.test")
    assert r.status == 200
    assert logs_in(web, "carol@acme.test", NEW_PASSWORD) == 401
    assert logs_in(web, "carol@acme.test", PASSWORD) == 200
    assert logs_in(web, "bob@acme.test", NEW_PASSWORD) == 200
    assert reset_mails(sink, CAROL_ALT) == []


def test_reset_clears_the_lockout(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    c = Client(web.http_port)
    for _ in range(5):
        assert c.login("bob@acme.test", "forgotten").status == 401
    assert c.login("bob@acme.test").status == 429
    assert reset_request(web, "bob@acme.test")[0] == 202
    _, _, _, token = wait_reset_mail(sink, BOB_ALT)
    assert confirm(web, token, NEW_PASSWORD).status == 200
    assert logs_in(web, "bob@acme.test", NEW_PASSWORD) == 200


def test_reset_rate_limit_per_account(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    for i in range(3):
        assert reset_request(web, "bob@acme.test") == (202, {"ok": True})
        wait_reset_mail(sink, BOB_ALT, i + 1)
    assert reset_request(web, "bob@acme.test") == (202, {"ok": True})
    time.sleep(1.5)  # a grace period: proving no fourth mail is sent
    assert len(reset_mails(sink, BOB_ALT)) == 3
    assert "http: password reset for bob@acme.test not sent: 3 reset mails in the last hour already" in web.log()
    # The newest token sent still works; the limit is per account.
    _, _, _, token = wait_reset_mail(sink, BOB_ALT, 3)
    assert confirm(web, token, NEW_PASSWORD).status == 200
    web.ctl_ok("user", "set", "carol@acme.test", "--alt-email", CAROL_ALT)
    assert reset_request(web, "carol@acme.test")[0] == 202
    wait_reset_mail(sink, CAROL_ALT)


def test_reset_rate_limit_per_client_address(web, sink):  # noqa: F811
    web.ctl_ok("user", "set", "bob@acme.test", "--alt-email", BOB_ALT)
    for i in range(20):
        assert reset_request(web, f"nobody{i}@acme.test") == (202, {"ok": True})
    assert reset_request(web, "bob@acme.test") == (202, {"ok": True})
    time.sleep(1.5)  # a grace period: proving no mail is sent
    assert sink.messages == []
    assert "http: password reset request refused: more than 20 from this client in an hour, client=127.0.0.1" \
        in web.log()
    # Another client address is not limited by this one's requests.
    assert reset_request(web, "bob@acme.test", source="127.0.0.2") == (202, {"ok": True})
    wait_reset_mail(sink, BOB_ALT)
    # The count is in the store: a restart does not reset it.
    web.restart()
    assert reset_request(web, "bob@acme.test") == (202, {"ok": True})
    time.sleep(1.5)
    assert len(reset_mails(sink, BOB_ALT)) == 1
