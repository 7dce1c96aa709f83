#!/usr/bin/env python3
"""man -l renders replicator(8) and doveadm-replicator(1) without a warning, and they
document what they must: every option `replicator --help` lists, the sections
replicator(8) promises, every doveadm replicator subcommand including detail.
  test_man_pages.py --man-dir DIR --replicator BIN
Exit 77 (skipped) without man (man-db)."""
import argparse
import os
import re
import shutil
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def render(path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = r.stderr.decode()
    if r.returncode != 0 or err.strip():
        fail("man -l %s: rc %d, warnings:\n%s" % (path, r.returncode, err))
    # Plain text: drop overstrike bold/underline.
    return re.sub(r".\x08", "", r.stdout.decode())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--man-dir", required=True)
    p.add_argument("--replicator", required=True)
    a = p.parse_args()
    if shutil.which("man") is None:
        print("skipped: man missing")
        sys.exit(77)

    r8 = render(os.path.join(a.man_dir, "replicator.8"))
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SYSTEMD OR DOVECOT'S MASTER", "OPTIONS",
                    "SETTINGS", "FILES", "SIGNALS", "EXIT STATUS", "SEE ALSO"):
        if not re.search(r"^" + re.escape(section) + r"$", r8, re.M):
            fail("replicator(8) has no %s section" % section)
    help_text = subprocess.run([a.replicator, "--help"], stdout=subprocess.PIPE).stdout.decode()
    options = sorted(set(re.findall(r"(--[a-z][a-z-]+)", help_text)))
    if len(options) < 10:
        fail("found only %r in replicator --help" % options)
    for opt in options:
        if opt not in r8:
            fail("replicator(8) does not document %s" % opt)
    for word in ("SIGHUP", "SIGTERM", "89", "64", "replication_max_conns", "mail_replica",
                 "dovecot-replicator.service", "replicator.db"):
        if word not in r8:
            fail("replicator(8) does not mention %s" % word)

    d1 = render(os.path.join(a.man_dir, "doveadm-replicator.1"))
    for cmd in ("status", "dsync-status", "replicate", "add", "remove", "detail"):
        if not re.search(r"^   replicator " + re.escape(cmd) + r"$", d1, re.M):
            fail("doveadm-replicator(1) has no subsection for replicator %s" % cmd)
        if "doveadm replicator " + cmd not in d1:
            fail("doveadm-replicator(1) has no synopsis for replicator %s" % cmd)
    print("replicator(8): %d options documented; doveadm-replicator(1): 6 subcommands" % len(options))


if __name__ == "__main__":
    main()
