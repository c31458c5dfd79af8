"""
Issue 2, done-when 5: malformed commands, 10,000-character lines, bare LF (SMTP smuggling), a
message over SIZE, 2,000 recipients and a client that stalls mid-DATA: each gets the right
reply or timeout, and other sessions carry on. Also the connection limits.
"""
import os
import smtplib
import socket
import time

import pytest

import lbtest
from lbtest import RawSMTP, SMTPClosed, make_message, new_msgid, wait_for


def alive(lb):
    """A fresh session still gets a banner and a NOOP answer: the daemon carries on."""
    with RawSMTP(lb.smtp_port) as c:
        # A 421 (a slot not yet freed) is "not yet", so wait_for can try again.
        return c.banner[0] == 220 and c.cmd("NOOP")[0] == 250


def send_one(lb, tag="ok"):
    mid = new_msgid(tag)
    with smtplib.SMTP("127.0.0.1", lb.smtp_port, timeout=20) as c:
        assert c.sendmail("alice@example.org", ["bob@acme.test"], make_message(mid),
                          mail_options=["BODY=8BITMIME"]) == {}
    return mid


# ------------------------------------------------------------------ malformed commands

MALFORMED = [
    # (commands before, the bad command, accepted reply codes)
    ([], "FOO BAR", {500}),
    ([], "", {500, 501}),
    ([], "\xff\xfe\x01garbage", {500}),
    ([], "NOOP\x00X", {500, 501}),
    ([], "HELO", {501}),
    ([], "EHLO", {501}),
    (["EHLO c.example"], "MAIL", {501}),
    (["EHLO c.example"], "MAIL FROM:", {501}),
    (["EHLO c.example"], "MAIL FROM:<unterminated@example.org", {501, 553}),
    (["EHLO c.example"], "MAIL TO:<a@example.org>", {501}),
    (["EHLO c.example"], "MAIL FROM:<a@@example.org>", {501, 553}),
    (["EHLO c.example"], "MAIL FROM:<a@example.org> BOGUS=1", {501, 555}),
    (["EHLO c.example"], "MAIL FROM:<a@example.org> SIZE=lots", {501, 555}),
    (["EHLO c.example"], "MAIL FROM:<a@example.org> BODY=9BITMIME", {501, 555}),
    (["EHLO c.example", "MAIL FROM:<a@example.org>"], "RCPT TO:<>", {501, 553}),
    (["EHLO c.example", "MAIL FROM:<a@example.org>"], "RCPT TO:", {501}),
    (["EHLO c.example", "MAIL FROM:<a@example.org>"], "RCPT bob@acme.test", {501}),
    (["EHLO c.example", "MAIL FROM:<a@example.org>"], "RCPT TO:<bob@acme.test> NOTIFY=SOMETIMES", {501, 555}),
    (["EHLO c.example"], "DATA extra", {501, 503}),
    # sequence errors: 503
    (["EHLO c.example"], "RCPT TO:<bob@acme.test>", {503}),
    (["EHLO c.example"], "DATA", {503}),
    (["EHLO c.example", "MAIL FROM:<a@example.org>"], "MAIL FROM:<b@example.org>", {503}),
    (["EHLO c.example", "MAIL FROM:<a@example.org>"], "DATA", {503, 554}),
    # BDAT without a transaction: refused, its chunk still read and thrown away (RFC 3030)
    (["EHLO c.example"], "BDAT 10 LAST\r\n0123456789", {503}),
]


# RFC 5321 4.2.4: 500 (syntax error, also "command line too long") and 501 (syntax error in
# parameters) are both right for a malformed argument.
MALFORMED = [(b, bad, codes | {500} if 501 in codes else codes) for b, bad, codes in MALFORMED]


@pytest.mark.parametrize("before,bad,codes", MALFORMED, ids=[repr(m[1])[:40] for m in MALFORMED])
def test_malformed_command(acme, before, bad, codes):
    with RawSMTP(acme.smtp_port) as c:
        for line in before:
            assert c.cmd(line)[0] in (250,), line
        # a bad command that carries its own line end also carries data (BDAT)
        c.send(bad.encode("latin-1") + (b"" if "\r\n" in bad else b"\r\n"))
        code, text = c.reply()
        assert code in codes, f"{bad!r}: expected one of {sorted(codes)}, got {text!r}"
        # The session carries on after a syntax error.
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("NOOP")[0] == 250


def test_session_works_after_errors(acme, sink):
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        for bad in ("FOO", "MAIL FROM:", "RCPT TO:<bob@acme.test>"):
            assert 500 <= c.cmd(bad)[0] < 600
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        mid = new_msgid("after-errors")
        msg = make_message(mid)
        c.send(lbtest.dot_stuff(msg) + b".\r\n")
        assert c.reply()[0] == 250
        assert c.cmd("QUIT")[0] == 221
    got = sink.wait_messages(1)
    lbtest.assert_relayed_unchanged(got[0].data, msg)


# ------------------------------------------------------------------ long lines


@pytest.mark.parametrize("line", [
    "NOOP " + "x" * 10000,
    "MAIL FROM:<" + "a" * 10000 + "@example.org>",
    "x" * 10000,
], ids=["NOOP", "MAIL", "no-verb"])
def test_10000_character_command_line(acme, line):
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        c.send(line + "\r\n")
        code, text = c.reply()
        assert code == 500, f"a 10,000-character line: expected 500, got {text[:200]!r}"
        # Either the session goes on, or it is closed cleanly (after a reply, no reset).
        try:
            follow = c.cmd("NOOP")
        except (SMTPClosed, ConnectionResetError):
            follow = None
        assert follow is None or follow[0] in (250, 421), follow
        if follow is None or follow[0] == 421:
            assert c.is_closed()
    assert alive(acme)


def test_10000_character_line_in_data(acme, sink):
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: long line\r\n\r\n" + b"y" * 10000 + b"\r\nend\r\n.\r\n")
        code, text = c.reply()
        assert 500 <= code < 600, f"message with a 10,000-character line: expected 5xx, got {text!r}"
        assert c.cmd("RSET")[0] == 250
    mid = send_one(acme, "after-long-data")
    sink.wait_messages(1)
    assert lbtest.message_ids(sink.messages) == [mid]


def test_998_character_line_is_the_limit(acme, sink):
    """RFC 5322 2.1.1: 998 characters a line (CRLF excluded) are fine, 999 are not."""
    ok_id = new_msgid("998")
    ok = make_message(ok_id, body="a" * 998 + "\r\n")
    bad = make_message(new_msgid("999"), body="b" * 999 + "\r\n")
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        for msg, want in ((bad, 5), (ok, 2)):
            assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
            assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(lbtest.dot_stuff(msg) + b".\r\n")
            code, text = c.reply()
            assert code // 100 == want, f"{len(msg.splitlines()[-1])}-character line: {text!r}"
    got = sink.wait_messages(1)
    lbtest.assert_relayed_unchanged(got[0].data, ok)
    acme.wait_queue_empty()
    assert lbtest.message_ids(sink.messages) == [ok_id]


def test_many_long_lines_do_not_grow_memory_unbounded(acme):
    """1 MB without any line end in command state: refused, the daemon stays up."""
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        try:
            c.send(b"z" * (1 << 20))
            c.send(b"\r\n")
            code, _ = c.reply()
            assert code in (500, 421)
        except (SMTPClosed, BrokenPipeError, ConnectionResetError):
            pass
    assert alive(acme)


# ------------------------------------------------------------------ bare LF / smuggling

SMUGGLE_SEPARATORS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
}


@pytest.mark.parametrize("sep", list(SMUGGLE_SEPARATORS), ids=list(SMUGGLE_SEPARATORS))
def test_smtp_smuggling_refused(acme, sink, sep):
    evil = "evil@attacker.example"
    payload = (
        b"From: alice@example.org\r\nTo: bob@acme.test\r\nSubject: carrier\r\n\r\ncarrier body"
        + SMUGGLE_SEPARATORS[sep]
        + f"MAIL FROM:<{evil}>\r\nRCPT TO:<bob@acme.test>\r\nDATA\r\n".encode()
        + b"From: evil@attacker.example\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"
    )
    replies = []
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(payload)
        c.send(b"QUIT\r\n")
        try:
            while True:
                code, text = c.reply(timeout=10)
                replies.append((code, text))
                if code == 221:
                    break
        except (SMTPClosed, ConnectionResetError):
            pass
    codes = [r[0] for r in replies]
    # One answer to the one DATA (250: carried as data; 5xx: refused), then QUIT's 221.
    # A smuggled transaction would show up as 250 250 354 250.
    assert codes[:1] and (codes[0] == 250 or 500 <= codes[0] < 600), replies
    assert 354 not in codes, f"the smuggled DATA was taken as a command: {replies}"
    assert codes.count(250) <= 1, f"more than one message accepted: {replies}"
    acme.wait_queue_empty()
    time.sleep(0.5)
    for m in sink.messages:
        assert m.mail_from != evil, "the smuggled envelope reached the customer's server"
        # If carried, it is one message: the smuggled text is inside it, never split off.
        assert b"carrier body" in m.data and b"smuggled body" in m.data
    assert len(sink.messages) <= 1
    assert alive(acme)


# ------------------------------------------------------------------ SIZE


@pytest.mark.lifeboat_config(max_message_size="100K")
def test_message_over_size(acme, sink):
    with RawSMTP(acme.smtp_port) as c:
        ext = c.ehlo()
        assert "SIZE 102400" in ext, ext
        # Declared too big: refused at MAIL.
        code, text = c.cmd("MAIL FROM:<alice@example.org> SIZE=200000")
        assert code == 552, text
        assert " 5.3.4" in text or " 5.2.3" in text, text
        # Not declared, sent anyway: refused after the data, session goes on.
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        big = b"Subject: big\r\n\r\n" + (b"0123456789" * 7 + b"\r\n") * 2000  # ~144 KB
        c.send(big + b".\r\n")
        code, text = c.reply(timeout=20)
        assert code == 552, text
        # Declared within the limit: accepted.
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("MAIL FROM:<alice@example.org> SIZE=5000")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        mid = new_msgid("small")
        c.send(lbtest.dot_stuff(make_message(mid)) + b".\r\n")
        assert c.reply()[0] == 250
    sink.wait_messages(1)
    acme.wait_queue_empty()
    assert lbtest.message_ids(sink.messages) == [mid]


# ------------------------------------------------------------------ 2,000 recipients


def test_2000_recipients(acme, sink):
    rcpts = [f"r{i}@acme.test" for i in range(2000)]
    codes = []
    with RawSMTP(acme.smtp_port, timeout=30) as c:
        ext = c.ehlo()
        assert "PIPELINING" in ext
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        for start in range(0, 2000, 100):  # pipelined in groups of 100
            batch = rcpts[start:start + 100]
            c.send("".join(f"RCPT TO:<{r}>\r\n" for r in batch))
            for _ in batch:
                code, text = c.reply()
                codes.append((code, text))
        ok = [i for i, (code, _t) in enumerate(codes) if code == 250]
        over = [t for code, t in codes if code != 250]
        assert ok == list(range(1000)), f"{len(ok)} accepted; first refusal: {over[:1]}"
        assert all(t.startswith("452") for t in over), f"past max_recipients: {set(t[:20] for t in over)}"
        assert " 4.5.3" in over[0], over[0]
        assert c.cmd("DATA")[0] == 354
        mid = new_msgid("2000")
        c.send(lbtest.dot_stuff(make_message(mid)) + b".\r\n")
        code, text = c.reply(timeout=30)
        assert code == 250, text
        assert c.cmd("QUIT")[0] == 221
    wait_for(lambda: sum(len(m.rcpt_tos) for m in sink.messages) >= 1000, timeout=90,
             what="1,000 recipients delivered")
    delivered = sorted(r.lower() for m in sink.messages for r in m.rcpt_tos)
    assert delivered == sorted(rcpts[:1000])
    assert set(lbtest.message_ids(sink.messages)) == {mid}
    acme.wait_queue_empty(timeout=30)


# ------------------------------------------------------------------ stalls and timeouts


@pytest.mark.lifeboat_config(smtp_data_timeout="2s", smtp_timeout="3s")
def test_client_stalling_mid_data(acme, sink):
    staller = RawSMTP(acme.smtp_port)
    try:
        staller.ehlo()
        assert staller.cmd("MAIL FROM:<stall@example.org>")[0] == 250
        assert staller.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert staller.cmd("DATA")[0] == 354
        staller.send(b"Subject: stalled\r\n\r\nhalf a line and then noth")
        stalled_at = time.monotonic()

        # Meanwhile another session completes a message normally and promptly.
        t0 = time.monotonic()
        mid = send_one(acme, "meanwhile")
        assert time.monotonic() - t0 < 1.5, "a parallel session was slowed down by the stalled one"
        sink.wait_messages(1, timeout=10)
        assert lbtest.message_ids(sink.messages) == [mid]

        code, text = staller.reply(timeout=15)
        waited = time.monotonic() - stalled_at
        assert code == 421, text
        assert " 4.4.2" in text or "timeout" in text.lower(), text
        assert 1.5 <= waited <= 8, f"timeout after {waited:.1f}s, smtp_data_timeout is 2s"
        assert staller.is_closed()
    finally:
        staller.close()
    acme.wait_queue_empty()
    assert lbtest.message_ids(sink.messages) == [mid], "the stalled message must not be delivered"


@pytest.mark.lifeboat_config(smtp_data_timeout="2s", smtp_timeout="3s")
def test_client_stalling_mid_bdat_chunk(acme, sink):
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<stall@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        c.send(b"BDAT 1000 LAST\r\nSubject: stalled chunk\r\n\r\nonly a part of the chunk")
        t0 = time.monotonic()
        mid = send_one(acme, "meanwhile-bdat")
        assert time.monotonic() - t0 < 1.5
        code, text = c.reply(timeout=15)
        assert code == 421, text
        assert 1.5 <= time.monotonic() - t0 <= 8
        assert c.is_closed()
    sink.wait_messages(1)
    acme.wait_queue_empty()
    assert lbtest.message_ids(sink.messages) == [mid]


@pytest.mark.lifeboat_config(smtp_timeout="2s")
@pytest.mark.parametrize("partial", [b"", b"MAIL FROM:<slow@exa"], ids=["idle", "half-command"])
def test_client_stalling_between_commands(acme, partial):
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        if partial:
            c.send(partial)
        t0 = time.monotonic()
        code, text = c.reply(timeout=15)
        assert code == 421, text
        assert 1.5 <= time.monotonic() - t0 <= 8
        assert c.is_closed()
    assert alive(acme)


def test_garbage_does_not_hurt_others(acme, sink):
    """Random bytes from one client; another client's message still goes through."""
    junk = os.urandom(256 * 1024)
    with socket.create_connection(("127.0.0.1", acme.smtp_port), timeout=10) as s:
        s.recv(1024)
        try:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            while s.recv(65536):
                pass
        except OSError:
            pass
    mid = send_one(acme, "after-garbage")
    sink.wait_messages(1)
    assert lbtest.message_ids(sink.messages) == [mid]


# ------------------------------------------------------------------ connection limits


def banner_code(port, source):
    try:
        c = RawSMTP(port, source=source, timeout=5)
    except (SMTPClosed, ConnectionResetError):
        return None, None
    return c.banner[0], c


@pytest.mark.lifeboat_config(smtp_client_limit="3")
def test_per_client_limit(acme):
    held = []
    try:
        for _ in range(3):
            code, c = banner_code(acme.smtp_port, "127.0.0.1")
            assert code == 220
            held.append(c)
        code, c = banner_code(acme.smtp_port, "127.0.0.1")
        if c:
            held.append(c)
        assert code in (421, None), f"4th session from one client: {code}"
        # Another client is not starved by the first one.
        code, c = banner_code(acme.smtp_port, "127.0.0.2")
        assert code == 220
        held.append(c)
        assert c.cmd("NOOP")[0] == 250
        # When one of the first client's sessions ends, it may open another.
        held[0].cmd("QUIT")
        held[0].close()
        def again():
            code, c = banner_code(acme.smtp_port, "127.0.0.1")
            if c:
                held.append(c)
            return code == 220
        wait_for(again, timeout=10, what="a session slot for 127.0.0.1 after QUIT")
    finally:
        for c in held:
            c.close()


@pytest.mark.lifeboat_config(smtp_max_connections="4", smtp_client_limit="0")
def test_max_connections(acme):
    held = []
    try:
        for i in range(4):
            code, c = banner_code(acme.smtp_port, f"127.0.0.{i + 1}")
            assert code == 220
            held.append(c)
        code, c = banner_code(acme.smtp_port, "127.0.0.9")
        if c:
            held.append(c)
        assert code in (421, None), f"session past smtp_max_connections: {code}"
    finally:
        for c in held:
            c.close()
    wait_for(lambda: alive(acme), timeout=10, what="a session after the others closed")


# ------------------------------------------------------------------ mail loops


def test_mail_loop_not_relayed_again(acme, sink):
    """RFC 5321 6.3: a message that already carries more Received: fields than any sane path
    (here 150; the RFC's threshold is "at least 100", Postfix's hopcount_limit 50) is a loop.
    lifeboatd may refuse it at DATA (554 5.4.6) or accept and bounce it, but must not relay
    it again."""
    mid = new_msgid("loop")
    msg = (b"Received: from a.example by b.example; Fri, 27 Nov 2026 22:00:00 +0000\r\n" * 150
           + make_message(mid))
    with RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(lbtest.dot_stuff(msg) + b".\r\n")
        code, text = c.reply()
        assert code in (250, 554), text
    # A normal message after it, as a marker for "the queue has been worked".
    marker = send_one(acme, "after-loop")
    wait_for(lambda: marker in lbtest.message_ids(sink.messages), timeout=20, what="the marker message")
    acme.wait_queue_empty()
    assert mid not in lbtest.message_ids(sink.messages), "a looping message (150 Received:) was relayed again"
