#!/usr/bin/env python3
"""e2e-partition: a replica cut off by the network for a while, then back (issue 14).

Users p1..p3 reach the other server through a TCP proxy the test controls (userdb
field mail_replica=tcp:127.0.0.1:<proxy>, both directions: A->B and B->A each have
their own proxy); d1, d2 use the pair's direct mail_replica. Then:
  * partition: both proxies blackhole (connections accepted, no byte moves, open
    ones freeze) for --partition-secs (default 60); meanwhile mail keeps arriving
    on both servers for every user;
  * during it the direct users are unaffected: each change is on the other server
    within 15 s; the partitioned users fail with kind `timeout`
    (replication_dsync_timeout = 5 s here) and the replicator keeps serving;
  * A's log volume stays bounded: at most LOG_LINES_PER_MIN warning/error lines
    of the replicator per minute of partition, whatever the number of changes;
  * heal: within 30 s every change of the partition is on both servers, and every
    user's INBOX holds the same message-ids on A and B (each exactly once).
Needs root (private Dovecot masters); exits 77 otherwise.
Usage: test_partition.py --prefix PREFIX [--partition-secs N] [--port-base N] [--keep]
"""

import argparse
import collections
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultkit  # noqa: E402
import test_faults  # noqa: E402
from faultkit import status_detail  # noqa: E402
from test_faults import PairTest, wait  # noqa: E402

PARTITION_SECS = 60
LOG_LINES_PER_MIN = 30


def inbox_ids(node, user):
    return collections.Counter((node.messages(user) or {}).keys())


class Partition(PairTest):
    CUT = ("p1", "p2", "p3")
    DIRECT = ("d1", "d2")
    USERS = CUT + DIRECT
    PAIR_ARGS = {"extra_conf": "plugin {\n  replication_dsync_timeout = 5 s\n  replication_dsync_handshake_timeout = 3 s\n}"}

    @classmethod
    def configure(cls, pair):
        if os.environ.get("DREPL_E2E_DEBUG"):  # one log line per sync the replicators start
            pair.extra_conf += "\nservice replicator {\n  executable = %s --debug\n}" % pair.daemon_path

    def test_partition_then_back(self):
        p = self.pair
        a, b = p.a, p.b
        a_pid, b_pid = faultkit.replicator_pid(a), faultkit.replicator_pid(b)
        to_b, to_a = faultkit.proxied_replicas(p, self.CUT)
        try:
            # the proxied path works both ways before the partition
            for src, dst in ((a, b), (b, a)):
                mids = {u: "before-%s-%s-%s@e2e" % (src.name, u, uuid.uuid4().hex[:6]) for u in self.CUT}
                for u in self.CUT:
                    src.append(u, mids[u])
                wait(lambda: all(mids[u] in (dst.messages(u) or {}) for u in self.CUT), 30,
                     "changes on %s through the proxy before the partition" % dst.name)
            p.wait_quiet()
            self.assertGreater(to_b.forwarded, 0)

            log_before = {n.name: faultkit.log_size(n) for n in p.nodes}
            to_b.blackhole()
            to_a.blackhole()
            t_cut = time.monotonic()
            written = {u: [] for u in self.USERS}
            direct_secs = []
            rounds = 0
            while time.monotonic() - t_cut < OPTS.partition_secs:
                for node, other in ((a, b), (b, a)):
                    for u in self.USERS:
                        mid = "cut-%d-%s-%s-%s@e2e" % (rounds, node.name, u, uuid.uuid4().hex[:6])
                        node.append(u, mid)
                        written[u].append((node.name, mid))
                    t0 = time.monotonic()
                    for u in self.DIRECT:
                        mid = written[u][-1][1]
                        wait(lambda: mid in (other.messages(u) or {}), 15,
                             "%s's change on %s during the partition (direct path)" % (u, other.name))
                    direct_secs.append(time.monotonic() - t0)
                rounds += 1
            rows = status_detail(a)
            failed_cut = [u for u in self.CUT if rows[u]["failed"] == 1]
            self.assertTrue(failed_cut, "no partitioned user failed on A: %s" % rows)
            for u in failed_cut:
                self.assertEqual(rows[u]["error_kind"], "timeout", rows[u])
            for u in self.DIRECT:
                self.assertEqual(rows[u]["failed"], 0, rows[u])
            cut_secs = time.monotonic() - t_cut
            noisy = {}
            for n in p.nodes:
                lines = [l for l in n.log_text()[log_before[n.name]:].splitlines()
                         if " replicator: " in l and (" Error: " in l or " Warning: " in l)]
                noisy[n.name] = len(lines)
                limit = LOG_LINES_PER_MIN * max(1.0, cut_secs / 60)
                self.assertLessEqual(len(lines), limit, "node %s logged %d replicator lines in %.0f s "
                                     "of partition:\n%s" % (n.name, len(lines), cut_secs,
                                                            "\n".join(lines[:40])))

            to_b.heal()
            to_a.heal()
            t_heal = time.monotonic()
            for node, other in ((a, b), (b, a)):
                wait(lambda: all(all(m in (other.messages(u) or {}) for src, m in written[u]
                                     if src == node.name) for u in self.CUT), 30,
                     "every change of the partition from %s on %s within 30 s of its end" % (
                         node.name, other.name))
            healed = time.monotonic() - t_heal
            p.wait_quiet()
            for u in self.USERS:
                on_a, on_b = inbox_ids(a, u), inbox_ids(b, u)
                self.assertEqual(on_a, on_b, "%s differs: only A %s, only B %s" % (
                    u, sorted(on_a - on_b), sorted(on_b - on_a)))
                self.assertEqual([m for m, n in on_a.items() if n > 1], [], "%s: duplicates" % u)
                for _, m in written[u]:
                    self.assertIn(m, on_a, "%s lost %s" % (u, m))
            wait(lambda: all(r["failed"] == 0 for r in status_detail(a).values()), 30,
                 "no user failed on A after the partition")
            self.assertEqual(faultkit.replicator_pid(a), a_pid)
            self.assertEqual(faultkit.replicator_pid(b), b_pid)
            msg = ("partition: %.0f s, %d rounds, %d messages written; direct users' changes "
                   "arrived in max %.1f s during it; converged %.1f s after the end; replicator "
                   "warning/error lines A=%d B=%d" % (
                       cut_secs, rounds, sum(len(v) for v in written.values()),
                       max(direct_secs), healed, noisy["a"], noisy["b"]))
            print(msg, file=sys.stderr)
            self.timing("partition end -> converged", healed)
        finally:
            to_b.close()
            to_a.close()
        self.assert_no_crash(allow=(r"master: service\((doveadm|replicator-dsync)\): child \d+ killed with signal 9",))


OPTS = argparse.Namespace(partition_secs=PARTITION_SECS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--partition-secs", type=float, default=PARTITION_SECS)
    ap.add_argument("--port-base", type=int, default=test_faults.OPTS.port_base)
    ap.add_argument("--keep", action="store_true")
    opts, rest = ap.parse_known_args()
    OPTS.partition_secs = opts.partition_secs
    test_faults.OPTS.prefix = os.path.abspath(opts.prefix)
    test_faults.OPTS.port_base, test_faults.OPTS.keep = opts.port_base, opts.keep
    if os.geteuid() != 0:
        print("partition: needs root (private Dovecot masters): skipped", file=sys.stderr)
        return 77
    prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
