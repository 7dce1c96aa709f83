#!/usr/bin/env bash
# Builds this source tree against Dovecot 2.4 inside the Debian 13 root made by
# scripts/trixie-root.sh, runs the unit tests there, and installs the build into a
# stage directory inside the root (used by the 2.4 end-to-end tests).
#   scripts/dovecot24-build.sh [--no-tests] [--print-stage]
#     --no-tests      build and install only
#     --print-stage   print the stage's path inside the root and exit (no build)
#   env: DREPL_TRIXIE_ROOT (default /var/cache/dovecot-replicator/trixie), JOBS (2)
# The tree is copied (tar, mtimes kept) to ROOT/var/tmp/drepl-<hash of the source
# path>/src; the build directory next to it survives, as does ccache's cache in the
# root, so a second run only rebuilds what changed. Needs root (chroot).
# Prints the stage path inside the root on its last line: <dir>/stage.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
TESTS=1
PRINT=0
for a in "$@"; do
  case "$a" in
    --no-tests) TESTS=0 ;;
    --print-stage) PRINT=1 ;;
    *) echo "dovecot24-build.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
R=$("$SRC/scripts/trixie-root.sh" --print)
KEY=$(printf '%s' "$SRC" | sha1sum | cut -c1-10)
IN=/var/tmp/drepl-$KEY            # path inside the root
if [ "$PRINT" = 1 ]; then echo "$IN/stage"; exit 0; fi

t0=$(date +%s)
"$SRC/scripts/trixie-root.sh" "$R" >/dev/null
t1=$(date +%s)
mkdir -p "$R$IN/src"
# A fresh copy of the tracked-or-not source files (no build dirs, no .git).
find "$R$IN/src" -mindepth 1 -delete
tar -C "$SRC" --exclude=./.git --exclude='./build' --exclude='./build-*' \
    --exclude='__pycache__' -cf - . | tar -C "$R$IN/src" -xf -

in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
              CCACHE_DIR=/var/cache/ccache LANG=C.UTF-8 "$@"; }
launcher=()
if in_root sh -c 'command -v ccache' >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
in_root cmake -S "$IN/src" -B "$IN/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDREPL_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$IN/stage" "${launcher[@]}" >"$R$IN/cmake.log" 2>&1 || {
  echo "dovecot24-build: cmake failed:" >&2; tail -30 "$R$IN/cmake.log" >&2; exit 1; }
grep -- '-- Building Dovecot modules' "$R$IN/cmake.log" >&2 || true
in_root cmake --build "$IN/build" -j"${JOBS:-2}" >"$R$IN/build.log" 2>&1 || {
  echo "dovecot24-build: build failed:" >&2; grep -E 'error|Error' "$R$IN/build.log" | head -40 >&2
  tail -20 "$R$IN/build.log" >&2; exit 1; }
t2=$(date +%s)
if [ "$TESTS" = 1 ]; then
  # Unit and daemon tests (no Dovecot needed), built against the 2.4 headers.
  # Not doveadm-cmds: its harness runs doveadm under `unshare -m --propagation`,
  # which fails inside a chroot ("cannot change root filesystem propagation"), so
  # the 2.4 doveadm module is only compiled here until that test can bind-mount
  # from outside the root.
  in_root sh -c "cd '$IN/build' && ctest --output-on-failure -j${JOBS:-2} -LE e2e -E '^doveadm-cmds\$'" >"$R$IN/ctest.log" 2>&1 || {
    echo "dovecot24-build: tests failed:" >&2; grep -E 'Failed|\*\*\*|tests passed' "$R$IN/ctest.log" | head -40 >&2; exit 1; }
  grep -E 'tests passed|tests failed' "$R$IN/ctest.log" >&2
fi
t3=$(date +%s)
rm -rf "$R$IN/stage"
in_root cmake --install "$IN/build" >"$R$IN/install.log" 2>&1 || {
  echo "dovecot24-build: install failed:" >&2; tail -20 "$R$IN/install.log" >&2; exit 1; }
echo "dovecot24-build: root $((t1-t0)) s, build $((t2-t1)) s, tests $((t3-t2)) s" >&2
echo "$IN/stage"
