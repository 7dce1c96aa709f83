#!/usr/bin/env python3
"""Runs the installed doveadm with our lib10_doveadm_replicator_plugin.so
against fake replicator-doveadm servers (fake_replicator.py) and checks the
output of every formatter, the exit codes and the request lines.

doveadm only loads modules from its compiled-in <moduledir>/doveadm. So that
nothing is ever installed into the system directory, each doveadm runs in a
private mount namespace (unshare -m) in which a temporary directory holding
copies of the system's doveadm modules plus ours is bind-mounted over it.
That needs root; otherwise the test is skipped (exit 77).
With --installed (throw-away environments only, e.g. a Dovecot 2.4 chroot)
the module must already be in the system directory and doveadm runs as is.

Usage: test_doveadm_cmds.py --module <path to lib10_doveadm_replicator_plugin.so>
                            [--installed]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_replicator import FakeReplicator  # noqa: E402

SKIP = 77
FAILURES = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        FAILURES.append(what)


def last(server):
    """The last request line the fake server received ("" when none)."""
    return server.requests[-1] if server.requests else ""


def hms(text):
    """Seconds of "[-]H+:MM:SS"; None when not in that form."""
    m = re.fullmatch(r"(-?)(\d+):(\d\d):(\d\d)", text)
    if not m:
        return None
    v = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4))
    return -v if m.group(1) else v


def near(text, want, slack=5):
    v = hms(text)
    return v is not None and abs(v - want) <= slack


class Doveadm:
    def __init__(self, tmp, module, system_moduledir, version, installed=False):
        self.tmp = tmp
        self.installed = installed
        self.system_moduledir = system_moduledir
        self.moduledir = os.path.join(tmp, "modules-doveadm")
        os.makedirs(self.moduledir)
        for name in os.listdir(system_moduledir):
            if name.endswith(".so") and name != os.path.basename(module):
                shutil.copy2(os.path.join(system_moduledir, name), self.moduledir)
        shutil.copy2(module, self.moduledir)
        self.base_dir = os.path.join(tmp, "run")
        os.makedirs(self.base_dir)
        self.conf = os.path.join(tmp, "dovecot.conf")
        with open(self.conf, "w") as f:
            if version >= (2, 4, 0):
                # 2.4 demands these first.
                v = "%d.%d.%d" % version
                f.write("dovecot_config_version = %s\ndovecot_storage_version = %s\n" % (v, v))
            f.write("base_dir = %s\ninstance_name = drepl-doveadm-cmds-test\n"
                    "log_path = %s/dovecot.log\nprotocols =\nssl = no\n"
                    % (self.base_dir, tmp))

    def run(self, *args):
        if self.installed:
            cmd = ["doveadm", "-c", self.conf] + list(args)
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return p.returncode, p.stdout, p.stderr
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" "$1" && shift && exec "$@"',
               self.moduledir, self.system_moduledir,
               "doveadm", "-c", self.conf] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr


def system_doveadm_moduledir():
    try:
        with open("/usr/lib/dovecot/dovecot-config") as f:
            for line in f:
                if line.startswith("dovecot_moduledir="):
                    return line.split("=", 1)[1].strip().strip('"') + "/doveadm"
    except OSError:
        pass
    return "/usr/lib/dovecot/modules/doveadm"


def dovecot_version():
    out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
    return tuple(int(x) for x in re.match(r"(\d+)\.(\d+)\.(\d+)", out).groups())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", required=True)
    ap.add_argument("--installed", action="store_true",
                    help="the module is already in doveadm's module directory")
    a = ap.parse_args()
    if shutil.which("doveadm") is None or (
            not a.installed and (os.geteuid() != 0 or shutil.which("unshare") is None)):
        print("skipped: needs root, unshare and doveadm")
        return SKIP
    moduledir = system_doveadm_moduledir()
    if not os.path.isdir(moduledir):
        print("skipped: no %s" % moduledir)
        return SKIP
    version = dovecot_version()
    tmp = tempfile.mkdtemp(prefix="drepl-doveadm-cmds-")
    servers = []
    try:
        if a.installed and not os.path.exists(
                os.path.join(moduledir, os.path.basename(a.module))):
            print("FAIL --installed, but %s is not in %s" % (os.path.basename(a.module), moduledir))
            return 1
        dv = Doveadm(tmp, a.module, moduledir, version, a.installed)
        rc, _, err = dv.run("help")
        if rc != 0 and "Unknown command" in err:
            print("skipped: doveadm cannot run here: " + err.strip())
            return SKIP
        ours = FakeReplicator(os.path.join(dv.base_dir, "replicator-doveadm"))
        stock = FakeReplicator(os.path.join(dv.base_dir, "stock-replicator"), stock=True)
        wrong = FakeReplicator(os.path.join(dv.base_dir, "wrong"),
                               greeting="VERSION\treplicator-notify\t1\t0\n")
        servers += [ours, stock, wrong]
        run_checks(dv, ours, stock, wrong, version)
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(FAILURES))
    return 1 if FAILURES else 0


def run_checks(dv, ours, stock, wrong, version):
    now = ours.now

    # -- the module is loaded and lists its command(s)
    rc, out, err = dv.run("replicator")
    usage = out + err
    check("detail       [-a <replicator socket path>] [<user mask>]" in usage,
          "doveadm replicator lists 'detail' with its usage")
    for c in ("status", "dsync-status", "replicate", "add", "remove"):
        check(re.search(r"^\s+%s\s" % re.escape(c), usage, re.M) is not None,
              "doveadm replicator lists '%s'" % c)

    # -- detail, default socket (<base_dir>/replicator-doveadm), table formatter
    rc, out, err = dv.run("replicator", "detail")
    check(rc == 0, "detail: exit 0 (got %d, %s)" % (rc, err.strip()))
    lines = out.splitlines()
    check(len(lines) == 6, "detail: header + 5 rows in table (%d lines)" % len(lines))
    check(lines and lines[0].split() == ["username", "priority", "failed", "failures", "error",
                                         "kind", "next", "sync", "last", "success", "last",
                                         "error"], "detail: table header")
    check(last(ours) == "STATUS-DETAIL\t*", "detail: request STATUS-DETAIL\\t*")

    # -- detail -f json
    rc, out, err = dv.run("-f", "json", "replicator", "detail")
    rows = json.loads(out) if rc == 0 else []
    check(rc == 0 and len(rows) == 5, "detail json: 5 rows")
    by = {r["username"]: r for r in rows}
    check(bool(rows) and list(rows[0].keys()) == ["username", "priority", "failed", "failures", "error kind",
                                   "next sync", "last success", "last error"],
          "detail json: keys in column order")
    c = by.get("carol@example.com", {})
    check(c.get("failed") == "y" and c.get("failures") == "3"
          and c.get("error kind") == "connect_refused"
          and c.get("last error") == "connect(10.0.0.2:12345) failed: Connection refused",
          "detail json: carol's failure count, kind and text")
    check(c.get("next sync", "").startswith("in ") and near(c["next sync"][3:], 100),
          "detail json: carol next sync 'in 00:01:40' (%s)" % c.get("next sync"))
    check(near(c.get("last success", ""), 90000), "detail json: carol last success 25:00:00")
    b = by.get("bob@example.com", {})
    check(b.get("next sync", "").endswith(" ago") and near(b["next sync"][:-4], 60),
          "detail json: bob due since 00:01:00 ago (%s)" % b.get("next sync"))
    d = by.get("dave@example.com", {})
    check(d.get("next sync") == "never" and d.get("last success") == "-"
          and d.get("error kind") == "no_replica", "detail json: dave never_sync")
    e = by.get("erin\twith tab", {})
    check(e.get("next sync") == "running", "detail json: tab-escaped name unescaped, in flight")

    # -- -f tab and -f flow, masks
    rc, out, _ = dv.run("-f", "tab", "replicator", "detail", "c*")
    tl = out.splitlines()
    check(rc == 0 and tl[0] == "username\tpriority\tfailed\tfailures\terror kind\tnext sync\t"
          "last success\tlast error", "detail tab: header")
    check(len(tl) == 2 and tl[1].startswith("carol@example.com\tnone\ty\t3\tconnect_refused\tin "),
          "detail tab: one carol row")
    check(last(ours) == "STATUS-DETAIL\tc*", "detail: mask sent tab-escaped")
    rc, out, _ = dv.run("-f", "flow", "replicator", "detail", "bob*")
    check(rc == 0 and out.startswith("username=bob@example.com priority=high failed=- "
                                     "failures=0 error kind=none next sync="),
          "detail flow: bob")
    rc, out, _ = dv.run("-f", "json", "replicator", "detail", "nobody*")
    check(rc == 0 and json.loads(out) == [], "detail json: no match gives []")

    # -- detail against a stock replicator: falls back to STATUS
    rc, out, err = dv.run("-f", "json", "replicator", "detail", "-a", stock.path, "c*")
    check(rc == 0, "detail fallback: exit 0")
    check("does not support STATUS-DETAIL" in err, "detail fallback: warning on stderr")
    fb = json.loads(out) if rc == 0 else []
    check(len(fb) == 1 and fb[0]["username"] == "carol@example.com" and fb[0]["failed"] == "y"
          and fb[0]["failures"] == "" and fb[0]["next sync"].startswith("in "),
          "detail fallback: STATUS fields only")
    check(stock.errors == ["Unknown command: STATUS-DETAIL"]
          and last(stock) == "STATUS\tc*", "detail fallback: STATUS after the refusal")

    # -- the stock commands (2.3: built in; 2.4: ours), through -f json
    rc, out, _ = dv.run("-f", "json", "replicator", "status")
    ov = json.loads(out) if rc == 0 else []
    check(len(ov) == 7 and ov[0] == {"field": "Queued 'sync' requests", "value": "0"}
          and ov[6] == {"field": "Total number of known users", "value": "5"},
          "status json: overview")
    rc, out, _ = dv.run("-f", "json", "replicator", "status", "*")
    st = json.loads(out) if rc == 0 else []
    keys = list(st[0].keys()) if st else []
    check(keys[:6] == ["username", "priority", "fast sync", "full sync", "success sync",
                       "failed"], "status json: stock columns %s" % keys)
    sb = {r["username"]: r for r in st}
    check(near(sb.get("alice@example.com", {}).get("fast sync", ""), 1000),
          "status json: alice fast sync 00:16:40")
    if "next sync secs" in keys:
        check(near(sb["carol@example.com"]["next sync secs"], 100, 0),
              "status json: next sync secs 00:01:40")
    # next_secs of a never_sync user (INT64_MAX) does not fit 2.3.20+'s
    # unsigned int: stock 2.3.20..2.3.21 skips the row; 2.3.19 has no such
    # column; ours (2.4) prints "never".
    if version >= (2, 4, 0):
        check(sb.get("dave@example.com", {}).get("next sync secs") == "never",
              "status json: never_sync user shows 'never'")
    elif version < (2, 3, 20):
        check("dave@example.com" in sb, "status json: never_sync user listed by 2.3.19")
    rc, out, _ = dv.run("-f", "json", "replicator", "dsync-status")
    check(rc == 0 and json.loads(out) == [
        {"username": "erin\twith tab", "type": "full", "status": "Waiting for dsync to finish"},
        {"username": "", "type": "-", "status": "Not connected"}], "dsync-status json")
    rc, out, _ = dv.run("-f", "json", "replicator", "replicate", "-f", "bob@example.com")
    check(rc == 0 and json.loads(out) == [{"result": "1 users updated"}], "replicate json")
    check(last(ours) == "REPLICATE\tlow\tf\tbob@example.com", "replicate request")
    rc, out, _ = dv.run("replicator", "replicate", "-p", "high", "*")
    check(rc == 0 and out.strip() == "5 users updated", "replicate flow output")
    rc, _, err = dv.run("replicator", "replicate", "-p", "urgent", "x")
    check(rc == 64 and "Replicator failed: Invalid priority" in err, "replicate: bad priority")
    rc, _, err = dv.run("replicator", "remove", "ghost")
    check(rc == 64 and "Replicator failed: User not found" in err, "remove: unknown user")
    rc, out, _ = dv.run("replicator", "add", "new*")
    check(rc == 0 and out == "" and last(ours) == "ADD\tnew*", "add")

    # -- errors, identical for stock and ours
    missing = os.path.join(dv.base_dir, "missing")
    for cmd in ("detail", "status"):
        rc, _, err = dv.run("replicator", cmd, "-a", missing)
        check(rc == 75 and "net_connect_unix(%s) failed" % missing in err,
              "%s: missing socket exits 75 (%d)" % (cmd, rc))
        rc, _, err = dv.run("replicator", cmd, "-a", wrong.path)
        check(rc == 76 and "%s not a compatible replicator-doveadm socket" % wrong.path in err,
              "%s: wrong socket type exits 76 (%d)" % (cmd, rc))
    rc, _, err = dv.run("replicator", "detail", "-a", "localhost")
    check(rc == 75 and "Port not known for localhost" in err, "detail: TCP target without port")


if __name__ == "__main__":
    sys.exit(main())
