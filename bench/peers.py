"""
peers.py — the processes of a benchmark run: the sink (the customer's server), the two
MTAs under test, and smtp-source.

  Sink          Postfix's smtp-sink on a free port, with -c: its running counters
                (sess=N quit=N mesg=N, one update per received "." among others) are
                read on a thread, so the time the N-th message arrived is known.
  LifeboatMTA   lifeboatd (the release build) with customer/domain bench.test routed
                to the sink, recipient-check off; lbtest.Lifeboat does the process
                handling.
  PostfixMTA    a private Postfix (lbtest.Postfix) that relays bench.test to the sink:
                relay_domains = bench.test, relay_transport = relay:[127.0.0.1]:PORT.

Everything listens on 127.0.0.1 only. Each class has stop(), safe to call twice and
after a failed start.
"""
import os
import re
import subprocess
import sys
import threading
import time

import procstat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def _lbtest(build_dir):
    """lbtest reads LIFEBOAT_BUILD when it is imported: set it first."""
    os.environ["LIFEBOAT_BUILD"] = build_dir
    import lbtest  # noqa: E402

    lbtest.LIFEBOATD = os.path.join(build_dir, "lifeboatd")
    lbtest.LIFEBOATCTL = os.path.join(build_dir, "lifeboatctl")
    return lbtest


BENCH_DOMAIN = "bench.test"
SENDER = "bench@source.test"
RCPT = f"user@{BENCH_DOMAIN}"


class Sink:
    """smtp-sink as the customer's server for both MTAs."""

    COUNTER = re.compile(rb"mesg=(\d+)")

    def __init__(self, port, logdir):
        self.port = port
        self.count = 0
        self.cond = threading.Condition()
        self.errlog = open(os.path.join(logdir, "smtp-sink.stderr"), "wb")
        self.proc = subprocess.Popen(
            ["smtp-sink", "-u", "postfix", "-c", f"127.0.0.1:{port}", "1000"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errlog,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, name="sink-counter", daemon=True)
        self.reader.start()

    def _read(self):
        tail = b""
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.cond.notify_all()
                return
            tail = (tail + chunk)[-256:]
            found = self.COUNTER.findall(tail)
            if found:
                n = int(found[-1])
                with self.cond:
                    if n != self.count:
                        self.count = n
                        self.cond.notify_all()

    def received(self):
        with self.cond:
            return self.count

    def wait_count(self, target, timeout):
        """Waits until the sink has received target messages in all; returns the
        time.monotonic() at which it noticed, or None on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.count < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.5))
            return time.monotonic()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(2)
        self.errlog.close()


class LifeboatMTA:
    name = "lifeboatd"

    def __init__(self, lbtest, workdir, sink_port):
        # Production defaults (SPEC.md) except what a benchmark on one host needs:
        # loopback ports, and no per-client session limit (every session comes from
        # 127.0.0.1; Postfix exempts mynetworks from its own limit).
        settings = {
            "hostname": "lifeboat.bench.test",
            "retry_min_backoff": "5m",
            "retry_max_backoff": "1h",
            "queue_lifetime": "5d",
            "smtp_timeout": "5m",
            "smtp_data_timeout": "10m",
            "delivery_timeout": "5m",
            "max_message_size": "25M",
            "smtp_client_limit": "0",
            "log_level": "info",
        }
        self.lb = lbtest.Lifeboat(workdir, settings)
        self.port = self.lb.smtp_port
        self.data_dir = self.lb.data_dir
        self.lb.add_domain(BENCH_DOMAIN, "bench", f"127.0.0.1:{sink_port}", recipient_check=False)
        self.lb.start()
        self.pid = self.lb.proc.pid

    def queue_empty(self):
        cp = self.lb.ctl("queue", "list", "--json")
        return cp.returncode == 0 and cp.stdout.strip() in ("[]", "")

    def blob_files(self):
        n = 0
        for _root, _dirs, files in os.walk(os.path.join(self.data_dir, "blobs")):
            n += len(files)
        return n

    def reset(self):
        """Nothing to do: one process, no pool of workers to shrink."""

    def alive(self):
        return self.lb.running()

    def at_rest(self):
        """Queue empty and every delivered message's blob removed by the writer's GC
        (which runs every 5 s): all the work the messages cause is done."""
        return self.queue_empty() and self.blob_files() == 0

    def state_dir(self):
        return self.data_dir

    def stop(self):
        if self.lb.proc is not None:
            try:
                self.lb.stop()
            except AssertionError as e:
                print(f"bench: {e}", file=sys.stderr)
                self.lb.kill()


class PostfixMTA:
    name = "Postfix"

    def __init__(self, lbtest, sink_port):
        # Performance-relevant settings stay at Postfix's defaults (fsync of every
        # queue file, in_flow_delay, process limits, concurrency 20 per destination);
        # lbtest's short retry timers are put back to the defaults too.
        extra = {
            "myhostname": "postfix.bench.test",
            "relay_domains": BENCH_DOMAIN,
            "relay_transport": f"relay:[127.0.0.1]:{sink_port}",
            "queue_run_delay": "300s",
            "minimal_backoff_time": "300s",
            "maximal_backoff_time": "4000s",
        }
        self.pf = lbtest.Postfix("bench", extra)
        self.port = self.pf.port
        try:
            self.pf.started = True  # so that cleanup() stops a master that started but never answered
            self.pf.start()
            with open(os.path.join(self.pf.spool, "pid", "master.pid")) as f:
                self.pid = int(f.read().strip())
        except BaseException:
            self.pf.cleanup()
            raise

    def queue_empty(self):
        return self.pf.queue_empty()

    def at_rest(self):
        return self.pf.queue_empty()

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def reset(self):
        """postfix reload: idle smtpd, cleanup and smtp processes left by an earlier
        scenario exit (they would otherwise live for max_idle = 100 s), so the peak
        memory of a scenario counts the processes this scenario needs."""
        self.pf.postfix("reload")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.2)
            procs = procstat.descendants(self.pid)
            if len(procs) <= 8:  # master, qmgr, pickup, postlogd and the like
                break

    def in_flight(self):
        """Messages not yet deferred or gone (incoming, active, maildrop)."""
        n = 0
        for sub in ("incoming", "active", "maildrop"):
            for _root, _dirs, files in os.walk(os.path.join(self.pf.spool, sub)):
                n += len(files)
        return n

    def state_dir(self):
        return self.pf.spool

    def log(self):
        return self.pf.log()

    def stop(self):
        self.pf.cleanup()


def smtp_source(port, count, size, sessions, timeout):
    """Runs smtp-source; returns (exit status or None on timeout, stderr text)."""
    cmd = ["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(size),
           "-M", "bench.client.test", "-f", SENDER, "-t", RCPT, f"127.0.0.1:{port}"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
        return p.returncode, err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return None, err.decode(errors="replace")
    except BaseException:
        p.kill()
        p.wait()
        raise
