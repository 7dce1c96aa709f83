#!/usr/bin/env python3
"""A pair of real Dovecot 2.3 instances (A and B) on loopback replicating to each other.

Library and CLI (python3 standard library only). Each node is a private Dovecot
instance under ROOT/<node>/ with its own base_dir, state_dir, log, users and IMAP and
doveadm TCP ports. The nodes replicate through the replication plugin, the
aggregator and the replicator, either ours (an install prefix, `--prefix`) or
Dovecot's own (`--stock`).

Ours means:
  * mail_plugin_dir = ROOT/modules, holding symlinks to the system notify plugin and
    to OUR lib20_replication_plugin.so (the system module dir is never touched and
    the stock replication plugin is never loaded);
  * service replicator { executable = PREFIX/libexec/dovecot-replicator/replicator }
  * service aggregator { executable = PREFIX/libexec/dovecot-replicator/replicator --aggregator
                         chroot = }

  * the package's `service replicator-dsync` (PREFIX/share/dovecot-replicator/
    dovecot-replicator-dsync.conf, included as shipped): the replicator's own
    doveadm-server, processes and connections reused (dsync_service, default on in
    ours mode).

Ports (all on 127.0.0.1): port_base+0 IMAP A, +1 IMAP B, +2 doveadm A, +3 doveadm B;
with dsync_inet (ours mode): +8 A's and +9 B's replicator-dsync inet_listener.
Each node's mail_replica points at the peer's doveadm port, or with dsync_inet at
the peer's replicator-dsync port.

Start-up order matters for a clean log: a replicator full-syncs every userdb user as
soon as it starts, and a sync towards a peer that is not up yet fails (and then waits
300 s). So the harness (1) provisions INBOX on A only and copies the mail tree to B
(identical mailbox GUIDs; otherwise dsync never converges), (2) starts both masters
with the replicator started on demand, (3) starts both replicators with
`doveadm replicator status` once both doveadm ports listen, (4) waits until both
replicators know every user and have full-synced all of them (`wait_idle`).

CLI:  dovepair.py up ROOT [--prefix P | --stock] [--port-base N] [--users a,b | --nusers N]
      dovepair.py {start,stop,status,logs,check-logs,destroy} ROOT
      dovepair.py doveadm ROOT {a,b} ARGS...
Run as root (Dovecot masters, vmail user). Only masters recorded in ROOT are stopped.
"""

import argparse
import email.utils
import grp
import imaplib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SYSTEM_MODULE_DIR = "/usr/lib/dovecot/modules"
STOCK_LIBEXEC = "/usr/lib/dovecot"
STOCK_REPLICATOR = os.path.join(STOCK_LIBEXEC, "replicator")
STOCK_AGGREGATOR = os.path.join(STOCK_LIBEXEC, "aggregator")
STOCK_PLUGIN = os.path.join(SYSTEM_MODULE_DIR, "lib20_replication_plugin.so")
OUR_DAEMON_REL = os.path.join("libexec", "dovecot-replicator", "replicator")
OUR_PLUGIN_REL = os.path.join("lib", "dovecot", "modules", "lib20_replication_plugin.so")
OUR_DSYNC_CONF_REL = os.path.join("share", "dovecot-replicator", "dovecot-replicator-dsync.conf")
DSYNC_PORT_OFFSETS = (8, 9)  # A's and B's replicator-dsync inet_listener (dsync_inet)
VMAIL_UID = 5000
# (dir, file) of our 2.4-only modules in the stage's lib/dovecot/modules
MODULES24 = (("settings", "libreplication_settings.so"),
             ("doveadm", "lib10_doveadm_replicator_plugin.so"))
DEFAULT_PORT_BASE = 32100
DEFAULT_USERS = ("alice", "bob")
BAD_LOG_WORDS = ("Panic:", "Fatal:")
PAIR_FILE = "pair.json"
# Dovecot 2.4.1 nodes (--dovecot 2.4 / mixed) run inside the Debian 13 root made by
# scripts/trixie-root.sh, from the stage scripts/dovecot24-build.sh installs there.
TRIXIE_ROOT = os.environ.get("DREPL_TRIXIE_ROOT", "/var/cache/dovecot-replicator/trixie")
DOVECOT_MODES = ("2.3", "2.4", "mixed")  # mixed: A runs 2.3 on the host, B 2.4 in the root
ROOT_PATH_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------- utilities

class Timeout(AssertionError):
    """wait_until() ran out of time; the message says what was awaited."""


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value or `timeout` seconds pass.

    Returns (value, elapsed_seconds). Exceptions from pred() count as "not yet" but the
    last one is reported in the Timeout message. Never sleeps longer than `interval`
    seconds between polls."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v, time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 - polled predicates may fail transiently
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise Timeout("timed out after %.1f s waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def listening_tcp_ports():
    """Set of TCP ports in LISTEN state on IPv4/IPv6 (read from /proc/net/tcp*)."""
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def ports_free(ports):
    """True if none of `ports` is listening and each can be bound on 127.0.0.1."""
    if set(ports) & listening_tcp_ports():
        return False
    for p in ports:
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port_base(lo=32100, hi=32760, step=10):
    """First base in [lo, hi) (multiples of `step`) whose 4 pair ports are all free."""
    for base in range(lo, hi, step):
        if ports_free(range(base, base + 4)):
            return base
    raise RuntimeError("no free port block in %d-%d" % (lo, hi))


def proc_children_map():
    """{ppid: [pid...]} for every process visible in /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as fh:
                stat = fh.read()
        except OSError:
            continue
        # field 4 (ppid) follows the ")" that closes the command name
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    """All live descendants of `pid` (not including pid)."""
    kids = proc_children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def proc_info(pid):
    """dict(pid, exe, comm, cmdline, maps) for a live process, or None if it is gone."""
    try:
        exe = os.path.realpath("/proc/%d/exe" % pid)
        with open("/proc/%d/comm" % pid) as fh:
            comm = fh.read().strip()
        cmdline = _cmdline(pid)
        maps = set()
        with open("/proc/%d/maps" % pid) as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    maps.add(parts[5].strip())
        return {"pid": pid, "exe": exe, "comm": comm, "cmdline": cmdline, "maps": maps}
    except OSError:
        return None


def make_message(msgid, subject=None, body="hello from the dovepair harness"):
    """An RFC 5322 message (bytes, CRLF) with the given Message-ID (without <>)."""
    return ("From: e2e@example.com\r\nTo: e2e@example.com\r\n"
            "Subject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n\r\n%s\r\n"
            % (subject or msgid, msgid, email.utils.formatdate(), body)).encode()


def _imap_quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(typ, data, what):
    if typ != "OK":
        raise RuntimeError("IMAP %s failed: %s %r" % (what, typ, data))
    return data


def path_open_to_others(path, need=0o004):
    """True if every directory from / down to `path` is searchable by any user and the
    file itself has the `need` permission bits for others (0o004 read, 0o005 read+exec):
    unprivileged Dovecot processes (vmail, dovecot) can then load our plugin / exec our
    daemon from there."""
    path = os.path.realpath(path)
    if os.stat(path).st_mode & need != need:
        return False
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & 0o001:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


# --------------------------------------------------------------------------- node

class Node:
    """One Dovecot instance (name 'a' or 'b') of a Pair."""

    def __init__(self, pair, name, imap_port, doveadm_port, peer_doveadm_port, version="2.3",
                 dsync_port=0, peer_dsync_port=0):
        self.pair = pair
        self.name = name
        # "2.3": the host's Dovecot; "2.4": Dovecot 2.4.1 in pair.trixie_root, every
        # command run through in_root() (chroot in a private mount namespace)
        self.version = version
        self.fs = pair.trixie_root if version == "2.4" else ""
        self.root = os.path.join(pair.root, name)
        self.imap_port = imap_port
        self.doveadm_port = doveadm_port
        self.peer_doveadm_port = peer_doveadm_port
        # replicator-dsync inet_listener ports (pair.dsync_inet), else 0
        self.dsync_port = dsync_port
        self.peer_dsync_port = peer_dsync_port
        # 2.4 nodes: more (host file, path inside the root) pairs bind-mounted in the
        # node's private mount namespace (command()), e.g. an /etc/ssh/ssh_config for
        # a test's sshd; set before start(); the root's own files stay untouched
        self.binds = []
        self.hostname = "node-%s.%s" % (name, pair.tag)
        self.conf = os.path.join(self.root, "dovecot.conf")
        self.provision_conf = os.path.join(self.root, "dovecot-provision.conf")
        self.base_dir = os.path.join(self.root, "run")
        self.state_dir = os.path.join(self.root, "state")
        self.mail_dir = os.path.join(self.root, "mail")
        self.log_path = os.path.join(self.root, "log", "dovecot.log")
        self.passwd = os.path.join(self.root, "users.passwd")
        self.pidfile = os.path.join(self.base_dir, "master.pid")

    def __repr__(self):
        return "Node(%s %s imap=%d doveadm=%d)" % (self.name, self.version, self.imap_port,
                                                  self.doveadm_port)

    @property
    def is24(self):
        return self.version == "2.4"

    @property
    def daemon_path(self):
        """Host path of the replicator executable this node's master runs (None: stock)."""
        if self.is24:
            return os.path.join(self.pair.stage24, OUR_DAEMON_REL)
        return self.pair.daemon_path

    def inner(self, path):
        """`path` (a host path) as this node's Dovecot sees it: inside the trixie root
        for a 2.4 node (the pair root lives there), unchanged for a 2.3 node."""
        if self.fs and (path == self.fs or path.startswith(self.fs + "/")):
            return path[len(self.fs):] or "/"
        return path

    def command(self, argv, env=None, ours=True):
        """argv for running a Dovecot program of this node's version. A 2.4 node: a
        private mount namespace in which the pair's settings/ and doveadm/ module dirs
        (Dovecot's copies plus ours; Dovecot has no setting for these two dirs) are
        bind-mounted over the root's, then chroot into the root with a clean env. A
        daemonized master keeps that namespace, so the root itself stays untouched.
        ours=False: the root's own module dirs (provisioning: replication off)."""
        env = dict(env or {})
        if not self.is24:
            return list(argv), dict({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, **env)
        R = self.fs
        mods = os.path.join(R, "usr/lib/dovecot/modules")
        binds = [(os.path.join(self.pair.module_dir24, d), os.path.join(mods, d))
                 for d in ("settings", "doveadm") if ours]
        binds += [(src, os.path.join(R, dst.lstrip("/"))) for src, dst in self.binds]
        script = " && ".join(
            ["mount --bind %s %s" % (shlex.quote(src), shlex.quote(dst)) for src, dst in binds] +
            ['exec chroot %s env -i %s %s "$@"' % (
                shlex.quote(R), ROOT_PATH_ENV,
                " ".join(shlex.quote("%s=%s" % kv) for kv in sorted(env.items())))])
        return (["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                + list(argv), {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    # ---- config

    def render_config(self, provision=False):
        """The node's dovecot.conf text. provision=True: no replication at all (used to
        create the initial mailboxes on A only)."""
        if self.is24:
            return self.render_config24(provision)
        p = self.pair
        L = [
            "# Generated by tests/e2e/dovepair.py (%s mode) - node %s" % (p.mode, self.name),
            "instance_name = drepl-%s-%s" % (p.tag, self.name),
            "protocols = imap",
            "listen = 127.0.0.1",
            "base_dir = %s" % self.base_dir,
            "state_dir = %s" % self.state_dir,
            "log_path = %s" % self.log_path,
            "info_log_path = %s" % self.log_path,
            'log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "',
            # Distinct hostname per node: maildir unique names, dsync locks. lib/hostpid.c
            # reads DOVECOT_HOSTNAME; import_environment hands it to every child.
            "import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS DOVECOT_HOSTNAME=%s" % self.hostname,
            "hostname = %s" % self.hostname,
            "ssl = no",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain",
            "default_internal_user = dovecot",
            "default_login_user = dovenull",
            "first_valid_uid = %d" % min(500, p.vmail_uid),
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=PLAIN username_format=%%u %s" % self.passwd,
            "}",
            "userdb {",
            "  driver = passwd-file",
            "  args = username_format=%%u %s" % self.passwd,
            "  default_fields = uid=%d gid=%d home=%s/%%u" % (p.vmail_uid, p.vmail_gid, self.mail_dir),
            "}",
            "mail_location = maildir:~/Maildir",
            "namespace inbox {",
            "  inbox = yes",
            "  separator = /",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    address = 127.0.0.1",
            "    port = %d" % self.imap_port,
            "  }",
            "  inet_listener imaps {",
            "    port = 0",
            "  }",
            "}",
            "service doveadm {",
            "  inet_listener {",
            "    address = 127.0.0.1",
            "    port = %d" % self.doveadm_port,
            "  }",
            "}",
            "doveadm_port = %d" % self.peer_doveadm_port,
            "doveadm_password = %s" % p.doveadm_password,
        ]
        if not p.stock:
            L.append("mail_plugin_dir = %s" % p.module_dir)
        if p.dsync_service and not provision:
            # the package's snippet as shipped
            L += ["", "# ---- service replicator-dsync (the package's snippet) ----",
                  "!include %s" % os.path.join(p.prefix, OUR_DSYNC_CONF_REL)]
            if p.dsync_inet:
                L += ["service replicator-dsync {",
                      "  inet_listener replicator-dsync {",
                      "    address = 127.0.0.1",
                      "    port = %d" % self.dsync_port,
                      "  }",
                      "}"]
        if provision:
            L.append("# provisioning: replication off")
            return "\n".join(L) + "\n"
        daemon = p.daemon_path
        L += [
            "",
            "# ---- replication ----",
            "mail_plugins = $mail_plugins notify replication",
            "service replicator {",
        ]
        if daemon:
            L.append("  executable = %s" % daemon)
        if p.min_avail:
            L.append("  process_min_avail = 1")
        L += [
            "  unix_listener replicator-doveadm {",
            "    mode = 0600",
            "    user = vmail",
            "  }",
            "}",
            "service aggregator {",
        ]
        if daemon:
            L += ["  executable = %s --aggregator" % daemon,
                  "  chroot ="]
        L += [
            "  fifo_listener replication-notify-fifo {",
            "    user = vmail",
            "  }",
            "  unix_listener replication-notify {",
            "    user = vmail",
            "  }",
            "}",
            "replication_max_conns = %d" % p.max_conns,
            "replication_full_sync_interval = %s" % p.full_sync_interval,
            "plugin {",
            "  mail_replica = tcp:127.0.0.1:%d" % (self.peer_dsync_port if p.dsync_inet
                                                   else self.peer_doveadm_port),
        ]
        if p.sync_timeout:
            L.append("  replication_sync_timeout = %d" % p.sync_timeout)
        L.append("}")
        if p.extra_conf:
            L += ["", "# ---- extra ----", p.extra_conf]
        # scripts/sanitize.sh: e.g. vsz_limit = 0 for an ASan daemon (which maps
        # terabytes of shadow memory) in every test without changing each test
        env_conf = os.environ.get("DREPL_E2E_EXTRA_CONF", "")
        if env_conf and not provision:
            L += ["", "# ---- $DREPL_E2E_EXTRA_CONF ----", env_conf]
        return "\n".join(L) + "\n"

    def render_config24(self, provision=False):
        """dovecot.conf for Dovecot 2.4.1, written the way an admin on Debian 13 writes
        it: 2.4 syntax, our settings at top level (registered by our settings module),
        mail_plugins as a boollist, and NO service {} block for the replicator (the
        settings module ships the service with its four 2.3 listeners)."""
        p = self.pair
        i = self.inner
        L = [
            "# Generated by tests/e2e/dovepair.py (%s mode, Dovecot 2.4) - node %s" % (p.mode, self.name),
            "dovecot_config_version = 2.4.1",
            "dovecot_storage_version = 2.4.1",
            "instance_name = drepl-%s-%s" % (p.tag, self.name),
            "protocols = imap",
            "listen = 127.0.0.1",
            "base_dir = %s" % i(self.base_dir),
            "state_dir = %s" % i(self.state_dir),
            "log_path = %s" % i(self.log_path),
            "info_log_path = %s" % i(self.log_path),
            'log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "',
            # the master gets DOVECOT_HOSTNAME from start(); this hands it to every child
            "import_environment {",
            "  DOVECOT_HOSTNAME = %s" % self.hostname,
            "}",
            "hostname = %s" % self.hostname,
            "ssl = no",
            "auth_allow_cleartext = yes",
            "auth_mechanisms = plain",
            "default_internal_user = dovecot",
            "default_login_user = dovenull",
            "first_valid_uid = %d" % min(500, p.vmail_uid),
            "mail_uid = vmail",
            "mail_gid = vmail",
            "passdb passwd-file {",
            "  passwd_file_path = %s" % i(self.passwd),
            "}",
            "userdb passwd-file {",
            "  passwd_file_path = %s" % i(self.passwd),
            "  fields {",
            "    home = %s/%%{user}" % i(self.mail_dir),
            "  }",
            "}",
            # the 2.3 default for maildir (2.4's default layout is fs): both versions
            # read the same tree, so a mixed pair starts from one provisioned copy
            "mail_driver = maildir",
            "mail_path = ~/Maildir",
            "mailbox_list_layout = maildir++",
            "namespace inbox {",
            "  inbox = yes",
            "  separator = /",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    listen = 127.0.0.1",
            "    port = %d" % self.imap_port,
            "  }",
            "  inet_listener imaps {",
            "    port = 0",
            "  }",
            "}",
            "service doveadm {",
            "  inet_listener doveadm-tcp {",
            "    listen = 127.0.0.1",
            "    port = %d" % self.doveadm_port,
            "  }",
            "}",
            "doveadm_port = %d" % self.peer_doveadm_port,
            "doveadm_password = %s" % p.doveadm_password,
            "mail_plugin_dir = %s" % i(os.path.join(p.module_dir24, "mail")),
        ]
        if provision:
            L.append("# provisioning: replication off")
            return "\n".join(L) + "\n"
        L += [
            "",
            "# ---- replication (our settings module registers these keys) ----",
            "mail_plugins {",
            "  notify = yes",
            "  replication = yes",
            "}",
            "mail_replica = tcp:127.0.0.1:%d" % self.peer_doveadm_port,
            "replication_max_conns = %d" % p.max_conns,
            "replication_full_sync_interval = %s" % p.full_sync_interval,
        ]
        if p.sync_timeout:
            L.append("replication_sync_timeout = %ds" % p.sync_timeout)
        extra = p.extra_conf24 if p.extra_conf24 is not None else ""
        if extra:
            L += ["", "# ---- extra ----", extra]
        return "\n".join(L) + "\n"

    def passwd_line(self, user, fields=""):
        """One passwd-file line: user, {PLAIN} password, empty uid..shell, extra fields."""
        return "%s:{PLAIN}%s::::::%s\n" % (user, self.pair.password(user), fields)

    def write_files(self):
        for d in (self.base_dir, self.state_dir, os.path.dirname(self.log_path), self.mail_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chown(self.mail_dir, self.pair.vmail_uid, self.pair.vmail_gid)
        with open(self.passwd, "w") as fh:
            for u in self.pair.users:
                fh.write(self.passwd_line(u, self.pair.user_fields.get(u, "")))
        os.chmod(self.passwd, 0o640)
        os.chown(self.passwd, 0, self.dovecot_gid())
        open(self.log_path, "a").close()
        for path, prov in ((self.conf, False), (self.provision_conf, True)):
            with open(path, "w") as fh:
                fh.write(self.render_config(provision=prov))
            os.chmod(path, 0o644)  # readable by the CLI only as root anyway (root dir)
        argv, env = self.command(["doveconf", "-c", self.inner(self.conf), "-n"])
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("doveconf rejected %s: %s" % (self.conf, r.stderr.strip()))

    def dovecot_gid(self):
        """gid of the `dovecot` group as this node's Dovecot sees it (root's /etc/group
        for a 2.4 node)."""
        if not self.is24:
            return grp.getgrnam("dovecot").gr_gid
        with open(os.path.join(self.fs, "etc/group")) as fh:
            for line in fh:
                f = line.split(":")
                if f[0] == "dovecot":
                    return int(f[2])
        raise KeyError("no dovecot group in %s/etc/group" % self.fs)

    # ---- process control

    def master_pid(self, conf=None):
        """PID of this node's running master (pidfile + cmdline check), or None."""
        try:
            with open(self.pidfile) as fh:
                pid = int(fh.read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                cmd = fh.read().split(b"\0")
        except (OSError, ValueError):
            return None
        confs = [conf] if conf else [self.conf, self.provision_conf]
        if any(self.inner(c).encode() in cmd for c in confs):
            return pid
        return None

    def start(self, provision=False, timeout=30):
        """Starts the master (daemonized) and waits until IMAP and doveadm ports listen."""
        conf = self.provision_conf if provision else self.conf
        if self.master_pid():
            raise RuntimeError("node %s already running" % self.name)
        argv, env = self.command(["dovecot", "-c", self.inner(conf)],
                                 {"DOVECOT_HOSTNAME": self.hostname}, ours=not provision)
        with open(os.path.join(self.root, "log", "master-stdout.log"), "ab") as out:
            # stdout/stderr to a file: the daemonized master keeps them open forever.
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=out, env=env, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("dovecot -c %s exited %d; see %s and %s" % (
                conf, r.returncode, os.path.join(self.root, "log", "master-stdout.log"), self.log_path))
        wait_until(lambda: self.master_pid(conf) and
                   {self.imap_port, self.doveadm_port} | ({self.dsync_port} if self.dsync_port and not provision else set())
                   <= listening_tcp_ports(),
                   timeout, what="node %s master and ports %d,%d" % (self.name, self.imap_port, self.doveadm_port))

    def stop(self, timeout=20, linger=10):
        """Stops this node's master: SIGTERM, SIGKILL after `timeout` s. Its processes then
        get `linger` s to exit on their own (a service must notice its master is gone);
        the ones still there are SIGKILLed by PID and returned (as "pid cmdline" strings).
        Returns None if no master was running."""
        pid = self.master_pid()
        if not pid:
            return None
        kids = {k: _cmdline(k) for k in descendants(pid)}
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: _gone(pid), timeout, what="master %d to exit" % pid)
        except Timeout:
            os.kill(pid, signal.SIGKILL)

        def alive():
            return [k for k, cmd in kids.items() if cmd and not _gone(k) and _cmdline(k) == cmd]
        try:
            wait_until(lambda: not alive(), linger, what="node %s processes to exit" % self.name)
            return []
        except Timeout:
            left = alive()
            for k in left:
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
            return ["%d %s" % (k, kids[k]) for k in left]

    def processes(self):
        """proc_info() of every descendant of this node's master."""
        pid = self.master_pid()
        if not pid:
            return []
        return [i for i in (proc_info(p) for p in descendants(pid)) if i]

    # ---- doveadm

    def doveadm(self, *args, check=True, timeout=60, fmt=None, conf=None, input=None):
        """Runs the stock `doveadm -c <conf> ARGS` for this node (conf: a host path,
        default the node's dovecot.conf; e.g. provision_conf: replication off), with
        `input` (text) on stdin; returns CompletedProcess."""
        cmd = (["doveadm", "-c", self.inner(conf or self.conf)] + (["-f", fmt] if fmt else [])
               + list(args))
        if self.is24:
            argv, env = self.command(cmd, {"DOVECOT_HOSTNAME": self.hostname})
        else:
            argv, env = cmd, dict(os.environ, DOVECOT_HOSTNAME=self.hostname)
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                           **stdin)
        if check and r.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
        return r

    def replicator_overview(self):
        """`doveadm replicator status` as {label: int}."""
        out = self.doveadm("replicator", "status").stdout
        res = {}
        for line in out.splitlines():
            m = re.match(r"^(.*?)\s+(\d+)\s*$", line)
            if m:
                res[m.group(1).strip()] = int(m.group(2))
        return res

    def replicator_users(self, mask="*"):
        """`doveadm -f tab replicator status MASK` as {user: {column: value}}."""
        out = self.doveadm("replicator", "status", mask, fmt="tab").stdout.splitlines()
        if not out:
            return {}
        head = out[0].split("\t")
        res = {}
        for line in out[1:]:
            cols = line.split("\t")
            if cols and cols[0]:
                res[cols[0]] = dict(zip(head, cols))
        return res

    def dsync_status(self):
        """`doveadm -f tab replicator dsync-status` rows as dicts."""
        out = self.doveadm("replicator", "dsync-status", fmt="tab").stdout.splitlines()
        if not out:
            return []
        head = out[0].split("\t")
        return [dict(zip(head, line.split("\t"))) for line in out[1:] if line.strip()]

    # ---- IMAP

    def imap(self, user, timeout=15):
        """A logged-in imaplib.IMAP4 connection for `user`."""
        c = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=timeout)
        _check(*c.login(user, self.pair.password(user)), what="LOGIN")
        return c

    def session(self, user):
        """A logged-in Session (context manager; logs out on exit). Changes made through
        a session that stays open are flushed by the plugin's own timer, not by the
        session's end."""
        return Session(self, user)

    # one-shot changes: log in, change, log out (the plugin flushes at user deinit)

    def append(self, user, msgid, mailbox="INBOX", flags=None):
        """IMAP APPEND of make_message(msgid) into mailbox."""
        with self.session(user) as s:
            s.append(msgid, mailbox, flags)

    def store(self, user, msgid, op, flags, mailbox="INBOX"):
        """UID STORE <op> (flags) on the message with this Message-ID; op like '+FLAGS'."""
        with self.session(user) as s:
            s.store(msgid, op, flags, mailbox)

    def expunge(self, user, msgid, mailbox="INBOX"):
        """Marks the message \\Deleted and EXPUNGEs it."""
        with self.session(user) as s:
            s.expunge(msgid, mailbox)

    def create(self, user, mailbox):
        with self.session(user) as s:
            s.create(mailbox)

    def rename(self, user, old, new):
        with self.session(user) as s:
            s.rename(old, new)

    def delete(self, user, mailbox):
        with self.session(user) as s:
            s.delete(mailbox)

    def mailboxes(self, user):
        """Set of mailbox names (IMAP LIST "" "*")."""
        c = self.imap(user)
        try:
            data = _check(*c.list('""', '"*"'), what="LIST")
        finally:
            c.logout()
        names = set()
        for item in data:
            if item is None:
                continue
            if isinstance(item, tuple):  # name sent as a literal
                names.add(item[1].decode())
                continue
            m = re.match(rb'^\([^)]*\) (?:"(?:[^"\\]|\\.)*"|NIL) (.*)$', item)
            if not m:
                continue
            name = m.group(1)
            if name.startswith(b'"'):
                name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
            names.add(name.decode())
        return names

    def messages(self, user, mailbox="INBOX"):
        """{message-id (without <>): set of flags} of a mailbox, read-only (EXAMINE).
        Returns None if the mailbox does not exist."""
        c = self.imap(user)
        try:
            typ, data = c.select(_imap_quote(mailbox), readonly=True)
            if typ != "OK":
                return None
            if int(data[0] or 0) == 0:
                return {}
            typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            _check(typ, data, "FETCH")
        finally:
            try:
                c.logout()
            except Exception:  # noqa: BLE001
                pass
        res = {}
        cur_meta, cur_hdr = b"", b""
        for item in data:
            if isinstance(item, tuple):
                cur_meta, cur_hdr = item[0], item[1]
            elif item is not None:
                cur_meta += item  # trailing part after the literal, e.g. b' FLAGS (...))' or b')'
                fm = re.search(rb"FLAGS \(([^)]*)\)", cur_meta)
                hm = re.search(rb"<([^>]*)>", cur_hdr)
                if hm:
                    res[hm.group(1).decode()] = set(fm.group(1).decode().split()) if fm else set()
                cur_meta, cur_hdr = b"", b""
        return res

    # ---- logs

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def log_lines(self, words):
        """Log lines containing any of `words`."""
        return [l for l in self.log_text().splitlines() if any(w in l for w in words)]

    def bad_log_lines(self, words=BAD_LOG_WORDS):
        """Log lines containing any of `words` (default Panic:/Fatal:)."""
        return self.log_lines(words)


class Session:
    """One logged-in IMAP session on a node; every method raises on a non-OK reply."""

    def __init__(self, node, user):
        self.node, self.user = node, user
        self.conn = node.imap(user)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.conn:
            try:
                self.conn.logout()
            finally:
                self.conn = None

    def append(self, msgid, mailbox="INBOX", flags=None):
        """APPEND make_message(msgid) (flags: IMAP flag list text like '(\\Seen)')."""
        _check(*self.conn.append(_imap_quote(mailbox), flags, None, make_message(msgid)), what="APPEND")

    def uid_of(self, msgid, mailbox="INBOX"):
        """SELECTs mailbox and returns the UID of the one message with this Message-ID."""
        c = self.conn
        _check(*c.select(_imap_quote(mailbox)), what="SELECT")
        typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", _imap_quote("<%s>" % msgid))
        uids = _check(typ, data, "SEARCH")[0].split()
        if len(uids) != 1:
            raise RuntimeError("%s: expected 1 message %s in %s, found %d" % (
                self.node.name, msgid, mailbox, len(uids)))
        return uids[0].decode()

    def store(self, msgid, op, flags, mailbox="INBOX"):
        """UID STORE <op> (flags), op like '+FLAGS' / '-FLAGS'."""
        uid = self.uid_of(msgid, mailbox)
        _check(*self.conn.uid("STORE", uid, op, "(%s)" % flags), what="STORE")

    def expunge(self, msgid, mailbox="INBOX"):
        """Marks the message \\Deleted and EXPUNGEs the mailbox."""
        uid = self.uid_of(msgid, mailbox)
        _check(*self.conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), what="STORE")
        _check(*self.conn.expunge(), what="EXPUNGE")

    def create(self, mailbox):
        _check(*self.conn.create(_imap_quote(mailbox)), what="CREATE")

    def rename(self, old, new):
        _check(*self.conn.rename(_imap_quote(old), _imap_quote(new)), what="RENAME")

    def delete(self, mailbox):
        _check(*self.conn.delete(_imap_quote(mailbox)), what="DELETE")

    def noop(self):
        _check(*self.conn.noop(), what="NOOP")


def _gone(pid):
    """True if pid no longer runs (absent or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            s = fh.read()
        return s[s.rindex(")") + 2] == "Z"
    except OSError:
        return True


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# --------------------------------------------------------------------------- pair

class Pair:
    """Two nodes A and B in `root`, replicating to each other.

    prefix: install prefix holding our plugin and daemon (ignored with stock=True).
    users: user names (password = password(user)). min_avail: start the replicator with
    the master (process_min_avail = 1) instead of on demand - see the module doc."""

    def __init__(self, root, port_base=None, prefix=None, stock=False, users=DEFAULT_USERS,
                 max_conns=10, full_sync_interval="1 days", sync_timeout=0, extra_conf="",
                 min_avail=False, tag=None, doveadm_password=None, stock_daemon=False,
                 mailboxes=("INBOX",), dovecot="2.3", prefix24=None, trixie_root=None,
                 user_fields=None, extra_conf24=None, dsync_service=None, dsync_inet=False):
        if dovecot not in DOVECOT_MODES:
            raise ValueError("dovecot must be one of %s" % ", ".join(DOVECOT_MODES))
        if not stock and not prefix and dovecot != "2.4":
            raise ValueError("need an install prefix (--prefix) or stock mode (--stock)")
        if dovecot != "2.3" and (stock or stock_daemon or not prefix24):
            raise ValueError("--dovecot %s needs --prefix24 (the stage of scripts/dovecot24-build.sh) "
                             "and our daemon (2.4 has no stock replication)" % dovecot)
        self.dovecot = dovecot
        self.trixie_root = os.path.abspath(trixie_root or TRIXIE_ROOT) if dovecot != "2.3" else None
        # the stage inside the root, as Dovecot in the root sees it (e.g. /var/tmp/drepl-X/stage)
        self.prefix24 = prefix24
        # {user: passwd-file extra fields}, e.g. {"carol": "userdb_noreplicate=yes"}
        self.user_fields = dict(user_fields or {})
        # extra config text for 2.4 nodes (extra_conf is 2.3 syntax: 2.3 nodes only)
        self.extra_conf24 = extra_conf24
        self.root = os.path.abspath(root)
        if self.trixie_root and not self.root.startswith(self.trixie_root + "/"):
            raise ValueError("a pair with 2.4 nodes must live inside the trixie root %s (got %s)"
                             % (self.trixie_root, self.root))
        self.stock = bool(stock)
        # our plugin from `prefix`, but Dovecot's own replicator and aggregator
        self.stock_daemon = bool(stock_daemon) and not self.stock
        self.prefix = os.path.abspath(prefix) if prefix and not stock else None
        self.port_base = port_base if port_base is not None else pick_port_base()
        self.users = list(users)
        self.max_conns = max_conns
        self.full_sync_interval = full_sync_interval
        self.sync_timeout = sync_timeout
        self.extra_conf = extra_conf
        self.min_avail = min_avail
        # mailboxes provision() creates for every user (same GUIDs on both nodes)
        self.mailboxes = list(mailboxes)
        self.tag = tag or "p%d" % self.port_base
        # the package's service replicator-dsync (ours mode only; default on there) and
        # the peers reaching each other through its inet_listener
        ours = not self.stock and not self.stock_daemon
        self.dsync_service = ours if dsync_service is None else bool(dsync_service) and ours
        self.dsync_inet = bool(dsync_inet) and self.dsync_service
        self.doveadm_password = doveadm_password or secrets.token_hex(12)
        self.module_dir = os.path.join(self.root, "modules")
        # 2.4 nodes: mail/ (mail_plugin_dir), settings/ and doveadm/ (bind-mounted)
        self.module_dir24 = os.path.join(self.root, "modules24")
        # the prefix actually used by Dovecot (a copy inside root if the original is not
        # reachable by the unprivileged vmail/dovecot users, e.g. a checkout under /root)
        self.run_prefix = self.prefix
        if self.prefix and not self._prefix_usable(self.prefix):
            self.run_prefix = os.path.join(self.root, "prefix")
        pb = self.port_base
        va = "2.4" if dovecot == "2.4" else "2.3"
        vb = "2.3" if dovecot == "2.3" else "2.4"
        da, db = ((pb + DSYNC_PORT_OFFSETS[0], pb + DSYNC_PORT_OFFSETS[1]) if self.dsync_inet
                  else (0, 0))
        self.a = Node(self, "a", pb + 0, pb + 2, pb + 3, va, da, db)
        self.b = Node(self, "b", pb + 1, pb + 3, pb + 2, vb, db, da)
        self.nodes = (self.a, self.b)
        self.vmail_uid, self.vmail_gid = VMAIL_UID, VMAIL_UID

    # ---- persistence (so the CLI can act on an existing pair)

    def to_dict(self):
        return {k: getattr(self, k) for k in (
            "root", "port_base", "prefix", "stock", "users", "max_conns", "full_sync_interval",
            "sync_timeout", "extra_conf", "min_avail", "tag", "doveadm_password", "stock_daemon",
            "mailboxes", "dovecot", "prefix24", "trixie_root", "user_fields", "extra_conf24",
            "dsync_service", "dsync_inet")}

    def save(self):
        path = os.path.join(self.root, PAIR_FILE)
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, root):
        with open(os.path.join(os.path.abspath(root), PAIR_FILE)) as fh:
            d = json.load(fh)
        p = cls(**d)
        p._resolve_vmail(create=False)
        return p

    # ---- paths

    @staticmethod
    def _prefix_usable(prefix):
        try:
            return (path_open_to_others(os.path.join(prefix, OUR_PLUGIN_REL), 0o004) and
                    (not os.path.exists(os.path.join(prefix, OUR_DAEMON_REL)) or
                     path_open_to_others(os.path.join(prefix, OUR_DAEMON_REL), 0o005)))
        except OSError:
            return False

    @property
    def mode(self):
        """'stock', 'ours' or 'our-plugin+stock-daemon' (+ '-2.4' / '-mixed')."""
        m = "stock" if self.stock else "our-plugin+stock-daemon" if self.stock_daemon else "ours"
        return m if self.dovecot == "2.3" else "%s-%s" % (m, self.dovecot)

    @property
    def stage24(self):
        """Host path of the 2.4 stage (inside the trixie root)."""
        return os.path.join(self.trixie_root, self.prefix24.lstrip("/")) if self.prefix24 else None

    @property
    def daemon_path(self):
        """Our daemon as Dovecot runs it (None in stock mode)."""
        if self.stock or self.stock_daemon:
            return None
        return os.path.join(self.run_prefix, OUR_DAEMON_REL)

    @property
    def plugin_path(self):
        return STOCK_PLUGIN if self.stock else os.path.join(self.run_prefix, OUR_PLUGIN_REL)

    @staticmethod
    def password(user):
        return "pw-" + user

    # ---- setup

    def _resolve_vmail(self, create=True):
        try:
            pw = pwd.getpwnam("vmail")
            self.vmail_uid, self.vmail_gid = pw.pw_uid, pw.pw_gid
            return
        except KeyError:
            if not create:
                raise
        try:
            grp.getgrnam("vmail")
        except KeyError:
            subprocess.run(["groupadd", "-g", str(VMAIL_UID), "vmail"], check=True)
        subprocess.run(["useradd", "-u", str(VMAIL_UID), "-g", "vmail", "-M", "-d", "/nonexistent",
                        "-s", "/usr/sbin/nologin", "vmail"], check=True)
        pw = pwd.getpwnam("vmail")
        self.vmail_uid, self.vmail_gid = pw.pw_uid, pw.pw_gid

    def _setup_modules24(self):
        """ROOT/modules24 for the 2.4 nodes: mail/ (mail_plugin_dir: symlinks, as seen
        inside the root, to the root's notify plugin and our plugin from the stage), and
        settings/ + doveadm/: copies of the root's own modules plus ours from the stage,
        bind-mounted over the root's dirs by Node.command()."""
        st = self.stage24
        need = [os.path.join(st, OUR_DAEMON_REL), os.path.join(st, OUR_PLUGIN_REL)] + [
            os.path.join(st, "lib/dovecot/modules", d, f) for d, f in MODULES24]
        for f in need:
            if not os.path.exists(f):
                raise FileNotFoundError("missing %s: run scripts/dovecot24-build.sh" % f)
        root_mods = os.path.join(self.trixie_root, "usr/lib/dovecot/modules")
        if os.path.exists(self.module_dir24):
            shutil.rmtree(self.module_dir24)
        for d in ("mail", "settings", "doveadm"):
            os.makedirs(os.path.join(self.module_dir24, d))
        os.chmod(self.module_dir24, 0o755)
        for d, ours in MODULES24:
            for f in os.listdir(os.path.join(root_mods, d)):
                if f.endswith(".so"):
                    shutil.copy2(os.path.join(root_mods, d, f), os.path.join(self.module_dir24, d, f))
            shutil.copy2(os.path.join(st, "lib/dovecot/modules", d, ours),
                         os.path.join(self.module_dir24, d, ours))
        os.symlink("/usr/lib/dovecot/modules/lib15_notify_plugin.so",
                   os.path.join(self.module_dir24, "mail", "lib15_notify_plugin.so"))
        os.symlink(os.path.join(self.prefix24, OUR_PLUGIN_REL),
                   os.path.join(self.module_dir24, "mail", "lib20_replication_plugin.so"))

    def _setup_modules(self):
        """ROOT/modules: symlinks to the system notify plugin and our replication plugin."""
        if self.dovecot != "2.3":
            self._setup_modules24()
        if self.stock or self.dovecot == "2.4":
            return
        if self.run_prefix != self.prefix:
            shutil.copytree(self.prefix, self.run_prefix, symlinks=True, dirs_exist_ok=True)
        for rel in (OUR_PLUGIN_REL,) if self.stock_daemon else (OUR_DAEMON_REL, OUR_PLUGIN_REL):
            if not os.path.exists(os.path.join(self.run_prefix, rel)):
                raise FileNotFoundError("missing %s in install prefix %s (run cmake --install)" % (rel, self.prefix))
        os.makedirs(self.module_dir, exist_ok=True)
        os.chmod(self.module_dir, 0o755)
        links = {"lib15_notify_plugin.so": os.path.join(SYSTEM_MODULE_DIR, "lib15_notify_plugin.so"),
                 "lib20_replication_plugin.so": self.plugin_path}
        for name, target in links.items():
            dst = os.path.join(self.module_dir, name)
            if os.path.lexists(dst):
                os.unlink(dst)
            os.symlink(target, dst)

    def create(self, provision=True):
        """Writes configs and provisions identical INBOXes on both nodes. Leaves the pair
        stopped. Fails if the root already holds a running pair. provision=False skips
        the mailboxes (a node used only for its replicator, e.g. a 1M-user userdb)."""
        if os.geteuid() != 0:
            raise PermissionError("dovepair needs root (Dovecot masters, vmail user)")
        for n in self.nodes:
            if n.master_pid():
                raise RuntimeError("node %s in %s is running; stop it first" % (n.name, self.root))
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        self._resolve_vmail()
        self._setup_modules()
        for n in self.nodes:
            n.write_files()
        self.save()
        if provision:
            self.provision()

    def provision(self):
        """INBOX (and the other `mailboxes`) for every user created on A (replication
        off), then A's mail tree copied to B, so both have the same mailbox GUIDs."""
        a = self.a
        a.start(provision=True)
        try:
            extra = [m for m in self.mailboxes if m != "INBOX"]
            if len(self.users) > 20:  # one doveadm iterating the userdb (-A): much faster
                if extra:
                    a.doveadm("mailbox", "create", "-A", *extra, timeout=1800)
                a.doveadm("mailbox", "status", "-A", "guid", "INBOX", timeout=1800)
            else:
                for u in self.users:
                    if extra:
                        a.doveadm("mailbox", "create", "-u", u, *extra)
                    a.doveadm("mailbox", "status", "-u", u, "guid", "INBOX")
        finally:
            a.stop()
        shutil.rmtree(self.b.mail_dir)
        subprocess.run(["cp", "-a", a.mail_dir, self.b.mail_dir], check=True)

    # ---- run

    def start(self, timeout=60):
        """Starts both masters, then both replicators, and waits until both are idle."""
        try:
            for n in self.nodes:
                if not n.master_pid():
                    n.start()
            for n in self.nodes:  # starts an on-demand replicator
                wait_until(lambda: n.doveadm("replicator", "status", check=True), 20,
                           what="node %s replicator to answer" % n.name)
            self.wait_idle(timeout, kick_failed=self.dovecot == "2.4")
        except BaseException:
            self.dump_logs()
            raise

    def stop(self):
        """Stops both nodes; returns {node name: [leftover processes that had to be killed]}
        for nodes that had any (see Node.stop). Then the secret-leak check of every e2e
        run (issue 14): raises AssertionError when a node's log holds doveadm_password or
        a dsync state string (secret_leaks())."""
        left = {}
        for n in self.nodes:
            l = n.stop()
            if l:
                left[n.name] = l
        leaks = self.secret_leaks()
        if leaks:
            raise AssertionError("secrets in the logs (shown masked):\n" + "\n".join(leaks))
        return left

    def dsync_states(self):
        """Every dsync state string either node's replicator stored (replicator.db
        field 7 and its journal's records): opaque base64, 40+ characters."""
        states = set()
        for n in self.nodes:
            for name in ("replicator.db", "replicator.db.log"):
                try:
                    with open(os.path.join(n.state_dir, name), errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    continue
                for line in text.splitlines():
                    for field in line.split("\t"):
                        if len(field) >= 40 and re.fullmatch(r"[A-Za-z0-9+/]+=*", field):
                            states.add(field)
        return states

    def secret_leaks(self):
        """Log lines (secret masked) that contain doveadm_password or, for pairs that run
        our replicator, a stored dsync state: [] when the logs are clean."""
        secrets_ = {"doveadm_password": self.doveadm_password}
        if not self.stock and not self.stock_daemon:
            secrets_.update(("dsync state %s..." % st[:6], st) for st in self.dsync_states())
        secrets_ = {what: secret for what, secret in secrets_.items() if secret}
        found = []
        for n in self.nodes:
            for line in n.log_text().splitlines():
                hits = [what for what, secret in secrets_.items() if secret in line]
                if hits:
                    for what, secret in secrets_.items():
                        line = line.replace(secret, "<" + what + ">")
                    found.append("node %s, %s: %s" % (n.name, ", ".join(hits), line))
        return found

    def destroy(self):
        """Stops the pair and removes its root (only if it holds a pair.json)."""
        self.stop()
        if os.path.exists(os.path.join(self.root, PAIR_FILE)):
            shutil.rmtree(self.root)

    def node_quiet(self, n, known_users=None):
        """True when node n's replicator has nothing queued or waiting and no dsync running
        (and, if given, knows exactly `known_users` users)."""
        ov = n.replicator_overview()
        if not ov or any(v for k, v in ov.items() if k.startswith(("Queued", "Waiting"))):
            return False
        if known_users is not None and ov.get("Total number of known users") != known_users:
            return False
        return all(not r.get("username") for r in n.dsync_status())

    def never_sync_users(self):
        """Users whose userdb fields say noreplicate or give an empty mail_replica."""
        return {u for u, f in self.user_fields.items()
                if "noreplicate" in f or re.search(r"(^|\s)userdb_mail_replica=(\s|$)", f)}

    def node_idle(self, n, kick_failed=False):
        """node_quiet, knowing every user, and every user (but never_sync_users) full-
        synced and not failed. kick_failed: ask for a full sync of each failed user
        (a 2.4 replicator starts with its master, before the peer listens)."""
        if not self.node_quiet(n, known_users=len(self.users)):
            return False
        users = n.replicator_users("*")
        failed = [u for u in self.users if users.get(u, {}).get("failed", "-") != "-"]
        if kick_failed:
            for u in failed:
                n.doveadm("replicator", "replicate", "-f", u)
        never = self.never_sync_users()
        return not failed and all(u in users and users[u].get("full sync", "-") != "-"
                                  for u in self.users if u not in never)

    def wait_quiet(self, timeout=30, stable=0.6):
        """Waits until both replicators have been quiet (node_quiet) for `stable` seconds
        in a row - long enough for a late notification (a plugin may hold one back for
        up to 0.5 s) to show up. Returns seconds waited.

        Why: dsync is not atomic against concurrent IMAP changes; e.g. a mailbox DELETE
        made while a dsync of the same user is running can be undone by that dsync.
        Making each test change on a quiet pair measures that change alone."""
        since = [None]

        def quiet_long_enough():
            if not all(self.node_quiet(n) for n in self.nodes):
                since[0] = None
                return False
            now = time.monotonic()
            if since[0] is None:
                since[0] = now
            return now - since[0] >= stable
        try:
            return wait_until(quiet_long_enough, timeout, 0.1,
                              what="both replicators quiet for %.1f s" % stable)[1]
        except Timeout as e:
            raise Timeout("%s; status: %s" % (e, {n.name: n.replicator_overview()
                                                  for n in self.nodes})) from None

    def wait_idle(self, timeout=60, kick_failed=False):
        """Waits until both replicators are idle (node_idle); returns seconds waited."""
        return wait_until(lambda: all([self.node_idle(n, kick_failed) for n in self.nodes]),
                          timeout, 0.2 if not kick_failed else 1.0,
                          what="both replicators idle with every user full-synced")[1]

    # ---- checks

    def bad_log_lines(self):
        """{node name: [Panic/Fatal lines]} for nodes that have any."""
        return {n.name: l for n in self.nodes for l in [n.bad_log_lines()] if l}

    def stop_after_tests(self, failed):
        """Stops the pair at the end of a test module/class; when a test failed,
        first prints the replicators' status and the logs' tails to stderr."""
        if failed:
            try:
                print(self.status_text(), file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - diagnostics only
                print("status failed: %r" % e, file=sys.stderr)
            self.dump_logs()
        self.stop()

    def dump_logs(self, lines=150, file=sys.stderr):
        for n in self.nodes:
            text = n.log_text().splitlines()
            print("===== node %s log (%s), last %d of %d lines =====" % (
                n.name, n.log_path, min(lines, len(text)), len(text)), file=file)
            for l in text[-lines:]:
                print(l, file=file)
        file.flush()

    def status_text(self):
        out = []
        for n in self.nodes:
            for args in (("replicator", "status"), ("replicator", "status", "*"), ("replicator", "dsync-status")):
                r = n.doveadm(*args, check=False)
                out.append("--- node %s: doveadm %s\n%s%s" % (n.name, " ".join(args), r.stdout, r.stderr))
        return "".join(out)


def stage24_default():
    """The 2.4 stage (path inside the trixie root) scripts/dovecot24-build.sh installs
    this checkout into."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                          "dovecot24-build.sh")
    return subprocess.run([script, "--print-stage"], check=True, capture_output=True,
                          text=True).stdout.strip()


def pair_root24(prefix="drepl-e2e24-", trixie_root=None):
    """A fresh directory for a pair with 2.4 nodes: inside the trixie root's /var/tmp."""
    base = os.path.join(trixie_root or TRIXIE_ROOT, "var", "tmp")
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def new_pair_root(prefix, dovecot="2.3"):
    """A fresh directory for a pair of mode `dovecot` (DOVECOT_MODES): /tmp for a 2.3
    pair, the trixie root's /var/tmp for a pair with a 2.4 node."""
    if dovecot == "2.3":
        return tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    return pair_root24(prefix)


def add_dovecot_args(ap, dovecot_help):
    """The `--dovecot 2.3|2.4` and `--prefix24 STAGE` options of a test module that runs
    on either Dovecot (argparse parser `ap`)."""
    ap.add_argument("--dovecot", choices=("2.3", "2.4"), default="2.3", help=dovecot_help)
    ap.add_argument("--prefix24", help="the 2.4 stage inside the root "
                                       "(default: scripts/dovecot24-build.sh --print-stage)")


def run_tests(module, dovecot, rest):
    """unittest.main for `module` with argv `rest`. On 2.4, exits 77 (ctest: skipped)
    when no test ran or every test was skipped, else 0 or 1."""
    import unittest
    argv = [sys.argv[0], "-v"] + rest
    if dovecot == "2.3":
        unittest.main(module=module, argv=argv)
        return
    r = unittest.main(module=module, argv=argv, exit=False).result
    # a class skipped in setUpClass is in r.skipped but not in r.testsRun
    skipped_tests = sum(1 for t, _ in r.skipped if isinstance(t, unittest.TestCase))
    if r.wasSuccessful() and r.testsRun == skipped_tests:
        sys.exit(77)
    sys.exit(0 if r.wasSuccessful() else 1)


def require_dovecot(dovecot, prefix24=None):
    """For a test module's `--dovecot` option: returns the 2.4 stage (the path inside
    the trixie root, `prefix24` or scripts/dovecot24-build.sh's) for a mode with a 2.4
    node, None for "2.3". Raises unittest.SkipTest when the mode cannot run here: not
    root, or no staged 2.4 build in the root (run scripts/dovecot24-build.sh)."""
    import unittest
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (private Dovecot masters%s)"
                                % ("" if dovecot == "2.3" else ", chroot"))
    if dovecot == "2.3":
        return None
    if dovecot not in DOVECOT_MODES:
        raise ValueError("dovecot must be one of %s" % ", ".join(DOVECOT_MODES))
    p24 = prefix24 or stage24_default()
    if not os.path.exists(os.path.join(TRIXIE_ROOT, p24.lstrip("/"), OUR_DAEMON_REL)):
        raise unittest.SkipTest("no 2.4 stage %s in %s: run scripts/dovecot24-build.sh"
                                % (p24, TRIXIE_ROOT))
    return p24


# --------------------------------------------------------------------------- CLI

def _cli(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("create", "up"):
        p = sub.add_parser(name, help="write configs + provision" + (" + start" if name == "up" else ""))
        p.add_argument("root")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--prefix", help="install prefix with our plugin and daemon")
        g.add_argument("--stock", action="store_true", help="use Dovecot's own replication")
        p.add_argument("--stock-daemon", action="store_true",
                       help="with --prefix: our plugin, but Dovecot's own replicator/aggregator")
        p.add_argument("--port-base", type=int, default=None,
                       help="IMAP A/B = base, base+1; doveadm A/B = base+2, base+3 (default: first free block from %d)" % DEFAULT_PORT_BASE)
        p.add_argument("--users", default=",".join(DEFAULT_USERS), help="comma-separated user names")
        p.add_argument("--nusers", type=int, help="generate user0001..userNNNN instead of --users")
        p.add_argument("--max-conns", type=int, default=10)
        p.add_argument("--sync-timeout", type=int, default=0)
        p.add_argument("--min-avail", action="store_true", help="process_min_avail = 1 for the replicator")
        p.add_argument("--extra-conf", default="", help="extra dovecot.conf text for 2.3 nodes")
        p.add_argument("--dovecot", choices=DOVECOT_MODES, default="2.3",
                       help="2.3: the host's Dovecot; 2.4: both nodes Dovecot 2.4.1 in the trixie "
                            "root (ROOT must be inside it); mixed: A 2.3 on the host, B 2.4")
        p.add_argument("--prefix24", help="the stage of scripts/dovecot24-build.sh as seen inside "
                                          "the root (default: scripts/dovecot24-build.sh --print-stage)")
    for name in ("start", "stop", "status", "check-logs", "destroy"):
        sub.add_parser(name).add_argument("root")
    p = sub.add_parser("logs")
    p.add_argument("root")
    p.add_argument("--lines", type=int, default=100)
    p = sub.add_parser("doveadm")
    p.add_argument("root")
    p.add_argument("node", choices=("a", "b"))
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)

    if a.cmd in ("create", "up"):
        users = ["user%04d" % i for i in range(1, a.nusers + 1)] if a.nusers else a.users.split(",")
        if a.dovecot != "2.4" and not (a.prefix or a.stock):
            ap.error("give --prefix or --stock")
        prefix24 = a.prefix24
        if a.dovecot != "2.3" and not prefix24:
            prefix24 = stage24_default()
        pair = Pair(a.root, port_base=a.port_base, prefix=a.prefix, stock=a.stock, users=users,
                    max_conns=a.max_conns, sync_timeout=a.sync_timeout, min_avail=a.min_avail,
                    extra_conf=a.extra_conf, stock_daemon=a.stock_daemon, dovecot=a.dovecot,
                    prefix24=prefix24)
        pair.create()
        print("created pair in %s (%s mode): IMAP A 127.0.0.1:%d, B 127.0.0.1:%d; doveadm A %d, B %d" % (
            pair.root, pair.mode, pair.a.imap_port, pair.b.imap_port,
            pair.a.doveadm_port, pair.b.doveadm_port))
        if a.cmd == "up":
            pair.start()
            print("pair running and idle")
        return 0
    pair = Pair.load(a.root)
    if a.cmd == "start":
        pair.start()
        print("pair running and idle")
    elif a.cmd == "stop":
        pair.stop()
    elif a.cmd == "destroy":
        pair.destroy()
    elif a.cmd == "status":
        print(pair.status_text(), end="")
    elif a.cmd == "logs":
        pair.dump_logs(a.lines, file=sys.stdout)
    elif a.cmd == "check-logs":
        bad = pair.bad_log_lines()
        for node, lines in bad.items():
            for l in lines:
                print("%s: %s" % (node, l))
        return 1 if bad else 0
    elif a.cmd == "doveadm":
        n = pair.a if a.node == "a" else pair.b
        r = n.doveadm(*a.args, check=False)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
