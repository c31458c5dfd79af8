"""
GET /api/v1/messages/ID with the parsed view (issue 4, item 3 and 4): decoded headers, the text,
the HTML body rebuilt by the allow-list sanitiser (no script, no handlers, remote images blocked
until ?images=1, cid: images pointing at our attachment URLs) and the attachment list. The
message is diverted into a continuity mailbox the way test_http_api.py does it.
"""
import base64

from lbtest import submit, wait_for
from test_http_api import Client, web  # noqa: F401  (the fixture is used by name)

HTML_MESSAGE = (
    "From: =?utf-8?q?Gr=C3=BC=C3=9Fe?= <alice@example.org>\r\n"
    "To: bob@acme.test\r\n"
    "Subject: =?utf-8?b?w5xiZXIgZGllIEJyw7xja2U=?=\r\n"
    "Date: Fri, 27 Nov 2026 22:00:00 +0000\r\n"
    "Message-ID: <view-1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: multipart/alternative; boundary=\"b2\"\r\n"
    "\r\n"
    "--b2\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "plain words\r\n"
    "--b2\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<p onclick=\"alert(1)\">hello <b>bold</b></p><script>alert(2)</script>"
    "<img src=\"http://tracker.example/p.gif\"><a href=\"javascript:alert(3)\">x</a>\r\n"
    "--b2--\r\n"
    "--b1\r\n"
    "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    + base64.b64encode(b"%PDF-1.4 fake").decode() + "\r\n"
    "--b1--\r\n"
)


def test_message_view_is_parsed_and_sanitised(web):  # noqa: F811
    qid = submit(web.smtp_port, "alice@example.org", ["bob@acme.test"], HTML_MESSAGE.encode())
    wait_for(lambda: any(e["msg_id"] == qid for e in web.mailbox("bob@acme.test")), timeout=20,
             what="the diverted copy")
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    listing = c.request("GET", "/api/v1/messages?folder=INBOX").json
    mid = listing["messages"][0]["id"]

    r = c.request("GET", f"/api/v1/messages/{mid}")
    assert r.status == 200, r.body
    m = r.json
    assert m["headers"]["subject"] == "Über die Brücke"
    assert "Grüße" in m["headers"]["from"]
    assert "plain words" in m["text"]
    html = m["html"]
    assert "<b>bold</b>" in html
    for bad in ("<script", "onclick", "javascript:", "alert(2)", ' src="http://tracker'):
        assert bad not in html, (bad, html)
    assert m["blocked_remote_images"] == 1
    assert [(a["filename"], a["content_type"], a["size"]) for a in m["attachments"]] == [
        ("report.pdf", "application/pdf", len(b"%PDF-1.4 fake"))]

    # The user asked to load remote images: the same message with them.
    r = c.request("GET", f"/api/v1/messages/{mid}?images=1")
    assert ' src="http://tracker.example/p.gif"' in r.json["html"]
    assert r.json["blocked_remote_images"] == 0


def test_message_view_of_another_user_is_404(web):  # noqa: F811
    qid = submit(web.smtp_port, "alice@example.org", ["bob@acme.test"], HTML_MESSAGE.encode())
    wait_for(lambda: any(e["msg_id"] == qid for e in web.mailbox("bob@acme.test")), timeout=20,
             what="the diverted copy")
    bob = Client(web.http_port)
    bob.login("bob@acme.test")
    mid = bob.request("GET", "/api/v1/messages?folder=INBOX").json["messages"][0]["id"]
    eve = Client(web.http_port)
    assert eve.login("eve@globex.test").status == 200
    r = eve.request("GET", f"/api/v1/messages/{mid}")
    assert r.status == 404 and r.json == {"error": r.json["error"], "code": "not_found"}


def test_encoded_nul_never_shortens_a_path(web):  # noqa: F811
    """libmicrohttpd would decode %00 and cut the path there; ours keeps it, so no route matches."""
    c = Client(web.http_port)
    assert c.request("GET", "/index.html%00.js").status == 404
    assert c.login("bob@acme.test").status == 200
    r = c.request("GET", "/api/v1/me%00x")
    assert r.status == 404 and "error" in r.json
    # Ordinary percent-encoding still decodes, in the path and in the query.
    assert c.request("GET", "/api/v1/m%65").status == 200
    r = c.request("GET", "/api/v1/messages?folder=IN%42OX")
    assert r.status == 200 and r.json["total"] == 0


def test_attachment_download(web):  # noqa: F811
    qid = submit(web.smtp_port, "alice@example.org", ["bob@acme.test"], HTML_MESSAGE.encode())
    wait_for(lambda: any(e["msg_id"] == qid for e in web.mailbox("bob@acme.test")), timeout=20,
             what="the diverted copy")
    bob = Client(web.http_port)
    bob.login("bob@acme.test")
    mid = bob.request("GET", "/api/v1/messages?folder=INBOX").json["messages"][0]["id"]
    r = bob.request("GET", f"/api/v1/messages/{mid}/attachments/0")
    assert r.status == 200 and r.body == b"%PDF-1.4 fake"
    assert r.getheader("Content-Type") == "application/pdf"
    disp = r.getheader("Content-Disposition")
    assert disp.startswith("attachment;") and 'filename="report.pdf"' in disp, disp
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert bob.request("GET", f"/api/v1/messages/{mid}/attachments/7").status == 404
    assert bob.request("GET", f"/api/v1/messages/{mid}/attachments/01").status == 404
    eve = Client(web.http_port)
    eve.login("eve@globex.test")
    assert eve.request("GET", f"/api/v1/messages/{mid}/attachments/0").status == 404
