#!/usr/bin/env python3
"""Replication on Dovecot 2.4.1 (issue 9): a 2.4 pair, or a mixed 2.3 <-> 2.4 pair.

--dovecot 2.4: both nodes run Dovecot 2.4.1 inside the Debian 13 root
(scripts/trixie-root.sh) with this tree built and staged there by
scripts/dovecot24-build.sh; dovecot.conf in 2.4 syntax, our keys at top level, no
service {} block (tests/e2e/dovepair.py render_config24).
--dovecot mixed: A is the host's Dovecot 2.3 with this tree's normal build
(--prefix), B is 2.4.1 in the root: the middle of a rolling upgrade.

Users: alice and bob replicate; carol has the userdb field noreplicate. Every
node has replication_sync_timeout = 2 s.

  test_01  APPEND on A appears on B, and on B appears on A
  test_02  flags and expunge replicate both ways (each change on the node that made
           the message's last change); 02b/02c: a keyword removal / an expunge on
           the other node after a flag change reaches the origin and stays
  test_03  CREATE / RENAME / DELETE both ways
  test_04  sync-on-save: an APPEND on either node returns with the message
           already on the other (checked once, right after APPEND returns)
  test_05  `doveadm replicator status [mask]` and `dsync-status` on a 2.4 node
           (our doveadm module) print the 2.3 format: the stock 2.3 titles,
           labels and column layout; empty cells stay empty on 2.4.1 (the
           decision for 2.4.2+'s "-" is in docs/upgrading.md); mixed: the 2.4
           node's output equals the 2.3 node's (stock doveadm) byte for byte
           once the numbers are masked
  test_05b `doveadm replicator remove` and `add MASK` on every node; the user
           replicates again afterwards
  test_06  carol (noreplicate) is never synced and never shown failed, even
           after her own changes and an explicit `replicator replicate`
  test_07  (--idle SECONDS, default 60; 0 skips) an idle pair stays quiet: no
           dsync starts on either node (dsync-status polled, last sync times and
           INBOX highestmodseq unchanged), and no error lines in either log
  test_08  no Panic/Fatal/Error lines, one replicator per node throughout

Usage: test_dovecot24.py --dovecot {2.4,mixed} [--prefix PREFIX] [--prefix24 STAGE]
                         [--idle SECONDS] [--port-base N] [--keep] [unittest args]
Needs root; exits 77 (skip) without the trixie root's stage.
"""

import argparse
import os
import re
import shutil
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402

SYNC_TIMEOUT_SECS = 2
USERS = ("alice", "bob", "carol")
NEVER = "carol"
OPTS = argparse.Namespace(dovecot="2.4", prefix=None, prefix24=None, idle=60,
                          port_base=None, keep=False)
STATE = {"pair": None, "failed": False, "pids": {}, "log_start": {}}
# Log lines that must never show up on either node (test_08, and test_07's window).
BAD = ("Panic:", "Fatal:", "Error:")
# The 2.3 replicator's `doveadm replicator status` overview labels and table
# titles (src/doveadm/doveadm-replicator.c in 2.3.19), in order.
OVERVIEW_LABELS = ("Queued 'sync' requests", "Queued 'high' requests",
                   "Queued 'low' requests", "Queued 'failed' requests",
                   "Queued 'full resync' requests", "Waiting 'failed' requests",
                   "Total number of known users")
STATUS_TITLES = ("username", "priority", "fast sync", "full sync", "success sync", "failed")
DSYNC_TITLES = ("username", "type", "status")


def pair():
    return STATE["pair"]


def wait(pred, timeout, what):
    return dovepair.wait_until(pred, timeout, 0.1, what=what)[0]


def has(node, user, msgid, mailbox="INBOX"):
    m = node.messages(user, mailbox)
    return m is not None and msgid in m


def mid(tag):
    return "%s-%s@e2e24" % (tag, uuid.uuid4().hex[:10])


def bad_lines(node, since=0):
    """Panic/Fatal/Error lines logged since byte offset `since`, minus Dovecot's
    documented doveadm-server Fatal when a connect to the replica fails."""
    with open(node.log_path, "rb") as fh:
        fh.seek(since)
        text = fh.read().decode(errors="replace")
    return [l for l in text.splitlines() if any(w in l for w in BAD)
            and not any(r.search(l) for r in faultkit.EXPECTED_FATAL)]


def setUpModule():
    p24 = dovepair.require_dovecot(OPTS.dovecot, OPTS.prefix24)
    if OPTS.dovecot == "mixed" and not OPTS.prefix:
        raise RuntimeError("--dovecot mixed needs --prefix (this build installed for 2.3)")
    root = dovepair.new_pair_root("drepl-e2e24-%s-" % OPTS.dovecot, OPTS.dovecot)
    base = OPTS.port_base if OPTS.port_base is not None else faultkit.pick_block(lo=36000, hi=36990)
    p = dovepair.Pair(root, port_base=base, prefix=OPTS.prefix, users=USERS,
                      dovecot=OPTS.dovecot, prefix24=p24, sync_timeout=SYNC_TIMEOUT_SECS,
                      user_fields={NEVER: "userdb_noreplicate=yes"})
    STATE["pair"] = p
    t0 = time.monotonic()
    try:
        p.create()
        p.start(timeout=90)
    except BaseException:
        p.stop()
        print("dovecot24: pair kept in %s" % p.root, file=sys.stderr)
        raise
    STATE["pids"] = {n.name: faultkit.replicator_pid(n) for n in p.nodes}
    STATE["log_start"] = {n.name: os.path.getsize(n.log_path) for n in p.nodes}
    print("dovecot24: %s pair up in %.1f s (A %s, B %s; IMAP %d/%d, doveadm %d/%d, root %s)" % (
        OPTS.dovecot, time.monotonic() - t0, p.a.version, p.b.version, p.a.imap_port,
        p.b.imap_port, p.a.doveadm_port, p.b.doveadm_port, p.root), file=sys.stderr, flush=True)


def tearDownModule():
    p = pair()
    if not p:
        return
    p.stop_after_tests(STATE["failed"])
    if OPTS.keep or STATE["failed"]:
        print("dovecot24: pair kept in %s" % p.root, file=sys.stderr)
    else:
        shutil.rmtree(p.root, ignore_errors=True)


class Dovecot24Pair(unittest.TestCase):
    def run(self, result=None):
        r = super().run(result)
        if result is not None and (result.failures or result.errors):
            STATE["failed"] = True
        return r

    def setUp(self):
        pair().wait_quiet(timeout=60)

    # ---- 1-3: every kind of change, both ways

    def test_01_append_both_ways(self):
        p = pair()
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            m = mid("append-%s" % src.name)
            src.append("alice", m)
            wait(lambda: has(dst, "alice", m), 20, "%s's APPEND on %s" % (src.name, dst.name))

    def test_02_flags_and_expunge(self):
        p = pair()
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            m = mid("flags-%s" % src.name)
            src.append("bob", m)
            wait(lambda: has(dst, "bob", m), 20, "the message on %s" % dst.name)
            p.wait_quiet(timeout=60)
            src.store("bob", m, "+FLAGS", r"\Flagged $Label1")
            wait(lambda: {r"\Flagged", "$Label1"} <= dst.messages("bob")[m], 20,
                 "flags set on %s on %s" % (src.name, dst.name))
            p.wait_quiet(timeout=60)
            src.store("bob", m, "-FLAGS", "$Label1")
            wait(lambda: "$Label1" not in dst.messages("bob")[m], 20,
                 "flag removal on %s on %s" % (src.name, dst.name))
            p.wait_quiet(timeout=60)
            src.expunge("bob", m)
            wait(lambda: m not in dst.messages("bob"), 20,
                 "expunge on %s on %s" % (src.name, dst.name))

    def test_02b_keyword_removed_on_the_other_node(self):
        """A keyword set on A and removed on B must not come back: B's replicator
        drops its dsync state once A's dsync ran on B (the plugin's NOTIFY), so its
        next sync does not replay A's change."""
        p = pair()
        m = mid("kw-cross")
        p.a.append("bob", m)
        wait(lambda: has(p.b, "bob", m), 20, "the message on b")
        p.wait_quiet(timeout=60)
        p.a.store("bob", m, "+FLAGS", "$Label2")
        wait(lambda: "$Label2" in p.b.messages("bob")[m], 20, "the keyword on b")
        p.wait_quiet(timeout=60)
        p.b.store("bob", m, "-FLAGS", "$Label2")
        wait(lambda: "$Label2" not in p.a.messages("bob")[m], 10, "keyword removal on a")
        p.wait_quiet(timeout=60)  # every sync it caused has run: still gone on both
        for n in p.nodes:
            self.assertNotIn("$Label2", n.messages("bob")[m], "keyword back on %s" % n.name)

    def test_02c_expunge_on_the_other_node_after_a_flag_change(self):
        """Flags changed on A and synced to B, then the message expunged on B: the
        expunge reaches A (same cause as 02b)."""
        p = pair()
        m = mid("xp-cross")
        p.a.append("bob", m)
        wait(lambda: has(p.b, "bob", m), 20, "the message on b")
        p.wait_quiet(timeout=60)
        p.a.store("bob", m, "+FLAGS", r"\Flagged")
        wait(lambda: r"\Flagged" in p.b.messages("bob")[m], 20, "the flag on b")
        p.wait_quiet(timeout=60)
        p.b.expunge("bob", m)
        wait(lambda: m not in p.a.messages("bob"), 10, "expunge on b on a")
        p.wait_quiet(timeout=60)
        for n in p.nodes:
            self.assertNotIn(m, n.messages("bob"), "message back on %s" % n.name)

    def test_03_mailboxes_both_ways(self):
        p = pair()
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            box = "Box-%s-%s" % (src.name, uuid.uuid4().hex[:6])
            src.create("alice", box)
            wait(lambda: box in dst.mailboxes("alice"), 20, "CREATE %s on %s" % (box, dst.name))
            p.wait_quiet(timeout=60)
            dst.rename("alice", box, box + "-renamed")
            wait(lambda: box + "-renamed" in src.mailboxes("alice") and
                 box not in src.mailboxes("alice"), 20, "RENAME on %s" % src.name)
            p.wait_quiet(timeout=60)
            src.delete("alice", box + "-renamed")
            wait(lambda: box + "-renamed" not in dst.mailboxes("alice"), 20,
                 "DELETE on %s" % dst.name)

    # ---- 4: replication_sync_timeout

    def test_04_sync_on_save(self):
        p = pair()
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            with src.session("alice") as s:
                for i in range(3):
                    m = mid("sos-%s-%d" % (src.name, i))
                    t0 = time.monotonic()
                    s.append(m)
                    took = time.monotonic() - t0
                    # checked once: the APPEND must not have returned before the replica had it
                    self.assertTrue(has(dst, "alice", m),
                                    "%s: APPEND returned after %.2f s without the message on %s"
                                    % (src.name, took, dst.name))
                    self.assertLess(took, SYNC_TIMEOUT_SECS + 1.5, "APPEND took %.2f s" % took)

    # ---- 5: doveadm replicator output

    def check_format(self, node):
        """The 2.3 layout of `replicator status`, `status MASK` and `dsync-status`."""
        r = node.doveadm("replicator", "status")
        lines = r.stdout.splitlines()
        self.assertEqual([re.sub(r"\s+\d+$", "", l.rstrip()) for l in lines],
                         list(OVERVIEW_LABELS), r.stdout)
        for l in lines:  # label padded to column 30, then the number
            self.assertRegex(l, r"^.{29} \d+ *$")
        # 2.4 (our module): the 2.3.20+ columns, i.e. 2.3.19's plus "next sync secs"
        titles = STATUS_TITLES + (("next sync secs",) if node.is24 else ())
        r = node.doveadm("replicator", "status", "*")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), " ".join(titles).split(), r.stdout)
        self.assertEqual(sorted(l.split()[0] for l in lines[1:]), sorted(USERS), r.stdout)
        tab = node.doveadm("replicator", "status", "*", fmt="tab").stdout.splitlines()
        self.assertEqual(tuple(tab[0].split("\t")), titles)
        rows = {l.split("\t")[0]: l.split("\t") for l in tab[1:]}
        # never synced, never failed (fast/full sync: the time it was last looked at,
        # as the 2.3 replicator shows a noreplicate user)
        self.assertEqual(rows[NEVER][4:6], ["-", "-"], rows)
        for u in ("alice", "bob"):
            self.assertEqual(rows[u][1], "none", rows)
            for col in (2, 3, 4):  # fast, full, success sync: time since
                self.assertRegex(rows[u][col], r"^\d\d:\d\d:\d\d$", rows)
            self.assertEqual(rows[u][5], "-", rows)  # not failed
        d = node.doveadm("replicator", "dsync-status", fmt="tab").stdout.splitlines()
        self.assertEqual(tuple(d[0].split("\t")), DSYNC_TITLES, d)
        self.assertEqual(len(d) - 1, pair().max_conns, d)
        # idle connections: an empty username and type "-", as the 2.3 replicator sends
        for l in d[1:]:
            self.assertEqual(l.split("\t")[:2], ["", "-"], d)
        t = node.doveadm("replicator", "dsync-status").stdout.splitlines()
        self.assertEqual(t[0].split(), list(DSYNC_TITLES), t)
        for l in t[1:]:
            # the empty username cell stays blank in the table (2.4.2+ would print "-")
            self.assertRegex(l, r"^ {20,}- +Not connected *$", t)

    def test_05_doveadm_replicator_format(self):
        p = pair()
        for n in p.nodes:
            self.check_format(n)
        if OPTS.dovecot == "mixed":
            # the 2.4 node (our doveadm module) against the 2.3 node (Dovecot's own
            # doveadm talking to our replicator): the same bytes with digits masked
            def masked(n, *args):
                return re.sub(r"\d", "9", n.doveadm("replicator", *args).stdout)
            for args in (("status",), ("dsync-status",)):
                self.assertEqual(masked(p.a, *args), masked(p.b, *args), args)

    def test_05b_doveadm_replicator_remove_and_add(self):
        """`replicator remove USER` drops the user from the queue, `add MASK` brings
        it back from the userdb (on a 2.4 node through our doveadm module; mixed:
        the 2.3 node's stock doveadm against our replicator), and the user
        replicates again afterwards."""
        p = pair()
        for n in p.nodes:
            users = lambda: sorted(l.split("\t")[0] for l in n.doveadm(
                "replicator", "status", "*", fmt="tab").stdout.splitlines()[1:])
            self.assertIn("bob", users())
            n.doveadm("replicator", "remove", "bob")
            self.assertNotIn("bob", users())
            self.assertIn("alice", users())
            r = n.doveadm("replicator", "remove", "bob", check=False)
            self.assertEqual(r.returncode, 64, r)  # as 2.3: exit 64, "User not found"
            self.assertIn("Replicator failed: User not found", r.stderr + r.stdout)
            n.doveadm("replicator", "add", "b*")
            wait(lambda: "bob" in users(), 10, "bob back on %s after add b*" % n.name)
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            m = mid("readded-%s" % src.name)
            src.append("bob", m)
            wait(lambda: has(dst, "bob", m), 20, "bob's change on %s after remove/add" % dst.name)

    # ---- 6: noreplicate

    def test_06_noreplicate_never_synced_never_failed(self):
        p = pair()
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            m, ctl = mid("never-%s" % src.name), mid("control-%s" % src.name)
            src.append(NEVER, m)
            src.append("alice", ctl)
            wait(lambda: has(dst, "alice", ctl), 20, "the control user's change on %s" % dst.name)
            src.doveadm("replicator", "replicate", NEVER)
            src.doveadm("replicator", "replicate", "-f", NEVER)
            p.wait_quiet(timeout=60)
            self.assertFalse(has(dst, NEVER, m), "%s's message reached %s" % (NEVER, dst.name))
            for n in p.nodes:
                users = n.replicator_users("*")
                self.assertEqual(users[NEVER]["failed"], "-", users[NEVER])
                self.assertEqual(users[NEVER]["success sync"], "-", users[NEVER])
                det = faultkit.status_detail(n, NEVER)[NEVER]
                self.assertIn("never_sync", det["flags"], det)
                self.assertEqual((det["failed"], det["failures"]), (0, 0), det)
                ov = n.replicator_overview()
                self.assertEqual(ov["Queued 'failed' requests"] + ov["Waiting 'failed' requests"],
                                 0, ov)

    # ---- 7: an idle pair stays idle

    def test_07_idle_pair_stays_quiet(self):
        if OPTS.idle <= 0:
            self.skipTest("--idle 0")
        p = pair()
        p.wait_quiet(timeout=60, stable=2.0)

        def snapshot():
            det = {n.name: {u: (r["last_fast_sync"], r["last_full_sync"])
                            for u, r in faultkit.status_detail(n).items()} for n in p.nodes}
            modseq = {n.name: {u: n.doveadm("mailbox", "status", "-u", u, "highestmodseq",
                                            "INBOX").stdout.strip() for u in USERS}
                      for n in p.nodes}
            return det, modseq
        before = snapshot()
        logs = {n.name: os.path.getsize(n.log_path) for n in p.nodes}
        busy = []
        end = time.monotonic() + OPTS.idle
        while time.monotonic() < end:  # the idle window itself: poll for any dsync
            for n in p.nodes:
                rows = [r for r in n.dsync_status() if r.get("username")]
                if rows:
                    busy.append((n.name, rows))
            time.sleep(0.5)
        after = snapshot()
        self.assertEqual(busy, [], "dsync ran on an idle pair")
        self.assertEqual(before[0], after[0], "a sync was recorded during the idle window")
        self.assertEqual(before[1], after[1], "INBOX highestmodseq changed on an idle pair")
        for n in p.nodes:
            self.assertEqual(bad_lines(n, logs[n.name]), [], "node %s log" % n.name)
            with open(n.log_path, "rb") as fh:
                fh.seek(logs[n.name])
                tail = fh.read().decode(errors="replace")
            self.assertNotIn("Warning:", tail, "node %s warned while idle" % n.name)

    # ---- 8: clean logs

    def test_08_clean_logs_same_replicator(self):
        p = pair()
        for n in p.nodes:
            # from the moment both nodes were up: while the pair starts, the first node's
            # start-up syncs may find the other's doveadm port not listening yet
            # (doveadm's "connect(...) failed: Connection refused" Error, then the
            # breaker's probe; seen once in CI under load)
            self.assertEqual(bad_lines(n, STATE["log_start"][n.name]), [], "node %s log" % n.name)
            # every sync went to service replicator-dsync (the settings module
            # registers it on 2.4), none fell back to doveadm_socket_path
            self.assertNotIn("sending dsync requests to", n.log_text(),
                             "node %s fell back from replicator-dsync" % n.name)
            self.assertEqual(faultkit.replicator_pid(n), STATE["pids"][n.name],
                             "node %s: the replicator restarted" % n.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dovecot", choices=("2.4", "mixed"), default="2.4")
    ap.add_argument("--prefix", help="this build installed for the host's 2.3 (mixed only)")
    ap.add_argument("--prefix24", help="the 2.4 stage inside the root "
                                       "(default: scripts/dovecot24-build.sh --print-stage)")
    ap.add_argument("--idle", type=int, default=60, help="idle window of test_07 in s (0: skip)")
    ap.add_argument("--port-base", type=int)
    ap.add_argument("--keep", action="store_true")
    a, rest = ap.parse_known_args()
    for k in ("dovecot", "prefix", "prefix24", "idle", "port_base", "keep"):
        setattr(OPTS, k, getattr(a, k))
    if os.geteuid() != 0:
        print("test_dovecot24: needs root; skipped", file=sys.stderr)
        return 77
    prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    r = prog.result
    if r.testsRun and len(r.skipped) == r.testsRun:
        return 77
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
