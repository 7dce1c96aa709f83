#!/usr/bin/env python3
"""Side-by-side benchmark: stock Dovecot 2.3 replication vs ours, same workload, one run.

Builds one A/B pair per mode with tests/e2e/dovepair.py (stock = Dovecot's plugin,
aggregator and replicator; ours = our plugin + our daemon from an install prefix;
optionally plugin-only = our plugin + Dovecot's daemons), then measures every figure
on all pairs, alternating the modes sample by sample so that load from anything else
on the machine hits all columns alike. Prints a table (figure | stock | ours | ratio)
and writes the raw samples as JSON. See bench/README.md for what each figure means.

Usage (root; needs dovecot-core + dovecot-imapd):
  bench/run.py --quick [--build-dir BUILD | --prefix PREFIX]   # < 5 min on 2 cores
  bench/run.py         [--build-dir BUILD | --prefix PREFIX]   # full run, ~40 min
Options: --modes stock,ours[,plugin-only]  --only/--skip FIG,...  --results DIR
         --root DIR (default /tmp/drepl-bench)  --port-base N (default 33000)
         --fresh (re-provision the pairs)  --keep (leave the pairs running)
Figures: floor latency drain100 drain1000 drain10000 sync burst rss2k rss1m queue1m
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
sys.path.insert(0, HERE)

import dovepair  # noqa: E402
import figures  # noqa: E402
import procwatch  # noqa: E402
import report  # noqa: E402
import wire  # noqa: E402

ALL_FIGURES = ("floor", "latency", "drain100", "drain1000", "drain10000", "sync", "burst", "rss2k", "rss1m",
               "queue1m")
# ours: the package's service replicator-dsync on both nodes, each node's mail_replica
# at the peer's replicator-dsync inet_listener (95-dovecot-replicator.conf's "Faster")
MODE_ARGS = {"stock": {"stock": True}, "ours": {"dsync_inet": True},
             "plugin-only": {"stock_daemon": True}}
MAILBOXES = ("INBOX", "Sent", "Trash")
SYNC_TIMEOUT_S = 2


class Plan:
    """How many samples of what: quick (< 5 min for two modes on 2 cores) or full."""

    def __init__(self, quick):
        self.quick = quick
        self.users = 200 if quick else 2000
        self.floor = 8 if quick else 20
        self.latency = 10 if quick else 30
        self.drain100 = 3 if quick else 5
        self.drain1000 = 0 if quick else 3
        self.drain10000 = 1  # runs; only with --users >= 10000
        self.sync = 5 if quick else 15
        self.burst_runs = 3 if quick else 5
        self.burst_lines = 100000
        self.burst_writers = 50
        self.rss_small = 2000
        self.rss_big = 1000000
        self.trickle_s = 15 if quick else 30
        self.max_conns = 10


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def build_source(build):
    """'<source dir> @ <commit>' of the build tree measured (a `.commit` file in an
    exported source tree, else git describe), or None without a build dir."""
    if not build:
        return None
    src = None
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as fh:
            for line in fh:
                if line.startswith("CMAKE_HOME_DIRECTORY:"):
                    src = line.split("=", 1)[1].strip()
    except OSError:
        return None
    if not src:
        return None
    try:
        with open(os.path.join(src, ".commit")) as fh:
            return "%s @ %s" % (src, fh.read().strip())
    except OSError:
        pass
    r = subprocess.run(["git", "-C", src, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return "%s @ %s" % (src, r.stdout.strip() or "?")


def machine_meta(plan, modes, args):
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem = int(fh.readline().split()[1]) // 1024
    ver = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "build": build_source(args.build_dir),
            "quick": plan.quick, "cores": os.cpu_count(), "cpu_model": cpu, "mem_mib": mem,
            "kernel": platform.release(), "dovecot_version": ver, "git": git, "modes": modes,
            "users": plan.users, "mailboxes": len(MAILBOXES), "max_conns": plan.max_conns,
            "load_start": loadavg(), "prefix": args.prefix}


# --------------------------------------------------------------------------- setup

def install_prefix(args):
    """Our install prefix: --prefix, or `cmake --install BUILD` into ROOT-stage."""
    if args.prefix:
        return os.path.abspath(args.prefix)
    build = args.build_dir or os.environ.get("DREPL_BUILD_DIR") or os.path.join(REPO, "build")
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        sys.exit("no build in %s: give --build-dir BUILD or --prefix PREFIX" % build)
    args.build_dir = build
    stage = args.root.rstrip("/") + "-stage"
    log("installing %s into %s" % (build, stage))
    r = subprocess.run(["cmake", "--install", build, "--prefix", stage],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit("cmake --install %s failed (build it first: cmake --build %s):\n%s"
                 % (build, build, r.stderr.strip()))
    return stage


def make_pair(root, mode, port_base, users, prefix, fresh, provision=True, **kw):
    """A stopped pair in `root` for `mode`; an existing compatible one is reused (its
    replicator.db then already has every user synced, so it starts quiet)."""
    tag = kw.pop("tag", "bench-%s" % mode.replace("-", ""))
    margs = dict(MODE_ARGS[mode], **kw)
    want = dovepair.Pair(root, port_base=port_base, prefix=prefix, users=users, tag=tag,
                         mailboxes=MAILBOXES, **margs)
    if os.path.exists(os.path.join(root, dovepair.PAIR_FILE)):
        old = dovepair.Pair.load(root)
        old.stop()
        same = (not fresh and old.mode == want.mode and old.users == want.users
                and old.port_base == port_base and old.prefix == want.prefix
                and old.max_conns == want.max_conns and old.mailboxes == want.mailboxes
                and old.dsync_service == want.dsync_service and old.dsync_inet == want.dsync_inet)
        if same:
            old.sync_timeout = 0
            for n in old.nodes:  # a run killed during the sync-on-save phase left it on
                with open(n.conf, "w") as fh:
                    fh.write(n.render_config())
            old.save()
            return old, False
        old.destroy()
    elif os.path.exists(root):
        shutil.rmtree(root)
    want.create(provision=provision)
    return want, True


def parallel(jobs):
    """Runs {key: fn} in threads; returns {key: fn() + (seconds,)} (fn returns a tuple).
    Raises RuntimeError naming every failed key after all have finished."""
    out, errs = {}, {}

    def one(k, fn):
        t0 = time.monotonic()
        try:
            r = fn()
            out[k] = (r if isinstance(r, tuple) else (r,)) + (time.monotonic() - t0,)
        except BaseException as e:  # noqa: BLE001 - reported below
            errs[k] = e
    ths = [threading.Thread(target=one, args=kv) for kv in jobs.items()]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errs:
        raise RuntimeError("failed: %r" % errs)
    return out


def start_pairs(pairs, timeout):
    """Starts every pair at once (threads) and waits until all are idle."""
    parallel({m: (lambda p=p: p.start(timeout=timeout)) for m, p in pairs.items()})


# --------------------------------------------------------------------------- figures

def interleaved(pairs, reps, sample, before=None):
    """Runs sample(mode, pair, i) for i in range(reps), alternating the modes; every
    pair's replication processes are watched for the whole figure. Returns
    {mode: {"samples": [...], "procs": ProcWatch result}}."""
    watches = {m: procwatch.ProcWatch(p.nodes) for m, p in pairs.items()}
    out = {m: {"samples": []} for m in pairs}
    for w in watches.values():
        w.__enter__()
    try:
        for i in range(reps):
            for m, p in pairs.items():
                if before:
                    before(m, p, i)
                try:
                    s = sample(m, p, i)
                except (figures.BenchError, RuntimeError, OSError) as e:
                    log("%s sample %d failed: %s" % (m, i, e))
                    s = {"error": str(e)}
                out[m]["samples"].append(s)
    finally:
        for w in watches.values():
            w.__exit__(None, None, None)
    for m, w in watches.items():
        out[m]["procs"] = w.result()
        out[m]["wall_s"] = w.wall_s
    return out


def quiet(_m, p, _i):
    figures.wait_quiet(p)


def user_pools(plan):
    """Disjoint user lists per figure (drain uses user0000..; the rest start at 100 or 1000)."""
    start = 1000 if plan.users >= 2000 else 100
    pools, i = {}, start
    for name, n in (("latency", plan.latency), ("floor_cli", plan.floor),
                    ("floor_socket", plan.floor), ("floor_dsync", plan.floor),
                    ("sync", plan.sync + 1)):
        pools[name] = ["user%04d" % k for k in range(i, i + n)]
        i += n
    if i > plan.users:
        raise ValueError("plan needs %d users, has %d" % (i, plan.users))
    return pools


def panics(pair):
    return sum(len(n.bad_log_lines(("Panic:",))) for n in pair.nodes)


def set_sync_timeout(pairs, secs):
    """Rewrites both nodes' config with replication_sync_timeout = secs and reloads."""
    for p in pairs.values():
        p.sync_timeout = secs
        for n in p.nodes:
            with open(n.conf, "w") as fh:
                fh.write(n.render_config())
            n.doveadm("reload")
    for p in pairs.values():
        for n in p.nodes:  # the replicator is restarted on demand
            dovepair.wait_until(lambda: n.doveadm("replicator", "status", check=False).returncode == 0,
                                30, what="replicator after reload")
        figures.wait_quiet(p)


def fig_sync(plan, pairs, pools):
    users = pools["sync"]
    before = {m: panics(p) for m, p in pairs.items()}
    set_sync_timeout(pairs, SYNC_TIMEOUT_S)
    try:
        for m, p in pairs.items():  # warm-up: the first sync request after a reload fails
            try:
                figures.append_latency(p, users[-1])
            except (figures.BenchError, RuntimeError) as e:
                log("%s sync warm-up: %s" % (m, e))
            figures.wait_quiet(p)
        res = interleaved(pairs, plan.sync, lambda m, p, i: figures.append_latency(p, users[i]), quiet)
    finally:
        set_sync_timeout(pairs, 0)
    for m, p in pairs.items():
        res[m]["panics"] = panics(p) - before[m]
    return res


def aux_pairs(modes, args, prefix, nusers, port_base, tag, extra_conf=""):
    """Replicator-only nodes (A only, replication_max_conns = 0, no mailboxes): the
    replicator loads `nusers` userdb users and never starts a dsync."""
    users = ["u%07d" % i for i in range(nusers)]
    out = {}
    for i, m in enumerate(modes):
        root = os.path.join(args.root, "%s-%s" % (tag, m))
        p, _ = make_pair(root, m, port_base + 10 * i, users, prefix, fresh=True,
                         provision=False, max_conns=0, tag="%s-%s" % (tag, m.replace("-", "")),
                         extra_conf=extra_conf)
        out[m] = p
    return out


def keep_log(args, pair, name):
    """Copies node A's dovecot.log into the results dir as NAME.log."""
    try:
        shutil.copyfile(pair.a.log_path, os.path.join(args.outdir, name + ".log"))
    except OSError as e:
        log("could not keep the log of %s: %s" % (name, e))


def rss_of(node):
    """VmRSS (kB) of the node's replicator."""
    kb = [procwatch.read_status_kb(pid) for pid in procwatch.replicator_pids(node)]
    return max((k.get("VmRSS", 0) for k in kb), default=None)


def fig_rss_and_burst(plan, modes, args, prefix, want, res, notes):
    """rss2k + burst on 2k-user replicator-only nodes, then rss1m on 1M-user ones.
    Stores each figure into `res` as soon as it is measured."""
    if "rss2k" in want or "burst" in want:
        aux = aux_pairs(modes, args, prefix, plan.rss_small, args.port_base + 40, "aux2k")
        try:
            for m, p in aux.items():
                p.a.start()
                t0 = time.monotonic()
                figures.wait_known(p.a, plan.rss_small)
                res.setdefault("rss2k", {})[m] = {"samples": [], "rss_kb": rss_of(p.a),
                                                  "load_s": time.monotonic() - t0}
            if "burst" in want:
                log("burst: %d x %d lines from %d writers" % (plan.burst_runs, plan.burst_lines,
                                                             plan.burst_writers))
                nodes = {m: p.a for m, p in aux.items()}
                fake = {m: type("N", (), {"nodes": [n]})() for m, n in nodes.items()}
                r = interleaved(fake, plan.burst_runs, lambda m, p, i: figures.burst(
                    p.nodes[0], plan.burst_lines, plan.burst_writers, "b%d" % i))
                for m in r:
                    r[m]["known_after"] = wire.known_users(nodes[m])
                    crashes = len(nodes[m].bad_log_lines())
                    r[m]["panics"] = crashes
                    if crashes:
                        notes.append("%s: %d Panic/Fatal lines during the bursts: %s" % (
                            m, crashes, nodes[m].bad_log_lines()[0][-200:]))
                res["burst"] = r
        finally:
            for m, p in aux.items():
                keep_log(args, p, "aux2k-%s" % m)
                p.destroy()
    if "rss1m" in want:
        log("rss1m: %d userdb users" % plan.rss_big)
        res["rss1m"] = {}
        res["rss1m_crash"] = {}
        for m in modes:  # one at a time: each auth process holds the whole passwd-file
            r = rss_known_users(m, args, prefix, plan.rss_big, trickle_s=plan.trickle_s)
            res["rss1m_crash"][m] = {"samples": [], "crashes": r.get("crashes", 0)}
            if r.get("crashes"):
                notes.append("%s: with %d userdb users the replicator died at the default "
                             "vsz_limit (256M): %s; RSS measured again with "
                             "default_vsz_limit = %s" % (m, plan.rss_big, r["crash_line"], BIG_VSZ))
                log("rss1m %s: crashed (%s); again with default_vsz_limit = %s"
                    % (m, r["crash_line"], BIG_VSZ))
                r2 = rss_known_users(m, args, prefix, plan.rss_big, trickle_s=plan.trickle_s,
                                     extra_conf="default_vsz_limit = %s" % BIG_VSZ)
                r2["vsz_limit"] = BIG_VSZ
                r2["crashes_at_default_vsz"] = r["crashes"]
                r = r2
            res["rss1m"][m] = r
        # The start-up time is a one-off that Dovecot's auth sometimes stretches to
        # ~60 s (the userdb listing itself stalls, seen with stock and ours alike):
        # a second start per mode, interleaved; the figure is the better of the two.
        for m in modes:
            r = res["rss1m"][m]
            if r.get("load_s") is None:
                continue
            extra = "default_vsz_limit = %s" % BIG_VSZ if r.get("vsz_limit") else ""
            again = rss_known_users(m, args, prefix, plan.rss_big, extra_conf=extra, tag="again")
            r["load_s_runs"] = [r["load_s"], again.get("load_s")]
            if again.get("load_s") is not None:
                r["load_s"] = min(r["load_s"], again["load_s"])
            if max(x for x in r["load_s_runs"] if x is not None) > 20:
                notes.append("%s: a %d-user userdb listing took %s s (Dovecot's auth stalled; the "
                             "table shows the better start)" % (
                                 m, plan.rss_big, " and ".join("%.1f" % x for x in r["load_s_runs"] if x is not None)))


BIG_VSZ = "2G"
TRICKLE_RATE = 10  # notifications per second on the 1M-user node


def rss_known_users(mode, args, prefix, nusers, extra_conf="", trickle_s=0, tag=""):
    """A replicator-only node with `nusers` userdb users: seconds until its replicator
    knows them all, its VmRSS/VmHWM then; or, if the replicator dies on the way
    (Panic/Fatal in the log), crashes = number of such lines and the first one.
    trickle_s > 0: then TRICKLE_RATE low notifications/s for that long, and the
    replicator's CPU seconds, bytes written and peak RSS meanwhile."""
    aux = aux_pairs([mode], args, prefix, nusers, args.port_base + 40, "aux1m",
                    extra_conf=extra_conf)[mode]
    try:
        aux.a.start()
        t0 = time.monotonic()
        res_retries = [0]
        while True:
            bad = aux.a.bad_log_lines()
            if bad:
                why = aux.a.log_lines(("Panic:", "Fatal:", "Error:"))
                return {"samples": [], "crashes": len(bad), "error": "replicator died",
                        "crash_line": " / ".join(l.split(" ", 2)[-1] for l in why[:2])[:300]}
            try:  # short timeout: a STATUS that is never answered must not count as load time
                if wire.known_users(aux.a, timeout=3) >= nusers:
                    break
            except (OSError, RuntimeError):
                res_retries[0] += 1
            if time.monotonic() - t0 > 1200:
                return {"samples": [], "error": "not all users known after 1200 s"}
            time.sleep(0.1)
        load_s = time.monotonic() - t0
        pids = procwatch.replicator_pids(aux.a)
        kb = [procwatch.read_status_kb(p) for p in pids]
        rss = max((k.get("VmRSS", 0) for k in kb), default=None)
        res = {"samples": [], "rss_kb": rss, "hwm_kb": max((k.get("VmHWM", 0) for k in kb), default=None),
               "load_s": load_s, "bytes_per_user": rss * 1024 / nusers if rss else None,
               "status_poll_failures": res_retries[0]}
        if trickle_s and pids:
            figures.wait_io_settled(pids[0])
            io0 = figures.proc_io(pids[0])
            with procwatch.ProcWatch([aux.a]) as w:
                sent = figures.trickle(aux.a, aux.users, TRICKLE_RATE, trickle_s)
            io1 = figures.proc_io(pids[0])
            r = w.result()["a"]
            res["trickle"] = {"notifications": sent, "secs": trickle_s,
                              "cpu_s": r["replicator_cpu_s"], "peak_rss_kb": r["replicator_peak_rss_kb"],
                              "write_bytes": io1["write_bytes"] - io0["write_bytes"],
                              "wchar": io1["wchar"] - io0["wchar"]}
        return res
    finally:
        keep_log(args, aux, "aux1m-%s%s%s" % (mode, "-bigvsz" if extra_conf else "",
                                             "-" + tag if tag else ""))
        aux.destroy()


def stop_pairs(pairs, results, keep):
    """Stops every pair (unless keep); processes that outlive their master are noted."""
    if keep:
        return
    for m, p in pairs.items():
        left = p.stop()
        if left:
            results["notes"].append("%s: processes outlived their master: %s" % (m, left))


def fig_queue_microbench(build, users):
    """Runs BUILD/bench/bench-replicator-queue (our queue alone, no daemon) and keeps
    its table; stock has no equivalent, so only the ours column is filled."""
    exe = os.path.join(build or "", "bench", "bench-replicator-queue")
    if not build or not os.access(exe, os.X_OK):
        log("queue microbench: %s not built, skipped" % exe)
        return None
    r = subprocess.run([exe, "--users", str(users), "--dir", "/tmp"], capture_output=True,
                       text=True, timeout=600)
    out = {"samples": [], "text": r.stdout, "exit": r.returncode}
    m = re.search(r"resident memory per user: (\d+) bytes", r.stdout)
    out["bytes_per_user"] = int(m.group(1)) if m else None
    m = re.search(r"^get\+update \(notification\)\s+\d+\s+[\d.]+\s+([\d.]+)", r.stdout, re.M)
    out["update_ns"] = float(m.group(1)) if m else None
    return out


# --------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples, 200-user pairs (< 5 min)")
    ap.add_argument("--modes", default="stock,ours", help="comma list of stock, ours, plugin-only")
    ap.add_argument("--prefix", help="install prefix with our plugin and daemon")
    ap.add_argument("--build-dir", help="build tree to `cmake --install` into ROOT-stage")
    ap.add_argument("--root", default="/tmp/drepl-bench", help="where the pairs live")
    ap.add_argument("--port-base", type=int, default=33000,
                    help="pairs use base+10*i .. +3; replicator-only nodes base+40+10*i")
    ap.add_argument("--results", help="results dir (default: ROOT-results/<timestamp>)")
    ap.add_argument("--only", help="comma list of figures to run (%s)" % ",".join(ALL_FIGURES))
    ap.add_argument("--skip", default="", help="comma list of figures to leave out")
    ap.add_argument("--fresh", action="store_true", help="re-provision the pairs")
    ap.add_argument("--users", type=int, default=0,
                    help="users per pair (default 200 quick / 2000 full; >= 1000 for drain1000, "
                         ">= 10000 for drain10000)")
    ap.add_argument("--keep", action="store_true", help="leave the pairs running at the end")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("run as root (private Dovecot masters, vmail user)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODE_ARGS:
            sys.exit("unknown mode %r" % m)
    want = set(args.only.split(",")) if args.only else set(ALL_FIGURES)
    want -= set(args.skip.split(","))
    plan = Plan(args.quick)
    if args.users:
        plan.users = args.users
        if plan.users >= 1000 and plan.drain1000 == 0:
            plan.drain1000 = 3
    if plan.drain1000 == 0 or plan.users < 1000:
        want.discard("drain1000")
    if plan.users < 10000:
        want.discard("drain10000")
    prefix = install_prefix(args) if any(m != "stock" for m in modes) else None
    args.prefix = prefix
    t_start = time.monotonic()
    results = {"modes": modes, "meta": machine_meta(plan, modes, args), "figures": {}, "notes": []}
    la = float(results["meta"]["load_start"].split()[0])
    if la > 0.5:
        results["meta"]["noisy"] = ("load average %.2f at start: other work shares the %d cores, "
                                    "figures are noisy" % (la, os.cpu_count()))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = args.results or os.path.join(args.root.rstrip("/") + "-results", stamp)
    os.makedirs(outdir, exist_ok=True)
    args.outdir = outdir
    figs = results["figures"]

    def save():
        results["meta"]["load_end"] = loadavg()
        results["meta"]["elapsed_s"] = time.monotonic() - t_start
        with open(os.path.join(outdir, "results.json"), "w") as fh:
            json.dump(results, fh, indent=1, default=str)

    pair_figs = want & {"floor", "latency", "drain100", "drain1000", "drain10000", "sync"}
    pairs, bad0 = {}, {}
    try:
        if pair_figs:
            users = ["user%04d" % i for i in range(plan.users)]
            made = parallel({m: (lambda i=i, m=m: make_pair(
                os.path.join(args.root, "%s-%d" % (m, plan.users)), m, args.port_base + 10 * i, users, prefix,
                args.fresh, max_conns=plan.max_conns)) for i, m in enumerate(modes)})
            for m in modes:
                p, new, secs = made[m]
                pairs[m] = p
                log("%s pair %s in %.1f s (%s)" % (m, "provisioned" if new else "reused", secs, p.root))
            bad0 = {m: {n.name: len(n.bad_log_lines()) for n in p.nodes} for m, p in pairs.items()}
            t0 = time.monotonic()
            start_pairs(pairs, timeout=max(1800, plan.users * 0.6))  # the first full sync of every user
            log("pairs started and idle in %.1f s" % (time.monotonic() - t0))
            pools = user_pools(plan)
            if "floor" in pair_figs:
                log("floor: %d bare doveadm sync + %d socket syncs per mode" % (plan.floor, plan.floor))
                figs["floor_cli"] = interleaved(
                    pairs, plan.floor, lambda m, p, i: figures.floor_cli(p, pools["floor_cli"][i]), quiet)
                figs["floor_socket"] = interleaved(
                    pairs, plan.floor, lambda m, p, i: figures.floor_socket(p, pools["floor_socket"][i]), quiet)
                dsync_conns = {}
                figs["floor_dsync"] = interleaved(
                    pairs, plan.floor, lambda m, p, i: figures.floor_dsync_socket(
                        p, pools["floor_dsync"][i], dsync_conns), quiet)
                for c in dsync_conns.values():
                    c.close()
                figs["mailproc"] = interleaved(
                    pairs, 3 * plan.floor, lambda m, p, i: figures.mail_process_cpu(
                        p, pools["floor_cli"][i % plan.floor]))
                save()
            if "latency" in pair_figs:
                log("async latency: %d APPENDs per mode" % plan.latency)
                figs["latency"] = interleaved(
                    pairs, plan.latency, lambda m, p, i: figures.append_latency(p, pools["latency"][i]), quiet)
                save()
            if "drain100" in pair_figs:
                log("drain 100 users x %d" % plan.drain100)
                u = ["user%04d" % k for k in range(100)]
                figs["drain100"] = interleaved(
                    pairs, plan.drain100, lambda m, p, i: figures.drain(p, u, "user00??"), quiet)
                save()
            if "drain1000" in pair_figs:
                log("drain 1000 users x %d" % plan.drain1000)
                u = ["user%04d" % k for k in range(1000)]
                figs["drain1000"] = interleaved(
                    pairs, plan.drain1000, lambda m, p, i: figures.drain(p, u, "user0???"), quiet)
                save()
            if "drain10000" in pair_figs:
                log("drain 10000 users x %d" % plan.drain10000)
                u = ["user%04d" % k for k in range(10000)]
                figs["drain10000"] = interleaved(
                    pairs, plan.drain10000,
                    lambda m, p, i: figures.drain(p, u, "user????", timeout=3600.0), quiet)
                save()
            if "sync" in pair_figs:
                log("sync-on-save: %d APPENDs per mode, replication_sync_timeout = %d"
                    % (plan.sync, SYNC_TIMEOUT_S))
                figs["sync"] = fig_sync(plan, pairs, pools)
                save()
            if "latency" in figs and "floor_socket" in figs:
                # what the replication path adds to one bare sync of the same change
                figs["overhead"] = {}
                for m in modes:
                    lat = report._field("total_s")(figs["latency"][m])
                    flo = report._field("wall_s")(figs["floor_socket"][m])
                    if lat and flo:
                        figs["overhead"][m] = {"samples": [], "overhead_s": lat[0] - flo[0]}
            stop_pairs(pairs, results, args.keep)
        if want & {"burst", "rss2k", "rss1m"}:
            fig_rss_and_burst(plan, modes, args, prefix, want, figs, results["notes"])
        if "queue1m" in want and "ours" in modes:
            log("queue microbench: %d users" % plan.rss_big)
            q = fig_queue_microbench(args.build_dir, plan.rss_big)
            if q:
                figs["queue1m"] = {"ours": q}
    finally:
        stop_pairs(pairs, results, args.keep)
        save()
    for m, p in pairs.items():  # Panic/Fatal lines this run added to the pair's logs
        bad = [l for n in p.nodes for l in n.bad_log_lines()[bad0.get(m, {}).get(n.name, 0):]]
        if bad:
            results["notes"].append("%s: %d Panic/Fatal log lines, first: %s" % (
                m, len(bad), bad[0][-200:]))
    save()
    text = report.table(results)
    with open(os.path.join(outdir, "table.txt"), "w") as fh:
        fh.write(text)
    print(text)
    log("results in %s (%.0f s)" % (outdir, time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
