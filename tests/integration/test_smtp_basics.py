"""
The SMTP section of SPEC.md seen from a client: greeting, EHLO extensions, PIPELINING,
CHUNKING (BDAT), SMTPUTF8, STARTTLS (only with a certificate), the Received: header.
"""
import re
import smtplib
import socket
import ssl
import subprocess

import pytest

import lbtest
from lbtest import RawSMTP, make_message, new_msgid


def test_banner_and_ehlo_extensions(acme):
    with RawSMTP(acme.smtp_port) as c:
        code, text = c.banner
        assert code == 220 and "lifeboat.test" in text, text
        ext = c.ehlo()
        assert ext[0].startswith("lifeboat.test"), ext
        names = {e.split()[0].upper() for e in ext[1:]}
        for want in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"):
            assert want in names, f"EHLO lacks {want}: {ext}"
        assert "STARTTLS" not in names, "STARTTLS offered without a certificate"
        assert "AUTH" not in names, "AUTH offered on port 25"
        size = [e for e in ext if e.upper().startswith("SIZE")][0]
        assert size.split()[1] == str(10 * 1024 * 1024), size
        code, text = c.cmd("QUIT")
        assert code == 221
        assert c.is_closed()


def test_helo_and_enhanced_codes(acme):
    with RawSMTP(acme.smtp_port) as c:
        code, text = c.cmd("HELO old.example.org")
        assert code == 250, text
        code, text = c.cmd("MAIL FROM:<alice@example.org>")
        assert code == 250 and " 2.1.0" in text, text
        code, text = c.cmd("RCPT TO:<bob@acme.test>")
        assert code == 250 and " 2.1.5" in text, text
        code, text = c.cmd("RSET")
        assert code == 250
        code, text = c.cmd("RCPT TO:<bob@acme.test>")  # RSET dropped the transaction
        assert code == 503 and " 5.5.1" in text, text
        code, text = c.cmd("VRFY bob@acme.test")
        assert code in (252, 502), text
        code, text = c.cmd("NOOP")
        assert code == 250


def test_pipelining_in_one_write(acme, sink):
    mid = new_msgid("pipe")
    msg = make_message(mid)
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@acme.test>\r\nRCPT TO:<carol@acme.test>\r\n"
               b"RCPT TO:<x@example.com>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 250, 554, 354], codes
        c.send(lbtest.dot_stuff(msg) + b".\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 221
    lbtest.wait_for(lambda: sum(len(m.rcpt_tos) for m in sink.messages) >= 2, what="two recipients delivered")
    for m in sink.messages:
        lbtest.assert_relayed_unchanged(m.data, msg)


def test_bdat_chunking(acme, sink):
    mid = new_msgid("bdat")
    msg = make_message(mid)  # BDAT carries the bytes as they are: no dot-stuffing
    a, b = msg[:700], msg[700:]
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org> BODY=8BITMIME")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        c.send(f"BDAT {len(a)}\r\n".encode() + a)
        code, text = c.reply()
        assert code == 250, text
        c.send(f"BDAT {len(b)} LAST\r\n".encode() + b)
        code, text = c.reply()
        assert code == 250, text
        # A second message in the same session, one chunk, pipelined with its envelope.
        mid2 = new_msgid("bdat2")
        msg2 = make_message(mid2)
        c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@acme.test>\r\n"
               + f"BDAT {len(msg2)} LAST\r\n".encode() + msg2)
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 250]
        assert c.cmd("QUIT")[0] == 221
    sink.wait_messages(2)
    for m in sink.messages:
        want = msg if m.header("Message-ID").strip() == mid else msg2
        lbtest.assert_relayed_unchanged(m.data, want)


def test_bdat_body_with_dot_line_relayed_intact(acme, sink):
    """BDAT carries no dot-stuffing: a body with a lone "." line and what looks like a second
    transaction must reach the customer's server whole (lifeboatd relays with DATA, so it
    has to stuff the dots), never split into two messages there."""
    mid = new_msgid("bdat-dot")
    msg = make_message(mid, body="first part\r\n.\r\nMAIL FROM:<evil@attacker.example>\r\n"
                                 "RCPT TO:<bob@acme.test>\r\nDATA\r\nsmuggled\r\n.\r\nlast line\r\n")
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        c.send(f"BDAT {len(msg)} LAST\r\n".encode() + msg)
        code, text = c.reply()
        assert code == 250, text
    got = sink.wait_messages(1)
    acme.wait_queue_empty()
    assert len(sink.messages) == 1 and sink.messages[0].mail_from == "alice@example.org"
    lbtest.assert_relayed_unchanged(got[0].data, msg)


def test_bdat_then_data_refused(acme):
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        c.send(b"BDAT 5\r\nHello")
        assert c.reply()[0] == 250
        code, text = c.cmd("DATA")
        assert code == 503, text
        assert c.cmd("RSET")[0] == 250


def test_smtputf8(acme, sink):
    mid = new_msgid("utf8")
    msg = make_message(mid, sender="jörg@exämple.org", to="bob@acme.test", subject="Grüße")
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        code, text = c.cmd("MAIL FROM:<jörg@exämple.org> SMTPUTF8 BODY=8BITMIME")
        assert code == 250, text
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(lbtest.dot_stuff(msg) + b".\r\n")
        assert c.reply()[0] == 250
    got = sink.wait_messages(1)[0]
    assert got.mail_from == "jörg@exämple.org"
    assert "SMTPUTF8" in [o.upper() for o in got.mail_options]
    lbtest.assert_relayed_unchanged(got.data, msg)


def test_received_header(acme, sink):
    mid = new_msgid("rcvd")
    with smtplib.SMTP("127.0.0.1", acme.smtp_port, local_hostname="helo.example.org") as c:
        c.sendmail("alice@example.org", ["bob@acme.test"], make_message(mid), mail_options=["BODY=8BITMIME"])
    got = sink.wait_messages(1)[0]
    removed, _rest = lbtest.strip_added_received(got.data)
    rcvd = removed[0].decode()
    assert rcvd.startswith("Received: from helo.example.org"), rcvd
    assert "127.0.0.1" in rcvd and "by lifeboat.test" in rcvd, rcvd
    assert "for <bob@acme.test>" in rcvd or ";" in rcvd
    assert rcvd.endswith("\r\n") and all(len(ln) <= 998 for ln in rcvd.split("\r\n"))
    # The queue ID it names is the one in the log.
    m = re.search(r"\bid ([0-9A-Za-z]+)", " ".join(rcvd.split()))
    assert m, rcvd
    qid = m.group(1)
    assert f"{qid}: " in acme.log(), (qid, rcvd)


# ------------------------------------------------------------------ STARTTLS


@pytest.fixture
def tls_files(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    cp = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                         "-out", str(cert), "-subj", "/CN=lifeboat.test", "-days", "2"],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    return str(cert), str(key)


@pytest.fixture
def acme_tls(make_lifeboat, sink, tls_files):
    lb = make_lifeboat(tls_cert_file=tls_files[0], tls_key_file=tls_files[1])
    lb.start()
    lb.add_domain("acme.test", "acme", sink.route)
    return lb


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_starttls_delivery(acme_tls, sink):
    mid = new_msgid("tls")
    msg = make_message(mid)
    with smtplib.SMTP("127.0.0.1", acme_tls.smtp_port, timeout=20) as c:
        c.ehlo()
        assert c.has_extn("starttls")
        code, _ = c.starttls(context=client_tls_context())
        assert code == 220
        c.ehlo()
        assert not c.has_extn("starttls"), "STARTTLS offered again inside TLS"
        assert c.sendmail("alice@example.org", ["bob@acme.test"], msg, mail_options=["BODY=8BITMIME"]) == {}
    got = sink.wait_messages(1)[0]
    lbtest.assert_relayed_unchanged(got.data, msg)
    rcvd = lbtest.strip_added_received(got.data)[0][0]
    assert b"ESMTPS" in rcvd or b"TLS" in rcvd, rcvd


def test_starttls_command_injection(acme_tls):
    """Plaintext pipelined after STARTTLS must be thrown away, not run inside TLS
    (CVE-2011-0411 class)."""
    raw = socket.create_connection(("127.0.0.1", acme_tls.smtp_port), timeout=10)
    try:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220")
        raw.sendall(b"EHLO c.example\r\n")
        ehlo = []
        while True:
            line = f.readline()
            ehlo.append(line[4:].strip().upper())
            if line[3:4] != b"-":
                break
        assert b"STARTTLS" in ehlo, ehlo
        raw.sendall(b"STARTTLS\r\nRSET\r\n")
        line = f.readline()
        if not line.startswith(b"220"):
            # Refusing the pipelined plaintext outright is fine too.
            assert line[:1] in (b"5", b"4"), line
            return
        tls = client_tls_context().wrap_socket(raw, server_hostname="lifeboat.test")
        tls.settimeout(10)
        try:
            tls.sendall(b"EHLO c.example\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    return  # closed: the injection was not run
                data += chunk
            first = data.split(b"\r\n", 1)[0]
            assert first.startswith(b"250-") or first.startswith(b"250 lifeboat"), (
                f"first reply inside TLS is not EHLO's: {first!r} (the injected RSET ran?)")
        finally:
            tls.close()
    finally:
        raw.close()
