#!/usr/bin/env bash
# The package tests: the built .deb in a fresh Debian root, as an admin would use it.
#   ctest `package`    --suite bookworm  Debian 12, Dovecot 2.3 (the default)
#   ctest `package24`  --suite trixie    Debian 13, Dovecot 2.4.1
#   1. The package: bookworm: scripts/package.sh on this host (Debian 12); trixie:
#      scripts/package.sh --root in the cached Debian 13 root of scripts/trixie-root.sh.
#      A fresh root: bookworm: scripts/bookworm-root.sh --fresh (a copy of a cached
#      debootstrap with dovecot-core and dovecot-imapd from Debian); trixie:
#      scripts/trixie-root.sh --overlay (the cached root as the read-only lower layer of
#      an overlay: seconds, no copy, the cache is never written).
#   2. Checksums of every file dovecot-core and dovecot-imapd installed.
#   3. apt-get install ./dovecot-replicator_*.deb; Dovecot's files of the same names are
#      diverted (2.3: its replication plugin and doveadm-replicator.1; 2.4 has neither);
#      `doveconf -n` is clean with the installed conf.d snippet as it is.
#   4. The admin's part: mail_uid = vmail and a passwd-file userdb, mail_replica/doveadm
#      settings in our snippet; a second Dovecot (instance B, same root) is the replica.
#      Dovecot A starts; a message saved for alice on A appears on B (polled in B's
#      Maildir: doveadm on B would create B's INBOX); bob, whose INBOX was created on
#      both sides first, converges; `doveadm replicator status` and `detail` answer.
#      bookworm also: the systemd-mode include line gives a clean doveconf and a Dovecot
#      that leaves the four listeners to the .socket units.
#   5. dpkg -r: Dovecot's files are back byte for byte; bookworm: doveconf -n is clean
#      with the left-over conffile and Dovecot starts. dpkg -P: the conffile goes too,
#      no diversion and no file of the package is left, Dovecot's files are still byte
#      for byte the same, and Dovecot starts.
# Everything runs inside the root on 127.0.0.1 with free ports; nothing on the host
# is touched (the root's /run and /etc are its own). Needs root (exit 77 otherwise).
#   tests/packaging/test_package.sh [--suite bookworm|trixie] SRC_DIR [DEB]
#     DEB: built with scripts/package.sh if absent
#   env: DREPL_PACKAGE_TEST_ROOT (where the fresh root goes),
#        DREPL_PACKAGE_BUILD_DIR (bookworm: the package's build directory)
set -euo pipefail
SUITE=bookworm
if [ "${1:-}" = --suite ]; then SUITE=${2:?--suite needs bookworm or trixie}; shift 2; fi
case "$SUITE" in bookworm|trixie) ;; *) echo "test_package.sh: unknown suite $SUITE" >&2; exit 2 ;; esac
SRC=$(realpath "${1:?usage: test_package.sh [--suite bookworm|trixie] SRC_DIR [DEB]}")
DEB=${2:-}
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || { echo "skipped: debootstrap missing"; exit 77; }
R=${DREPL_PACKAGE_TEST_ROOT:-/var/cache/dovecot-replicator/$SUITE-pkgtest}
# Dovecot's files the package replaces while installed (diverted), by suite.
if [ "$SUITE" = bookworm ]; then
  REPLACED="/usr/lib/dovecot/modules/lib20_replication_plugin.so /usr/share/man/man1/doveadm-replicator.1.gz"
else
  REPLACED=""  # 2.4 ships no replication plugin and no doveadm-replicator(1)
fi
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
# The suite's root script: bookworm-root.sh or trixie-root.sh.
root_script() { echo "$SRC/scripts/$SUITE-root.sh"; }
cleanup() {
  [ -d "$R" ] && stop_root_processes
  "$(root_script)" --umount "$R" || true
}
trap cleanup EXIT
# Waits until Dovecot's master of pidfile $1 is gone.
wait_stopped() {  # $1: pidfile, $2: what
  local end=$(( $(date +%s) + 20 ))
  while [ -f "$R$1" ] && kill -0 "$(cat "$R$1")" 2>/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || fail "$2 did not stop"
    sleep 0.1
  done
}
# doveconf -n in the root must succeed without a warning ($1: when).
doveconf_clean() {
  in_root doveconf -n >"$R.doveconf" 2>"$R.doveconf.err" || fail "doveconf -n ($1): $(cat "$R.doveconf.err")"
  [ ! -s "$R.doveconf.err" ] || fail "doveconf -n warns ($1): $(cat "$R.doveconf.err")"
}

# ---- 1. the package and a fresh root ------------------------------------------------------
if [ -z "$DEB" ]; then
  step "building the package (scripts/package.sh, $SUITE)"
  if [ "$SUITE" = bookworm ]; then
    DEB=$(BUILD_DIR="${DREPL_PACKAGE_BUILD_DIR:-$SRC/build-pkg}" "$SRC/scripts/package.sh" | tail -1)
  else
    # Inside the cached trixie root (made first if missing), which has dovecot-dev 2.4.
    DEB=$("$SRC/scripts/package.sh" --root "$("$SRC/scripts/trixie-root.sh" | tail -1)" | tail -1)
  fi
fi
[ -f "$DEB" ] || fail "no package $DEB"
step "fresh $SUITE root at $R"
[ -d "$R" ] && stop_root_processes  # left over by an interrupted run
if [ "$SUITE" = bookworm ]; then
  "$SRC/scripts/bookworm-root.sh" --fresh "$R" >/dev/null
else
  "$SRC/scripts/trixie-root.sh" --overlay "$R" >/dev/null
fi
step "root ready"

# Free loopback ports for the two doveadm listeners and A's IMAP (trixie).
read -r PORT_A PORT_B IMAP_A < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
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
# The package's files (not directories), as absolute paths.
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$R.ours"
# Which of Dovecot's files it replaces: exactly the ones expected for this Dovecot.
replaced=$(awk '{ print $2 }' "$R.sums-before" | sort | comm -12 - "$R.ours" | xargs)
[ "$replaced" = "$REPLACED" ] || fail "the package replaces Dovecot's '$replaced', expected '$REPLACED'"

# ---- 3. install -------------------------------------------------------------------------
cp "$DEB" "$R/tmp/"
step "apt-get install $(basename "$DEB")"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "/tmp/$(basename "$DEB")" >"$R.install.log" 2>&1 || { tail -20 "$R.install.log" >&2; fail "install failed"; }
step "installed"
for f in $REPLACED; do
  [ "$(in_root dpkg-divert --listpackage "$f")" = dovecot-replicator ] || fail "$f is not diverted by us"
  stock_sum=$(awk -v f="$f" '$2 == f { print $1 }' "$R.sums-before")
  moved_sum=$(sha256sum "$R/usr/lib/dovecot-replicator/diverted/${f##*/}" | cut -d' ' -f1)
  [ "$stock_sum" = "$moved_sum" ] || fail "Dovecot's $f was not moved aside intact"
  ours_sum=$(sha256sum "$R$f" | cut -d' ' -f1)
  [ "$ours_sum" != "$stock_sum" ] || fail "$f is still Dovecot's"
done
if [ -z "$REPLACED" ] && in_root dpkg-divert --list | grep -q dovecot-replicator; then
  fail "a diversion although Dovecot has no file of ours: $(in_root dpkg-divert --list | grep dovecot-replicator)"
fi
MODULES=(/usr/lib/dovecot/modules/lib20_replication_plugin.so
         /usr/lib/dovecot/modules/doveadm/lib10_doveadm_replicator_plugin.so)
CONFFILES=(/etc/dovecot/conf.d/95-dovecot-replicator.conf)
if [ "$SUITE" = trixie ]; then
  MODULES+=(/usr/lib/dovecot/modules/settings/libreplication_settings.so)
  # 2.4: the admin's settings, read through conf.d/95 only while the package is installed
  CONFFILES+=(/etc/dovecot/dovecot-replicator.conf)
fi
# (ADMIN_CONF: where README tells the admin to write mail_replica)
ADMIN_CONF=${CONFFILES[-1]}
for f in "${MODULES[@]}" /usr/libexec/dovecot-replicator/replicator "${CONFFILES[@]}"; do
  [ -f "$R$f" ] || fail "the package did not install $f"
done
doveconf_clean "the snippet as installed"
if [ "$SUITE" = bookworm ]; then
  grep -Eq '^mail_plugins = "? *notify replication"?$' "$R.doveconf" || fail "the snippet does not load the plugin"
  grep -q '^  executable = /usr/libexec/dovecot-replicator/replicator$' "$R.doveconf" \
    || fail "service replicator does not run ours"
else
  # 2.4: the boollist (service replicator comes from our settings module, a default
  # doveconf does not print: checked once Dovecot runs, below).
  sed -n '/^mail_plugins {$/,/^}$/p' "$R.doveconf" | grep -q '^  replication = yes$' \
    || fail "the snippet does not load the plugin: $(grep -A3 mail_plugins "$R.doveconf")"
fi
step "doveconf -n clean"

# ---- 4. the admin's part, a replica, one message --------------------------------------
in_root getent passwd vmail >/dev/null || in_root useradd -u 5000 -U -d /srv/vmail -M -s /usr/sbin/nologin vmail
mkdir -p "$R/srv/vmail" "$R/srv/vmail-b" "$R/var/lib/dovecot-b" "$R/etc/dovecot-b"
in_root chown vmail:vmail /srv/vmail /srv/vmail-b
for side in "" -b; do
  printf '%s\n' "alice:{PLAIN}secret:5000:5000::/srv/vmail$side/alice::" \
    "bob:{PLAIN}secret:5000:5000::/srv/vmail$side/bob::" >"$R/etc/dovecot$side/users"
done
# Ours: what README's install section asks for (mail_replica and the doveadm link),
# then Dovecot's own settings for this test: virtual users owned by vmail in a
# passwd-file (in Dovecot's conf.d, as an admin edits it), only this test's listeners
# (no IMAP ports, no TLS key needed), logs to files; and the replica B, a second
# Dovecot in the same root (with another host name, as two servers have: maildir
# file names, dsync locks).
if [ "$SUITE" = bookworm ]; then
  sed -i 's/^#mail_uid =.*/mail_uid = vmail/; s/^#mail_gid =.*/mail_gid = vmail/;
          s|^mail_location = .*|mail_location = maildir:/srv/vmail/%u/Maildir|' "$R/etc/dovecot/conf.d/10-mail.conf"
  sed -i 's/^!include auth-system.conf.ext/#!include auth-system.conf.ext/;
          s/^#!include auth-passwdfile.conf.ext/!include auth-passwdfile.conf.ext/' "$R/etc/dovecot/conf.d/10-auth.conf"
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
  cat >"$R/etc/dovecot-b/dovecot.conf" <<EOF
base_dir = /run/dovecot-b
state_dir = /var/lib/dovecot-b
instance_name = dovecot-b
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
else
  # 2.4: listeners need a name and take `listen`; mail_replica is top level.
  sed -i 's/^!include auth-system.conf.ext/#!include auth-system.conf.ext/' "$R/etc/dovecot/conf.d/10-auth.conf"
  cat >>"$R$ADMIN_CONF" <<EOF
service doveadm {
  inet_listener doveadm-tcp {
    listen = 127.0.0.1
    port = $PORT_A
  }
}
doveadm_port = $PORT_B
doveadm_password = package-test-secret
mail_replica = tcp:127.0.0.1:$PORT_B
EOF
  # (mail_inbox_path: INBOX at the Maildir's top as on 2.3, where on_b looks; Debian's
  # 10-mail.conf sets /var/mail/%{user}, and empty would be Maildir/.INBOX.)
  mail24() {  # $1: mail root, $2: users file, $3: IMAP port (0: none)
    cat <<EOF
mail_uid = vmail
mail_gid = vmail
mail_driver = maildir
mail_home = $1/%{user}
mail_path = ~/Maildir
mail_inbox_path = ~/Maildir
mailbox_list_layout = maildir++
passdb passwd-file {
  passwd_file_path = $2
}
userdb passwd-file {
  passwd_file_path = $2
}
service imap-login {
  inet_listener imap {
    port = $3
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
  }
  { printf 'listen = 127.0.0.1\nssl = no\nauth_allow_cleartext = yes\nlog_path = /var/log/dovecot-a.log\n'
    mail24 /srv/vmail /etc/dovecot/users "$IMAP_A"; } >"$R/etc/dovecot/local.conf"
  { cat <<EOF
dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
base_dir = /run/dovecot-b
state_dir = /var/lib/dovecot-b
instance_name = dovecot-b
hostname = pkgtest-b
import_environment {
  DOVECOT_HOSTNAME = pkgtest-b
}
protocols = imap
listen = 127.0.0.1
ssl = no
log_path = /var/log/dovecot-b.log
namespace inbox {
  inbox = yes
}
service doveadm {
  inet_listener doveadm-tcp {
    listen = 127.0.0.1
    port = $PORT_B
  }
}
doveadm_password = package-test-secret
EOF
    mail24 /srv/vmail-b /etc/dovecot-b/users 0; } >"$R/etc/dovecot-b/dovecot.conf"
fi
doveconf_clean "configured A"
in_root dovecot -c /etc/dovecot-b/dovecot.conf || fail "Dovecot B did not start"
# The replica answers before A starts (A syncs alice at once).
end=$(( $(date +%s) + 30 ))
until in_root doveadm -c /etc/dovecot-b/dovecot.conf user alice >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$end" ] || fail "Dovecot B does not answer doveadm"
  sleep 0.2
done
in_root dovecot || fail "Dovecot A did not start"
# Dovecot's master runs our replicator (A's and B's: on 2.4 the settings module
# starts it on every instance).
replicator_runs() {
  local p
  for p in $(root_pids); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$R/usr/libexec/dovecot-replicator/replicator" ] && return 0
  done
  return 1
}
end=$(( $(date +%s) + 30 ))
until replicator_runs; do
  [ "$(date +%s)" -lt "$end" ] || fail "no /usr/libexec/dovecot-replicator/replicator runs under Dovecot"
  sleep 0.2
done
step "Dovecot A (ours) and B (replica) started, our replicator runs"

# The replica's Maildir files hold the subject: polling them (not doveadm on B,
# which would open, and so create, B's INBOX) leaves B alone.
on_b() {  # $1: user, $2: subject
  grep -lqs -F "Subject: $2" "$R"/srv/vmail-b/"$1"/Maildir/new/* "$R"/srv/vmail-b/"$1"/Maildir/cur/*
}
# New mail for $1 on A with subject $2. bookworm: doveadm save. trixie: IMAP APPEND,
# as mail arrives there: on 2.4 the plugin's FIFO is 0660 for the group
# default_internal_group, which Dovecot's mail services have but a doveadm run from
# the shell (dropping to vmail) does not, so a `doveadm save` is not notified and
# only the next full sync would replicate it.
save_on_a() {
  if [ "$SUITE" = bookworm ]; then
    printf 'From: a@example.com\nTo: %s@example.com\nSubject: %s\n\nhello\n' "$1" "$2" \
      | in_root doveadm save -u "$1" -m INBOX || fail "doveadm save for $1 on A failed"
  else
    python3 - "$IMAP_A" "$1" "$2" <<'EOF' || fail "IMAP APPEND for $1 on A failed"
import imaplib, sys
port, user, subject = sys.argv[1:]
c = imaplib.IMAP4("127.0.0.1", int(port), timeout=30)
c.login(user, "secret")
msg = "From: a@example.com\r\nTo: %s@example.com\r\nSubject: %s\r\n\r\nhello\r\n" % (user, subject)
typ, data = c.append("INBOX", None, None, msg.encode())
assert typ == "OK", data
c.logout()
EOF
  fi
}
subject="package-test-$$-$RANDOM"
save_on_a alice "$subject"
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
save_on_a bob "$subject-bob"
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
wait_stopped /run/dovecot/master.pid "Dovecot A"
wait_stopped /run/dovecot-b/master.pid "Dovecot B"
step "both stopped"

if [ "$SUITE" = bookworm ]; then
  # Dovecot for systemd mode (swap the two !include_try lines, as README says): clean
  # doveconf, and Dovecot starts without its replicator/aggregator listeners, which the
  # .socket units own then.
  conf95="$R/etc/dovecot/conf.d/95-dovecot-replicator.conf"
  cp "$conf95" "$R.95-master"
  sed -i 's|^!include_try \(.*dovecot-replicator-master.conf\)$|#!include_try \1|;
          s|^#!include_try \(.*dovecot-replicator-systemd.conf\)$|!include_try \1|' "$conf95"
  grep -q '^!include_try .*dovecot-replicator-systemd.conf$' "$conf95" || fail "no systemd include line to enable"
  doveconf_clean "systemd mode"
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
  wait_stopped /run/dovecot/master.pid "Dovecot (systemd mode)"
  cp "$R.95-master" "$conf95"
  step "systemd mode: doveconf clean, Dovecot leaves the four listeners to the .socket units"
fi

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
dovecot_starts() {  # $1: when
  in_root dovecot || fail "Dovecot does not start after $1"
  in_root doveadm stop || fail "doveadm stop after $1"
  wait_stopped /run/dovecot/master.pid "Dovecot (after $1)"
}
in_root dpkg -r dovecot-replicator >"$R.remove.log" 2>&1 || { cat "$R.remove.log" >&2; fail "dpkg -r failed"; }
compare_dovecot_files "dpkg -r"
[ ! -e "$R/usr/lib/dovecot-replicator" ] || fail "/usr/lib/dovecot-replicator left after dpkg -r"
for f in "${CONFFILES[@]}"; do [ -f "$R$f" ] || fail "dpkg -r removed the conffile $f"; done
grep -Eq "^ *mail_replica = tcp:127.0.0.1:$PORT_B" "$R$ADMIN_CONF" || fail "dpkg -r lost the admin's mail_replica"
# The left-over conffiles (with the admin's mail_replica, which only our removed
# settings module knows on 2.4) must not stop Dovecot.
doveconf_clean "after dpkg -r (the left-over conffiles)"
if [ "$SUITE" = trixie ] && grep -Eq 'mail_replica|replication' "$R.doveconf"; then
  fail "after dpkg -r, Dovecot still reads our settings: $(grep -E 'mail_replica|replication' "$R.doveconf")"
fi
dovecot_starts "dpkg -r (left-over conffiles)"
step "removed: Dovecot's files restored, the left-over conffiles kept but not read, Dovecot starts"
in_root dpkg -P dovecot-replicator >"$R.purge.log" 2>&1 || { cat "$R.purge.log" >&2; fail "dpkg -P failed"; }
compare_dovecot_files "dpkg -P"
for f in "${CONFFILES[@]}"; do [ ! -e "$R$f" ] || fail "dpkg -P left the conffile $f"; done
if in_root dpkg-divert --list | grep -q dovecot-replicator; then fail "a diversion is left after purge"; fi
left=$(while read -r f; do
         # Dovecot's own file of a replaced name is back; anything else would be ours.
         case " $REPLACED " in *" $f "*) continue ;; esac
         [ -e "$R$f" ] && echo "$f"
       done <"$R.ours"; true)
[ -z "$left" ] || fail "files of the package left after purge: $left"
# The admin's own settings for the replica (mail_replica, doveadm) went with the
# conffile; Dovecot runs as before the install.
dovecot_starts "dpkg -P"
step "purged: Dovecot's files byte for byte as before, none of ours, no diversion left"
echo "OK"
