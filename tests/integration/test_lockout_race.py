"""
The login lockout holds under parallel attempts and across a user's aliases (issue 10, finding 4).

An independent review sent 40 AUTH PLAIN attempts at once to the submission port: all 40 passwords
were checked (the lockout was read before any failure had been written), and 8 of 40 over HTTP.
And the count was keyed by the address as typed, so each alias of a user got 5 guesses of its own.
Now an attempt is counted, in the same writer transaction that reads the lock, before its password
is checked, and the account is the user whatever name was typed.

One daemon for the module (HTTPS and submission need a certificate); each test uses its own users,
and the per-address limit (20 from 127.0.0.1) is kept clear of: at most 5 failures a test.
"""
import concurrent.futures
import smtplib
import ssl
import subprocess

import pytest

import lbtest
from test_submission import Client, plain_b64
from test_http_api import PASSWORD

ACCOUNT_MAX = 5  # directory_lockout_default.account_max (src/directory/lockout.c)
PARALLEL = 40


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lockout")
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    cp = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                         "-out", str(cert), "-subj", "/CN=lifeboat.test", "-days", "2"],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    port = lbtest.free_port()
    lb = lbtest.Lifeboat(tmp / "lifeboat", {"tls_cert_file": str(cert), "tls_key_file": str(key),
                                            "submission_listen": f"127.0.0.1:{port}"})
    lb.submission_port = port
    lb.start()
    lb.add_domain("acme.test", "acme", f"127.0.0.1:{lbtest.free_port()}")
    for user in ("bob", "carol", "dave", "erin"):
        lb.add_user(f"{user}@acme.test")
    for alias in ("sales", "info", "billing"):
        lb.ctl_ok("alias", "add", "dave@acme.test", f"{alias}@acme.test")
    yield lb
    problems = lbtest.finish([lb])
    assert not problems, "\n\n".join(problems)


def _context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _auth_plain(port, user, password):
    """One submission session: EHLO, STARTTLS, EHLO, AUTH PLAIN; the AUTH reply code."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.org", timeout=60) as c:
        c.ehlo()
        c.starttls(context=_context())
        c.ehlo()
        code, _ = c.docmd("AUTH", "PLAIN " + plain_b64(user, password))
        return code


def _ready_sessions(port, n):
    """n submission sessions past STARTTLS, so that their AUTHs can be sent at the same moment."""
    sessions = []
    for _ in range(n):
        c = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.org", timeout=60)
        c.ehlo()
        c.starttls(context=_context())
        c.ehlo()
        sessions.append(c)
    return sessions


def test_parallel_auth_checks_at_most_the_limit(lb):
    sessions = _ready_sessions(lb.submission_port, PARALLEL)
    # Every AUTH line goes out before any answer is read.
    line = ("AUTH PLAIN " + plain_b64("bob@acme.test", "wrong guess") + "\r\n").encode()
    for c in sessions:
        c.sock.sendall(line)
    codes = [c.getreply()[0] for c in sessions]
    for c in sessions:
        c.close()
    assert codes.count(535) <= ACCOUNT_MAX, codes
    assert codes.count(535) + codes.count(454) == PARALLEL, codes
    # The account is locked now, the right password included, on both doors.
    assert _auth_plain(lb.submission_port, "bob@acme.test", PASSWORD) == 454
    assert Client(lb.http_port).login("bob@acme.test").status == 429
    log = lb.log()
    assert log.count("SASL PLAIN authentication failed: authentication failure") <= ACCOUNT_MAX


def test_parallel_http_logins_check_at_most_the_limit(lb):
    def attempt(_):
        return Client(lb.http_port).login("carol@acme.test", "wrong guess").status

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        statuses = list(pool.map(attempt, range(PARALLEL)))
    assert statuses.count(401) <= ACCOUNT_MAX, statuses
    assert statuses.count(401) + statuses.count(429) == PARALLEL, statuses
    assert Client(lb.http_port).login("carol@acme.test").status == 429
    assert _auth_plain(lb.submission_port, "carol@acme.test", PASSWORD) == 454


def test_aliases_share_the_users_count(lb):
    names = ["sales@acme.test", "info@acme.test", "billing@acme.test", "Dave@acme.test", "SALES@acme.test"]
    assert len(names) == ACCOUNT_MAX
    web = Client(lb.http_port)
    for i, name in enumerate(names):
        if i % 2:
            assert web.login(name, f"guess {i}").status == 401
        else:
            assert _auth_plain(lb.submission_port, name, f"guess {i}") == 535
    # Five guesses spread over the user's names lock all of them, the address itself too.
    for name in ("dave@acme.test", "sales@acme.test", "info@acme.test"):
        assert web.login(name).status == 429
        assert _auth_plain(lb.submission_port, name, PASSWORD) == 454
    # Another user is not locked (the address's own limit is 20).
    assert web.login("erin@acme.test").status == 200


def test_a_good_login_does_not_count_against_the_address(lb):
    # Each attempt is counted before the check; a right password takes it back,
    # so many good logins from one address (an office behind NAT) never lock it.
    for _ in range(25):
        assert Client(lb.http_port).login("erin@acme.test").status == 200
    assert _auth_plain(lb.submission_port, "erin@acme.test", PASSWORD) == 235
