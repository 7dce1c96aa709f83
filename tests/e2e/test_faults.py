#!/usr/bin/env python3
"""Fault injection on a real Dovecot pair running our plugin and daemon (issue 3):
Dovecot 2.3 on the host, or with --dovecot 2.4 (issue 9) Dovecot 2.4.1 in the
Debian 13 root (tests/e2e/dovepair.py render_config24, this tree staged there by
scripts/dovecot24-build.sh).

Each test class runs its own pair (tests/e2e/dovepair.py, `ours` mode) in a free
port block of 35000-35990:

  T1ReplicaDown   B's Dovecot stopped: the users changed on A go failed with the
                  classified error (stock `status` failed=y, "Waiting 'failed'",
                  STATUS-DETAIL kind connect_refused + text); B back: every change
                  reaches B within 30 s (no 5-minute failure wait).
  T2KillMidDrain  `kill -9` of our replicator while 50 users queued at high priority
                  drain through 2 slots: the master restarts it and every user's
                  message still reaches B.
  T3BadInput      garbage, binary and oversized lines on replicator-doveadm,
                  replicator, the FIFO and replication-notify: the next real change
                  still replicates, the daemon's pids are unchanged.
  T4HungDsync     a replica that accepts TCP but never answers (per-user
                  mail_replica): with replication_dsync_timeout = 3 s the user fails
                  with kind timeout, the only slot is freed, other users sync.
  T5NeverSync     userdb `mail_replica=` (empty) and `noreplicate`: never failed,
                  never a dsync (replicator debug log), flagged never_sync.
  T6RestartWhileReplicaDown  the replicator restarted (SIGTERM) while B is down
                  (issue 14, found by an admin): the breaker starts closed and used
                  to leave every failed user waiting out its failure backoff (5 min,
                  up to 40 after long outages); now they are retried at start-up, the
                  breaker reopens, and B's return is noticed: every change on B
                  within 30 s, no user's failure count raised by the probes.
  T7KillPeerDovecot  `kill -9` of B's whole Dovecot (master and every child, B's
                  processes only) while mail is written on both nodes and A drains
                  to B through 2 slots; B restarted: every message written on either
                  side is on both exactly once within 60 s of B's restart (a
                  message whose APPEND on B was cut by the kill may be there or not,
                  but the same on both), and no user stays failed on A or B.

Every class also checks that neither log shows a Panic, an unexpected Fatal or one
of our processes dying (faultkit.crash_lines).

--dovecot 2.4 runs the classes with ON_24 = True: all five above. On 2.4 the
replicator owns replication-notify(-fifo) itself (no aggregator process), so T3's
garbage on those two reaches the replicator directly and the aggregator checks
are left out. A class added later runs on 2.4 once it sets ON_24 (until then it
is skipped there, with that reason).

Usage: test_faults.py [--dovecot 2.3|2.4] --prefix PREFIX [--prefix24 STAGE]
                      [--port-base N] [--keep] [unittest args...]
(--prefix: 2.3 only; --prefix24: the 2.4 stage inside the root, default
scripts/dovecot24-build.sh --print-stage.)
Environment defaults: DREPL_PREFIX, DREPL_E2E_FAULTS_PORT_BASE. Needs root; with
--dovecot 2.4 exits 77 when every class was skipped (not root, no 2.4 stage).
"""

import argparse
import collections
import os
import re
import shutil
import signal
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402
from faultkit import status_detail  # noqa: E402

OPTS = argparse.Namespace(
    prefix=os.environ.get("DREPL_PREFIX"),
    port_base=int(os.environ["DREPL_E2E_FAULTS_PORT_BASE"]) if os.environ.get("DREPL_E2E_FAULTS_PORT_BASE") else None,
    keep=False, dovecot="2.3", prefix24=None)
STATE = {"failed": False, "timings": [], "blocks": []}


def wait(pred, timeout, what, interval=0.1):
    return dovepair.wait_until(pred, timeout, interval, what=what)


def next_port_base():
    if OPTS.port_base is not None:
        base = OPTS.port_base + faultkit.PORTS_PER_PAIR * len(STATE["blocks"])
    else:
        taken = [p for b in STATE["blocks"] for p in range(b, b + faultkit.PORTS_PER_PAIR)]
        base = faultkit.pick_block(avoid=taken)
    STATE["blocks"].append(base)
    return base


def on_b(pair, user, msgid):
    return msgid in (pair.b.messages(user) or {})


class PairTest(unittest.TestCase):
    """One pair per class. Subclasses set USERS and PAIR_ARGS, and may override
    configure(pair) (after construction, before create) and prepare(pair) (after
    create, before start)."""

    USERS = ("alice", "bob")
    PAIR_ARGS = {}
    # runs with --dovecot 2.4 too (a 2.4 pair gets PAIR_ARGS' extra_conf24, never
    # extra_conf, which is 2.3 syntax)
    ON_24 = False
    pair = None
    root = None

    @classmethod
    def configure(cls, pair):
        pass

    @classmethod
    def prepare(cls, pair):
        pass

    @classmethod
    def setUpClass(cls):
        dv = OPTS.dovecot
        if dv != "2.3" and not cls.ON_24:
            raise unittest.SkipTest("not run on Dovecot %s (class without ON_24)" % dv)
        prefix24 = dovepair.require_dovecot(dv, OPTS.prefix24)
        if dv == "2.3" and not OPTS.prefix:
            raise RuntimeError("give --prefix PREFIX (an install of this build)")
        cls.root = dovepair.new_pair_root("drepl-faults-%s-" % cls.__name__.lower(), dv)
        p = dovepair.Pair(cls.root, port_base=next_port_base(),
                          prefix=OPTS.prefix if dv == "2.3" else None, users=cls.USERS,
                          dovecot=dv, prefix24=prefix24, **cls.PAIR_ARGS)
        cls.pair = p
        cls.configure(p)
        t0 = time.monotonic()
        try:
            p.create()
            cls.prepare(p)
            p.start()
        except BaseException:
            p.stop()
            print("faults: %s: pair kept in %s" % (cls.__name__, p.root), file=sys.stderr)
            raise
        cls.log_start = {n.name: faultkit.log_size(n) for n in p.nodes}
        print("\nfaults: %s: pair up in %.1f s (IMAP %d/%d, doveadm %d/%d, root %s)" % (
            cls.__name__, time.monotonic() - t0, p.a.imap_port, p.b.imap_port,
            p.a.doveadm_port, p.b.doveadm_port, p.root), file=sys.stderr, flush=True)

    @classmethod
    def tearDownClass(cls):
        p = cls.pair
        if not p:
            return
        failed = getattr(cls, "_failed", False)
        p.stop_after_tests(failed)
        if failed or OPTS.keep:
            print("faults: %s: pair kept in %s" % (cls.__name__, p.root), file=sys.stderr)
        else:
            shutil.rmtree(p.root, ignore_errors=True)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            type(self)._failed = True
            STATE["failed"] = True
        return out

    # ---- shared checks

    def assert_no_crash(self, allow=()):
        """No Panic / unexpected Fatal / daemon death in either log since the pair
        started; `allow` are regexps of lines this test caused on purpose."""
        bad = {}
        for n in self.pair.nodes:
            lines = [l for l in faultkit.crash_lines(n, self.log_start[n.name])
                     if not any(re.search(a, l) for a in allow)]
            if lines:
                bad[n.name] = lines
        self.assertEqual(bad, {}, "crash/fatal lines in the logs:\n" + "\n".join(
            "%s: %s" % (k, l) for k, ls in bad.items() for l in ls))

    def timing(self, name, secs):
        STATE["timings"].append(("%s: %s" % (type(self).__name__, name), secs))

    def fail_and_check(self, user, kind, cause_words):
        """Appends a message for `user` on A and waits until its sync failed with
        error kind `kind`: STATUS-DETAIL's row (kind, every cause word in
        last_error) and the metric syncs_failed_total{kind} grown by one.
        Returns (row, A's log lines written meanwhile) for the caller's log check."""
        from test_metrics import scrape  # test_metrics is not needed by the other tests
        a = self.pair.a
        series = 'dovecot_replicator_syncs_failed_total{kind="%s"}' % kind
        before = scrape(a).get(series, 0)
        log_before = faultkit.log_size(a)
        a.append(user, "%s-%s@e2e" % (user, uuid.uuid4().hex[:8]))

        def failed():
            r = faultkit.status_detail(a, user).get(user)
            return r and r["failed"] == 1 and r
        row, secs = wait(failed, 30, "%s failed" % user)
        self.timing("%s failed as %s" % (user, row["error_kind"]), secs)
        self.assertEqual(row["error_kind"], kind, row)
        for w in cause_words:
            self.assertIn(w, row["last_error"], row)
        self.assertGreaterEqual(scrape(a).get(series, 0), before + 1, series)
        return row, a.log_text()[log_before:].splitlines()


# --------------------------------------------------------------------------- 1

class T1ReplicaDown(PairTest):
    ON_24 = True
    USERS = tuple("d%d" % i for i in range(1, 9))
    CHANGED = USERS[:6]      # changed while B is down
    UNTOUCHED = USERS[6:]    # controls: must not fail

    def test_replica_down_then_back(self):
        p = self.pair
        a, b = p.a, p.b
        pid = faultkit.replicator_pid(a)
        p.wait_quiet()
        self.assertEqual(b.stop(), [], "B left processes behind")
        mids = {}
        for u in self.CHANGED:
            mids[u] = "down-%s-%s@e2e" % (u, uuid.uuid4().hex[:8])
            a.append(u, mids[u])
        t_changed = time.monotonic()

        # every changed user fails, classified, without waiting for one probe per user
        def all_failed():
            rows = status_detail(a)
            return all(rows[u]["failed"] == 1 and rows[u]["error_kind"] == "connect_refused"
                       for u in self.CHANGED) and rows
        rows, secs = wait(all_failed, 15, "every changed user failed with connect_refused")
        self.timing("changed users failed (B down)", secs)
        b_port = "127.0.0.1:%d" % b.doveadm_port
        for u in self.CHANGED:
            self.assertIn("Connection refused", rows[u]["last_error"], rows[u])
            self.assertIn(b_port, rows[u]["last_error"], rows[u])
            self.assertGreaterEqual(rows[u]["failures"], 1, rows[u])
        for u in self.UNTOUCHED:
            self.assertEqual(rows[u]["failed"], 0, rows[u])
            self.assertEqual(rows[u]["error_kind"], "none", rows[u])

        # stock doveadm sees the same: failed "y", counted as Waiting 'failed'
        users = a.replicator_users("*")
        self.assertEqual({u for u, r in users.items() if r["failed"] == "y"}, set(self.CHANGED), users)
        ov, _ = wait(lambda: (lambda o: o["Waiting 'failed' requests"] == len(self.CHANGED) and o)(
            a.replicator_overview()), 10, "Waiting 'failed' == %d" % len(self.CHANGED))
        self.assertEqual(ov["Total number of known users"], len(p.users), ov)
        self.assertEqual(faultkit.replicator_pid(a), pid, "replicator restarted while B was down")

        # B back: everything converges quickly (probes, not the 5-minute failure retry)
        b.start()
        t_up = time.monotonic()
        wait(lambda: all(on_b(p, u, mids[u]) for u in self.CHANGED), 30,
             "every change on B within 30 s of B's return")
        secs = time.monotonic() - t_up
        self.timing("B back -> all %d changes on B" % len(self.CHANGED), secs)
        print("faults: B down %.1f s; converged %.1f s after B came back" % (
            t_up - t_changed, secs), file=sys.stderr)
        wait(lambda: all(r["failed"] == 0 for r in status_detail(a).values()), 15,
             "no user failed on A any more")
        self.assertEqual(faultkit.replicator_pid(a), pid)
        self.assert_no_crash()


# --------------------------------------------------------------------------- 2

class T2KillMidDrain(PairTest):
    ON_24 = True
    USERS = tuple("k%02d" % i for i in range(1, 51))
    # No process_min_avail: with it the replicator starts with the master and its
    # start-up full sync may race B's start (a failed user then waits 5 minutes and
    # the pair never gets idle). After the kill, the master starts the replicator
    # again on demand: for the aggregator, which reconnects within a second.
    PAIR_ARGS = {"max_conns": 2}

    def test_kill9_mid_drain(self):
        p = self.pair
        a = p.a
        old = faultkit.replicator_pid(a)
        p.wait_quiet()
        mid = "kill9-%s@e2e" % uuid.uuid4().hex[:10]
        # A new message for each of the 50 users, saved without the plugin (one
        # doveadm process, A's replication-free provisioning config) ...
        r = a.doveadm("save", "-A", conf=a.provision_conf, check=False, timeout=120,
                      input=dovepair.make_message(mid).decode())
        self.assertEqual(r.returncode, 0, r.stderr)
        # ... then the 50 notifications the plugin would have sent, in one burst, so
        # that the queue is deep whatever the speed of this machine.
        t0 = time.time()
        faultkit.fifo_write(os.path.join(a.base_dir, "replication-notify-fifo"),
                            b"".join(b"%s\thigh\n" % u.encode() for u in p.users))

        def some_synced():
            rows = status_detail(a)
            done = [u for u, x in rows.items() if x["last_successful_sync"] >= int(t0) and
                    x["priority"] == "none" and "in_flight" not in x["flags"]]
            return len(done) >= 3 and rows
        rows, _ = wait(some_synced, 30, "the first users synced", interval=0.02)
        os.kill(old, signal.SIGKILL)
        t_kill = time.monotonic()
        queued = [u for u, x in rows.items() if x["priority"] == "high"]
        print("faults: killed replicator %d with %d users still queued high, %d in flight" % (
            old, len(queued), sum("in_flight" in x["flags"] for x in rows.values())),
            file=sys.stderr)
        self.assertGreaterEqual(len(queued), 20, "not mid-drain: the queue drained too fast")

        new = faultkit.wait_replicator(a, 30, not_pid=old)
        self.timing("replicator restarted by the master", time.monotonic() - t_kill)

        def all_on_b():
            out = p.b.doveadm("search", "-A", "header", "message-id", "<%s>" % mid).stdout
            return {l.split()[0] for l in out.splitlines() if l.strip()} == set(p.users)
        wait(all_on_b, 90, "all 50 messages on B after the restart", interval=0.5)
        self.timing("kill -9 -> all 50 users' messages on B", time.monotonic() - t_kill)
        wait(lambda: all(x["failed"] == 0 and x["priority"] == "none" for x in status_detail(a).values()),
             30, "A's replicator idle without failures")
        self.assertEqual(faultkit.daemon_processes(a)["replicator"], [new])
        self.assert_no_crash(allow=(r"service\(replicator\): child %d killed with signal 9" % old,))


# --------------------------------------------------------------------------- 3

class T3BadInput(PairTest):
    ON_24 = True
    USERS = ("alice", "bob")

    def test_garbage_everywhere(self):
        p = self.pair
        a = p.a
        # a first change starts the aggregator too
        mid0 = "bad0-%s@e2e" % uuid.uuid4().hex[:8]
        a.append("alice", mid0)
        wait(lambda: on_b(p, "alice", mid0), 15, "first change on B")
        if not a.is24:  # 2.4: the replicator owns the aggregator's listeners
            wait(lambda: faultkit.daemon_processes(a)["aggregator"], 10, "aggregator running")
        pids = faultkit.daemon_processes(a)
        rpid = faultkit.replicator_pid(a)
        base = a.base_dir
        dv = os.path.join(base, "replicator-doveadm")
        hello = b"VERSION\treplicator-doveadm-client\t1\t0\n"
        notify = os.path.join(base, "replicator")
        nhello = b"VERSION\treplicator-notify\t1\t0\n"
        fifo = os.path.join(base, "replication-notify-fifo")
        agg = os.path.join(base, "replication-notify")
        big = b"x" * (1024 * 1024)

        # a client that sends half a line and stays: must not block anyone
        stuck = [faultkit.unix_send(dv, hello + b"STATUS\tal", close_after=False),
                 faultkit.unix_send(notify, nhello + b"U\tali", close_after=False),
                 faultkit.unix_send(agg, b"alice\tsy", close_after=False)]
        try:
            # replicator-doveadm
            faultkit.unix_send(dv, b"GARBAGE\n")
            faultkit.unix_send(dv, b"VERSION\treplicator-doveadm-client\t9\t0\n")
            faultkit.unix_send(dv, hello + b"FOO\tbar\n")
            faultkit.unix_send(dv, hello + b"\n")
            faultkit.unix_send(dv, hello + b"\x00\xff\xfe\x01\x02\n")
            faultkit.unix_send(dv, hello + big)
            faultkit.unix_send(dv, hello + b"STATUS\t" + big + b"\n")
            faultkit.unix_send(dv, hello + b"REMOVE\n")
            faultkit.unix_send(dv, hello + b"NOTIFY\tx\n")
            reply = faultkit.unix_send(dv, hello + b"REPLICATE\turgent\t\talice\n")
            self.assertIn(b"\n-Invalid priority\n", reply)  # a clear error, as stock
            # replicator (notify protocol, normally the aggregator)
            faultkit.unix_send(notify, b"GARBAGE\n", read_reply=False)
            faultkit.unix_send(notify, b"VERSION\twrong\t1\t0\n", read_reply=False)
            faultkit.unix_send(notify, nhello + b"U\tjunk-two-fields\n", read_reply=False)
            faultkit.unix_send(notify, nhello + b"U\tjunk-user\tbogus\n", read_reply=False)
            faultkit.unix_send(notify, nhello + b"U\tjunk-user\tsync\tnot-a-number\n")
            faultkit.unix_send(notify, nhello + b"X\ty\tz\n\x00\x01\xff\n", read_reply=False)
            faultkit.unix_send(notify, nhello + b"U\t" + big + b"\tlow\n", read_reply=False)
            # the FIFO (plugins write here)
            faultkit.fifo_write(fifo, b"\n" + b"justaname\n" + b"junk-user\tnone\n" +
                                b"junk-user\tsync\n" + b"junk-user\turgent\n" +
                                b"\x00\x01\xfe\tlow\n" + b"y" * 200000 + b"\n" +
                                b"\tlow\n" + b"junk-fifo-user\tlow\n")
            # replication-notify (plugins' sync requests)
            faultkit.unix_send(agg, b"GARBAGE\n")
            faultkit.unix_send(agg, b"junk-user\tnone\n")
            faultkit.unix_send(agg, b"junk-user\turgent\n")
            faultkit.unix_send(agg, b"\tsync\n")
            faultkit.unix_send(agg, b"z" * 100000 + b"\tsync\n")
            faultkit.unix_send(agg, b"\x00\xff\n\n\n")

            # everything still answers, with the half-line clients still connected
            ov = a.replicator_overview()
            self.assertIn("Total number of known users", ov)
            self.assertEqual(a.doveadm("replicator", "dsync-status").returncode, 0)
            # a real change still replicates
            mid = "bad1-%s@e2e" % uuid.uuid4().hex[:8]
            t0 = time.monotonic()
            a.append("bob", mid)
            wait(lambda: on_b(p, "bob", mid), 15, "a real change after the garbage")
            self.timing("real change after garbage -> on B", time.monotonic() - t0)
        finally:
            for s in stuck:
                s.close()
        # junk users the userdb doesn't know are dropped again
        wait(lambda: set(status_detail(a)) == set(p.users), 20,
             "only the real users known to A's replicator")
        self.assertEqual(faultkit.replicator_pid(a), rpid, "replicator restarted")
        now = faultkit.daemon_processes(a)
        if not a.is24:
            self.assertIn(pids["aggregator"][0], now["aggregator"], "aggregator restarted")
        self.assert_no_crash()
        # client bytes never reach the log raw: it stays valid UTF-8 (str_sanitize())
        for n in p.nodes:
            with open(n.log_path, "rb") as fh:
                raw = fh.read()
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self.fail("node %s log is not UTF-8 near %r" % (n.name, raw[max(0, e.start - 80):e.end + 20]))
        for l in a.log_lines(("replicator:", "aggregator:"))[-40:]:
            if "Warning:" in l or "Error:" in l:
                print("faults: logged: %s" % l[:200], file=sys.stderr)


# --------------------------------------------------------------------------- 4

class T4HungDsync(PairTest):
    ON_24 = True
    USERS = ("ok1", "ok2", "ok3")
    HANG_USER = "hang1"
    PAIR_ARGS = {"max_conns": 1,
                 "extra_conf": "plugin {\n  replication_dsync_timeout = 3 s\n}",
                 "extra_conf24": "replication_dsync_timeout = 3s"}

    def test_hung_dsync_times_out(self):
        p = self.pair
        a, b = p.a, p.b
        pid = faultkit.replicator_pid(a)
        hang_port = p.port_base + 5
        listener = faultkit.SilentListener(hang_port)
        try:
            faultkit.set_user_fields(a, {self.HANG_USER: "userdb_mail_replica=tcp:127.0.0.1:%d" % hang_port},
                                     extra_users=[self.HANG_USER])
            faultkit.set_user_fields(b, {}, extra_users=[self.HANG_USER])
            faultkit.wait_userdb(a, self.HANG_USER, "mail_replica\ttcp:127.0.0.1:%d" % hang_port)
            faultkit.wait_userdb(b, self.HANG_USER, "home\t")
            p.wait_quiet()
            a.append(self.HANG_USER, "hang-%s@e2e" % uuid.uuid4().hex[:8])
            t_hang = time.monotonic()
            wait(lambda: any(r.get("username") == self.HANG_USER for r in a.dsync_status()), 10,
                 "the hanging dsync holding the only slot")
            wait(lambda: listener.accepted >= 1, 10, "doveadm-server connected to the silent replica")
            mids = {}
            for u in self.USERS:
                mids[u] = "behind-hang-%s-%s@e2e" % (u, uuid.uuid4().hex[:8])
                a.append(u, mids[u])

            def hang_failed():
                r = status_detail(a, self.HANG_USER).get(self.HANG_USER)
                return r and r["failed"] == 1 and r
            row, _ = wait(hang_failed, 20, "hang1 failed")
            secs = time.monotonic() - t_hang
            self.timing("hung dsync killed after", secs)
            self.assertEqual(row["error_kind"], "timeout", row)
            self.assertIn("replication_dsync_timeout", row["last_error"], row)
            self.assertGreaterEqual(secs, 2.5, "killed before the 3 s timeout")
            # the slot was freed: the users queued behind it sync
            wait(lambda: all(on_b(p, u, mids[u]) for u in self.USERS), 20,
                 "users queued behind the hung dsync on B")
            self.timing("hung dsync start -> users behind it on B", time.monotonic() - t_hang)
            # and later changes still get through while hang1's replica is probed
            mid = "after-hang-%s@e2e" % uuid.uuid4().hex[:8]
            a.append("ok1", mid)
            wait(lambda: on_b(p, "ok1", mid), 15, "a later change on B")
            self.assertTrue(a.log_lines(("killed doveadm-server pid",)),
                            "no log line about killing the hung doveadm-server")
            rows = status_detail(a)
            for u in self.USERS:
                self.assertEqual(rows[u]["failed"], 0, rows[u])
        finally:
            listener.close()
        a.doveadm("replicator", "remove", self.HANG_USER)
        self.assertEqual(faultkit.replicator_pid(a), pid)
        # the master reports the doveadm-server we killed on purpose
        self.assert_no_crash(allow=(r"master: service\((doveadm|replicator-dsync)\): child \d+ killed with signal 9",))


# --------------------------------------------------------------------------- 5

class T5NeverSync(PairTest):
    ON_24 = True
    USERS = ("ok1", "nrempty", "nrflag")
    NEVER = ("nrempty", "nrflag")
    FIELDS = {"nrempty": "userdb_mail_replica=", "nrflag": "userdb_noreplicate"}

    @classmethod
    def configure(cls, pair):
        # our replicator with --debug: one log line per sync it starts
        if pair.dovecot == "2.4":  # the settings module's service, its executable overridden
            pair.extra_conf24 = "service replicator {\n  executable = %s --debug\n}" % (
                pair.a.inner(pair.a.daemon_path))
        else:
            pair.extra_conf = "service replicator {\n  executable = %s --debug\n}" % pair.daemon_path

    @classmethod
    def prepare(cls, pair):
        for n in pair.nodes:
            faultkit.set_user_fields(n, cls.FIELDS)

    def test_never_failed_never_synced(self):
        p = self.pair
        a = p.a
        pid = faultkit.replicator_pid(a)
        rows = status_detail(a)
        self.assertEqual(rows["nrempty"]["error_kind"], "no_replica", rows["nrempty"])
        self.assertEqual(rows["nrflag"]["error_kind"], "noreplicate", rows["nrflag"])
        mids = {u: "never-%s-%s@e2e" % (u, uuid.uuid4().hex[:8]) for u in self.USERS}
        for u in self.NEVER + ("ok1",):
            a.append(u, mids[u])
        wait(lambda: on_b(p, "ok1", mids["ok1"]), 15, "the control user's change on B")
        for u in self.NEVER:
            a.doveadm("replicator", "replicate", u)
        a.doveadm("replicator", "replicate", "-f", "nr*")
        p.wait_quiet()
        rows = status_detail(a)
        for u in self.NEVER:
            self.assertIn("never_sync", rows[u]["flags"], rows[u])
            self.assertEqual(rows[u]["failed"], 0, rows[u])
            self.assertEqual(rows[u]["failures"], 0, rows[u])
            self.assertEqual(rows[u]["next_sync_time"], 0, rows[u])
        users = a.replicator_users("*")
        for u in self.NEVER:
            self.assertEqual(users[u]["failed"], "-", users[u])
        ov = a.replicator_overview()
        self.assertEqual(ov["Waiting 'failed' requests"], 0, ov)
        self.assertEqual(ov["Queued 'failed' requests"], 0, ov)
        # no dsync ever ran for them: our debug log names every sync it starts,
        # and Dovecot's doveadm/dsync never logged anything for them on either node
        started = a.log_lines(("): starting ",))
        self.assertTrue(any("replication(ok1): starting" in l for l in started),
                        "debug logging did not work (no 'starting' line for ok1)")
        for u in self.NEVER:
            self.assertEqual([l for l in started if "replication(%s):" % u in l], [])
            for n in p.nodes:
                self.assertEqual(n.log_lines(("doveadm(%s)" % u, "dsync-server(%s)" % u)), [],
                                 "node %s logged a dsync for %s" % (n.name, u))
            self.assertNotIn(mids[u], p.b.messages(u) or {}, "%s was replicated" % u)
        self.assertTrue(a.log_lines(("replication(nrflag): not replicated",)))
        self.assertEqual(faultkit.replicator_pid(a), pid)
        self.assert_no_crash()


# --------------------------------------------------------------------------- 6

class T6RestartWhileReplicaDown(PairTest):
    USERS = ("r1", "r2", "r3")

    def test_restart_while_replica_down(self):
        p = self.pair
        a, b = p.a, p.b
        p.wait_quiet()
        self.assertEqual(b.stop(), [], "B left processes behind")
        mids = {u: "restart-%s-%s@e2e" % (u, uuid.uuid4().hex[:8]) for u in self.USERS}
        for u in self.USERS:
            a.append(u, mids[u])

        def all_failed():
            rows = status_detail(a)
            return all(rows[u]["failed"] == 1 and rows[u]["error_kind"] == "connect_refused"
                       for u in self.USERS) and rows
        wait(all_failed, 20, "every user failed with connect_refused (B down)")
        # let the breaker probe B (a trial sync at +2 s and +6 s) before the restart
        t_failed = time.monotonic()
        wait(lambda: time.monotonic() - t_failed > 6.5 and all_failed(), 15, "B down for two probes")
        old = faultkit.replicator_pid(a)
        log_before = faultkit.log_size(a)
        os.kill(old, signal.SIGTERM)  # an admin's restart: clean exit, state saved
        new = faultkit.wait_replicator(a, 30, not_pid=old)
        t_restart = time.monotonic()
        # The restarted daemon tries B again (its breaker starts closed and opens
        # again) instead of leaving every user to its failure backoff.
        down_line = "Replica tcp:127.0.0.1:%d looks down" % b.doveadm_port
        wait(lambda: down_line in a.log_text()[log_before:], 20,
             "the restarted replicator trying B again while it is down")
        rows = status_detail(a)
        for u in self.USERS:
            # the breaker's probes are not the user's failures
            self.assertLessEqual(rows[u]["failures"], 2, rows[u])
        b.start()
        t_up = time.monotonic()
        wait(lambda: all(on_b(p, u, mids[u]) for u in self.USERS), 30,
             "every change on B within 30 s of B's return (after a restart while it was down)")
        secs = time.monotonic() - t_up
        self.timing("restart while B down; B back -> all %d changes on B" % len(self.USERS), secs)
        print("faults: replicator restarted %.1f s before B came back; converged %.1f s after" % (
            t_up - t_restart, secs), file=sys.stderr)
        rows, _ = wait(lambda: (lambda r: all(x["failed"] == 0 for x in r.values()) and r)(
            status_detail(a)), 15, "no user failed on A any more")
        self.assertEqual(faultkit.replicator_pid(a), new)
        self.assert_no_crash()


# --------------------------------------------------------------------------- 7

def kill9_node(node):
    """SIGKILLs node's master and every process under it, and nothing else: the
    master is stopped first (SIGSTOP: it can fork no new child), then its
    descendants are listed and killed with it. Returns the killed pids."""
    master = node.master_pid()
    if not master:
        raise RuntimeError("node %s: no master running" % node.name)
    os.kill(master, signal.SIGSTOP)
    pids = [master] + dovepair.descendants(master)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait(lambda: all(dovepair._gone(pid) for pid in pids), 10,
         "node %s's processes gone after SIGKILL" % node.name)
    return pids


class Writer(threading.Thread):
    """Writes messages (IMAP APPEND, one user after the other) on `nodes` until
    stopped. A successful APPEND goes to `written`, a failed one (the node is down,
    or was killed mid-APPEND: the message may exist or not) to `unsure`."""

    def __init__(self, nodes, users, tag):
        super().__init__(daemon=True)
        self.nodes, self.users, self.tag = nodes, users, tag
        self.written = {u: set() for u in users}
        self.unsure = {u: set() for u in users}
        self.stop = threading.Event()
        self.errors = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            for node in self.nodes:
                u = self.users[i % len(self.users)]
                mid = "%s%d-%s-%s-%s@e2e" % (self.tag, i, node.name, u, uuid.uuid4().hex[:6])
                try:
                    node.append(u, mid)
                except Exception as e:  # noqa: BLE001 - refused/reset: B is down
                    self.unsure[u].add(mid)
                    self.errors.append("%s: %s" % (node.name, e))
                    time.sleep(0.05)
                else:
                    self.written[u].add(mid)
            i += 1


class T7KillPeerDovecot(PairTest):
    USERS = tuple("w%02d" % i for i in range(1, 25))
    PAIR_ARGS = {"max_conns": 2}
    BOUND = 60

    def test_kill9_peer_dovecot_mid_drain(self):
        p = self.pair
        a, b = p.a, p.b
        a_pid = faultkit.replicator_pid(a)
        p.wait_quiet()
        writer = Writer((a, b), self.USERS, "w")
        writer.start()
        try:
            wait(lambda: sum(len(v) for v in writer.written.values()) >= 2 * len(self.USERS), 60,
                 "mail written on both nodes")
            # a burst on A (saved without the plugin, then the 24 notifications at
            # once, as in T2): A drains it to B through its 2 slots
            burst = "burst-%s@e2e" % uuid.uuid4().hex[:10]
            r = a.doveadm("save", "-A", conf=a.provision_conf, check=False, timeout=120,
                          input=dovepair.make_message(burst).decode())
            self.assertEqual(r.returncode, 0, r.stderr)
            faultkit.fifo_write(os.path.join(a.base_dir, "replication-notify-fifo"),
                                b"".join(b"%s\thigh\n" % u.encode() for u in p.users))

            def draining():
                rows = [x for x in a.dsync_status() if x.get("username") and x.get("type") != "-"]
                pending = [u for u, x in status_detail(a).items() if x["priority"] != "none"]
                return rows and pending and (rows, pending)
            (rows, pending), _ = wait(draining, 10, "A draining to B", interval=0.02)
            b_master = b.master_pid()
            a_master = a.master_pid()
            killed = kill9_node(b)
            t_kill = time.monotonic()
            self.assertNotIn(a_master, killed)
            self.assertTrue(a.master_pid(), "A's master died with B's")
            self.assertEqual(faultkit.replicator_pid(a), a_pid, "A's replicator died with B")
            print("faults: kill -9 of B's dovecot (master %d, %d processes) with A's dsyncs %s "
                  "running and %d users queued on A" % (
                      b_master, len(killed), [x["username"] for x in rows], len(pending)),
                  file=sys.stderr)
            # mail keeps arriving on both while B is down (B's APPENDs fail)
            wait(lambda: time.monotonic() - t_kill >= 3, 5, "B down for 3 s")
            b.start()
            t_up = time.monotonic()
            self.timing("kill -9 of B's dovecot -> B restarted", t_up - t_kill)
            n0 = sum(len(v) for v in writer.written.values())
            wait(lambda: sum(len(v) for v in writer.written.values()) >= n0 + 2 * len(self.USERS),
                 60, "mail written on both nodes after B's restart")
        finally:
            writer.stop.set()
            writer.join(30)
        written, unsure = writer.written, writer.unsure
        for u in self.USERS:
            written[u].add(burst)

        def converged():
            for u in self.USERS:
                on_a, on_b = (a.messages(u) or {}), (b.messages(u) or {})
                if not written[u] <= set(on_a) or not written[u] <= set(on_b):
                    return False
            return True
        wait(converged, self.BOUND, "every message written on A or B on both within %d s of "
             "B's restart" % self.BOUND, interval=0.5)
        secs = time.monotonic() - t_up
        self.timing("B restarted -> every message on both", secs)

        def none_failed():
            rows = {n.name: status_detail(n) for n in p.nodes}
            return all(x["failed"] == 0 for r in rows.values() for x in r.values()) and rows
        wait(none_failed, max(5, self.BOUND - secs), "no user failed on A or B", interval=0.5)
        p.wait_quiet(timeout=60)
        problems = []
        for u in self.USERS:
            on_a, on_b = inbox_ids_counter(a, u), inbox_ids_counter(b, u)
            if on_a != on_b:
                problems.append("%s: only A %s, only B %s" % (
                    u, sorted(on_a - on_b), sorted(on_b - on_a)))
            dups = [m for m, n in on_a.items() if n > 1] + [m for m, n in on_b.items() if n > 1]
            if dups:
                problems.append("%s: duplicates %s" % (u, sorted(set(dups))))
            lost = written[u] - set(on_a)
            if lost:
                problems.append("%s: lost %s" % (u, sorted(lost)))
            extra = set(on_a) - written[u] - unsure[u]
            if extra:
                problems.append("%s: unknown %s" % (u, sorted(extra)))
        self.assertEqual(problems, [])
        n_written = sum(len(v) for v in written.values())
        n_unsure = sum(len(v) for v in unsure.values())
        print("faults: %d messages written (%d APPENDs on B failed while it was down/killed), "
              "all on both exactly once %.1f s after B's restart" % (n_written, n_unsure, secs),
              file=sys.stderr)
        self.assertEqual(faultkit.replicator_pid(a), a_pid)
        # A's doveadm-servers whose dsync B's death cut, and A's connects while B was down
        self.assert_no_crash(allow=(r"master: service\((doveadm|replicator-dsync)\): child \d+ "
                                    r"(killed with signal|returned error)",))


def inbox_ids_counter(node, user):
    return collections.Counter((node.messages(user) or {}).keys())


def tearDownModule():
    if STATE["timings"]:
        print("\nfaults timings:", file=sys.stderr)
        for name, secs in STATE["timings"]:
            print("  %-60s %6.2f s" % (name, secs), file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", default=OPTS.prefix, help="install prefix of our build")
    ap.add_argument("--port-base", type=int, default=OPTS.port_base,
                    help="first pair's port block (10 ports per pair); default: free blocks in 35000-35990")
    ap.add_argument("--keep", action="store_true", help="keep the pair directories")
    dovepair.add_dovecot_args(ap, "2.4: both nodes Dovecot 2.4.1 in the trixie root (the ON_24 classes)")
    opts, rest = ap.parse_known_args(argv)
    vars(OPTS).update(vars(opts))
    dovepair.run_tests(__name__, OPTS.dovecot, rest)


if __name__ == "__main__":
    main()
