#!/usr/bin/env python3
"""e2e-orphan-dsync: kill -9 of the replicator in the middle of a full sync (issue 13).

A dsync runs inside the doveadm-server process (service replicator-dsync) that serves
the replicator's connection; when the replicator dies, that process goes on with the
dsync and holds the user's dsync lock. Without a clean-up the restarted replicator's
dsync of that user waits `-l 30` s for the lock and fails with lock_timeout: the user
shows failed for a retry window. The restarted replicator must end such orphans
(replicator/clients/orphan-reaper.h: SIGTERM, SIGKILL after 5 s, through a pidfd)
before its first dsync, and the user converges without ever showing failed.

One Dovecot 2.3 pair (our plugin and daemon). User `orph` on A replicates through a
TCP proxy to B's doveadm port (userdb mail_replica=tcp:127.0.0.1:<proxy>), so that the
test controls the speed of its dsync:
  * DSYNC_BULK small messages are dropped into orph's Maildir on A, the proxy is
    throttled (THROTTLE_BPS bytes/s), and a full sync of orph is requested;
  * once the dsync has moved data through the proxy and is still running, A's
    replicator is killed with SIGKILL; the master starts it again;
  * the doveadm-server that ran the dsync (the one connected to the proxy) must be
    gone within ORPHAN_GONE_SECS of the restart, although the throttled dsync would
    have run much longer; then the proxy is opened;
  * from the kill until orph converged (synced after the restart, nothing queued),
    orph never shows failed=1 in STATUS-DETAIL on A or B (polled every 0.1 s);
  * every message is on both sides, exactly once.
Also, with the same slow full sync: `doveadm replicator remove orph` ends the
doveadm-server running it (SIGKILL after the 5 s grace at the latest), and an orderly
shutdown (SIGTERM to the replicator) ends it before the replicator exits; in both cases
orph then converges.
Needs root (private Dovecot masters); exits 77 otherwise.
Usage: test_orphan_dsync.py --prefix PREFIX [--port-base N] [--keep]
"""

import argparse
import collections
import os
import re
import signal
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovepair  # noqa: E402
import faultkit  # noqa: E402
import test_faults  # noqa: E402
from faultkit import status_detail  # noqa: E402
from test_faults import PairTest, wait  # noqa: E402

DSYNC_BULK = 2000
THROTTLE_BPS = 40000
ORPHAN_GONE_SECS = 15


def message_ids(node, user):
    """Counter of the Message-IDs (without <>) in user's INBOX on node."""
    out = node.doveadm("fetch", "-u", user, "hdr.message-id", "mailbox", "INBOX", "ALL",
                       timeout=120).stdout
    return collections.Counter(re.findall(r"<([^<>\s]+)>", out))


def drop_into_maildir(node, user, msgids):
    """One message per Message-ID into user's Maildir/new on node, owned by vmail (as
    an MTA writing the Maildir directly would: no plugin, no notification)."""
    p = node.pair
    new = os.path.join(node.mail_dir, user, "Maildir", "new")
    tag = uuid.uuid4().hex[:8]
    t = int(time.time())
    for i, mid in enumerate(msgids):
        name = "%d.M%dP%d_%s.drop" % (t, i, os.getpid(), tag)
        tmp = os.path.join(node.mail_dir, user, "Maildir", "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(dovepair.make_message(mid, body="bulk %d\r\n" % i + "x" * 400))
        os.chown(tmp, p.vmail_uid, p.vmail_gid)
        os.rename(tmp, os.path.join(new, name))


def tcp_inodes_to(port):
    """Socket inodes of the TCP connections (v4 and v6) to 127.0.0.1:`port`."""
    out = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as fh:
                next(fh)
                for line in fh:
                    f = line.split()
                    if int(f[2].rsplit(":", 1)[1], 16) == port:
                        out.add(f[9])
        except OSError:
            pass
    return out


def pids_connected_to(node, port):
    """Pids of node's doveadm-server processes holding a TCP connection to `port`."""
    inodes = tcp_inodes_to(port)
    pids = []
    for i in node.processes():
        if i["comm"] != "doveadm-server":
            continue
        try:
            fds = os.listdir("/proc/%d/fd" % i["pid"])
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (i["pid"], fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                pids.append(i["pid"])
                break
    return pids


class OrphanDsync(PairTest):
    USERS = ("orph", "other")
    USER = "orph"

    def start_slow_full_sync(self, proxy, tag):
        """Routes orph's A->B dsync through `proxy`, drops DSYNC_BULK messages into its
        Maildir on A, throttles the proxy and asks for a full sync; returns (message-ids
        A must end with, pids of the doveadm-server running the dsync) once that dsync
        has moved data and is still running."""
        p, a, b, user = self.pair, self.pair.a, self.pair.b, self.USER
        replica = "tcp:127.0.0.1:%d" % proxy.port
        faultkit.set_user_fields(a, {user: "userdb_mail_replica=" + replica})
        faultkit.wait_userdb(a, user, "mail_replica\t" + replica)
        first = "first-%s-%s@e2e" % (tag, uuid.uuid4().hex[:8])
        a.append(user, first)
        wait(lambda: first in (b.messages(user) or {}), 30, "the proxied path works")
        p.wait_quiet()
        mids = ["bulk-%s-%d-%s@e2e" % (tag, i, uuid.uuid4().hex[:6]) for i in range(DSYNC_BULK)]
        drop_into_maildir(a, user, mids)
        proxy.throttle(THROTTLE_BPS)
        before = proxy.forwarded
        a.doveadm("replicator", "replicate", "-f", user)

        def dsync_underway():
            pids = pids_connected_to(a, proxy.port)
            row = status_detail(a).get(user, {})
            return (proxy.forwarded - before > 3 * THROTTLE_BPS and pids and
                    "in_flight" in row.get("flags", set()) and pids)
        servers, _ = wait(dsync_underway, 60, "orph's full sync moving data through the proxy",
                          interval=0.1)
        return message_ids(a, user), servers

    def poller(self, t0):
        """A function that records (node, secs since t0, error) whenever orph shows
        failed=1 on A or B, and the list it records into."""
        seen = []

        def poll():
            for node in (self.pair.a, self.pair.b):
                try:
                    row = status_detail(node, timeout=3).get(self.USER)
                except (OSError, RuntimeError):
                    continue  # the replicator is restarting
                if row and row["failed"]:
                    seen.append((node.name, round(time.monotonic() - t0, 1),
                                 row.get("last_error", row)))
        return poll, seen

    def wait_gone(self, pids, secs, what, poll=None):
        def gone():
            if poll:
                poll()
            return not any(os.path.exists("/proc/%d" % pid) for pid in pids)
        return wait(gone, secs, what, interval=0.1)[1]

    def converge(self, t0, want, poll=None):
        """Waits until orph is synced after t0 (monotonic) with nothing queued and every
        message in `want` is on A and B exactly once."""
        a, b, user = self.pair.a, self.pair.b, self.USER
        wall_t0 = int(time.time() - (time.monotonic() - t0))

        def converged():
            if poll:
                poll()
            row = status_detail(a).get(user)
            return (row and row["failed"] == 0 and row["priority"] == "none" and
                    "in_flight" not in row["flags"] and row["last_successful_sync"] >= wall_t0
                    and row)
        wait(converged, 120, "orph synced again", interval=0.1)
        wait(lambda: message_ids(b, user) == want, 60, "every message on B")
        self.assertEqual(message_ids(a, user), want)
        self.assertEqual(message_ids(b, user), want)

    def test_kill9_mid_full_sync_converges_without_failed(self):
        p = self.pair
        a = p.a
        proxy = faultkit.TcpProxy(p.port_base + 5, p.b.doveadm_port)
        try:
            want, orphans = self.start_slow_full_sync(proxy, "kill9")
            old = faultkit.replicator_pid(a)
            os.kill(old, signal.SIGKILL)
            t_kill = time.monotonic()
            print("orphan: killed replicator %d mid-dsync (doveadm-server %s, %d bytes through "
                  "the proxy)" % (old, orphans, proxy.forwarded), file=sys.stderr)
            poll, failed_seen = self.poller(t_kill)

            def restarted():
                poll()
                pids = faultkit.daemon_processes(a)["replicator"]
                return len(pids) == 1 and pids[0] != old and pids[0]
            new, _ = wait(restarted, 30, "A's replicator restarted by the master")
            t_restart = time.monotonic()
            self.timing("kill -9 -> replicator restarted", t_restart - t_kill)
            self.wait_gone(orphans, ORPHAN_GONE_SECS,
                           "the orphaned doveadm-server %s ended by the new replicator" % orphans,
                           poll)
            self.timing("restart -> orphaned dsync gone", time.monotonic() - t_restart)
            self.assertTrue(a.log_lines(("Terminating doveadm-server pid %d" % orphans[0],)),
                            "the new replicator did not log the orphan it ended")
            proxy.heal()
            self.converge(t_kill, want, poll)
            self.timing("kill -9 -> orph converged", time.monotonic() - t_kill)
            self.assertEqual(failed_seen, [], "orph showed failed after the kill")
            self.assertEqual(faultkit.daemon_processes(a)["replicator"], [new])
        finally:
            proxy.close()
        self.assert_no_crash(allow=ALLOWED_CRASH_LINES)

    def test_remove_mid_dsync_terminates_its_doveadm_server(self):
        p = self.pair
        a = p.a
        proxy = faultkit.TcpProxy(p.port_base + 6, p.b.doveadm_port)
        try:
            want, servers = self.start_slow_full_sync(proxy, "remove")
            a.doveadm("replicator", "remove", self.USER)
            t_remove = time.monotonic()
            took = self.wait_gone(servers, 2 * KILL_BOUND_SECS,
                                  "doveadm-server %s ended after `doveadm replicator remove`" %
                                  servers)
            self.timing("remove -> its dsync's doveadm-server gone", took)
            self.assertNotIn(self.USER, status_detail(a))
            self.assertTrue(a.log_lines(("replication(%s): removed during its dsync" % self.USER,
                                         "killed doveadm-server pid %d" % servers[0])))
            proxy.heal()
            a.doveadm("replicator", "add", self.USER)
            a.doveadm("replicator", "replicate", "-f", self.USER)
            self.converge(t_remove, want)
            self.timing("remove -> re-added orph converged", time.monotonic() - t_remove)
        finally:
            proxy.close()
        self.assert_no_crash(allow=ALLOWED_CRASH_LINES)

    def test_shutdown_mid_dsync_terminates_it_and_exits(self):
        p = self.pair
        a = p.a
        proxy = faultkit.TcpProxy(p.port_base + 7, p.b.doveadm_port)
        try:
            want, servers = self.start_slow_full_sync(proxy, "shutdown")
            old = faultkit.replicator_pid(a)
            os.kill(old, signal.SIGTERM)
            t_term = time.monotonic()
            took = self.wait_gone([old] + servers, 2 * KILL_BOUND_SECS,
                                  "replicator %d and doveadm-server %s gone after SIGTERM" %
                                  (old, servers))
            self.timing("SIGTERM -> replicator and its dsync's doveadm-server gone", took)
            poll, failed_seen = self.poller(t_term)
            proxy.heal()
            a.doveadm("replicator", "replicate", self.USER)  # starts a replicator if needed
            faultkit.wait_replicator(a, 30, not_pid=old)
            self.converge(t_term, want, poll)
            self.timing("SIGTERM -> orph converged", time.monotonic() - t_term)
            self.assertEqual(failed_seen, [], "orph showed failed after the shutdown")
            self.assertFalse(a.log_lines(("Terminating doveadm-server pid",))[1:],
                             "an orderly shutdown left an orphan behind")
        finally:
            proxy.close()
        self.assert_no_crash(allow=ALLOWED_CRASH_LINES)


# SIGTERM is ignored by a busy doveadm-server (seen on 2.3.19): SIGKILL after the 5 s grace.
KILL_BOUND_SECS = 6
ALLOWED_CRASH_LINES = (
    r"master: service\((doveadm|replicator-dsync)\): child \d+ killed with signal (9|15)",
    r"master: service\(replicator\): child \d+ killed with signal 9",)


OPTS = test_faults.OPTS


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--port-base", type=int, default=test_faults.OPTS.port_base)
    ap.add_argument("--keep", action="store_true")
    opts, rest = ap.parse_known_args()
    test_faults.OPTS.prefix = os.path.abspath(opts.prefix)
    test_faults.OPTS.port_base, test_faults.OPTS.keep = opts.port_base, opts.keep
    if os.geteuid() != 0:
        print("orphan-dsync: needs root (private Dovecot masters): skipped", file=sys.stderr)
        return 77
    prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False)
    for name, secs in test_faults.STATE["timings"]:
        print("  %-60s %6.1f s" % (name, secs), file=sys.stderr)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
