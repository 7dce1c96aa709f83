#!/usr/bin/env python3
"""e2e-state-full: the replicator's state_dir runs out of space, or holds a corrupt
replicator.db (issue 14).

A's state_dir is a 1 MiB tmpfs the test mounts (outside the pair's root, unmounted
at the end). Once the pair is quiet and replicator.db is written, a filler file takes
every free byte. Then, with real changes on A:
  * the daemon keeps syncing: every change reaches B (the state writer fails, the
    replication does not);
  * the log gets ONE line about it (not one per write attempt or per file);
  * replicator.db is never truncated or replaced: byte-identical to the good one,
    and no replicator.db.tmp is left;
  * the daemon keeps running (same pid).
The filler is removed: within 10 s the log says "written again" and replicator.db
holds the syncs made while the disk was full.

CorruptStateFile: A stopped, its replicator.db cut to one good line and garbage, A
started: the file is moved aside byte for byte (one log line), every user replicates.

Needs root and a tmpfs mount; exits 77 (skipped) otherwise.
Usage: test_state_full.py --prefix PREFIX [--port-base N] [--keep]
"""

import argparse
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultkit  # noqa: E402
import test_faults  # noqa: E402
from test_faults import PairTest, on_b, wait  # noqa: E402

TMPFS_SIZE = "1m"
FAIL_WORDS = ("Can't save the replication queue", "Can't start the replication queue journal")


def fill(path):
    """Writes `path` until the filesystem is full; returns the bytes written."""
    total = 0
    chunk = b"\0" * 4096
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                total += fh.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    # the last page or so: smaller writes
    with open(path, "ab", buffering=0) as fh:
        while True:
            try:
                fh.write(b"\0" * 64)
                total += 64
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return total


def db_users(path):
    """{user: fields} of a replicator.db (queue-file.h: tab-separated, user first)."""
    with open(path) as fh:
        return {l.split("\t")[0]: l.rstrip("\n").split("\t") for l in fh if l.strip()}


class StateDirFull(PairTest):
    USERS = ("f1", "f2", "f3")
    mnt = None

    @classmethod
    def configure(cls, pair):
        cls.mnt = tempfile.mkdtemp(prefix="drepl-e2e-statefull-", dir="/tmp")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % TMPFS_SIZE,
                        "drepl-e2e-statefull", cls.mnt], check=True, capture_output=True)
        pair.a.state_dir = os.path.join(cls.mnt, "state")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.mnt:
                subprocess.run(["umount", cls.mnt], check=False)
                os.rmdir(cls.mnt)

    def test_state_dir_full(self):
        p = self.pair
        a = p.a
        db = os.path.join(a.state_dir, "replicator.db")
        p.wait_quiet()
        pid = faultkit.replicator_pid(a)
        wait(lambda: os.path.exists(db) and set(db_users(db)) >= set(self.USERS), 15,
             "replicator.db written with every user")
        p.wait_quiet()
        with open(db, "rb") as fh:
            good = fh.read()
        filler = os.path.join(a.state_dir, "filler")
        filled = fill(filler)
        t_full = int(time.time())
        log_before = faultkit.log_size(a)
        print("state-full: %s filled with %d bytes" % (a.state_dir, filled), file=sys.stderr)

        def failing():
            return any(w in a.log_text()[log_before:] for w in FAIL_WORDS)

        # Rounds of changes until a write fails (journal appends that still fit in
        # the journal's last tmpfs page succeed), then three more: many attempts.
        rounds, more = 0, 3
        while more > 0:
            self.assertLess(rounds, 40, "40 rounds of changes and no write failed")
            for u in self.USERS:
                mid = "full-%s-%d-%s@e2e" % (u, rounds, uuid.uuid4().hex[:6])
                a.append(u, mid)
                wait(lambda: on_b(p, u, mid), 20, "%s's change on B while state_dir is full" % u)
            rounds += 1
            if failing():
                more -= 1
        p.wait_quiet()
        lines = [l for l in a.log_text()[log_before:].splitlines() if any(w in l for w in FAIL_WORDS)]
        self.assertEqual(len(lines), 1, "\n".join(lines))
        self.assertIn("No space left on device", lines[0])
        with open(db, "rb") as fh:
            self.assertEqual(fh.read(), good, "replicator.db changed while the disk was full")
        self.assertFalse(os.path.exists(db + ".tmp"), "a temp file was left in the full state_dir")
        self.assertEqual(faultkit.replicator_pid(a), pid)
        self.timing("%d rounds of changes replicated with state_dir full (log lines: %d)" % (
            rounds, len(lines)), 0)

        os.unlink(filler)
        t_free = time.monotonic()
        wait(lambda: "written again" in a.log_text()[log_before:], 10,
             "the state written once space returned")
        secs = time.monotonic() - t_free
        self.timing("space back -> state written", secs)
        rows = db_users(db)
        for u in self.USERS:
            # field 8: last_successful_sync (the syncs made while the disk was full)
            self.assertGreaterEqual(int(rows[u][7]), t_full, rows[u])
        self.assertEqual(faultkit.replicator_pid(a), pid)
        self.assert_no_crash()
        print("state-full: %d rounds of changes (%d users) replicated while full, %d log line; "
              "state written %.1f s after space returned" % (
                  rounds, len(self.USERS), len(lines), secs), file=sys.stderr)


class CorruptStateFile(PairTest):
    """replicator.db corrupted while Dovecot A is stopped: at start the daemon imports
    the good lines, moves the file aside byte for byte with one log line, gets the
    other users from the userdb listing, and replicates as before."""
    USERS = ("c1", "c2", "c3")

    def test_corrupt_replicator_db(self):
        p = self.pair
        a = p.a
        db = os.path.join(a.state_dir, "replicator.db")
        p.wait_quiet()
        wait(lambda: os.path.exists(db) and set(db_users(db)) >= set(self.USERS), 15,
             "replicator.db written with every user")
        self.assertEqual(a.stop(), [], "A left processes behind")
        with open(db, "rb") as fh:
            good = fh.read()
        lines = good.split(b"\n")
        # c1's line stays good; every other user's line is cut short; then garbage
        broken = b"\n".join(l if l.startswith(b"c1\t") else l[:3] for l in lines if l)
        broken += b"\n\x00\xff not a record\n"
        with open(db, "wb") as fh:
            fh.write(broken)
        for f in os.listdir(a.state_dir):
            if f.startswith("replicator.db.log"):
                os.unlink(os.path.join(a.state_dir, f))
        log_before = faultkit.log_size(a)
        a.start()
        a.doveadm("replicator", "status")  # the master starts the replicator on first use
        aside_line = lambda: [l for l in a.log_text()[log_before:].splitlines()
                              if "is unreadable or corrupt" in l and "moved aside to" in l]
        wait(aside_line, 20, "one log line: replicator.db moved aside")
        self.assertEqual(len(aside_line()), 1, aside_line())
        aside = [f for f in os.listdir(a.state_dir) if f.startswith("replicator.db.broken-")]
        self.assertEqual(len(aside), 1, os.listdir(a.state_dir))
        with open(os.path.join(a.state_dir, aside[0]), "rb") as fh:
            self.assertEqual(fh.read(), broken, "the moved-aside file is not the broken one")
        self.assertIn(aside[0], aside_line()[0])
        # every user back (c1 from the file, the rest from the userdb), and replicating
        mids = {u: "corrupt-%s-%s@e2e" % (u, uuid.uuid4().hex[:8]) for u in self.USERS}
        for u in self.USERS:
            a.append(u, mids[u])
        wait(lambda: all(on_b(p, u, mids[u]) for u in self.USERS), 30,
             "every change on B after the start with a corrupt replicator.db")
        wait(lambda: os.path.exists(db) and set(db_users(db)) >= set(self.USERS), 15,
             "a new replicator.db with every user")
        self.assert_no_crash()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--port-base", type=int, default=test_faults.OPTS.port_base)
    ap.add_argument("--keep", action="store_true")
    opts, rest = ap.parse_known_args()
    test_faults.OPTS.prefix = os.path.abspath(opts.prefix)
    test_faults.OPTS.port_base, test_faults.OPTS.keep = opts.port_base, opts.keep
    if os.geteuid() != 0:
        print("state-full: needs root (tmpfs mount, private Dovecot masters): skipped", file=sys.stderr)
        return 77
    probe = tempfile.mkdtemp(prefix="drepl-e2e-mountprobe-", dir="/tmp")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "drepl-probe", probe],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("state-full: cannot mount a tmpfs (%s): skipped" % r.stderr.strip(), file=sys.stderr)
            return 77
        subprocess.run(["umount", probe], check=True)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
