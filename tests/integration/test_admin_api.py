"""
The control panel's API (issue 11, item 1; SPEC.md "HTTP API", /api/v1/admin/): every route walked
as a user (403), as the admin of another customer (404 on every object of this one, which is
never listed either), as this customer's admin and as an operator (allowed); and what the
routes do: customers, subscriptions, domains, continuity settings, users, aliases, policy, with
the same rules and refusals as lifeboatctl, each change in the audit trail.

One daemon for the module: acme (acme.test: bob with alias sales@, admin ann), globex
(globex.test: admin gina), and the provider's operator oscar (ops.test).
"""
import json
import re
import subprocess
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

import lbtest
from test_http_api import PASSWORD, Client

ROOT = Path(__file__).resolve().parents[2]
A = "/api/v1/admin"

# Every admin route: (method, pattern, body). Placeholders name the objects of the customer
# under test; the walk fills them with acme's (or, for the allowed roles, with fresh objects of
# acme's made for the walk). Rows run in this order; deletions come last.
ROUTES = [
    ("GET", "customers", None),
    ("POST", "customers", {"name": "walk-{tag}"}),
    ("POST", "customers/{customer}/subscription", {"months": 12}),
    ("DELETE", "customers/{customer}/subscription", None),
    ("GET", "domains", None),
    ("POST", "domains", {"domain": "{tag}.walk.test", "customer": "{customer}", "routes": ["127.0.0.1:9"]}),
    ("GET", "domains/{domain}", None),
    ("PATCH", "domains/{domain}", {"recipient_check": True}),
    ("PUT", "domains/{domain}/continuity", {"enabled": False}),
    # the domain's directory (http_admin_ldap.c; test_ldap.py has a real slapd): nobody listens on
    # port 9, so the test and the sync answer 200 with "ok": false
    ("GET", "domains/{domain}/ldap", None),
    ("PUT", "domains/{domain}/ldap", {"url": "ldap://127.0.0.1:9", "base": "dc=walk,dc=test"}),
    ("POST", "domains/{domain}/ldap/test", None),
    ("POST", "domains/{domain}/ldap/sync", None),
    ("GET", "readiness?domain={domain}", None),
    ("GET", "users", None),
    ("POST", "users", {"email": "new-{tag}@{domain}", "active": True}),
    ("GET", "users/{user}", None),
    ("PATCH", "users/{user}", {"name": "Walked"}),
    ("POST", "users/{user}/aliases", {"alias": "al-{tag}@{domain}"}),
    ("DELETE", "users/{user}/aliases/{alias}", None),
    ("POST", "users/import?domain={domain}", "email,name\nimported-{tag}@{domain},Imported\n"),  # text/csv
    ("POST", "users/{user}/unlock", None),
    ("GET", "policy", None),
    ("PUT", "policy", {"min_length": 8}),
    ("GET", "archive/holds", None),
    ("POST", "archive/holds", {"user": "{user}"}),
    ("DELETE", "archive/holds?user={user}", None),
    ("GET", "audit", None),
    # the outage dashboard and the queue page (test_admin_ops.py tests what they do)
    ("GET", "continuity?domain={domain}", None),
    ("GET", "events?domain={domain}", None),
    ("GET", "stats?domain={domain}", None),
    ("GET", "queue", None),
    ("POST", "queue/flush", {"domain": "{domain}"}),
    ("POST", "queue/{message}/hold", None),
    ("POST", "queue/{message}/release", None),
    ("DELETE", "queue/{message}", None),
    ("DELETE", "users/{user}", None),
    ("DELETE", "domains/{newdomain}", None),
    ("DELETE", "customers/{customer}", None),
]

# Routes that name an object of the customer in their path (another customer's admin: 404).
NAMES_OBJECT = re.compile(r"\{(customer|domain|user|alias|message)\}")
OPERATOR_ONLY = {("POST", "customers"), ("POST", "customers/{customer}/subscription"),
                 ("DELETE", "customers/{customer}/subscription"), ("POST", "domains"),
                 ("DELETE", "domains/{newdomain}"), ("DELETE", "customers/{customer}")}


def route_table():
    """The admin routes of the daemon's table (src/http/http_routes.c), as (method, pattern)."""
    src = (ROOT / "src/http/http_routes.c").read_text()
    return {(m, p.replace(":s", "{}").replace(":id", "{}"))
            for m, p in re.findall(r'\{HTTP_(\w+), "/api/v1/admin/([^"]+)"', src)}


def test_the_walk_covers_every_admin_route():
    """A route added to the table without a row here fails: its roles would go unchecked."""
    walked = {(m, re.sub(r"\{\w+\}", "{}", p.split("?")[0])) for m, p, _ in ROUTES}
    # The export and the holds' :id form are walked by test_archive_api.py.
    missing = route_table() - walked - {("DELETE", "archive/holds/{}")}
    assert not missing, f"admin routes without a row in ROUTES: {sorted(missing)}"


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    lb = lbtest.Lifeboat(tmp_path_factory.mktemp("admin_api") / "lifeboat")
    lb.start()
    dead = f"127.0.0.1:{lbtest.free_port()}"
    lb.add_domain("acme.test", "acme", dead)
    lb.add_domain("globex.test", "globex", dead)
    lb.add_domain("ops.test", "provider", dead)
    for customer in ("acme", "globex"):
        lb.ctl_ok("subscription", "start", customer)
    for addr, role in [("bob@acme.test", "user"), ("ann@acme.test", "admin"), ("gina@globex.test", "admin"),
                       ("oscar@ops.test", "operator")]:
        lb.ctl_ok("user", "add", addr, "--role", role, "--password-stdin", "--activate", input=PASSWORD + "\n")
    lb.ctl_ok("alias", "add", "bob@acme.test", "sales@acme.test")
    ACME["message"] = queue_message(lb, "nobody@acme.test")
    yield lb
    problems = lbtest.finish([lb])
    assert not problems, "\n\n".join(problems)


def queue_message(lb, rcpt):
    """A message for rcpt (no user: never diverted) that stays queued, its server being dead."""
    data = lbtest.make_message(lbtest.new_msgid("walk"), to=rcpt, subject="walk")
    return lbtest.submit(lb.smtp_port, "alice@example.org", [rcpt], data)


def login(lb, addr):
    c = Client(lb.http_port)
    r = c.login(addr)
    assert r.status == 200, (addr, r.status, r.body)
    return c


def fill(value, names):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value


def call(c, method, pattern, body, names):
    path = A + "/" + pattern.format(**{k: quote(v, safe="@") for k, v in names.items()})
    if isinstance(body, str):  # a CSV upload
        return c.request(method, path, raw_body=fill(body, names).encode(), headers={"Content-Type": "text/csv"})
    return c.request(method, path, fill(body, names) if body is not None else None)


ACME = {"customer": "acme", "domain": "acme.test", "user": "bob@acme.test", "alias": "sales@acme.test",
        "tag": "x", "newdomain": "acme.test"}


def acme_state(lb):
    """What the walks of the roles that may not touch acme must leave as it was."""
    # (logging in to try the routes moves last_login and readiness: not a change by the routes)
    users = [{k: v for k, v in u.items() if k not in ("last_login", "ready", "not_ready")}
             for u in lb.ctl_json("user", "list", "--domain", "acme.test")]
    return (users, lb.ctl_json("domain", "list"),
            lb.ctl_json("customer", "list"), lb.ctl_json("policy", "show", "acme"),
            lb.ctl_json("archive", "holds"))


def test_a_user_gets_403_on_every_route(lb):
    before = acme_state(lb)
    bob = login(lb, "bob@acme.test")
    for method, pattern, body in ROUTES:
        r = call(bob, method, pattern, body, ACME)
        assert r.status == 403, (method, pattern, r.status, r.body)
        assert r.json["code"] in ("admin_only", "operator_only"), r.json
    assert acme_state(lb) == before


def test_another_customers_admin_gets_404_and_never_sees_it(lb):
    before = acme_state(lb)
    gina = login(lb, "gina@globex.test")
    for method, pattern, body in ROUTES:
        r = call(gina, method, pattern, body, ACME)
        if (method, pattern) in OPERATOR_ONLY:
            assert r.status == 403 and r.json["code"] == "operator_only", (method, pattern, r.status, r.body)
        elif NAMES_OBJECT.search(pattern) or (body and NAMES_OBJECT.search(json.dumps(body))):
            assert r.status == 404, (method, pattern, r.status, r.body)
            assert r.json["code"] == "not_found"
        else:
            assert r.status < 400, (method, pattern, r.status, r.body)
            text = r.body.decode()
            assert "acme" not in text, (method, pattern, text[:400])
    # ?customer= of another customer is as unknown as a missing one
    for pattern in ("users", "domains", "policy", "customers"):
        r = gina.request("GET", f"{A}/{pattern}?customer=acme")
        assert r.status == 404, (pattern, r.status, r.body)
    assert acme_state(lb) == before


@pytest.mark.parametrize("who", ["ann@acme.test", "oscar@ops.test"])
def test_this_customers_admin_and_an_operator_are_allowed(lb, who):
    tag = who.split("@")[0]
    # Fresh objects of acme's for the walk to change and delete.
    lb.ctl_ok("user", "add", f"walk-{tag}@acme.test", "--activate")
    lb.ctl_ok("alias", "add", f"walk-{tag}@acme.test", f"walk-alias-{tag}@acme.test")
    lb.ctl_ok("domain", "set", "acme.test", "--recipient-check", "off")  # the walk before turned it on
    names = {"customer": f"walk-{tag}", "domain": "acme.test", "user": f"walk-{tag}@acme.test",
             "alias": f"walk-alias-{tag}@acme.test", "tag": tag, "newdomain": f"{tag}.walk.test",
             "message": queue_message(lb, f"walk-q-{tag}@acme.test")}
    c = login(lb, who)
    operator = who.startswith("oscar")
    for method, pattern, body in ROUTES:
        if pattern == "policy" and operator:
            pattern = "policy?customer=acme"
        if pattern.startswith("customers/") and not operator:
            names_here = dict(names, customer="acme")  # an admin's own customer (refused: operator only)
        else:
            names_here = names
        r = call(c, method, pattern, body, names_here)
        if (method, pattern) in OPERATOR_ONLY and not operator:
            assert r.status == 403 and r.json["code"] == "operator_only", (method, pattern, r.status, r.body)
            continue
        # allowed: done, or refused by a rule of the business (a minimum term), never by role or scope
        assert r.status in (200, 201) or (r.status == 409 and r.json["code"] == "refused"), \
            (who, method, pattern, r.status, r.body)
    # Everything the walk did is in the audit trail under its name.
    audit = [e for e in lb.ctl_json("audit", "list", "--limit", "200") if e["actor"] == who]
    actions = {e["action"] for e in audit}
    assert {"user.add", "user.set", "alias.add", "alias.del", "user.del", "domain.set", "continuity.disable",
            "policy.set"} <= actions, actions
    assert {"queue.flush", "queue.hold", "queue.release", "queue.delete"} <= actions, actions
    if operator:
        assert {"customer.add", "subscription.start", "domain.add"} <= actions
    lb.ctl_ok("continuity", "enable", "acme.test")


def test_users_crud_with_the_directorys_rules(lb):
    ann = login(lb, "ann@acme.test")
    r = ann.request("POST", f"{A}/users", {"email": "Dora@Acme.Test", "name": "Dora", "role": "user",
                                          "active": True, "alt_email": "dora@home.example",
                                          "password": "weak"})
    assert r.status == 400 and r.json["code"] == "password_policy", r.json
    assert "at least 8 characters" in r.json["error"]
    # nothing half-made: the refused user does not exist
    assert ann.request("GET", f"{A}/users/dora@acme.test").status == 404
    r = ann.request("POST", f"{A}/users", {"email": "Dora@Acme.Test", "name": "Dora", "role": "user",
                                          "active": True, "alt_email": "dora@home.example",
                                          "password": "long enough 1"})
    assert r.status == 201, r.body
    u = r.json
    assert (u["email"], u["name"], u["role"], u["active"], u["alt_email"], u["password"]) == \
        ("dora@acme.test", "Dora", "user", True, "dora@home.example", True)
    assert "pw_hash" not in r.body.decode() and "argon2" not in r.body.decode()
    assert ann.request("POST", f"{A}/users", {"email": "dora@acme.test"}).json["code"] == "exists"
    assert (u["source"], u["last_login"], u["ready"], u["not_ready"]) == \
        ("local", None, False, ["never_logged_in"])
    # she can log in with it, and then she is ready for an outage
    assert Client(lb.http_port).login("dora@acme.test", "long enough 1").status == 200
    u = ann.request("GET", f"{A}/users/dora@acme.test").json
    assert u["last_login"] and u["ready"] is True and u["not_ready"] == []
    # an address outside the admin's domains: as unknown
    r = ann.request("POST", f"{A}/users", {"email": "x@globex.test"})
    assert r.status == 404
    # an admin makes no operator, and cannot touch one
    r = ann.request("POST", f"{A}/users", {"email": "op@acme.test", "role": "operator"})
    assert r.status == 403 and r.json["code"] == "operator_only"
    r = ann.request("PATCH", f"{A}/users/dora@acme.test", {"role": "operator"})
    assert r.status == 403 and r.json["code"] == "operator_only"
    # edit: suspend, rename, alternate address; the list shows it; search finds it
    r = ann.request("PATCH", f"{A}/users/dora%40acme.test", {"active": False, "name": "Dora D."})
    assert r.status == 200 and r.json["active"] is False and r.json["suspended"] is True
    assert r.json["name"] == "Dora D."
    assert Client(lb.http_port).login("dora@acme.test", "long enough 1").status in (401, 403)
    r = ann.request("PATCH", f"{A}/users/dora@acme.test", {"active": True})
    assert r.json["active"] is True
    r = ann.request("PATCH", f"{A}/users/dora@acme.test", {"password": "short"})
    assert r.status == 400 and r.json["code"] == "password_policy"
    r = ann.request("PATCH", f"{A}/users/dora@acme.test", {})
    assert r.status == 400 and r.json["code"] == "invalid"
    r = ann.request("PATCH", f"{A}/users/dora@acme.test", {"name": 5})
    assert r.status == 400 and "name" in r.json["error"]
    # aliases
    r = ann.request("POST", f"{A}/users/dora@acme.test/aliases", {"alias": "d@acme.test"})
    assert r.status == 201 and r.json["aliases"] == ["d@acme.test"]
    r = ann.request("POST", f"{A}/users/dora@acme.test/aliases", {"alias": "sales@acme.test"})
    assert r.status == 409 and r.json["code"] == "exists"
    r = ann.request("POST", f"{A}/users/dora@acme.test/aliases", {"alias": "d@globex.test"})
    assert r.status >= 400
    # another user's alias through this user's path: unknown here
    assert ann.request("DELETE", f"{A}/users/dora@acme.test/aliases/sales@acme.test").status == 404
    assert ann.request("DELETE", f"{A}/users/dora@acme.test/aliases/d@acme.test").json["aliases"] == []
    # list, search and paging
    page = ann.request("GET", f"{A}/users?" + urlencode({"q": "DORA"})).json
    assert page["total"] == 1 and page["users"][0]["email"] == "dora@acme.test"
    page = ann.request("GET", f"{A}/users?" + urlencode({"q": "sales"})).json  # by alias
    assert [u["email"] for u in page["users"]] == ["bob@acme.test"]
    everyone = ann.request("GET", f"{A}/users?limit=500").json
    assert all(u["domain"] == "acme.test" for u in everyone["users"])
    first = ann.request("GET", f"{A}/users?limit=1&offset=0").json
    second = ann.request("GET", f"{A}/users?limit=1&offset=1").json
    assert first["total"] == everyone["total"] and len(first["users"]) == 1
    assert first["users"][0]["email"] != second["users"][0]["email"]
    assert ann.request("GET", f"{A}/users?limit=-1").status == 400
    assert ann.request("GET", f"{A}/users?domain=globex.test").status == 404
    # delete
    assert ann.request("DELETE", f"{A}/users/dora@acme.test").status == 200
    assert ann.request("GET", f"{A}/users/dora@acme.test").status == 404


def test_domains_continuity_and_policy(lb):
    ann = login(lb, "ann@acme.test")
    r = ann.request("PATCH", f"{A}/domains/ACME.test", {"routes": ["mx1.acme.test", "mx2.acme.test:2525"],
                                                        "outbound_from": ["192.0.2.0/24"],
                                                        "webhooks": ["https://hooks.acme.test/lb"]})
    assert r.status == 200, r.body
    d = r.json
    assert d["routes"] == ["mx1.acme.test:25", "mx2.acme.test:2525"]
    assert d["outbound_from"] == ["192.0.2.0/24"] and d["webhook"] == "https://hooks.acme.test/lb"
    # the same rules as lifeboatctl: a bad route or network is refused, naming it
    r = ann.request("PATCH", f"{A}/domains/acme.test", {"outbound_from": ["not-a-network"]})
    assert r.status == 400 and "not-a-network" in r.json["error"]
    r = ann.request("PATCH", f"{A}/domains/acme.test", {"routes": []})
    assert r.status == 400
    # DKIM: a key that cannot sign is refused and nothing is kept; a good one is
    r = ann.request("PATCH", f"{A}/domains/acme.test", {"dkim_selector": "s1", "dkim_key_pem": "not a key"})
    assert r.status == 400 and "not a key" not in r.json["error"]
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout.decode()
    r = ann.request("PATCH", f"{A}/domains/acme.test", {"dkim_selector": "s1", "dkim_key_pem": key})
    assert r.status == 200 and r.json["dkim_selector"] == "s1", r.body
    keyfile = Path(r.json["dkim_key"])
    assert keyfile.read_text() == key and oct(keyfile.stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE KEY" not in json.dumps(lb.ctl_json("audit", "list", "--limit", "200"))
    lb.ctl_ok("domain", "set", "acme.test", "--route", lb.ctl_json("domain", "list")[0]["routes"][0])
    # continuity: on for all users, with the outgoing option; off
    r = ann.request("PUT", f"{A}/domains/acme.test/continuity", {"enabled": True, "outgoing_to_own_server": True})
    assert r.status == 200 and r.json["continuity"] is True and r.json["outgoing_to_own_server"] is True
    st = [s for s in lb.ctl_json("domain", "list") if s["name"] == "acme.test"][0]
    assert st["continuity"] is True and st["outgoing_to_own_server"] is True
    r = ann.request("PUT", f"{A}/domains/acme.test/continuity", {"outgoing_to_own_server": True})
    assert r.status == 400
    # a customer without a subscription cannot have continuity (the directory's rule)
    oscar = login(lb, "oscar@ops.test")
    assert oscar.request("PUT", f"{A}/domains/ops.test/continuity", {"enabled": True}).json["code"] == "refused"
    # policy: the admin's own customer; the operator names one
    r = ann.request("PUT", f"{A}/policy", {"min_length": 12, "digit": True})
    assert r.status == 200 and r.json["min_length"] == 12 and r.json["digit"] is True
    assert "12 characters" in r.json["text"]
    r = ann.request("POST", f"{A}/users", {"email": "zed@acme.test", "password": "abcdefghij1"})
    assert r.status == 400 and r.json["code"] == "password_policy" and "12 characters" in r.json["error"]
    assert oscar.request("GET", f"{A}/policy").status == 400
    assert oscar.request("GET", f"{A}/policy?customer=acme").json["min_length"] == 12
    assert ann.request("PUT", f"{A}/policy", {"min_length": 0}).status == 400
    ann.request("PUT", f"{A}/policy", {"min_length": 8, "digit": False})


def test_operator_customers_subscriptions_domains(lb):
    oscar = login(lb, "oscar@ops.test")
    r = oscar.request("POST", f"{A}/customers", {"name": "initech"})
    assert r.status == 201 and r.json["subscription"] == "none"
    assert oscar.request("POST", f"{A}/customers", {"name": "initech"}).json["code"] == "exists"
    r = oscar.request("POST", f"{A}/customers/initech/subscription", {"months": 6})
    assert r.status == 400  # the minimum term is 12 months
    r = oscar.request("POST", f"{A}/customers/initech/subscription", {"months": 24})
    assert r.status == 200 and r.json["subscription"] == "active"
    r = oscar.request("DELETE", f"{A}/customers/initech/subscription")
    assert r.status == 409 and r.json["code"] == "refused"  # inside the minimum term
    r = oscar.request("POST", f"{A}/domains", {"domain": "Initech.test", "customer": "initech",
                                               "routes": ["mx.initech.test"]})
    assert r.status == 201 and r.json["name"] == "initech.test" and r.json["customer"] == "initech"
    r = oscar.request("POST", f"{A}/domains", {"domain": "x.test", "customer": "nobody", "routes": ["a"]})
    assert r.status == 404
    names = [c["name"] for c in oscar.request("GET", f"{A}/customers").json]
    assert {"acme", "globex", "initech"} <= set(names)
    only = oscar.request("GET", f"{A}/domains?customer=initech").json
    assert [d["name"] for d in only] == ["initech.test"]
    # an admin sees only their own customer
    ann = login(lb, "ann@acme.test")
    assert [c["name"] for c in ann.request("GET", f"{A}/customers").json] == ["acme"]
    assert {d["name"] for d in ann.request("GET", f"{A}/domains").json} == {"acme.test"}
