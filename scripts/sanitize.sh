#!/usr/bin/env bash
# ASan+UBSan build of the daemon and the unit tests in their own build directory; runs
# the unit and daemon tests there (everything but label e2e), then, unless
# SANITIZE_E2E=none, the e2e tests that exercise the daemon against a stage whose
# replicator/aggregator is the sanitized binary.
#   SAN_BUILD_DIR   sanitizer build directory (default: build-asan)
#   BUILD_DIR       the ordinary build whose plugin and doveadm module go into the
#                   stage (default: build; the plugin runs inside Dovecot's own
#                   processes, which have no ASan runtime)
#   SANITIZE_E2E    e2e scripts (tests/e2e/<name>.py) to run, space-separated;
#                   default "test_replication test_faults test_doveadm_replicator"; "none"
#   JOBS            build jobs (default 2)
# Any sanitizer report fails: the tests abort on the first one, and the daemon's
# reports (it runs under the Dovecot master, stderr goes to Dovecot's log) are
# written to a private directory that must stay empty.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SAN_BUILD_DIR=${SAN_BUILD_DIR:-build-asan}
BASE_BUILD=${BUILD_DIR:-build}
E2E=${SANITIZE_E2E:-test_replication test_faults test_doveadm_replicator}

stage_start=$(date +%s)
cmake -S . -B "$SAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDREPL_SANITIZE=address,undefined -DDREPL_BUILD_PLUGIN=OFF -DDREPL_BUILD_BENCH=OFF >/dev/null
cmake --build "$SAN_BUILD_DIR" -j"${JOBS:-2}"
echo "sanitize: build took $(( $(date +%s) - stage_start )) s"

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
t=$(date +%s)
(cd "$SAN_BUILD_DIR" && ctest -LE e2e --output-on-failure -j"${JOBS:-2}")
echo "sanitize: unit and daemon tests took $(( $(date +%s) - t )) s"

[ "$E2E" = none ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "sanitize: the e2e tests need root, skipped" >&2
  exit 0
fi
if [ ! -e "$BASE_BUILD/plugin/lib20_replication_plugin.so" ]; then
  echo "sanitize: $BASE_BUILD has no plugin build (run scripts/test.sh first)" >&2
  exit 1
fi

# The stage: the ordinary install, with the daemon replaced by a wrapper that
# runs the sanitized binary with the options above and a report directory.
stage=$SRC/$SAN_BUILD_DIR/stage
rm -rf "$stage"
cmake --install "$BASE_BUILD" --prefix "$stage" >/dev/null
daemon=$stage/libexec/dovecot-replicator/replicator
install -m 0755 "$SAN_BUILD_DIR/replicator/replicator" "$daemon.asan"
reports=$(mktemp -d /tmp/drepl-asan-reports.XXXXXX)
chmod 1777 "$reports"
cat > "$daemon" <<WRAP
#!/bin/sh
# scripts/sanitize.sh: the ASan+UBSan replicator with its reports in $reports
ASAN_OPTIONS='$ASAN_OPTIONS:log_path=$reports/asan' UBSAN_OPTIONS='$UBSAN_OPTIONS:log_path=$reports/ubsan' exec "$daemon.asan" "\$@"
WRAP
chmod 0755 "$daemon"
# ASan maps terabytes of shadow memory: lift Dovecot's default 256 MB vsz_limit
export DREPL_E2E_EXTRA_CONF=$'service replicator {\n  vsz_limit = 0\n}\nservice aggregator {\n  vsz_limit = 0\n}'

rc=0
for name in $E2E; do
  t=$(date +%s)
  if python3 "tests/e2e/$name.py" --prefix "$stage"; then r=passed; else r=FAILED; rc=1; fi
  echo "sanitize: e2e $name $r in $(( $(date +%s) - t )) s"
done
if [ -n "$(ls -A "$reports")" ]; then
  echo "sanitize: sanitizer reports from the daemon:" >&2
  for f in "$reports"/*; do echo "== $f" >&2; cat "$f" >&2; done
  rc=1
else
  echo "sanitize: no sanitizer report from the daemon"
fi
rm -rf "$reports"
exit $rc
