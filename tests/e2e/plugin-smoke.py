#!/usr/bin/python3
"""Smoke test of lib20_replication_plugin.so inside a private Dovecot 2.3.

ctest e2e-plugin-smoke (label e2e, about 50 s). Needs root, dovecot-core +
dovecot-imapd (two private Dovecot 2.3 instances); exits 77 (skipped) without
root or Dovecot. By hand:

  tests/e2e/plugin-smoke.py --plugin build/plugin/lib20_replication_plugin.so \
      [--workdir DIR] [--port-base N] [--keep]

The work directory (default: a new /tmp/drepl-e2e-plugin-smoke-*) is removed
after a run that passed, unless --keep.

Instance A loads `notify replication` with mail_replica set. Nothing real reads
the FIFO: `service aggregator` is overridden with this very script in
--fake-aggregator mode, which appends every FIFO line (with a timestamp) to a
dump file and answers sync requests on replication-notify with the reply in a
mode file ("+", "-" or "none" = never answer). Instance B has no plugin; it is
the other side of `doveadm sync` runs INTO A.

Checks:
  APPEND -> one "alice\\thigh" line; dovecot-lda delivery -> high, well under 500 ms after the APPEND
  STORE / EXPUNGE / CREATE / RENAME / DELETE / SUBSCRIBE -> "low" lines
  a burst of changes -> merged lines (far fewer lines than changes)
  doveadm sync B -> A (dsync-server in A) and A <-> B (dsync in A's doveadm)
      -> NO lines
  replication_sync_timeout = 2s: "+" -> no FIFO line; "none" -> warning after
      ~2 s, APPEND still succeeds, one "high" line
Ports used: port-base + 0..3 on 127.0.0.1; by default the first free block of
4 in 37000-37990 (DREPL_E2E_PLUGIN_PORT_BASE overrides).
"""
import argparse
import imaplib
import os
import pwd
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77  # ctest SKIP_RETURN_CODE

# ---------------------------------------------------------------------------
# fake aggregator (runs as a Dovecot service)


def fake_aggregator(dump_path, mode_path):
    """Reads the master-passed listeners (fds from 7 on, 2.3) and dumps lines."""
    count = int(os.environ.get("SOCKET_COUNT", "0"))
    generation = int(os.environ.get("GENERATION", "0"))
    client_limit = int(os.environ.get("CLIENT_LIMIT", "1000") or "1000")
    # master_status: pid, uid (= GENERATION), available_count. Required < 30 s.
    os.write(5, struct.pack("=iII", os.getpid(), generation, client_limit))
    sel = selectors.DefaultSelector()
    for n in range(count):
        name = os.environ.get(f"SOCKET{n}_SETTINGS", "")
        fd = 7 + n
        if "fifo" in name:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, ("fifo", b""))
        else:
            lsock = socket.socket(fileno=fd)
            lsock.setblocking(False)
            sel.register(lsock, selectors.EVENT_READ, ("listen", None))

    def dump(kind, line):
        with open(dump_path, "a") as f:
            f.write(f"{time.time():.6f} {kind} {line!r}\n")

    while True:
        for key, _ in sel.select(timeout=1.0):
            kind, buf = key.data
            if kind == "fifo":
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    continue
                buf += data
                *lines, rest = buf.split(b"\n")
                for line in lines:
                    dump("fifo", line.decode("utf-8", "replace"))
                sel.modify(key.fd, selectors.EVENT_READ, ("fifo", rest))
            elif kind == "listen":
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, ("conn", b""))
            else:
                conn = key.fileobj
                try:
                    data = conn.recv(4096)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(conn)
                    conn.close()
                    continue
                buf += data
                *lines, rest = buf.split(b"\n")
                sel.modify(conn, selectors.EVENT_READ, ("conn", rest))
                for line in lines:
                    dump("socket", line.decode("utf-8", "replace"))
                    try:
                        mode = open(mode_path).read().strip()
                    except OSError:
                        mode = "+"
                    if mode in ("+", "-"):
                        conn.sendall(mode.encode() + b"\n")


# ---------------------------------------------------------------------------
# instance set-up

CONF = """\
instance_name = drepl-plugin-{name}
protocols = imap
listen = 127.0.0.1
base_dir = {w}/run
state_dir = {w}/state
log_path = {w}/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S.%{{usecs}} "
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 500
mail_debug = {debug}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {w}/users.passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {w}/users.passwd
  default_fields = uid=vmail gid=vmail home={w}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service doveadm {{
  inet_listener {{
    address = 127.0.0.1
    port = {doveadm_port}
  }}
}}
doveadm_port = {doveadm_port}
doveadm_password = smoke-secret
service replicator {{
  process_min_avail = 0
}}
{extra}
"""

PLUGIN_EXTRA = """\
mail_plugin_dir = {w}/modules
mail_plugins = $mail_plugins notify replication
service aggregator {{
  process_min_avail = 1
  executable = /usr/bin/python3 {w}/plugin-smoke.py --fake-aggregator {w}/dump/lines.log {w}/dump/sync-mode
  chroot =
  fifo_listener replication-notify-fifo {{
    user = vmail
    mode = 0600
  }}
  unix_listener replication-notify {{
    user = vmail
    mode = 0600
  }}
}}
plugin {{
  mail_replica = tcp:127.0.0.1:{replica_port}
  {sync_timeout}
}}
"""


def run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


class Instance:
    def __init__(self, workdir, name, imap_port, doveadm_port, plugin=None, sync_timeout=""):
        self.w = os.path.join(workdir, name)
        self.name = name
        self.imap_port = imap_port
        self.doveadm_port = doveadm_port
        self.plugin = plugin
        self.sync_timeout = sync_timeout
        self.conf = os.path.join(self.w, "dovecot.conf")

    def setup(self, replica_port):
        vmail = pwd.getpwnam("vmail")
        for d in ("run", "state", "home", "modules", "dump"):
            os.makedirs(os.path.join(self.w, d), exist_ok=True)
        os.chown(os.path.join(self.w, "home"), vmail.pw_uid, vmail.pw_gid)
        os.chmod(os.path.join(self.w, "dump"), 0o777)
        with open(os.path.join(self.w, "users.passwd"), "w") as f:
            f.write("alice:{PLAIN}pass::::::\nbob:{PLAIN}pass::::::\n")
        extra = ""
        if self.plugin:
            mods = os.path.join(self.w, "modules")
            for n in os.listdir(mods):
                os.unlink(os.path.join(mods, n))
            os.symlink("/usr/lib/dovecot/modules/lib15_notify_plugin.so",
                       os.path.join(mods, "lib15_notify_plugin.so"))
            # A copy, not a symlink: rebuilding must not change a loaded file.
            shutil.copy(self.plugin, os.path.join(mods, "lib20_replication_plugin.so"))
            shutil.copy(os.path.abspath(__file__), os.path.join(self.w, "plugin-smoke.py"))
            os.chmod(os.path.join(self.w, "plugin-smoke.py"), 0o755)
            extra = PLUGIN_EXTRA.format(
                w=self.w, replica_port=replica_port,
                sync_timeout=(f"replication_sync_timeout = {self.sync_timeout}"
                              if self.sync_timeout else ""))
        with open(self.conf, "w") as f:
            f.write(CONF.format(w=self.w, name=self.name, imap_port=self.imap_port,
                                doveadm_port=self.doveadm_port, extra=extra,
                                debug="yes" if self.plugin else "no"))

    def start(self):
        # The daemon keeps inherited fds open: never capture its output.
        subprocess.run(["dovecot", "-c", self.conf], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.imap_port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name}: IMAP not listening")

    def stop(self):
        run("doveadm", "-c", self.conf, "stop", check=False)
        # wait for the master to go away (its pid file disappears)
        pidfile = os.path.join(self.w, "run", "master.pid")
        deadline = time.time() + 10
        while os.path.exists(pidfile) and time.time() < deadline:
            time.sleep(0.05)

    def imap(self, user="alice"):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        m.login(user, "pass")
        return m

    def log(self):
        with open(os.path.join(self.w, "dovecot.log"), errors="replace") as f:
            return f.read()


class Dump:
    def __init__(self, inst):
        self.path = os.path.join(inst.w, "dump", "lines.log")
        self.mode_path = os.path.join(inst.w, "dump", "sync-mode")
        self.pos = 0

    def set_sync_mode(self, mode):
        with open(self.mode_path, "w") as f:
            f.write(mode + "\n")

    def new(self):
        """Entries (time, kind, line) appended since the last call."""
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return []
        out = []
        for raw in data.splitlines():
            ts, kind, line = raw.split(" ", 2)
            out.append((float(ts), kind, eval(line)))  # repr() of a str
        return out

    def wait(self, n, timeout=3.0):
        """Polls until n new entries arrived (or timeout); returns them."""
        got = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            got += self.new()
            if len(got) >= n:
                break
            time.sleep(0.02)
        return got

    def quiet(self, secs):
        """Collects everything arriving in the next `secs` seconds."""
        got = []
        deadline = time.time() + secs
        while time.time() < deadline:
            got += self.new()
            time.sleep(0.05)
        return got + self.new()


MSG = b"From: a@example.com\r\nSubject: smoke %d\r\n\r\nhello %d\r\n"

results = []


def check(name, ok, detail=""):
    results.append((name, ok))
    print(f"[{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""), flush=True)


def scenario_async(a, dump):
    m = a.imap()
    m.select("INBOX")  # autocreates INBOX: a mailbox_create -> low
    got = dump.quiet(1.0)
    check("first SELECT (INBOX autocreate) -> low", [e[2] for e in got] == ["alice\tlow"], got)
    t0 = time.time()
    m.append("INBOX", None, None, MSG % (1, 1))
    t_append = time.time()
    got = dump.wait(1)
    check("APPEND -> one high line", [e[1:] for e in got] == [("fifo", "alice\thigh")], got)
    if got:
        # A line held for the coalescing window would come 500 ms late.
        check("APPEND line sent at once (< 400 ms after APPEND returned)",
              got[0][0] - t_append < 0.4,
              f"{(got[0][0] - t0) * 1000:.1f} ms after APPEND was sent, "
              f"{(got[0][0] - t_append) * 1000:.1f} ms after it returned")
    time.sleep(0.6)  # leave the coalescing window
    dump.new()

    def one(label, fn, want):
        time.sleep(0.6)
        dump.new()
        fn()
        got = dump.wait(1)
        rest = dump.quiet(0.7)
        check(f"{label} -> {want}", [e[2] for e in got + rest] == [f"alice\t{want}"], got + rest)

    one("STORE +FLAGS \\Seen", lambda: m.store("1", "+FLAGS", "\\Seen"), "low")
    one("STORE keyword", lambda: m.store("1", "+FLAGS", "smokekw"), "low")
    m.append("INBOX", None, None, MSG % (2, 2))
    dump.quiet(0.7)
    one("STORE \\Deleted + EXPUNGE",
        lambda: (m.store("2", "+FLAGS", "\\Deleted"), m.expunge()), "low")
    one("CREATE", lambda: m.create("smoke1"), "low")
    one("RENAME", lambda: m.rename("smoke1", "smoke2"), "low")
    one("SUBSCRIBE", lambda: m.subscribe("smoke2"), "low")
    one("UNSUBSCRIBE", lambda: m.unsubscribe("smoke2"), "low")
    one("DELETE", lambda: m.delete("smoke2"), "low")
    one("COPY within the storage", lambda: m.copy("1", "INBOX"), "low")

    # burst: 20 flag changes + one APPEND in quick succession
    time.sleep(0.6)
    dump.new()
    for i in range(20):
        m.store("1", "+FLAGS" if i % 2 == 0 else "-FLAGS", "\\Flagged")
    m.append("INBOX", None, None, MSG % (3, 3))
    got = dump.quiet(1.5)
    lines = [e[2] for e in got]
    check("burst of 21 changes is coalesced (first at once, rest merged, max priority)",
          len(lines) <= 4 and lines[0] == "alice\tlow" and lines[-1] == "alice\thigh",
          lines)
    m.logout()
    got = dump.quiet(0.7)
    check("LOGOUT flushes nothing extra", got == [], got)


def dsync(inst, cmd, dest):
    """doveadm sync/backup for bob; a run that ends in a desync warning
    (exit 2, "run dsync again") is repeated once, as the warning asks."""
    r = run("doveadm", "-c", inst.conf, cmd, "-u", "bob", dest, check=False)
    if r.returncode == 2:
        print(f"  (dsync exit 2, running again: {r.stderr.strip()[:160]})", flush=True)
        r = run("doveadm", "-c", inst.conf, cmd, "-u", "bob", dest, check=False)
    return r


def scenario_delivery(a, dump):
    time.sleep(0.6)
    dump.new()
    msg = (MSG % (700, 700)).replace(b"\r\n", b"\n")
    r = subprocess.run(["/usr/lib/dovecot/dovecot-lda", "-c", a.conf, "-d", "alice",
                        "-f", "sender@example.com"], input=msg, capture_output=True)
    check("dovecot-lda delivery succeeded", r.returncode == 0, r.stderr.decode().strip())
    got = dump.wait(1)
    rest = dump.quiet(0.7)
    check("LDA delivery (copy from the raw storage) -> high",
          [e[2] for e in got + rest] == ["alice\thigh"], got + rest)

    # Note: a userdb field "mail_replica=" (empty) does NOT disable the plugin
    # on 2.3: Dovecot turns an empty userdb value into "yes" ("Added userdb
    # setting: plugin/mail_replica=yes"), exactly as for stock.


def scenario_dsync(a, b, dump):
    # bob never logged in to A, so A has no INBOX of its own for him: the
    # first dsync does not hit the INBOX-GUID desync that two independently
    # created INBOXes cause (exit 2 "Remote lost mailbox GUID", stock dsync).
    # Content on B: messages, flags, folders, subscriptions.
    mb = b.imap("bob")
    for i in range(5):
        mb.append("INBOX", None, None, MSG % (100 + i, i))
    mb.create("fromB")
    mb.subscribe("fromB")
    mb.append("fromB", None, None, MSG % (200, 200))
    mb.select("INBOX")
    mb.store("1:2", "+FLAGS", "\\Answered")
    mb.logout()
    time.sleep(0.6)
    dump.new()

    # 1. B pushes into A: dsync-server for bob runs in A's doveadm-server.
    r = dsync(b, "sync", f"tcp:127.0.0.1:{a.doveadm_port}")
    check("doveadm sync B -> A (tcp) succeeded", r.returncode == 0, r.stderr.strip())
    got = dump.quiet(1.5)
    check("dsync into A (dsync-server side) produced NO lines", got == [], got)

    # 2. More changes on B, including a rename and a delete of folders, then A
    #    runs dsync itself (A's doveadm applies B's changes locally).
    mb = b.imap("bob")
    mb.rename("fromB", "fromB2")
    mb.create("fromB3")
    mb.append("INBOX", None, None, MSG % (300, 300))
    mb.select("INBOX")
    mb.store("1", "+FLAGS", "\\Seen")
    mb.logout()
    mb = b.imap("bob")
    mb.delete("fromB3")
    mb.logout()
    time.sleep(0.6)
    dump.new()
    r = dsync(a, "sync", f"tcp:127.0.0.1:{b.doveadm_port}")
    check("doveadm sync A <-> B (run in A) succeeded", r.returncode == 0, r.stderr.strip())
    got = dump.quiet(1.5)
    check("dsync run in A produced NO lines", got == [], got)

    # 3. A local maildir synced into A.
    other = os.path.join(a.w, "other-maildir")
    vmail = pwd.getpwnam("vmail")
    os.makedirs(other, exist_ok=True)
    os.chown(other, vmail.pw_uid, vmail.pw_gid)
    r = run("doveadm", "-c", b.conf, "backup", "-u", "bob", f"maildir:{other}", check=False)
    check("doveadm backup B -> local maildir", r.returncode == 0, r.stderr.strip())
    run("chown", "-R", "vmail:vmail", other)
    mb = b.imap("bob")
    mb.append("INBOX", None, None, MSG % (400, 400))
    mb.create("onlyB")
    mb.logout()
    run("doveadm", "-c", b.conf, "backup", "-u", "bob", f"maildir:{other}", check=False)
    run("chown", "-R", "vmail:vmail", other)
    time.sleep(0.6)
    dump.new()
    r = dsync(a, "sync", f"maildir:{other}")
    check("doveadm sync A <-> local maildir succeeded", r.returncode == 0, r.stderr.strip())
    got = dump.quiet(1.5)
    check("local dsync into A produced NO lines", got == [], got)

    # Sanity: A really received B's content, and a normal change still notifies.
    ma = a.imap("bob")
    typ, data = ma.list()
    names = b" ".join(data)
    check("A has B's mailboxes after dsync", b"fromB2" in names and b"onlyB" in names, names)
    ma.select("INBOX")
    ma.store("1", "-FLAGS", "\\Seen")
    got = dump.wait(1)
    check("a user change after dsync still notifies", [e[2] for e in got] == ["bob\tlow"], got)
    ma.logout()


def scenario_sync(a, dump):
    ma = a.imap()
    dump.quiet(0.7)
    dump.set_sync_mode("+")
    t0 = time.time()
    ma.append("INBOX", None, None, MSG % (500, 500))
    got = dump.quiet(0.8)
    check("sync mode '+': one socket request, no FIFO line",
          [e[1:] for e in got] == [("socket", "alice\tsync")], got)
    dump.set_sync_mode("-")
    ma.append("INBOX", None, None, MSG % (501, 501))
    got = dump.quiet(0.8)
    check("sync mode '-': socket request then FIFO high",
          [e[1:] for e in got] == [("socket", "alice\tsync"), ("fifo", "alice\thigh")], got)
    dump.set_sync_mode("none")
    time.sleep(0.6)
    t0 = time.time()
    typ, _ = ma.append("INBOX", None, None, MSG % (502, 502))
    took = time.time() - t0
    got = dump.quiet(0.8)
    check("sync timeout: APPEND succeeds after ~2 s",
          typ == "OK" and 1.9 <= took < 3.5, f"{typ} in {took:.2f} s")
    check("sync timeout: FIFO high afterwards",
          [e[1:] for e in got] == [("socket", "alice\tsync"), ("fifo", "alice\thigh")], got)
    ma.logout()
    log = a.log()
    check("sync timeout logged one clear warning",
          log.count("Synchronous replication timeout: Timeout in 2000 msecs") == 1,
          [ln for ln in log.splitlines() if "Synchronous" in ln])


def scenario_fifo_missing(a, dump):
    """Aggregator FIFO removed: one warning, mail still works, later retry."""
    fifo = os.path.join(a.w, "run", "replication-notify-fifo")
    os.rename(fifo, fifo + ".away")
    try:
        ma = a.imap()
        ma.select("INBOX")
        typ, _ = ma.append("INBOX", None, None, MSG % (600, 600))
        check("missing FIFO: APPEND still OK", typ == "OK", typ)
        ma.store("1", "+FLAGS", "\\Flagged")
        time.sleep(1.2)
        os.rename(fifo + ".away", fifo)
        got = dump.wait(1, timeout=4.0)
        check("missing FIFO: pending notification delivered after the FIFO returns",
              [e[2] for e in got] == ["alice\thigh"], got)
        ma.logout()
    finally:
        if os.path.exists(fifo + ".away"):
            os.rename(fifo + ".away", fifo)
    log = a.log()
    warns = [ln for ln in log.splitlines() if "replication-notify-fifo) failed" in ln]
    check("missing FIFO: exactly one warning", len(warns) == 1, warns)


def ensure_vmail():
    """The mail user every instance runs as (uid 5000, as tests/e2e/dovepair.py)."""
    try:
        pwd.getpwnam("vmail")
        return
    except KeyError:
        pass
    if subprocess.run(["getent", "group", "vmail"], capture_output=True).returncode != 0:
        run("groupadd", "-g", "5000", "vmail")
    run("useradd", "-u", "5000", "-g", "vmail", "-M", "-d", "/nonexistent",
        "-s", "/usr/sbin/nologin", "vmail")


def pick_port_base():
    """The first free block of 4 loopback ports in 37000-37990."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dovepair  # only here: the --fake-aggregator copy runs without it
    env = os.environ.get("DREPL_E2E_PLUGIN_PORT_BASE")
    return int(env) if env else dovepair.pick_port_base(lo=37000, hi=37990, step=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake-aggregator", nargs=2, metavar=("DUMP", "MODE"))
    ap.add_argument("--plugin")
    ap.add_argument("--workdir", help="default: a new /tmp/drepl-e2e-plugin-smoke-*")
    ap.add_argument("--port-base", type=int)
    ap.add_argument("--keep", action="store_true",
                    help="leave the instances running and the work directory")
    args = ap.parse_args()
    if args.fake_aggregator:
        fake_aggregator(*args.fake_aggregator)
        return 0
    if not args.plugin:
        ap.error("--plugin is required")
    if os.geteuid() != 0:
        print("plugin-smoke: needs root (private Dovecot masters) - skipped", flush=True)
        return SKIP
    for need in ("/usr/sbin/dovecot", "/usr/lib/dovecot/imap",
                 "/usr/lib/dovecot/modules/lib15_notify_plugin.so"):
        if not os.path.exists(need):
            print(f"plugin-smoke: {need} missing (dovecot-core, dovecot-imapd) - skipped",
                  flush=True)
            return SKIP
    ensure_vmail()
    plugin = os.path.abspath(args.plugin)
    p = args.port_base if args.port_base is not None else pick_port_base()
    if args.workdir:
        shutil.rmtree(args.workdir, ignore_errors=True)
        os.makedirs(args.workdir)
    else:
        args.workdir = tempfile.mkdtemp(prefix="drepl-e2e-plugin-smoke-", dir="/tmp")
    os.chmod(args.workdir, 0o755)  # Dovecot's unprivileged processes walk into it
    print(f"plugin-smoke: ports {p}-{p + 3}, work directory {args.workdir}", flush=True)
    a = Instance(args.workdir, "a", p, p + 1, plugin=plugin)
    b = Instance(args.workdir, "b", p + 2, p + 3)
    a_sync = Instance(args.workdir, "a", p, p + 1, plugin=plugin, sync_timeout="2s")
    try:
        a.setup(replica_port=p + 3)
        b.setup(replica_port=p + 1)
        a.start()
        b.start()
        dump = Dump(a)
        scenario_async(a, dump)
        scenario_delivery(a, dump)
        scenario_dsync(a, b, dump)
        scenario_fifo_missing(a, dump)
        a.stop()
        a_sync.setup(replica_port=p + 3)
        a_sync.start()
        scenario_sync(a_sync, dump)
        errors = [ln for ln in a.log().splitlines()
                  if ("Error" in ln or "Panic" in ln or "Fatal" in ln)]
        check("no errors/panics in A's log", not errors, errors[:5])
    finally:
        if not args.keep:
            a.stop()
            b.stop()
    failed = [n for n, ok in results if not ok]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed")
    if failed:
        print(f"plugin-smoke: kept {args.workdir} (dovecot.log of each instance)")
        return 1
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
