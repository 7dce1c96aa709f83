#!/usr/bin/env bash
# Builds (or re-enters) a pristine Debian 12 "bookworm" root with the packaged Dovecot 2.3
# for the package test (tests/packaging/test_package.sh): a fresh system to install the
# built .deb into. Modelled on scripts/trixie-root.sh. Idempotent: the debootstrap'd base
# is cached at ROOT.base (never modified) and ROOT is a fresh copy of it on every call
# with --fresh, so each package test starts from an untouched Debian.
#   scripts/bookworm-root.sh [--fresh] [ROOT]   default ROOT: $DREPL_BOOKWORM_ROOT or
#                                               /var/cache/dovecot-replicator/bookworm
#   scripts/bookworm-root.sh --umount [ROOT]     unmount (always before rm -rf ROOT)
# Needs root and debootstrap. About 2-3 minutes the first time; seconds afterwards.
# No service in the root is ever started by dpkg (policy-rc.d).
set -euo pipefail
MODE=build; FRESH=0
case "${1:-}" in
  --umount) MODE=umount; shift ;;
  --fresh) FRESH=1; shift ;;
esac
R=${1:-${DREPL_BOOKWORM_ROOT:-/var/cache/dovecot-replicator/bookworm}}
BASE="$R.base"
MIRROR=${DREPL_BOOKWORM_MIRROR:-http://deb.debian.org/debian}
# Dovecot as an admin installs it; nothing of ours.
PACKAGES=(dovecot-core dovecot-imapd procps)

umount_root() {
  for m in "$1/dev/pts" "$1/dev" "$1/proc"; do
    if mountpoint -q "$m"; then umount "$m" || umount -l "$m"; fi
  done
}
if [ "$MODE" = umount ]; then umount_root "$R"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "bookworm-root.sh: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }

if [ ! -e "$BASE/.drepl-base-done" ]; then
  echo "bookworm-root: debootstrap into $BASE (about 2 minutes)" >&2
  rm -rf "$BASE.partial"
  mkdir -p "$(dirname "$BASE")"
  debootstrap --variant=minbase bookworm "$BASE.partial" "$MIRROR" >"$BASE.debootstrap.log" 2>&1 || {
    echo "bookworm-root: debootstrap failed; last lines of $BASE.debootstrap.log:" >&2
    tail -20 "$BASE.debootstrap.log" >&2; exit 1; }
  printf '#!/bin/sh\nexit 101\n' >"$BASE.partial/usr/sbin/policy-rc.d"; chmod 755 "$BASE.partial/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$BASE.partial/etc/resolv.conf" 2>/dev/null || true
  mount -t proc proc "$BASE.partial/proc"
  trap 'umount "$BASE.partial/proc" 2>/dev/null || true' EXIT
  chroot "$BASE.partial" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  chroot "$BASE.partial" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${PACKAGES[@]}" >"$BASE.apt.log" 2>&1 || {
    echo "bookworm-root: apt-get install failed; last lines of $BASE.apt.log:" >&2
    tail -20 "$BASE.apt.log" >&2; exit 1; }
  chroot "$BASE.partial" apt-get clean
  umount "$BASE.partial/proc"; trap - EXIT
  touch "$BASE.partial/.drepl-base-done"
  rm -rf "$BASE"; mv "$BASE.partial" "$BASE"
fi
if [ "$FRESH" = 1 ] || [ ! -e "$R/.drepl-base-done" ]; then
  umount_root "$R"
  rm -rf "$R"
  cp -a "$BASE" "$R"
fi
ln -sf /proc/self/mounts "$R/etc/mtab"
mountpoint -q "$R/proc"    || mount -t proc proc "$R/proc"
mountpoint -q "$R/dev"     || mount --bind /dev "$R/dev"
mountpoint -q "$R/dev/pts" || mount --bind /dev/pts "$R/dev/pts"
echo "$R"
