"""
Issue 2, done-when 1: swaks, Python smtplib and a real Postfix (as a sending MTA) deliver
through lifeboatd to a real Postfix and to aiosmtpd destinations; the bytes arrive unchanged
apart from the added Received: header.

The first two tests check the peers themselves (no lifeboatd in the path), so that a failure
further down points at lifeboatd and not at the harness.
"""
import shutil
import smtplib
import subprocess

import pytest

import lbtest
from lbtest import assert_postfix_delivered_unchanged, assert_relayed_unchanged, make_message, new_msgid


def swaks_send(port, sender, rcpt, msg, tmp_path):
    # swaks ends DATA with CRLF . CRLF after the file's last line: a file without the
    # final line end arrives as exactly `msg`.
    assert msg.endswith(b"\r\n")
    path = tmp_path / "swaks-data.eml"
    path.write_bytes(msg[:-2])
    cp = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", sender, "--to", rcpt, "--data", f"@{path}",
         "--helo", "swaks.example.org", "--timeout", "30"],
        capture_output=True, text=True, timeout=60,
    )
    assert cp.returncode == 0, f"swaks failed ({cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-2000:]}"
    return cp


def smtplib_send(port, sender, rcpts, msg):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="smtplib.example.org", timeout=30) as c:
        c.ehlo()
        assert c.has_extn("8bitmime")
        refused = c.sendmail(sender, rcpts, msg, mail_options=["BODY=8BITMIME"])
        assert refused == {}


# ------------------------------------------------------------------ the peers alone


def test_peer_sanity_swaks_to_aiosmtpd(sink, tmp_path):
    msg = make_message(new_msgid("peer"))
    swaks_send(sink.port, "alice@example.org", "bob@acme.test", msg, tmp_path)
    assert sink.wait_messages(1)[0].data == msg


def test_peer_sanity_postfix_to_postfix(postfix_dest):
    sender = lbtest.PostfixSender(postfix_dest.port)
    try:
        sender.start()
        msg = make_message(new_msgid("peer"))
        smtplib_send(sender.port, "alice@example.org", ["bob@acme.test"], msg)
        arrived = postfix_dest.wait_delivered(1)[0]
        _removed, rest = lbtest.split_leading_headers(arrived, lbtest.POSTFIX_ADDED)
        assert rest == msg.replace(b"\r\n", b"\n")
    finally:
        sender.cleanup()


# ------------------------------------------------------------------ through lifeboatd to aiosmtpd


def test_swaks_to_aiosmtpd(acme, sink, tmp_path):
    msg = make_message(new_msgid("swaks"))
    swaks_send(acme.smtp_port, "alice@example.org", "bob@acme.test", msg, tmp_path)
    got = sink.wait_messages(1)[0]
    assert got.mail_from == "alice@example.org"
    assert [r.lower() for r in got.rcpt_tos] == ["bob@acme.test"]
    assert_relayed_unchanged(got.data, msg)


def test_smtplib_to_aiosmtpd(acme, sink):
    msg = make_message(new_msgid("smtplib"))
    smtplib_send(acme.smtp_port, "alice@example.org", ["bob@acme.test", "carol@acme.test"], msg)
    wait = lbtest.wait_for(
        lambda: sorted(r.lower() for m in sink.messages for r in m.rcpt_tos) == ["bob@acme.test", "carol@acme.test"],
        timeout=30, what="both recipients at the sink")
    assert wait
    for got in sink.messages:
        assert got.mail_from == "alice@example.org"
        assert_relayed_unchanged(got.data, msg)


def test_postfix_sender_to_aiosmtpd(acme, sink, postfix_sender):
    pf = postfix_sender(acme)
    msg = make_message(new_msgid("pfsend"))
    smtplib_send(pf.port, "alice@example.org", ["bob@acme.test"], msg)
    got = sink.wait_messages(1, timeout=45)[0]
    assert got.mail_from == "alice@example.org"
    # Postfix added its own Received: before handing the message to lifeboatd.
    assert_relayed_unchanged(got.data, msg, upstream_received=1)
    assert b"sender.postfix.test" in lbtest.strip_added_received(got.data)[0][1]


# ------------------------------------------------------------------ through lifeboatd to Postfix


@pytest.fixture
def acme_postfix(lifeboat, postfix_dest):
    lifeboat.add_domain("acme.test", "acme", postfix_dest.route)
    return lifeboat


def test_swaks_to_postfix(acme_postfix, postfix_dest, tmp_path):
    msg = make_message(new_msgid("swaks-pf"))
    swaks_send(acme_postfix.smtp_port, "alice@example.org", "bob@acme.test", msg, tmp_path)
    arrived = postfix_dest.wait_delivered(1, timeout=45)[0]
    assert_postfix_delivered_unchanged(arrived, msg)
    assert arrived.startswith(b"Return-Path: <alice@example.org>")


def test_smtplib_to_postfix(acme_postfix, postfix_dest):
    msg = make_message(new_msgid("smtplib-pf"))
    smtplib_send(acme_postfix.smtp_port, "alice@example.org", ["bob@acme.test"], msg)
    arrived = postfix_dest.wait_delivered(1, timeout=45)[0]
    assert_postfix_delivered_unchanged(arrived, msg)


def test_postfix_sender_to_postfix(acme_postfix, postfix_dest, postfix_sender):
    pf = postfix_sender(acme_postfix)
    msgs = [make_message(new_msgid(f"pf-pf{i}"), subject=f"postfix to postfix {i}") for i in range(3)]
    for msg in msgs:
        smtplib_send(pf.port, "alice@example.org", ["bob@acme.test"], msg)
    arrived = postfix_dest.wait_delivered(3, timeout=60)
    assert len(arrived) == 3
    by_subject = {}
    for a in arrived:
        _removed, rest = lbtest.split_leading_headers(a, lbtest.POSTFIX_ADDED)
        by_subject[rest.split(b"Subject: ", 1)[1].split(b"\n", 1)[0]] = a
    for i, msg in enumerate(msgs):
        assert_postfix_delivered_unchanged(by_subject[f"postfix to postfix {i}".encode()], msg)


def test_outbound_starttls_to_postfix(lifeboat, tmp_path):
    """The customer's server offers STARTTLS: lifeboatd's client uses it (opportunistic)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    cp = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                         "-out", str(cert), "-subj", "/CN=dest.postfix.test", "-days", "2"],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    pf = lbtest.PostfixDestination(domains=("acme.test",))
    try:
        for f in (key, cert):
            shutil.copy(f, pf.etc)
        with open(f"{pf.etc}/main.cf", "a") as f:
            f.write("smtpd_tls_security_level = may\n"
                    f"smtpd_tls_cert_file = {pf.etc}/cert.pem\nsmtpd_tls_key_file = {pf.etc}/key.pem\n"
                    "smtpd_tls_received_header = yes\nsmtpd_tls_loglevel = 1\n")
        pf.start()
        lifeboat.add_domain("acme.test", "acme", pf.route)
        msg = make_message(new_msgid("tls-out"))
        smtplib_send(lifeboat.smtp_port, "alice@example.org", ["bob@acme.test"], msg)
        arrived = pf.wait_delivered(1, timeout=45)[0]
        assert_postfix_delivered_unchanged(arrived, msg)
        top = arrived.split(b"\n\n", 1)[0]
        assert b"with ESMTPS" in top, f"delivered without TLS:\n{top.decode(errors='replace')}"
    finally:
        pf.cleanup()
