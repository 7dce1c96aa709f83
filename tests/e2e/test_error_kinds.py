#!/usr/bin/env python3
"""Failures that name their cause, on a real Dovecot 2.3 pair running our daemon (issue 13).

One pair (tests/e2e/dovepair.py, `ours` mode, port block in 35000-35990). Each test
makes one user's dsync fail for one real reason and checks that the cause reaches
  * the user's state: STATUS-DETAIL failed=1 and the error kind, text naming the cause;
  * the metrics: dovecot_replicator_syncs_failed_total{kind=...};
  * the log: exactly one line "replication(<user>): dsync to <replica> failed (<kind>): ...".

  wrong doveadm_password on B (reloaded)       -> auth_failed     (doveadm's log channel)
  mail_replica = tcp:nonexistent.invalid:port  -> host_not_found  (fatal in doveadm: probe)
  mail_replica = tcp:127.0.0.1:<closed port>   -> connect_refused (fatal in doveadm: probe)
  the user's dsync lock held on A, -l 2        -> lock_timeout    (doveadm's log channel)
  mail_replica = tcp:127.0.0.1:<port> that accepts and never writes (a half-dead
  replica), replication_dsync_handshake_timeout = 3 s
                                               -> timeout         (handshake watch: the
     doveadm-server's TCP connection got no byte; killed after 3 s, not after
     replication_dsync_timeout's 600 s; the replica's breaker opens)
A peer that hangs after its handshake (kind timeout) is tested by test_faults.py
T4HungDsync.

Usage: test_error_kinds.py --prefix PREFIX [--port-base N] [--keep] [unittest args...]
"""

import fcntl
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402
import test_faults  # noqa: E402
from faultkit import status_detail  # noqa: E402


class ErrorKinds(test_faults.PairTest):
    USERS = ("ok1", "wp", "nx", "rf", "lk", "hs")
    HANDSHAKE_SECS = 3
    PAIR_ARGS = {"extra_conf": "\n".join([
        "service replicator {",
        "  unix_listener replicator-metrics {",
        "    mode = 0600",
        "  }",
        "}",
        # a held dsync lock fails after 2 s instead of 30 s
        "replication_dsync_parameters = -d -N -l 2 -U",
        # a replica that never answers fails after 3 s (replication_dsync_timeout
        # stays at its 600 s default)
        "plugin {",
        "  replication_dsync_handshake_timeout = %d s" % HANDSHAKE_SECS,
        "}",
    ])}

    def fail_and_check(self, user, kind, cause_words, replica):
        """PairTest.fail_and_check, and exactly one log line naming the replica."""
        row, log = super().fail_and_check(user, kind, cause_words)
        pattern = re.compile(r"replication\(%s\): dsync to %s failed \(%s\): " % (
            re.escape(user), re.escape(replica), kind))
        lines = [l for l in log if pattern.search(l)]
        self.assertEqual(len(lines), 1, lines)
        return row

    def set_replica(self, user, replica):
        a = self.pair.a
        fields = dict(getattr(self, "_fields", {}))
        fields[user] = "userdb_mail_replica=%s" % replica
        type(self)._fields = fields
        faultkit.set_user_fields(a, fields)
        faultkit.wait_userdb(a, user, "mail_replica\t%s" % replica)
        # Back to the working replica and synced afterwards, so that a failing
        # user (retried, its replica probed) does not keep the pair busy for
        # the tests after this one.
        self.addCleanup(self.restore_replica, user)

    def restore_replica(self, user):
        """Drops the user's userdb mail_replica (back to the pair's own)."""
        a = self.pair.a
        fields = dict(getattr(self, "_fields", {}))
        fields.pop(user, None)
        type(self)._fields = fields
        faultkit.set_user_fields(a, fields)
        dovepair.wait_until(
            lambda: "mail_replica\t" not in a.doveadm("user", user, check=False).stdout,
            10, 0.2, what="node a userdb to drop mail_replica for %s" % user)
        self.settle(user)

    def settle(self, user):
        """Syncs `user` now (again while it still fails, e.g. until a reload
        reached the replica) until it is no longer failed."""
        a = self.pair.a

        def ok():
            row = status_detail(a, user).get(user)
            if row and row["failed"] == 0:
                return True
            a.doveadm("replicator", "replicate", user)
            return False
        dovepair.wait_until(ok, 30, 1.0, what="%s synced again" % user)

    def test_auth_failed(self):
        p = self.pair
        b = p.b
        conf = b.conf
        text = open(conf).read()
        good = "doveadm_password = %s" % p.doveadm_password
        self.assertIn(good, text)
        p.wait_quiet()
        try:
            with open(conf, "w") as fh:
                fh.write(text.replace(good, "doveadm_password = not-the-password"))
            subprocess.run(["doveadm", "-c", conf, "reload"], check=True)
            time.sleep(0.5)  # the reload is asynchronous; new doveadm processes read it
            self.fail_and_check("wp", "auth_failed", ("authentication failed",),
                                "tcp:127.0.0.1:%d" % b.doveadm_port)
        finally:
            with open(conf, "w") as fh:
                fh.write(text)
            subprocess.run(["doveadm", "-c", conf, "reload"], check=True)
            self.settle("wp")

    def test_host_not_found(self):
        replica = "tcp:nonexistent.invalid:%d" % self.pair.b.doveadm_port
        self.set_replica("nx", replica)
        self.fail_and_check("nx", "host_not_found", ("nonexistent.invalid",), replica)

    def test_connect_refused(self):
        port = self.pair.port_base + 6  # in our block, nothing listens there
        replica = "tcp:127.0.0.1:%d" % port
        self.set_replica("rf", replica)
        self.fail_and_check("rf", "connect_refused", ("Connection refused",), replica)

    def test_handshake_timeout(self):
        from test_metrics import scrape
        p = self.pair
        a = p.a
        port = p.port_base + 7  # in our block, a listener that accepts and never writes
        listener = faultkit.SilentListener(port)
        self.addCleanup(listener.close)
        replica = "tcp:127.0.0.1:%d" % port
        self.set_replica("hs", replica)
        t0 = time.monotonic()
        row = self.fail_and_check(
            "hs", "timeout",
            ("no handshake from %s within %d s" % (replica, self.HANDSHAKE_SECS),
             "(replication_dsync_handshake_timeout)", "killed doveadm-server pid"),
            replica)
        secs = time.monotonic() - t0
        self.timing("hs failed after", secs)
        self.assertGreaterEqual(listener.accepted, 1, "doveadm-server never reached the replica")
        # bounded by the handshake timeout, not by replication_dsync_timeout (600 s)
        self.assertGreaterEqual(secs, self.HANDSHAKE_SECS - 0.5, row)
        self.assertLess(secs, 20, row)
        # the stock view shows the failure too
        users = a.replicator_users("hs")
        self.assertEqual(users["hs"]["failed"], "y", users)
        # a destination failure: the replica's breaker is open, so its other users
        # wait for the probe instead of each holding a slot for 3 s
        series = 'dovecot_replicator_destination_breaker_open{destination="%s"}' % replica
        dovepair.wait_until(lambda: scrape(a).get(series) == 1, 10, 0.2,
                            what="breaker of %s open" % replica)
        # the replicator keeps serving: its status answers and other users sync
        ov = a.replicator_overview()
        self.assertEqual(ov["Total number of known users"], len(p.users), ov)
        mid = "after-hs-%s@e2e" % uuid.uuid4().hex[:8]
        a.append("ok1", mid)
        dovepair.wait_until(lambda: mid in (p.b.messages("ok1") or {}), 20, 0.2,
                            what="ok1's new message on B while hs's replica hangs")

    def test_lock_timeout(self):
        p = self.pair
        a = p.a
        home = os.path.join(a.mail_dir, "lk")
        lock = os.path.join(home, ".dovecot-sync.lock")
        p.wait_quiet()
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            st = os.stat(home)
            os.fchown(fd, st.st_uid, st.st_gid)
            fcntl.lockf(fd, fcntl.LOCK_EX)
            self.fail_and_check("lk", "lock_timeout", ("Couldn't lock", "Timed out"),
                                "tcp:127.0.0.1:%d" % p.b.doveadm_port)
        finally:
            os.close(fd)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", default=test_faults.OPTS.prefix)
    ap.add_argument("--port-base", type=int, default=test_faults.OPTS.port_base)
    ap.add_argument("--keep", action="store_true")
    opts, rest = ap.parse_known_args()
    vars(test_faults.OPTS).update(vars(opts))
    unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest)
