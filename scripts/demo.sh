#!/usr/bin/env bash
# Demo: build dovecot-replicator, start two local Dovecot 2.3 instances A and B that
# replicate to each other with OUR plugin and replicator, deliver a message on A over
# IMAP and show it arriving on B.
#   scripts/demo.sh [--keep] [--stock | --dovecot 2.4]
#     --keep         leave the pair running (prints how to use and stop it)
#     --stock        use Dovecot's own replication instead (for comparison)
#     --dovecot 2.4  both nodes Dovecot 2.4.1 (Debian 13): builds a trixie root
#                    (scripts/trixie-root.sh, ~3 min once) and this tree in it
#                    (scripts/dovecot24-build.sh); the pair lives inside that root
#   DEMO_ROOT (default /tmp/dovecot-replicator-demo), DEMO_PORT_BASE (default: first
#   free block of 4 ports from 32100), BUILD_DIR (default build), JOBS (default 2)
# Needs root: it runs private Dovecot masters (never the system instance) and adds a
# vmail user (uid 5000) if there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BUILD_DIR=${BUILD_DIR:-build}
ROOT=${DEMO_ROOT:-/tmp/dovecot-replicator-demo}
KEEP=0; MODE=(--prefix "$SRC/$BUILD_DIR/stage"); V24=0
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --stock) MODE=(--stock) ;;
    --dovecot) shift
      case "${1:-}" in
        2.4) V24=1 ;;
        2.3) ;;
        *) echo "--dovecot: 2.3 or 2.4" >&2; exit 2 ;;
      esac ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$V24" = 1 ]; then
  TRIXIE=$(scripts/trixie-root.sh --print)
  ROOT=${DEMO_ROOT:-$TRIXIE/var/tmp/dovecot-replicator-demo24}
fi
[ "$(id -u)" = 0 ] || { echo "run as root (private Dovecot instances, vmail user)" >&2; exit 1; }
PAIR=(python3 "$SRC/tests/e2e/dovepair.py")
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Debian packages (installed only if missing)"
scripts/deps.sh && echo "all present"

if [ "$V24" = 1 ]; then
  step "2. Debian 13 root with Dovecot 2.4 ($TRIXIE), this tree built and installed in it"
  stage=$(scripts/dovecot24-build.sh --no-tests | tail -1)
  MODE=(--dovecot 2.4 --prefix24 "$stage")
  ls -l "$TRIXIE$stage/lib/dovecot/modules/lib20_replication_plugin.so" \
        "$TRIXIE$stage/libexec/dovecot-replicator/replicator"
elif [ "${MODE[0]}" = --stock ]; then
  step "2. (--stock: nothing to build; using Dovecot's own replicator, aggregator and plugin)"
else
  step "2. Build ($BUILD_DIR/) and install into $BUILD_DIR/stage"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j"${JOBS:-2}"
  cmake --install "$BUILD_DIR" --prefix "$SRC/$BUILD_DIR/stage" >/dev/null
  ls -l "$BUILD_DIR/stage/lib/dovecot/modules/lib20_replication_plugin.so" \
        "$BUILD_DIR/stage/libexec/dovecot-replicator/replicator"
fi

step "3. Start nodes A and B in $ROOT"
if [ -f "$ROOT/pair.json" ]; then "${PAIR[@]}" destroy "$ROOT"; fi
"${PAIR[@]}" create "$ROOT" "${MODE[@]}" ${DEMO_PORT_BASE:+--port-base "$DEMO_PORT_BASE"}
cleanup() { if [ "$KEEP" = 0 ]; then "${PAIR[@]}" stop "$ROOT" || true; fi; }
trap cleanup EXIT
"${PAIR[@]}" start "$ROOT"

step "4. Deliver a message to alice on A (IMAP APPEND) and watch B"
python3 - "$SRC/tests/e2e" "$ROOT" <<'PY'
import sys, time, uuid
sys.path.insert(0, sys.argv[1])
import dovepair
p = dovepair.Pair.load(sys.argv[2])
mid = "demo-%s@example.com" % uuid.uuid4().hex[:8]
print("B before:", sorted(p.b.messages("alice") or {}) or "(INBOX empty)")
imap = p.a.imap("alice")          # stays logged in, like a mail client
t0 = time.monotonic()
typ, _ = imap.append("INBOX", None, None, dovepair.make_message(mid))
t1 = time.monotonic()
print("APPEND <%s> on A (127.0.0.1:%d): %s in %.3f s" % (mid, p.a.imap_port, typ, t1 - t0))
_, secs = dovepair.wait_until(lambda: mid in (p.b.messages("alice") or {}), 30, 0.01,
                              what="the message on B")
print("visible on B (127.0.0.1:%d) %.3f s after the APPEND completed" % (p.b.imap_port, secs))
imap.logout()
print("B after: ", sorted(p.b.messages("alice")))
PY

step "5. doveadm replicator status (stock doveadm talking to the replicator)"
for n in a b; do
  echo "--- node $n: doveadm replicator status"
  "${PAIR[@]}" doveadm "$ROOT" $n replicator status
  echo "--- node $n: doveadm replicator status '*'"
  "${PAIR[@]}" doveadm "$ROOT" $n replicator status '*'
done

if [ "$KEEP" = 1 ]; then
  step "Pair left running"
  read -r pa pb da db < <(python3 -c "import json; d=json.load(open('$ROOT/pair.json')); b=d['port_base']; print(b, b+1, b+2, b+3)")
  cat <<TXT
  IMAP:    A 127.0.0.1:$pa   B 127.0.0.1:$pb   (users alice / pw-alice, bob / pw-bob)
  doveadm: A 127.0.0.1:$da   B 127.0.0.1:$db   (dsync between the nodes)
  status:  python3 tests/e2e/dovepair.py status $ROOT
  doveadm: python3 tests/e2e/dovepair.py doveadm $ROOT a replicator status '*'
  logs:    $ROOT/a/log/dovecot.log  $ROOT/b/log/dovecot.log
  stop:    python3 tests/e2e/dovepair.py stop $ROOT     (and remove it: ... destroy $ROOT)
TXT
else
  step "Stopping the pair"
fi
