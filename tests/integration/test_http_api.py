"""
The HTTP API against the real daemon (issue 4, items 1-3, SPEC.md "HTTP API"): login and its
failures (one answer for unknown users and wrong passwords, lockout with 429), the session
cookie's flags, CSRF refused without the token, bad JSON / oversized bodies / unknown routes as
JSON errors, the security headers, /healthz, and the continuity mailbox: list, search, flag,
move, delete to Trash (never re-delivered, checked with `lifeboatctl mailbox list --json`),
delete for good, raw download, and that user A can neither read, change nor delete user B's
messages by their IDs.

Mailbox entries are made the way the continuity tests make them: a subscription, continuity
enabled for acme.test, and acme.test routed to a closed port, so the first delivery attempt
fails at connect and the message is diverted into its recipients' INBOXes.
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import lbtest
from lbtest import make_message, new_msgid, submit, wait_for

PASSWORD = "correct horse 9 battery"
CONFIG = {"dr_probe_interval": "1s", "delivery_timeout": "3s"}


class Client:
    """A browser stand-in: keeps the session cookie and the CSRF token of its login."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, csrf=True, raw_body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        resp.body = payload
        ctype = resp.getheader("Content-Type", "")
        resp.json = json.loads(payload) if ctype.startswith("application/json") and payload else None
        return resp

    def login(self, email, password=PASSWORD):
        r = self.request("POST", "/api/v1/login", {"email": email, "password": password})
        if r.status == 200:
            cookie = r.getheader("Set-Cookie")
            self.cookie = cookie.split(";", 1)[0]
            self.csrf = r.json["csrf"]
        return r


def assert_security_headers(r):
    csp = r.getheader("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Referrer-Policy") == "no-referrer"
    assert r.getheader("Cache-Control") == "no-store"


@pytest.fixture
def web(lifeboat):
    """lifeboat with acme.test (continuity on, its server a closed port) and users bob and
    carol, plus globex.test with user eve."""
    dead = f"127.0.0.1:{lbtest.free_port()}"
    lifeboat.add_domain("acme.test", "acme", dead)
    lifeboat.add_user("bob@acme.test", name="Bob")
    lifeboat.add_user("carol@acme.test")
    lifeboat.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
    lifeboat.enable_continuity("acme.test", "acme")
    lifeboat.add_domain("globex.test", "globex", dead)
    lifeboat.add_user("eve@globex.test")
    return lifeboat


def divert(lb, rcpt, subject, sender="alice@example.org"):
    """Mails rcpt and waits for the copy in their continuity mailbox; returns its entry."""
    qid = submit(lb.smtp_port, sender, [rcpt], make_message(new_msgid("http"), sender=sender, to=rcpt,
                                                            subject=subject))
    return wait_for(lambda: next((e for e in lb.mailbox(rcpt) if e["msg_id"] == qid), None), timeout=20,
                    what=f"{rcpt}'s copy of {qid} in the mailbox")


# --------------------------------------------------------------------------- server basics


def test_healthz_and_security_headers(lifeboat):
    c = Client(lifeboat.http_port)
    r = c.request("GET", "/healthz")
    assert r.status == 200 and r.body == b"ok\n"
    assert_security_headers(r)


def test_unknown_route_and_method_are_json_errors(lifeboat):
    c = Client(lifeboat.http_port)
    r = c.request("GET", "/api/v1/nope")
    assert r.status == 404 and r.json == {"error": "not found", "code": "not_found"}
    assert_security_headers(r)
    r = c.request("GET", "/api/v1/messages/0")  # IDs are positive decimals: no route
    assert r.status == 404 and "error" in r.json
    r = c.request("PUT", "/api/v1/login", {"email": "x"})
    assert r.status == 405 and "error" in r.json
    assert "POST" in r.getheader("Allow")


def test_webmail_and_control_panel_pages(lifeboat):
    c = Client(lifeboat.http_port)
    for path, title in (("/", b"<title>lifeboat"), ("/admin/", b"<title>lifeboat control panel</title>"),
                        ("/admin/index.html", b"<title>lifeboat control panel</title>")):
        r = c.request("GET", path)
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/html"), path
        assert title in r.body, path
        assert_security_headers(r)
    for path in ("/admin", "/admin/../index.html", "/js/", "/admin/.hidden/"):
        assert c.request("GET", path).status == 404, path


def test_a_new_module_in_an_allow_listed_folder_is_served(make_lifeboat, tmp_path):
    """js/ and admin/ are served as folders (any plain file name), so adding a module to the web
    app needs no C change; nothing outside them, no dot files, no missing file."""
    web = tmp_path / "web"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "web"), web)
    (web / "js" / "extra-module.js").write_text("export const answer = 42;\n")
    (web / "secret.txt").write_text("not for you\n")
    lb = make_lifeboat(web_root=str(web))
    lb.start()
    c = Client(lb.http_port)
    r = c.request("GET", "/js/extra-module.js")
    assert r.status == 200 and r.body == b"export const answer = 42;\n"
    assert r.getheader("Content-Type").startswith("text/javascript")
    assert_security_headers(r)
    for path in ("/secret.txt", "/js/missing.js", "/js/%2e%2e", "/js/..%2fsecret.txt", "/js/.extra.js"):
        assert c.request("GET", path).status == 404, path
    assert c.request("POST", "/js/extra-module.js", {}).status in (404, 405)


def test_bad_json_and_oversized_bodies(web):
    c = Client(web.http_port)
    r = c.request("POST", "/api/v1/login", raw_body=b'{"email": "bob@acme.test", ',
                  headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json == {"error": "bad JSON", "code": "bad_request"}
    r = c.request("POST", "/api/v1/login", raw_body=b'["a list"]', headers={"Content-Type": "application/json"})
    assert r.status == 400 and "error" in r.json
    r = c.request("POST", "/api/v1/login", raw_body=b'{"email":"a","email":"b","password":"c"}',
                  headers={"Content-Type": "application/json"})
    assert r.status == 400, "duplicate keys must be refused"
    r = c.request("POST", "/api/v1/login", raw_body=b'email=bob', headers={"Content-Type": "text/plain"})
    assert r.status == 415 and "error" in r.json

    # Announced too large: answered before the body is sent.
    with socket.create_connection(("127.0.0.1", web.http_port), timeout=10) as s:
        s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2000000\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"error"' in reply

    # Chunked, no length announced: read, dropped, 413.
    conn = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=30)
    big = b'{"email": "' + b"x" * (1 << 20) + b'", "password": "y"}'
    conn.request("POST", "/api/v1/login", body=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and "error" in json.loads(resp.read())
    conn.close()
    assert Client(web.http_port).request("GET", "/healthz").status == 200


# --------------------------------------------------------------------------- login


def test_login_cookie_me_status_logout(web):
    c = Client(web.http_port)
    r = c.login("Bob@Acme.test")
    assert r.status == 200, r.body
    assert_security_headers(r)
    cookie = r.getheader("Set-Cookie")
    flags = [f.strip().lower() for f in cookie.split(";")[1:]]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags, cookie
    assert "secure" not in flags  # plain HTTP in this test: Secure only under TLS
    name, token = cookie.split(";")[0].split("=", 1)
    assert name == "lb_session" and len(token) == 64
    assert len(r.json["csrf"]) == 64 and r.json["csrf"] != token

    me = c.request("GET", "/api/v1/me")
    assert me.status == 200
    assert me.json == {"email": "bob@acme.test", "name": "Bob", "role": "user", "domain": "acme.test",
                       "customer": "acme", "aliases": ["sales@acme.test"]}
    st = c.request("GET", "/api/v1/status")
    assert st.status == 200 and st.json["domain"] == "acme.test" and st.json["continuity"] is True
    assert st.json["state"] in ("normal", "outage", "recovering") and "since" in st.json

    # The token is stored hashed: the database does not contain it.
    assert token.encode() not in lbtest.store_bytes(web)

    # Logging in by alias works too.
    assert Client(web.http_port).login("sales@acme.test").status == 200

    r = c.request("POST", "/api/v1/logout")
    assert r.status == 200
    assert "max-age=0" in r.getheader("Set-Cookie").lower()
    assert c.request("GET", "/api/v1/me").status == 401


def test_https_cookie_is_secure_and_host_prefixed(make_lifeboat, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=lifeboat.test", "-days", "2"], check=True, capture_output=True)
    lb = make_lifeboat(tls_cert_file=str(cert), tls_key_file=str(key))
    lb.start()
    lb.add_domain("acme.test", "acme", f"127.0.0.1:{lbtest.free_port()}")
    lb.add_user("bob@acme.test")
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", lb.http_port, context=ctx, timeout=30)
    conn.request("POST", "/api/v1/login", body=json.dumps({"email": "bob@acme.test", "password": PASSWORD}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    cookie = r.getheader("Set-Cookie")
    flags = [f.strip().lower() for f in cookie.split(";")[1:]]
    assert cookie.startswith("__Host-lb_session=") and "secure" in flags and "httponly" in flags, cookie
    assert "samesite=strict" in flags and "path=/" in flags, cookie
    assert r.getheader("Strict-Transport-Security")
    conn.request("GET", "/api/v1/me", headers={"Cookie": cookie.split(";")[0]})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["email"] == "bob@acme.test"
    conn.close()


def test_wrong_password_and_unknown_user_get_the_same_answer(web):
    c = Client(web.http_port)
    times = {}
    answers = {}
    for who, email, pw in (("wrong", "bob@acme.test", "not the password"), ("unknown", "nobody@acme.test", PASSWORD),
                           ("no-domain", "bob@elsewhere.test", PASSWORD)):
        t0 = time.monotonic()
        r = c.request("POST", "/api/v1/login", {"email": email, "password": pw})
        times[who] = time.monotonic() - t0
        answers[who] = (r.status, r.body)
        assert r.getheader("Set-Cookie") is None
    assert set(answers.values()) == {(401, b'{"error":"invalid credentials","code":"invalid_credentials"}')}, answers
    # An unknown user's password is checked against a dummy hash: no fast path to tell them apart.
    assert min(times["unknown"], times["no-domain"]) > times["wrong"] * 0.3, times
    assert c.request("GET", "/api/v1/me").status == 401


def test_suspended_and_inactive_users_are_refused(web):
    web.add_user("dave@acme.test", activate=False)
    c = Client(web.http_port)
    assert c.login("dave@acme.test").status == 403
    assert c.login("carol@acme.test").status == 200
    web.ctl_ok("user", "set", "carol@acme.test", "--suspend")
    # The open session ends with the suspension, and a new login is refused.
    assert c.request("GET", "/api/v1/me").status == 401
    assert Client(web.http_port).login("carol@acme.test").status == 403


def test_lockout_after_repeated_failures(web):
    c = Client(web.http_port)
    for _ in range(5):
        assert c.login("carol@acme.test", "wrong").status == 401
    r = c.login("carol@acme.test")  # the right password, but locked out
    assert r.status == 429 and "error" in r.json
    assert int(r.getheader("Retry-After")) > 0
    # Other accounts are not locked by carol's failures (5 < the per-address limit of 20)...
    assert Client(web.http_port).login("bob@acme.test").status == 200
    # ...and an unknown account locks out the same way (no hint who exists).
    for _ in range(5):
        assert c.login("ghost@acme.test", "wrong").status == 401
    assert c.login("ghost@acme.test", "wrong").status == 429
    # Persisted: a restart does not lift it.
    web.restart()
    assert Client(web.http_port).login("carol@acme.test").status == 429


def test_lockout_per_client_address(web):
    c = Client(web.http_port)
    for i in range(20):
        assert c.login(f"user{i}@acme.test", "wrong").status == 401
    assert c.login("bob@acme.test").status == 429


def test_csrf_token_required_for_state_changes(web):
    entry = divert(web, "bob@acme.test", "csrf test")
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    path = f"/api/v1/messages/{entry['id']}"
    r = c.request("PATCH", path, {"seen": True}, csrf=False)
    assert r.status == 403 and "error" in r.json and r.json["code"] == "csrf"  # a stable code, not the text
    r = c.request("PATCH", path, {"seen": True}, headers={"X-CSRF-Token": "0" * 64}, csrf=False)
    assert r.status == 403 and r.json["code"] == "csrf"
    r = c.request("DELETE", path, csrf=False)
    assert r.status == 403
    r = c.request("POST", "/api/v1/logout", csrf=False)
    assert r.status == 403
    assert web.mailbox("bob@acme.test")[0]["folder"] == "INBOX"
    # Reads need no token; with it the change goes through.
    assert c.request("GET", path).json["seen"] is False
    r = c.request("PATCH", path, {"seen": True})
    assert r.status == 200 and r.json["seen"] is True


# --------------------------------------------------------------------------- mailboxes


@pytest.mark.lifeboat_config(**CONFIG)
def test_folders_list_search_flag_move(web):
    a = divert(web, "bob@acme.test", "Quarterly report", sender="ceo@example.org")
    b = divert(web, "bob@acme.test", "=?UTF-8?B?R3LDvMOfZQ==?= from Zürich")
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200

    folders = c.request("GET", "/api/v1/folders").json
    assert folders == [{"name": "INBOX", "total": 2, "unread": 2}, {"name": "Sent", "total": 0, "unread": 0},
                       {"name": "Trash", "total": 0, "unread": 0}]

    r = c.request("GET", "/api/v1/messages?folder=INBOX")
    assert r.status == 200 and r.json["total"] == 2
    rows = {m["id"]: m for m in r.json["messages"]}
    assert [m["id"] for m in r.json["messages"]] == [b["id"], a["id"]], "newest first"
    assert rows[a["id"]]["subject"] == "Quarterly report"
    assert rows[b["id"]]["subject"] == "Grüße from Zürich", "RFC 2047 decoded"
    assert rows[a["id"]]["from"] == "Alice Example <ceo@example.org>"
    assert rows[a["id"]]["date"] == "2026-11-27T22:00:00Z" and rows[a["id"]]["seen"] is False
    assert rows[a["id"]]["size"] > 0

    # Paging and search (subject, sender).
    page = c.request("GET", "/api/v1/messages?folder=INBOX&offset=1&limit=1").json
    assert page["total"] == 2 and [m["id"] for m in page["messages"]] == [a["id"]]
    assert [m["id"] for m in c.request("GET", "/api/v1/messages?q=quarterly").json["messages"]] == [a["id"]]
    assert [m["id"] for m in c.request("GET", "/api/v1/messages?q=ceo%40example").json["messages"]] == [a["id"]]
    assert c.request("GET", "/api/v1/messages?q=z%C3%BCrich").json["total"] == 1
    assert c.request("GET", "/api/v1/messages?q=nothing-like-this").json["total"] == 0
    assert c.request("GET", "/api/v1/messages?folder=Nope").status == 400
    assert c.request("GET", "/api/v1/messages?limit=-1").status == 400
    assert c.request("GET", "/api/v1/messages?limit=1000").status == 400

    one = c.request("GET", f"/api/v1/messages/{a['id']}")
    assert one.status == 200 and one.json["subject"] == "Quarterly report"
    assert one.json["envelope_from"] == "ceo@example.org" and one.json["redelivery"] == "waiting"

    r = c.request("PATCH", f"/api/v1/messages/{a['id']}", {"seen": True, "flagged": True})
    assert r.status == 200 and r.json["seen"] is True and r.json["flagged"] is True
    assert c.request("GET", "/api/v1/folders").json[0] == {"name": "INBOX", "total": 2, "unread": 1}
    assert c.request("PATCH", f"/api/v1/messages/{a['id']}", {"seen": "yes"}).status == 400
    assert c.request("PATCH", f"/api/v1/messages/{a['id']}", {"folder": "Nowhere"}).status == 400
    assert c.request("PATCH", f"/api/v1/messages/{a['id']}", {"owner": 1}).status == 400

    # Moving into Trash is a delete (never re-delivered); moving back restores it.
    r = c.request("PATCH", f"/api/v1/messages/{a['id']}", {"folder": "Trash"})
    assert r.status == 200 and r.json["folder"] == "Trash"
    e = next(e for e in web.mailbox("bob@acme.test") if e["id"] == a["id"])
    assert e["folder"] == "Trash" and e["redeliver"] == "deleted", e
    r = c.request("PATCH", f"/api/v1/messages/{a['id']}", {"folder": "INBOX"})
    assert r.status == 200 and r.json["folder"] == "INBOX"
    e = next(e for e in web.mailbox("bob@acme.test") if e["id"] == a["id"])
    assert e["folder"] == "INBOX" and e["redeliver"] == "waiting", e

    raw = c.request("GET", f"/api/v1/messages/{a['id']}/raw")
    assert raw.status == 200 and raw.getheader("Content-Type") == "message/rfc822"
    assert raw.getheader("Content-Disposition").startswith("attachment;")
    assert raw.body.startswith(b"Received: ") and b"Subject: Quarterly report\r\n" in raw.body
    assert_security_headers(raw)


@pytest.mark.lifeboat_config(**CONFIG)
def test_delete_to_trash_marks_never_redelivered_then_for_good(web):
    entry = divert(web, "bob@acme.test", "to be deleted")
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("DELETE", f"/api/v1/messages/{entry['id']}")
    assert r.status == 200 and r.json["folder"] == "Trash" and r.json["redelivery"] == "deleted"
    (e,) = [e for e in web.mailbox("bob@acme.test") if e["id"] == entry["id"]]
    assert e["folder"] == "Trash" and e["redeliver"] == "deleted", e
    assert c.request("GET", "/api/v1/folders").json[2]["total"] == 1

    r = c.request("DELETE", f"/api/v1/messages/{entry['id']}")
    assert r.status == 200 and r.json == {"id": entry["id"], "deleted": True}
    assert [e for e in web.mailbox("bob@acme.test") if e["id"] == entry["id"]] == []
    assert c.request("GET", f"/api/v1/messages/{entry['id']}").status == 404
    assert c.request("DELETE", f"/api/v1/messages/{entry['id']}").status == 404


@pytest.mark.lifeboat_config(**CONFIG)
def test_users_cannot_touch_each_others_messages(web):
    mine = divert(web, "carol@acme.test", "carol's private mail")
    bob = Client(web.http_port)
    eve = Client(web.http_port)
    assert bob.login("bob@acme.test").status == 200
    assert eve.login("eve@globex.test").status == 200
    missing = mine["id"] + 1000
    for c in (bob, eve):
        for method, path, body in (("GET", "/api/v1/messages/{}", None),
                                   ("GET", "/api/v1/messages/{}/raw", None),
                                   ("PATCH", "/api/v1/messages/{}", {"seen": True, "folder": "Trash"}),
                                   ("DELETE", "/api/v1/messages/{}", None)):
            r = c.request(method, path.format(mine["id"]), body)
            nothing = c.request(method, path.format(missing), body)
            assert r.status == 404 and (r.status, r.body) == (nothing.status, nothing.body), (method, path)
        assert c.request("GET", "/api/v1/messages").json["total"] == 0
        assert c.request("GET", "/api/v1/messages?q=private").json["total"] == 0
    (e,) = web.mailbox("carol@acme.test")
    assert e["folder"] == "INBOX" and e["redeliver"] == "waiting" and e["seen"] is False, e


def test_session_required(lifeboat):
    c = Client(lifeboat.http_port)
    for path in ("/api/v1/me", "/api/v1/status", "/api/v1/folders", "/api/v1/messages", "/api/v1/messages/1",
                 "/api/v1/messages/1/raw"):
        r = c.request("GET", path)
        assert r.status == 401 and r.json == {"error": "not logged in", "code": "not_logged_in"}, path
    c.cookie = "lb_session=" + "a" * 64
    assert c.request("GET", "/api/v1/me").status == 401
    c.cookie = "lb_session=" + "a" * 64 + "; lb_session=" + "b" * 64
    assert c.request("GET", "/api/v1/me").status == 401
