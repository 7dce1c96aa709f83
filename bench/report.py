"""Turns the raw results of bench/run.py into the side-by-side table.

table(results) returns the text: one row per figure, one column per mode
("median / p90" where there are repeated samples), and the ratio ours/stock with a
verdict: `better` or `WORSE` by the figure's direction (lower is better for times,
CPU and memory; higher for rates), `~same` within NOISE. Rows whose inputs are
missing (a figure skipped, a mode not run) show `-`.
"""

from figures import stats

LOWER, HIGHER = "lower", "higher"
# a ratio within 1 +- NOISE is reported as "~same": on a shared 2-core box run-to-run
# spread is easily 10 %; RESOLUTION: absolute differences below the unit's measuring
# resolution (CPU time comes in 10 ms ticks per process) are "~same" too
NOISE = 0.10
RESOLUTION = {"s": 0.02}


def _ok(samples):
    return [s for s in samples if "error" not in s]


def _med_p90(values):
    st = stats(values)
    return (st["median"], st["p90"]) if st["n"] else None


def _field(key):
    return lambda fig: _med_p90([s.get(key) for s in _ok(fig["samples"])])


def _count_true(key):
    def f(fig):
        ok = _ok(fig["samples"])
        return (sum(1 for s in ok if s.get(key)), len(fig["samples"])) if fig["samples"] else None
    return f


def _proc_total(key, per=None):
    """Sum over both nodes of a ProcWatch figure; per: divide by the number of samples."""
    def f(fig):
        procs = fig.get("procs")
        if not procs:
            return None
        vals = [v.get(key) for v in procs.values() if v.get(key) is not None]
        if not vals:
            return None
        total = sum(vals)
        if per == "sample":
            total /= max(1, len(fig["samples"]))
        return total
    return f


def _proc_peak(key):
    def f(fig):
        procs = fig.get("procs")
        vals = [v.get(key) for v in (procs or {}).values() if v.get(key) is not None]
        return max(vals) if vals else None
    return f


def _sum(key):
    def f(fig):
        ok = _ok(fig["samples"])
        return sum(s.get(key) or 0 for s in ok) if ok else None
    return f


def _value(key):
    return lambda fig: fig.get(key)


def _trickle(key, scale):
    """A value of the 1M-user trickle: peak_rss_kb as is, others as value * scale /
    secs (scale 60: per minute; 60/1024: bytes -> kB per minute)."""
    def f(fig):
        t = fig.get("trickle")
        if not t or t.get(key) is None:
            return None
        if key == "peak_rss_kb":
            return t[key]
        return t[key] * scale / t["secs"]
    return f


def _node_cpu_per_user(fig):
    procs = fig.get("procs")
    ok = _ok(fig["samples"])
    if not procs or not ok:
        return None
    users = sum(s["n"] for s in ok)
    cpu = sum(v["tree_cpu_s"] for v in procs.values() if v.get("tree_cpu_s") is not None)
    return cpu / users if users else None


def _floor_cpu_per_sync(fig):
    procs = fig.get("procs")
    ok = _ok(fig["samples"])
    if not procs or not ok:
        return None
    cpu = sum(v["tree_cpu_s"] for v in procs.values() if v.get("tree_cpu_s") is not None)
    cpu += sum(s.get("cli_cpu_s", 0) for s in ok)
    return cpu / len(ok)


# (label, figure key, extractor, unit, better direction)
ROWS = [
    ("async: APPEND done -> visible on B", "latency", _field("after_s"), "ms", LOWER),
    ("async: APPEND round trip on A", "latency", _field("append_s"), "ms", LOWER),
    ("async: APPEND start -> visible on B", "latency", _field("total_s"), "ms", LOWER),
    ("async: that minus the socket floor (overhead)", "overhead", _value("overhead_s"), "ms", LOWER),
    ("sync-on-save: APPEND blocking time", "sync", _field("append_s"), "ms", LOWER),
    ("sync-on-save: mail on B when APPEND returns", "sync", _count_true("on_b_at_return"), "of n", HIGHER),
    ("sync-on-save: replicator panics in the log", "sync", _value("panics"), "", LOWER),
    ("sync-on-save: replicator restarts", "sync", _proc_total("replicator_restarts"), "", LOWER),
    ("drain 100 users (high): all on B", "drain100", _field("all_s"), "s", LOWER),
    ("drain 100 users: rate", "drain100", _field("users_per_s"), "users/s", HIGHER),
    ("drain 100 users: node CPU per user (A+B)", "drain100", _node_cpu_per_user, "ms", LOWER),
    ("drain 1000 users (high): all on B", "drain1000", _field("all_s"), "s", LOWER),
    ("drain 1000 users: rate", "drain1000", _field("users_per_s"), "users/s", HIGHER),
    ("drain 1000 users: node CPU per user (A+B)", "drain1000", _node_cpu_per_user, "ms", LOWER),
    ("drain 10000 users (high): all on B", "drain10000", _field("all_s"), "s", LOWER),
    ("drain 10000 users: rate", "drain10000", _field("users_per_s"), "users/s", HIGHER),
    ("drain 10000 users: node CPU per user (A+B)", "drain10000", _node_cpu_per_user, "ms", LOWER),
    ("burst: time to absorb all lines", "burst", _field("absorb_s"), "s", LOWER),
    ("burst: lines lost (all runs)", "burst", _sum("lost"), "", LOWER),
    ("burst: Panic/Fatal log lines (all runs)", "burst", _value("panics"), "", LOWER),
    ("burst: replicator CPU per burst", "burst", _proc_total("replicator_cpu_s", "sample"), "s", LOWER),
    ("burst: aggregator CPU per burst", "burst", _proc_total("aggregator_cpu_s", "sample"), "s", LOWER),
    ("replicator RSS, 2k known users (idle)", "rss2k", _value("rss_kb"), "MiB", LOWER),
    ("replicator RSS after the bursts", "burst", _proc_peak("replicator_rss_kb"), "MiB", LOWER),
    ("replicator RSS, 1M known users (userdb)", "rss1m", _value("rss_kb"), "MiB", LOWER),
    ("replicator RSS per known user at 1M users", "rss1m", _value("bytes_per_user"), "B", LOWER),
    ("1M users: replicator deaths at default vsz_limit 256M", "rss1m_crash", _value("crashes"), "", LOWER),
    ("1M users: replicator start -> all known", "rss1m", _value("load_s"), "s", LOWER),
    ("1M users, 10 low notifications/s: replicator CPU per minute", "rss1m", _trickle("cpu_s", 60), "s", LOWER),
    ("1M users, 10 low notifications/s: bytes written per minute", "rss1m", _trickle("write_bytes", 60 / 1024), "MiB", LOWER),
    ("1M users, 10 low notifications/s: replicator peak RSS", "rss1m", _trickle("peak_rss_kb", 1), "MiB", LOWER),
    ("queue microbench, 1M users: resident per user", "queue1m", _value("bytes_per_user"), "B", LOWER),
    ("queue microbench, 1M users: notification (get+update)", "queue1m", _value("update_ns"), "ns", LOWER),
    ("floor: bare `doveadm sync` CLI, wall", "floor_cli", _field("wall_s"), "ms", LOWER),
    ("floor: doveadm-server socket request, wall", "floor_socket", _field("wall_s"), "ms", LOWER),
    ("floor: socket request, CPU per sync (A+B)", "floor_socket", _floor_cpu_per_sync, "ms", LOWER),
    ("floor: the replicator's dsync socket (ours: replicator-dsync, reused), wall", "floor_dsync",
     _field("wall_s"), "ms", LOWER),
    ("floor: the replicator's dsync socket, CPU per sync (A+B)", "floor_dsync",
     _floor_cpu_per_sync, "ms", LOWER),
    ("mail process start+exit CPU (loads the plugin)", "mailproc", _field("cpu_s"), "ms", LOWER),
]

# replicator CPU seconds and peak RSS during each run
for _key, _name in (("latency", "async latency"), ("sync", "sync-on-save"),
                    ("drain100", "drain 100"), ("drain1000", "drain 1000"),
                    ("drain10000", "drain 10000")):
    ROWS.append(("replicator CPU (A+B) during %s" % _name, _key,
                 _proc_total("replicator_cpu_s"), "s", LOWER))
    ROWS.append(("replicator peak RSS during %s" % _name, _key,
                 _proc_peak("replicator_peak_rss_kb"), "MiB", LOWER))


def _scale(v, unit):
    if unit == "ms":
        return v * 1000.0
    if unit == "MiB":
        return v / 1024.0
    return v


def _num(v):
    if isinstance(v, int):
        return "%d" % v
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1 or a == 0:
        return "%.2f" % v
    return "%.3f" % v


def fmt_value(v, unit):
    """Display text of an extracted value; also returns the number ratios use."""
    if v is None:
        return "-", None
    if unit == "of n":
        return "%d/%d" % v, (v[0] / v[1] if v[1] else None)
    if isinstance(v, tuple):
        med, p90 = _scale(v[0], unit), _scale(v[1], unit)
        return "%s / %s" % (_num(med), _num(p90)), med
    x = _scale(v, unit)
    return _num(x), x


def _vs(modes):
    """The mode compared with stock: ours, else the first other mode."""
    return "ours" if "ours" in modes else next((m for m in modes if m != "stock"), None)


def rows(results):
    """[(label, unit, {mode: text}, ratio text, verdict)] for every row with any data."""
    modes = results["modes"]
    out = []
    for label, key, extract, unit, better in ROWS:
        fig = results["figures"].get(key)
        if not fig:
            continue
        cells, nums = {}, {}
        for m in modes:
            f = fig.get(m)
            try:
                v = extract(f) if f else None
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            cells[m], nums[m] = fmt_value(v, unit)
        if all(c == "-" for c in cells.values()):
            continue
        ratio, verdict = "", ""
        s, o = nums.get("stock"), nums.get(_vs(modes))
        if s is not None and o is not None:
            if abs(o - s) <= RESOLUTION.get(unit, 0) or (s == 0 and o == 0):
                ratio = "%.2f" % (o / s) if s else "n/a"
                verdict = "~same"
            elif s == 0:
                ratio, verdict = "n/a", "better" if (o > 0) == (better == HIGHER) else "WORSE"
            elif o == 0:
                ratio, verdict = "0", "better" if better == LOWER else "WORSE"
            else:
                r = o / s
                ratio = "%.2f" % r if abs(r) >= 0.01 else "%.4f" % r
                if abs(r - 1) <= NOISE or abs(o - s) <= RESOLUTION.get(unit, 0):
                    verdict = "~same"
                else:
                    verdict = "better" if (r < 1) == (better == LOWER) else "WORSE"
        out.append((label, unit, cells, ratio, verdict))
    return out


def table(results):
    """The whole report as text: header lines, then the table."""
    meta = results["meta"]
    modes = results["modes"]
    lines = [
        "drepl benchmark (%s mode), %s" % ("quick" if meta.get("quick") else "full", meta.get("date_utc")),
        "machine: %s cores (%s), %s MiB RAM, %s" % (meta.get("cores"), meta.get("cpu_model"),
                                                   meta.get("mem_mib"), meta.get("kernel")),
        "Dovecot %s; measured build: %s; load average at start %s, at end %s" % (
            meta.get("dovecot_version"), meta.get("build") or meta.get("prefix") or meta.get("git"),
            meta.get("load_start"), meta.get("load_end")),
        "pair: %s users x %s mailboxes, replication_max_conns=%s, both nodes on one box (loopback)" % (
            meta.get("users"), meta.get("mailboxes"), meta.get("max_conns")),
        "cells: median / p90 over the samples (n in the JSON); ratio = %s / stock" % _vs(modes),
    ]
    if meta.get("noisy"):
        lines.append("WARNING: %s" % meta["noisy"])
    rs = rows(results)
    w0 = max([len("figure")] + [len(r[0]) + len(r[1]) + 3 for r in rs])
    wm = {m: max([len(m)] + [len(r[2][m]) for r in rs]) for m in modes}
    head = "%-*s | " % (w0, "figure") + " | ".join("%*s" % (wm[m], m) for m in modes) + " | ratio | verdict"
    lines += ["", head, "-" * len(head)]
    for label, unit, cells, ratio, verdict in rs:
        name = "%s (%s)" % (label, unit) if unit and unit != "of n" else label
        lines.append("%-*s | " % (w0, name) + " | ".join("%*s" % (wm[m], cells[m]) for m in modes)
                     + " | %5s | %s" % (ratio, verdict))
    notes = results.get("notes") or []
    if notes:
        lines += ["", "notes:"] + ["  - " + n for n in notes]
    return "\n".join(lines) + "\n"
