#!/usr/bin/env python3
"""A fake replicator-doveadm server for testing the doveadm commands.

Speaks the 2.3 replicator-doveadm protocol (spec section 8) and our
STATUS-DETAIL extension over a UNIX socket, answering from a fixed set of
users whose timestamps are relative to the server's start time. With
--stock it behaves like a stock 2.3 replicator for STATUS-DETAIL (logs
"Unknown command" and disconnects without a reply).

Usage: fake_replicator.py <socket path> [--stock] [--now <unix secs>]
Prints "ready" on stdout once listening. Also importable: FakeReplicator
runs the same server in a thread and records the request lines.
"""
import argparse
import fnmatch
import os
import socket
import sys
import threading
import time

ESC = {"\x00": "\x010", "\x01": "\x011", "\t": "\x01t", "\r": "\x01r", "\n": "\x01n"}
UNESC = {"0": "\x00", "1": "\x01", "t": "\t", "r": "\r", "n": "\n"}


def tab_escape(s):
    return "".join(ESC.get(c, c) for c in s)


def tab_unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\x01":
            if i + 1 < len(s):
                out.append(UNESC.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def wildcard(name, mask):
    # Dovecot's wildcard_match: only * and ?; no character classes.
    return fnmatch.fnmatchcase(name, mask.replace("[", "[[]"))


class Users:
    def __init__(self, now):
        n = now
        never = 9223372036854775807
        # name, prio, fast, full, failed, success, next_secs,
        # failures, kind, error, next_sync_time, flags
        self.rows = [
            ["alice@example.com", "none", n - 1000, n - 86000, 0, n - 998, 400,
             0, "none", "", n + 400, ""],
            ["bob@example.com", "high", n - 4000, n - 4000, 0, n - 3990, 0,
             0, "none", "", n - 60, ""],
            ["carol@example.com", "none", n - 200, n - 200, 1, n - 90000, 100,
             3, "connect_refused",
             "connect(10.0.0.2:12345) failed: Connection refused", n + 100, ""],
            ["dave@example.com", "none", n - 50, n - 50, 0, 0, never,
             0, "no_replica", "mail_replica is not set", 0, "never_sync"],
            ["erin\twith tab", "low", n - 5, n - 5, 0, n - 7200, 0,
             0, "none", "", n - 5, "in_flight,full_sync_running"],
        ]

    def match(self, mask):
        return [r for r in self.rows if wildcard(r[0], mask)]


def status_line(r):
    return "\t".join([tab_escape(r[0])] + [str(v) for v in r[1:7]]) + "\n"


def detail_line(r):
    return (status_line(r)[:-1] + "\t%d\t%s\t%s\t%d\t%s\n"
            % (r[7], r[8], tab_escape(r[9]), r[10], r[11]))


def answer(users, stock, line):
    """The reply to one command line, or None to disconnect (stock: an
    unknown command or wrong parameters)."""
    args = [tab_unescape(a) for a in line.split("\t")]
    cmd = args[0]
    if cmd == "STATUS" and len(args) == 1:
        return ("Queued 'sync' requests\t0\nQueued 'high' requests\t1\n"
                "Queued 'low' requests\t1\nQueued 'failed' requests\t0\n"
                "Queued 'full resync' requests\t0\nWaiting 'failed' requests\t1\n"
                "Total number of known users\t%d\n\n" % len(users.rows))
    if cmd == "STATUS":
        return "".join(status_line(r) for r in users.match(args[1])) + "\n"
    if cmd == "STATUS-DETAIL" and not stock:
        mask = args[1] if len(args) > 1 and args[1] else "*"
        return "".join(detail_line(r) for r in users.match(mask)) + "\n"
    if cmd == "STATUS-DSYNC":
        return ("erin\x01twith tab\tfull\tWaiting for dsync to finish\n"
                "\t-\tNot connected\n\n")
    if cmd == "REPLICATE" and len(args) == 4:
        if args[1] not in ("none", "low", "high", "sync"):
            return "-Invalid priority\n"
        if "*" in args[3] or "?" in args[3]:
            return "+%d\n" % len(users.match(args[3]))
        return "+1\n"
    if cmd == "ADD" and len(args) == 2:
        return "+\n"
    if cmd == "REMOVE" and len(args) == 2:
        return "+\n" if any(r[0] == args[1] for r in users.rows) else "-User not found\n"
    return None


class FakeReplicator:
    """The server on a UNIX socket, accepting in a background thread."""

    def __init__(self, path, stock=False, now=None,
                 greeting="VERSION\treplicator-doveadm-server\t1\t0\n"):
        self.path = path
        self.greeting = greeting.encode()
        self.stock = stock
        self.now = int(time.time()) if now is None else now
        self.users = Users(self.now)
        self.requests = []          # every line received, handshake included
        self.errors = []            # "Unknown command: ..." texts
        self._lock = threading.Lock()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(path)
        self._srv.listen(16)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def close(self):
        self._srv.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            f = conn.makefile("rb", buffering=0)
            conn.sendall(self.greeting)
            first = True
            while True:
                raw = f.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
                with self._lock:
                    self.requests.append(line)
                if first:
                    first = False
                    if not line.startswith("VERSION\treplicator-doveadm-client\t1\t"):
                        return
                    continue
                out = answer(self.users, self.stock, line)
                if out is None:
                    with self._lock:
                        self.errors.append("Unknown command: " + line.split("\t")[0])
                    return
                conn.sendall(out.encode())
        finally:
            conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--stock", action="store_true")
    ap.add_argument("--now", type=int, default=None)
    a = ap.parse_args()
    srv = FakeReplicator(a.path, a.stock, a.now)
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.close()


if __name__ == "__main__":
    main()
