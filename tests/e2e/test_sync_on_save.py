#!/usr/bin/env python3
"""Sync-on-save on a real Dovecot 2.3 pair running our plugin and daemon (issue 5).

The pair (tests/e2e/dovepair.py, `ours` mode) has `replication_sync_timeout = 2s`
(with a unit, which stock 2.3 rejects) in plugin {}. Then:

  test_01  an IMAP APPEND on A returns with the message ALREADY on B (checked once,
           right after APPEND returns: no polling), for appends on one long session
           and on fresh sessions;
  test_02  concurrent APPENDs for the same user from several connections: each
           returns with its own message on B;
  test_03  B down: APPEND still succeeds within about the timeout, and the message
           reaches B after B comes back (polled, 30 s deadline);
  test_04  no Panic / unexpected Fatal, the timeout value was accepted, our
           replicator's pid never changed.

Usage: test_sync_on_save.py --prefix PREFIX [--port-base N] [--keep] [unittest args...]
Environment defaults: DREPL_PREFIX, DREPL_E2E_SYNC_PORT_BASE. Needs root.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402

SYNC_TIMEOUT_SECS = 2
OPTS = argparse.Namespace(
    prefix=os.environ.get("DREPL_PREFIX"),
    port_base=int(os.environ["DREPL_E2E_SYNC_PORT_BASE"]) if os.environ.get("DREPL_E2E_SYNC_PORT_BASE") else None,
    keep=False)
STATE = {"pair": None, "failed": False, "pid": None, "log_start": {}, "timings": []}
USERS = ("alice", "bob", "carol")


def pair():
    return STATE["pair"]


def setUpModule():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (private Dovecot masters)")
    if not OPTS.prefix:
        raise RuntimeError("give --prefix PREFIX (an install of this build)")
    root = tempfile.mkdtemp(prefix="drepl-faults-sync-", dir="/tmp")
    base = OPTS.port_base if OPTS.port_base is not None else faultkit.pick_block(lo=35500)
    p = dovepair.Pair(root, port_base=base, prefix=OPTS.prefix, users=USERS,
                      extra_conf="plugin {\n  replication_sync_timeout = %ds\n}" % SYNC_TIMEOUT_SECS)
    STATE["pair"] = p
    t0 = time.monotonic()
    try:
        p.create()
        p.start()
    except BaseException:
        p.stop()
        print("sync-on-save: pair kept in %s" % p.root, file=sys.stderr)
        raise
    STATE["pid"] = faultkit.replicator_pid(p.a)
    STATE["log_start"] = {n.name: faultkit.log_size(n) for n in p.nodes}
    print("sync-on-save: pair up in %.1f s (IMAP %d/%d, doveadm %d/%d, root %s)" % (
        time.monotonic() - t0, p.a.imap_port, p.b.imap_port, p.a.doveadm_port,
        p.b.doveadm_port, p.root), file=sys.stderr, flush=True)


def tearDownModule():
    p = pair()
    if not p:
        return
    p.stop_after_tests(STATE["failed"])
    if STATE["timings"]:
        print("\nsync-on-save timings:", file=sys.stderr)
        for name, secs in STATE["timings"]:
            print("  %-50s %6.3f s" % (name, secs), file=sys.stderr)
    if STATE["failed"] or OPTS.keep:
        print("sync-on-save: pair kept in %s" % p.root, file=sys.stderr)
    else:
        shutil.rmtree(p.root, ignore_errors=True)


def new_mid(tag):
    return "%s-%s@e2e" % (tag, uuid.uuid4().hex[:12])


class SyncOnSave(unittest.TestCase):

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            STATE["failed"] = True
        return out

    def append_then_check_b(self, session, user, tag):
        """APPENDs on A through `session`; returns (msgid, seconds APPEND took,
        whether the message was on B the moment APPEND returned)."""
        mid = new_mid(tag)
        t0 = time.monotonic()
        session.append(mid)
        took = time.monotonic() - t0
        present = mid in (pair().b.messages(user) or {})  # once, no polling
        return mid, took, present

    def test_01_append_returns_with_message_on_b(self):
        p = pair()
        p.wait_quiet()
        took = []
        with p.a.session("alice") as s:  # one long session
            for i in range(4):
                mid, secs, present = self.append_then_check_b(s, "alice", "sos-long%d" % i)
                self.assertTrue(present, "%s not on B when APPEND returned (%.3f s)" % (mid, secs))
                took.append(secs)
        for u in USERS:  # fresh sessions, other users
            with p.a.session(u) as s:
                mid, secs, present = self.append_then_check_b(s, u, "sos-fresh")
                self.assertTrue(present, "%s not on B when APPEND returned (%.3f s)" % (mid, secs))
                took.append(secs)
        for secs in took:
            self.assertLess(secs, SYNC_TIMEOUT_SECS, "an APPEND waited out the timeout")
        STATE["timings"].append(("APPEND with sync-on-save, max of %d" % len(took), max(took)))
        STATE["timings"].append(("APPEND with sync-on-save, median", sorted(took)[len(took) // 2]))

    def test_02_concurrent_appends_same_user(self):
        p = pair()
        p.wait_quiet()
        nconn, per_conn = 4, 3
        results, errors = [], []
        start = threading.Barrier(nconn)

        def worker(k):
            try:
                with p.a.session("bob") as s:
                    start.wait(10)
                    for i in range(per_conn):
                        results.append(self.append_then_check_b(s, "bob", "sos-conc%d-%d" % (k, i)))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("connection %d: %r" % (k, e))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(nconn)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), nconn * per_conn)
        missing = ["%s (%.3f s)" % (m, secs) for m, secs, present in results if not present]
        self.assertEqual(missing, [], "not on B when their APPEND returned")
        STATE["timings"].append(("%d concurrent APPENDs (%d conns), all done" % (
            len(results), nconn), time.monotonic() - t0))
        STATE["timings"].append(("concurrent APPEND, slowest", max(r[1] for r in results)))
        msgs = p.b.messages("bob")
        self.assertTrue(all(m in msgs for m, _, _ in results))

    def test_03_replica_down(self):
        p = pair()
        a, b = p.a, p.b
        p.wait_quiet()
        self.assertEqual(b.stop(), [], "B left processes behind")
        mids = []
        try:
            with a.session("carol") as s:
                for i in range(2):  # the 2nd one meets an open circuit breaker
                    mid = new_mid("sos-down%d" % i)
                    t0 = time.monotonic()
                    s.append(mid)  # raises unless OK
                    secs = time.monotonic() - t0
                    STATE["timings"].append(("APPEND #%d with B down" % (i + 1), secs))
                    self.assertLess(secs, SYNC_TIMEOUT_SECS + 1.5, "APPEND blocked too long with B down")
                    if i > 0:
                        # the replicator knows B is down: "-" at once, not at the next probe
                        self.assertLess(secs, 1.0, "APPEND waited for the circuit breaker's probe")
                    mids.append(mid)
            for mid in mids:
                self.assertIn(mid, a.messages("carol"))
        finally:
            b.start()
        t_up = time.monotonic()
        dovepair.wait_until(lambda: all(m in (b.messages("carol") or {}) for m in mids), 30, 0.2,
                            what="the messages saved while B was down on B")
        STATE["timings"].append(("B back -> messages saved meanwhile on B", time.monotonic() - t_up))
        # the plugin fell back to asynchronous replication, and said so
        warn = a.log_lines(("replication: Synchronous replication",))
        self.assertTrue(warn, "no fallback warning from the plugin")
        # with B up again, sync-on-save works again
        p.wait_quiet()
        with a.session("carol") as s:
            mid, secs, present = self.append_then_check_b(s, "carol", "sos-after")
        self.assertTrue(present, "%s not on B when APPEND returned (%.3f s)" % (mid, secs))

    def test_04_logs_and_pid(self):
        p = pair()
        self.assertEqual(faultkit.replicator_pid(p.a), STATE["pid"], "A's replicator restarted")
        for n in p.nodes:
            start = STATE["log_start"][n.name]
            self.assertEqual(faultkit.crash_lines(n, start), [], "node %s" % n.name)
            self.assertEqual(n.log_lines(("Invalid replication_sync_timeout",)), [])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", default=OPTS.prefix, help="install prefix of our build")
    ap.add_argument("--port-base", type=int, default=OPTS.port_base,
                    help="IMAP A/B = base, base+1; doveadm A/B = base+2, base+3 (default: a free block from 35500)")
    ap.add_argument("--keep", action="store_true", help="keep the pair directory")
    opts, rest = ap.parse_known_args(argv)
    vars(OPTS).update(vars(opts))
    unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
