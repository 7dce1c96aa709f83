"""CPU seconds and peak RSS of a Dovecot node's replication processes during one run.

A ProcWatch samples /proc every `interval` seconds in a background thread while a
figure runs (`with ProcWatch(nodes) as w: ...`), then w.result() says, per node:

  replicator_cpu_s / aggregator_cpu_s   user+system CPU seconds the replicator /
                                        aggregator processes used during the run
                                        (summed over every PID seen: a stock
                                        replicator that panics and is respawned
                                        counts as two processes)
  replicator_peak_rss_kb                highest VmHWM of a replicator process during
                                        the run (the peak is reset through
                                        /proc/PID/clear_refs when first seen, so it
                                        is the run's peak, not the lifetime peak)
  replicator_rss_kb                     VmRSS at the end of the run (last sample)
  tree_cpu_s                            CPU of the node's whole Dovecot process tree
                                        (master + live children + reaped children):
                                        imap, doveadm-server, dsync, auth, ...
  replicator_restarts                   replicator PIDs seen minus one

A process is the replicator if its executable is called `replicator` and its command
line lacks `--aggregator`; the aggregator is the stock `aggregator` executable or ours
started with `--aggregator`. Times come in clock ticks (SC_CLK_TCK), so a value is
only accurate to 10 ms per process.
"""

import os
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def read_stat(pid):
    """(utime, stime, cutime, cstime) in ticks for a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            s = fh.read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    # fields after the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    return int(f[11]), int(f[12]), int(f[13]), int(f[14])


def read_status_kb(pid, keys=("VmRSS", "VmHWM")):
    """{key: kB} from /proc/PID/status (missing keys are left out)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def children_map():
    """{ppid: [pid, ...]} for every visible process."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as fh:
                s = fh.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid, kids=None):
    kids = kids if kids is not None else children_map()
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def role_of(pid):
    """'replicator', 'aggregator' or None for a process."""
    try:
        exe = os.path.basename(os.readlink("/proc/%d/exe" % pid))
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return None
    if exe == "aggregator" or b"--aggregator" in argv:
        return "aggregator"
    if exe == "replicator":
        return "replicator"
    return None


def tree_cpu_ticks(master_pid, kids=None):
    """CPU ticks of master + reaped children + every live descendant (own + reaped)."""
    st = read_stat(master_pid)
    if not st:
        return None
    total = sum(st)
    for p in descendants(master_pid, kids):
        s = read_stat(p)
        if s:
            total += sum(s)
    return total


class ProcWatch:
    """Samples the replication processes of `nodes` (dovepair.Node objects) while active."""

    def __init__(self, nodes, interval=0.1):
        self.nodes = list(nodes)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = None
        # per node: {pid: {"role", "first", "last", "hwm", "rss"}}
        self._procs = {n.name: {} for n in self.nodes}
        self._tree0 = {}
        self._tree1 = {}
        self.wall_s = None

    def _sample(self):
        kids = children_map()
        for n in self.nodes:
            mpid = n.master_pid()
            if not mpid:
                continue
            seen = self._procs[n.name]
            for p in descendants(mpid, kids):
                rec = seen.get(p)
                if rec is None:
                    role = role_of(p)
                    if role is None:
                        seen[p] = {"role": None}
                        continue
                    try:  # reset the peak-RSS counter so VmHWM is this run's peak
                        with open("/proc/%d/clear_refs" % p, "w") as fh:
                            fh.write("5")
                    except OSError:
                        pass
                    st = read_stat(p)
                    if not st:
                        continue
                    rec = seen[p] = {"role": role, "first": st[0] + st[1], "last": st[0] + st[1],
                                     "hwm": 0, "rss": 0}
                if rec["role"] is None:
                    continue
                st = read_stat(p)
                if st:
                    rec["last"] = st[0] + st[1]
                kb = read_status_kb(p)
                if kb:
                    rec["hwm"] = max(rec["hwm"], kb.get("VmHWM", 0), kb.get("VmRSS", 0))
                    rec["rss"] = kb.get("VmRSS", rec["rss"])

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        kids = children_map()
        for n in self.nodes:
            mpid = n.master_pid()
            self._tree0[n.name] = tree_cpu_ticks(mpid, kids) if mpid else None
        self._sample()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall_s = time.monotonic() - self._t0
        kids = children_map()
        for n in self.nodes:
            mpid = n.master_pid()
            self._tree1[n.name] = tree_cpu_ticks(mpid, kids) if mpid else None

    def result(self):
        """{node name: {figure: value}} (see the module doc)."""
        out = {}
        for n in self.nodes:
            procs = [r for r in self._procs[n.name].values() if r.get("role")]
            rep = [r for r in procs if r["role"] == "replicator"]
            agg = [r for r in procs if r["role"] == "aggregator"]
            t0, t1 = self._tree0.get(n.name), self._tree1.get(n.name)
            out[n.name] = {
                "replicator_cpu_s": sum(r["last"] - r["first"] for r in rep) / TICK,
                "aggregator_cpu_s": sum(r["last"] - r["first"] for r in agg) / TICK,
                "replicator_peak_rss_kb": max((r["hwm"] for r in rep), default=None),
                "replicator_rss_kb": rep[-1]["rss"] if rep else None,
                "replicator_restarts": max(0, len(rep) - 1),
                "tree_cpu_s": (t1 - t0) / TICK if t0 is not None and t1 is not None else None,
            }
        return out

    def total(self, key):
        """Sum of `key` over all nodes (None values skipped)."""
        return sum(v[key] for v in self.result().values() if v.get(key) is not None)

    def peak(self, key):
        vals = [v[key] for v in self.result().values() if v.get(key) is not None]
        return max(vals) if vals else None


def replicator_pids(node):
    """PIDs of the node's live replicator processes."""
    mpid = node.master_pid()
    if not mpid:
        return []
    return [p for p in descendants(mpid) if role_of(p) == "replicator"]
