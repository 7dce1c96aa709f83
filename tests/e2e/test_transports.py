#!/usr/bin/env python3
"""Replication over the real transports, on real Dovecot 2.3 pairs running our daemon
(issue 13, "Transports, proven").

Each class runs its own pair (tests/e2e/dovepair.py, `ours` mode, a free port block
of 35000-35990, via test_faults.PairTest):

  TcpsTransport  mail_replica = tcps:127.0.0.1:<peer's doveadm port>. The test makes a
                 private CA and a server certificate for IP 127.0.0.1 with openssl; each
                 node's doveadm inet_listener has `ssl = yes` with that certificate, and
                 ssl_client_ca_file trusts the CA. Every kind of change replicates both
                 ways. B serving a certificate from another CA, or from our CA for
                 another name, fails the user on A with kind tls_verify_failed; then
                 the breaker's trials probe the TLS handshake first (issue 13, "The
                 circuit breaker probes the real transport"): the user's row shows
                 the probe's OpenSSL reason, replica_probes_failed_total{kind=
                 "tls_verify_failed"} grows, and no dsync starts while the
                 certificate stays bad.
  SshTransport   mail_replica = remote:vmail@127.0.0.1 through a real sshd the test
                 starts on 127.0.0.1:<block+5> (its own sshd_config, host key, client
                 key; key auth only) and dsync_remote_cmd running the peer's
                 `doveadm -c <conf> dsync-server -u%u` as vmail. Every kind of change
                 replicates both ways. A refused key fails as ssh_auth_failed, an ssh
                 port that accepts and never sends its banner as timeout after
                 replication_dsync_handshake_timeout (3 s here; ssh and its
                 doveadm-server terminated), a closed ssh port as connect_refused (ssh's own message only reaches Dovecot's
                 log: the replicator probes the port named in the ssh command, and
                 reads sshd's banner); then the breaker's trials probe that port first
                 and start no dsync while it stays closed. And
                 user pfx over remoteprefix:pfx<peer>@127.0.0.1: that login's
                 authorized_keys forces command= WRAPPER (reads the user name dsync
                 writes first); messages, flags and expunges both ways.

sshd runs in a private mount namespace (unshare) in which copies of /etc/passwd and
/etc/shadow are bind-mounted: there vmail has /bin/sh as its shell, a home in the
test's directory and a password field sshd does not treat as locked. The host's
files and /etc/ssh are not touched. A failure check asserts the user's STATUS-DETAIL
row (failed, error_kind, text), the metrics series syncs_failed_total{kind} and our
log line "replication(<user>): dsync to <replica> failed (<kind>): ".

--dovecot 2.4 (issue 9): SshTransport only, on a Dovecot 2.4.1 pair in the Debian 13
root, proving that the remote: command our settings module makes the default
(`ssh -l%{login} %{host} doveadm dsync-server -u%{user}`: 2.4.0-2.4.2's own default
still passes the removed -U) works on 2.4.1 as shipped: dovecot.conf sets no
dsync_remote_cmd, each node's sshd is the root's, chrooted there with that node's
dovecot.conf as /etc/dovecot/dovecot.conf, and ssh finds port, key and known_hosts
in an /etc/ssh/ssh_config mounted in the node's namespace (SshTransport.prepare24).
Every kind of change replicates both ways over ssh; the failure classification and
remoteprefix: cases stay 2.3-only (SSH_24_ONLY_CHANGES says why).

Usage: test_transports.py [--dovecot 2.3|2.4] --prefix PREFIX [--prefix24 STAGE]
                          [--port-base N] [--keep] [unittest args...]
Exit 77 (skipped) when not root or when sshd, ssh-keygen, ssh or openssl is missing
(2.4: the root's sshd; or no 2.4 stage).
"""

import os
import re
import shlex
import shutil
import socket
import ssl
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

# replication_dsync_handshake_timeout of the ssh pair (2.3), seconds
SSH_HANDSHAKE_SECS = 3

SSHD = "/usr/sbin/sshd"
TOOLS = (SSHD, "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/openssl")
SSH_PORT_OFFSET = 5  # in the pair's block of 10: the pair uses +0..+3
METRICS_CONF = "\n".join([
    "service replicator {",
    "  unix_listener replicator-metrics {",
    "    mode = 0600",
    "  }",
    "}",
])
DEADLINE = 30  # seconds a change may take to show up on the other node


# --------------------------------------------------------------------------- PKI

def _openssl(cwd, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.strip()))


def make_ca(d, name):
    """A self-signed CA d/<name>.crt + d/<name>.key."""
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=drepl e2e %s" % name, "-keyout", name + ".key", "-out", name + ".crt",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(os.path.join(d, name + ".key"), 0o600)


def make_cert(d, ca, name, sans):
    """d/<name>.crt signed by CA `ca` for subjectAltNames `sans` (e.g. "IP:127.0.0.1"),
    and its key d/<name>.key."""
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % sans[0].split(":", 1)[1],
             "-keyout", name + ".key", "-out", name + ".csr")
    with open(os.path.join(d, name + ".ext"), "w") as fh:
        fh.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                 % ",".join(sans))
    _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext")
    os.chmod(os.path.join(d, name + ".key"), 0o600)


def served_cert(port, timeout=3):
    """DER of the certificate 127.0.0.1:port presents (no verification)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def cert_der(path):
    with open(path) as fh:
        return ssl.PEM_cert_to_DER_cert(fh.read())


# --------------------------------------------------------------------------- sshd

def keygen(path, comment):
    """A new ed25519 key pair at path / path.pub; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL)
    with open(path + ".pub") as fh:
        return fh.read().strip()


class Sshd:
    """A private sshd on 127.0.0.1:port for `login` (key auth only), all of its files
    in directory d. start() runs it in the foreground (-D -e, log in d/sshd.log) in a
    private mount namespace with d/passwd and d/shadow bind-mounted over /etc's (login:
    shell /bin/sh, home d/home-<login>, password field "*": not locked for sshd), and
    a tmpfs /run with /run/sshd when the host has no privilege separation dir.

    root: a directory to chroot into (the trixie root: that root's sshd, its
    /etc/passwd and its Dovecot 2.4 for the logins), d inside it; binds: more (host
    file, path inside root) pairs mounted in the namespace before the chroot (the
    node's module dirs, its dovecot.conf as /etc/dovecot/dovecot.conf). The paths
    this object exposes (client_key, known_hosts) are host paths; inner() gives them
    as seen inside root."""

    def __init__(self, d, port, login="vmail", aliases=(), root="", binds=()):
        self.d, self.port, self.login = d, port, login
        self.root = root.rstrip("/")
        self.binds = list(binds)
        # more login names with login's uid, gid, home and shell (their own
        # authorized_keys), added to the namespace's passwd/shadow only
        self.aliases = tuple(aliases)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self.host_key = os.path.join(d, "ssh_host_ed25519_key")
        host_pub = keygen(self.host_key, "drepl-e2e-host")
        self.client_key = os.path.join(d, "id_replicator")
        self.client_pub = keygen(self.client_key, "drepl-e2e-replicator")
        self.other_pub = keygen(os.path.join(d, "id_other"), "drepl-e2e-other")
        self.known_hosts = os.path.join(d, "known_hosts")
        with open(self.known_hosts, "w") as fh:
            fh.write("[127.0.0.1]:%d %s\n" % (port, " ".join(host_pub.split()[:2])))
        self.keys_dir = os.path.join(d, "authorized_keys")
        os.makedirs(self.keys_dir)
        self.set_authorized(self.client_pub)
        uid, gid = self._ids(login)
        self.home = os.path.join(d, "home-" + login)
        os.makedirs(self.home)
        os.chown(self.home, uid, gid)
        self.passwd = os.path.join(d, "passwd")
        self.shadow = os.path.join(d, "shadow")
        self._copy_db(self.root + "/etc/passwd", self.passwd,
                      {5: self.inner(self.home), 6: "/bin/sh"}, 0o644)
        self._copy_db(self.root + "/etc/shadow", self.shadow, {1: "*"}, 0o600)
        self.conf = os.path.join(d, "sshd_config")
        with open(self.conf, "w") as fh:
            fh.write("\n".join([
                "Port %d" % port,
                "ListenAddress 127.0.0.1",
                "HostKey %s" % self.inner(self.host_key),
                "PidFile %s" % self.inner(os.path.join(d, "sshd.pid")),
                "AuthorizedKeysFile %s/%%u" % self.inner(self.keys_dir),
                "AuthenticationMethods publickey",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowUsers %s" % " ".join((login,) + self.aliases),
                "PermitRootLogin no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                ""]))
        self.log = os.path.join(d, "sshd.log")
        self.proc = None

    def inner(self, path):
        """Host path `path` as seen inside root."""
        if self.root and path.startswith(self.root + "/"):
            return path[len(self.root):]
        return path

    def _ids(self, login):
        """(uid, gid) of `login` in root's /etc/passwd."""
        with open(self.root + "/etc/passwd") as fh:
            for line in fh:
                f = line.split(":")
                if f[0] == login:
                    return int(f[2]), int(f[3])
        raise KeyError("no %s in %s/etc/passwd" % (login, self.root))

    def _copy_db(self, src, dst, changes, mode):
        with open(src) as fh, open(dst, "w") as out:
            for line in fh:
                f = line.rstrip("\n").split(":")
                if f[0] == self.login:
                    for i, v in changes.items():
                        f[i] = v
                    for alias in self.aliases:
                        out.write(":".join([alias] + f[1:]) + "\n")
                out.write(":".join(f) + "\n")
        os.chmod(dst, mode)

    def set_authorized(self, *pubkeys, login=None):
        """Replaces the authorized_keys of `login` (default: the main login); sshd
        reads it at each login."""
        path = os.path.join(self.keys_dir, login or self.login)
        with open(path + ".tmp", "w") as fh:
            fh.write("".join(k + "\n" for k in pubkeys))
        os.rename(path + ".tmp", path)

    def start(self, timeout=15):
        q = shlex.quote
        r = self.root
        binds = [(self.passwd, "/etc/passwd"), (self.shadow, "/etc/shadow")] + self.binds
        script = ("".join("mount --bind %s %s && " % (q(src), q(r + dst)) for src, dst in binds) +
                  "{ [ -d %s/run/sshd ] || { mount -t tmpfs -o mode=0755 tmpfs %s/run && "
                  "mkdir -m 0755 %s/run/sshd; }; } && exec %s%s -D -e -f %s"
                  % (q(r), q(r), q(r), "chroot %s " % q(r) if r else "", SSHD,
                     q(self.inner(self.conf))))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        dovepair.wait_until(
            lambda: self.port in dovepair.listening_tcp_ports() or self.proc.poll() is not None,
            timeout, what="sshd on 127.0.0.1:%d" % self.port)
        if self.proc.poll() is not None:
            raise RuntimeError("sshd exited %d; see %s" % (self.proc.returncode, self.log))

    def stop(self):
        """Stops the sshd this object started (SIGTERM to its pid) and waits for the
        port to close."""
        if not self.proc:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        dovepair.wait_until(lambda: self.port not in dovepair.listening_tcp_ports(), 10,
                            what="sshd port %d closed" % self.port)


# --------------------------------------------------------------------------- tests

class TransportTest(test_faults.PairTest):
    """Checks shared by both transports: every kind of change both ways, and a
    classified failure."""

    USERS = ("alice",)
    REPLICA_DISPLAY = None  # A's mail_replica as the replicator names it

    @staticmethod
    def set_replica(pair, replica_of, node_extra):
        """Rewrites each node's dovecot.conf: mail_replica = replica_of(node), and the
        text node_extra(node) appended."""
        for n in pair.nodes:
            with open(n.conf) as fh:
                text = fh.read()
            old = "mail_replica = tcp:127.0.0.1:%d" % n.peer_doveadm_port
            assert old in text, old
            text = text.replace(old, "mail_replica = %s" % replica_of(n)) + node_extra(n)
            with open(n.conf, "w") as fh:
                fh.write(text)

    def converge(self, what, pred):
        _, secs = test_faults.wait(pred, DEADLINE, what, interval=0.05)
        self.timing(what, secs)

    def run(self, result=None):
        t0 = time.monotonic()
        out = super().run(result)
        self.timing("(%s total)" % self._testMethodName, time.monotonic() - t0)
        return out

    def changes_both_ways(self, user="alice", mailboxes=True):
        p = self.pair
        for src, dst in ((p.a, p.b), (p.b, p.a)):
            way = "%sto%s" % (src.name.upper(), dst.name.upper())  # no '>': Message-ID

            def msgs(box="INBOX"):
                return dst.messages(user, box) or {}
            mid = "%s-%s@e2e" % (way, uuid.uuid4().hex[:10])
            keep = "keep-" + mid
            box = "Box-%s-%s" % (way, uuid.uuid4().hex[:6])
            # wait_quiet() before the first change and before RENAME and DELETE (a
            # mailbox rename or delete made while a dsync of the user runs can be
            # undone by that dsync); message changes and CREATE are merged
            with src.session(user) as s:
                p.wait_quiet()
                s.append(mid)
                s.append(keep)
                self.converge("APPEND %s" % way, lambda: {mid, keep} <= set(msgs()))
                s.store(mid, "+FLAGS", r"\Flagged $Label1")
                self.converge("+FLAGS %s" % way,
                              lambda: {r"\Flagged", "$Label1"} <= msgs().get(mid, set()))
                s.store(mid, "-FLAGS", r"\Flagged")
                self.converge("-FLAGS %s" % way,
                              lambda: r"\Flagged" not in msgs().get(mid, {r"\Flagged"}))
                s.expunge(mid)
                self.converge("EXPUNGE %s" % way, lambda: mid not in msgs())
                self.assertIn(keep, msgs(), "expunge removed the wrong message")
                if not mailboxes:
                    continue
                s.create(box)
                s.append("in-" + mid, mailbox=box)
                self.converge("CREATE+APPEND %s" % way, lambda: "in-" + mid in msgs(box))
                p.wait_quiet()
                s.rename(box, box + "-renamed")
                self.converge("RENAME %s" % way,
                              lambda: (lambda names: box + "-renamed" in names and box not in names)(
                                  dst.mailboxes(user)))
                p.wait_quiet()
                s.delete(box + "-renamed")
                self.converge("DELETE %s" % way, lambda: box + "-renamed" not in dst.mailboxes(user))
        p.wait_quiet()
        rows = status_detail(p.a, user)
        self.assertEqual(rows[user]["failed"], 0, rows)
        self.assertEqual(rows[user]["error_kind"], "none", rows)

    def fail_and_check(self, user, kind, cause_words):
        """PairTest.fail_and_check, and every failure log line names our replica."""
        row, log = super().fail_and_check(user, kind, cause_words)
        pattern = re.compile(r"replication\(%s\): dsync to (\S+) failed \((\w+)\): " % re.escape(user))
        found = [m.groups() for m in (pattern.search(l) for l in log) if m]
        self.assertTrue(found, "no failure log line for %s" % user)
        for dest, k in found:
            self.assertEqual(k, kind, found)
            self.assertEqual(dest, self.REPLICA_DISPLAY, found)
        return row

    def trials_probe(self, user, kind, text):
        """After a failed dsync the destination's breaker is open and `user` is due at
        its next probe. That trial probes the transport first and, as the replica is
        still unusable, starts no dsync: the user's row shows the probe's `kind` and
        `text` ("(not attempted ...)"), replica_probes_failed_total{kind} grows, and
        across the next failed probe no dsync starts."""
        from test_metrics import scrape
        a = self.pair.a
        probes = 'dovecot_replicator_replica_probes_failed_total{kind="%s"}' % kind

        def probed():
            r = status_detail(a, user).get(user)
            return r and text in r["last_error"] and "(not attempted" in r["last_error"] and r
        row, secs = test_faults.wait(probed, 30, "%s refused by the trial's probe" % user)
        self.timing("%s: trial probe failed (%s)" % (user, kind), secs)
        self.assertEqual(row["error_kind"], kind, row)
        self.assertEqual(row["failed"], 1, row)

        def started(m):
            return sum(v for k, v in m.items()
                       if k.startswith("dovecot_replicator_syncs_started_total{"))
        m = scrape(a)
        self.assertGreaterEqual(m.get(probes, 0), 1, probes)
        m2, secs = test_faults.wait(
            lambda: (lambda x: x.get(probes, 0) > m.get(probes, 0) and x)(scrape(a)), 30,
            "the next trial's probe")
        self.timing("%s: next trial probe failed, no dsync" % user, secs)
        self.assertEqual(started(m2), started(m), "a trial started a dsync although its "
                         "probe failed")

    def settle(self, user):
        """Asks for syncs of `user` until it is no longer failed (the destination's
        breaker may hold it back until its next probe)."""
        a = self.pair.a

        def ok():
            row = status_detail(a, user).get(user)
            if row and row["failed"] == 0:
                return True
            a.doveadm("replicator", "replicate", user)
            return False
        dovepair.wait_until(ok, 40, 0.5, what="%s synced again" % user)


class TcpsTransport(TransportTest):
    USERS = ("alice", "untrusted", "wrongname")

    @classmethod
    def configure(cls, pair):
        cls.pki = d = os.path.join(pair.root, "pki")
        os.makedirs(d)
        make_ca(d, "ca")
        make_cert(d, "ca", "server", ["IP:127.0.0.1"])
        make_ca(d, "otherca")
        make_cert(d, "otherca", "untrusted", ["IP:127.0.0.1"])
        make_cert(d, "ca", "wrongname", ["DNS:wrong.example"])
        pair.extra_conf = "\n".join([METRICS_CONF, "ssl_client_ca_file = %s/ca.crt" % d])

    @classmethod
    def prepare(cls, pair):
        d = cls.pki
        for n in pair.nodes:
            listener = "    port = %d\n  }\n}\ndoveadm_port" % n.doveadm_port
            with open(n.conf) as fh:
                text = fh.read()
            assert listener in text
            with open(n.conf, "w") as fh:
                fh.write(text.replace(listener, listener.replace(
                    "  }\n}", "    ssl = yes\n  }\n}", 1)))
        cls.set_replica(pair, lambda n: "tcps:127.0.0.1:%d" % n.peer_doveadm_port,
                        lambda n: "\n".join([
                            "", "# ---- tcps (test_transports.py) ----",
                            "ssl = yes",
                            "ssl_cert = <%s/server.crt" % d,
                            "ssl_key = <%s/server.key" % d, ""]))
        # what A's log and detail name
        cls.REPLICA_DISPLAY = "tcps:127.0.0.1:%d" % pair.b.doveadm_port

    def serve(self, name):
        """B's doveadm listener serves pki/<name>.crt: B's dovecot.conf changed and
        reloaded; returns once a TLS handshake sees that certificate."""
        b = self.pair.b
        with open(b.conf) as fh:
            text = fh.read()
        text = re.sub(r"ssl_cert = <\S+\n", "ssl_cert = <%s/%s.crt\n" % (self.pki, name), text)
        text = re.sub(r"ssl_key = <\S+\n", "ssl_key = <%s/%s.key\n" % (self.pki, name), text)
        with open(b.conf, "w") as fh:
            fh.write(text)
        b.doveadm("reload")
        want = cert_der(os.path.join(self.pki, name + ".crt"))
        dovepair.wait_until(lambda: served_cert(b.doveadm_port) == want, 20, 0.2,
                            what="B's doveadm port to serve %s.crt" % name)

    def test_1_changes_both_ways(self):
        self.assertEqual(served_cert(self.pair.b.doveadm_port),
                         cert_der(os.path.join(self.pki, "server.crt")))
        self.assertEqual(served_cert(self.pair.a.doveadm_port),
                         cert_der(os.path.join(self.pki, "server.crt")))
        self.changes_both_ways()

    def _bad_cert(self, user, name, words, probe_reason):
        self.pair.wait_quiet()
        try:
            self.serve(name)
            self.fail_and_check(user, "tls_verify_failed", words)
            self.trials_probe_tls(user, probe_reason)
        finally:
            self.serve("server")
            self.settle(user)

    def trials_probe_tls(self, user, reason):
        """After the failed dsync the breaker is open and `user` is due at its next
        probe. That trial probes B's TLS handshake (ssl_client_ca_file, name
        127.0.0.1) before any dsync."""
        self.trials_probe(user, "tls_verify_failed",
                          "TLS handshake with 127.0.0.1:%d failed: certificate verify failed: %s"
                          % (self.pair.b.doveadm_port, reason))

    def test_2_untrusted_ca(self):
        self._bad_cert("untrusted", "untrusted", ("invalid SSL certificate",),
                       "unable to get local issuer certificate")

    def test_3_wrong_name(self):
        self._bad_cert("wrongname", "wrongname", ("doesn't match expected host name 127.0.0.1",),
                       "IP address mismatch (expected 127.0.0.1)")

    def test_4_no_crash(self):
        self.assert_no_crash()


# The forced command= for remoteprefix: dsync writes "<user>\n" on the ssh channel
# before the dsync protocol; the wrapper reads it (sh's read takes one byte at a
# time from a pipe, so nothing after the newline is lost) and starts dsync-server
# for that user. docs/transports.md shows the same script.
WRAPPER = """#!/bin/sh
# authorized_keys: command="%(path)s",restrict ssh-ed25519 AAAA...
IFS= read -r user || exit 1
exec doveadm%(conf)s dsync-server -u "$user"
"""


# Why --dovecot 2.4 runs only SshTransport's changes: the failure classification
# reads ssh's port from a dsync_remote_cmd the admin wrote (-p N), while the 2.4
# case proves the default command, whose port comes from ssh_config; that code is
# the same for both versions (src/sync/dsync-reply.h, unit-tested), as is the
# remoteprefix: wrapper on the remote side.
SSH_24_ONLY_CHANGES = ("classification and remoteprefix: are version-independent and "
                       "need an admin's dsync_remote_cmd; see SSH_24_ONLY_CHANGES")


class SshTransport(TransportTest):
    ON_24 = True
    USERS = ("alice", "keyless", "closed", "pfx")
    REPLICA_DISPLAY = "remote:vmail@127.0.0.1"
    sshd = None
    peer_sshd = None  # 2.4: A's sshd, which B replicates through

    @classmethod
    def configure(cls, pair):
        # the remote dsync-server runs as vmail: it needs auth-userdb (userdb and
        # the passdb lookup doveadm makes to see whether the user is proxied) and
        # the stats-writer socket
        pair.extra_conf = "\n".join([
            METRICS_CONF,
            "service auth {",
            "  unix_listener auth-userdb {",
            "    user = vmail",
            "  }",
            "}",
            "service stats {",
            "  unix_listener stats-writer {",
            "    user = vmail",
            "  }",
            "}",
        ])
        # 2.4 (the same text is 2.4 syntax): the plugin in the remote dsync-server
        # tells that node's replicator after the dsync (NOTIFY on replicator-doveadm,
        # what 2.3's -U did); that socket is 0660 for default_internal_group, which
        # a login over ssh is not in: give it to the login (docs/transports.md)
        base_conf = pair.extra_conf
        # 2.3: a short bound for test_3b's ssh server that never sends its banner
        pair.extra_conf += "\nplugin {\n  replication_dsync_handshake_timeout = %d s\n}" % (
            SSH_HANDSHAKE_SECS)
        pair.extra_conf24 = "\n".join([
            base_conf,
            "service replicator {",
            "  unix_listener replicator-doveadm {",
            "    user = vmail",
            "  }",
            "}",
        ])

    @classmethod
    def prepare(cls, pair):
        if pair.dovecot == "2.4":
            cls.prepare24(pair)
            return
        s = cls.sshd = Sshd(os.path.join(pair.root, "ssh"), pair.port_base + SSH_PORT_OFFSET,
                            aliases=("pfxa", "pfxb"))
        # remoteprefix: pfx on A replicates as login pfxb (forced command: B's
        # dsync-server), on B as login pfxa
        for n in pair.nodes:
            wrapper = os.path.join(s.d, "dsync-wrapper-%s" % n.name)
            with open(wrapper, "w") as fh:
                fh.write(WRAPPER % {"path": wrapper, "conf": " -c %s" % n.conf})
            os.chmod(wrapper, 0o755)
            s.set_authorized('command="%s",restrict %s' % (wrapper, s.client_pub),
                             login="pfx" + n.name)
            peer = pair.b if n is pair.a else pair.a
            faultkit.set_user_fields(
                n, {"pfx": "userdb_mail_replica=remoteprefix:pfx%s@127.0.0.1" % peer.name})

        def remote_cmd(n):
            peer = pair.b if n is pair.a else pair.a
            return ("\n# ---- remote: (test_transports.py) ----\n"
                    "dsync_remote_cmd = ssh -F none -p %d -i %s -o BatchMode=yes"
                    " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s"
                    " -l%%{login} %%{host} doveadm -c %s dsync-server -u%%u\n"
                    % (s.port, s.client_key, s.known_hosts, peer.conf))
        cls.set_replica(pair, lambda n: cls.REPLICA_DISPLAY, remote_cmd)
        s.start()

    @classmethod
    def prepare24(cls, pair):
        """Dovecot 2.4.1 as shipped: dovecot.conf sets no dsync_remote_cmd, so every
        sync runs our settings module's default `ssh -l%{login} %{host} doveadm
        dsync-server -u%{user}` (2.4.0-2.4.2's own default still passes the removed
        -U). One sshd per node, each chrooted into the trixie root with that node's
        dovecot.conf as /etc/dovecot/dovecot.conf and its module dirs, so the remote
        `doveadm dsync-server` is 2.4.1's, reading its default config. The ssh client
        (run by the node's doveadm-server) finds the peer's port, its key and
        known_hosts in an /etc/ssh/ssh_config mounted in the node's namespace only,
        as an admin would configure ssh."""
        mods = [(os.path.join(pair.module_dir24, d), "/usr/lib/dovecot/modules/" + d)
                for d in ("settings", "doveadm")]
        served = {}  # node name -> the sshd whose logins reach that node's doveadm
        for n, off in ((pair.b, SSH_PORT_OFFSET), (pair.a, SSH_PORT_OFFSET + 1)):
            served[n.name] = Sshd(os.path.join(pair.root, "ssh-" + n.name),
                                  pair.port_base + off, root=pair.trixie_root,
                                  binds=mods + [(n.conf, "/etc/dovecot/dovecot.conf")])
        cls.sshd, cls.peer_sshd = served["b"], served["a"]
        for n in pair.nodes:
            s = served["b" if n is pair.a else "a"]
            cfg = os.path.join(pair.root, "ssh_config-" + n.name)
            with open(cfg, "w") as fh:
                fh.write("Host 127.0.0.1\n  Port %d\n  IdentityFile %s\n"
                         "  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n"
                         "  BatchMode yes\n" % (s.port, s.inner(s.client_key),
                                                  s.inner(s.known_hosts)))
            os.chmod(cfg, 0o644)
            n.binds.append((cfg, "/etc/ssh/ssh_config"))
        cls.set_replica(pair, lambda n: cls.REPLICA_DISPLAY, lambda n: "")
        for s in served.values():
            s.start()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            for s in (cls.sshd, cls.peer_sshd):
                if not s:
                    continue
                if getattr(cls, "_failed", False):
                    with open(s.log, errors="replace") as fh:
                        print("----- sshd log (%s) -----\n" % s.d + "".join(fh.readlines()[-40:]),
                              file=sys.stderr)
                s.stop()

    def skip_on_24(self, why):
        if self.pair.dovecot == "2.4":
            self.skipTest("not on 2.4: " + why)

    def test_0_remote_cmd_as_shipped(self):
        """2.4: the command our replicator's syncs run for remote: is the settings
        module's default, without -U (the test sets none)."""
        if self.pair.dovecot != "2.4":
            self.skipTest("2.3: the test sets dsync_remote_cmd (2.3's default works as is)")
        for n in self.pair.nodes:
            with open(n.conf) as fh:
                self.assertNotIn("dsync_remote_cmd", fh.read())
            got = n.doveadm("config", "-h", "dsync_remote_cmd", check=False)
            if got.returncode != 0:  # doveadm config is 2.4.0+; doveconf otherwise
                argv, env = n.command(["doveconf", "-c", n.inner(n.conf), "-h", "dsync_remote_cmd"])
                got = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            self.assertEqual(got.stdout.strip(),
                             "ssh -l%{login} %{host} doveadm dsync-server -u%{user}", n)

    def test_1_changes_both_ways(self):
        self.changes_both_ways()
        if self.pair.dovecot == "2.4":  # and they went over ssh, both ways
            for s in (self.sshd, self.peer_sshd):
                with open(s.log, errors="replace") as fh:
                    self.assertIn("Accepted publickey for vmail from 127.0.0.1", fh.read(), s.d)
            # every remote dsync-server told its replicator (else that replicator's
            # next sync may undo what the dsync applied)
            for n in self.pair.nodes:
                self.assertEqual(n.log_lines(("replicator's next sync of this user may undo",)),
                                 [], "node %s" % n.name)

    # ssh's own message ("Permission denied (publickey).", "Connection refused")
    # goes to doveadm-server's stderr (Dovecot's log), not to doveadm's log
    # channel; the replicator sees "Remote command returned error 255: ssh ..."
    # and probes the ssh port named there.
    def test_2_refused_key(self):
        self.skip_on_24(SSH_24_ONLY_CHANGES)
        self.pair.wait_quiet()
        try:
            self.sshd.set_authorized(self.sshd.other_pub)
            self.fail_and_check("keyless", "ssh_auth_failed",
                                ("ssh to 127.0.0.1 port %d exited 255" % self.sshd.port,
                                 # the probe read sshd's banner
                                 "although sshd answers (SSH-2.0-OpenSSH"))
        finally:
            self.sshd.set_authorized(self.sshd.client_pub)
            self.settle("keyless")

    def test_3_closed_port(self):
        self.skip_on_24(SSH_24_ONLY_CHANGES)
        self.pair.wait_quiet()
        try:
            self.sshd.stop()
            self.fail_and_check("closed", "connect_refused",
                                ("127.0.0.1:%d" % self.sshd.port, "Connection refused"))
            # the trials probe the ssh port of dsync_remote_cmd (-p N) first
            self.trials_probe("closed", "connect_refused",
                              "connect(127.0.0.1:%d) failed: Connection refused" % self.sshd.port)
        finally:
            if not self.sshd.proc:
                self.sshd.start()
            self.settle("closed")

    def test_3b_ssh_port_that_never_answers(self):
        """A half-dead ssh host (the port accepts, no banner ever comes): the dsync
        fails as timeout after replication_dsync_handshake_timeout, not after
        replication_dsync_timeout (10 min); the ssh and its doveadm-server are
        terminated."""
        self.skip_on_24(SSH_24_ONLY_CHANGES)
        self.pair.wait_quiet()
        try:
            self.sshd.stop()
            listener = faultkit.SilentListener(self.sshd.port)
            try:
                t0 = time.monotonic()
                row = self.fail_and_check(
                    "closed", "timeout",
                    ("no handshake from %s within %d s" % (self.REPLICA_DISPLAY, SSH_HANDSHAKE_SECS),
                     "(replication_dsync_handshake_timeout); killed ssh pid ",
                     "; killed doveadm-server pid "))
                secs = time.monotonic() - t0
                self.timing("silent ssh port: failed after", secs)
                self.assertGreaterEqual(secs, SSH_HANDSHAKE_SECS - 0.5, row)
                self.assertLess(secs, 30, row)
                self.assertGreaterEqual(listener.accepted, 1, "ssh never reached the port")
                ssh_pid = int(re.search(r"killed ssh pid (\d+)", row["last_error"]).group(1))
                test_faults.wait(lambda: not os.path.exists("/proc/%d" % ssh_pid), 15,
                                 "the ssh (pid %d) gone" % ssh_pid)
            finally:
                listener.close()
        finally:
            if not self.sshd.proc:
                self.sshd.start()
            self.settle("closed")

    def test_4_remoteprefix_forced_command(self):
        self.skip_on_24(SSH_24_ONLY_CHANGES)
        p = self.pair
        for n in p.nodes:
            peer = p.b if n is p.a else p.a
            faultkit.wait_userdb(n, "pfx", "mail_replica\tremoteprefix:pfx%s@127.0.0.1" % peer.name)
        self.changes_both_ways("pfx", mailboxes=False)
        with open(self.sshd.log, errors="replace") as fh:
            log = fh.read()
        for login in ("pfxa", "pfxb"):
            self.assertIn("Accepted publickey for %s from 127.0.0.1" % login, log)

    def test_5_no_crash(self):
        self.assert_no_crash()


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", default=test_faults.OPTS.prefix)
    ap.add_argument("--port-base", type=int, default=test_faults.OPTS.port_base)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--dovecot", choices=("2.3", "2.4"), default="2.3",
                    help="2.4: SshTransport on a Dovecot 2.4.1 pair in the trixie root, "
                         "its sshd there")
    ap.add_argument("--prefix24", help="the 2.4 stage inside the root "
                                       "(default: scripts/dovecot24-build.sh --print-stage)")
    opts, rest = ap.parse_known_args()
    if os.geteuid() != 0:
        print("test_transports: skipped: needs root", file=sys.stderr)
        sys.exit(77)
    root = dovepair.TRIXIE_ROOT if opts.dovecot == "2.4" else ""
    missing = [root + t if t == SSHD else t for t in TOOLS
               if not os.access(root + t if t == SSHD else t, os.X_OK)]
    if missing or not shutil.which("unshare"):
        print("test_transports: skipped: missing %s" % ", ".join(missing or ["unshare"]),
              file=sys.stderr)
        sys.exit(77)
    vars(test_faults.OPTS).update(vars(opts))
    t0 = time.monotonic()
    prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False)
    for name, secs in test_faults.STATE["timings"]:
        print("  %-50s %6.3f s" % (name, secs), file=sys.stderr)
    print("test_transports: %.1f s" % (time.monotonic() - t0), file=sys.stderr)
    r = prog.result
    if opts.dovecot == "2.4" and (r.testsRun == 0 or len(r.skipped) == r.testsRun):
        sys.exit(77)  # no 2.4 stage
    sys.exit(0 if r.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
