"""
procstat.py — what a set of processes costs, read from /proc: CPU seconds and memory.

bench/run measures each MTA over one scenario with a ProcSampler:

  lifeboatd  one process (threads included in its counters): CPU = utime+stime,
             peak memory = VmHWM, reset to the current RSS before each scenario
             (echo 5 > /proc/PID/clear_refs), and cross-checked by sampling.
  Postfix    a master and the children it forks and reaps (smtpd, cleanup, qmgr,
             smtp, ...): CPU = the master's utime+stime+cutime+cstime (the reaped
             children) plus the same four of every live descendant; memory = the sum
             of RSS of all of them, sampled every 100 ms. The sum of RSS counts
             shared pages (libc, Postfix's shared libraries) once per process, so it
             is also sampled as the sum of PSS (each shared page divided among its
             users), which is what the instance really occupies.

A difference of two CPU readings is the CPU a scenario cost, also for children that
came and went in between (their time moves from "live" to the master's cutime).
"""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (index 0 = state), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def _ticks(fields, with_children=True):
    # utime stime cutime cstime are fields 14..17 of stat(5): indexes 11..14 here
    n = int(fields[11]) + int(fields[12])
    if with_children:
        n += int(fields[13]) + int(fields[14])
    return n


def descendants(root):
    """root and every process below it, one scan of /proc: {pid: stat fields}."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat_fields(name)
            if f is not None:
                table[int(name)] = f
    if root not in table:
        return {}
    children = {}
    for pid, f in table.items():
        children.setdefault(int(f[1]), []).append(pid)
    out, pending = {}, [root]
    while pending:
        pid = pending.pop()
        out[pid] = table[pid]
        pending.extend(children.get(pid, ()))
    return out


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcGroup:
    """The processes of one MTA. single=True: one process (lifeboatd); otherwise the
    tree under root (Postfix's master)."""

    def __init__(self, root, single):
        self.root = root
        self.single = single

    def members(self):
        if self.single:
            f = _stat_fields(self.root)
            return {self.root: f} if f is not None else {}
        return descendants(self.root)

    def cpu_seconds(self):
        """CPU used so far (user + system), reaped children included."""
        return sum(_ticks(f) for f in self.members().values()) / CLK_TCK

    def memory_kb(self):
        """(sum of RSS in KiB, sum of PSS in KiB, number of processes) now."""
        rss = pss = 0
        members = self.members()
        for pid, f in members.items():
            rss += int(f[21]) * PAGE // 1024
            pss += _pss_kb(pid)
        return rss, pss, len(members)

    def reset_peak(self):
        """Makes VmHWM start again from the current RSS (single process only)."""
        if self.single:
            try:
                with open(f"/proc/{self.root}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def hwm_kb(self):
        return _status_kb(self.root, "VmHWM") if self.single else 0


class ProcSampler:
    """Samples a ProcGroup every interval seconds on a thread, between start() and
    stop(); stop() returns a dict: cpu_s, peak_rss_kb, peak_pss_kb, max_procs."""

    def __init__(self, group, interval=0.1):
        self.group = group
        self.interval = interval
        self._stop = threading.Event()
        self._thread = None
        self.peak_rss = self.peak_pss = self.max_procs = 0

    def start(self):
        self.group.reset_peak()
        self.cpu0 = self.group.cpu_seconds()
        self._thread = threading.Thread(target=self._run, name="procsampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        rss, pss, nprocs = self.group.memory_kb()
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.max_procs = max(self.max_procs, nprocs)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()
        cpu = self.group.cpu_seconds() - self.cpu0
        peak_rss = max(self.peak_rss, self.group.hwm_kb())
        return {
            "cpu_s": cpu,
            "peak_rss_kb": peak_rss,
            "peak_pss_kb": self.peak_pss,
            "max_procs": self.max_procs,
        }

