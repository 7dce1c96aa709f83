#!/usr/bin/env python3
"""End-to-end replication test on a real Dovecot 2.3 pair (tests/e2e/dovepair.py).

Proves over IMAP that APPEND, flag changes, EXPUNGE and mailbox CREATE/RENAME/DELETE
replicate A->B and B->A, each within DEADLINE seconds (polled, no fixed sleeps); that
a keyword removal or an expunge on one node after the other node's flag change
reaches that node and is not undone by either node's next sync (test_08a/08b); that
the pair converges to identical state; that in our mode only our daemon and plugin run
(no stock replicator/aggregator process, stock plugin never mapped); and that neither
log has a Panic or Fatal line, start-up and shutdown included.

Usage: test_replication.py (--prefix PREFIX | --stock) [--root DIR] [--port-base N]
                           [--deadline SECS] [--keep] [unittest args...]
Environment defaults: DREPL_PREFIX, DREPL_E2E_STOCK=1, DREPL_E2E_PORT_BASE,
DREPL_E2E_DEADLINE. Needs root.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402

OPTS = argparse.Namespace(prefix=os.environ.get("DREPL_PREFIX"),
                          stock=os.environ.get("DREPL_E2E_STOCK") == "1",
                          root=None,
                          port_base=int(os.environ["DREPL_E2E_PORT_BASE"]) if os.environ.get("DREPL_E2E_PORT_BASE") else None,
                          deadline=float(os.environ.get("DREPL_E2E_DEADLINE", "30")),
                          keep=False,
                          stock_daemon=os.environ.get("DREPL_E2E_STOCK_DAEMON") == "1")
STATE = {"pair": None, "failed": False, "timings": [], "made_root": False}
USER = "alice"


def pair():
    return STATE["pair"]


def setUpModule():
    if os.geteuid() != 0:
        raise RuntimeError("the e2e test needs root (it runs private Dovecot masters)")
    if not OPTS.stock and not OPTS.prefix:
        raise RuntimeError("give --prefix PREFIX (our install) or --stock")
    root = OPTS.root
    if not root:
        # under /tmp: vmail must be able to reach its home directories
        root = tempfile.mkdtemp(prefix="drepl-e2e-", dir="/tmp")
        STATE["made_root"] = True
    p = dovepair.Pair(root, port_base=OPTS.port_base, prefix=OPTS.prefix, stock=OPTS.stock,
                      stock_daemon=OPTS.stock_daemon)
    STATE["pair"] = p
    print("e2e: %s mode, root %s, IMAP %d/%d, doveadm %d/%d%s" % (
        p.mode, p.root, p.a.imap_port, p.b.imap_port,
        p.a.doveadm_port, p.b.doveadm_port,
        ", daemon %s" % p.daemon_path if p.daemon_path else ""), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        p.create()
        p.start()  # dumps both logs itself on failure
    except BaseException:
        # unittest skips tearDownModule when setUpModule fails: stop the pair here
        p.stop()
        print("e2e: pair kept in %s" % p.root, file=sys.stderr)
        raise
    print("e2e: pair up and idle after %.2f s" % (time.monotonic() - t0), file=sys.stderr, flush=True)


def tearDownModule():
    p = pair()
    if not p:
        return
    p.stop_after_tests(STATE["failed"])
    if STATE["timings"]:
        print("\ne2e timings (change done -> visible on the other node):", file=sys.stderr)
        for name, secs in STATE["timings"]:
            print("  %-44s %6.3f s" % (name, secs), file=sys.stderr)
    if STATE["failed"] or OPTS.keep:
        print("e2e: pair kept in %s" % p.root, file=sys.stderr)
    elif STATE["made_root"]:
        shutil.rmtree(p.root, ignore_errors=True)


class PairCase(unittest.TestCase):
    """Marks the run as failed (so logs get dumped and the root kept) on any failure."""

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            STATE["failed"] = True
        return out

    def settle(self):
        """Waits (bounded) until no replication is queued or running on either node."""
        pair().wait_quiet(timeout=30)

    def converge(self, name, pred):
        """Polls pred until true within the deadline; records and returns the time."""
        try:
            _, secs = dovepair.wait_until(pred, OPTS.deadline, 0.05, what=name)
        except dovepair.Timeout as e:
            self.fail(str(e))
        STATE["timings"].append((name, secs))
        return secs


def _nodes(direction):
    p = pair()
    return (p.a, p.b) if direction == "A->B" else (p.b, p.a)


def _msgs(node, mailbox="INBOX"):
    return node.messages(USER, mailbox) or {}


class T1Replication(PairCase):
    """Each change on one node shows up on the other, in both directions. The changing
    IMAP session stays open while we wait (so the plugin's own flush timer must send the
    notification), except in test_00 where it logs out at once (flush at user deinit)."""

    def _append(self, direction, s):
        src, dst = _nodes(direction)
        mid = "append-%s@e2e" % uuid.uuid4().hex[:12]
        self.settle()
        s.append(mid)
        self.converge("APPEND %s" % direction, lambda: mid in _msgs(dst))
        self.assertIn(mid, _msgs(src))
        return mid

    def _flags(self, direction):
        src, dst = _nodes(direction)
        with src.session(USER) as s:
            mid = self._append(direction, s)
            self.settle()
            s.store(mid, "+FLAGS", r"\Flagged $Label1")
            self.converge("flags +\\Flagged $Label1 %s" % direction,
                          lambda: {r"\Flagged", "$Label1"} <= _msgs(dst).get(mid, set()))
            self.settle()
            s.store(mid, "-FLAGS", r"\Flagged")
            self.converge("flags -\\Flagged %s" % direction,
                          lambda: r"\Flagged" not in _msgs(dst).get(mid, {r"\Flagged"}))
        self.assertIn("$Label1", _msgs(dst)[mid])

    def _expunge(self, direction):
        src, dst = _nodes(direction)
        with src.session(USER) as s:
            mid = self._append(direction, s)
            keep = self._append(direction, s)
            self.settle()
            s.expunge(mid)
            self.converge("EXPUNGE %s" % direction, lambda: mid not in _msgs(dst))
        self.assertNotIn(mid, _msgs(src))
        self.assertIn(keep, _msgs(dst), "expunge removed the wrong message")

    def _mailboxes(self, direction):
        src, dst = _nodes(direction)
        box = "Proj-%s-%s" % (direction.replace("->", "to"), uuid.uuid4().hex[:8])
        new = box + "-renamed"
        mid = "inbox2-%s@e2e" % uuid.uuid4().hex[:12]
        with src.session(USER) as s:
            self.settle()
            s.create(box)
            self.converge("CREATE %s" % direction, lambda: box in dst.mailboxes(USER))
            self.settle()
            s.append(mid, mailbox=box)
            self.converge("APPEND into new mailbox %s" % direction, lambda: mid in _msgs(dst, box))
            self.settle()
            s.rename(box, new)
            self.converge("RENAME %s" % direction,
                          lambda: (lambda names: new in names and box not in names)(dst.mailboxes(USER)))
            self.assertIn(mid, _msgs(dst, new), "message did not move with the renamed mailbox")
            self.settle()
            s.delete(new)
            self.converge("DELETE %s" % direction, lambda: new not in dst.mailboxes(USER))

    def test_00_append_then_logout(self):
        for direction in ("A->B", "B->A"):
            src, dst = _nodes(direction)
            mid = "logout-%s@e2e" % uuid.uuid4().hex[:12]
            self.settle()
            src.append(USER, mid)  # logs out right away
            self.converge("APPEND+LOGOUT %s" % direction, lambda: mid in _msgs(dst))

    def test_01_append_a_to_b(self):
        with pair().a.session(USER) as s:
            self._append("A->B", s)

    def test_02_append_b_to_a(self):
        with pair().b.session(USER) as s:
            self._append("B->A", s)

    def test_03_flags_a_to_b(self):
        self._flags("A->B")

    def test_04_flags_b_to_a(self):
        self._flags("B->A")

    def test_05_expunge_a_to_b(self):
        self._expunge("A->B")

    def test_06_expunge_b_to_a(self):
        self._expunge("B->A")

    def test_07_mailboxes_a_to_b(self):
        self._mailboxes("A->B")

    def test_08_mailboxes_b_to_a(self):
        self._mailboxes("B->A")

    def _cross(self, direction, change, check):
        """A message from src reaches dst; src sets \\Flagged $Label2 on it and that
        reaches dst; then dst makes `change`, which must reach src and stay on dst
        through the syncs that follow (each node's replicator keeps a dsync state:
        one from before the other node's dsync would undo the change)."""
        src, dst = _nodes(direction)
        mid = "cross-%s@e2e" % uuid.uuid4().hex[:12]
        self.settle()
        src.append(USER, mid)
        self.converge("cross APPEND %s" % direction, lambda: mid in _msgs(dst))
        self.settle()
        src.store(USER, mid, "+FLAGS", r"\Flagged $Label2")
        self.converge("cross flags %s" % direction,
                      lambda: {r"\Flagged", "$Label2"} <= _msgs(dst).get(mid, set()))
        self.settle()
        change(dst, mid)
        back = "%s->%s" % tuple(reversed(direction.split("->")))
        self.converge("cross %s %s" % (check.__name__, back), lambda: check(src, mid))
        self.settle()
        # Still true on both nodes once every sync it caused has run.
        self.assertTrue(check(src, mid), "undone on the origin node")
        self.assertTrue(check(dst, mid), "undone on the node that made the change")

    @staticmethod
    def _drop_label(node, mid):
        node.store(USER, mid, "-FLAGS", "$Label2")

    @staticmethod
    def label_removed(node, mid):
        flags = _msgs(node).get(mid)
        return flags is not None and "$Label2" not in flags and r"\Flagged" in flags

    @staticmethod
    def expunged(node, mid):
        return mid not in _msgs(node)

    def test_08a_keyword_set_on_one_node_removed_on_the_other(self):
        for direction in ("A->B", "B->A"):
            self._cross(direction, self._drop_label, self.label_removed)

    def test_08b_expunge_after_the_other_nodes_flag_change(self):
        for direction in ("A->B", "B->A"):
            self._cross(direction, lambda n, m: n.expunge(USER, m), self.expunged)

    def test_09_converged(self):
        """Both nodes end with the same mailboxes, messages and flags (\\Recent aside)."""
        p = pair()

        def state(n):
            return {box: {m: f - {r"\Recent"} for m, f in (n.messages(USER, box) or {}).items()}
                    for box in n.mailboxes(USER)}
        self.converge("full state identical", lambda: state(p.a) == state(p.b))
        self.assertGreater(len(state(p.a)["INBOX"]), 0)


class T1bInboxOnBothSides(PairCase):
    """A user whose INBOX was created on both nodes before any sync (different mailbox
    GUIDs), as when a new user gets mail on both servers: the pair converges. With
    Dovecot 2.3.19's Maildir every two-way dsync swaps the two GUIDs and ends with a
    desync; our replicator breaks the tie with one one-way run (desync-recovery.h).
    Stock's replicator retries every 5 minutes forever, so the stock and plugin-only
    modes skip it."""

    OTHER = "bob"

    def _guid(self, node):
        # Without our plugin: opening INBOX creates it, and nothing is notified.
        out = node.doveadm("-o", "mail_plugins=", "mailbox", "status", "-u", self.OTHER,
                           "guid", "INBOX").stdout
        return out.strip().rpartition("guid=")[2]

    def test_inbox_created_on_both_sides_converges(self):
        if OPTS.stock or OPTS.stock_daemon:
            # the recovery is our daemon's: Dovecot's own replicator (full stock or
            # plugin-only mode) retries every 5 minutes forever
            self.skipTest("stock 2.3.19 never converges here (Dovecot bug fixed in 2.3.20)")
        p = pair()
        self.settle()
        # The pair's start-up made bob's INBOX already: make him new on both nodes.
        for n in p.nodes:
            shutil.rmtree(os.path.join(n.mail_dir, self.OTHER, "Maildir"), ignore_errors=True)
        ga, gb = self._guid(p.a), self._guid(p.b)
        self.assertTrue(ga and gb and ga != gb, "INBOX GUIDs A %r, B %r" % (ga, gb))
        mid = "both-inbox-%s@e2e" % uuid.uuid4().hex[:12]
        p.a.append(self.OTHER, mid)  # with our plugin: A syncs bob
        self.converge("INBOX on both sides converges",
                      lambda: mid in (p.b.messages(self.OTHER) or {})
                      and self._guid(p.a) == self._guid(p.b))
        # (2.3.19.1's bug is what made the recovery necessary: it ran.)
        self.assertIn("replication(%s): one-way sync to" % self.OTHER, p.a.log_text())


class T2Processes(PairCase):
    """The pair runs the replication pieces it was configured with, and only those."""

    def test_processes(self):
        p = pair()
        our_daemon = os.path.realpath(p.daemon_path) if p.daemon_path else None
        our_plugin = os.path.realpath(p.plugin_path)
        for n in p.nodes:
            # a fresh change spawns the aggregator; an open session keeps imap alive
            mid = "proc-%s@e2e" % uuid.uuid4().hex[:12]
            n.append(USER, mid)
            peer = p.b if n is p.a else p.a
            self.converge("APPEND node %s (process check)" % n.name, lambda: mid in _msgs(peer))
            sess = n.imap(USER)
            try:
                sess.select("INBOX")
                procs = n.processes()
                exes = {i["exe"] for i in procs}
                desc = "\n".join("%d %s %s" % (i["pid"], i["exe"], i["cmdline"]) for i in procs)
                imaps = [i for i in procs if i["exe"] == "/usr/lib/dovecot/imap"]
                self.assertTrue(imaps, "no imap process under node %s:\n%s" % (n.name, desc))
                if p.stock:
                    self.assertIn(dovepair.STOCK_REPLICATOR, exes, desc)
                    self.assertTrue(any(dovepair.STOCK_PLUGIN in i["maps"] for i in imaps), desc)
                    continue
                for i in n.processes():
                    self.assertNotIn(dovepair.STOCK_PLUGIN, i["maps"],
                                     "stock replication plugin mapped by %d %s" % (i["pid"], i["cmdline"]))
                self.assertTrue(any(our_plugin in i["maps"] for i in imaps),
                                "our plugin %s not mapped by any imap process" % our_plugin)
                if p.stock_daemon:
                    self.assertIn(dovepair.STOCK_REPLICATOR, exes, desc)
                    continue
                self.assertNotIn(dovepair.STOCK_REPLICATOR, exes, desc)
                self.assertNotIn(dovepair.STOCK_AGGREGATOR, exes, desc)
                # replicator.asan: the sanitizer stage's build of the same daemon
                our_exes = (our_daemon, our_daemon + ".asan")
                ours = [i for i in procs if i["exe"] in our_exes]
                repl = [i for i in ours if "--aggregator" not in i["cmdline"]]
                self.assertEqual(len(repl), 1, "want exactly one replicator (ours):\n" + desc)
                dovepair.wait_until(
                    lambda: any("--aggregator" in i["cmdline"] and i["exe"] in our_exes
                                for i in n.processes()), 5,
                    what="our aggregator process on node %s:\n%s" % (n.name, desc))
            finally:
                sess.logout()


class T2Doveadm(PairCase):
    """The stock `doveadm replicator ...` commands work against the running replicator."""

    def test_doveadm_replicator_commands(self):
        p = pair()
        for n in p.nodes:
            out = n.doveadm("replicator", "status").stdout
            labels = [l.rsplit(None, 1)[0].strip() for l in out.splitlines() if l.strip()]
            self.assertEqual(labels, [
                "Queued 'sync' requests", "Queued 'high' requests", "Queued 'low' requests",
                "Queued 'failed' requests", "Queued 'full resync' requests",
                "Waiting 'failed' requests", "Total number of known users"], out)
            self.assertEqual(n.replicator_overview()["Total number of known users"], len(p.users))
            self.assertEqual(set(n.replicator_users("*")), set(p.users))
            self.assertEqual(set(n.replicator_users("a*")), {"alice"})
            r = n.doveadm("replicator", "dsync-status", fmt="tab")
            self.assertEqual(r.stdout.splitlines()[0].split("\t"), ["username", "type", "status"])

            self.settle()
            r = n.doveadm("replicator", "replicate", "-p", "high", "alice")
            self.assertEqual(r.stdout.strip(), "1 users updated")
            r = n.doveadm("replicator", "replicate", "-f", "*")
            self.assertEqual(r.stdout.strip(), "%d users updated" % len(p.users))
            self.settle()
            row = n.replicator_users("alice")["alice"]
            self.assertEqual(row["failed"], "-", row)

            n.doveadm("replicator", "remove", "bob")
            self.assertEqual(set(n.replicator_users("*")), {"alice"})
            r = n.doveadm("replicator", "remove", "nobody-such", check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("User not found", r.stdout + r.stderr)
            n.doveadm("replicator", "add", "bob")
            self.assertEqual(set(n.replicator_users("*")), set(p.users))
        self.settle()


class T3Logs(PairCase):
    """Stops the pair: every process must exit with its master, and neither log may
    contain Panic or Fatal (start-up and shutdown included)."""

    def test_clean_shutdown_and_logs(self):
        p = pair()
        leftovers = p.stop()
        for n in p.nodes:
            for l in n.log_lines(("Error:", "Warning:")):
                if "master: Warning: Killed with signal 15" in l:
                    continue  # our own stop()
                print("e2e: note, node %s: %s" % (n.name, l), file=sys.stderr)
        bad = p.bad_log_lines()
        self.assertEqual(bad, {}, "Panic/Fatal in logs:\n" + "\n".join(
            "%s: %s" % (n, l) for n, ls in bad.items() for l in ls))
        self.assertEqual(leftovers, {}, "processes still running after their master exited")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--prefix", default=OPTS.prefix, help="install prefix of our build")
    g.add_argument("--stock", action="store_true", default=OPTS.stock, help="test Dovecot's own replication")
    ap.add_argument("--root", help="pair directory (default: a new /tmp/drepl-e2e-XXXX)")
    ap.add_argument("--port-base", type=int, default=OPTS.port_base)
    ap.add_argument("--deadline", type=float, default=OPTS.deadline, help="seconds per change (default 30; a change normally arrives in well under 1 s, the slack absorbs a loaded CI machine)")
    ap.add_argument("--keep", action="store_true", help="keep the pair directory")
    ap.add_argument("--stock-daemon", action="store_true", default=OPTS.stock_daemon,
                    help="with --prefix: our plugin, Dovecot's own replicator/aggregator")
    opts, rest = ap.parse_known_args(argv)
    if opts.stock:
        opts.prefix = None
    vars(OPTS).update(vars(opts))
    prog = sys.argv[0]
    unittest.main(module=__name__, argv=[prog, "-v"] + rest)


if __name__ == "__main__":
    main()
