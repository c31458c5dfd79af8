"""
lbtest.py — the machinery of the integration suite: a lifeboatd under test, switchable
aiosmtpd destinations, private Postfix instances, a raw SMTP client and message helpers.

conftest.py turns these into pytest fixtures; the test files use the helpers directly.
Everything listens on 127.0.0.1 on free ports, and everything a test starts is stopped
by its fixture, also when the test fails.

The store: SQLite in each daemon's data_dir, or with LB_TEST_STORE=pg a PostgreSQL database
of its own per data_dir on the one throw-away server of the pytest session (PgServer below,
started and stopped by conftest.py). Tests that look behind the API at the store use the
backend-neutral sql(), store_locked() and store_bytes(), never sqlite3 directly.
"""
import asyncio
import email
import email.policy
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

BUILD = os.environ.get("LIFEBOAT_BUILD", "/work/main/build-test")
LIFEBOATD = os.path.join(BUILD, "lifeboatd")
LIFEBOATCTL = os.path.join(BUILD, "lifeboatctl")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# LB_TEST_STORE: "sqlite" (the default) or "pg" (also "postgresql"): which engine the daemons of
# this run use. Read once: a run is one pass on one engine.
STORE = {"": "sqlite", "sqlite": "sqlite", "pg": "pg", "postgresql": "pg"}.get(
    os.environ.get("LB_TEST_STORE", "").strip().lower(), "invalid")
PGSERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg", "pgserver")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")


def on_pg():
    """True when this run's daemons keep their store in PostgreSQL."""
    return STORE == "pg"


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def sanitizer_findings(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def free_port():
    """A port nobody listens on right now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=15.0, interval=0.1, what="condition"):
    """Polls predicate until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_banner(port, host="127.0.0.1", timeout=2.0):
    """Connects and returns the greeting line, or None when nothing answers yet."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                data += chunk
            try:
                s.sendall(b"QUIT\r\n")
                s.recv(4096)
            except OSError:
                pass
            return data.split(b"\r\n", 1)[0].decode("latin-1")
    except OSError:
        return None


# --------------------------------------------------------------------------- PostgreSQL


class PgServer:
    """The session's throw-away PostgreSQL (tests/pg/pgserver start --fast): one server for the
    whole run, a database per daemon data_dir. conftest.py starts it (PG below) when
    LB_TEST_STORE=pg and stops it at the end of the session, also when tests failed.

    CREATE DATABASE and DROP DATABASE take a quarter of a second each, and a run makes some 240
    databases: a thread of this class makes the next ones ahead (AHEAD of them) and drops the
    ones finished with while the tests go on, so that neither waits on a test's path."""

    AHEAD = 2

    def __init__(self, dir):
        self.dir = str(dir)
        self._named = 0
        self._cond = threading.Condition()
        self._ready = []  # made ahead, not handed out yet
        self._drops = []  # handed out and finished with: to drop
        self._dropped = set()
        self._stopping = False
        self._error = None
        self._thread = None

    def _pgserver(self, *args, timeout=60):
        cp = subprocess.run([PGSERVER, *args], capture_output=True, text=True, timeout=timeout)
        if cp.returncode != 0:
            raise AssertionError(f"tests/pg/pgserver {' '.join(args)} exited {cp.returncode}:\n{cp.stderr}")
        return cp.stdout.strip()

    def start(self):
        self.url = self._pgserver("start", "--fast", self.dir, timeout=120).splitlines()[-1]
        with open(os.path.join(self.dir, "port")) as f:
            self.port = f.read().strip()
        home = os.path.join(self.dir, "home")
        if os.path.exists(home):
            with open(home) as f:
                self.socket_dir = f.read().strip()
        else:
            self.socket_dir = self.dir
        self._thread = threading.Thread(target=self._housekeeper, name="pg-housekeeper", daemon=True)
        self._thread.start()
        return self.url

    def stop(self):
        """Stops the server and deletes its cluster, with every database left in it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=120)
        self._pgserver("stop", "--rm", self.dir)

    def _housekeeper(self):
        while True:
            with self._cond:
                while not self._stopping and not self._drops and len(self._ready) >= self.AHEAD:
                    self._cond.wait()
                if self._stopping:
                    return
                # A test may be waiting for a database: making one goes before dropping.
                if len(self._ready) < self.AHEAD:
                    self._named += 1
                    task, name = "create", f"lb{self._named:04d}"
                else:
                    task, name = "drop", self._drops.pop(0)
            try:
                if task == "create":
                    url = self._pgserver("createdb", self.dir, name).splitlines()[-1]
                else:
                    self._pgserver("dropdb", self.dir, name)
            except Exception as e:  # noqa: BLE001 (handed to the test that waits)
                with self._cond:
                    self._error = e
                    self._cond.notify_all()
                return
            with self._cond:
                if task == "create":
                    self._ready.append((name, url))
                else:
                    self._dropped.add(name)
                self._cond.notify_all()

    def createdb(self):
        """A new, empty database of the test's own: (name, URL)."""
        with self._cond:
            while not self._ready and self._error is None:
                if not self._cond.wait(timeout=60):
                    raise AssertionError("no PostgreSQL database made within 60 s")
            if self._error is not None:
                raise AssertionError(f"making a PostgreSQL database failed: {self._error}")
            name, url = self._ready.pop(0)
            self._cond.notify_all()
            return name, url

    def dropdb(self, name):
        """Drops name in the background; a second call for the same name does nothing."""
        with self._cond:
            if name not in self._drops and name not in self._dropped:
                self._drops.append(name)
                self._cond.notify_all()

    def psql_argv(self, dbname, *args):
        return [os.path.join(PGBIN, "psql"), "-h", self.socket_dir, "-p", self.port, "-U", "postgres",
                "-d", dbname, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args]

    def log(self):
        for p in (os.path.join(self.socket_dir, "log"), os.path.join(self.dir, "log")):
            try:
                with open(p, errors="replace") as f:
                    return f.read()
            except OSError:
                pass
        return ""


PG = None  # the session's PgServer when on_pg(); set by conftest.py


def _pg_query_text(query, params):
    """query with its ? placeholders as psql variables (:'p0', ...), outside string literals;
    returns (text, psql -v arguments). psql quotes each value as a literal, which PostgreSQL
    then reads as the column's type, as SQLite's binding would."""
    out, args, n, quoted = [], [], 0, False
    for ch in query:
        if ch == "'":
            quoted = not quoted
        if ch == "?" and not quoted:
            if n >= len(params):
                raise ValueError(f"more placeholders than parameters in {query!r}")
            value = params[n]
            if value is None:
                out.append("NULL")
            else:
                args += ["-v", f"p{n}={value}"]
                out.append(f":'p{n}'")
            n += 1
        else:
            out.append(ch)
    if n != len(params):
        raise ValueError(f"{len(params)} parameters for {n} placeholders in {query!r}")
    return "".join(out), args


def sql(lb, query, params=()):
    """Runs one statement on lb's store and returns its rows as tuples (ints for integers,
    str for text, None for NULL), as Python's sqlite3 would. SQL in the dialect both engines
    accept (? placeholders). A statement other than SELECT/WITH is committed at once."""
    if lb.pg_database is None:
        db = sqlite3.connect(os.path.join(lb.data_dir, "lifeboat.db"), timeout=10)
        try:
            rows = db.execute(query, tuple(params)).fetchall()
            db.commit()
            return rows
        finally:
            db.close()
    text, args = _pg_query_text(query.strip().rstrip(";"), tuple(params))
    select = re.match(r"(?is)\s*(select|with)\b", text) is not None
    if select:
        # One JSON object per row (a JSON text has no raw line end), in the query's order;
        # the keys' order is the columns' order, and json keeps repeated names.
        text = f"SELECT row_to_json(lbtest_row) FROM ({text}) lbtest_row"
    cp = subprocess.run(PG.psql_argv(lb.pg_database, "-At", *args, "-f", "-"), input=text, capture_output=True,
                        text=True, timeout=60)
    if cp.returncode != 0:
        raise AssertionError(f"psql on {lb.pg_database}: {query!r} failed: {cp.stderr}")
    if not select:
        return []
    return [tuple(v for _k, v in json.loads(line, object_pairs_hook=list))
            for line in cp.stdout.splitlines() if line]


class store_locked:
    """with store_locked(lb): another process holds lb's store for writing (SQLite: BEGIN
    EXCLUSIVE, which in WAL mode stops writers and lets readers read; PostgreSQL: every table
    locked IN EXCLUSIVE MODE, which does the same) until the block ends."""

    def __init__(self, lb):
        self.lb = lb

    def __enter__(self):
        if self.lb.pg_database is None:
            self.db = sqlite3.connect(os.path.join(self.lb.data_dir, "lifeboat.db"), timeout=10,
                                      isolation_level=None)
            self.db.execute("BEGIN EXCLUSIVE")
            return self
        tables = [r[0] for r in sql(self.lb, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        self.proc = subprocess.Popen(PG.psql_argv(self.lb.pg_database, "-At"), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write(f"BEGIN;\nLOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE;\n\\echo locked\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != "locked":
            self.proc.kill()
            raise AssertionError(f"could not lock the store: {line!r} {self.proc.stderr.read()}")
        return self

    def __exit__(self, *exc):
        if self.lb.pg_database is None:
            self.db.execute("ROLLBACK")
            self.db.close()
            return
        self.proc.stdin.write("ROLLBACK;\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def store_bytes(lb):
    """Everything lb's store holds, as bytes, to show that something is NOT in it: SQLite's
    database file and its WAL; PostgreSQL's pg_dump of the daemon's database."""
    if lb.pg_database is None:
        out = b""
        for suffix in ("", "-wal"):
            try:
                with open(os.path.join(lb.data_dir, f"lifeboat.db{suffix}"), "rb") as f:
                    out += f.read()
            except FileNotFoundError:
                pass
        return out
    cp = subprocess.run([os.path.join(PGBIN, "pg_dump"), "-h", PG.socket_dir, "-p", PG.port, "-U", "postgres",
                         "--data-only", lb.pg_database], capture_output=True, timeout=120)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    return cp.stdout


# --------------------------------------------------------------------------- lifeboatd


class Lifeboat:
    """One lifeboatd under test: its own directory, config, data_dir and ports."""

    DEFAULTS = {
        "hostname": "lifeboat.test",
        "retry_min_backoff": "1s",
        "retry_max_backoff": "2s",
        "queue_lifetime": "1h",
        "smtp_timeout": "30s",
        "smtp_data_timeout": "30s",
        "delivery_timeout": "10s",
        "max_message_size": "10M",
        "log_level": "info",
    }

    def __init__(self, workdir, overrides=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.conf = os.path.join(self.dir, "lifeboat.conf")
        self.data_dir = os.path.join(self.dir, "data")
        self.settings = dict(self.DEFAULTS)
        self.settings.update(
            {
                "data_dir": self.data_dir,
                "smtp_listen": f"127.0.0.1:{self.smtp_port}",
                "http_listen": f"127.0.0.1:{self.http_port}",
            }
        )
        self.settings.update(overrides or {})
        # LB_TEST_STORE=pg: a database of this daemon's own on the session's server.
        self.pg_database = None
        if on_pg() and "store" not in (overrides or {}):
            assert PG is not None, "LB_TEST_STORE=pg but no PostgreSQL server runs (conftest.py starts it)"
            self.pg_database, self.settings["store"] = PG.createdb()
        self.write_config()
        self.proc = None
        self.runs = 0
        self.logfiles = []
        self.expected_exit_failures = []

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")

    # -- process control

    def start(self, timeout=30.0):
        assert self.proc is None, "lifeboatd already running"
        self.runs += 1
        logpath = os.path.join(self.dir, f"lifeboatd.{self.runs}.log")
        self.logfiles.append(logpath)
        logf = open(logpath, "wb")
        self.proc = subprocess.Popen(
            [LIFEBOATD, "-c", self.conf, "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=sanitizer_env(),
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError(f"lifeboatd exited with {rc} during start-up:\n{self.log()[-4000:]}")
            banner = read_banner(self.smtp_port)
            if banner and banner.startswith("220"):
                return banner
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"lifeboatd gave no 220 banner within {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=25.0):
        """SIGTERM, and the daemon must exit 0 (SPEC: nothing lost, exit 0)."""
        assert self.proc is not None, "lifeboatd not running"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"lifeboatd did not exit within {timeout}s of SIGTERM")
        assert rc == 0, f"lifeboatd exited with {rc} after SIGTERM:\n{self.log()[-4000:]}"
        return rc

    def kill(self):
        """SIGKILL: the crash case."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()

    def signal(self, sig):
        assert self.proc is not None, "lifeboatd not running"
        self.proc.send_signal(sig)

    def restart(self):
        self.stop()
        return self.start()

    # -- output

    def log(self):
        out = []
        for p in self.logfiles:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except FileNotFoundError:
                pass
        return "".join(out)

    def drop_store(self):
        """Drops this daemon's PostgreSQL database once it is done with (finish() does)."""
        if self.pg_database is not None and not self.running() and PG is not None:
            PG.dropdb(self.pg_database)

    def check_sanitizers(self):
        found = sanitizer_findings(self.log())
        assert not found, f"sanitizer report in lifeboatd's stderr ({found}):\n{self.log()[-6000:]}"

    # -- lifeboatctl

    def ctl(self, *args, input=None, conf=None, timeout=60):
        cp = subprocess.run(
            [LIFEBOATCTL, "-c", conf or self.conf, *[str(a) for a in args]],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=sanitizer_env(),
        )
        found = sanitizer_findings(cp.stderr)
        assert not found, f"sanitizer report from lifeboatctl {' '.join(map(str, args))}:\n{cp.stderr[-6000:]}"
        return cp

    def ctl_ok(self, *args, input=None):
        cp = self.ctl(*args, input=input)
        assert cp.returncode == 0, (
            f"lifeboatctl {' '.join(map(str, args))} exited {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
        )
        return cp

    def ctl_json(self, *args):
        cp = self.ctl_ok(*args, "--json")
        try:
            return json.loads(cp.stdout)
        except ValueError as e:
            raise AssertionError(f"lifeboatctl {' '.join(args)} --json printed no JSON ({e}): {cp.stdout!r}")

    def queue(self):
        return self.ctl_json("queue", "list")

    def wait_queue_empty(self, timeout=30.0):
        return wait_for(lambda: self.queue() == [], timeout=timeout, interval=0.2, what="an empty queue")

    # -- continuity (issue 3)

    def continuity_status(self, domain):
        """The `continuity status DOMAIN --json` row of domain."""
        rows = self.ctl_json("continuity", "status", domain)
        assert len(rows) == 1 and rows[0]["domain"] == domain, rows
        return rows[0]

    def wait_continuity_state(self, domain, state, timeout=15.0):
        return wait_for(lambda: (lambda r: r if r["state"] == state else None)(self.continuity_status(domain)),
                        timeout=timeout, interval=0.1, what=f"domain {domain} in state {state}")

    def continuity_events(self, domain=None):
        return self.ctl_json("continuity", "events", *([domain] if domain else []))

    def mailbox(self, email_addr, folder=None):
        """`mailbox list EMAIL [--folder F] --json`: the user's continuity mailbox entries."""
        return self.ctl_json("mailbox", "list", email_addr, *(["--folder", folder] if folder else []))

    def enable_continuity(self, domain, customer, outgoing_to_own_server=False):
        """An active subscription for customer (started once) and continuity for domain."""
        rows = [c for c in self.ctl_json("customer", "list") if c.get("name") == customer]
        if not rows or rows[0].get("subscription") != "active":
            self.ctl_ok("subscription", "start", customer)
        self.ctl_ok("continuity", "enable", domain, *(["--outgoing-to-own-server"] if outgoing_to_own_server else []))

    # -- directory set-up

    def add_customer(self, name):
        self.ctl_ok("customer", "add", name)

    def add_domain(self, domain, customer, route, recipient_check=None, outbound_from=None, create_customer=True):
        if create_customer:
            cp = self.ctl("customer", "list", "--json")
            names = json.dumps(json.loads(cp.stdout)) if cp.returncode == 0 else ""
            if f'"{customer}"' not in names:
                self.add_customer(customer)
        self.ctl_ok("domain", "add", domain, "--customer", customer, "--route", route)
        opts = []
        if recipient_check is not None:
            opts += ["--recipient-check", "on" if recipient_check else "off"]
        if outbound_from is not None:
            opts += ["--outbound-from", outbound_from]
        if opts:
            self.ctl_ok("domain", "set", domain, *opts)

    def add_user(self, email_addr, password="correct horse 9 battery", activate=True, name=None):
        args = ["user", "add", email_addr, "--password-stdin"]
        if name:
            args += ["--name", name]
        if activate:
            args.append("--activate")
        self.ctl_ok(*args, input=password + "\n")


def finish(lbs):
    """Stops every lifeboatd of lbs that still runs (SIGTERM, exit 0 expected) and reads each
    one's stderr for sanitizer reports; returns the problems found, one text each."""
    problems = []
    for lb in lbs:
        if lb.proc is not None and lb.proc.poll() is not None:
            problems.append(f"lifeboatd died during the test (exit status {lb.proc.returncode}):\n"
                            f"{lb.log()[-4000:]}")
            lb.proc = None
        if lb.running():
            try:
                lb.stop()
            except AssertionError as e:
                problems.append(str(e))
        try:
            lb.check_sanitizers()
        except AssertionError as e:
            problems.append(str(e))
        lb.drop_store()
    return problems


# --------------------------------------------------------------------------- aiosmtpd sink


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list
    data: bytes
    mail_options: list = field(default_factory=list)
    when: float = 0.0

    def message(self):
        return email.message_from_bytes(self.data, policy=email.policy.compat32)

    def header(self, name):
        return self.message().get(name)


class SinkHandler:
    """aiosmtpd handler whose answers a test can switch while lifeboatd talks to it."""

    MODES = ("accept", "mail4xx", "rcpt4xx", "data4xx", "rcpt5xx", "data5xx", "mail421")

    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "accept"
        self.temp_fail_rcpts = set()  # lower-case addresses answered 451 at RCPT
        self.perm_fail_rcpts = set()  # lower-case addresses answered 550 at RCPT
        self.data_delay = 0.0
        self.messages = []
        self.rcpt_attempts = []  # (address, monotonic time) of every RCPT, accepted or not
        self.sessions = 0  # EHLOs seen: one per SMTP session of a well-behaved client
        self.data_active = 0  # DATA commands being answered right now (see data_delay)
        self.data_active_max = 0
        # Sink.close_gracefully: while set, DATA is answered 451 and nothing is kept, so that
        # no 250 can be lost on the wire when the server then goes away.
        self.gate_closed = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mode == "mail4xx":
            return "451 4.3.0 sink: MAIL deferred"
        if self.mode == "mail421":
            return "421 4.3.2 sink: service shutting down"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_attempts.append((address, time.monotonic()))
        low = address.lower()
        if self.mode == "rcpt4xx" or low in self.temp_fail_rcpts:
            return "451 4.3.0 sink: try again later"
        if self.mode == "rcpt5xx" or low in self.perm_fail_rcpts:
            return "550 5.1.1 sink: no such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "data4xx":
            return "451 4.3.0 sink: DATA deferred"
        if self.mode == "data5xx":
            return "554 5.6.0 sink: content rejected"
        with self.lock:
            self.data_active += 1
            self.data_active_max = max(self.data_active_max, self.data_active)
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
        finally:
            with self.lock:
                self.data_active -= 1
        d = Delivered(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content),
            mail_options=list(envelope.mail_options),
            when=time.monotonic(),
        )
        with self.lock:
            if self.gate_closed:
                return "451 4.3.0 sink: going down"
            self.messages.append(d)
        return "250 2.0.0 sink: queued"


class Sink:
    """An aiosmtpd destination on a fixed free port. close() makes the port refuse
    connections; open() starts a new Controller on the same port (a Controller
    cannot be restarted)."""

    def __init__(self, name="sink"):
        self.name = name
        self.port = free_port()
        self.handler = SinkHandler()
        self.controller = None
        self.open()

    @property
    def route(self):
        return f"127.0.0.1:{self.port}"

    def open(self):
        with self.handler.lock:
            self.handler.gate_closed = False
        if self.controller is not None:
            return
        deadline = time.monotonic() + 10
        while True:
            c = Controller(self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True,
                           ready_timeout=10)
            try:
                c.start()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.controller = c

    def close(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def close_gracefully(self, grace=0.3):
        """Goes down without the one duplicate no SMTP client can avoid (RFC 1047: the
        server took the message but its 250 never reached the client): DATA is answered
        451 first, and after grace (for 250s already written to reach the client) the
        port closes as with close(). open() lets DATA through again."""
        with self.handler.lock:
            self.handler.gate_closed = True
        time.sleep(grace)
        self.close()

    def set_mode(self, mode):
        assert mode in SinkHandler.MODES, mode
        self.handler.mode = mode

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)

    def wait_messages(self, count, timeout=30.0):
        return wait_for(lambda: len(self.messages) >= count and self.messages, timeout=timeout,
                        what=f"{count} message(s) at {self.name}")

    def with_message_id(self, msgid):
        return [m for m in self.messages if (m.header("Message-ID") or "").strip() == msgid]


# --------------------------------------------------------------------------- broken servers


class SilentServer:
    """A TCP listener on 127.0.0.1:port that is no SMTP server: with greeting=None a
    tarpit (accepts the connection and never says a word), otherwise it sends greeting
    (e.g. "421 4.3.2 too busy") and closes. accepted holds the monotonic time of every
    connection. Take over a Sink's port with Sink.close() then SilentServer(sink.port)."""

    def __init__(self, port=None, greeting=None):
        self.port = port or free_port()
        self.greeting = greeting
        self.accepted = []
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, name=f"silent-{self.port}", daemon=True)
        self.thread.start()

    @property
    def route(self):
        return f"127.0.0.1:{self.port}"

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted.append(time.monotonic())
                if self.greeting is None:
                    self.conns.append(conn)  # held open, never answered
                    continue
            try:
                conn.sendall(self.greeting.encode() + b"\r\n")
                conn.settimeout(1.0)
                conn.recv(4096)  # the client's QUIT, if it sends one
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(timeout=5)
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
            self.conns = []


class Flapper:
    """Takes a Sink down and up again every period seconds in a background thread
    (down: Sink.close_gracefully, the port refuses connections; up: Sink.open), until
    stop(), which leaves it up. flips counts the changes."""

    def __init__(self, sink, period=2.0):
        self.sink = sink
        self.period = period
        self.flips = 0
        self.errors = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="flapper", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self._stop.wait(self.period):
                if self.sink.controller is not None:
                    self.sink.close_gracefully()
                else:
                    self.sink.open()
                self.flips += 1
        except Exception as e:  # reported by stop()
            self.errors.append(repr(e))

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=30)
        self.sink.open()
        assert not self.errors, f"flapper failed: {self.errors}"


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that keeps every POST: posts holds
    (path, headers dict, body bytes); json_posts() the bodies parsed as JSON."""

    def __init__(self):
        import http.server

        receiver = self
        self.posts = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with receiver.lock:
                    receiver.posts.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def json_posts(self):
        with self.lock:
            posts = list(self.posts)
        out = []
        for _path, _headers, body in posts:
            try:
                out.append(json.loads(body))
            except ValueError:
                out.append({"unparsable": body.decode("utf-8", "replace")})
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- submitting mail


_QUEUED_AS = re.compile(r"queued as ([A-Za-z0-9]+)")


def submit(port, sender, rcpts, data, smtp=None):
    """One message through smtplib (on smtp when given, else a new connection); every
    recipient must be accepted. Returns lifeboatd's queue ID (from "250 ... queued as ID")."""
    import smtplib

    own = smtp is None
    if own:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
        smtp.ehlo("client.example.org")
    try:
        code, resp = smtp.mail(sender)
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = smtp.rcpt(r)
            assert code == 250, (r, code, resp)
        code, resp = smtp.data(data)
        assert code == 250, (code, resp)
        m = _QUEUED_AS.search(resp.decode("utf-8", "replace"))
        assert m, f"no queue ID in the reply to DATA: {resp!r}"
        return m.group(1)
    finally:
        if own:
            smtp.quit()


def submit_many(port, messages, connections=4, spread=0.0):
    """messages: a list of (sender, rcpts, data). Sent over `connections` parallel smtplib
    sessions, each carrying one transaction after another; with spread (seconds), message
    i is not sent before spread * i / len(messages) after the start. Returns the queue IDs
    in the order of messages."""
    import smtplib

    ids = [None] * len(messages)
    errors = []

    start = time.monotonic()

    def worker(k):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.ehlo("client.example.org")
                for i in range(k, len(messages), connections):
                    wait = start + spread * i / len(messages) - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    sender, rcpts, data = messages[i]
                    ids[i] = submit(port, sender, rcpts, data, smtp=smtp)
        except Exception as e:
            errors.append(f"connection {k}: {e!r}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return ids


# --------------------------------------------------------------------------- Postfix


POSTFIX_UID = pwd.getpwnam("postfix").pw_uid if shutil.which("postfix") else None
POSTFIX_GID = pwd.getpwnam("postfix").pw_gid if shutil.which("postfix") else None


class Postfix:
    """A private Postfix instance (never the system one): its own config, queue and data
    directories, one smtpd on 127.0.0.1:port, a maillog_file. kind is a short name used
    in myhostname and the directory name."""

    def __init__(self, kind, main_extra):
        self.kind = kind
        self.base = tempfile.mkdtemp(prefix=f"lb-postfix-{kind}-")
        os.chmod(self.base, 0o755)  # postfix must traverse it
        self.etc = os.path.join(self.base, "etc")
        self.spool = os.path.join(self.base, "spool")
        self.datadir = os.path.join(self.base, "data")
        self.mail = os.path.join(self.base, "mail")
        self.logfile = os.path.join(self.base, "postfix.log")
        for d in (self.etc, self.spool, self.datadir, self.mail):
            os.makedirs(d, mode=0o755)
        for d in (self.datadir, self.mail):
            os.chown(d, POSTFIX_UID, POSTFIX_GID)
        self.port = free_port()
        self._write_master()
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.datadir,
            "mail_owner": "postfix",
            "myhostname": f"{kind}.postfix.test",
            "mydomain": "postfix.test",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "mydestination": "",
            "relay_domains": "",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "maillog_file": self.logfile,
            "maillog_file_prefixes": self.base,
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        main.update(main_extra)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
        self.started = False

    def _write_master(self):
        out = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                if line.startswith("#") or not line.strip() or line[0].isspace():
                    out.append(line)
                    continue
                fields = line.split()
                if len(fields) >= 8 and fields[0] == "smtp" and fields[1] == "inet":
                    out.append(f"127.0.0.1:{self.port} inet n - n - - smtpd\n")
                    continue
                if len(fields) >= 8:
                    fields[4] = "n"  # no chroot
                    out.append(" ".join(fields[:8]) + (" " + " ".join(fields[8:]) if len(fields) > 8 else "") + "\n")
                else:
                    out.append(line)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.writelines(out)

    def postfix(self, *args, check=True):
        cp = subprocess.run(["postfix", "-c", self.etc, *args], capture_output=True, text=True, timeout=60)
        if check and cp.returncode != 0:
            raise AssertionError(f"postfix {' '.join(args)} failed ({cp.returncode}): {cp.stdout}{cp.stderr}\n"
                                 f"{self.log()[-3000:]}")
        return cp

    def start(self):
        self.postfix("start")
        self.started = True
        wait_for(lambda: (read_banner(self.port) or "").startswith("220"), timeout=30,
                 what=f"postfix {self.kind} on port {self.port}")

    def stop(self):
        if self.started:
            self.postfix("stop", check=False)
            self.started = False
            pidfile = os.path.join(self.spool, "pid", "master.pid")
            try:
                wait_for(lambda: not os.path.exists(pidfile) or not _pid_alive(pidfile), timeout=15,
                         what="postfix master to exit")
            except AssertionError:
                _kill_pidfile(pidfile)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def queue_empty(self):
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            d = os.path.join(self.spool, sub)
            for _root, _dirs, files in os.walk(d):
                if files:
                    return False
        return True


def _pid_alive(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def _kill_pidfile(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


class PostfixDestination(Postfix):
    """The customer's own server: every address of the virtual domains goes into one
    Maildir, mail/<domain>/."""

    def __init__(self, domains=("acme.test",)):
        self.domains = list(domains)
        super().__init__(
            "dest",
            {
                "virtual_mailbox_domains": " ".join(self.domains),
                "virtual_mailbox_base": "",  # set below, needs self.mail
                "virtual_mailbox_maps": "static:acme/",
                "virtual_uid_maps": f"static:{POSTFIX_UID}",
                "virtual_gid_maps": f"static:{POSTFIX_GID}",
            },
        )
        path = os.path.join(self.etc, "main.cf")
        with open(path) as f:
            text = f.read()
        text = text.replace("virtual_mailbox_base = \n", f"virtual_mailbox_base = {self.mail}\n")
        with open(path, "w") as f:
            f.write(text)

    @property
    def route(self):
        return f"127.0.0.1:{self.port}"

    def delivered(self):
        """Raw bytes of every message in the Maildir (Maildir files use LF line ends)."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.mail, "acme", sub)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
        return out

    def wait_delivered(self, count, timeout=30.0):
        return wait_for(lambda: len(self.delivered()) >= count and self.delivered(), timeout=timeout,
                        what=f"{count} message(s) in the Postfix destination's Maildir")


class PostfixSender(Postfix):
    """A sending MTA whose relayhost is lifeboatd."""

    def __init__(self, relay_port):
        super().__init__("sender", {"relayhost": f"[127.0.0.1]:{relay_port}"})


# --------------------------------------------------------------------------- raw SMTP client


class SMTPClosed(Exception):
    pass


class RawSMTP:
    """A byte-exact SMTP client for protocol tests: send exactly what a test says, read
    replies one at a time."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10.0, read_banner=True):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.banner = self.reply() if read_banner else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SMTPClosed(f"connection closed; unparsed: {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """One (possibly multi-line) reply: (code, text of all lines joined by newlines)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        code = int(lines[0][:3]) if lines[0][:3].isdigit() else -1
        return code, "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.example.org"):
        code, text = self.cmd(f"EHLO {name}")
        assert code == 250, text
        return [ln[4:] for ln in text.split("\n")]

    def is_closed(self, timeout=5.0):
        """True when the server closes the connection (after anything still buffered)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_raw_message(port, sender, rcpts, data, source=None, ehlo="client.example.org"):
    """A whole transaction over RawSMTP; data is the dot-stuffed body without the final
    dot. Returns (mail code, [rcpt codes], data code)."""
    with RawSMTP(port, source=source) as c:
        c.ehlo(ehlo)
        mcode, _ = c.cmd(f"MAIL FROM:<{sender}>")
        rcodes = [c.cmd(f"RCPT TO:<{r}>")[0] for r in rcpts]
        if 250 not in rcodes:
            c.cmd("QUIT")
            return mcode, rcodes, None
        code, text = c.cmd("DATA")
        assert code == 354, text
        c.send(data + b".\r\n")
        dcode, _ = c.reply()
        c.cmd("QUIT")
        return mcode, rcodes, dcode


# --------------------------------------------------------------------------- messages


def make_message(msgid, sender="alice@example.org", to="bob@acme.test", subject="integration test", body=None):
    """A message (CRLF lines, not dot-stuffed) with the awkward parts a relay must carry
    unchanged: leading dots, a lone '..', trailing white space, tabs, 8-bit UTF-8,
    a 990-character line, an empty last line."""
    if body is None:
        body = (
            "Hello Bob,\r\n"
            ".a line with a leading dot\r\n"
            "..\r\n"
            ".\r\n"
            ".\tdot and tab\r\n"
            "trailing spaces   \r\n"
            "\ttab-indented line\r\n"
            "UTF-8: Grüße, ÅÆØ, 日本語\r\n"
            + ("x" * 990) + "\r\n"
            "From the start of a line\r\n"
            "\r\n"
            "-- \r\n"
            "Alice\r\n"
            "\r\n"
        )
    headers = (
        f"From: Alice Example <{sender}>\r\n"
        f"To: Bob <{to}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Fri, 27 Nov 2026 22:00:00 +0000\r\n"
        f"Message-ID: {msgid}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "X-Folded: first part\r\n"
        "\tsecond part\r\n"
        "\r\n"
    )
    return (headers + body).encode("utf-8")


def new_msgid(tag="t"):
    return f"<{tag}.{time.time_ns()}.{os.getpid()}@integration.test>"


_HEADER_NAME = re.compile(rb"^([!-9;-~]+):")


def split_leading_headers(data, names):
    """Removes the leading header fields whose (case-insensitive) names are in names,
    with their folded continuation lines. Returns (removed field texts, rest)."""
    names = {n.lower() for n in names}
    removed = []
    rest = data
    while True:
        m = _HEADER_NAME.match(rest)
        if not m or m.group(1).decode().lower() not in names:
            return removed, rest
        # the field runs to the first line end not followed by white space
        pos = 0
        while True:
            nl = rest.find(b"\n", pos)
            if nl < 0:
                return removed + [rest], b""
            if rest[nl + 1:nl + 2] in (b" ", b"\t"):
                pos = nl + 1
                continue
            removed.append(rest[:nl + 1])
            rest = rest[nl + 1:]
            break


def strip_added_received(data):
    """(Received: fields removed from the top, the rest)."""
    return split_leading_headers(data, ["Received"])


def smtp_unstuffed(dotted):
    """For tests that build dot-stuffed DATA by hand."""
    return b"".join(ln[1:] if ln.startswith(b".") else ln for ln in dotted.splitlines(keepends=True))


def dot_stuff(data):
    return b"".join(b"." + ln if ln.startswith(b".") else ln for ln in data.splitlines(keepends=True))


# --------------------------------------------------------------------------- comparisons

POSTFIX_ADDED = ["Return-Path", "X-Original-To", "Delivered-To", "Received"]


def assert_relayed_unchanged(arrived, sent, hostname="lifeboat.test", upstream_received=0):
    """arrived must be sent with lifeboat's Received: field on top (and upstream_received
    more Received: fields below it, added by a sending MTA before lifeboat), nothing else."""
    removed, rest = strip_added_received(arrived)
    assert len(removed) == 1 + upstream_received, (
        f"expected {1 + upstream_received} Received: field(s) added on top, found {len(removed)}: {removed!r}"
    )
    assert hostname.encode() in removed[0], f"the top Received: field is not lifeboat's: {removed[0]!r}"
    if rest != sent:
        raise AssertionError("message changed in transit:\n" + byte_diff(sent, rest))


def assert_postfix_delivered_unchanged(arrived, sent, hostname="lifeboat.test"):
    """For a message out of the Postfix destination's Maildir (LF line ends; Postfix adds
    Return-Path, X-Original-To, Delivered-To and its own Received): what remains after
    those and lifeboat's Received is the message as sent."""
    removed, rest = split_leading_headers(arrived, POSTFIX_ADDED)
    received = [r for r in removed if r.lower().startswith(b"received:")]
    assert any(hostname.encode() in r for r in received), f"no Received: by {hostname} in {removed!r}"
    expected = sent.replace(b"\r\n", b"\n")
    if rest != expected:
        raise AssertionError("message changed in transit:\n" + byte_diff(expected, rest))


def byte_diff(expected, got):
    exp_lines = expected.splitlines(keepends=True)
    got_lines = got.splitlines(keepends=True)
    out = [f"expected {len(expected)} bytes, got {len(got)} bytes"]
    for i, (a, b) in enumerate(zip(exp_lines, got_lines)):
        if a != b:
            out.append(f"first difference at line {i + 1}:\n  expected {a[:200]!r}\n  got      {b[:200]!r}")
            break
    else:
        out.append(f"one is a prefix of the other; line counts {len(exp_lines)} vs {len(got_lines)}")
    return "\n".join(out)


def message_ids(messages):
    out = []
    for m in messages:
        mid = m.header("Message-ID")
        if mid:
            out.append(mid.strip())
    return out
