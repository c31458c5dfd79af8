"""
The archive end to end (issue 5, items 1-4), driven through SMTP, the webmail and lifeboatctl:

  inbound and webmail-sent messages are archived with the right direction; a message accepted
      before `subscription start` is not: test_directions_and_subscription_start
  search by text, sender, recipient and date range returns exactly the expected set on a
      fixture of several hundred messages of ../shared/corpora (broken MIME and non-UTF-8
      charsets included; the expected sets are computed here with Python's email package):
      test_search_exact_sets_on_corpus
  release in normal state reaches the customer's server; during an outage it is a copy in the
      mailbox that is not re-delivered at recovery: test_release_normal_and_during_outage
  purge with a short retention removes old entries and their blob files, keeps held and young
      ones; the daemon's own pass at start: test_purge_with_short_retention
  the indexer catches up after a SIGKILL and restart: test_indexer_catches_up_after_sigkill

Each test's daemon runs under ASan+UBSan (the fixtures fail a test on any report).
"""
import collections
import datetime
import email
import email.policy
import email.utils
import hashlib
import html.parser
import os
import re
import time
import unicodedata

import pytest

import lbtest
from lbtest import make_message, new_msgid, submit, submit_many, wait_for
from test_http_api import Client

CORPORA = os.environ.get("LB_CORPORA",
                         os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "corpora"))
CORPUS_DIRS = ("spamassassin", "mimekit", "james-mime4j", "python-test_email", "stalwart-mail-parser")


def search(lb, *args):
    """`archive search ARGS --json --limit 0`: the entries, newest first."""
    return lb.ctl_json("archive", "search", *args, "--limit", "0")


def wait_indexed(lb, timeout=60):
    """Waits until the indexer has caught up (no entry left with indexed = false)."""
    return wait_for(lambda: all(e["indexed"] for e in search(lb)), timeout=timeout, interval=0.3,
                    what="the archive indexer to catch up")


def subscribed_acme(lb, route):
    lb.add_domain("acme.test", "acme", route)
    lb.ctl_ok("subscription", "start", "acme")


# --------------------------------------------------------------------------- directions


@pytest.fixture
def relay_lifeboat(make_lifeboat, sink):
    """A daemon whose mail to the internet (the webmail's) goes to the sink."""
    lb = make_lifeboat(outbound_relay=sink.route)
    lb.start()
    return lb


def test_directions_and_subscription_start(relay_lifeboat, sink):
    lb = relay_lifeboat
    lb.add_domain("acme.test", "acme", sink.route)
    lb.add_user("bob@acme.test")
    lb.add_user("carol@acme.test")

    # accepted before the subscription started: never archived
    early = submit(lb.smtp_port, "alice@example.org", ["bob@acme.test"],
                   make_message(new_msgid("early"), subject="Early bird zanzibar"))
    lb.ctl_ok("subscription", "start", "acme")
    inbound = submit(lb.smtp_port, "alice@example.org", ["bob@acme.test"],
                     make_message(new_msgid("in"), subject="Inbound quokka"))

    bob = Client(lb.http_port)
    assert bob.login("bob@acme.test").status == 200
    r = bob.request("POST", "/api/v1/send", {"from": "bob@acme.test", "to": ["dave@example.net"],
                                              "cc": ["carol@acme.test"], "subject": "Outbound wombat",
                                              "text": "Sent from the webmail.\n"})
    assert r.status == 202, r.body
    sent = r.json["id"]
    sink.wait_messages(3)
    wait_indexed(lb)

    rows = {e["msg_id"]: e for e in search(lb)}
    assert early not in rows
    assert set(rows) == {inbound, sent}, rows
    assert rows[inbound]["direction"] == "inbound"
    assert rows[inbound]["from"] == "alice@example.org" and rows[inbound]["to"] == ["bob@acme.test"]
    assert rows[inbound]["subject"] == "Inbound quokka"
    assert rows[sent]["direction"] == "outbound"
    assert rows[sent]["from"] == "bob@acme.test"
    assert sorted(rows[sent]["to"]) == ["carol@acme.test", "dave@example.net"]
    assert rows[sent]["subject"] == "Outbound wombat"
    assert rows[sent]["customer"] == "acme"
    for e in rows.values():  # SPEC's --json shape
        assert {"id", "date", "direction", "from", "to", "subject"} <= set(e)

    # text finds by word; the early one is nowhere
    assert [e["msg_id"] for e in search(lb, "zanzibar")] == []
    assert [e["msg_id"] for e in search(lb, "WOMBAT")] == [sent]
    # scopes: carol took part in bob's message only
    assert [e["msg_id"] for e in search(lb, "--user", "carol@acme.test")] == [sent]
    assert [e["msg_id"] for e in search(lb, "--user", "bob@acme.test")] == [sent, inbound]
    assert [e["msg_id"] for e in search(lb, "--domain", "acme.test")] == [sent, inbound]
    assert [e["msg_id"] for e in search(lb, "--domain", "acme.test", "--from", "alice@example.org")] == [inbound]
    cp = lb.ctl("archive", "search", "--domain", "acme.test", "--user", "bob@acme.test")
    assert cp.returncode == 2
    cp = lb.ctl("archive", "search", "--after", "yesterday")
    assert cp.returncode == 2 and "no date" in cp.stderr
    text = lb.ctl_ok("archive", "search", "quokka").stdout
    assert "Inbound quokka" in text and "1 of 1 entry" in text


# --------------------------------------------------------------------------- the corpus fixture


def _strip_marks(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


_TOKEN = re.compile(r"[^\W_]+")


def tokens(text):
    """FTS5 unicode61 with remove_diacritics, approximately: runs of letters and digits,
    folded to lower case, without diacritics."""
    return {_strip_marks(t).lower() for t in _TOKEN.findall(text)}


class _HTMLText(html.parser.HTMLParser):
    """The words of an HTML body (no script, style or head), joined two ways: a word that
    runs over a tag boundary is ambiguous and left out of the test."""

    SKIP = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.glued, self.spaced = [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.glued.append(data)
            self.spaced.append(data)


class Unreadable(Exception):
    pass


def _decode(part):
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset()
    if charset is None:
        if any(b >= 0x80 for b in payload):
            raise Unreadable("8-bit text without a charset")
        charset = "us-ascii"
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError) as e:
        raise Unreadable(f"charset {charset}: {e}")


def _is_attachment(part):
    return (part.get_content_disposition() or "") == "attachment"


def _holds_body(part, subtype):
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        return any(_holds_body(p, subtype) for p in part.get_payload())
    return part.get_content_type() == f"text/{subtype}" and not _is_attachment(part)


class Model:
    """What the archive should index of one message, as Python's email package reads it:
    sure = tokens it must find (subject, From, To, Cc, body text, attachment names, attached
    messages), unsure = tokens that one reading or the other may or may not see (words
    across HTML tags); readable = False when Python cannot read it without guessing."""

    def __init__(self, raw):
        self.sure, self.unsure = set(), set()
        self.readable = True
        self.loose = raw.decode("latin-1").lower()  # every byte, for words that must not be there
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self._message(msg, 0)
        except Exception:  # Unreadable, or the email package gave up on something
            self.readable = False
        if not self.readable:
            self._loose_payloads(raw)

    def _headers(self, msg):
        for h in ("subject", "from", "to", "cc"):
            for v in msg.get_all(h) or ():
                text = str(v)
                if getattr(v, "defects", None) or re.search("[\udc80-\udcff]", text):
                    raise Unreadable(f"{h}: {getattr(v, 'defects', None)}")
                self.sure |= tokens(text)

    def _message(self, msg, depth):
        if depth > 5:
            raise Unreadable("deep")
        if msg.defects:
            raise Unreadable(f"defects {msg.defects}")
        self._headers(msg)
        self._walk(msg, depth)

    def _walk(self, part, depth):
        if part.defects:
            raise Unreadable(f"defects {part.defects}")
        ctype = part.get_content_type()
        if part.is_multipart():
            if part.get_content_maintype() != "multipart":
                raise Unreadable(f"{ctype} with parts")
            kids = part.get_payload()
            if ctype == "multipart/alternative":
                plain = [k for k in kids if _holds_body(k, "plain")]
                htm = [k for k in kids if _holds_body(k, "html")]
                pick = plain[0] if plain else htm[0] if htm else (kids[-1] if kids else None)
                if pick is not None:
                    self._walk(pick, depth)
                return
            for k in kids:
                self._walk(k, depth)
            return
        if ctype == "message/rfc822":
            name = part.get_param("filename", header="content-disposition")
            if name:
                self.sure |= tokens(str(name))
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if not isinstance(inner, email.message.Message):
                raise Unreadable("message/rfc822 without a message")
            self._message(inner, depth + 1)
            return
        cte = (part.get("content-transfer-encoding") or "7bit").strip().lower()
        if cte not in ("7bit", "8bit", "binary", "base64", "quoted-printable"):
            raise Unreadable(f"transfer encoding {cte}")
        if ctype == "text/plain" and not _is_attachment(part):
            self.sure |= tokens(_decode(part))
            return
        if ctype == "text/html" and not _is_attachment(part):
            p = _HTMLText()
            p.feed(_decode(part))
            p.close()
            glued, spaced = tokens("".join(p.glued)), tokens(" ".join(p.spaced))
            self.sure |= glued & spaced
            self.unsure |= glued ^ spaced
            return
        name = part.get_filename()
        disp = part.get_content_disposition()
        inline_image = disp in (None, "inline") and part.get("content-id")
        if _is_attachment(part) or (name and not inline_image):
            if name:
                self.sure |= tokens(str(name))
        elif part.get_content_maintype() == "text":
            # another text type that is no body: its words are read nowhere
            self.unsure |= tokens(self._lossy(part))

    @staticmethod
    def _lossy(part):
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:
            payload = b""
        return payload.decode("latin-1")

    def _loose_payloads(self, raw):
        """For a message Python cannot read: every decoded payload it can find, lossily."""
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.compat32)
            parts = list(msg.walk())
        except Exception:
            return
        extra = []
        for p in parts:
            for h in ("subject", "from", "to", "cc"):
                for v in p.get_all(h) or ():
                    try:
                        extra.append(str(email.header.make_header(email.header.decode_header(v))))
                    except Exception:
                        extra.append(str(v))
            if not p.is_multipart():
                try:
                    payload = p.get_payload(decode=True) or b""
                except Exception:
                    payload = b""
                for enc in ("utf-8", "latin-1", "utf-16"):
                    try:
                        extra.append(payload.decode(enc, errors="ignore"))
                    except Exception:
                        pass
        self.loose += " " + _strip_marks(" ".join(extra)).lower()


def corpus_files():
    files = []
    for d in CORPUS_DIRS:
        top = os.path.join(CORPORA, d)
        for root, _dirs, names in os.walk(top):
            for n in names:
                if n.startswith(("LICENSE", "COPYING", "NOTICE", "README")) or n == "SOURCE.txt":
                    continue
                files.append(os.path.join(root, n))
    return sorted(files)


_HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+:)")


def fixture_messages(limit=400):
    """(name, bytes as they will be stored) of corpus files that are messages SMTP can carry:
    a header first, no NUL, lines of at most 998 bytes, under 200 KB (well inside the
    indexer's 256 KiB text bound); taken from the corpora in turn, so that each has its
    share."""
    per_dir = collections.defaultdict(list)
    for path in corpus_files():
        per_dir[os.path.relpath(path, CORPORA).split(os.sep)[0]].append(path)
    order = []
    lists = [per_dir[d] for d in CORPUS_DIRS if per_dir[d]]
    for i in range(max((len(x) for x in lists), default=0)):
        order += [x[i] for x in lists if i < len(x)]
    out = []
    for path in order:
        with open(path, "rb") as f:
            raw = f.read()
        if not raw or len(raw) > 200_000 or b"\0" in raw or not _HEADER_LINE.match(raw):
            continue
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if any(len(line) > 998 for line in data.split(b"\r\n")):
            continue
        if b"\r\n\r\n" not in data:
            continue
        out.append((os.path.relpath(path, CORPORA), data))
        if len(out) == limit:
            break
    return out


def generated_messages(n=300):
    """Without ../shared: generated messages in several charsets and encodings."""
    words = [f"{a}{b}" for a in ("apple", "berry", "cherry", "damson", "elder", "figgy", "grape", "hazel")
             for b in ("wood", "field", "stone", "brook", "marsh")]
    out = []
    for i in range(n):
        w1, w2 = words[i % 40], words[(i * 7 + 3) % 40]
        charset = ("utf-8", "iso-8859-1", "koi8-r", "windows-1252")[i % 4]
        body = f"Message {i} about {w1} and {w2}. Grüße.\r\n"
        try:
            body_bytes = body.encode(charset)
        except UnicodeEncodeError:
            body_bytes = body.replace("Grüße", "Gruss").encode(charset)
        day = 1 + i % 28
        head = (f"From: Gen <gen{i % 5}@gen.example>\r\nTo: someone@acme.test\r\n"
                f"Subject: =?utf-8?q?gen_{w1}?=\r\nDate: {day:02d} Mar 2021 10:00:00 +0000\r\n"
                f"Message-ID: <gen{i}@gen.example>\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
        out.append((f"generated/{i}", head.encode() + body_bytes))
    return out


_STRICT_DATE = re.compile(r"^\s*(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{2}:\d{2}(?::\d{2})?"
                          r"\s+[+-]\d{4}(?:\s*\([^()]*\))?\s*$")


def python_date(raw):
    """The Date header as Python reads it: ("ok", epoch) for one well-formed RFC 5322 date;
    ("lenient", epoch or None) for what parsers may read differently (two Date headers, a
    zone like "-600" or "EST", no zone, obsolete syntax); ("none", None) without one."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    values = msg.get_all("Date") or []
    if not values:
        return "none", None
    try:
        dt = email.utils.parsedate_to_datetime(str(values[0]))
    except Exception:
        dt = None
    t = None if dt is None else int((dt if dt.tzinfo else dt.replace(tzinfo=datetime.timezone.utc)).timestamp())
    if len(values) == 1 and dt is not None and dt.tzinfo is not None and _STRICT_DATE.match(str(values[0])):
        return "ok", t
    return "lenient", t


def pick_words(models, loose_of, count=14):
    """Words (ASCII letters, 5-12 long) found in 2-40 readable messages, for which every
    message either has the word for sure or has it nowhere (not in any byte or decoded
    payload, not in an HTML word across tags). Words that only appear after decoding
    (base64, quoted-printable, a non-UTF-8 charset, HTML) come first."""
    candidates = collections.Counter()
    for m in models.values():
        if m.readable:
            for t in m.sure:
                if re.fullmatch(r"[a-z]{5,12}", t):
                    candidates[t] += 1
    good = []
    for w, df in candidates.items():
        if not 2 <= df <= 40:
            continue
        ok = True
        hidden = False  # found only through decoding somewhere
        for key, m in models.items():
            has = m.readable and w in m.sure
            if has:
                if w not in loose_of[key]:
                    hidden = True
                continue
            if w in loose_of[key] or w in m.unsure:
                ok = False
                break
        if ok:
            good.append((not hidden, df, w))
    good.sort()
    picked = [w for _h, _df, w in good[:count // 2]]
    rest = [w for _h, _df, w in good[count // 2:]]
    step = max(1, len(rest) // max(1, count - len(picked)))
    picked += rest[::step][:count - len(picked)]
    return picked


SENDERS = [f"s{i}@senders.example" for i in range(7)]
USERS = [f"u{i}@acme.test" for i in range(5)]


@pytest.mark.lifeboat_config(max_message_size="10M")
def test_search_exact_sets_on_corpus(lifeboat, sink):
    lb = lifeboat
    subscribed_acme(lb, sink.route)
    fixture = fixture_messages()
    if len(fixture) < 200:
        print(f"corpus not found or too small in {CORPORA} ({len(fixture)} messages): generated messages instead")
        fixture = generated_messages()
    else:
        print(f"fixture: {len(fixture)} messages of {CORPORA}: " +
              ", ".join(f"{d} {sum(n.startswith(d) for n, _ in fixture)}" for d in CORPUS_DIRS))

    envelopes = []
    for i, (_name, data) in enumerate(fixture):
        rcpts = [USERS[i % 5]] + ([USERS[(i + 2) % 5]] if i % 3 == 0 else [])
        envelopes.append((SENDERS[i % 7], rcpts, data))
    before = int(time.time())
    qids = submit_many(lb.smtp_port, envelopes, connections=4)
    after = int(time.time()) + 1
    wait_indexed(lb, timeout=180)

    entries = search(lb)
    by_qid = {e["msg_id"]: e for e in entries}
    assert set(by_qid) == set(qids), "every accepted message is archived once"
    assert len(entries) == len(fixture)

    def found(*args):
        return {e["msg_id"] for e in search(lb, *args)}

    # sender and recipient: the envelope (no corpus message names these addresses)
    for s in SENDERS[:3]:
        assert found("--from", s) == {q for q, (snd, _r, _d) in zip(qids, envelopes) if snd == s}
    for u in USERS[:3]:
        assert found("--to", u) == {q for q, (_s, rc, _d) in zip(qids, envelopes) if u in rc}

    # text: the expected sets as Python's email package reads the messages
    models = {q: Model(data) for q, (_n, data) in zip(qids, fixture)}
    loose = {q: m.loose for q, m in models.items()}
    readable = sum(m.readable for m in models.values())
    words = pick_words(models, loose)
    assert len(words) >= 8, words
    print(f"{readable} of {len(fixture)} readable by Python; words: {words}")
    for w in words:
        expected = {q for q, m in models.items() if m.readable and w in m.sure}
        got = found(w)
        assert got == expected, (w, sorted(fixture[qids.index(q)][0] for q in got ^ expected))
        # with the recipient filter on top
        assert found(w, "--to", USERS[0]) == {q for q in expected if USERS[0] in envelopes[qids.index(q)][1]}
    # two words: both must be there
    w1, w2 = words[0], words[-1]
    assert found(w1, w2) == {q for q, m in models.items() if m.readable and {w1, w2} <= m.sure}

    # dates: the Date header as Python reads it; without one, when it was received
    dates, kinds = {}, {}
    for q, (_n, data) in zip(qids, fixture):
        kinds[q], dates[q] = python_date(data)
    strict = {q for q in qids if kinds[q] == "ok"}
    mismatched = {q for q in strict if by_qid[q]["date_epoch"] != dates[q]}
    assert not mismatched, [(fixture[qids.index(q)][0], by_qid[q]["date"], dates[q]) for q in mismatched]
    for q in qids:
        if kinds[q] == "none":
            assert before <= by_qid[q]["date_epoch"] <= after, fixture[qids.index(q)][0]
        assert by_qid[q]["date_epoch"] > 0
    print(f"dates: {len(strict)} well-formed, {sum(k == 'lenient' for k in kinds.values())} lenient, "
          f"{sum(k == 'none' for k in kinds.values())} none")
    known = sorted(dates[q] for q in strict)
    assert len(known) >= 50
    lo, hi = known[len(known) // 4], known[3 * len(known) // 4]
    a = datetime.datetime.fromtimestamp(lo, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    b = datetime.datetime.fromtimestamp(hi, datetime.timezone.utc).isoformat()  # +00:00
    got = found("--after", a, "--before", b)
    # exactly the well-formed ones in the range, and of the others those the archive dated there
    assert {q for q in got if q in strict} == {q for q in strict if lo <= dates[q] < hi}
    assert {q for q in got if q not in strict} == {q for q in qids if q not in strict
                                                    and lo <= by_qid[q]["date_epoch"] < hi}
    assert len(got) >= 20
    # a whole day, as YYYY-MM-DD
    day = datetime.datetime.fromtimestamp(known[len(known) // 2], datetime.timezone.utc).date()
    start = int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp())
    got = found("--after", day.isoformat(), "--before", (day + datetime.timedelta(days=1)).isoformat())
    assert {q for q in got if q in strict} == {q for q in strict if start <= dates[q] < start + 86400}
    assert got == {q for q in qids if start <= by_qid[q]["date_epoch"] < start + 86400}
    assert got
    # everything received today (the messages without a Date) and nothing else
    today = datetime.datetime.fromtimestamp(before, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = found("--after", today)
    assert {q for q in qids if kinds[q] == "none"} <= got

    # a few known texts in other charsets, decoded
    spot = {
        "mimekit/UnitTests/TestData/compliance/raw-koi8r-header.eml": "Откуда",
        "mimekit/UnitTests/TestData/messages/japanese.txt": "日本語メールテスト",
    }
    names = [n for n, _d in fixture]
    for name, word in spot.items():
        if name in names:
            q = qids[names.index(name)]
            assert q in found(word), (name, word)


# --------------------------------------------------------------------------- release


@pytest.mark.lifeboat_config(dr_probe_interval="1s", delivery_timeout="3s")
def test_release_normal_and_during_outage(lifeboat, sink):
    lb = lifeboat
    subscribed_acme(lb, sink.route)
    lb.add_user("bob@acme.test")
    lb.add_user("carol@acme.test")
    lb.ctl_ok("continuity", "enable", "acme.test")
    msgid = new_msgid("release")
    qid = submit(lb.smtp_port, "alice@example.org", ["bob@acme.test"],
                 make_message(msgid, subject="Release me please"))
    sink.wait_messages(1)
    wait_indexed(lb)
    (entry,) = search(lb, "release", "please")
    assert entry["msg_id"] == qid

    # normal state: to the customer's server again
    out = lb.ctl_ok("archive", "release", str(entry["id"])).stdout
    assert "1 recipient(s) queued" in out, out
    got = sink.wait_messages(2, timeout=20)
    assert len(sink.with_message_id(msgid)) == 2
    assert [a.lower() for a in got[-1].rcpt_tos] == ["bob@acme.test"]
    # only to the customer's addresses
    cp = lb.ctl("archive", "release", str(entry["id"]), "--to", "x@example.net")
    assert cp.returncode == 1 and "customer" in cp.stderr
    assert lb.ctl("archive", "release", "999999").returncode == 1

    # outage: the server refuses connections; new mail diverts, the domain is in outage
    sink.close()
    lb_qid = submit(lb.smtp_port, "alice@example.org", ["carol@acme.test"],
                    make_message(new_msgid("during"), subject="During the outage"))
    lb.wait_continuity_state("acme.test", "outage", timeout=20)
    out = lb.ctl_ok("archive", "release", str(entry["id"]), "--to", "bob@acme.test,carol@acme.test").stdout
    assert "2 copied into continuity mailboxes" in out, out
    rel = re.search(r"released as ([0-9A-F]+)", out).group(1)
    for user in ("bob@acme.test", "carol@acme.test"):
        (copy,) = [e for e in lb.mailbox(user) if e["msg_id"] == rel]
        assert copy["folder"] == "INBOX"

    # recovery: the diverted message goes back, the released copies do not
    sink.open()
    lb.wait_continuity_state("acme.test", "normal", timeout=30)
    wait_for(lambda: any(m for m in sink.messages if "During the outage" in (m.header("Subject") or "")),
             timeout=20, what="the diverted message re-delivered")
    time.sleep(2)
    assert len(sink.with_message_id(msgid)) == 2, "the released copies were re-delivered"
    assert lb_qid in lb.log()

    audit = lb.ctl_json("audit", "list", "--customer", "acme")
    releases = [a for a in audit if a["action"] == "archive.release"]
    assert len(releases) == 2
    assert all(a["actor"] == f"lifeboatctl (uid {os.getuid()})" and a["target"] == f"archive:{entry['id']}"
               for a in releases)


# --------------------------------------------------------------------------- retention


def body_stored(lb, data):
    """Whether lb keeps the body of data: its blob file (SQLite), its blob_data row (PostgreSQL)."""
    h = hashlib.sha256(data).hexdigest()
    if lb.pg_database is None:
        return os.path.exists(os.path.join(lb.data_dir, "blobs", h[:2], h))
    return lbtest.sql(lb, "SELECT count(*) FROM blob_data WHERE id = ?", (h,))[0][0] == 1


@pytest.mark.lifeboat_config(archive_retention="3s")
def test_purge_with_short_retention(lifeboat, sink):
    lb = lifeboat
    subscribed_acme(lb, sink.route)
    lb.add_user("bob@acme.test")
    lb.add_user("carol@acme.test")
    msgs = {}
    for name, rcpt in (("old", "bob@acme.test"), ("held", "carol@acme.test")):
        data = make_message(new_msgid(name), subject=f"Retention {name}", to=rcpt)
        msgs[name] = (submit(lb.smtp_port, "alice@example.org", [rcpt], data), data)
    lb.ctl_ok("archive", "hold", "--user", "carol@acme.test")
    assert lb.ctl("archive", "hold", "--user", "carol@acme.test").returncode == 1  # held already
    (hold,) = lb.ctl_json("archive", "holds")
    assert hold["customer"] == "acme" and hold["user"] == "carol@acme.test"
    sink.wait_messages(2)
    lb.wait_queue_empty()
    for _q, data in msgs.values():
        assert body_stored(lb, data)
    time.sleep(4)  # older than the retention now

    young = make_message(new_msgid("young"), subject="Retention young")
    msgs["young"] = (submit(lb.smtp_port, "alice@example.org", ["bob@acme.test"], young), young)
    out = lb.ctl_ok("archive", "purge").stdout
    assert out.startswith("purged 1 entries older than"), out
    left = {e["msg_id"] for e in search(lb)}
    assert left == {msgs["held"][0], msgs["young"][0]}
    # the daemon's blob GC unlinks the body nothing references any more
    wait_for(lambda: not body_stored(lb, msgs["old"][1]), timeout=15, what="the old body removed")
    assert body_stored(lb, msgs["held"][1])
    assert body_stored(lb, young)

    # the hold goes; the daemon's own pass at start purges what it kept
    lb.ctl_ok("archive", "hold", "--user", "carol@acme.test", "--release")
    assert lb.ctl_json("archive", "holds") == []
    time.sleep(4.5)  # whole seconds: received < now - 3 needs 4 of them
    lb.restart()
    wait_for(lambda: {e["msg_id"] for e in search(lb)} == set(), timeout=15, what="the start-up purge")
    assert re.search(r"archive: purged [12] entries older than \d{4}-\d\d-\d\dT", lb.log())
    wait_for(lambda: not body_stored(lb, msgs["held"][1]), timeout=15, what="the held body removed")

    actions = [a["action"] for a in lb.ctl_json("audit", "list")]
    assert actions.count("archive.purge") == 1
    assert "archive.hold" in actions and "archive.hold.release" in actions


# --------------------------------------------------------------------------- crash


def test_indexer_catches_up_after_sigkill(lifeboat, sink):
    lb = lifeboat
    subscribed_acme(lb, sink.route)
    n = 60
    msgs = [("alice@example.org", ["bob@acme.test"],
             make_message(new_msgid("kill"), subject=f"Crash test {i}",
                          body=f"Body of message {i}: the word is pangolin.\r\n"))
            for i in range(n)]
    qids = submit_many(lb.smtp_port, msgs, connections=4)
    lb.kill()  # whatever the indexer had not done yet is left for the next start

    # and to be sure there is a backlog: forget the index of half of them
    # (archive_fts is keyed by its FTS5 rowid on SQLite, by an id column on PostgreSQL)
    fts_key = "id" if lbtest.on_pg() else "rowid"
    lbtest.sql(lb, f"DELETE FROM archive_fts WHERE {fts_key} IN (SELECT id FROM archive WHERE id % 2 = 0)")
    lbtest.sql(lb, "UPDATE archive SET indexed = 0 WHERE id % 2 = 0")
    ((backlog,),) = lbtest.sql(lb, "SELECT count(*) FROM archive WHERE indexed = 0")
    assert backlog >= n // 2

    lb.start()
    wait_indexed(lb)
    assert {e["msg_id"] for e in search(lb, "pangolin")} == set(qids)
    assert len(search(lb, "crash", "test", "17")) == 1
