"""Helpers shared by the fault-injection e2e tests (test_faults.py,
test_sync_on_save.py) on top of dovepair.py. Python standard library only.

- STATUS-DETAIL over a node's replicator-doveadm socket (our protocol extension,
  src/doveadm/doveadm-detail.h), parsed into dicts;
- raw line clients for the replicator's and aggregator's sockets and the FIFO;
- our daemon's processes (replicator / aggregator) under a node's master;
- userdb extra fields in a node's passwd-file;
- log checks that tell Dovecot's expected errors from crashes;
- a free port block in 35000-35990 (the fault tests' range).
"""

import os
import re
import socket
import threading
import time

import dovepair

FAULTS_PORT_LO, FAULTS_PORT_HI = 35000, 35990
PORTS_PER_PAIR = 10  # the 4 pair ports + room for helper listeners (base+5 ...)


def pick_block(lo=FAULTS_PORT_LO, hi=FAULTS_PORT_HI, n=PORTS_PER_PAIR, avoid=()):
    """First base (multiple of n) in [lo, hi) whose n ports are all free and not in `avoid`."""
    for base in range(lo, hi, n):
        ports = range(base, base + n)
        if set(ports) & set(avoid):
            continue
        if dovepair.ports_free(ports):
            return base
    raise RuntimeError("no free block of %d ports in %d-%d" % (n, lo, hi))


# --------------------------------------------------------------------------- tab escaping

def te_escape(s):
    """Dovecot's tab-escaping (src/base/tab-escape.h)."""
    return (s.replace("\x01", "\x011").replace("\0", "\x010").replace("\t", "\x01t")
            .replace("\r", "\x01r").replace("\n", "\x01n"))


def te_unescape(s):
    m = {"0": "\0", "1": "\x01", "t": "\t", "r": "\r", "n": "\n"}
    out, i = [], 0
    while i < len(s):
        if s[i] == "\x01":
            if i + 1 < len(s):
                out.append(m.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- STATUS-DETAIL

DETAIL_FIELDS = ("username", "priority", "last_fast_sync", "last_full_sync", "failed",
                 "last_successful_sync", "next_secs", "failures", "error_kind", "last_error",
                 "next_sync_time", "flags")


def doveadm_socket(node):
    return os.path.join(node.base_dir, "replicator-doveadm")


def status_detail(node, mask="*", timeout=10):
    """{user: row} from STATUS-DETAIL on node's replicator-doveadm socket. A row is a
    dict with DETAIL_FIELDS; 'failed' and the counters are ints, 'flags' a set."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(doveadm_socket(node))
        f = s.makefile("rwb")
        f.write(b"VERSION\treplicator-doveadm-client\t1\t0\n")
        f.flush()
        hello = f.readline()
        if not hello.startswith(b"VERSION\treplicator-doveadm-server\t1\t"):
            raise RuntimeError("unexpected replicator-doveadm greeting %r" % hello)
        f.write(("STATUS-DETAIL\t%s\n" % te_escape(mask)).encode())
        f.flush()
        rows = {}
        while True:
            line = f.readline()
            if not line.endswith(b"\n"):
                raise RuntimeError("replicator-doveadm closed during STATUS-DETAIL")
            line = line[:-1].decode()
            if line == "":
                return rows
            fields = [te_unescape(x) for x in line.split("\t")]
            if len(fields) < len(DETAIL_FIELDS):
                raise RuntimeError("short STATUS-DETAIL line %r" % line)
            row = dict(zip(DETAIL_FIELDS, fields))
            for k in ("failed", "failures", "next_secs", "next_sync_time", "last_fast_sync",
                      "last_full_sync", "last_successful_sync"):
                row[k] = int(row[k])
            row["flags"] = set(x for x in row["flags"].split(",") if x)
            rows[row["username"]] = row
    finally:
        s.close()


# --------------------------------------------------------------------------- raw clients

def unix_send(path, data, read_reply=True, timeout=3.0, close_after=True):
    """Connects to UNIX socket `path`, sends `data` (bytes) and returns what the peer
    sent until it closed or `timeout` passed without data (bytes). The socket is left
    open (and returned instead) when close_after is False."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the peer dropped us mid-way: allowed for bad input
    if not close_after:
        return s
    got = b""
    if read_reply:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                break
            if not chunk:
                break
            got += chunk
    s.close()
    return got


def fifo_write(path, data):
    """Writes `data` into a FIFO (non-blocking open, as the plugin does), in pieces
    of at most PIPE_BUF bytes so no piece interleaves with other writers."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view[:4096])
                view = view[n:]
            except BlockingIOError:
                time.sleep(0.01)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- processes

def daemon_processes(node):
    """{'replicator': [pid...], 'aggregator': [pid...]} of OUR daemon under node's master."""
    out = {"replicator": [], "aggregator": []}
    exe = os.path.realpath(node.daemon_path)
    for i in node.processes():
        # scripts/sanitize.sh installs the daemon as a wrapper that execs <daemon>.asan
        if i["exe"] not in (exe, exe + ".asan"):
            continue
        out["aggregator" if "--aggregator" in i["cmdline"] else "replicator"].append(i["pid"])
    return out


def replicator_pid(node):
    """PID of node's (our) replicator; raises unless exactly one runs."""
    pids = daemon_processes(node)["replicator"]
    if len(pids) != 1:
        raise RuntimeError("node %s: want one replicator, found %r" % (node.name, pids))
    return pids[0]


def wait_replicator(node, timeout=20, not_pid=None):
    """Waits until node runs exactly one replicator (other than `not_pid`) that
    answers `doveadm replicator status`; returns its pid."""
    def ready():
        pids = daemon_processes(node)["replicator"]
        if len(pids) != 1 or pids[0] == not_pid:
            return None
        node.doveadm("replicator", "status")
        return pids[0]
    return dovepair.wait_until(ready, timeout, 0.1,
                               what="node %s replicator (re)started" % node.name)[0]


# --------------------------------------------------------------------------- userdb

def set_user_fields(node, fields, extra_users=()):
    """Rewrites node's passwd-file: every pair user plus `extra_users`, with the
    passwd-file extra fields from `fields` ({user: "userdb_key=value userdb_key2"};
    only keys with the userdb_ prefix reach the userdb). Dovecot re-reads the file
    when it changes."""
    users = list(node.pair.users) + [u for u in extra_users if u not in node.pair.users]
    tmp = node.passwd + ".tmp"
    with open(tmp, "w") as fh:
        for u in users:
            fh.write(node.passwd_line(u, fields.get(u, "")))
    st = os.stat(node.passwd)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, node.passwd)
    # passwd-file notices a change by mtime (1 s resolution): make it differ for sure
    t = time.time() + 1
    os.utime(node.passwd, (t, t))


def wait_userdb(node, user, field, timeout=10):
    """Waits until node's userdb returns `field` ("key\tvalue" as `doveadm user`
    prints it) for `user`. passwd-file looks at its file at most once a second, so
    a lookup right after set_user_fields() may still see the old contents."""
    return dovepair.wait_until(
        lambda: field in node.doveadm("user", user, check=False).stdout, timeout, 0.2,
        what="node %s userdb to return %r for %s" % (node.name, field, user))


# --------------------------------------------------------------------------- logs

# Fatal lines that are Dovecot's own documented behaviour, not a crash of ours:
# doveadm-server exits fatally when its TCP connect to the replica fails (spec §10.17).
EXPECTED_FATAL = (re.compile(r"doveadm\([^)]*\): Fatal: connect\([^)]*\) failed"),)


def crash_lines(node, since=0):
    """Log lines (from byte offset `since`) showing a crash or an unexpected fatal
    error: any Panic, any Fatal except EXPECTED_FATAL, a core dump, or one of our
    daemon's processes dying of a signal / with an error status."""
    text = node.log_text()[since:]
    bad = []
    for l in text.splitlines():
        if "Panic:" in l or "core dumped" in l:
            bad.append(l)
        elif "Fatal:" in l and not any(r.search(l) for r in EXPECTED_FATAL):
            bad.append(l)
        elif re.search(r"service\((replicator|aggregator)\): child \d+ (killed with signal|returned error)", l):
            bad.append(l)
    return bad


def log_size(node):
    return len(node.log_text())


# --------------------------------------------------------------------------- hanging peer

class SilentListener:
    """A TCP listener on 127.0.0.1:port that accepts connections, reads and discards
    whatever arrives, and never answers: a replica whose doveadm port hangs."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.conns = []
        self.accepted = 0
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                pass
            except OSError:
                return
            else:
                c.setblocking(False)
                self.conns.append(c)
                self.accepted += 1
            for c in list(self.conns):
                try:
                    if c.recv(65536) == b"":
                        c.close()
                        self.conns.remove(c)
                except BlockingIOError:
                    pass
                except OSError:
                    self.conns.remove(c)

    def close(self):
        self._stop = True
        self._t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


# --------------------------------------------------------------------------- network faults

def proxied_replicas(pair, users, offset=5):
    """Routes `users` of both nodes through a TcpProxy each way: A -> B on
    port_base + offset, B -> A on port_base + offset + 1 (userdb field
    mail_replica=tcp:127.0.0.1:<proxy>, waited for in the userdb of each node).
    Returns (to_b, to_a); the caller closes them."""
    a, b = pair.a, pair.b
    to_b = TcpProxy(pair.port_base + offset, b.doveadm_port)
    to_a = TcpProxy(pair.port_base + offset + 1, a.doveadm_port)
    try:
        for node, proxy in ((a, to_b), (b, to_a)):
            replica = "tcp:127.0.0.1:%d" % proxy.port
            set_user_fields(node, {u: "userdb_mail_replica=" + replica for u in users})
            for u in users:
                wait_userdb(node, u, "mail_replica\t" + replica)
    except BaseException:
        to_b.close()
        to_a.close()
        raise
    return to_b, to_a


class TcpProxy:
    """127.0.0.1:port -> 127.0.0.1:target, a replica's network path the test controls:
      pass()        forward both ways (the default);
      blackhole()   a partition seen from the sender: new connections are accepted
                    (like a half-dead host whose kernel still answers) and never get a
                    byte either way; connections already open freeze (nothing moves);
      heal()        back to pass(): the frozen and blackholed connections are closed
                    (their dsyncs were given up on), new ones are forwarded;
      throttle(bps) forward at most `bps` bytes per second per direction (a slow
                    replica); pass() lifts it.
    Counts accepted connections and forwarded bytes."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.mode, self.bps = "pass", 0
        self.accepted = 0
        self.forwarded = 0
        self.lock = threading.Lock()
        self.pairs = []  # [client, upstream or None]
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def blackhole(self):
        with self.lock:
            self.mode = "blackhole"

    def heal(self):
        with self.lock:
            self.mode = "pass"
            self.bps = 0
            for pair in self.pairs:
                if pair[1] is None or pair[2]:
                    self._close(pair)
            self.pairs = [p for p in self.pairs if not p[3]]

    pass_through = heal

    def throttle(self, bps):
        with self.lock:
            self.mode, self.bps = "pass", bps

    def _close(self, pair):
        for s in pair[:2]:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        pair[3] = True

    def _run(self):
        import select
        budget_t, budget = time.monotonic(), {}
        while not self._stop:
            with self.lock:
                pairs = [p for p in self.pairs if not p[3]]
                mode, bps = self.mode, self.bps
            rlist = [self.sock]
            if mode == "pass":
                for p in pairs:
                    if p[1] is not None and not p[2]:
                        rlist += [p[0], p[1]]
            try:
                ready, _, _ = select.select(rlist, [], [], 0.05)
            except (OSError, ValueError):
                ready = []
            now = time.monotonic()
            if now - budget_t >= 1.0:
                budget_t, budget = now, {}
            for s in ready:
                if s is self.sock:
                    try:
                        c, _ = self.sock.accept()
                    except OSError:
                        continue
                    self.accepted += 1
                    up = None
                    frozen = False
                    if mode == "pass":
                        try:
                            up = socket.create_connection(("127.0.0.1", self.target), timeout=2)
                        except OSError:
                            c.close()
                            continue
                    with self.lock:
                        self.pairs.append([c, up, frozen, False])
                    continue
                pair = next((p for p in pairs if s is p[0] or s is p[1]), None)
                if pair is None or pair[3]:
                    continue
                other = pair[1] if s is pair[0] else pair[0]
                n = 65536
                if bps:
                    n = max(0, min(n, bps - budget.get(id(s), 0)))
                    if n == 0:
                        continue
                try:
                    data = s.recv(n)
                except OSError:
                    data = b""
                if not data:
                    with self.lock:
                        self._close(pair)
                    continue
                budget[id(s)] = budget.get(id(s), 0) + len(data)
                try:
                    other.sendall(data)
                    self.forwarded += len(data)
                except OSError:
                    with self.lock:
                        self._close(pair)
            with self.lock:
                if self.mode == "blackhole":
                    for p in self.pairs:
                        p[2] = p[2] or p[1] is not None  # open connections freeze
            if bps:
                time.sleep(0.01)

    def close(self):
        self._stop = True
        self._t.join(5)
        with self.lock:
            for p in self.pairs:
                self._close(p)
        self.sock.close()
