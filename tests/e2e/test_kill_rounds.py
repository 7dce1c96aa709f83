#!/usr/bin/env python3
"""e2e-kill-rounds: seeded kill -9 rounds under real mail traffic (issue 14).

One Dovecot 2.3 pair (tests/e2e/dovepair.py, our plugin and daemon, replication_max_conns
= 2 so that a drain takes a while) in a free port block of 35000-35990. Then:

  rounds   ROUNDS (default 20) times: 6 IMAP changes (APPENDs, some flag changes) for
           random users on random nodes, in a thread; at a random moment during them
           (0.1-0.8 s), kill -9 of a random node's replicator mid-drain; the traffic
           goes on while it is down; the master starts it again on demand (the
           aggregator reconnects).
  dsync    once: 1000 messages dropped into a user's Maildir/new on A (as another MTA
           would) and that user queued; while its dsync runs, kill -9 of A's
           doveadm-server processes; the traffic goes on (an APPEND per user and node).
  oracle   both queues drain with no user failed; on both nodes every message written
           exists exactly once (no loss, no duplicate); `doveadm replicator verify`
           (test_verify.py's staged doveadm module) says "in sync" for every user.

Prints the seed and a figures line (rounds, kills that hit a running dsync, messages
written, messages verified on both sides, differences). The random choices come from
the seed: DREPL_E2E_SEED=N (or --seed N) replays a run's choices (the timing of the
machine still differs).

Usage: test_kill_rounds.py --prefix PREFIX [--seed N] [--rounds N] [--keep]
Environment: DREPL_E2E_SEED, DREPL_E2E_KILL_ROUNDS, DREPL_E2E_FAULTS_PORT_BASE. Root.
"""

import argparse
import collections
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402
import test_verify  # noqa: E402  (verify() as the oracle)
from faultkit import status_detail  # noqa: E402

OPTS = argparse.Namespace(prefix=None, seed=None, rounds=None, port_base=None, keep=False)
STATE = {"pair": None, "failed": False, "root": None}
USERS = tuple("kr%02d" % i for i in range(1, 9))
DSYNC_BULK = 1000


def wait(pred, timeout, what, interval=0.1):
    return dovepair.wait_until(pred, timeout, interval, what=what)


def message_ids(node, user):
    """Counter of the Message-IDs (without <>) in user's INBOX on node (duplicates count)."""
    out = node.doveadm("fetch", "-u", user, "hdr.message-id", "mailbox", "INBOX", "ALL",
                       timeout=120).stdout
    return collections.Counter(re.findall(r"<([^<>\s]+)>", out))


def drop_into_maildir(node, user, msgids):
    """Writes one message per Message-ID into user's Maildir/new on node, owned by vmail,
    as an MTA delivering straight into the Maildir would (no plugin, no notification)."""
    p = node.pair
    new = os.path.join(node.mail_dir, user, "Maildir", "new")
    t = int(time.time())
    tag = uuid.uuid4().hex[:8]  # unique per call: no name is ever reused
    for i, mid in enumerate(msgids):
        name = "%d.M%dP%d_%s.drop" % (t, i, os.getpid(), tag)
        tmp = os.path.join(node.mail_dir, user, "Maildir", "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(dovepair.make_message(mid, body="bulk %d\r\n" % i + "x" * 1000))
        os.chown(tmp, p.vmail_uid, p.vmail_gid)
        os.rename(tmp, os.path.join(new, name))


def doveadm_server_pids(node):
    return [i["pid"] for i in node.processes() if i["comm"] == "doveadm-server"]


def idle_without_failures():
    """Both replicators quiet (nothing queued or running) and no user failed."""
    p = STATE["pair"]
    if not all(p.node_quiet(n) for n in p.nodes):
        return False
    rows = {n.name: status_detail(n) for n in p.nodes}
    return all(r["failed"] == 0 for x in rows.values() for r in x.values()) and rows


class KillRounds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (private Dovecot masters)")
        if OPTS.seed is None:
            OPTS.seed = int(os.environ.get("DREPL_E2E_SEED") or random.SystemRandom().randrange(1 << 31))
        OPTS.rounds = OPTS.rounds or int(os.environ.get("DREPL_E2E_KILL_ROUNDS") or 20)
        print("\nkill-rounds: seed %d (replay: DREPL_E2E_SEED=%d), %d rounds" % (
            OPTS.seed, OPTS.seed, OPTS.rounds), file=sys.stderr, flush=True)
        root = tempfile.mkdtemp(prefix="drepl-e2e-killrounds-", dir="/tmp")
        os.chmod(root, 0o755)
        STATE["root"] = root
        test_verify.stage_modules(root, OPTS.prefix)
        base = OPTS.port_base if OPTS.port_base is not None else faultkit.pick_block()
        p = dovepair.Pair(os.path.join(root, "pair"), port_base=base, prefix=OPTS.prefix,
                          users=USERS, max_conns=2)
        STATE["pair"] = p
        t0 = time.monotonic()
        try:
            p.create()
            p.start()
        except BaseException:
            p.stop()
            raise
        cls.log_start = {n.name: faultkit.log_size(n) for n in p.nodes}
        print("kill-rounds: pair up in %.1f s (IMAP %d/%d, root %s)" % (
            time.monotonic() - t0, p.a.imap_port, p.b.imap_port, root), file=sys.stderr, flush=True)

    @classmethod
    def tearDownClass(cls):
        p = STATE["pair"]
        if not p:
            return
        p.stop_after_tests(STATE["failed"])
        if STATE["failed"] or OPTS.keep:
            print("kill-rounds: kept %s (seed %d)" % (STATE["root"], OPTS.seed), file=sys.stderr)
        else:
            shutil.rmtree(STATE["root"], ignore_errors=True)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            STATE["failed"] = True
        return out

    def setUp(self):
        self.p = STATE["pair"]
        self.rng = random.Random(OPTS.seed)
        self.written = {u: collections.Counter() for u in USERS}  # msgid -> times written
        self.on_node = {n.name: {u: [] for u in USERS} for n in self.p.nodes}
        self.seq = 0
        self.lock = threading.Lock()

    # ---- traffic

    def plan(self, n):
        """n random changes: [(node name, user, dice)], drawn from the seeded generator
        (before any thread runs, so a seed always gives the same plan)."""
        return [(self.rng.choice(self.p.nodes).name, self.rng.choice(USERS), self.rng.random(),
                 self.rng.random()) for _ in range(n)]

    def traffic(self, tag, plan):
        """Runs a plan by IMAP, one session per change: an APPEND, or (dice < 0.2)
        \\Flagged on a message appended earlier on the same node."""
        for node_name, user, dice, pick in plan:
            node = self.p.a if node_name == "a" else self.p.b
            with node.session(user) as s:
                old = self.on_node[node_name][user]
                if dice < 0.2 and old:
                    try:
                        s.store(old[int(pick * len(old))], "+FLAGS", r"\Flagged")
                    except RuntimeError as e:
                        # Dovecot's Maildir may duplicate a message after an interrupted
                        # dsync ("Expunged message reappeared, giving a new UID"); the
                        # final check counts those. Only then skip this flag change.
                        if not ("found 2" in str(e) and any(
                                "(%s)" % user in l and "Expunged message reappeared" in l
                                for l in node.log_text().splitlines())):
                            raise
                    continue
                with self.lock:
                    self.seq += 1
                    mid = "kr-%s-%d-%s@e2e" % (tag, self.seq, node_name)
                s.append(mid)
                with self.lock:
                    self.written[user][mid] += 1
                    old.append(mid)

    # ---- faults

    def kill_replicator_round(self, r):
        """Traffic on both nodes in a thread; at a random moment during it, kill -9 of
        a random node's replicator; the traffic goes on while it is down."""
        p = self.p
        plan = self.plan(6)
        delay = self.rng.uniform(0.1, 0.8)  # the random point of the drain
        node = self.rng.choice(p.nodes)
        errors = []

        def run():
            try:
                self.traffic("r%d" % r, plan)
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)
        t = threading.Thread(target=run)
        t.start()
        time.sleep(delay)
        rows = status_detail(node)
        in_flight = sum("in_flight" in x["flags"] for x in rows.values())
        old = faultkit.replicator_pid(node)
        os.kill(old, signal.SIGKILL)
        self.kills.append(old)
        t.join(120)
        self.assertFalse(t.is_alive(), "round %d's traffic hangs" % r)
        self.assertEqual(errors, [], "round %d's traffic failed" % r)
        faultkit.wait_replicator(node, 30, not_pid=old)
        return in_flight

    def kill_doveadm_server_mid_dsync(self):
        """Returns True when the kill hit the user's running dsync."""
        p = self.p
        a = p.a
        user = self.rng.choice(USERS)
        wait(lambda: p.node_quiet(a), 60, "A quiet before the bulk delivery")
        mids = ["kr-bulk-%d-%d@e2e" % (self.seq, i) for i in range(DSYNC_BULK)]
        self.seq += 1
        drop_into_maildir(a, user, mids)
        for m in mids:
            self.written[user][m] += 1
        faultkit.fifo_write(os.path.join(a.base_dir, "replication-notify-fifo"),
                            b"%s\thigh\n" % user.encode())
        wait(lambda: "in_flight" in status_detail(a, user)[user]["flags"], 20,
             "%s's dsync started" % user, interval=0.01)
        time.sleep(self.rng.uniform(0.05, 0.3))  # into the dsync
        b_log = faultkit.log_size(p.b)
        pids = doveadm_server_pids(a)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.dsync_kills.extend(pids)
        wait(lambda: "in_flight" not in status_detail(a, user)[user]["flags"], 60,
             "%s's sync over" % user)
        # Hit: B's side of that dsync saw its peer die mid-stream. (Our replicator
        # retries a dsync whose connection dies before a reply once on a fresh one,
        # so the user need not end up failed.)
        died = [l for l in p.b.log_text()[b_log:].splitlines()
                if "doveadm(%s)" % user in l and "Error:" in l]
        print("kill-rounds: killed %d doveadm-server processes on A during %s's dsync of %d "
              "messages: %s" % (len(pids), user, DSYNC_BULK,
                                "B saw it die: %s" % died[0].split(": ", 1)[-1] if died
                                else "it had finished already"), file=sys.stderr)
        # The traffic goes on: a change for every user on both nodes (the killed
        # processes may have served B's syncs too; a new change retries a failed user).
        for n in p.nodes:
            for u in USERS:
                self.seq += 1
                mid = "kr-after-%d-%s@e2e" % (self.seq, n.name)
                n.append(u, mid)
                self.written[u][mid] += 1
        return bool(died), user, pids

    # ---- the test

    def test_kill9_rounds_lose_nothing(self):
        p = self.p
        self.kills, self.dsync_kills = [], []
        t0 = time.monotonic()
        hits = 0
        for r in range(1, OPTS.rounds + 1):
            hits += self.kill_replicator_round(r) > 0
        t_rounds = time.monotonic() - t0
        hit, bulk_user, dsync_pids = False, None, []
        for _ in range(3):  # a dsync that finished before the kill does not count
            hit, bulk_user, dsync_pids = self.kill_doveadm_server_mid_dsync()
            if hit:
                break
        self.assertTrue(hit, "three bulk dsyncs each finished before the doveadm-server kill")

        t1 = time.monotonic()
        wait(idle_without_failures, 120, "both queues drained, no user failed", interval=0.5)
        t_drain = time.monotonic() - t1

        verified = 0
        problems = []
        reappeared = {n.name: [l for l in n.log_text().splitlines()
                               if "Expunged message reappeared" in l] for n in p.nodes}
        dovecot_dups = []  # duplicates Dovecot's Maildir code logged making (see below)
        for u in USERS:
            want = self.written[u]
            self.assertTrue(all(c == 1 for c in want.values()), "the test wrote a Message-ID twice")
            # Dovecot 2.3's Maildir: a dsync interrupted while it moves a message to a new
            # UID (a UID conflict: both nodes appended at once) can leave the old file too;
            # Dovecot then logs "Expunged message reappeared, giving a new UID" and keeps
            # both, and dsync copies both to the other node. Those are counted and printed,
            # not failed; any other duplicate fails.
            u_reappeared = any("(%s)" % u in l for ls in reappeared.values() for l in ls)
            for n in p.nodes:
                got = message_ids(n, u)
                ours = collections.Counter({m: c for m, c in got.items() if m.startswith("kr-")})
                lost = sorted(set(want) - set(ours))
                dup = sorted(m for m, c in ours.items() if c > 1)
                extra = sorted(set(ours) - set(want))
                if dup and u_reappeared and len(dup) <= 2:
                    dovecot_dups += ["%s on %s: %s" % (u, n.name, m) for m in dup]
                    dup = []
                if lost or dup or extra:
                    problems.append("%s on %s: %d lost %s, %d duplicated %s, %d unknown %s" % (
                        u, n.name, len(lost), lost[:3], len(dup), dup[:3], len(extra), extra[:3]))
                verified += sum(min(c, 1) for c in ours.values())
        self.assertEqual(problems, [])
        if dovecot_dups:
            print("kill-rounds: duplicates Dovecot's Maildir made after an interrupted dsync "
                  "(\"Expunged message reappeared\"): %s" % "; ".join(dovecot_dups), file=sys.stderr)

        rc, rows, err = test_verify.verify(p.a)
        differ = [r for r in rows.values() if r["status"] != "in sync"]
        self.assertEqual((rc, sorted(rows), differ), (0, sorted(USERS), []), err)
        self.assertIn("%d users: %d in sync, 0 differ, 0 unreachable" % (len(USERS), len(USERS)), err)

        written = sum(sum(c.values()) for c in self.written.values())
        print("kill-rounds: figures: seed %d, %d replicator kills (%d with a dsync running, "
              "rounds %.0f s), %d doveadm-server kills mid-dsync (%s, %d messages), %d messages "
              "written, %d verified on both sides, 0 lost, %d duplicates by Dovecot's Maildir "
              "(Expunged message reappeared), drained %.1f s after the last fault, "
              "0 differences (verify: %s)" % (
                  OPTS.seed, len(self.kills), hits, t_rounds, len(dsync_pids), bulk_user,
                  DSYNC_BULK, written, verified, len(dovecot_dups), t_drain,
                  err.strip().splitlines()[-1]),
              file=sys.stderr)
        self.assertEqual(verified, 2 * written)
        # no crash of ours but the kills we made
        allow = [r"service\(replicator\): child %d killed with signal 9" % k for k in self.kills]
        allow += [r"service\((doveadm|replicator-dsync)\): child %d killed with signal 9" % k
                  for k in self.dsync_kills]
        for n in p.nodes:
            bad = [l for l in faultkit.crash_lines(n, self.log_start[n.name])
                   if not any(re.search(x, l) for x in allow)]
            self.assertEqual(bad, [], "node %s" % n.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--port-base", type=int,
                    default=int(os.environ["DREPL_E2E_FAULTS_PORT_BASE"])
                    if os.environ.get("DREPL_E2E_FAULTS_PORT_BASE") else None)
    ap.add_argument("--keep", action="store_true")
    a, rest = ap.parse_known_args()
    OPTS.prefix = os.path.abspath(a.prefix)
    OPTS.seed, OPTS.rounds, OPTS.port_base, OPTS.keep = a.seed, a.rounds, a.port_base, a.keep
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
