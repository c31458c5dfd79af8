"""
LDAP / Active Directory (issue 11, item 3; SPEC.md "LDAP / Active Directory") against a real slapd.

One slapd and one lifeboatd for the module, and the tests run in file order over the same state:
sync (paged: slapd's sizelimit is below the entry count), logins that bind, the directory changing,
then slapd stopped (the cached password decides), then hung (SIGSTOP: the timeouts bound a login and
the event loop keeps serving), then the periodic sync. slapd gets a self-signed certificate and
lifeboatd trusts it through LDAPTLS_CACERT (ldap.conf(5)); the sync runs over ldaps://, and once over
StartTLS. The schema of the Active Directory attributes is tests/integration/ldap/lifeboat-test.schema.

Failed logins from 127.0.0.1 stay below the per-address lockout (20 in 15 minutes) over the module.
"""
import json
import os
import signal
import smtplib
import subprocess
import threading
import time

import pytest

import lbtest
from lbtest import wait_for
from test_submission import Client, plain_b64
from test_smtp_basics import client_tls_context

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "ldap", "lifeboat-test.schema")
BASE = "dc=acme,dc=test"
ROOT_DN, ROOT_PW = f"cn=admin,{BASE}", "root-secret-4x"
SYNC_DN, SYNC_PW = f"cn=lifeboat,{BASE}", "sync-secret-Zq7"
SIZELIMIT = 200  # below the number of entries: only a paged search gets them all
BULK = 1100
ADMIN_PW = "admin password 9"
# The default filter wants a mail; Active Directory users without Exchange have only a
# userPrincipalName, so a directory like that is given a filter that takes those too.
FILTER = "(&(objectClass=person)(|(mail=*)(userPrincipalName=*)))"


class Slapd:
    """A throw-away slapd (TESTING.md "slapd"): ldap:// and ldaps:// on free ports."""

    def __init__(self, workdir):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port, self.tls_port = lbtest.free_port(), lbtest.free_port()
        self.cert, self.key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        cp = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                             "-out", self.cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                             "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True)
        assert cp.returncode == 0, cp.stderr
        os.makedirs(os.path.join(self.dir, "db"))
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.pidfile = os.path.join(self.dir, "slapd.pid")
        with open(self.conf, "w") as f:
            f.write(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {SCHEMA}
pidfile {self.pidfile}
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {self.cert}
TLSCertificateKeyFile {self.key}
sizelimit size.soft={SIZELIMIT} size.hard={SIZELIMIT} size.prtotal=unlimited
database mdb
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {os.path.join(self.dir, "db")}
maxsize 104857600
""")
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.tls_url = f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self):
        cp = subprocess.run(["slapd", "-f", self.conf, "-h", f"{self.url}/ {self.tls_url}/"],
                            capture_output=True, text=True)
        assert cp.returncode == 0, cp.stderr
        # 0, or 32 (no such object) before the base entry exists; 255: nobody answers yet.
        wait_for(lambda: self.search("(cn=nobody)", "-D", ROOT_DN, "-w", ROOT_PW).returncode in (0, 32),
                 timeout=20, what="slapd answering")

    def pid(self):
        with open(self.pidfile) as f:
            return int(f.read().strip())

    def stop(self):
        pid = self.pid()
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        wait_for(gone, timeout=20, what="slapd gone")

    def tool(self, name, *args, input=None):
        return subprocess.run([name, "-x", "-H", self.url, *args], input=input, capture_output=True, text=True)

    def search(self, flt, *args):
        return self.tool("ldapsearch", *args, "-b", BASE, flt, "dn")

    def modify(self, ldif):
        cp = self.tool("ldapmodify", "-D", ROOT_DN, "-w", ROOT_PW, input=ldif)
        assert cp.returncode == 0, cp.stderr

    def add(self, ldif):
        cp = self.tool("ldapadd", "-D", ROOT_DN, "-w", ROOT_PW, input=ldif)
        assert cp.returncode == 0, cp.stderr


def person(uid, mail=None, cn=None, password=None, extra=()):
    lines = [f"dn: uid={uid},ou=people,{BASE}", "objectClass: inetOrgPerson", "objectClass: lifeboatTestUser",
             f"uid: {uid}", f"cn: {cn or uid}", f"sn: {uid}"]
    if mail:
        lines.append(f"mail: {mail}")
    if password:
        lines.append(f"userPassword: {password}")
    lines += list(extra)
    return "\n".join(lines) + "\n\n"


def directory_ldif():
    out = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: acme\ndc: acme\n\n",
           f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n",
           # The account lifeboat binds as: not the rootdn, so the sizelimit holds for it.
           f"dn: {SYNC_DN}\nobjectClass: person\ncn: lifeboat\nsn: lifeboat\nuserPassword: {SYNC_PW}\n\n"]
    out.append(person("alice", "alice@acme.test", "Alice A", "alice-pw-1", [
        "displayName: Alice Archer", "proxyAddresses: SMTP:alice@acme.test", "proxyAddresses: smtp:a.archer@acme.test",
        "proxyAddresses: smtp:Alice@Acme-Sales.test", "proxyAddresses: smtp:alice@other.test",
        "proxyAddresses: X500:/o=acme/ou=exchange/cn=alice", "proxyAddresses: sip:alice@acme.test"]))
    out.append(person("bob", "bob@acme.test", "Bob Baker", "bob-pw-1", ["mailAlternateAddress: bob.baker@acme.test"]))
    # Active Directory without Exchange: no mail, the userPrincipalName is the address.
    out.append(person("carol", None, "Carol Cole", "carol-pw-1", ["userPrincipalName: carol@acme.test"]))
    out.append(person("dave", "dave@acme.test", "Dave Disabled", "dave-pw-1", ["userAccountControl: 514"]))
    out.append(person("erin", "erin@acme.test", "Erin Leaves", "erin-pw-1"))
    out.append(person("frank", "frank@acme.test", "Frank Never", "frank-pw-1"))
    out.append(person("gina", "gina@elsewhere.test", "Gina Elsewhere", "gina-pw-1"))
    # The address of a local user: the sync must leave that user alone.
    out.append(person("localclash", "local@acme.test", "Not Local", "clash-pw-1"))
    for i in range(BULK):
        out.append(person(f"bulk{i}", f"bulk{i}@acme.test", f"Bulk {i}"))
    return "".join(out)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ldap")
    slapd = Slapd(tmp / "slapd")
    slapd.start()
    slapd.add(directory_ldif())
    # lifeboatd and lifeboatctl trust slapd's certificate (libldap reads LDAPTLS_CACERT).
    old_ca = os.environ.get("LDAPTLS_CACERT")
    os.environ["LDAPTLS_CACERT"] = slapd.cert
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    cp = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                         "-out", str(cert), "-subj", "/CN=lifeboat.test", "-days", "2"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    sub_port = lbtest.free_port()
    lb = lbtest.Lifeboat(tmp / "lifeboat", {"tls_cert_file": str(cert), "tls_key_file": str(key),
                                            "submission_listen": f"127.0.0.1:{sub_port}"})
    lb.submission_port = sub_port
    dead = f"127.0.0.1:{lbtest.free_port()}"
    # Set up with lifeboatctl before the daemon runs, so the first sync is the test's own.
    lb.add_domain("acme.test", "acme", dead)
    lb.add_domain("acme-sales.test", "acme", dead, create_customer=False)
    lb.add_domain("other.test", "other", dead)
    lb.add_user("local@acme.test", password="local password 1", name="Local Lou")
    lb.add_user("admin@acme.test", password=ADMIN_PW)
    lb.ctl_ok("user", "set", "admin@acme.test", "--role", "admin")
    lb.add_user("admin@other.test", password=ADMIN_PW)
    lb.ctl_ok("user", "set", "admin@other.test", "--role", "admin")
    lb.ctl_ok("ldap", "set", "acme.test", "--url", slapd.tls_url, "--base", BASE, "--bind-dn", SYNC_DN,
              "--bind-password-stdin", "--interval", "3h", "--filter", FILTER, input=SYNC_PW + "\n")
    lb.slapd = slapd
    yield lb
    problems = lbtest.finish([lb])
    try:
        slapd.stop()
    except Exception:  # noqa: BLE001  (already stopped by a test)
        pass
    if old_ca is None:
        os.environ.pop("LDAPTLS_CACERT", None)
    else:
        os.environ["LDAPTLS_CACERT"] = old_ca
    assert not problems, "\n\n".join(problems)


def users(lb, domain="acme.test"):
    """The users as a sync changes them (a login in between moves only last_login and readiness)."""
    return {u["email"]: {k: v for k, v in u.items() if k not in ("last_login", "ready", "not_ready")}
            for u in lb.ctl_json("user", "list", "--domain", domain)}


def aliases(lb):
    cp = lb.ctl_ok("alias", "list", "--json")
    return {a["alias"]: a["user"] for a in json.loads(cp.stdout)}


def auth_plain(lb, user, password):
    with smtplib.SMTP("127.0.0.1", lb.submission_port, local_hostname="client.example.org", timeout=60) as c:
        c.ehlo()
        c.starttls(context=client_tls_context())
        c.ehlo()
        code, _ = c.docmd("AUTH", "PLAIN " + plain_b64(user, password))
        return code


def readiness(lb):
    return {u["email"]: u for u in lb.ctl_json("user", "readiness", "--domain", "acme.test")["users"]}


def admin(lb, who="admin@acme.test"):
    c = Client(lb.http_port)
    assert c.login(who, ADMIN_PW).status == 200
    return c


# --------------------------------------------------------------------------- the first sync


def test_paged_sync_imports_users_and_aliases(env):
    lb = env
    # The limit is real: a search that does not page is cut at SIZELIMIT for our bind account.
    plain = lb.slapd.search("(mail=*)", "-D", SYNC_DN, "-w", SYNC_PW)
    assert plain.returncode == 4 and "Size limit exceeded" in plain.stdout + plain.stderr, plain.stdout[-300:]

    rep = lb.ctl_json("ldap", "sync", "acme.test")
    assert rep["ok"] is True, rep
    assert rep["entries"] > 1000
    # alice bob carol dave erin frank and the bulk (gina is elsewhere; local@ is a local user's)
    assert rep["added"] == BULK + 6, rep
    assert rep["suspended"] == 0
    # The local user's address is reported, not taken.
    assert rep["error_count"] == 1 and "local@acme.test" in rep["errors"][0], rep

    us = users(lb)
    assert len([e for e in us if e.startswith("bulk")]) == BULK
    assert us["alice@acme.test"]["name"] == "Alice Archer"  # displayName before cn
    assert us["bob@acme.test"]["name"] == "Bob Baker"
    assert us["carol@acme.test"]["name"] == "Carol Cole"  # found by userPrincipalName
    assert us["dave@acme.test"]["suspended"] is True  # userAccountControl 514: ACCOUNTDISABLE
    assert us["alice@acme.test"]["suspended"] is False and us["alice@acme.test"]["active"] is True
    assert "gina@elsewhere.test" not in us
    # The local user is untouched: name and password as lifeboatctl set them.
    assert us["local@acme.test"]["name"] == "Local Lou" and us["local@acme.test"]["password"] is True

    al = aliases(lb)
    assert al["a.archer@acme.test"] == "alice@acme.test"         # proxyAddresses smtp:
    assert al["alice@acme-sales.test"] == "alice@acme.test"      # another domain of the same customer
    assert al["bob.baker@acme.test"] == "bob@acme.test"          # mailAlternateAddress
    assert "alice@other.test" not in al                          # another customer's domain
    assert rep["aliases"] == 3


def test_status_never_shows_the_bind_password(env):
    lb = env
    text = lb.ctl_ok("ldap", "status").stdout
    js = lb.ctl_ok("ldap", "status", "acme.test", "--json").stdout
    for out in (text, js):
        assert SYNC_PW not in out
    row = json.loads(js)[0]
    assert row["bind_password_set"] is True and "bind_password" not in row
    assert row["url"] == lb.slapd.tls_url and row["last_sync"]["ok"] is True


def test_starttls_and_the_certificate_is_checked(env):
    lb = env
    lb.ctl_ok("ldap", "set", "acme.test", "--url", lb.slapd.url, "--starttls")
    rep = lb.ctl_json("ldap", "sync", "acme.test")
    assert rep["ok"] is True and rep["added"] == 0, rep
    # Without the CA the certificate does not verify: the sync fails and changes nothing.
    env_no_ca = lbtest.sanitizer_env()
    env_no_ca.pop("LDAPTLS_CACERT", None)
    cp = subprocess.run([lbtest.LIFEBOATCTL, "-c", lb.conf, "ldap", "sync", "acme.test"], capture_output=True,
                        text=True, env=env_no_ca, timeout=60)
    assert cp.returncode == 1 and "StartTLS" in cp.stdout + cp.stderr, cp.stdout + cp.stderr
    lb.ctl_ok("ldap", "set", "acme.test", "--url", lb.slapd.tls_url)
    assert lb.ctl_json("ldap", "sync", "acme.test")["ok"] is True


# --------------------------------------------------------------------------- logins bind


def test_daemon_starts_without_resyncing(env):
    lb = env
    lb.start()
    # The report is newer than the settings: nothing is due for 3h.
    time.sleep(3)
    assert "ldap sync acme.test" not in lb.log()


def test_webmail_login_binds(env):
    lb = env
    assert Client(lb.http_port).login("alice@acme.test", "alice-pw-1").status == 200
    assert Client(lb.http_port).login("carol@acme.test", "carol-pw-1").status == 200
    # An alias logs in as its user.
    assert Client(lb.http_port).login("a.archer@acme.test", "alice-pw-1").status == 200
    r = Client(lb.http_port).login("alice@acme.test", "not-alices")
    assert r.status == 401 and r.json["code"] == "invalid_credentials"
    # The directory said yes to dave's password, but dave is disabled there: suspended.
    assert Client(lb.http_port).login("dave@acme.test", "dave-pw-1").status == 403
    # A directory user changes the password in the directory, not here.
    c = Client(lb.http_port)
    c.login("carol@acme.test", "carol-pw-1")
    r = c.request("POST", "/api/v1/password", {"old": "carol-pw-1", "new": "something new 12"})
    assert r.status == 409 and r.json["code"] == "directory_password"


def test_submission_auth_binds(env):
    lb = env
    assert auth_plain(lb, "bob@acme.test", "bob-pw-1") == 235
    assert auth_plain(lb, "bob@acme.test", "wrong") == 535
    # The local user's password is still the local one.
    assert auth_plain(lb, "local@acme.test", "local password 1") == 235


def test_readiness_after_logins(env):
    lb = env
    r = readiness(lb)
    assert r["alice@acme.test"]["ready"] is True and r["alice@acme.test"]["source"] == "ldap"
    assert r["bob@acme.test"]["ready"] is True
    frank = {x["code"] for x in r["frank@acme.test"]["reasons"]}
    assert frank == {"never_logged_in", "ldap_no_cached_password"}, r["frank@acme.test"]
    assert "suspended" in {x["code"] for x in r["dave@acme.test"]["reasons"]}
    for reason in r["frank@acme.test"]["reasons"]:
        assert reason["text"] and reason["fix"]
    assert r["local@acme.test"]["ready"] is True and r["local@acme.test"]["source"] == "local"


# --------------------------------------------------------------------------- the directory changes


def test_removed_and_disabled_entries_are_suspended_over_http(env):
    lb = env
    lb.slapd.tool("ldapdelete", "-D", ROOT_DN, "-w", ROOT_PW, f"uid=erin,ou=people,{BASE}")
    lb.slapd.modify(f"dn: uid=bob,ou=people,{BASE}\nchangetype: modify\nreplace: mailAlternateAddress\n"
                    "mailAlternateAddress: b.baker@acme.test\n")
    c = admin(lb)
    r = c.request("POST", "/api/v1/admin/domains/acme.test/ldap/sync")
    assert r.status == 200, r.json
    assert r.json["ok"] is True and r.json["suspended"] == 1 and r.json["added"] == 0, r.json
    assert r.json["aliases"] == 1 and r.json["aliases_removed"] == 1, r.json
    us = users(lb)
    assert us["erin@acme.test"]["suspended"] is True  # kept, with its mail: never deleted
    assert us["local@acme.test"]["suspended"] is False
    al = aliases(lb)
    assert al.get("b.baker@acme.test") == "bob@acme.test" and "bob.baker@acme.test" not in al
    assert "ldap sync acme.test: added=0 updated=0 suspended=1 aliases=1 errors=1" in lb.log()
    # Back in the directory and enabled: the sync's own suspension ends.
    lb.slapd.add(person("erin", "erin@acme.test", "Erin Back", "erin-pw-2"))
    r = c.request("POST", "/api/v1/admin/domains/acme.test/ldap/sync")
    assert r.status == 200 and r.json["updated"] == 1, r.json
    assert users(lb)["erin@acme.test"]["suspended"] is False


def test_admin_api_put_test_and_scope(env):
    lb = env
    c = admin(lb)
    r = c.request("GET", "/api/v1/admin/domains/acme.test/ldap")
    assert r.status == 200, r.json
    assert r.json["bind_password_set"] is True and "bind_password" not in r.json
    assert SYNC_PW not in json.dumps(r.json)
    # PUT without bind_password keeps the stored one: the next sync still binds.
    r = c.request("PUT", "/api/v1/admin/domains/acme.test/ldap", {"filter": FILTER, "interval": "3h"})
    assert r.status == 200 and r.json["bind_password_set"] is True and r.json["interval"] == 10800, r.json
    assert c.request("POST", "/api/v1/admin/domains/acme.test/ldap/sync").status == 200
    r = c.request("PUT", "/api/v1/admin/domains/acme.test/ldap", {"url": "http://example.org"})
    assert r.status == 400 and r.json["code"] == "invalid"
    r = c.request("POST", "/api/v1/admin/domains/acme.test/ldap/test")
    assert r.status == 200 and r.json["ok"] is True and r.json["entries"] > 1000, r.json
    r = c.request("POST", "/api/v1/admin/domains/acme.test/ldap/test", {"bind_password": "wrong"})
    assert r.status == 200 and r.json == {"ok": False, "reason": "invalid_credentials",
                                          "error": r.json["error"]}, r.json
    r = c.request("GET", "/api/v1/admin/readiness?domain=acme.test")
    assert r.status == 200
    frank = [u for u in r.json["users"] if u["email"] == "frank@acme.test"][0]
    assert frank["ready"] is False
    # Another customer's admin: the domain does not exist for them.
    o = admin(lb, "admin@other.test")
    for method, path in (("GET", "/api/v1/admin/domains/acme.test/ldap"),
                         ("PUT", "/api/v1/admin/domains/acme.test/ldap"),
                         ("POST", "/api/v1/admin/domains/acme.test/ldap/sync"),
                         ("POST", "/api/v1/admin/domains/acme.test/ldap/test"),
                         ("GET", "/api/v1/admin/readiness?domain=acme.test")):
        r = o.request(method, path, {} if method == "PUT" else None)
        assert r.status == 404, (method, path, r.status)
    r = o.request("GET", "/api/v1/admin/readiness")
    assert r.status == 200 and all(u["email"].endswith("@other.test") for u in r.json["users"])
    # A user: no admin API at all.
    u = Client(lb.http_port)
    assert u.login("alice@acme.test", "alice-pw-1").status == 200
    assert u.request("GET", "/api/v1/admin/domains/acme.test/ldap").status == 403


# --------------------------------------------------------------------------- the directory is gone


def test_directory_down_the_cache_decides(env):
    lb = env
    lb.slapd.stop()
    assert Client(lb.http_port).login("alice@acme.test", "alice-pw-1").status == 200
    assert Client(lb.http_port).login("alice@acme.test", "alice-pw-0").status == 401
    assert auth_plain(lb, "bob@acme.test", "bob-pw-1") == 235
    assert auth_plain(lb, "bob@acme.test", "bob-pw-0") == 535
    # frank never logged in: no cached password, no login.
    assert Client(lb.http_port).login("frank@acme.test", "frank-pw-1").status == 401
    assert auth_plain(lb, "frank@acme.test", "frank-pw-1") == 535
    # ... and readiness says so, in lifeboatctl and in the API.
    codes = {x["code"] for x in readiness(lb)["frank@acme.test"]["reasons"]}
    assert "ldap_no_cached_password" in codes
    r = admin(lb).request("GET", "/api/v1/admin/readiness?domain=acme.test")
    assert [u["ready"] for u in r.json["users"] if u["email"] == "frank@acme.test"] == [False]
    # A sync of a directory that is down changes nothing and says why.
    before = users(lb)
    cp = lb.ctl("ldap", "sync", "acme.test")
    assert cp.returncode == 1 and "failed, nothing changed" in cp.stdout, cp.stdout + cp.stderr
    r = admin(lb).request("POST", "/api/v1/admin/domains/acme.test/ldap/sync")
    assert r.status == 200 and r.json["ok"] is False and "Can't contact" in r.json["errors"][0], r.json
    assert users(lb) == before
    status = lb.ctl_json("ldap", "status", "acme.test")[0]["last_sync"]
    assert status["ok"] is False and status["errors"]


def test_hung_directory_is_bounded_and_never_stalls_the_loop(env):
    """slapd accepts connections but answers nothing (SIGSTOP): a login waits for the timeout
    (LDAP_OP_TIMEOUT, 10 s) and then the cache decides; meanwhile port 25 answers at once."""
    lb = env
    lb.slapd.start()
    pid = lb.slapd.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        result = {}

        def login():
            t0 = time.monotonic()
            result["code"] = auth_plain(lb, "bob@acme.test", "bob-pw-1")
            result["took"] = time.monotonic() - t0
        t = threading.Thread(target=login)
        t.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        banner = lbtest.read_banner(lb.smtp_port, timeout=5)
        assert banner and banner.startswith("220") and time.monotonic() - t0 < 2.0
        t.join(60)
        assert not t.is_alive()
        assert result["code"] == 235 and 8 < result["took"] < 30, result
    finally:
        os.kill(pid, signal.SIGCONT)


# --------------------------------------------------------------------------- the periodic sync


def test_periodic_sync(env):
    lb = env
    lb.slapd.add(person("henry", "henry@acme.test", "Henry New", "henry-pw-1"))
    lb.ctl_ok("ldap", "set", "acme.test", "--interval", "5s")
    wait_for(lambda: "henry@acme.test" in users(lb), timeout=30, interval=0.5, what="the periodic sync")
    first = lb.ctl_json("ldap", "status", "acme.test")[0]["last_sync"]["at"]
    wait_for(lambda: lb.ctl_json("ldap", "status", "acme.test")[0]["last_sync"]["at"] >= first + 5, timeout=30,
             interval=0.5, what="a second periodic sync")
    assert "ldap sync acme.test: added=1" in lb.log()
    lb.ctl_ok("ldap", "set", "acme.test", "--interval", "3h")
    assert SYNC_PW not in lb.log()  # the bind password is never logged
