"""The measurements behind each figure of the benchmark (see bench/README.md).

Every function measures ONE sample (or one run) on a dovepair.Pair / Node and returns a
plain dict (times in seconds). bench/run.py interleaves the modes sample by sample so
slow drifts of a shared machine hit stock and ours alike, and aggregates with stats().

Mail is dropped straight into A's Maildir/new where the plugin must not fire (floor,
drain); "visible on B" always means a new file in B's Maildir/new or cur for that user.
Waits poll with a deadline and never sleep for a fixed time to wait for a condition.
"""

import math
import os
import statistics
import subprocess
import time

import wire

POLL_S = 0.002


class BenchError(RuntimeError):
    """A sample could not be taken (message never arrived, command failed)."""


def stats(xs):
    """{n, median, p90, min, max, mean} of the non-None values (p90: nearest rank)."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return {"n": 0}
    p90 = xs[max(0, math.ceil(0.9 * len(xs) - 1e-9) - 1)]  # nearest rank
    return {"n": len(xs), "median": statistics.median(xs), "p90": p90,
            "min": xs[0], "max": xs[-1], "mean": statistics.mean(xs)}


# --------------------------------------------------------------------------- mail

def maildir(node, user):
    return os.path.join(node.mail_dir, user, "Maildir")


def count_mails(node, user):
    """Number of files in the user's INBOX new/ + cur/ on `node`."""
    n = 0
    for sub in ("new", "cur"):
        try:
            n += len(os.listdir(os.path.join(maildir(node, user), sub)))
        except FileNotFoundError:
            pass
    return n


_seq = [0]


def drop_mail(node, user, tag):
    """Writes one new message straight into the user's Maildir/new on `node` (no IMAP,
    so no plugin notification); owned by the mail uid like Dovecot's own files."""
    _seq[0] += 1
    d = os.path.join(maildir(node, user), "new")
    name = "%d.M%dP%dQ%d.%s" % (time.time(), time.time_ns() % 1000000, os.getpid(), _seq[0],
                                node.hostname)
    body = ("From: bench@example.com\r\nTo: %s@example.com\r\nSubject: %s\r\n"
            "Message-ID: <%s@drepl-bench>\r\n\r\nbench\r\n" % (user, tag, tag)).encode()
    tmp = os.path.join(maildir(node, user), "tmp", name)
    with open(tmp, "wb") as fh:
        fh.write(body)
    os.chown(tmp, node.pair.vmail_uid, node.pair.vmail_gid)
    os.rename(tmp, os.path.join(d, name))


def wait_more(node, user, base, timeout=60.0):
    """Polls until `user` has more than `base` mails on node; returns the monotonic time
    it was seen, or raises BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if count_mails(node, user) > base:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError("%s: mail for %s not visible after %.0f s" % (node.name, user, timeout))
        time.sleep(POLL_S)


def wait_quiet(pair, timeout=120.0):
    """Waits until both replicators have nothing queued (cheap socket STATUS poll)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if all(not any(v for k, v in wire.replicator_status(n).items()
                           if k.startswith("Queued")) for n in pair.nodes):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("replicators still busy after %.0f s" % timeout)
        time.sleep(0.05)


# --------------------------------------------------------------------------- floor

def floor_cli(pair, user):
    """One bare `doveadm sync -u USER tcp:B` run on A (no replicator involved): wall
    seconds, CPU seconds of the CLI (wait4 rusage) and of both node trees."""
    a, b = pair.a, pair.b
    drop_mail(a, user, "floor-cli-%s-%d" % (user, time.time_ns()))
    base = count_mails(b, user)
    cmd = ["doveadm", "-c", a.conf, "sync", "-u", user, "tcp:127.0.0.1:%d" % b.doveadm_port]
    env = dict(os.environ, DOVECOT_HOSTNAME=a.hostname)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.monotonic()
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise BenchError("doveadm sync -u %s exited %d: %s" % (user, p.returncode, err.strip()))
    ok = count_mails(b, user) > base
    return {"user": user, "wall_s": t1 - t0, "cli_cpu_s": ru.ru_utime + ru.ru_stime,
            "on_b_at_return": ok}


def mail_process_cpu(pair, user):
    """CPU seconds (wait4 rusage) of one `doveadm mailbox status -u USER messages INBOX`
    on A: a short-lived mail process that loads mail_plugins (so the replication
    plugin), like every imap login, doveadm-server and dsync-server process does."""
    a = pair.a
    cmd = ["doveadm", "-c", a.conf, "mailbox", "status", "-u", user, "messages", "INBOX"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=dict(os.environ, DOVECOT_HOSTNAME=a.hostname))
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BenchError("doveadm mailbox status -u %s failed" % user)
    return {"user": user, "cpu_s": ru.ru_utime + ru.ru_stime}


def floor_socket(pair, user):
    """One dsync through A's doveadm-server socket with the replicator's own request."""
    a, b = pair.a, pair.b
    drop_mail(a, user, "floor-sock-%s-%d" % (user, time.time_ns()))
    base = count_mails(b, user)
    t0 = time.monotonic()
    reply = wire.socket_sync(a, user)
    t1 = time.monotonic()
    if reply != "+":
        raise BenchError("socket sync of %s replied %r" % (user, reply))
    return {"user": user, "wall_s": t1 - t0, "cli_cpu_s": 0.0,
            "on_b_at_return": count_mails(b, user) > base}


def floor_dsync_socket(pair, user, conns):
    """One dsync through the socket the mode's replicator uses: stock = A's
    doveadm-server, a new connection per sync (what stock's replicator does); ours =
    A's replicator-dsync (service replicator-dsync), one connection kept in `conns`
    for all samples (what ours does). The peer side is whatever mail_replica points
    at (ours: B's replicator-dsync inet_listener)."""
    a, b = pair.a, pair.b
    drop_mail(a, user, "floor-dsync-%s-%d" % (user, time.time_ns()))
    base = count_mails(b, user)
    dedicated = getattr(pair, "dsync_service", False)
    path = os.path.join(a.base_dir, "replicator-dsync" if dedicated else "doveadm-server")
    conn = conns.get(path) if dedicated else None
    if conn is None:
        conn = wire.DsyncConn(path)
        if dedicated:
            conns[path] = conn
    t0 = time.monotonic()
    try:
        reply, reused = conn.sync(user)
    finally:
        if not dedicated:
            conn.close()
    t1 = time.monotonic()
    if reply != "+":
        raise BenchError("dsync socket sync of %s replied %r" % (user, reply))
    return {"user": user, "wall_s": t1 - t0, "cli_cpu_s": 0.0, "reused": reused,
            "on_b_at_return": count_mails(b, user) > base}


# --------------------------------------------------------------------------- latency

def append_latency(pair, user, timeout=60.0):
    """IMAP APPEND on A in an already logged-in session (kept open until the mail is on
    B, so a plugin cannot flush early at logout). Returns append_s (APPEND round
    trip), after_s (APPEND done -> visible on B), total_s, on_b_at_return."""
    a, b = pair.a, pair.b
    s = a.session(user)
    try:
        base = count_mails(b, user)
        msgid = "lat-%s-%d@drepl-bench" % (user, time.time_ns())
        t0 = time.monotonic()
        s.append(msgid)
        t1 = time.monotonic()
        on_b = count_mails(b, user) > base
        tv = t1 if on_b else wait_more(b, user, base, timeout)
    finally:
        s.close()
    return {"user": user, "append_s": t1 - t0, "after_s": tv - t1, "total_s": tv - t0,
            "on_b_at_return": on_b}


# --------------------------------------------------------------------------- drain

def drain(pair, users, mask, timeout=900.0):
    """One new mail dropped into A for each of `users` (all matching `mask`), then
    `doveadm replicator replicate -p high MASK` on A; time until every user's mail is
    on B. Returns all_s, users_per_s, per-user visible times, replicate's count."""
    a, b = pair.a, pair.b
    tag = "drain-%d" % time.time_ns()
    for u in users:
        drop_mail(a, u, "%s-%s" % (tag, u))
    base = {u: count_mails(b, u) for u in users}
    t0 = time.monotonic()
    r = a.doveadm("replicator", "replicate", "-p", "high", mask)
    t_cmd = time.monotonic() - t0
    pending, seen = set(users), {}
    deadline = t0 + timeout
    while pending:
        t_sweep = time.monotonic()
        for u in list(pending):
            if count_mails(b, u) > base[u]:
                seen[u] = time.monotonic() - t0
                pending.discard(u)
        now = time.monotonic()
        if now > deadline:
            break
        # the poller takes at most a third of one core from the pair it measures
        # (a sweep over 10 000 users' Maildirs costs tens of ms)
        time.sleep(max(0.005, 2 * (now - t_sweep)))
    if pending:
        raise BenchError("drain %s: %d of %d users not on B after %.0f s"
                         % (mask, len(pending), len(users), timeout))
    all_s = max(seen.values())
    return {"n": len(users), "mask": mask, "replicate_reply": r.stdout.strip(),
            "replicate_cmd_s": t_cmd, "all_s": all_s, "users_per_s": len(users) / all_s,
            "visible": stats(list(seen.values()))}


# --------------------------------------------------------------------------- burst

def burst(node, nlines, writers, tag, timeout=300.0, settle_s=5.0):
    """`writers` forked processes write `nlines` notification lines in total, one
    write() per line like the plugin, each naming a distinct new user
    (`TAG-wWW-NNNNNN\\thigh\\n`), into the node's replication-notify-fifo. The node's
    replicator must run with replication_max_conns = 0 so no dsync starts; every line
    that arrives adds one known user. Returns absorb_s (release of the writers -> the
    replicator knows every user; if lines were lost: -> the count's last change),
    write_s (all writers done), lost (lines still not counted after settle_s seconds
    without progress)."""
    fifo = wire.fifo_path(node)
    base = wire.known_users(node)
    target = base + nlines
    per = [nlines // writers + (1 if w < nlines % writers else 0) for w in range(writers)]
    go_r, go_w = os.pipe()
    pids = []
    for w in range(writers):
        pid = os.fork()
        if pid == 0:  # writer
            code = 0
            try:
                os.close(go_w)
                fd = os.open(fifo, os.O_WRONLY)
                os.read(go_r, 1)  # released when the pipe closes
                for i in range(per[w]):
                    os.write(fd, b"%s-w%02d-%06d\thigh\n" % (tag.encode(), w, i))
                os.close(fd)
            except BaseException:  # noqa: BLE001 - a child must never return into the caller
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(go_r)
    t0 = time.monotonic()
    os.close(go_w)  # release every writer at once
    write_done = None
    exit_codes = []
    known, last_change, last_known = base, t0, base
    absorbed = None
    while True:
        now = time.monotonic()
        if pids:
            for pid in list(pids):
                r, st = os.waitpid(pid, os.WNOHANG)
                if r:
                    exit_codes.append(os.waitstatus_to_exitcode(st))
                    pids.remove(pid)
            if not pids:
                write_done = time.monotonic() - t0
        try:
            known = wire.known_users(node)
        except OSError:
            pass
        now = time.monotonic()
        if known != last_known:
            last_known, last_change = known, now
        if known >= target:
            absorbed = now - t0
            break
        if not pids and now - last_change > settle_s:
            break
        if now - t0 > timeout:
            break
        time.sleep(0.01)
    for pid in pids:  # only on timeout: writers still blocked
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    complete = absorbed is not None
    if not complete:  # lines were lost: absorbed = when the count last moved
        absorbed = last_change - t0
    return {"lines": nlines, "writers": writers, "absorb_s": absorbed, "complete": complete,
            "write_s": write_done, "counted": known - base, "lost": max(0, target - known),
            "writer_failures": sum(1 for c in exit_codes if c != 0)}


# --------------------------------------------------------------------------- known users

def wait_known(node, expected, timeout=900.0):
    """Polls the replicator until it knows `expected` users; returns seconds waited."""
    t0 = time.monotonic()
    while True:
        try:
            if wire.known_users(node, timeout=60) >= expected:
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise BenchError("%s: replicator knows fewer than %d users after %.0f s"
                             % (node.name, expected, timeout))
        time.sleep(0.1)


# --------------------------------------------------------------------------- trickle

def proc_io(pid):
    """/proc/PID/io as {field: int} (write_bytes = bytes sent to the block layer)."""
    out = {}
    with open("/proc/%d/io" % pid) as fh:
        for line in fh:
            k, _, v = line.partition(":")
            out[k] = int(v)
    return out


def wait_io_settled(pid, quiet_s=2.0, timeout=120.0):
    """Polls until the process has written nothing for quiet_s seconds (e.g. a state
    file rewrite after start-up finished); returns seconds waited."""
    t0 = time.monotonic()
    last, since = proc_io(pid)["wchar"], time.monotonic()
    while time.monotonic() - since < quiet_s:
        if time.monotonic() - t0 > timeout:
            raise BenchError("pid %d still writing after %.0f s" % (pid, timeout))
        time.sleep(0.2)
        cur = proc_io(pid)["wchar"]
        if cur != last:
            last, since = cur, time.monotonic()
    return time.monotonic() - t0


def trickle(node, users, rate_per_s, secs):
    """Writes `rate_per_s` low-priority notifications per second for `secs` seconds
    into the node's FIFO, spread over `users` (known ones); returns the count sent.
    The caller measures what the replicator spends on them."""
    fd = os.open(wire.fifo_path(node), os.O_WRONLY)
    try:
        t0 = time.monotonic()
        i = 0
        while True:
            due = t0 + i / rate_per_s
            now = time.monotonic()
            if now - t0 >= secs:
                return i
            if now < due:
                time.sleep(due - now)  # pacing the load, not waiting for a condition
            os.write(fd, b"%s\tlow\n" % users[(i * 7919) % len(users)].encode())
            i += 1
    finally:
        os.close(fd)
