#!/usr/bin/env python3
"""e2e-slow-replica: a slow replica must not starve the others (issue 14).

replication_max_conns = 2. Users s1..s3 reach the other server through a TCP proxy
the test controls (userdb mail_replica=tcp:127.0.0.1:<proxy>, both directions),
d1, d2 use the pair's direct mail_replica. Then:
  * the proxies throttle to --kbps KB/s per connection and direction (a slow
    replica) and s1..s3 each get a big message (--big-kb KB) on A: their dsyncs
    take many seconds each;
  * meanwhile d1 and d2 change on A round after round: each change is on B within
    15 s, while the slow dsyncs run (A's dsync-status shows one);
  * A never runs more than one slow dsync at once (the automatic cap:
    replication_max_conns_per_replica = 0, half of 2 while the direct replica is
    active); the slow users wait, they are never failed;
  * at the end, still throttled, every user's INBOX holds the same message-ids on
    A and B (each exactly once), `doveadm replicator verify` on A reports every
    user in sync, and no user is failed.
With --no-cap the replicator runs with replication_max_conns_per_replica = 2 (no
cap: the behaviour before issue 14): the direct users' bound is expected to fail.
Needs root (private Dovecot masters); exits 77 otherwise.
Usage: test_slow_replica.py --prefix PREFIX [--kbps N] [--big-kb N] [--port-base N]
                            [--no-cap] [--keep]
"""

import argparse
import base64
import collections
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402
import test_faults  # noqa: E402
import test_verify  # noqa: E402  (verify() as the oracle)
from faultkit import status_detail  # noqa: E402
from test_faults import PairTest, wait  # noqa: E402

OPTS = argparse.Namespace(kbps=16, big_kb=400, no_cap=False)
DIRECT_BOUND = 15.0


def inbox_ids(node, user):
    return collections.Counter((node.messages(user) or {}).keys())


def append_big(node, user, msgid, kb):
    """APPEND a message of about `kb` KB (random base64 text: not compressible)."""
    raw = base64.encodebytes(os.urandom(kb * 1024 * 3 // 4)).decode().replace("\n", "\r\n")
    c = node.imap(user, timeout=60)
    try:
        typ, data = c.append("INBOX", None, None, dovepair.make_message(msgid, body=raw))
        if typ != "OK":
            raise RuntimeError("APPEND of %d KB for %s: %s %r" % (kb, user, typ, data))
    finally:
        c.logout()


class SlowReplica(PairTest):
    SLOW = ("s1", "s2", "s3")
    DIRECT = ("d1", "d2")
    USERS = SLOW + DIRECT
    PAIR_ARGS = {"max_conns": 2}

    @classmethod
    def configure(cls, pair):
        if OPTS.no_cap:
            pair.extra_conf = "plugin {\n  replication_max_conns_per_replica = 2\n}"

    def test_slow_replica_does_not_starve_the_others(self):
        p = self.pair
        a, b = p.a, p.b
        a_pid, b_pid = faultkit.replicator_pid(a), faultkit.replicator_pid(b)
        to_b, to_a = faultkit.proxied_replicas(p, self.SLOW)
        try:
            written = {u: [] for u in self.USERS}
            # both paths work, and A has seen both replicas recently
            for u in self.USERS:
                mid = "warm-%s-%s@e2e" % (u, uuid.uuid4().hex[:6])
                a.append(u, mid)
                written[u].append(mid)
            wait(lambda: all(written[u][-1] in (b.messages(u) or {}) for u in self.USERS), 30,
                 "warm-up changes on B")
            p.wait_quiet()
            self.assertGreater(to_b.forwarded, 0)

            to_b.throttle(OPTS.kbps * 1024)
            to_a.throttle(OPTS.kbps * 1024)
            t_slow = time.monotonic()
            for u in self.SLOW:
                mid = "big-%s-%s@e2e" % (u, uuid.uuid4().hex[:6])
                append_big(a, u, mid, OPTS.big_kb)
                written[u].append(mid)
            wait(lambda: any(r.get("username") in self.SLOW for r in a.dsync_status()), 15,
                 "a slow user's dsync running on A")

            direct_secs = []
            max_slow_slots = 0
            rounds_during_slow = 0
            rounds = 0
            while True:
                # dsyncs only: a held user's userdb lookup shows with type "-"
                slots = [r.get("username") for r in a.dsync_status() if r.get("type") != "-"]
                slow_now = [u for u in slots if u in self.SLOW]
                max_slow_slots = max(max_slow_slots, len(slow_now))
                big_done = all(written[u][-1] in (b.messages(u) or {}) for u in self.SLOW)
                if big_done or time.monotonic() - t_slow > 600:
                    break
                mids = {}
                for u in self.DIRECT:
                    mids[u] = "round-%d-%s-%s@e2e" % (rounds, u, uuid.uuid4().hex[:6])
                    a.append(u, mids[u])
                    written[u].append(mids[u])
                t0 = time.monotonic()
                wait(lambda: all(mids[u] in (b.messages(u) or {}) for u in self.DIRECT), DIRECT_BOUND,
                     "round %d: the direct users' changes on B within %.0f s while the slow "
                     "replica's users sync (dsync-status %s)" % (rounds, DIRECT_BOUND, slots))
                direct_secs.append(time.monotonic() - t0)
                if slow_now:
                    rounds_during_slow += 1
                rows = status_detail(a)
                for u in self.USERS:
                    self.assertEqual(rows[u]["failed"], 0, rows[u])
                rounds += 1
            slow_secs = time.monotonic() - t_slow
            self.assertTrue(big_done, "the big messages did not reach B in %.0f s" % slow_secs)
            self.assertGreaterEqual(rounds_during_slow, 3,
                                    "too few rounds while a slow dsync ran (%d of %d): the "
                                    "slow replica is not slow" % (rounds_during_slow, rounds))
            self.assertLessEqual(max_slow_slots, 1, "A ran %d slow dsyncs at once (cap 1)" %
                                 max_slow_slots)

            # converged (still throttled): the same message-ids on both, once each
            p.wait_quiet(timeout=120)
            for u in self.USERS:
                on_a, on_b = inbox_ids(a, u), inbox_ids(b, u)
                self.assertEqual(on_a, on_b, "%s differs: only A %s, only B %s" % (
                    u, sorted(on_a - on_b), sorted(on_b - on_a)))
                self.assertEqual([m for m, n in on_a.items() if n > 1], [], "%s: duplicates" % u)
                for m in written[u]:
                    self.assertIn(m, on_a, "%s lost %s" % (u, m))

            test_verify.stage_modules(p.root, test_faults.OPTS.prefix)

            def verified():
                rc, rows, _ = test_verify.verify(a)
                return (rc == 0 and all(rows.get(u, {}).get("status") == "in sync"
                                        for u in self.USERS) and rows)
            wait(verified, 120, "doveadm replicator verify on A: every user in sync", interval=1)
            for node in (a, b):
                rows = status_detail(node)
                for u in self.USERS:
                    self.assertEqual(rows[u]["failed"], 0, (node.name, rows[u]))
            self.assertEqual(faultkit.replicator_pid(a), a_pid)
            self.assertEqual(faultkit.replicator_pid(b), b_pid)
            print("slow-replica: %d KB/s, %d x %d KB: slow phase %.0f s, %d direct rounds (%d "
                  "while a slow dsync ran), direct changes on B in max %.1f s, at most %d slow "
                  "dsync(s) at once on A" % (
                      OPTS.kbps, len(self.SLOW), OPTS.big_kb, slow_secs, rounds,
                      rounds_during_slow, max(direct_secs or [0]), max_slow_slots),
                  file=sys.stderr)
            self.timing("slow phase (big messages on B)", slow_secs)
            self.timing("direct change on B, max during the slow phase", max(direct_secs or [0]))
        finally:
            to_b.close()
            to_a.close()
        self.assert_no_crash()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--kbps", type=int, default=OPTS.kbps)
    ap.add_argument("--big-kb", type=int, default=OPTS.big_kb)
    ap.add_argument("--no-cap", action="store_true")
    ap.add_argument("--port-base", type=int, default=test_faults.OPTS.port_base)
    ap.add_argument("--keep", action="store_true")
    opts, rest = ap.parse_known_args()
    OPTS.kbps, OPTS.big_kb, OPTS.no_cap = opts.kbps, opts.big_kb, opts.no_cap
    test_faults.OPTS.prefix = os.path.abspath(opts.prefix)
    test_faults.OPTS.port_base, test_faults.OPTS.keep = opts.port_base, opts.keep
    if os.geteuid() != 0:
        print("slow-replica: needs root (private Dovecot masters): skipped", file=sys.stderr)
        return 77
    prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
