"""
GET /metrics (SPEC.md "HTTP API"): Prometheus text that an administrator's scraper can use.

The counters follow what happens (a delivered message moves lifeboat_delivery_sent_total, a
domain's fault moves its lifeboat_domain_state and the divert counter), the gauges are read from
the store when scraped (queue size, continuity held/waiting), and only clients in metrics_allow
may read it: domain names are labels, so the webmail port must not hand them to the world.
"""
import re
import urllib.error
import urllib.request

import lbtest
from lbtest import make_message, new_msgid, submit, wait_for

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? ([0-9]+(?:\.[0-9]+)?)$')


def scrape(lb):
    with urllib.request.urlopen(f"http://127.0.0.1:{lb.http_port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def test_counters_and_gauges_follow_the_mail(make_lifeboat, sink):
    lb = make_lifeboat(dr_probe_interval="1s", delivery_timeout="3s")
    lb.start()
    dead = f"127.0.0.1:{lbtest.free_port()}"
    lb.add_domain("acme.test", "acme", sink.route)
    lb.add_domain("globex.test", "globex", dead)
    lb.add_user("eve@globex.test")
    lb.enable_continuity("globex.test", "globex")

    before = scrape(lb)
    assert before["lifeboat_delivery_sent_total"] == 0
    assert before['lifeboat_domain_state{domain="acme.test",state="normal"}'] == 1
    assert before['lifeboat_domain_state{domain="globex.test",state="outage"}'] == 0

    submit(lb.smtp_port, "a@example.org", ["bob@acme.test"],
           make_message(new_msgid("metrics"), to="bob@acme.test"))
    sink.wait_messages(1, timeout=20)
    submit(lb.smtp_port, "a@example.org", ["eve@globex.test"],
           make_message(new_msgid("metrics"), to="eve@globex.test"))
    lb.wait_continuity_state("globex.test", "outage", timeout=20)

    after = wait_for(lambda: (s := scrape(lb))["lifeboat_continuity_diverted_total"] >= 1 and s, timeout=10,
                     what="the divert counter")
    assert after["lifeboat_delivery_sent_total"] == 1
    assert after["lifeboat_smtp_messages_total"] >= 0  # present
    assert after["lifeboat_continuity_transitions_total"] >= 1
    assert after['lifeboat_domain_state{domain="globex.test",state="outage"}'] == 1
    assert after['lifeboat_domain_state{domain="globex.test",state="normal"}'] == 0
    assert after['lifeboat_continuity_held{domain="globex.test"}'] == 1
    assert after['lifeboat_continuity_waiting{domain="globex.test"}'] == 1
    assert after['lifeboat_queue_recipients{state="continuity"}'] == 1
    assert after["lifeboat_http_requests_total"] > before["lifeboat_http_requests_total"]
    # acme.test has no continuity: no mailbox gauges for it.
    assert 'lifeboat_continuity_held{domain="acme.test"}' not in after


def test_only_metrics_allow_may_read(make_lifeboat):
    lb = make_lifeboat(metrics_allow="192.0.2.0/24")
    lb.start()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{lb.http_port}/metrics", timeout=10)
        raise AssertionError("a client outside metrics_allow read /metrics")
    except urllib.error.HTTPError as e:
        assert e.code == 403
        assert b"metrics_allow" in e.read()


def test_bad_metrics_allow_is_named(make_lifeboat):
    lb = make_lifeboat(metrics_allow="10.0.0.0/33")
    cp = lb.ctl("config", "check")
    assert cp.returncode != 0
    assert re.search(r"lifeboat\.conf:\d+: .*metrics_allow", cp.stderr + cp.stdout), cp.stderr
