"""
Webmail sends while a hosted domain is in outage (issue 4, item 5: "recipients on a hosted domain
in outage land in their continuity mailbox").

bob@acme.test writes to carol@acme.test (his own domain, whose server is down) and to an outside
address in one message. The outside copy goes to the internet (outbound_relay, the sink); carol's
copy takes the ordinary delivery path, meets the dead route and is diverted into her INBOX, where
the webmail shows it to her. Nothing is sent twice and nothing reaches the sink for carol.
"""
import email
import email.policy

import pytest

from lbtest import wait_for
from test_http_api import Client, web  # noqa: F401  (the fixture is used by name)


@pytest.fixture
def lifeboat(make_lifeboat, sink):
    lb = make_lifeboat(outbound_relay=sink.route, dr_probe_interval="1s", delivery_timeout="3s")
    lb.start()
    return lb


def test_send_to_own_domain_in_outage_lands_in_the_mailbox(web, sink):  # noqa: F811
    bob = Client(web.http_port)
    assert bob.login("bob@acme.test").status == 200
    r = bob.request("POST", "/api/v1/send", {
        "from": "bob@acme.test",
        "to": ["carol@acme.test", "dave@example.net"],
        "subject": "Lunch during the outage",
        "text": "Our server is down, the webmail works.\n",
    })
    assert r.status == 202, r.body
    qid = r.json["id"]

    # The outside copy reaches the internet...
    (out,) = sink.wait_messages(1, timeout=30)
    assert [a.lower() for a in out.rcpt_tos] == ["dave@example.net"]
    assert email.message_from_bytes(out.data, policy=email.policy.default)["Subject"] == "Lunch during the outage"

    # ... carol's copy meets the dead server and goes into her continuity mailbox.
    web.wait_continuity_state("acme.test", "outage", timeout=20)
    entry = wait_for(lambda: next((e for e in web.mailbox("carol@acme.test") if e["msg_id"] == qid), None),
                     timeout=20, what="carol's copy in her mailbox")
    assert entry["folder"] == "INBOX", entry

    carol = Client(web.http_port)
    assert carol.login("carol@acme.test").status == 200
    listing = carol.request("GET", "/api/v1/messages?folder=INBOX").json
    assert listing["total"] == 1, listing
    m = listing["messages"][0]
    assert m["subject"] == "Lunch during the outage" and "bob@acme.test" in m["from"]
    view = carol.request("GET", f"/api/v1/messages/{m['id']}").json
    assert "the webmail works" in view["text"]

    # bob's Sent folder has the message once; the sink saw exactly one delivery (dave's).
    sent = bob.request("GET", "/api/v1/messages?folder=Sent").json
    assert sent["total"] == 1, sent
    assert len(sink.messages) == 1
    assert f"{qid}: to=<carol@acme.test>" in web.log() and "status=continuity" in web.log()
