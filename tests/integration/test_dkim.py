"""
DKIM signing of the mail webmail users send (issue 4, item 5; done when: "a message sent from the
webmail arrives at an aiosmtpd 'internet' destination with the user's domain in From, valid MIME,
and a DKIM signature that verifies").

The key is made the way docs/OPERATIONS.md tells an operator to (opendkim-genkey), given to
lifeboat with `lifeboatctl domain set --dkim-selector --dkim-key`, and its SELECTOR.txt is served
as it is by a local DNS server (dkim_dns.pl, Net::DNS::Nameserver). What arrives at the sink
(outbound_relay) is verified by Mail::DKIM (dkim_verify.pl), which looks the key up in that DNS
server like any receiver on the internet would.

The `web` fixture of test_http_api.py is reused; this module's `lifeboat` fixture (which `web`
asks for by name) starts the daemon with outbound_relay pointing at the sink.
"""
import base64
import email
import email.policy
import os
import subprocess

import pytest

import lbtest
from test_http_api import Client, web  # noqa: F401  (the fixture is used by name)

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACHMENT = bytes(range(256)) * 16
SUBJECT = "Angebot für Zürich — 見積もり"


@pytest.fixture
def lifeboat(make_lifeboat, sink):
    lb = make_lifeboat(outbound_relay=sink.route)
    lb.start()
    return lb


@pytest.fixture
def dkim_key(tmp_path):
    """opendkim-genkey's sel.private and sel.txt for acme.test."""
    keydir = tmp_path / "dkim"
    keydir.mkdir()
    subprocess.run(["opendkim-genkey", "-s", "sel", "-d", "acme.test", "-D", str(keydir)], check=True,
                   capture_output=True)
    return keydir / "sel.private", keydir / "sel.txt"


@pytest.fixture
def dns(tmp_path, dkim_key):
    """A DNS server on 127.0.0.1 that publishes sel.txt in acme.test; yields its port."""
    zone = tmp_path / "acme.test.zone"
    zone.write_text("$ORIGIN acme.test.\n$TTL 300\n" + dkim_key[1].read_text())
    port = lbtest.free_port()
    proc = subprocess.Popen(["perl", os.path.join(HERE, "dkim_dns.pl"), str(port), str(zone)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"dkim_dns.pl did not start: {line!r} {proc.stderr.read()}"
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def dkim_verify(data, port):
    """Mail::DKIM's verdict on data: (result, output) where result is "pass", "fail", "none"..."""
    cp = subprocess.run(["perl", os.path.join(HERE, "dkim_verify.pl"), str(port)], input=data,
                        capture_output=True, timeout=60)
    out = cp.stdout.decode(errors="replace")
    assert cp.returncode == 0, f"dkim_verify.pl failed: {out} {cp.stderr.decode(errors='replace')}"
    return out.split()[0], out


def send(web, sender="bob@acme.test", **over):  # noqa: F811
    c = Client(web.http_port)
    assert c.login("bob@acme.test").status == 200
    m = {
        "from": sender,
        "to": ["dave@example.net"],
        "subject": SUBJECT,
        "text": "Hallo Dave,\nanbei das Angebot. Grüße\n",
        "attachments": [{"filename": "angebot-ü.bin", "content_type": "application/octet-stream",
                         "data_base64": base64.b64encode(ATTACHMENT).decode()}],
    }
    m.update(over)
    r = c.request("POST", "/api/v1/send", m)
    assert r.status == 202, r.body
    return r.json["id"]


def assert_valid_mime(data, sender):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert sender in str(msg["From"]).lower()
    assert str(msg["Subject"]) == SUBJECT
    assert msg["Message-ID"] and msg["Date"] and msg["MIME-Version"] == "1.0"
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    body = msg.get_body(preferencelist=("plain",))
    assert "anbei das Angebot. Grüße" in body.get_content()
    atts = list(msg.iter_attachments())
    assert [a.get_filename() for a in atts] == ["angebot-ü.bin"]
    assert atts[0].get_payload(decode=True) == ATTACHMENT
    return msg


def tamper_one_body_byte(data):
    """data with one letter of the text body changed (the headers left alone)."""
    at = data.index(b"anbei das Angebot")
    assert at > data.index(b"\r\n\r\n")
    return data[:at] + b"A" + data[at + 1:]


def test_webmail_message_is_signed_and_verifies(web, sink, dkim_key, dns):  # noqa: F811
    web.ctl_ok("domain", "set", "acme.test", "--dkim-selector", "sel", "--dkim-key", str(dkim_key[0]))
    qid = send(web)
    d = sink.wait_messages(1, timeout=30)[0]
    assert d.mail_from.lower() == "bob@acme.test"
    assert d.data.startswith(b"DKIM-Signature: ")  # in front of the message, before any other header
    msg = assert_valid_mime(d.data, "bob@acme.test")
    assert len(msg.get_all("DKIM-Signature")) == 1
    tags = dict(t.strip().split("=", 1) for t in "".join(str(msg["DKIM-Signature"]).split()).split(";") if t)
    assert (tags["v"], tags["a"], tags["c"], tags["d"], tags["s"]) == ("1", "rsa-sha256", "relaxed/relaxed",
                                                                       "acme.test", "sel")
    assert "l" not in tags  # the whole body
    signed = tags["h"].lower().split(":")
    assert signed.count("from") == 2  # over-signed: a From added later breaks the signature
    assert {"to", "subject", "date", "message-id", "mime-version", "content-type"} <= set(signed)

    result, out = dkim_verify(d.data, dns)
    assert result == "pass", out
    assert "signature: d=acme.test s=sel a=rsa-sha256 result=pass" in out, out
    result, out = dkim_verify(tamper_one_body_byte(d.data), dns)
    assert result == "fail", out
    # A signed header changed breaks it too.
    result, out = dkim_verify(d.data.replace(b"\r\nTo: dave@example.net", b"\r\nTo: eve@example.net", 1), dns)
    assert result == "fail", out

    log = web.log()
    assert f"{qid}: dkim=signed d=acme.test s=sel" in log
    assert "BEGIN PRIVATE KEY" not in log and "MII" not in log


def test_alias_in_from_is_signed_for_its_domain(web, sink, dkim_key, dns):  # noqa: F811
    web.ctl_ok("domain", "set", "acme.test", "--dkim-selector", "sel", "--dkim-key", str(dkim_key[0]))
    send(web, sender="sales@acme.test", attachments=[])
    d = sink.wait_messages(1, timeout=30)[0]
    assert d.mail_from.lower() == "sales@acme.test"
    result, out = dkim_verify(d.data, dns)
    assert result == "pass", out


def test_domain_without_key_sends_unsigned(web, sink, dns):  # noqa: F811
    qid = send(web)
    d = sink.wait_messages(1, timeout=30)[0]
    msg = assert_valid_mime(d.data, "bob@acme.test")
    assert msg["DKIM-Signature"] is None and b"DKIM-Signature" not in d.data
    result, out = dkim_verify(d.data, dns)
    assert result == "none", out
    log = web.log()
    assert f"{qid}: from=<bob@acme.test>" in log
    assert "dkim=" not in log and "DKIM signing" not in log


def test_unusable_key_sends_unsigned_with_a_warning(web, sink, dkim_key):  # noqa: F811
    """The key is the operator's to fix: the user's mail still goes, unsigned, and the log says why."""
    key = dkim_key[0]
    web.ctl_ok("domain", "set", "acme.test", "--dkim-selector", "sel", "--dkim-key", str(key))
    key.unlink()
    qid = send(web, attachments=[])
    d = sink.wait_messages(1, timeout=30)[0]
    assert b"DKIM-Signature" not in d.data
    assert (f"warning: {qid}: DKIM signing for acme.test failed: cannot open key file {key}: "
            "No such file or directory; sending unsigned") in web.log()

    # The DNS record (sel.txt) given instead of the private key.
    key.write_bytes(dkim_key[1].read_bytes())
    qid = send(web, attachments=[])
    d = sink.wait_messages(2, timeout=30)[1]
    assert b"DKIM-Signature" not in d.data
    assert (f"warning: {qid}: DKIM signing for acme.test failed: selector sel, key file {key}: this is the "
            "DNS record (SELECTOR.txt), not the private key (SELECTOR.private); sending unsigned") in web.log()

