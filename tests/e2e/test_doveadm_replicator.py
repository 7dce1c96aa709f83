#!/usr/bin/env python3
"""The stock Dovecot 2.3 `doveadm replicator ...` against our replicator (issue 4).

Runs the real, unmodified `doveadm` binary of the installed Dovecot against private
Dovecot instances (tests/e2e/dovepair.py) and asserts what it prints:

  T1NeverSynced   one node with replication_max_conns = 0, once with Dovecot's own
                  replicator and once with ours, same users, same commands in
                  lockstep: `status` (table and -f tab), `status MASK` with * and ?,
                  `dsync-status`, `replicate -p low|high|sync|none [-f]`, `add`,
                  `remove`, error replies, a raw NOTIFY. Every output (stdout, stderr,
                  exit code) must be identical byte for byte (listing rows sorted: stock
                  prints in hash order; after NOTIFY the "ago" times are masked). No
                  user is ever synced here, so every other time column is `-`. Last,
                  `add MASK` over the passwd-file userdb adds exactly the matching new
                  users (stock adds every listed user: Dovecot 2.3's auth ignores the
                  mask for passwd-file).
  T2Pairs         a stock pair and our pair, 4 users, replication_max_conns = 4, both
                  idle after the start-up full syncs: identical overview bytes (table and
                  tab) and dsync-status bytes, same `status '*'` layout. Then on our pair
                  only: synced users; `replicate` vs `replicate -f` (incremental vs. real
                  full sync: last_full_sync advances and the daemon logs a full sync);
                  a failed user (replica port closed): failed `y`; dsyncs held in flight
                  by a silent TCP replica with types full / normal / incremental and the
                  stock status text, one dsync-status line per slot (max_conns); users
                  queued at low/high/sync while every slot is busy; the overview
                  counters consistent with the rows; `remove` of a user whose dsync is in
                  flight (reply ok, gone, its dsync ended and its slot freed at once,
                  same pid). Our pair sets replication_max_conns_per_replica = 4 so that
                  one replica may hold every slot here.
  T3Socket        our pair: the replicator-doveadm socket has the configured mode 0600;
                  dsync-status has a line for every slot (3 slots, 2 users, so one slot
                  was never used); malformed and unknown commands on a raw connection get a `-` error
                  reply (and are disconnected where stock disconnects) while a
                  concurrent well-behaved connection and the stock CLI keep working.

Usage: test_doveadm_replicator.py --prefix PREFIX [--port-base N] [--keep] [unittest args]
Environment defaults: DREPL_PREFIX, DREPL_E2E_DADM_PORT_BASE. Needs root. Ports: free
blocks of 10 in 39000-39990 unless --port-base is given.
"""

import argparse
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402

OPTS = argparse.Namespace(
    prefix=os.environ.get("DREPL_PREFIX"),
    port_base=int(os.environ["DREPL_E2E_DADM_PORT_BASE"]) if os.environ.get("DREPL_E2E_DADM_PORT_BASE") else None,
    keep=False)
STATE = {"blocks": [], "timings": []}
PORT_LO, PORT_HI, PORTS_PER_PAIR = 39000, 39990, 10

HELLO = b"VERSION\treplicator-doveadm-client\t1\t0\n"
GREETING = b"VERSION\treplicator-doveadm-server\t1\t0\n"
OVERVIEW_LABELS = ("Queued 'sync' requests", "Queued 'high' requests", "Queued 'low' requests",
                   "Queued 'failed' requests", "Queued 'full resync' requests",
                   "Waiting 'failed' requests", "Total number of known users")
STATUS_TITLES = ("username", "priority", "fast sync", "full sync", "success sync", "failed")
DSYNC_TITLES = ("username", "type", "status")
HMS = re.compile(r"^\d\d+:\d\d:\d\d$")


def wait(pred, timeout, what, interval=0.05):
    return dovepair.wait_until(pred, timeout, interval, what=what)


def next_port_base():
    if OPTS.port_base is not None:
        base = OPTS.port_base + PORTS_PER_PAIR * len(STATE["blocks"])
    else:
        taken = [p for b in STATE["blocks"] for p in range(b, b + PORTS_PER_PAIR)]
        base = faultkit.pick_block(PORT_LO, PORT_HI, PORTS_PER_PAIR, avoid=taken)
    STATE["blocks"].append(base)
    return base


def new_pair(tag, stock, users, **kw):
    root = tempfile.mkdtemp(prefix="drepl-dadm-%s-" % tag, dir="/tmp")
    return dovepair.Pair(root, port_base=next_port_base(), prefix=None if stock else OPTS.prefix,
                         stock=stock, users=users, **kw)


def drop_pair(p, failed):
    if p is None:
        return
    p.stop()
    if failed or OPTS.keep:
        print("dadm: pair kept in %s" % p.root, file=sys.stderr)
    else:
        shutil.rmtree(p.root, ignore_errors=True)


# --------------------------------------------------------------------------- doveadm

def run(node, *args, fmt=None):
    """The stock doveadm against `node`: (exit code, stdout, stderr), the node's root
    directory replaced by <ROOT> so two nodes' outputs compare."""
    r = node.doveadm(*args, check=False, fmt=fmt)
    root = node.pair.root
    return r.returncode, r.stdout.replace(root, "<ROOT>"), r.stderr.replace(root, "<ROOT>")


def sorted_rows(out):
    """A table/tab listing with its rows sorted (the header line stays first)."""
    lines = out.split("\n")
    if len(lines) < 2:
        return out
    body = [l for l in lines[1:] if l != ""]
    return "\n".join([lines[0]] + sorted(body)) + "\n"


def parse_table(out, titles):
    """Rows of doveadm's table formatter as dicts, cut at the title positions of the
    header line (the formatter left-justifies each column under its title)."""
    lines = [l for l in out.split("\n") if l != ""]
    head = lines[0]
    starts = []
    for t in titles:
        i = head.find(t, starts[-1] + 1 if starts else 0)
        assert i >= 0, "title %r missing in header %r" % (t, head)
        starts.append(i)
    rows = []
    for l in lines[1:]:
        cells = [l[s:(starts[k + 1] if k + 1 < len(starts) else None)].strip()
                 for k, s in enumerate(starts)]
        rows.append(dict(zip(titles, cells)))
    return rows


def parse_tab(out):
    lines = [l for l in out.split("\n") if l != ""]
    head = lines[0].split("\t")
    return [dict(zip(head, l.split("\t"))) for l in lines[1:]]


def shape_tab(out):
    """-f tab rows with the time cells replaced by T (see T2Pairs.test_1)."""
    rows = parse_tab(out)
    for r in rows:
        for col in ("fast sync", "full sync", "success sync"):
            if HMS.match(r[col]) or (col == "success sync" and r[col] == "-"):
                r[col] = "T"
    return sorted(sorted(r.items()) for r in rows)


def parse_overview(out):
    """`doveadm replicator status` (table) as {label: int}, in output order."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"^(.*?)\s+(\d+)\s*$", line)
        if m:
            res[m.group(1)] = int(m.group(2))
    return res


def users_table(node, mask="*"):
    """status MASK through both formatters; asserts they agree; {user: row}."""
    rc, out, err = run(node, "replicator", "status", mask)
    assert rc == 0, err
    rc, tab, err = run(node, "replicator", "status", mask, fmt="tab")
    assert rc == 0, err
    t1 = {r["username"]: r for r in parse_table(out, STATUS_TITLES)}
    t2 = {r["username"]: r for r in parse_tab(tab)}
    # (a second may pass between the two commands: times compare as "a time")
    assert times_as_t(t1) == times_as_t(t2), "table and tab formatters disagree:\n%s\n%s" % (out, tab)
    return t1


def times_as_t(rows):
    return {u: {k: "T" if HMS.match(v) else v for k, v in r.items()} for u, r in rows.items()}


def dsync_rows(node):
    """dsync-status through both formatters (asserted equal): list of dicts."""
    rc, out, err = run(node, "replicator", "dsync-status")
    assert rc == 0, err
    rc, tab, err = run(node, "replicator", "dsync-status", fmt="tab")
    assert rc == 0, err
    t1 = parse_table(out, DSYNC_TITLES)
    t2 = parse_tab(tab)
    assert [sorted(r.items()) for r in t1] == [sorted(r.items()) for r in t2], (out, tab)
    return t2


# --------------------------------------------------------------------------- raw socket

class Raw:
    """A raw replicator-doveadm connection (handshake done unless hello=False)."""

    def __init__(self, node, timeout=5.0, hello=True):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(faultkit.doveadm_socket(node))
        self.buf = b""
        greeting = self.line().encode() + b"\n"
        if greeting != GREETING:
            raise AssertionError("greeting %r" % greeting)
        if hello:
            self.send(HELLO)

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed (got %r)" % self.buf)
            self.buf += chunk
        l, self.buf = self.buf.split(b"\n", 1)
        return l.decode()

    def until_empty(self):
        out = []
        while True:
            l = self.line()
            if l == "":
                return out
            out.append(l)

    def snapshot(self, mask="*"):
        """STATUS and STATUS MASK in one write: our daemon answers both in one loop
        turn, so the overview and the rows describe the same moment."""
        self.send(b"STATUS\n" + ("STATUS\t%s\n" % faultkit.te_escape(mask)).encode())
        ov = {}
        for l in self.until_empty():
            k, v = l.split("\t")
            ov[k] = int(v)
        rows = {}
        for l in self.until_empty():
            f = [faultkit.te_unescape(x) for x in l.split("\t")]
            rows[f[0]] = {"priority": f[1], "last_fast_sync": int(f[2]), "last_full_sync": int(f[3]),
                          "failed": f[4] != "0", "last_successful_sync": int(f[5]),
                          "next_secs": int(f[6])}
        return ov, rows

    def read_all(self, timeout=3.0):
        """Everything until EOF (b'...<eof>') or `timeout` s without data (b'...<open>')."""
        self.s.settimeout(timeout)
        buf, self.buf = self.buf, b""
        while True:
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return buf + b"<open>"
            except (ConnectionResetError, BrokenPipeError):
                return buf + b"<eof>"
            if not chunk:
                return buf + b"<eof>"
            buf += chunk

    def close(self):
        self.s.close()


def raw_user(node, user):
    """The user's STATUS row with raw Unix times, or None."""
    c = Raw(node)
    try:
        return c.snapshot(user)[1].get(user)
    finally:
        c.close()


def wait_userdb(node, users, fields=None, timeout=10):
    """Waits until node's auth serves `users` (passwd-file re-reads its file at most
    once a second), with the given extra userdb fields ({user: "k=v"})."""
    def seen():
        for u in users:
            r = node.doveadm("user", u, check=False, fmt="tab")
            if r.returncode != 0:
                return False
            want = (fields or {}).get(u)
            if want and want not in r.stdout.replace("\t", "="):
                return False
        return True
    wait(seen, timeout, "the userdb to list %s" % ", ".join(users), 0.2)


def expected_overview(rows):
    """What STATUS must say for these STATUS rows (spec §8.2 classification)."""
    ov = dict.fromkeys(OVERVIEW_LABELS, 0)
    for r in rows.values():
        p = r["priority"]
        if p != "none":
            ov["Queued '%s' requests" % p] += 1
        elif r["next_secs"] == 0:
            ov["Queued 'failed' requests" if r["failed"] else "Queued 'full resync' requests"] += 1
        elif r["failed"]:
            ov["Waiting 'failed' requests"] += 1
    ov["Total number of known users"] = len(rows)
    return ov


# --------------------------------------------------------------------------- base

class Base(unittest.TestCase):
    failed_any = False

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            type(self).failed_any = True
        return out

    def timing(self, name, secs):
        STATE["timings"].append(("%s: %s" % (type(self).__name__, name), secs))

    def assert_same(self, stock_node, our_node, *args, fmt=None, sort=False, rc=None):
        """The same doveadm command on both nodes prints the same bytes."""
        s = run(stock_node, *args, fmt=fmt)
        o = run(our_node, *args, fmt=fmt)
        if sort:
            s = (s[0], sorted_rows(s[1]), s[2])
            o = (o[0], sorted_rows(o[1]), o[2])
        cmd = "doveadm %s%s" % ("-f %s " % fmt if fmt else "", " ".join(args))
        self.assertEqual(o, s, "%s: ours (rc, stdout, stderr) differs from stock" % cmd)
        if rc is not None:
            self.assertEqual(s[0], rc, "%s: stock exit code %r" % (cmd, s))
        return o


def ensure_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (private Dovecot masters)")
    if not OPTS.prefix:
        raise RuntimeError("give --prefix PREFIX (an install of this build)")


# --------------------------------------------------------------------------- 1

class T1NeverSynced(Base):
    """Stock vs. ours, one node each, replication_max_conns = 0."""

    USERS = ("alice", "bob", "carol")
    stock = ours = None

    @classmethod
    def setUpClass(cls):
        ensure_root()
        t0 = time.monotonic()
        try:
            cls.stock = new_pair("never-stock", True, cls.USERS, max_conns=0)
            cls.ours = new_pair("never-ours", False, cls.USERS, max_conns=0)
            for p in (cls.stock, cls.ours):
                p.create()
                p.a.start()  # node A only; its replicator starts on the first doveadm
        except BaseException:
            for p in (cls.stock, cls.ours):
                drop_pair(p, True)
            raise
        cls.s, cls.o = cls.stock.a, cls.ours.a
        print("\ndadm: T1 nodes up in %.1f s" % (time.monotonic() - t0), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if cls.failed_any:
            for p in (cls.stock, cls.ours):
                if p:
                    p.dump_logs(60)
        for p in (cls.stock, cls.ours):
            drop_pair(p, cls.failed_any)

    def test_1_first_status(self):
        # the very first command starts each replicator on demand: stock knows the
        # userdb's users before it answers, and so must we
        self.assert_same(self.s, self.o, "replicator", "status", rc=0)
        self.assert_same(self.s, self.o, "replicator", "status", fmt="tab", rc=0)
        ov = parse_overview(run(self.o, "replicator", "status")[1])
        self.assertEqual(list(ov), list(OVERVIEW_LABELS))
        self.assertEqual(ov["Total number of known users"], 3)
        self.assertEqual(ov["Queued 'full resync' requests"], 3)  # never synced: due

    def test_2_listings(self):
        for mask in ("*", "b*", "?o?", "c?rol", "nosuchuser", "alice"):
            self.assert_same(self.s, self.o, "replicator", "status", mask, sort=True, rc=0)
            self.assert_same(self.s, self.o, "replicator", "status", mask, fmt="tab", sort=True, rc=0)
        rows = users_table(self.o)
        self.assertEqual(set(rows), set(self.USERS))
        for r in rows.values():  # never synced
            self.assertEqual((r["priority"], r["fast sync"], r["full sync"], r["success sync"], r["failed"]),
                             ("none", "-", "-", "-", "-"), r)
        self.assertEqual(set(users_table(self.o, "?o?")), {"bob"})
        # max_conns = 0: no dsync slot at all
        self.assert_same(self.s, self.o, "replicator", "dsync-status", rc=0)
        self.assert_same(self.s, self.o, "replicator", "dsync-status", fmt="tab", rc=0)
        self.assertEqual(dsync_rows(self.o), [])

    def test_3_replicate_priorities(self):
        got = {}
        for args in (("-p", "low", "bob"), ("-p", "high", "carol"), ("-p", "sync", "alice"),
                     ("-p", "low", "dave"),            # unknown: created, as stock
                     ("-p", "high", "c*"),             # wildcard: counts known users
                     ("zzz*",),                        # no match: 0 users updated
                     ("-f", "-p", "none", "?ave"),     # none: re-positioned only
                     ("-p", "urgent", "bob")):         # invalid priority: error, exit 64
            got[args] = self.assert_same(self.s, self.o, "replicator", "replicate", *args)
        self.assertEqual(got[("-p", "low", "bob")], (0, "1 users updated\n", ""))
        self.assertEqual(got[("-p", "high", "c*")], (0, "1 users updated\n", ""))
        self.assertEqual(got[("zzz*",)], (0, "0 users updated\n", ""))
        rc, out, err = got[("-p", "urgent", "bob")]
        self.assertEqual((rc, out, err.strip()), (64, "", "Error: Replicator failed: Invalid priority"))
        for fmt in (None, "tab"):
            self.assert_same(self.s, self.o, "replicator", "status", fmt=fmt, rc=0)
            self.assert_same(self.s, self.o, "replicator", "status", "*", fmt=fmt, sort=True, rc=0)
        rows = users_table(self.o)
        self.assertEqual({u: r["priority"] for u, r in rows.items()},
                         {"alice": "sync", "bob": "low", "carol": "high", "dave": "low"})
        ov = parse_overview(run(self.o, "replicator", "status")[1])
        self.assertEqual(ov, {"Queued 'sync' requests": 1, "Queued 'high' requests": 1,
                              "Queued 'low' requests": 2, "Queued 'failed' requests": 0,
                              "Queued 'full resync' requests": 0, "Waiting 'failed' requests": 0,
                              "Total number of known users": 4})

    def test_4_add(self):
        got = self.assert_same(self.s, self.o, "replicator", "add", "erin", rc=0)
        self.assertEqual(got, (0, "", ""))
        for fmt in (None, "tab"):
            self.assert_same(self.s, self.o, "replicator", "status", fmt=fmt, rc=0)
            self.assert_same(self.s, self.o, "replicator", "status", "*", fmt=fmt, sort=True, rc=0)
        row = users_table(self.o, "erin")["erin"]
        self.assertEqual((row["priority"], row["fast sync"], row["failed"]), ("none", "-", "-"))

    def test_5_remove(self):
        self.assert_same(self.s, self.o, "replicator", "remove", "bob", rc=0)
        again = self.assert_same(self.s, self.o, "replicator", "remove", "bob", rc=64)
        self.assertEqual(again[2].strip(), "Error: Replicator failed: User not found")
        self.assert_same(self.s, self.o, "replicator", "remove", "m*", rc=64)  # no wildcards
        for fmt in (None, "tab"):
            self.assert_same(self.s, self.o, "replicator", "status", fmt=fmt, rc=0)
            self.assert_same(self.s, self.o, "replicator", "status", "*", fmt=fmt, sort=True, rc=0)
        self.assertNotIn("bob", users_table(self.o))

    def test_6_notify(self):
        # a replica's dsync-server -U says "synced": fast and full sync now, the
        # priority stays; byte-identical up to the "ago" times
        for n in (self.s, self.o):
            c = Raw(n)
            c.send(b"NOTIFY\tcarol\tf\tSTATE\n")
            self.assertEqual(c.line(), "+")
            c.close()
        for fmt in (None, "tab"):
            so = run(self.s, "replicator", "status", "*", fmt=fmt)
            oo = run(self.o, "replicator", "status", "*", fmt=fmt)
            t = lambda r: (r[0], re.sub(r"\d\d:\d\d:\d\d", "HH:MM:SS", sorted_rows(r[1])), r[2])  # noqa: E731
            self.assertEqual(t(oo), t(so), "status '*' after NOTIFY (-f %s)" % fmt)
        row = users_table(self.o, "carol")["carol"]
        self.assertEqual((row["priority"], row["success sync"], row["failed"]), ("high", "-", "-"), row)
        self.assertRegex(row["fast sync"], HMS)
        self.assertRegex(row["full sync"], HMS)

    def test_7_add_mask(self):
        # new userdb users: `add MASK` lists the userdb and adds the matching ones.
        # (Dovecot 2.3's auth ignores the mask for passwd-file and stock adds every
        # user it lists; we filter, as the command promises.)
        extra = ["mx1", "mx2", "my1", "nomatch"]
        for n in (self.s, self.o):
            faultkit.set_user_fields(n, {}, extra_users=extra)
            wait_userdb(n, extra)
        before = set(users_table(self.o))
        got = self.assert_same(self.s, self.o, "replicator", "add", "mx*", rc=0)
        self.assertEqual(got, (0, "", ""))
        rows = users_table(self.o)
        self.assertEqual(set(rows) - before, {"mx1", "mx2"})
        for u in ("mx1", "mx2"):
            self.assertEqual((rows[u]["priority"], rows[u]["fast sync"], rows[u]["failed"]), ("none", "-", "-"))
        self.assertEqual(run(self.o, "replicator", "add", "m?1"), (0, "", ""))
        self.assertEqual(set(users_table(self.o)) - before, {"mx1", "mx2", "my1"})
        stock_added = set(users_table(self.s)) - before
        if stock_added != {"mx1", "mx2"}:
            print("\ndadm: note: stock `add mx*` added %s" % sorted(stock_added), file=sys.stderr)


# --------------------------------------------------------------------------- 2

class T2Pairs(Base):
    """A stock pair and our pair, identical; then states on ours."""

    USERS = ("s1", "s2", "hi", "hf")
    MAX_CONNS = 4
    stock = ours = listener = None

    @classmethod
    def setUpClass(cls):
        ensure_root()
        t0 = time.monotonic()
        try:
            cls.stock = new_pair("pair-stock", True, cls.USERS, max_conns=cls.MAX_CONNS)
            # test_4 holds 3, then 4 dsyncs to one silent replica while fx's (refusing)
            # replica is in use too: the automatic per-replica share (half of the slots
            # while another replica is active) would keep hn and h4 waiting. This test
            # is about what the slots show, so one replica may use them all.
            cls.ours = new_pair("pair-ours", False, cls.USERS, max_conns=cls.MAX_CONNS,
                                extra_conf="plugin {\n  replication_max_conns_per_replica = %d\n}"
                                % cls.MAX_CONNS)
            # --debug: one log line per sync we start ("starting full sync ...")
            cls.ours.extra_conf += "\nservice replicator {\n  executable = %s --debug\n}" % cls.ours.daemon_path
            for p in (cls.stock, cls.ours):
                p.create()
            for p in (cls.stock, cls.ours):
                p.start()
        except BaseException:
            for p in (cls.stock, cls.ours):
                drop_pair(p, True)
            raise
        cls.a = cls.ours.a
        cls.pid = faultkit.replicator_pid(cls.a)
        cls.log0 = faultkit.log_size(cls.a)
        print("\ndadm: T2 pairs up in %.1f s" % (time.monotonic() - t0), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if cls.listener:
            cls.listener.close()
        if cls.failed_any:
            for p in (cls.stock, cls.ours):
                if p:
                    print(p.status_text(), file=sys.stderr)
                    p.dump_logs(80)
        for p in (cls.stock, cls.ours):
            drop_pair(p, cls.failed_any)

    def test_1_idle_same_as_stock(self):
        s, o = self.stock.a, self.ours.a
        self.ours.wait_quiet()
        self.stock.wait_quiet()
        for fmt in (None, "tab"):
            self.assert_same(s, o, "replicator", "status", fmt=fmt, rc=0)
            # stock created one dsync client per user at start-up (4 users, 4 conns);
            # we always show one line per slot: the same 4 idle lines
            self.assert_same(s, o, "replicator", "dsync-status", fmt=fmt, rc=0)
        # status '*': same header and layout; every column but the times identical
        so, oo = run(s, "replicator", "status", "*"), run(o, "replicator", "status", "*")
        self.assertEqual(oo[0], 0)
        sl, ol = sorted_rows(so[1]).split("\n"), sorted_rows(oo[1]).split("\n")
        self.assertEqual(ol[0], sl[0], "header line")
        self.assertEqual([len(l) for l in ol], [len(l) for l in sl], "line widths")

        def shape(out):
            # times as T; stock's success column can be '-' where the peer's dsync -U
            # NOTIFY won the race against its own sync, so there time-or-dash is T
            rows = parse_table(out, STATUS_TITLES)
            for r in rows:
                for col in ("fast sync", "full sync", "success sync"):
                    if HMS.match(r[col]) or (col == "success sync" and r[col] == "-"):
                        r[col] = "T"
            return sorted(sorted(r.items()) for r in rows)
        self.assertEqual(shape(oo[1]), shape(so[1]))
        stab = run(s, "replicator", "status", "*", fmt="tab")[1]
        otab = run(o, "replicator", "status", "*", fmt="tab")[1]
        self.assertEqual(otab.split("\n")[0], stab.split("\n")[0], "tab header")
        self.assertEqual(shape_tab(otab), shape_tab(stab))

    def test_2_synced(self):
        rows = users_table(self.a)
        self.assertEqual(set(rows), set(self.USERS))
        for u, r in rows.items():
            self.assertEqual(r["priority"], "none", r)
            for col in ("fast sync", "full sync", "success sync"):
                self.assertRegex(r[col], HMS, r)
            self.assertEqual(r["failed"], "-", r)
        slots = dsync_rows(self.a)
        self.assertEqual(len(slots), self.MAX_CONNS, slots)
        for r in slots:
            self.assertEqual(r, {"username": "", "type": "-", "status": "Not connected"})
        ov = parse_overview(run(self.a, "replicator", "status")[1])
        self.assertEqual(ov, dict(dict.fromkeys(OVERVIEW_LABELS, 0), **{"Total number of known users": 4}))

    def _next_second(self, after):
        wait(lambda: int(time.time()) > after, 3, "the clock to pass %d" % after, 0.02)

    def _synced_after(self, user, t):
        def done():
            r = raw_user(self.a, user)
            return r if (r["last_successful_sync"] >= t and r["priority"] == "none" and
                         not any(d["username"] == user for d in dsync_rows(self.a))) else None
        return wait(done, 20, "%s synced again" % user, 0.1)[0]

    def test_3_replicate_vs_full(self):
        a = self.a
        # B's sync of s1 into A dropped A's dsync state (stale after it): one
        # plain replicate first gives A a state its next sync starts from.
        before = raw_user(a, "s1")
        self._next_second(max(before["last_full_sync"], before["last_successful_sync"]))
        t0 = int(time.time())
        self.assertEqual(run(a, "replicator", "replicate", "s1")[:2], (0, "1 users updated\n"))
        self._synced_after("s1", t0)
        before = raw_user(a, "s1")
        self._next_second(max(before["last_full_sync"], before["last_successful_sync"]))
        t1 = int(time.time())
        off = faultkit.log_size(a)
        self.assertEqual(run(a, "replicator", "replicate", "s1")[:2], (0, "1 users updated\n"))
        r1 = self._synced_after("s1", t1)
        self.assertEqual(r1["last_full_sync"], before["last_full_sync"], "a plain replicate ran a full sync")
        self.assertGreaterEqual(r1["last_fast_sync"], t1)
        log = a.log_text()[off:]
        self.assertIn("replication(s1): starting incremental sync", log)

        self._next_second(r1["last_successful_sync"])
        t2 = int(time.time())
        off = faultkit.log_size(a)
        self.assertEqual(run(a, "replicator", "replicate", "-f", "s1")[:2], (0, "1 users updated\n"))
        r2 = self._synced_after("s1", t2)
        self.assertGreaterEqual(r2["last_full_sync"], t2, "replicate -f did not run a full sync")
        self.assertFalse(r2["failed"])
        log = a.log_text()[off:]
        self.assertIn("replication(s1): starting full sync", log)
        self.assertIn("replication(s1): synced", log)
        # the stock CLI's view: full sync column just now
        row = users_table(a, "s1")["s1"]
        self.assertRegex(row["full sync"], r"^00:00:0\d$")

    def test_4_states(self):
        p, a = self.ours, self.a
        base = p.port_base
        silent = "tcp:127.0.0.1:%d" % (base + 5)
        closed = "tcp:127.0.0.1:%d" % (base + 6)   # nothing listens there
        T2Pairs.listener = faultkit.SilentListener(base + 5)
        fields = {u: "userdb_mail_replica=" + silent for u in ("hi", "hf", "hn", "h4")}
        fields["fx"] = "userdb_mail_replica=" + closed
        faultkit.set_user_fields(a, fields, extra_users=["hn", "h4", "fx"])
        wait_userdb(a, ["hi", "hf", "hn", "h4", "fx"],
                    {u: v.replace("userdb_", "") for u, v in fields.items()})

        # failed: the replica refuses connections
        self.assertEqual(run(a, "replicator", "replicate", "fx")[:2], (0, "1 users updated\n"))
        wait(lambda: users_table(a, "fx")["fx"]["failed"] == "y", 15, "fx failed")
        row = users_table(a, "fx")["fx"]
        self.assertEqual(row["priority"], "none")
        self.assertRegex(row["fast sync"], HMS)

        # in flight, one per dsync type: hi has a state (incremental), hf is forced
        # full, hn has no state but a recent full sync (NOTIFY from a replica): normal
        # (hi's state from the set-up may have been dropped by B's sync of hi
        # into A; a NOTIFY with a state gives it one: the replica never answers)
        c = Raw(a)
        c.send(b"NOTIFY\thn\tf\t\n")
        self.assertEqual(c.line(), "+")
        c.send(b"NOTIFY\thi\t\tAQAAAA==\n")
        self.assertEqual(c.line(), "+")
        c.close()
        t_hold = time.monotonic()
        for args in (("hi",), ("-f", "hf"), ("hn",)):
            self.assertEqual(run(a, "replicator", "replicate", *args)[:2], (0, "1 users updated\n"))

        def held():
            rows = dsync_rows(a)
            busy = {r["username"]: r for r in rows if r["username"]}
            return (len(busy) == 3 and all(r["status"] == "Waiting for dsync to finish" for r in busy.values())
                    and rows)
        rows, _ = wait(held, 15, "three dsyncs held by the silent replica", 0.1)
        self.timing("three dsyncs in flight", time.monotonic() - t_hold)
        self.assertEqual(len(rows), self.MAX_CONNS, rows)
        busy = {r["username"]: r["type"] for r in rows if r["username"]}
        self.assertEqual(busy, {"hi": "incremental", "hf": "full", "hn": "normal"})
        idle = [r for r in rows if not r["username"]]
        self.assertEqual(idle, [{"username": "", "type": "-", "status": "Not connected"}])
        wait(lambda: self.listener.accepted >= 3, 10, "doveadm-server connected to the silent replica")
        for u in ("hi", "hf", "hn"):
            r = users_table(a, u)[u]
            self.assertEqual((r["priority"], r["failed"]), ("none", "-"), r)
            self.assertRegex(r["fast sync"], HMS)

        # every slot busy: a 4th held dsync, then users queue at each priority
        self.assertEqual(run(a, "replicator", "replicate", "h4")[0], 0)
        wait(lambda: all(r["username"] for r in dsync_rows(a)), 15, "all 4 slots busy", 0.1)
        for args in (("-p", "low", "s1"), ("-p", "high", "s2"), ("-p", "sync", "newuser")):
            self.assertEqual(run(a, "replicator", "replicate", *args)[:2], (0, "1 users updated\n"))
        rows = users_table(a)
        self.assertEqual({u: rows[u]["priority"] for u in ("s1", "s2", "newuser")},
                         {"s1": "low", "s2": "high", "newuser": "sync"})
        self.assertEqual(rows["newuser"]["fast sync"], "-")   # never synced
        self.assertEqual(rows["fx"]["failed"], "y")

        # overview counters match the rows (one snapshot), and the stock CLI says the same
        c = Raw(a)
        try:
            ov, raw = c.snapshot()
        finally:
            c.close()
        self.assertEqual(ov, expected_overview(raw))
        self.assertEqual((ov["Queued 'sync' requests"], ov["Queued 'high' requests"],
                          ov["Queued 'low' requests"]), (1, 1, 1), ov)
        self.assertEqual(ov["Waiting 'failed' requests"] + ov["Queued 'failed' requests"], 1, ov)
        self.assertEqual(ov["Total number of known users"], 8, ov)
        self.assertEqual(set(raw), set(users_table(a)))
        cli = parse_overview(run(a, "replicator", "status")[1])
        self.assertEqual({k: v for k, v in cli.items() if "failed" not in k},
                         {k: v for k, v in ov.items() if "failed" not in k})

    def test_5_remove_in_flight(self):
        a = self.a
        self.assertTrue(any(r["username"] == "hn" for r in dsync_rows(a)), "hn not in flight")
        self.assertEqual(run(a, "replicator", "remove", "hn"), (0, "", ""))
        self.assertEqual(users_table(a, "hn"), {})
        self.assertNotIn("hn", users_table(a))
        # hn's dsync is ended at once (its doveadm-server terminated through a pidfd)
        # and its slot freed; nobody waits for its result
        wait(lambda: "replication(hn): removed during its dsync to " in a.log_text()[self.log0:],
             10, "the log line of hn's aborted dsync")
        wait(lambda: not any(r["username"] == "hn" for r in dsync_rows(a)), 10,
             "hn's slot freed", 0.1)
        # the other held dsyncs end when the replica closes every connection: their
        # failures are recorded
        self.listener.close()
        T2Pairs.listener = None
        t0 = time.monotonic()
        wait(lambda: not any(r["username"] in ("hi", "hf", "hn", "h4") for r in dsync_rows(a)), 20,
             "the held dsyncs to end", 0.1)
        self.timing("held dsyncs ended after the replica closed", time.monotonic() - t0)
        rows = users_table(a)
        self.assertNotIn("hn", rows)
        self.assertEqual(users_table(a, "hn"), {})
        for u in ("hi", "hf", "h4"):
            self.assertEqual(rows[u]["failed"], "y", rows[u])
        self.assertEqual(parse_overview(run(a, "replicator", "status")[1])["Total number of known users"],
                         len(rows))
        self.assertEqual(faultkit.replicator_pid(a), self.pid, "replicator restarted")
        slots = dsync_rows(a)
        self.assertEqual(len(slots), self.MAX_CONNS, slots)
        self.assertEqual(faultkit.crash_lines(a, self.log0), [])


# --------------------------------------------------------------------------- 3

class T3Socket(Base):
    """Our pair: the listener's mode and bad input on raw connections."""

    USERS = ("alice", "bob")
    pair = None

    @classmethod
    def setUpClass(cls):
        ensure_root()
        t0 = time.monotonic()
        # more slots than users: slots never used still get a dsync-status line
        cls.pair = new_pair("socket", False, cls.USERS, max_conns=3)
        try:
            cls.pair.create()
            cls.pair.start()
        except BaseException:
            drop_pair(cls.pair, True)
            raise
        cls.a = cls.pair.a
        cls.pid = faultkit.replicator_pid(cls.a)
        cls.log0 = faultkit.log_size(cls.a)
        print("\ndadm: T3 pair up in %.1f s" % (time.monotonic() - t0), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if cls.failed_any and cls.pair:
            cls.pair.dump_logs(80)
        drop_pair(cls.pair, cls.failed_any)

    def test_1_socket_mode(self):
        with open(self.a.conf) as fh:
            conf = fh.read()
        self.assertRegex(conf, r"unix_listener replicator-doveadm \{\n\s*mode = 0600\n")
        st = os.stat(faultkit.doveadm_socket(self.a))
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, self.pair.vmail_uid)

    def test_2_dsync_status_one_line_per_slot(self):
        self.assertEqual(dsync_rows(self.a),
                         [{"username": "", "type": "-", "status": "Not connected"}] * 3)

    def test_3_bad_input(self):
        a = self.a
        good = Raw(a)
        stuck = Raw(a)
        stuck.send(b"STATUS\tal")  # half a line, never finished
        ov0, _ = good.snapshot()
        huge = b"X" * (2 * 1024 * 1024)
        # (input after the handshake, expected reply, connection closed afterwards)
        cases = [
            (b"FOO\tbar\n", "-Unknown command: FOO", True),
            (b"status\n", "-Unknown command: status", True),
            (b"\n", "-Empty command", True),
            (b"REPLICATE\tlow\tbob\n", "-REPLICATE: Invalid parameters", True),
            (b"ADD\n", "-ADD: Invalid parameters", True),
            (b"ADD\ta\tb\n", "-ADD: Invalid parameters", True),
            (b"REMOVE\n", "-REMOVE: Invalid parameters", True),
            (b"NOTIFY\tx\tf\n", "-NOTIFY: Invalid parameters", True),
            (b"\x00\xff\xfe\x01\x02\n", "-Unknown command: ", True),
            (huge + b"\n", "-", True),
            (b"REPLICATE\turgent\t\tbob\n", "-Invalid priority", False),
            (b"REMOVE\tnosuchuser\n", "-User not found", False),
        ]
        for data, want, closes in cases:
            c = Raw(a)
            try:
                c.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            got = c.read_all(timeout=0.5 if not closes else 3.0)
            c.close()
            what = "%r..." % data[:40]
            first = got.split(b"\n", 1)[0].decode(errors="replace")
            self.assertTrue(first.startswith(want), "%s: reply %r, want %r" % (what, got[:200], want))
            self.assertTrue(got.endswith(b"<eof>" if closes else b"<open>"), "%s: %r" % (what, got[-100:]))
            # the concurrent client is not disturbed
            ov, _ = good.snapshot()
            self.assertEqual(ov["Total number of known users"], 2, what)
        # errors before the handshake: disconnected without a reply, as stock
        for data in (b"STATUS\n", b"VERSION\treplicator-doveadm-client\t2\t0\n",
                     b"VERSION\tfoo\t1\t0\n"):
            c = Raw(a, hello=False)
            c.send(data)
            self.assertEqual(c.read_all(), b"<eof>", data)
            c.close()
        # after an error reply that keeps the connection, the next command works
        c = Raw(a)
        c.send(b"REPLICATE\turgent\t\tbob\nSTATUS\n")
        self.assertEqual(c.line(), "-Invalid priority")
        self.assertEqual([l.split("\t")[0] for l in c.until_empty()], list(OVERVIEW_LABELS))
        c.close()
        # the stock CLI still works, with the half-line client still connected
        self.assertEqual(parse_overview(run(a, "replicator", "status")[1]), ov0)
        self.assertEqual(set(users_table(a)), set(self.USERS))
        stuck.close()
        good.close()
        self.assertEqual(faultkit.replicator_pid(a), self.pid, "replicator restarted")
        self.assertEqual(faultkit.crash_lines(a, self.log0), [])
        errors = [l for l in a.log_text()[self.log0:].splitlines() if "replicator: Error:" in l]
        self.assertTrue(any("Unknown command: FOO" in l for l in errors), errors)


def tearDownModule():
    if STATE["timings"]:
        print("\ndadm timings:", file=sys.stderr)
        for name, secs in STATE["timings"]:
            print("  %-60s %6.2f s" % (name, secs), file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", default=OPTS.prefix, help="install prefix of our build")
    ap.add_argument("--port-base", type=int, default=OPTS.port_base,
                    help="first port block (10 ports per node pair); default: free blocks in 39000-39990")
    ap.add_argument("--keep", action="store_true", help="keep the pair directories")
    opts, rest = ap.parse_known_args(argv)
    vars(OPTS).update(vars(opts))
    unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
