"""Small wire clients the benchmark uses instead of the doveadm CLI (whose ~70 ms
start-up would dominate a tight poll or distort a floor measurement).

  replicator_status(node)      `STATUS` on base_dir/replicator-doveadm -> {label: int}
  socket_sync(node, user)      one dsync through base_dir/doveadm-server, exactly the
                               request a replicator sends (minus -U): the sync floor
  fifo_path(node)              base_dir/replication-notify-fifo

Every call opens its own connection and raises OSError/RuntimeError on failure or on a
reply it cannot parse; `timeout` is in seconds.
"""

import os
import socket


def _unix(path, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def _read_lines_until(s, done):
    """Reads from s until done(lines) is true; returns the complete lines (str)."""
    buf = b""
    while True:
        lines = buf.split(b"\n")[:-1]
        if done(lines):
            return [l.decode(errors="replace") for l in lines]
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed early; got %r" % buf[-200:])
        buf += chunk


def replicator_status(node, timeout=10):
    """{'Queued 'high' requests': 0, ..., 'Total number of known users': N} from the
    node's replicator over the replicator-doveadm socket (spec: STATUS reply)."""
    s = _unix(os.path.join(node.base_dir, "replicator-doveadm"), timeout)
    try:
        s.sendall(b"VERSION\treplicator-doveadm-client\t1\t0\nSTATUS\n")
        # server handshake line, then "label\tvalue" lines, then an empty line
        lines = _read_lines_until(s, lambda ls: len(ls) >= 2 and ls[-1] == b"")
    finally:
        s.close()
    if not lines[0].startswith("VERSION\treplicator-doveadm-server\t1"):
        raise RuntimeError("unexpected replicator-doveadm handshake %r" % lines[0])
    out = {}
    for line in lines[1:]:
        if "\t" in line:
            k, v = line.rsplit("\t", 1)
            out[k] = int(v)
    return out


def known_users(node, timeout=10):
    return replicator_status(node, timeout).get("Total number of known users", 0)


def socket_sync(node, user, params=("-d", "-N", "-l", "30"), timeout=120):
    """Runs one dsync of `user` through the node's doveadm-server UNIX socket with the
    replicator's own request (`\\tuser\\tsync\\t-d\\t-N\\t-l\\t30\\t-s\\t\\n`, no -U so the
    replicator is not told). Returns the final reply line ('+' on success)."""
    s = _unix(os.path.join(node.base_dir, "doveadm-server"), timeout)
    try:
        req = "\t%s\tsync\t%s\t-s\t\n" % (user, "\t".join(params))
        s.sendall(b"VERSION\tdoveadm-server\t1\t0\n" + req.encode())
        # "+" (pre-authenticated), state line, then "+" or "-CODE"
        lines = _read_lines_until(s, lambda ls: len(ls) >= 3)
    finally:
        s.close()
    if lines[0] != "+":
        raise RuntimeError("doveadm-server handshake: %r" % lines[0])
    return lines[2]


class DsyncConn:
    """One connection to a doveadm-server socket carrying one sync after another, as
    our replicator reuses its `replicator-dsync` connections: VERSION once, "+" once,
    then per sync the command and its two reply lines."""

    def __init__(self, path, timeout=120):
        self.path, self.timeout, self.s = path, timeout, None

    def sync(self, user, params=("-d", "-N", "-l", "30")):
        """Returns (final reply line, whether this sync reused the connection)."""
        req = ("\t%s\tsync\t%s\t-s\t\n" % (user, "\t".join(params))).encode()
        reused = self.s is not None
        if not reused:
            self.s = _unix(self.path, self.timeout)
            self.s.sendall(b"VERSION\tdoveadm-server\t1\t0\n" + req)
            lines = _read_lines_until(self.s, lambda ls: len(ls) >= 3)
            if lines[0] != "+":
                self.close()
                raise RuntimeError("doveadm-server handshake: %r" % lines[0])
            lines = lines[1:]
        else:
            self.s.sendall(req)
            lines = _read_lines_until(self.s, lambda ls: len(ls) >= 2)
        if lines[1] != "+":
            self.close()
        return lines[1], reused

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None


def fifo_path(node):
    return os.path.join(node.base_dir, "replication-notify-fifo")
