"""
lifeboatctl and the config file, as SPEC.md fixes them: exit 0 on success, 1 on a refused or
failed action (one clear line on stderr), 2 on bad usage; every listing takes --json; a bad
config line is refused by both programs, naming the line.
"""
import json
import os
import smtplib
import subprocess
import threading
import time

import pytest

import lbtest


def test_exit_codes_success_refused_usage(lifeboat):
    lb = lifeboat
    assert lb.ctl("customer", "add", "acme").returncode == 0
    assert lb.ctl("domain", "add", "acme.test", "--customer", "acme", "--route", "127.0.0.1:2525").returncode == 0

    refused = [
        ("customer", "add", "acme"),                                                  # exists
        ("domain", "add", "acme.test", "--customer", "acme", "--route", "127.0.0.1"),  # exists
        ("domain", "add", "b.test", "--customer", "nosuch", "--route", "127.0.0.1"),    # no customer
        ("domain", "set", "nosuch.test", "--recipient-check", "on"),                    # no domain
        ("domain", "set", "acme.test", "--outbound-from", "300.1.2.3/8"),               # bad CIDR
        ("user", "del", "nobody@acme.test"),
        ("alias", "del", "nothing@acme.test"),
        ("alias", "add", "nobody@acme.test", "x@acme.test"),                            # no such user
        ("queue", "show", "NOSUCHQUEUEID"),
        ("queue", "delete", "NOSUCHQUEUEID"),
    ]
    for args in refused:
        cp = lb.ctl(*args)
        assert cp.returncode == 1, f"lifeboatctl {' '.join(args)}: expected 1, got {cp.returncode} ({cp.stderr!r})"
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, f"lifeboatctl {' '.join(args)}: want one clear line on stderr, got {cp.stderr!r}"

    cp = lb.ctl("user", "add", "bob@nothosted.test", "--password-stdin", input="pw-long-enough-1\n")
    assert cp.returncode == 1, cp.stderr

    usage = [
        (),
        ("frobnicate",),
        ("customer",),
        ("customer", "explode"),
        ("customer", "add"),
        ("domain", "add", "c.test"),                          # no --customer / --route
        ("domain", "set", "acme.test", "--recipient-check", "maybe"),
        ("user", "add", "bob@acme.test", "--password", "secret"),  # passwords never on the command line
        ("queue", "list", "--bogus"),
        ("queue", "show"),
    ]
    for args in usage:
        cp = lb.ctl(*args)
        assert cp.returncode == 2, f"lifeboatctl {' '.join(args)}: expected 2, got {cp.returncode} ({cp.stderr!r})"
        assert cp.stderr.strip(), f"lifeboatctl {' '.join(args)}: usage error without a message"


def test_ctl_without_config_is_refused(lifeboat, tmp_path):
    cp = lifeboat.ctl("customer", "list", conf=str(tmp_path / "missing.conf"))
    assert cp.returncode in (1, 2)
    assert "missing.conf" in cp.stderr


def test_json_listings(lifeboat, sink):
    lb = lifeboat
    lb.add_domain("acme.test", "acme", sink.route, recipient_check=True, outbound_from="192.0.2.0/24")
    lb.add_user("bob@acme.test", name="Bob Example")
    lb.add_user("carol@acme.test", activate=False)
    lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")

    customers = lb.ctl_json("customer", "list")
    assert isinstance(customers, list) and "acme" in json.dumps(customers)

    domains = lb.ctl_json("domain", "list")
    assert isinstance(domains, list) and len(domains) == 1
    d = domains[0]
    assert isinstance(d, dict)
    assert "acme.test" in json.dumps(d)
    assert sink.route in json.dumps(d)
    assert "192.0.2.0/24" in json.dumps(d)

    users = lb.ctl_json("user", "list", "--domain", "acme.test")
    assert isinstance(users, list) and len(users) == 2
    text = json.dumps(users)
    assert "bob@acme.test" in text and "carol@acme.test" in text
    assert "argon2" not in text and "correct horse" not in text, "user list leaks password hashes"

    aliases = lb.ctl_json("alias", "list")
    assert isinstance(aliases, list) and "sales@acme.test" in json.dumps(aliases)

    assert lb.ctl_json("queue", "list") == []


def test_addresses_case_insensitive_in_ctl(lifeboat, sink):
    lb = lifeboat
    lb.add_domain("Acme.TEST", "acme", sink.route)
    lb.add_user("Bob@ACME.test")
    # the same user again, other spelling: refused as existing
    cp = lb.ctl("user", "add", "bob@acme.test", "--password-stdin", input="another password 2\n")
    assert cp.returncode == 1, cp
    assert lb.ctl("domain", "add", "ACME.test", "--customer", "acme", "--route", sink.route).returncode == 1
    assert "acme.test" in lb.ctl_ok("domain", "list").stdout.lower()


def test_password_only_from_stdin(lifeboat, sink):
    lb = lifeboat
    lb.add_domain("acme.test", "acme", sink.route)
    secret = "very secret 77 password"
    lb.add_user("bob@acme.test", password=secret)
    lb.ctl_ok("user", "set", "bob@acme.test", "--password-stdin", input="another secret 88 pw\n")
    for args in (("user", "list"), ("user", "list", "--json")):
        out = lb.ctl_ok(*args).stdout
        assert secret not in out and "argon2" not in out
    assert secret not in lb.log()


def test_queue_commands(acme, sink):
    sink.close()
    mid = lbtest.new_msgid("q")
    with lbtest.RawSMTP(acme.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@acme.test>")[0] == 250
        assert c.cmd("RCPT TO:<carol@acme.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(lbtest.dot_stuff(lbtest.make_message(mid)) + b".\r\n")
        code, text = c.reply()
        assert code == 250, text
    entry = lbtest.wait_for(lambda: acme.queue() and acme.queue()[0]["attempts"] >= 1 and acme.queue()[0],
                            timeout=15, what="a deferred entry")
    assert entry["sender"] == "alice@example.org"
    assert sorted(r.lower() for r in entry["recipients"]) == ["bob@acme.test", "carol@acme.test"]
    assert isinstance(entry["next_attempt"], (int, float, str))
    assert entry["last_reply"], entry
    qid = entry["id"]
    # The queue ID appears in the 250 reply to DATA or at least in the log.
    assert qid in text or qid in acme.log()

    listing = acme.ctl_ok("queue", "list").stdout
    assert qid in listing and "bob@acme.test" in listing
    show = acme.ctl_ok("queue", "show", qid).stdout
    assert qid in show and "bob@acme.test" in show and "alice@example.org" in show
    acme.ctl_ok("queue", "flush")
    acme.ctl_ok("queue", "delete", qid)
    assert acme.queue() == []
    assert acme.ctl("queue", "show", qid).returncode == 1
    sink.open()
    acme.ctl_ok("queue", "flush")
    time.sleep(1.5)
    assert sink.messages == [], "a deleted message was delivered"


# ------------------------------------------------------------------ config files


BAD_CONFIGS = [
    ("unknown key", "frobnicate = yes\n"),
    ("bad duration", "queue_lifetime = 5 days\n"),
    ("bad size", "max_message_size = 25Q\n"),
    ("bad listen", "http_listen = 127.0.0.1:99999\n"),
    ("no equals", "this line is not a setting\n"),
    ("bad number", "max_recipients = many\n"),
    ("set twice", "max_recipients = 10\n"),  # max_recipients also on line 2
]


def write_conf(tmp_path, bad_line, data_dir):
    path = tmp_path / "bad.conf"
    path.write_text(
        "# a config with one bad line\n"          # line 1
        "max_recipients = 100\n"                   # line 2
        f"data_dir = {data_dir}\n"                 # line 3
        "smtp_listen = 127.0.0.1:1\n"              # line 4 (never reached)
        + bad_line                                 # line 5
        + "hostname = after.test\n"
    )
    return str(path)


@pytest.mark.parametrize("what,bad_line", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_line_named(tmp_path, what, bad_line):
    conf = write_conf(tmp_path, bad_line, tmp_path / "data")
    env = lbtest.sanitizer_env()
    cp = subprocess.run([lbtest.LIFEBOATCTL, "-c", conf, "config", "check"], capture_output=True, text=True,
                        env=env, timeout=30)
    # 1 (the check failed) or 2 (lifeboatctl treats a config that does not load as bad usage)
    assert cp.returncode in (1, 2), f"config check on a bad file: exit {cp.returncode}, {cp.stderr!r}"
    assert "bad.conf:5" in cp.stderr, f"the bad line is not named: {cp.stderr!r}"
    assert not lbtest.sanitizer_findings(cp.stderr)

    cp = subprocess.run([lbtest.LIFEBOATD, "-c", conf, "--foreground"], capture_output=True, text=True,
                        env=env, timeout=30)
    assert cp.returncode != 0, "lifeboatd started on a bad config"
    assert "bad.conf:5" in cp.stderr, f"lifeboatd does not name the line: {cp.stderr!r}"
    assert not lbtest.sanitizer_findings(cp.stderr)
    assert not os.path.exists(tmp_path / "data" / "lifeboat.db")


def test_missing_config_file(tmp_path):
    cp = subprocess.run([lbtest.LIFEBOATD, "-c", str(tmp_path / "nope.conf"), "--foreground"],
                        capture_output=True, text=True, env=lbtest.sanitizer_env(), timeout=30)
    assert cp.returncode != 0 and "nope.conf" in cp.stderr


def test_good_config_check(lifeboat):
    cp = lifeboat.ctl("config", "check")
    assert cp.returncode == 0, cp.stderr


def test_shipped_local_config_parses():
    conf = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "lifeboat-local.conf")
    cp = subprocess.run([lbtest.LIFEBOATCTL, "-c", conf, "config", "check"], capture_output=True, text=True,
                        env=lbtest.sanitizer_env(), timeout=30, cwd=os.path.dirname(conf))
    assert cp.returncode == 0, cp.stderr


def test_ctl_while_daemon_is_busy(acme, sink):
    """lifeboatctl writes while lifeboatd accepts and delivers mail (both on the same store):
    neither side fails on the other's locks."""
    errors, sent = [], []
    acme.add_user("bob@acme.test")  # so that toggling --recipient-check does not refuse him

    def client(n):
        try:
            with smtplib.SMTP("127.0.0.1", acme.smtp_port, timeout=30) as c:
                for i in range(15):
                    mid = lbtest.new_msgid(f"busy{n}-{i}")
                    c.sendmail("alice@example.org", ["bob@acme.test"], lbtest.make_message(mid),
                               mail_options=["BODY=8BITMIME"])
                    sent.append(mid)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for i in range(8):
        acme.ctl_ok("user", "add", f"user{i}@acme.test", "--password-stdin", "--activate",
                    input=f"password number {i}\n")
        acme.ctl_ok("domain", "set", "acme.test", "--recipient-check", "on" if i % 2 else "off")
        acme.ctl_ok("queue", "list", "--json")
    for t in threads:
        t.join(60)
    assert not errors, errors
    lbtest.wait_for(lambda: set(lbtest.message_ids(sink.messages)) >= set(sent), timeout=60,
                    what="all 60 messages")
    assert len(acme.ctl_json("user", "list")) == 9
