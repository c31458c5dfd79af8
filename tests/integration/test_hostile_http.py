"""
Hostile HTTP clients against one daemon (issue 10, items 2 and 7; the HTTP part of the
hostile-client suite): what an outsider or a logged-in user can make the server hold, and
whether others are still served meanwhile.

- A request body is never read before the session and the CSRF token on its header are
  checked: 401/403/415 come at once, for a body announced but not sent.
- Bodies held in memory are bounded: per client address (429) and in all (503), decided on
  the announced length before a byte is read, with a JSON error and a code.
- A header or body trickled a byte at a time does not keep a connection: the header has an
  absolute deadline, the body a minimum rate (http_guard.c).
- The mbox export has per-customer slots, and an export whose client stops reading is ended
  after a stall timeout, which frees its slot.
- Under a mix of all of it (unauthenticated huge bodies, authenticated slow uploads, trickled
  and half-sent headers) the daemon's RSS grows by less than a stated budget, and another
  client's GET /healthz and login are answered within a second.

Hostile clients come from their own loopback addresses (127.0.0.2 and up; Linux answers the
whole of 127/8), the well-behaved client from 127.0.0.1, so the per-address limits of one do
not touch the other. The limits the tests rely on are the server's (src/http/http_internal.h).
"""
import json
import os
import select
import socket
import threading
import time
from urllib.parse import urlencode

import pytest

import lbtest
from lbtest import new_msgid, submit, wait_for
from test_http_api import PASSWORD, Client

# src/http/http_internal.h
HEADER_TIMEOUT = 10
BODY_GRACE = 10
STREAM_STALL = 20
BODY_BUDGET_PER_IP = 64 << 20
BODY_BUDGET = 256 << 20
SEND_MAX = 30 << 20

# What the mix of hostile clients may add to the daemon's resident memory: one login's
# argon2id (64 MB, on purpose) may be running when a sample is taken, plus 32 MB for
# everything the attack can make the server hold (two admitted uploads, header buffers).
RSS_BUDGET = (64 + 32) << 20

USERS = [("bob@acme.test", "user"), ("carol@acme.test", "user"), ("ann@acme.test", "admin"),
         ("gina@globex.test", "admin")]


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    """One daemon for the module. ASan's quarantine kept small, so that freed memory goes
    back to the system as it would without the sanitizer and RSS means what it says."""
    sink = lbtest.Sink("sink")
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:quarantine_size_mb=1"
    d = lbtest.Lifeboat(tmp_path_factory.mktemp("hostile"))
    try:
        d.start()
    finally:
        if saved is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = saved
    try:
        d.add_domain("acme.test", "acme", sink.route)
        d.add_domain("globex.test", "globex", sink.route)
        d.ctl_ok("subscription", "start", "acme")
        d.ctl_ok("subscription", "start", "globex")
        for addr, role in USERS:
            d.ctl_ok("user", "add", addr, "--role", role, "--password-stdin", "--activate", input=PASSWORD + "\n")
        yield d
    finally:
        problems = lbtest.finish([d])
        sink.close()
        assert not problems, problems


def login(lb, addr):
    c = Client(lb.http_port)
    r = c.login(addr)
    assert r.status == 200, (addr, r.status, r.body)
    return c


def rss(lb):
    with open(f"/proc/{lb.proc.pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def connect(lb, source, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", lb.http_port))
    return s


def post_header(path, length, client=None, csrf=True, ctype="application/json", expect=False):
    """A POST's header. With expect, "Expect: 100-continue": a body the server will read is
    invited at once by "100 Continue", so admitted and refused are told apart without waiting."""
    h = [f"POST {path} HTTP/1.1", "Host: lifeboat.test", f"Content-Type: {ctype}", f"Content-Length: {length}"]
    if expect:
        h.append("Expect: 100-continue")
    if client is not None:
        h.append(f"Cookie: {client.cookie}")
        if csrf:
            h.append(f"X-CSRF-Token: {client.csrf}")
    return ("\r\n".join(h) + "\r\n\r\n").encode()


def reply_within(s, seconds):
    """The response (status, headers, JSON body) if one starts within seconds, else None.
    Reads until the JSON body is complete or the server closes."""
    deadline = time.monotonic() + seconds
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            if not data:
                return None
            break
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and head.startswith(b"HTTP/1.1 1"):
            break  # 100 Continue: an invitation, not the answer
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return status, headers, json.loads(body) if body.startswith(b"{") else body


def closed_within(s, seconds):
    """Seconds until the server closed s (reading and dropping whatever it sends), or None."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if select.select([s], [], [], 0.2)[0]:
            try:
                if not s.recv(65536):
                    return time.monotonic() - start
            except OSError:
                return time.monotonic() - start
    return None


# --------------------------------------------------------------------------- the session gate


def test_a_body_is_not_read_before_the_session_is_checked(lb):
    bob = login(lb, "bob@acme.test")
    cases = [
        (None, True, "application/json", 401),   # no session
        (bob, False, "application/json", 403),   # a session, no CSRF token
        (bob, True, "text/plain", 415),          # not JSON
    ]
    for client, csrf, ctype, status in cases:
        s = connect(lb, "127.0.0.2")
        t0 = time.monotonic()
        s.sendall(post_header("/api/v1/send", SEND_MAX, client, csrf, ctype))
        r = reply_within(s, 2)
        assert r is not None, f"no {status} before the body (the server waits for {SEND_MAX} bytes)"
        assert time.monotonic() - t0 < 1.0
        assert r[0] == status and "error" in r[2], r
        # Answered early, the connection is closed: the body is never read.
        assert closed_within(s, 3) is not None
        s.close()
    # A stranger's cookie is no session either; a logged-in user's body is invited.
    ghost = Client(lb.http_port)
    ghost.cookie, ghost.csrf = "lb_session=" + "ab" * 32, "cd" * 32
    s = connect(lb, "127.0.0.2")
    s.sendall(post_header("/api/v1/send", 1000, ghost))
    assert reply_within(s, 2)[0] == 401
    s.close()
    s = connect(lb, "127.0.0.2")
    s.sendall(post_header("/api/v1/send", 1000, bob, expect=True))
    assert reply_within(s, 5)[0] == 100  # the body is invited
    s.sendall(b"{" + b" " * 998 + b"}")
    r = reply_within(s, 10)
    assert r[0] == 400 and "error" in r[2], r  # read and checked: no recipients
    s.close()


# --------------------------------------------------------------------------- the body budget


def test_bodies_in_flight_are_bounded_per_address_and_in_all(lb):
    bob = login(lb, "bob@acme.test")
    held = []

    def announce(source, length=SEND_MAX):
        """The socket and the answer to the header: 100 (the body is invited) or the refusal."""
        s = connect(lb, source)
        s.sendall(post_header("/api/v1/send", length, bob, expect=True))
        r = reply_within(s, 5)
        assert r is not None, "no answer to the header"
        return s, r

    # Per address: two 30 MB bodies fit in 64 MB, the third is refused before it is sent.
    for _ in range(BODY_BUDGET_PER_IP // SEND_MAX):
        s, r = announce("127.0.0.10")
        assert r[0] == 100, r
        held.append(s)
    s, r = announce("127.0.0.10")
    assert r is not None and r[0] == 429, r
    assert r[2]["code"] == "too_many_uploads" and r[2]["error"], r
    assert int(r[1]["retry-after"]) > 0
    s.close()
    # A small body from that address still fits; another address is not affected.
    s, r = announce("127.0.0.10", 1000)
    assert r[0] == 100, r
    s.close()
    s, r = announce("127.0.0.11")
    assert r[0] == 100, r
    held.append(s)

    # In all: up to the global budget over several addresses, then 503.
    source = 12
    while len(held) * SEND_MAX + SEND_MAX <= BODY_BUDGET:
        s, r = announce(f"127.0.0.{source}")
        assert r[0] == 100, (len(held), r)
        held.append(s)
        source += 1
    s, r = announce("127.0.0.99")
    assert r is not None and r[0] == 503 and r[2]["code"] == "server_busy", r
    s.close()

    # A client that goes away gives its share back.
    held.pop(0).close()
    wait_for(lambda: (lambda sr: (sr[0].close(), sr[1][0] == 100)[1])(announce("127.0.0.99")), timeout=5,
             what="the budget given back by a closed connection")
    for s in held:
        s.close()


# --------------------------------------------------------------------------- trickling


def test_trickled_header_and_body_are_cut_while_others_are_served(lb):
    results = {}

    def trickle(name, first, limit):
        s = connect(lb, "127.0.0.30")
        s.sendall(first)
        start = time.monotonic()
        try:
            while time.monotonic() - start < limit:
                s.sendall(b"a")
                if select.select([s], [], [], 0.5)[0] and not s.recv(4096):
                    break
        except OSError:
            pass
        results[name] = time.monotonic() - start
        s.close()

    header = b"GET /healthz HTTP/1.1\r\nHost: lifeboat.test\r\nX-Slow: "
    body = post_header("/api/v1/login", 4000)
    threads = [threading.Thread(target=trickle, args=("header", header, HEADER_TIMEOUT + 8)),
               threading.Thread(target=trickle, args=("body", body, BODY_GRACE + 8))]
    for t in threads:
        t.start()
    slowest = 0.0
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        r = Client(lb.http_port).request("GET", "/healthz")
        slowest = max(slowest, time.monotonic() - t0)
        assert r.status == 200
        time.sleep(0.5)
    for t in threads:
        t.join()
    assert slowest < 1.0, slowest
    assert results["header"] < HEADER_TIMEOUT + 3, results
    assert results["body"] < BODY_GRACE + 4, results
    assert "request header not complete within" in lb.log()
    assert "request body slower than" in lb.log()


# --------------------------------------------------------------------------- the mix


def test_hostile_mix_memory_stays_bounded_and_others_are_served(lb):
    bob = login(lb, "bob@acme.test")
    Client(lb.http_port).login("carol@acme.test")  # warms up argon2id's allocation
    time.sleep(0.5)
    before = rss(lb)
    stop = threading.Event()
    samples = [before]
    outcomes = {"unauth": [], "auth": []}
    errors = []
    socks = []
    lock = threading.Lock()

    def keep(s):
        with lock:
            socks.append(s)

    def huge_body(kind, source, client, blast):
        """Announces a 30 MB send; when the body is invited (100 Continue), sends blast bytes
        at once and then trickles."""
        try:
            s = connect(lb, source)
            keep(s)
            s.sendall(post_header("/api/v1/send", SEND_MAX, client, expect=True))
            r = reply_within(s, 5)
            with lock:
                outcomes[kind].append(r[0] if r else None)
            if not r or r[0] != 100:
                return
            s.sendall(b"{" + b"x" * blast)
            while not stop.wait(0.5):
                s.sendall(b"x" * 100)
        except OSError:
            pass
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(repr(e))

    def slow_header(source, fill):
        try:
            s = connect(lb, source)
            keep(s)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: lifeboat.test\r\nX-Fill: " + b"f" * fill)
            while not stop.wait(1.0):
                s.sendall(b"f")
        except OSError:
            pass

    def half_sent(source):
        try:
            s = connect(lb, source)
            keep(s)
            s.sendall(post_header("/api/v1/login", 200)[:-2] + b"X-Half: 1")  # no end of header
        except OSError:
            pass

    threads = [threading.Thread(target=huge_body, args=("unauth", "127.0.0.40", None, 4 << 20))
               for _ in range(40)]
    threads += [threading.Thread(target=huge_body, args=("auth", "127.0.0.41", bob, 1 << 20))
                for _ in range(12)]
    threads += [threading.Thread(target=slow_header, args=("127.0.0.42", 32 << 10)) for _ in range(20)]
    threads += [threading.Thread(target=half_sent, args=("127.0.0.43",)) for _ in range(20)]

    def sample():
        while not stop.wait(0.1):
            samples.append(rss(lb))

    sampler = threading.Thread(target=sample)
    sampler.start()
    for t in threads:
        t.start()

    # Meanwhile a well-behaved client, from 127.0.0.1.
    latencies = []
    end = time.monotonic() + 8
    while time.monotonic() < end:
        for what in ("healthz", "login"):
            t0 = time.monotonic()
            if what == "healthz":
                r = Client(lb.http_port).request("GET", "/healthz")
            else:
                r = Client(lb.http_port).login("carol@acme.test")
            latencies.append((what, time.monotonic() - t0, r.status))
        time.sleep(0.3)

    stop.set()
    for t in threads:
        t.join(timeout=30)
    sampler.join()
    with lock:
        for s in socks:
            s.close()
    grown = max(samples) - before
    print(f"RSS before {before >> 20} MB, peak {max(samples) >> 20} MB, growth {grown >> 20} MB; "
          f"slowest answer {max(l for _, l, _ in latencies):.3f} s; outcomes {outcomes}")
    assert not errors, errors
    assert all(status == 200 for _, _, status in latencies), latencies
    assert max(l for _, l, _ in latencies) < 1.0, latencies
    # Nobody without a session got as far as sending a body: each was answered 401 at once.
    assert outcomes["unauth"] == [401] * 40, outcomes
    # Logged in but slow: two 30 MB bodies fit the address's budget, the rest were refused.
    assert sorted(outcomes["auth"]) == [100] * 2 + [429] * 10, outcomes
    assert grown < RSS_BUDGET, f"RSS grew by {grown >> 20} MB (budget {RSS_BUDGET >> 20} MB)"
    assert Client(lb.http_port).request("GET", "/healthz").status == 200


# --------------------------------------------------------------------------- exports


def test_export_slots_are_per_customer_and_a_stalled_export_is_ended(lb):
    big = ("e" * 76 + "\r\n") * 26000  # ~2 MB a message, ~10 MB an export: more than socket buffers hold
    for i in range(5):
        data = (f"From: alice@example.org\r\nTo: bob@acme.test\r\nSubject: Export kiwi {i}\r\n"
                f"Message-ID: {new_msgid('hostile')}\r\n\r\n" + big).encode()
        submit(lb.smtp_port, "alice@example.org", ["bob@acme.test"], data)
    submit(lb.smtp_port, "alice@example.org", ["gina@globex.test"],
           f"Subject: Export kiwi globex\r\nMessage-ID: {new_msgid('hostile')}\r\n\r\nhi\r\n".encode())
    ann, gina = login(lb, "ann@acme.test"), login(lb, "gina@globex.test")
    wait_for(lambda: ann.request("GET", "/api/v1/archive?" + urlencode({"q": "kiwi"})).json["total"] == 5,
             timeout=60, what="the messages indexed")
    path = "/api/v1/archive/export?q=kiwi"

    # Two exports of acme's whose client reads the header and then nothing more.
    stalled = []
    for _ in range(2):
        s = connect(lb, "127.0.0.50", rcvbuf=4096)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: lifeboat.test\r\nCookie: {ann.cookie}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        stalled.append(s)
    t0 = time.monotonic()

    # acme's share is taken; globex's is not.
    r = ann.request("GET", path)
    assert r.status == 429 and r.json["code"] == "too_many_exports", (r.status, r.body)
    r = gina.request("GET", path)
    assert r.status == 200 and b"Export kiwi globex" in r.body

    # The stalled exports are ended and their slots are free again.
    def export_runs():
        r = ann.request("GET", path)
        return r.status == 200 and r.body.count(b"\nSubject: Export kiwi ") == 5
    wait_for(export_runs, timeout=STREAM_STALL + 10, interval=1, what="a slot freed by a stalled export")
    assert time.monotonic() - t0 > STREAM_STALL - 2  # not before the stall timeout
    assert "took nothing of a streamed response" in lb.log()
    assert "mbox export by ann@acme.test ended early" in lb.log()
    for s in stalled:
        s.close()
