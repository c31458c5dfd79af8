"""
User import, unlock and the operator's deletions (issue 11, items 2 and 4; SPEC.md "Administration",
"user import CSV", "HTTP API"): lifeboatctl and the admin API run the same directory code, so the
same file gives the same report either way; an unlock lets a locked-out user in again; a domain with
mail queued for it is kept unless forced; a customer with domains is kept.

One daemon for the module: acme (acme.test, imp.test, q.test, routed to a closed port so mail for
them stays queued) with admin ann, globex (globex.test) with admin gina, and the provider (ops.test)
with operator oscar; acme is subscribed, so its mail is archived.
"""
import json
from urllib.parse import quote

import pytest

import lbtest
from lbtest import submit, wait_for
from test_http_api import PASSWORD, Client

# Good lines, bad lines (each for a reason of its own) and a duplicate; quoting, CRLF and a BOM.
CSV = ("\ufeffemail,name,aliases,role,active,password,alt_email\r\n"
       "amy@imp.test,\"Doe, Amy\",amy.d@imp.test a@acme.test,user,yes,Sunny-days-42,amy@home.example\r\n"
       "ben@imp.test,\"Ben \"\"B\"\" Brown\",,admin,no,,\r\n"
       "not-an-address,X,,,,,\r\n"
       "amy@imp.test,Again,,,,,\r\n"
       "cy@imp.test,Cy,,boss,,,\r\n"
       "dee@imp.test,Dee,,,,short,\r\n"
       "eli@imp.test,Eli,sales@acme.test,,,,\r\n"
       "fay@imp.test,Fay,f@globex.test,,,,\r\n"
       "gus@acme.test,Gus,,,,,\r\n")

REPORT = {
    "imported": 2,
    "updated": 0,
    "errors": [
        {"line": 4, "error": "\"not-an-address\" is not a valid address"},
        {"line": 5, "error": "amy@imp.test is already on line 2"},
        {"line": 6, "error": "cy@imp.test: unknown role \"boss\" (expected user, admin or operator)"},
        {"line": 7, "error": "dee@imp.test: password must be at least 8 characters"},
        {"line": 8, "error": "alias sales@acme.test already exists (for bob@acme.test)"},
        {"line": 9, "error": "alias f@globex.test: domain globex.test belongs to another customer than user "
                             "fay@imp.test"},
        {"line": 10, "error": "gus@acme.test is not in domain imp.test"},
    ],
}


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    dead = f"127.0.0.1:{lbtest.free_port()}"
    lb = lbtest.Lifeboat(tmp_path_factory.mktemp("admin_users") / "lifeboat",
                         {"delivery_timeout": "2s", "retry_min_backoff": "1h", "retry_max_backoff": "2h"})
    lb.start()
    lb.dead = dead
    for domain, customer in (("acme.test", "acme"), ("imp.test", "acme"), ("q.test", "acme"),
                             ("globex.test", "globex"), ("ops.test", "provider")):
        lb.add_domain(domain, customer, dead)
    lb.ctl_ok("subscription", "start", "acme")
    lb.add_user("bob@acme.test")
    lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
    for addr, role in (("ann@acme.test", "admin"), ("gina@globex.test", "admin"), ("oscar@ops.test", "operator")):
        lb.ctl_ok("user", "add", addr, "--role", role, "--password-stdin", "--activate", input=PASSWORD + "\n")
    yield lb
    problems = lbtest.finish([lb])
    assert not problems, "\n\n".join(problems)


def login(lb, addr, password=PASSWORD):
    c = Client(lb.http_port)
    r = c.login(addr, password)
    assert r.status == 200, (addr, r.status, r.body)
    return c


def api_import(c, domain, body, content_type="text/csv; charset=utf-8", **kw):
    return c.request("POST", f"/api/v1/admin/users/import?domain={quote(domain)}", raw_body=body.encode(),
                     headers={"Content-Type": content_type}, **kw)


def users_of(lb, domain):
    return {u["email"]: u for u in lb.ctl_json("user", "list", "--domain", domain)}


def audit(lb, action):
    return lbtest.sql(lb, "SELECT actor, target, detail FROM audit WHERE action = ? ORDER BY id", (action,))


def test_import_same_report_from_ctl_and_api(lb, tmp_path):
    # The API first, as the customer's admin.
    ann = login(lb, "ann@acme.test")
    r = api_import(ann, "imp.test", CSV)
    assert r.status == 200, r.body
    assert r.json == REPORT
    users = users_of(lb, "imp.test")
    assert sorted(users) == ["amy@imp.test", "ben@imp.test"]
    assert users["amy@imp.test"]["name"] == "Doe, Amy"
    assert users["ben@imp.test"]["name"] == 'Ben "B" Brown'
    assert Client(lb.http_port).login("amy@imp.test", "Sunny-days-42").status == 200
    assert Client(lb.http_port).login("a@acme.test", "Sunny-days-42").status == 200  # by her alias
    assert audit(lb, "user.import") == [("ann@acme.test", "domain:imp.test", "imported 2, updated 0, refused 7")]

    # The same file again updates: nothing duplicated, the same refusals.
    r = api_import(ann, "imp.test", CSV)
    assert r.status == 200 and r.json == dict(REPORT, imported=0, updated=2), r.body
    assert sorted(users_of(lb, "imp.test")) == ["amy@imp.test", "ben@imp.test"]

    # lifeboatctl on the same state as the first import (the domain deleted and added again)
    # gives the same report; exit 1 because lines were refused.
    lb.ctl_ok("domain", "del", "imp.test")
    assert lb.ctl("user", "list", "--domain", "imp.test").returncode == 1  # not hosted any more
    lb.ctl_ok("domain", "add", "imp.test", "--customer", "acme", "--route", lb.dead)
    path = tmp_path / "users.csv"
    path.write_text(CSV, encoding="utf-8", newline="")
    cp = lb.ctl("user", "import", str(path), "--domain", "imp.test", "--json")
    assert cp.returncode == 1, cp.stderr
    assert json.loads(cp.stdout) == REPORT
    assert "7 line(s) refused" in cp.stderr
    # The text form names each refused line.
    cp = lb.ctl("user", "import", str(path), "--domain", "imp.test")
    assert cp.returncode == 1
    assert cp.stdout.splitlines()[0] == "imported 0, updated 2, refused 7"
    assert "line 8: alias sales@acme.test already exists (for bob@acme.test)" in cp.stdout
    # A file without errors exits 0.
    ok = tmp_path / "ok.csv"
    ok.write_text("email,name\nhal@imp.test,Hal\n")
    assert lb.ctl_ok("user", "import", str(ok), "--domain", "imp.test").stdout == "imported 1, updated 0, refused 0\n"


def test_import_refusals(lb):
    ann = login(lb, "ann@acme.test")
    # Another customer's domain is as unknown as a missing one.
    gina = login(lb, "gina@globex.test")
    r = api_import(gina, "imp.test", "email\nx@imp.test\n")
    assert r.status == 404 and r.json["code"] == "not_found", r.body
    assert api_import(gina, "nowhere.test", "email\n").status == 404
    # A user may not; the CSRF token and the CSV type are required.
    lb.add_user("uma@acme.test")
    uma = login(lb, "uma@acme.test", "correct horse 9 battery")
    assert api_import(uma, "acme.test", "email\nx@acme.test\n").status == 403
    assert api_import(ann, "acme.test", "email\nx@acme.test\n", csrf=False).status == 403
    r = api_import(ann, "acme.test", '{"email": "x@acme.test"}', content_type="application/json")
    assert r.status == 415 and r.json["code"] == "not_csv"
    assert ann.request("POST", "/api/v1/admin/users/import", raw_body=b"email\n",
                       headers={"Content-Type": "text/csv"}).status == 400
    # The file as a whole: an unknown column refuses everything.
    r = api_import(ann, "acme.test", "email,nmae\nx@acme.test,X\n")
    assert r.status == 400 and r.json["code"] == "invalid"
    assert "unknown column \"nmae\"" in r.json["error"]
    # An admin gives no operator role and changes no operator.
    lb.ctl_ok("user", "add", "otto@acme.test", "--role", "operator")
    r = api_import(ann, "acme.test", "email,role\nx@acme.test,operator\notto@acme.test,user\n")
    assert r.status == 200
    assert r.json["errors"] == [
        {"line": 2, "error": "x@acme.test: only an operator can give the role operator"},
        {"line": 3, "error": "otto@acme.test is an operator: only an operator can change them"}]
    assert users_of(lb, "acme.test")["otto@acme.test"]["role"] == "operator"
    # The operator may.
    oscar = login(lb, "oscar@ops.test")
    r = api_import(oscar, "acme.test", "email,role\nx@acme.test,operator\n")
    assert r.status == 200 and r.json == {"imported": 1, "updated": 0, "errors": []}


def test_unlock(lb):
    lb.add_user("lou@acme.test")
    c = Client(lb.http_port)
    for _ in range(5):
        assert c.login("lou@acme.test", "wrong password").status == 401
    assert c.login("lou@acme.test", "correct horse 9 battery").status == 429

    # Another customer's admin: as if lou did not exist; a user: 403.
    gina = login(lb, "gina@globex.test")
    assert gina.request("POST", "/api/v1/admin/users/lou%40acme.test/unlock").status == 404
    ann = login(lb, "ann@acme.test")
    r = ann.request("POST", "/api/v1/admin/users/lou%40acme.test/unlock")
    assert r.status == 200 and r.json == {"email": "lou@acme.test", "unlocked": True}, r.body
    assert c.login("lou@acme.test", "correct horse 9 battery").status == 200
    assert audit(lb, "user.unlock") == [("ann@acme.test", "user:lou@acme.test", "")]
    assert ann.request("POST", "/api/v1/admin/users/nobody%40acme.test/unlock").status == 404

    # lifeboatctl does the same.
    for _ in range(5):
        assert Client(lb.http_port).login("lou@acme.test", "wrong again").status == 401
    assert Client(lb.http_port).login("lou@acme.test", "correct horse 9 battery").status == 429
    assert lb.ctl_ok("user", "unlock", "lou@acme.test").stdout == "user lou@acme.test unlocked\n"
    assert Client(lb.http_port).login("lou@acme.test", "correct horse 9 battery").status == 200
    cp = lb.ctl("user", "unlock", "nobody@acme.test")
    assert cp.returncode == 1 and "user nobody@acme.test does not exist" in cp.stderr


def queued_for(lb, domain):
    return [m for m in lb.queue() if any(r.endswith("@" + domain) for r in m["recipients"])]


def test_domain_del(lb):
    lb.add_user("quinn@q.test")
    lb.ctl_ok("alias", "add", "quinn@q.test", "quinn@acme.test")
    submit(lb.smtp_port, "alice@example.org", ["quinn@q.test"],
           b"From: alice@example.org\r\nTo: quinn@q.test\r\nSubject: held up\r\n\r\nHi.\r\n")
    wait_for(lambda: queued_for(lb, "q.test"), what="the message queued for q.test")

    # Mail is queued for it: refused, by lifeboatctl and by the API.
    cp = lb.ctl("domain", "del", "q.test")
    assert cp.returncode == 1
    assert "domain q.test has 1 message(s) queued or held for it" in cp.stderr
    ann = login(lb, "ann@acme.test")
    r = ann.request("DELETE", "/api/v1/admin/domains/q.test")
    assert r.status == 403 and r.json["code"] == "operator_only"
    oscar = login(lb, "oscar@ops.test")
    r = oscar.request("DELETE", "/api/v1/admin/domains/q.test")
    assert r.status == 409 and r.json["code"] == "refused", r.body
    assert "--force" in r.json["error"]
    assert oscar.request("DELETE", "/api/v1/admin/domains/q.test?force=maybe").status == 400
    assert "quinn@q.test" in users_of(lb, "q.test")

    # Forced: the domain, its user and the alias elsewhere go; the queued copy is dropped; the
    # archive keeps its entry.
    r = oscar.request("DELETE", "/api/v1/admin/domains/q.test?force=1")
    assert r.status == 200, r.body
    assert r.json == {"domain": "q.test", "users": 1, "aliases": 1, "mailbox": 0, "dropped_queued": 1,
                      "dropped_waiting": 0}
    assert "q.test" not in [d["name"] for d in lb.ctl_json("domain", "list")]
    assert queued_for(lb, "q.test") == []
    assert [a for a in lb.ctl_json("alias", "list") if a["alias"] == "quinn@acme.test"] == []
    assert lbtest.sql(lb, "SELECT count(*) FROM archive_addrs WHERE addr = 'quinn@q.test'") == [(1,)]
    (row,) = audit(lb, "domain.delete")
    assert row[:2] == ("oscar@ops.test", "domain:q.test") and row[2].startswith("force; users 1")
    assert oscar.request("DELETE", "/api/v1/admin/domains/q.test").status == 404

    # lifeboatctl --force, on a domain added again with mail queued.
    lb.ctl_ok("domain", "add", "q.test", "--customer", "acme", "--route", lb.dead)
    submit(lb.smtp_port, "alice@example.org", ["someone@q.test"],
           b"From: alice@example.org\r\nTo: someone@q.test\r\nSubject: again\r\n\r\nHi.\r\n")
    wait_for(lambda: queued_for(lb, "q.test"), what="the message queued for q.test")
    cp = lb.ctl_ok("domain", "del", "q.test", "--force")
    assert cp.stdout == ("domain q.test deleted: 0 user(s), 0 alias(es), 0 mailbox message(s); "
                         "dropped 1 queued or held and 0 waiting for re-delivery\n")
    assert queued_for(lb, "q.test") == []


def test_customer_del(lb):
    gina = login(lb, "gina@globex.test")
    oscar = login(lb, "oscar@ops.test")
    assert gina.request("DELETE", "/api/v1/admin/customers/globex").status == 403
    r = oscar.request("DELETE", "/api/v1/admin/customers/globex")
    assert r.status == 409 and r.json["code"] == "refused"
    assert r.json["error"] == "customer globex still has 1 domain(s) (globex.test); delete them first"
    cp = lb.ctl("customer", "del", "acme")
    assert cp.returncode == 1 and "customer acme still has" in cp.stderr and "delete them first" in cp.stderr

    lb.ctl_ok("customer", "add", "Empty Corp")
    r = oscar.request("DELETE", "/api/v1/admin/customers/Empty%20Corp")
    assert r.status == 200 and r.json == {"customer": "Empty Corp", "deleted": True}, r.body
    assert oscar.request("DELETE", "/api/v1/admin/customers/Empty%20Corp").status == 404
    assert audit(lb, "customer.delete") == [("oscar@ops.test", "customer:Empty Corp", "")]
    lb.ctl_ok("customer", "add", "gone")
    assert lb.ctl_ok("customer", "del", "gone").stdout == "customer gone deleted\n"
    assert "gone" not in [c["name"] for c in lb.ctl_json("customer", "list")]


def test_domain_del_in_an_outage(lb):
    """Mail waiting in continuity mailboxes keeps the domain; forced, the domain goes while its
    outage is being probed, and the daemon carries on without it."""
    lb.add_domain("c.test", "acme", lb.dead)
    lb.add_user("cora@c.test")
    lb.ctl_ok("continuity", "enable", "c.test")
    submit(lb.smtp_port, "alice@example.org", ["cora@c.test"],
           b"From: alice@example.org\r\nTo: cora@c.test\r\nSubject: in the lifeboat\r\n\r\nHi.\r\n")
    lb.wait_continuity_state("c.test", "outage")
    wait_for(lambda: lb.mailbox("cora@c.test"), what="the message in cora's continuity mailbox")

    cp = lb.ctl("domain", "del", "c.test")
    assert cp.returncode == 1
    assert "0 message(s) queued or held for it and 1 in continuity mailboxes waiting for re-delivery" in cp.stderr
    cp = lb.ctl_ok("domain", "del", "c.test", "--force", "--json")
    assert json.loads(cp.stdout) == {"domain": "c.test", "users": 1, "aliases": 0, "mailbox": 1,
                                     "dropped_queued": 0, "dropped_waiting": 1}
    assert "c.test" not in [r["domain"] for r in lb.ctl_json("continuity", "status")]
    assert queued_for(lb, "c.test") == []
    # Still serving: mail for another domain is accepted and queued.
    submit(lb.smtp_port, "alice@example.org", ["bob@acme.test"],
           b"From: alice@example.org\r\nTo: bob@acme.test\r\nSubject: still here\r\n\r\nHi.\r\n")
    assert lb.running()
