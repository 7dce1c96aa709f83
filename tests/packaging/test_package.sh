#!/usr/bin/env bash
# The package test (ctest `package`, labels e2e;package): the built .deb in a fresh
# Debian 12 root, as an admin would use it.
#   1. scripts/bookworm-root.sh --fresh: a debootstrap'd bookworm with dovecot-core and
#      dovecot-imapd from Debian (base cached under /var/cache/dovecot-replicator/).
#   2. Checksums of every file dovecot-core and dovecot-imapd installed.
#   3. apt-get install ./dovecot-replicator_*.deb; our plugin replaces Dovecot's by a
#      diversion; `doveconf -n` is clean with the installed conf.d snippet as it is.
#   4. The admin's part: mail_uid = vmail and a passwd-file userdb (Dovecot's own
#      conf.d files), mail_replica/doveadm settings in our snippet; a second Dovecot
#      (instance B, plain) is the replica. Dovecot A starts; a message saved for
#      alice on A appears on B (polled in B's Maildir: doveadm on B would create
#      B's INBOX); bob, whose INBOX was created on both sides first, converges;
#      `doveadm replicator status` and `detail` answer.
#   5. dpkg -r: Dovecot's files are back byte for byte, doveconf -n is clean with the
#      left-over conffile and Dovecot starts; dpkg -P: the conffile goes too, no
#      diversion is left, Dovecot's files are still byte for byte the same.
# Everything runs inside the root on 127.0.0.1 with free ports; nothing on the host
# is touched (the root's /run and /etc are its own). Needs root (exit 77 otherwise).
#   tests/packaging/test_package.sh SRC_DIR [DEB]   (DEB: built with scripts/package.sh if absent)
set -euo pipefail
SRC=$(realpath "${1:?usage: test_package.sh SRC_DIR [DEB]}")
DEB=${2:-}
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || { echo "skipped: debootstrap missing"; exit 77; }
R=${DREPL_PACKAGE_TEST_ROOT:-/var/cache/dovecot-replicator/bookworm-pkgtest}
T0=$(date +%s.%N)
step() { awk -v a="$(date +%s.%N)" -v b="$T0" -v m="$*" 'BEGIN { printf "[%6.1f s] %s\n", a - b, m }'; }
fail() { echo "FAIL: $*" >&2; dump_logs; exit 1; }
in_root() { chroot "$R" "$@"; }
dump_logs() {
  for f in /var/log/dovecot-a.log /var/log/dovecot-b.log; do
    [ -f "$R$f" ] && { echo "--- $f (last 30 lines)"; tail -30 "$R$f"; } >&2
  done
  return 0
}
# Pids of every process running inside the root (Dovecot A, B and their children).
root_pids() {
  local p root
  for p in /proc/[0-9]*; do
    root=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$root" = "$R" ] && echo "${p#/proc/}"
  done
  return 0
}
# Stops everything running inside the root, so that nothing keeps its /dev or
# /proc busy: the Dovecot masters first (they stop their children), then
# whatever is left after 10 s is killed.
stop_root_processes() {
  local pidfile pids end=$(( $(date +%s) + 10 ))
  for pidfile in "$R/run/dovecot/master.pid" "$R/run/dovecot-b/master.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  while pids=$(root_pids) && [ -n "$pids" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
  pids=$(root_pids)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  fi
  return 0
}
cleanup() {
  [ -d "$R" ] && stop_root_processes
  "$SRC/scripts/bookworm-root.sh" --umount "$R" || true
}
trap cleanup EXIT

if [ -z "$DEB" ]; then
  step "building the package (scripts/package.sh)"
  DEB=$(BUILD_DIR="${DREPL_PACKAGE_BUILD_DIR:-$SRC/build-pkg}" "$SRC/scripts/package.sh" | tail -1)
fi
[ -f "$DEB" ] || fail "no package $DEB"
step "fresh bookworm root at $R"
[ -d "$R" ] && stop_root_processes  # left over by an interrupted run
"$SRC/scripts/bookworm-root.sh" --fresh "$R" >/dev/null
step "root ready"

# Free loopback ports for the two doveadm listeners.
read -r PORT_A PORT_B < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*[s.getsockname()[1] for s in socks])
EOF
)

# ---- 2. Dovecot's own files before ----------------------------------------------------
checksums() {
  in_root sh -c 'dpkg-query -L dovecot-core dovecot-imapd | while read -r f; do
    [ -f "$f" ] && [ ! -L "$f" ] && sha256sum "$f"; done | sort -k2'
}
checksums >"$R.sums-before"
[ -s "$R.sums-before" ] || fail "no dovecot-core files in the root"
grep -q ' /usr/lib/dovecot/modules/lib20_replication_plugin.so$' "$R.sums-before" \
  || fail "dovecot-core has no lib20_replication_plugin.so"

# ---- 3. install -------------------------------------------------------------------------
cp "$DEB" "$R/tmp/"
step "apt-get install $(basename "$DEB")"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "/tmp/$(basename "$DEB")" >"$R.install.log" 2>&1 || { tail -20 "$R.install.log" >&2; fail "install failed"; }
step "installed"
for f in /usr/lib/dovecot/modules/lib20_replication_plugin.so /usr/share/man/man1/doveadm-replicator.1.gz; do
  [ "$(in_root dpkg-divert --listpackage "$f")" = dovecot-replicator ] || fail "$f is not diverted by us"
done
stock_sum=$(awk '$2 == "/usr/lib/dovecot/modules/lib20_replication_plugin.so" {print $1}' "$R.sums-before")
moved_sum=$(sha256sum "$R/usr/lib/dovecot-replicator/diverted/lib20_replication_plugin.so" | cut -d' ' -f1)
[ "$stock_sum" = "$moved_sum" ] || fail "Dovecot's plugin was not moved aside intact"
ours_sum=$(sha256sum "$R/usr/lib/dovecot/modules/lib20_replication_plugin.so" | cut -d' ' -f1)
[ "$ours_sum" != "$stock_sum" ] || fail "lib20_replication_plugin.so is still Dovecot's"
[ -f "$R/usr/lib/dovecot/modules/doveadm/lib10_doveadm_replicator_plugin.so" ] || fail "no doveadm module"
[ -f "$R/etc/dovecot/conf.d/95-dovecot-replicator.conf" ] || fail "no conf.d snippet"
in_root doveconf -n >"$R.doveconf" 2>"$R.doveconf.err" || fail "doveconf -n failed: $(cat "$R.doveconf.err")"
[ ! -s "$R.doveconf.err" ] || fail "doveconf -n warns with the snippet as installed: $(cat "$R.doveconf.err")"
grep -Eq '^mail_plugins = "? *notify replication"?$' "$R.doveconf" || fail "the snippet does not load the plugin"
grep -q '^  executable = /usr/libexec/dovecot-replicator/replicator$' "$R.doveconf" \
  || fail "service replicator does not run ours"
step "doveconf -n clean"

# ---- 4. the admin's part, a replica, one message --------------------------------------
in_root getent passwd vmail >/dev/null || in_root useradd -u 5000 -U -d /srv/vmail -M -s /usr/sbin/nologin vmail
mkdir -p "$R/srv/vmail" "$R/srv/vmail-b" "$R/var/lib/dovecot-b"
in_root chown vmail:vmail /srv/vmail /srv/vmail-b
# Dovecot's conf.d: virtual users owned by vmail, passwd-file instead of system users.
sed -i 's/^#mail_uid =.*/mail_uid = vmail/; s/^#mail_gid =.*/mail_gid = vmail/;
        s|^mail_location = .*|mail_location = maildir:/srv/vmail/%u/Maildir|' "$R/etc/dovecot/conf.d/10-mail.conf"
sed -i 's/^!include auth-system.conf.ext/#!include auth-system.conf.ext/;
        s/^#!include auth-passwdfile.conf.ext/!include auth-passwdfile.conf.ext/' "$R/etc/dovecot/conf.d/10-auth.conf"
printf '%s\n' 'alice:{PLAIN}secret:5000:5000::/srv/vmail/alice::' \
  'bob:{PLAIN}secret:5000:5000::/srv/vmail/bob::' >"$R/etc/dovecot/users"
# Ours: what README's install section asks for (mail_replica and the doveadm link).
cat >>"$R/etc/dovecot/conf.d/95-dovecot-replicator.conf" <<EOF
service doveadm {
  inet_listener {
    address = 127.0.0.1
    port = $PORT_A
  }
}
doveadm_port = $PORT_B
doveadm_password = package-test-secret
plugin {
  mail_replica = tcp:127.0.0.1:$PORT_B
}
EOF
# Only this test's listeners: no IMAP ports, no TLS key needed, logs to files.
cat >"$R/etc/dovecot/local.conf" <<'EOF'
listen = 127.0.0.1
ssl = no
log_path = /var/log/dovecot-a.log
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
# The replica: a second, plain Dovecot in the same root.
mkdir -p "$R/etc/dovecot-b"
printf '%s\n' 'alice:{PLAIN}secret:5000:5000::/srv/vmail-b/alice::' \
  'bob:{PLAIN}secret:5000:5000::/srv/vmail-b/bob::' >"$R/etc/dovecot-b/users"
cat >"$R/etc/dovecot-b/dovecot.conf" <<EOF
base_dir = /run/dovecot-b
state_dir = /var/lib/dovecot-b
instance_name = dovecot-b
# Another host name than A's (maildir file names, dsync locks), as two servers have.
hostname = pkgtest-b
import_environment = TZ DOVECOT_HOSTNAME=pkgtest-b
protocols = imap
listen = 127.0.0.1
ssl = no
log_path = /var/log/dovecot-b.log
mail_uid = vmail
mail_gid = vmail
mail_location = maildir:/srv/vmail-b/%u/Maildir
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = /etc/dovecot-b/users
}
userdb {
  driver = passwd-file
  args = /etc/dovecot-b/users
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
service doveadm {
  inet_listener {
    address = 127.0.0.1
    port = $PORT_B
  }
}
doveadm_password = package-test-secret
EOF
in_root doveconf -n >/dev/null 2>"$R.doveconf.err" || fail "doveconf -n (configured A): $(cat "$R.doveconf.err")"
[ ! -s "$R.doveconf.err" ] || fail "doveconf -n warns (configured A): $(cat "$R.doveconf.err")"
in_root dovecot -c /etc/dovecot-b/dovecot.conf || fail "Dovecot B did not start"
# The replica answers before A starts (A syncs alice at once).
end=$(( $(date +%s) + 30 ))
until in_root doveadm -c /etc/dovecot-b/dovecot.conf user alice >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$end" ] || fail "Dovecot B does not answer doveadm"
  sleep 0.2
done
in_root dovecot || fail "Dovecot A did not start"
step "Dovecot A (ours) and B (replica) started"

# The replica's Maildir files hold the subject: polling them (not doveadm on B,
# which would open, and so create, B's INBOX) leaves B alone.
on_b() {  # $1: user, $2: subject
  grep -lqs -F "Subject: $2" "$R"/srv/vmail-b/"$1"/Maildir/new/* "$R"/srv/vmail-b/"$1"/Maildir/cur/*
}
subject="package-test-$$-$RANDOM"
printf 'From: a@example.com\nTo: alice@example.com\nSubject: %s\n\nhello\n' "$subject" \
  | in_root doveadm save -u alice -m INBOX || fail "doveadm save on A failed"
end=$(( $(date +%s) + 60 ))
until on_b alice "$subject"; do
  [ "$(date +%s)" -lt "$end" ] || fail "the message did not reach B within 60 s"
  sleep 0.2
done
step "message replicated A -> B"

# A new user whose INBOX was created on both servers before any sync (different
# mailbox GUIDs), as happens in the field: Dovecot 2.3.19's two-way dsync swaps
# the GUIDs on every run and never converges; the replicator's desync recovery
# (one one-way run, then two-way) must.
# (bob is in both userdbs from the start; A synced him at start-up, which
# creates no INBOX on either side.)
end=$(( $(date +%s) + 30 ))
until in_root doveadm replicator status bob | awk '$1 == "bob" && $5 != "-" { ok = 1 } END { exit !ok }'; do
  [ "$(date +%s)" -lt "$end" ] || fail "A's start-up sync of bob did not finish: $(in_root doveadm replicator status bob)"
  sleep 0.2
done
guid_a() { in_root doveadm -o mail_plugins= mailbox status -u bob guid INBOX | sed -n 's/.*guid=//p'; }
guid_b() { in_root doveadm -c /etc/dovecot-b/dovecot.conf mailbox status -u bob guid INBOX | sed -n 's/.*guid=//p'; }
ga=$(guid_a); gb=$(guid_b)  # opening INBOX creates it (A: without our plugin, no sync yet)
[ -n "$ga" ] && [ -n "$gb" ] && [ "$ga" != "$gb" ] || fail "bob's INBOX GUIDs: A '$ga', B '$gb'"
printf 'From: a@example.com\nTo: bob@example.com\nSubject: %s-bob\n\nhello\n' "$subject" \
  | in_root doveadm save -u bob -m INBOX || fail "doveadm save for bob on A failed"
end=$(( $(date +%s) + 60 ))
until on_b bob "$subject-bob" && [ "$(guid_a)" = "$(guid_b)" ]; do
  [ "$(date +%s)" -lt "$end" ] || fail "bob (INBOX on both sides) did not converge within 60 s: A $(guid_a), B $(guid_b)"
  sleep 0.5
done
step "INBOX created on both sides: converged (GUID $(guid_a))"
status=$(in_root doveadm replicator status alice) || fail "doveadm replicator status failed"
echo "$status" | grep -q '^alice ' || fail "doveadm replicator status alice: $status"
detail=$(in_root doveadm -f tab replicator detail alice) || fail "doveadm replicator detail failed"
echo "$detail" | grep -q '^alice	' || fail "doveadm replicator detail alice: $detail"
in_root doveadm stop || true
in_root doveadm -c /etc/dovecot-b/dovecot.conf stop || true
for pidfile in "$R/run/dovecot/master.pid" "$R/run/dovecot-b/master.pid"; do
  end=$(( $(date +%s) + 20 ))
  while [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || fail "Dovecot did not stop ($pidfile)"
    sleep 0.1
  done
done
step "both stopped"

# Dovecot for systemd mode (swap the two !include_try lines, as README says): clean
# doveconf, and Dovecot starts without its replicator/aggregator listeners, which the
# .socket units own then.
conf95="$R/etc/dovecot/conf.d/95-dovecot-replicator.conf"
cp "$conf95" "$R.95-master"
sed -i 's|^!include_try \(.*dovecot-replicator-master.conf\)$|#!include_try \1|;
        s|^#!include_try \(.*dovecot-replicator-systemd.conf\)$|!include_try \1|' "$conf95"
grep -q '^!include_try .*dovecot-replicator-systemd.conf$' "$conf95" || fail "no systemd include line to enable"
in_root doveconf -n >"$R.doveconf" 2>"$R.doveconf.err" || fail "doveconf -n (systemd mode): $(cat "$R.doveconf.err")"
[ ! -s "$R.doveconf.err" ] || fail "doveconf -n warns (systemd mode): $(cat "$R.doveconf.err")"
# (Dovecot leaves its sockets behind when it stops: clear the master-mode ones.)
for l in replicator replicator-doveadm replication-notify replication-notify-fifo; do
  rm -f "$R/run/dovecot/$l"
done
in_root dovecot || fail "Dovecot does not start in systemd mode"
for l in replicator replicator-doveadm replication-notify replication-notify-fifo; do
  [ ! -e "$R/run/dovecot/$l" ] || fail "Dovecot created /run/dovecot/$l in systemd mode"
done
[ -e "$R/run/dovecot/doveadm-server" ] || fail "Dovecot (systemd mode) is not running"
in_root doveadm stop || fail "doveadm stop (systemd mode)"
end=$(( $(date +%s) + 20 ))
while [ -f "$R/run/dovecot/master.pid" ] && kill -0 "$(cat "$R/run/dovecot/master.pid")" 2>/dev/null; do
  [ "$(date +%s)" -lt "$end" ] || fail "Dovecot (systemd mode) did not stop"
  sleep 0.1
done
cp "$R.95-master" "$conf95"
step "systemd mode: doveconf clean, Dovecot leaves the four listeners to the .socket units"

# ---- 5. remove, then purge ------------------------------------------------------------------
compare_dovecot_files() {  # $1: when
  checksums >"$R.sums-after"
  # The admin edited these two conffiles of Dovecot's in step 4.
  local skip='/etc/dovecot/conf.d/10-(mail|auth)\.conf$'
  if ! diff <(grep -Ev "$skip" "$R.sums-before") <(grep -Ev "$skip" "$R.sums-after") >"$R.sums-diff"; then
    cat "$R.sums-diff" >&2
    fail "after $1, Dovecot's files differ from before the install"
  fi
}
in_root dpkg -r dovecot-replicator >"$R.remove.log" 2>&1 || { cat "$R.remove.log" >&2; fail "dpkg -r failed"; }
compare_dovecot_files "dpkg -r"
[ ! -e "$R/usr/lib/dovecot-replicator" ] || fail "/usr/lib/dovecot-replicator left after dpkg -r"
[ -f "$R/etc/dovecot/conf.d/95-dovecot-replicator.conf" ] || fail "dpkg -r removed the conffile"
in_root doveconf -n >/dev/null 2>"$R.doveconf.err" || fail "doveconf -n after dpkg -r: $(cat "$R.doveconf.err")"
[ ! -s "$R.doveconf.err" ] || fail "doveconf -n warns after dpkg -r: $(cat "$R.doveconf.err")"
in_root dovecot || fail "Dovecot does not start after dpkg -r (left-over conffile)"
in_root doveadm stop || fail "doveadm stop after dpkg -r"
step "removed: Dovecot's files restored, Dovecot starts"
in_root dpkg -P dovecot-replicator >"$R.purge.log" 2>&1 || { cat "$R.purge.log" >&2; fail "dpkg -P failed"; }
compare_dovecot_files "dpkg -P"
[ ! -e "$R/etc/dovecot/conf.d/95-dovecot-replicator.conf" ] || fail "dpkg -P left the conffile"
if in_root dpkg-divert --list | grep -q dovecot-replicator; then fail "a diversion is left after purge"; fi
step "purged: Dovecot's files byte for byte as before, no diversion left"
echo "OK"
