"""
Issue 10, item 8: `smtp_invalid_line_endings = reject | fix` (SPEC.md) against SMTP smuggling.

Each smuggling variant is sent, in both modes, to a lifeboatd in front of two real destinations that
would themselves be fooled by a bare line end: a private Postfix 3.7 (smtpd_forbid_bare_newline = no,
its default there) for acme.test and aiosmtpd 1.4.3 (which ends DATA at "\\n.\\r\\n") for beta.test.
Every message goes to both. After the carrier message an attacker's second transaction follows
("MAIL FROM:<evil@...> RCPT DATA ... "), as in the published attacks.

- reject: a message with a bare CR or LF gets 550 5.6.11 after the real end of the data, and nothing
  reaches either destination; the session stays in step (the next command is answered normally and
  the smuggled commands get no replies).
- fix: the message is accepted (250) and arrives once at each destination, with the would-be commands
  inside its body; no second (smuggled) message appears anywhere; what lifeboat relays has CRLF line
  ends only (seen byte for byte at aiosmtpd) - so a line that reads "." after the fix was dot-stuffed
  on the way, or Postfix/aiosmtpd would have ended the message there.

One Postfix, one sink and two daemons for the whole module: the sending happens once, in a fixture;
the tests look at the outcome per mode and variant.
"""
import email
import email.policy
import time

import pytest

import lbtest
from lbtest import RawSMTP, wait_for

EVIL = "evil@attacker.example"

# name -> the octets between the carrier's text and the attacker's commands
VARIANTS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CRLF.CR": b"\r\n.\r",
    "CRLF-NUL.CRLF": b"\r\n\x00.\r\n",
    "LF..LF": b"\n..\n",
    "CRLF.CR-CRLF": b"\r\n.\r\r\n",
}
# Sent in a BDAT chunk instead of DATA.
BDAT_VARIANTS = {"BDAT-LF.LF": b"\n.\n", "BDAT-CR.CRLF": b"\r.\r\n"}
ALL = {**VARIANTS, **BDAT_VARIANTS}
MODES = ("reject", "fix")


def tag_of(mode, name):
    """A word that occurs in this message only (no tag is a prefix of another)."""
    return f"T{mode}{list(ALL).index(name):02d}T"


def payload(tag, sep):
    carrier = (f"From: alice@example.org\r\nTo: bob@acme.test, bob@beta.test\r\nSubject: carrier {tag}\r\n"
               f"Message-ID: <carrier.{tag}@integration.test>\r\n\r\ncarrier body {tag}").encode()
    smuggled = (f"MAIL FROM:<{EVIL}>\r\nRCPT TO:<bob@acme.test>\r\nRCPT TO:<bob@beta.test>\r\nDATA\r\n"
                f"From: {EVIL}\r\nSubject: smuggled {tag}\r\nMessage-ID: <smuggled.{tag}@integration.test>\r\n"
                f"\r\nsmuggled body {tag}\r\n").encode()
    return carrier + sep + smuggled


def send_variant(lb, tag, sep, bdat):
    """One session: the carrier with the smuggling attempt, then NOOP and QUIT. Returns the codes of
    every reply after RCPT (the smuggled commands, if executed, would add 250 250 250 354 ...)."""
    replies = []
    with RawSMTP(lb.smtp_port, timeout=15) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("RCPT TO:<bob@beta.test>")[0] == 250
        data = payload(tag, sep)
        if bdat:
            c.send(f"BDAT {len(data)} LAST\r\n".encode() + data + b"NOOP\r\nQUIT\r\n")
        else:
            code, text = c.cmd("DATA")
            assert code == 354, text
            c.send(data + b".\r\nNOOP\r\nQUIT\r\n")
        try:
            while True:
                code, text = c.reply(timeout=15)
                replies.append((code, text))
                if code == 221:
                    break
        except (lbtest.SMTPClosed, ConnectionResetError):
            pass
    return replies


class World:
    def __init__(self, pf, sink, lbs, replies):
        self.pf, self.sink, self.lbs, self.replies = pf, sink, lbs, replies

    def at_postfix(self, tag):
        return [m for m in self.pf.delivered() if tag.encode() in m]

    def at_sink(self, tag):
        return [m for m in self.sink.messages if tag.encode() in m.data]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    pf = lbtest.PostfixDestination(domains=("acme.test",))
    sink = lbtest.Sink("sink")
    lbs = {}
    problems = []
    try:
        pf.start()
        for mode in MODES:
            lb = lbtest.Lifeboat(tmp_path_factory.mktemp(f"lifeboat-{mode}"), {"smtp_invalid_line_endings": mode})
            lbs[mode] = lb
            lb.start()
            lb.add_domain("acme.test", "acme", pf.route)
            lb.add_domain("beta.test", "beta", sink.route)
        replies = {}
        for mode in MODES:
            for name, sep in ALL.items():
                replies[(mode, name)] = send_variant(lbs[mode], tag_of(mode, name), sep, name in BDAT_VARIANTS)
        # A last message from each daemon; once it and the queues are through, anything smuggled would be there.
        for mode in MODES:
            lbtest.send_raw_message(lbs[mode].smtp_port, "alice@example.org", ["bob@acme.test", "bob@beta.test"],
                                    f"Subject: marker {mode}\r\n\r\nmarker {mode}\r\n".encode())
        w = World(pf, sink, lbs, replies)
        for mode in MODES:
            wait_for(lambda: w.at_postfix(f"marker {mode}") and w.at_sink(f"marker {mode}"), timeout=60,
                     what=f"the {mode} marker at both destinations")
            lbs[mode].wait_queue_empty()
        wait_for(pf.queue_empty, timeout=30, what="the Postfix destination's queue to empty")
        time.sleep(0.5)
        yield w
    finally:
        problems += lbtest.finish(lbs.values())
        sink.close()
        pf.cleanup()
    assert not problems, "\n\n".join(problems)


def header(raw, name):
    return email.message_from_bytes(raw, policy=email.policy.compat32).get(name)


@pytest.mark.parametrize("name", list(ALL), ids=list(ALL))
def test_reject_mode(world, name):
    tag = tag_of("reject", name)
    codes = [code for code, _t in world.replies[("reject", name)]]
    if name == "CRLF-NUL.CRLF":
        # No bare line end at all: "\r\n\x00.\r\n" is a line holding a NUL and a dot, in the body.
        assert codes == [250, 250, 221], world.replies[("reject", name)]
        (pm,) = world.at_postfix(tag)
        (sm,) = world.at_sink(tag)
        assert f"smuggled body {tag}".encode() in pm and f"smuggled body {tag}".encode() in sm.data
        assert sm.mail_from == "alice@example.org"
    else:
        # 550 5.6.11 for the message, after its real end; NOOP 250; QUIT 221. Nothing in between.
        assert codes == [550, 250, 221], world.replies[("reject", name)]
        assert " 5.6.11 " in world.replies[("reject", name)][0][1]
        assert world.at_postfix(tag) == [], "a refused message reached Postfix"
        assert world.at_sink(tag) == [], "a refused message reached aiosmtpd"


@pytest.mark.parametrize("name", list(ALL), ids=list(ALL))
def test_fix_mode(world, name):
    tag = tag_of("fix", name)
    replies = world.replies[("fix", name)]
    assert [code for code, _t in replies] == [250, 250, 221], replies
    assert replies[0][1].startswith("250 2.0.0 Ok: queued as"), replies

    # Exactly one message per destination, the carrier, with the attacker's text in its body.
    at_pf = world.at_postfix(tag)
    at_sink = world.at_sink(tag)
    assert len(at_pf) == 1, f"{len(at_pf)} messages at Postfix: a smuggled one was split off"
    assert len(at_sink) == 1, f"{len(at_sink)} messages at aiosmtpd: a smuggled one was split off"
    for raw in (at_pf[0], at_sink[0].data):
        assert header(raw, "Subject") == f"carrier {tag}"
        assert f"smuggled body {tag}".encode() in raw and b"MAIL FROM:<" + EVIL.encode() + b">" in raw
    assert at_sink[0].mail_from == "alice@example.org"
    assert all(m.mail_from != EVIL for m in world.sink.messages)
    assert not any(f"<smuggled.{tag}@".encode() in m for m in world.pf.delivered()
                   if header(m, "Message-ID") and "smuggled" in header(m, "Message-ID"))

    # Relayed with CRLF line ends only, byte for byte as aiosmtpd received it (dot-stuffing undone).
    data = at_sink[0].data
    assert b"\r\n" in data
    stripped = data.replace(b"\r\n", b"")
    assert b"\r" not in stripped and b"\n" not in stripped, "a bare CR or LF was relayed"


def test_fix_mode_dot_line_is_stuffed(world):
    """"\\n.\\n" after the fix is a line holding one dot: it arrives as such (so it was sent as ".."),
    and the message goes on after it."""
    tag = tag_of("fix", "LF.LF")
    (m,) = world.at_sink(tag)
    assert f"carrier body {tag}\r\n.\r\nMAIL FROM:<{EVIL}>\r\n".encode() in m.data
    (pm,) = world.at_postfix(tag)
    assert f"carrier body {tag}\n.\nMAIL FROM:<{EVIL}>\n".encode() in pm
