"""
POST /api/v1/send against the real daemon (issue 4, item 5): a webmail user's message is built
as MIME, queued and delivered to the internet (here outbound_relay, an aiosmtpd sink) with the
user's address in From, Bcc only in the envelope, the attachment's bytes intact, and a copy in
the user's Sent folder. From another user's address is refused (403), so are bad fields (400)
and a request without the CSRF token (403).

The `web` fixture of test_http_api.py is reused; this module's `lifeboat` fixture (which `web`
asks for by name) starts the daemon with outbound_relay pointing at the sink.
"""
import base64
import email
import email.policy

import pytest

from lbtest import wait_for
from test_http_api import Client, web  # noqa: F401  (the fixture is used by name)

ATTACHMENT = bytes(range(256)) * 8


@pytest.fixture
def lifeboat(make_lifeboat, sink):
    lb = make_lifeboat(outbound_relay=sink.route)
    lb.start()
    return lb


def message(**over):
    m = {
        "from": "bob@acme.test",
        "to": ["dave@example.net"],
        "cc": ["erin@example.net"],
        "bcc": ["hidden@example.net"],
        "subject": "Quarterly numbers — Grüße",
        "text": "Hello Dave,\nthe numbers are attached.\n",
        "attachments": [{"filename": "numbers.bin", "content_type": "application/octet-stream",
                         "data_base64": base64.b64encode(ATTACHMENT).decode()}],
        "in_reply_to": "<parent-1@example.net>",
    }
    m.update(over)
    return m


def test_send_arrives_with_mime_bcc_hidden_and_sent_copy(web, sink):  # noqa: F811
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message())
    assert r.status == 202, r.body
    qid = r.json["id"]
    assert len(qid) == 16

    d = sink.wait_messages(1, timeout=30)[0]
    assert d.mail_from.lower() == "bob@acme.test"
    assert sorted(a.lower() for a in d.rcpt_tos) == ["dave@example.net", "erin@example.net",
                                                     "hidden@example.net"]
    msg = email.message_from_bytes(d.data, policy=email.policy.default)
    assert "bob@acme.test" in str(msg["From"])
    assert str(msg["Subject"]) == "Quarterly numbers — Grüße"
    assert "dave@example.net" in str(msg["To"])
    assert "erin@example.net" in str(msg["Cc"])
    assert msg["Bcc"] is None and b"hidden@example.net" not in d.data
    assert msg["Message-ID"] and msg["Date"]
    assert msg["In-Reply-To"].strip() == "<parent-1@example.net>"
    assert "<parent-1@example.net>" in msg["References"]
    body = msg.get_body(preferencelist=("plain",))
    assert "the numbers are attached." in body.get_content()
    atts = list(msg.iter_attachments())
    assert len(atts) == 1
    assert atts[0].get_filename() == "numbers.bin"
    assert atts[0].get_payload(decode=True) == ATTACHMENT

    assert f"{qid}: from=<bob@acme.test>" in web.log()
    assert "queued from webmail user bob@acme.test" in web.log()

    sent = c.request("GET", "/api/v1/messages?folder=Sent").json
    assert sent["total"] == 1, sent
    entry = sent["messages"][0]
    assert "Quarterly numbers" in entry["subject"]
    view = c.request("GET", f"/api/v1/messages/{entry['id']}").json
    assert view["headers"]["in_reply_to"].strip("<>") == "parent-1@example.net"
    assert [a["filename"] for a in view["attachments"]] == ["numbers.bin"]
    # A second user sees nothing of it.
    other = Client(web.http_port)
    assert other.login("carol@acme.test").status == 200
    assert other.request("GET", "/api/v1/messages?folder=Sent").json["total"] == 0
    assert other.request("GET", f"/api/v1/messages/{entry['id']}").status == 404


def test_send_from_an_alias_is_allowed(web, sink):  # noqa: F811
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(**{"from": "Sales@ACME.test", "cc": [], "bcc": [],
                                                     "attachments": []}))
    assert r.status == 202, r.body
    d = sink.wait_messages(1, timeout=30)[0]
    assert d.mail_from.lower() == "sales@acme.test"
    assert "sales@acme.test" in d.data.decode(errors="replace").lower()


def test_reply_keeps_the_thread(web, sink):  # noqa: F811
    """A reply to a reply: References is the parent's References followed by the parent's ID."""
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(**{"cc": [], "bcc": [], "attachments": [],
                                                     "in_reply_to": "<p2@example.net>",
                                                     "references": "<root@example.net> <p1@example.net>"}))
    assert r.status == 202, r.body
    msg = email.message_from_bytes(sink.wait_messages(1, timeout=30)[0].data, policy=email.policy.default)
    assert msg["In-Reply-To"].strip() == "<p2@example.net>"
    assert msg["References"].split() == ["<root@example.net>", "<p1@example.net>", "<p2@example.net>"]
    r = c.request("POST", "/api/v1/send", message(references=["not", "a string"]))
    assert r.status == 400


def test_from_spoofing_refused(web, sink):  # noqa: F811
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    for other in ("carol@acme.test", "eve@globex.test", "ceo@example.net"):
        r = c.request("POST", "/api/v1/send", message(**{"from": other}))
        assert r.status == 403, (other, r.body)
        assert r.json == {"error": "not your address", "code": "not_your_address"}
    assert c.request("GET", "/api/v1/messages?folder=Sent").json["total"] == 0
    assert sink.messages == []


@pytest.mark.parametrize("fields", [
    {"to": [], "cc": [], "bcc": []},
    {"to": ["not an address"]},
    {"to": "dave@example.net"},
    {"cc": [42]},
    {"bcc": ["dave@"]},
    {"to": ["a b@example.net"]},
    {"cc": ["<x@example.net>"]},
    {"subject": 7},
    {"text": ["x"]},
    {"from": None},
    {"from": "bob"},
    {"attachments": [{"filename": "x", "data_base64": "%%% not base64 %%%"}]},
    {"attachments": [{"filename": "x"}]},
    {"attachments": "nope"},
    {"to": ["dave@example.net"] * 1001},
])
def test_bad_fields_refused(web, sink, fields):  # noqa: F811
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(**fields))
    assert r.status == 400, (fields, r.body)
    assert "error" in r.json


def test_send_needs_csrf_and_session(web, sink):  # noqa: F811
    anon = Client(web.http_port)
    assert anon.request("POST", "/api/v1/send", message()).status == 401
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(), csrf=False)
    assert r.status == 403, r.body
    r = c.request("POST", "/api/v1/send", raw_body=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert c.request("GET", "/api/v1/messages?folder=Sent").json["total"] == 0
    assert sink.messages == []


def test_large_attachment_beyond_the_json_limit(web, sink):  # noqa: F811
    """/api/v1/send takes bodies up to HTTP_SEND_MAX (30 MB), not the 1 MB of other JSON routes."""
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB, 4 MiB as base64
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(bcc=[], attachments=[
        {"filename": "big.bin", "content_type": "application/octet-stream",
         "data_base64": base64.b64encode(big).decode()}]))
    assert r.status == 202, r.body
    d = sink.wait_messages(1, timeout=30)[0]
    msg = email.message_from_bytes(d.data, policy=email.policy.default)
    assert [a.get_payload(decode=True) for a in msg.iter_attachments()] == [big]


def test_send_follows_the_configured_limits(make_lifeboat, sink):
    """max_recipients and max_message_size apply to the webmail as to SMTP."""
    lb = make_lifeboat(outbound_relay=sink.route, max_recipients="3", max_message_size="64K")
    lb.start()
    lb.add_domain("acme.test", "acme", sink.route)
    lb.add_user("bob@acme.test")
    c = Client(lb.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(to=["a@example.net", "b@example.net"],
                                                  cc=["c@example.net"], bcc=["d@example.net"]))
    assert r.status == 400 and r.json["error"] == "too many recipients", r.body
    big = bytes(range(256)) * 400  # 100 KiB: over 64K once built
    r = c.request("POST", "/api/v1/send", message(bcc=[], attachments=[
        {"filename": "big.bin", "content_type": "application/octet-stream",
         "data_base64": base64.b64encode(big).decode()}]))
    assert r.status == 413 and "max_message_size" in r.json["error"], r.body
    r = c.request("POST", "/api/v1/send", message(bcc=[]))
    assert r.status == 202, r.body
    assert sink.wait_messages(1, timeout=30)


def test_sent_mail_goes_out_without_waiting_for_the_queue_poll(web, sink):  # noqa: F811
    """The committed send wakes the delivery engine (the queue runner's own poll is every 5 s)."""
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    r = c.request("POST", "/api/v1/send", message(bcc=[], cc=[]))
    assert r.status == 202, r.body
    assert sink.wait_messages(1, timeout=4.0)
