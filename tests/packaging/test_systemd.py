#!/usr/bin/env python3
"""The replicator as a systemd service, tested without a running systemd.

  test_systemd.py notify --replicator BIN
      systemd-socket-activate hands the replicator two named UNIX listeners
      (replicator-doveadm, replicator) and a NOTIFY_SOCKET this test owns, with
      WATCHDOG_USEC. Checks: the first connection starts it and is served on the
      passed socket (the replicator-doveadm handshake); READY=1 within a deadline
      with a STATUS= line in the documented format; WATCHDOG=1 at half the
      watchdog interval; SIGHUP sends RELOADING=1 then READY=1 and the process
      keeps serving; SIGTERM sends STOPPING=1 and exits 0, the queue saved.
  test_systemd.py listen-fds --replicator BIN
      The four listeners as the .socket units pass them (FIFO included, which
      systemd-socket-activate can't create): LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES;
      the plugin's FIFO and socket lines reach the queue, replicator-doveadm answers.
  test_systemd.py verify --units DIR --replicator BIN
      systemd-analyze verify on the configured units (ExecStart pointed at the
      built binary); any warning fails.
Exit 77 (skipped) when a needed tool is missing.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEADLINE_READY = 20.0  # seconds: READY=1 after the first connection


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Notify:
    """A NOTIFY_SOCKET datagram socket; collects sd_notify messages."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # (monotonic time, {key: value})

    def poll(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = {}
        for line in data.decode().split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key, deadline_s, value=None):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            m = self.poll(end - time.monotonic())
            if m is not None and key in m and (value is None or m[key] == value):
                return m
        fail("no %s%s within %.0f s; got %r" % (key, "=" + value if value else "", deadline_s,
                                                [m for _, m in self.messages]))


def recv_line(sock, deadline_s):
    sock.settimeout(deadline_s)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode()


STATUS_RE = re.compile(r"^Queued: \d+ sync, \d+ high, \d+ low, \d+ failed, \d+ full resync; "
                       r"\d+ of (\d+) syncs running; \d+ users$")


def test_notify(args):
    for tool in ("systemd-socket-activate",):
        if shutil.which(tool) is None:
            print("skipped: %s missing" % tool)
            sys.exit(77)
    d = tempfile.mkdtemp(prefix="drepl-systemd-")
    proc = None
    try:
        notify = Notify(os.path.join(d, "notify"))
        # The sockets live apart from base_dir: a replicator that ignored the
        # passed fds would listen on <base_dir>/replicator-doveadm and this
        # test's connections would never be answered.
        os.mkdir(os.path.join(d, "sock"))
        os.mkdir(os.path.join(d, "base"))
        doveadm_path = os.path.join(d, "sock", "replicator-doveadm")
        notify_path = os.path.join(d, "sock", "replicator")
        watchdog_usec = 400000
        # Settings through doveconf, as under systemd; SIGHUP re-reads this file.
        conf = os.path.join(d, "dovecot.conf")
        conf_text = ("base_dir = %s\nstate_dir = %s\nssl = no\n"
                     "auth_socket_path = %s\ndoveadm_socket_path = %s\n"
                     % (os.path.join(d, "base"), d, os.path.join(d, "no-auth"),
                        os.path.join(d, "no-doveadm")))
        with open(conf, "w") as f:
            f.write(conf_text + "replication_max_conns = 3\n")
        cmd = ["systemd-socket-activate", "-l", doveadm_path, "-l", notify_path,
               "--fdname=replicator-doveadm:replicator",
               "-E", "NOTIFY_SOCKET=" + os.path.join(d, "notify"),
               "-E", "WATCHDOG_USEC=%d" % watchdog_usec,
               args.replicator, "--foreground", "-c", conf]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # systemd-socket-activate listens, then execs the replicator on the
        # first connection (same pid).
        end = time.monotonic() + 10
        while not os.path.exists(doveadm_path):
            if time.monotonic() > end or proc.poll() is not None:
                fail("systemd-socket-activate did not listen: %r" % proc.stdout.read())
            time.sleep(0.05)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(doveadm_path)
        started = time.monotonic()
        hello = recv_line(c, DEADLINE_READY)
        if hello != "VERSION\treplicator-doveadm-server\t1\t0\n":
            fail("the socket systemd passed as replicator-doveadm answered %r" % hello)
        c.sendall(b"VERSION\treplicator-doveadm-client\t1\t0\n")

        ready = notify.wait_for("READY", DEADLINE_READY - (time.monotonic() - started), "1")
        status = ready.get("STATUS", "")
        m = STATUS_RE.match(status)
        if not m or m.group(1) != "3":
            fail("READY's STATUS is %r, want the queue line with 'of 3 syncs running'" % status)
        print("READY after %.2f s, STATUS=%s" % (time.monotonic() - started, status))

        # The replicator-notify socket (named "replicator") is served too.
        n = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        n.connect(notify_path)
        n.sendall(b"VERSION\treplicator-notify\t1\t0\nU\tcarol\thigh\n")
        end = time.monotonic() + 10
        while not any(msg.get("STATUS", "").endswith("; 1 users") for _, msg in notify.messages):
            if time.monotonic() > end:
                fail("STATUS never counted the user notified on the passed 'replicator' "
                     "socket: %r" % [m for _, m in notify.messages][-3:])
            notify.poll(end - time.monotonic())

        # WATCHDOG=1 every WATCHDOG_USEC/2 (0.2 s): count them over 2 s.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            notify.poll(2.0 - (time.monotonic() - t0))
        pings = [t for t, msg in notify.messages if msg.get("WATCHDOG") == "1" and t >= t0]
        if not 7 <= len(pings) <= 13:
            fail("%d WATCHDOG=1 in 2 s, want about 10 (every 0.2 s)" % len(pings))
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        if max(gaps) > 0.4:
            fail("WATCHDOG=1 gap of %.2f s, want at most half WATCHDOG_USEC (0.2 s) plus slack"
                 % max(gaps))
        print("%d WATCHDOG=1 in 2 s, largest gap %.3f s" % (len(pings), max(gaps)))

        # SIGHUP: reload (RELOADING=1, then READY=1) with a new
        # replication_max_conns; the queue (carol) is kept, still serving.
        with open(conf, "w") as f:
            f.write(conf_text + "replication_max_conns = 5\n")
        os.kill(proc.pid, signal.SIGHUP)
        notify.wait_for("RELOADING", 10, "1")
        again = notify.wait_for("READY", 10, "1")
        m = STATUS_RE.match(again.get("STATUS", ""))
        if not m or m.group(1) != "5" or not again["STATUS"].endswith("; 1 users"):
            fail("READY after reload has STATUS %r, want 'of 5 syncs running' and '1 users'"
                 % again.get("STATUS"))
        # An invalid value: one error line, the running settings stay.
        with open(conf, "w") as f:
            f.write(conf_text + "replication_max_conns = ten\n")
        os.kill(proc.pid, signal.SIGHUP)
        notify.wait_for("RELOADING", 10, "1")
        kept = notify.wait_for("READY", 10, "1")
        m = STATUS_RE.match(kept.get("STATUS", ""))
        if not m or m.group(1) != "5":
            fail("after an invalid reload STATUS is %r, want 'of 5 syncs running'"
                 % kept.get("STATUS"))
        c2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c2.connect(doveadm_path)
        if recv_line(c2, 10) != "VERSION\treplicator-doveadm-server\t1\t0\n":
            fail("not serving replicator-doveadm after SIGHUP")

        # SIGTERM: STOPPING=1, exit 0, replicator.db written.
        os.kill(proc.pid, signal.SIGTERM)
        notify.wait_for("STOPPING", 10, "1")
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            fail("still running 20 s after SIGTERM")
        log = proc.stdout.read().decode(errors="replace")
        proc = None
        if rc != 0:
            fail("exit code %d after SIGTERM; log:\n%s" % (rc, log))
        if "replication_max_conns changed" not in log:
            fail("no 'Reloaded settings ... replication_max_conns' line in the log:\n" + log)
        if "Reload failed, keeping the running settings: " not in log:
            fail("no 'Reload failed' line for the invalid value in the log:\n" + log)
        if not os.path.exists(os.path.join(d, "replicator.db")):
            fail("no replicator.db after stop")
        print("reload and stop OK")
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_listen_fds(args):
    """What the four .socket units hand over, FIFO included (which
    systemd-socket-activate can't create): LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES
    with fds 3.. set up here, as systemd does. The plugin's FIFO and socket lines
    reach the queue; replicator-doveadm answers."""
    d = tempfile.mkdtemp(prefix="drepl-listenfds-")
    proc = None
    try:
        notify = Notify(os.path.join(d, "notify"))
        os.mkdir(os.path.join(d, "sock"))
        os.mkdir(os.path.join(d, "base"))
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("base_dir = %s\nstate_dir = %s\nssl = no\nauth_socket_path = %s\n"
                    "doveadm_socket_path = %s\n" % (os.path.join(d, "base"), d,
                                                     os.path.join(d, "no-auth"),
                                                     os.path.join(d, "no-doveadm")))
        fifo_path = os.path.join(d, "sock", "replication-notify-fifo")
        os.mkfifo(fifo_path, 0o600)
        fds = [os.open(fifo_path, os.O_RDWR | os.O_NONBLOCK)]
        names = ["replication-notify-fifo"]
        for name in ("replication-notify", "replicator-doveadm", "replicator"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.path.join(d, "sock", name))
            s.listen(16)
            fds.append(s.detach())
            names.append(name)
        high = [os.dup(fd) for fd in fds]  # out of the way of 3..6

        def child_fds():
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i, inheritable=True)

        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(d, "notify"),
                   LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join(names))
        env.pop("WATCHDOG_USEC", None)
        # LISTEN_PID must be the replicator's own pid: set by the shell it replaces.
        proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', args.replicator,
                                 "--foreground", "-c", conf], env=env, preexec_fn=child_fds,
                                close_fds=False, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        for fd in fds + high:
            os.close(fd)
        notify.wait_for("READY", DEADLINE_READY, "1")

        def wait_users(n):
            end = time.monotonic() + 10
            want = "; %d users" % n
            while not any(m.get("STATUS", "").endswith(want) for _, m in notify.messages):
                if time.monotonic() > end:
                    fail("STATUS never showed %d users: %r" % (n, [m for _, m in notify.messages][-3:]))
                notify.poll(end - time.monotonic())

        with open(fifo_path, "w") as f:  # the plugin's async notification
            f.write("dave\thigh\n")
        wait_users(1)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(os.path.join(d, "sock", "replication-notify"))
        c.sendall(b"erin\tlow\n")
        wait_users(2)
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        a.connect(os.path.join(d, "sock", "replicator-doveadm"))
        if recv_line(a, 10) != "VERSION\treplicator-doveadm-server\t1\t0\n":
            fail("replicator-doveadm passed as fd 5 does not answer")
        if os.listdir(os.path.join(d, "base")):
            fail("the replicator created listeners of its own: %r" % os.listdir(os.path.join(d, "base")))
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", 10, "1")
        rc = proc.wait(20)
        log = proc.stdout.read().decode(errors="replace")
        proc = None
        if rc != 0:
            fail("exit code %d; log:\n%s" % (rc, log))
        print("LISTEN_FDS: FIFO, replication-notify, replicator-doveadm served by name")
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_verify(args):
    if shutil.which("systemd-analyze") is None:
        print("skipped: systemd-analyze missing")
        sys.exit(77)
    d = tempfile.mkdtemp(prefix="drepl-units-")
    try:
        units = sorted(f for f in os.listdir(args.units) if f.endswith((".service", ".socket")))
        if len(units) != 5:
            fail("want 1 service + 4 sockets in %s, found %r" % (args.units, units))
        for u in units:
            with open(os.path.join(args.units, u)) as f:
                text = f.read()
            # The unit names the installed path; verify checks it is executable.
            text = re.sub(r"^ExecStart=\S+/replicator", "ExecStart=" + args.replicator, text,
                          flags=re.M)
            with open(os.path.join(d, u), "w") as f:
                f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no"] +
                           [os.path.join(d, u) for u in units],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = r.stdout.decode()
        if r.returncode != 0 or out.strip():
            fail("systemd-analyze verify (rc %d):\n%s" % (r.returncode, out))
        # What the units promise: the listener names and modes, hardening.
        svc = open(os.path.join(d, "dovecot-replicator.service")).read()
        for want in ("Type=notify", "ProtectSystem=strict", "ReadWritePaths=/var/lib/dovecot",
                     "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_KILL", "WatchdogSec=",
                     "ExecReload=/bin/kill -HUP $MAINPID"):
            if want not in svc:
                fail("dovecot-replicator.service lacks %s" % want)
        names = {}
        for u in units:
            if not u.endswith(".socket"):
                continue
            text = open(os.path.join(d, u)).read()
            name = re.search(r"^FileDescriptorName=(\S+)$", text, re.M).group(1)
            listen = re.search(r"^Listen(?:Stream|FIFO)=(\S+)$", text, re.M).group(1)
            if listen != "/run/dovecot/" + name:
                fail("%s listens on %s, want /run/dovecot/%s" % (u, listen, name))
            if "SocketMode=0600" not in text:
                fail("%s is not mode 0600" % u)
            names[name] = u
        want = {"replicator", "replicator-doveadm", "replication-notify", "replication-notify-fifo"}
        if set(names) != want:
            fail("socket names %r, want %r" % (sorted(names), sorted(want)))
        print("verified: " + " ".join(units))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["notify", "listen-fds", "verify"])
    p.add_argument("--replicator", required=True)
    p.add_argument("--units")
    args = p.parse_args()
    {"notify": test_notify, "listen-fds": test_listen_fds, "verify": test_verify}[args.mode](args)


if __name__ == "__main__":
    main()
