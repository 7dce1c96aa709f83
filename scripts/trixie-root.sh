#!/usr/bin/env bash
# Builds (or re-enters) a Debian 13 "trixie" root with Dovecot 2.4 for the 2.4 build and
# tests, and mounts /proc, /dev and /dev/pts into it. Idempotent: an existing root is
# reused (that is the cache), missing packages are added, mounts are made once.
#   scripts/trixie-root.sh [ROOT]       default: $DREPL_TRIXIE_ROOT or /var/cache/dovecot-replicator/trixie
#   scripts/trixie-root.sh --umount [ROOT]   unmount (always do this before rm -rf ROOT)
#   scripts/trixie-root.sh --print [ROOT]    print the root's path and exit
#   scripts/trixie-root.sh --overlay NEW [ROOT]
#       a throwaway Debian 13 at NEW for the package test: an overlay with the cached
#       ROOT (made or updated first) as its read-only lower layer and NEW.upper as the
#       writable one, /proc, /dev, /dev/pts mounted. Nothing is ever written to ROOT;
#       NEW.upper is emptied on every call. Seconds, no copy. Undo: --umount NEW.
# Needs root and debootstrap (scripts/deps.sh installs it). About 3 minutes and 0.8 GB
# the first time; seconds afterwards. No service in the root is ever started
# (policy-rc.d), and nothing outside ROOT is touched but the mounts.
set -euo pipefail
MODE=build
case "${1:-}" in
  --umount) MODE=umount; shift ;;
  --print) MODE=print; shift ;;
  --overlay) MODE=overlay; NEW=${2:?--overlay needs a directory}; shift 2 ;;
esac
R=${1:-${DREPL_TRIXIE_ROOT:-/var/cache/dovecot-replicator/trixie}}
MIRROR=${DREPL_TRIXIE_MIRROR:-http://deb.debian.org/debian}
# Packages the 2.4 build and tests need inside the root.
PACKAGES=(dovecot-core dovecot-imapd dovecot-dev g++ make cmake pkg-config python3
          libasio-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev nlohmann-json3-dev libsystemd-dev
          libssl-dev openssl procps openssh-server openssh-client dpkg-dev ccache)

if [ "$MODE" = print ]; then echo "$R"; exit 0; fi
umount_root() {  # the root's own mounts, then the root if it is a mount (an overlay)
  for m in "$1/dev/pts" "$1/dev" "$1/proc" "$1"; do
    if mountpoint -q "$m"; then umount "$m" || umount -l "$m"; fi
  done
}
mount_api() {
  mountpoint -q "$1/proc"    || mount -t proc proc "$1/proc"
  mountpoint -q "$1/dev"     || mount --bind /dev "$1/dev"
  mountpoint -q "$1/dev/pts" || mount --bind /dev/pts "$1/dev/pts"
}
if [ "$MODE" = umount ]; then umount_root "$R"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "trixie-root.sh: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }

if [ ! -e "$R/etc/debian_version" ] || [ ! -e "$R/.drepl-debootstrap-done" ]; then
  echo "trixie-root: debootstrap into $R (about 90 s)" >&2
  rm -rf "$R.partial"
  mkdir -p "$(dirname "$R")"
  debootstrap --variant=minbase trixie "$R.partial" "$MIRROR" >"$R.debootstrap.log" 2>&1 || {
    echo "trixie-root: debootstrap failed; last lines of $R.debootstrap.log:" >&2
    tail -20 "$R.debootstrap.log" >&2; exit 1; }
  touch "$R.partial/.drepl-debootstrap-done"
  rm -rf "$R"; mv "$R.partial" "$R"
fi
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
ln -sf /proc/self/mounts "$R/etc/mtab"
mount_api "$R"

missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(chroot "$R" dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "trixie-root: installing ${missing[*]}" >&2
  chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >"$R.apt.log" 2>&1 || {
    echo "trixie-root: apt-get install failed; last lines of $R.apt.log:" >&2
    tail -20 "$R.apt.log" >&2; exit 1; }
fi
# The tests' mail user, uid 5000 as on the host (dovepair.py uses the same).
chroot "$R" getent passwd vmail >/dev/null || \
  chroot "$R" useradd -u 5000 -U -d /srv/vmail -M -s /usr/sbin/nologin vmail
if [ "$MODE" = overlay ]; then
  # overlayfs takes the lower directory itself, not what is mounted below it (the
  # cached root's /proc and /dev stay out of NEW).
  umount_root "$NEW"
  rm -rf "$NEW.upper" "$NEW.work"
  mkdir -p "$NEW" "$NEW.upper" "$NEW.work"
  mount -t overlay overlay -o "lowerdir=$R,upperdir=$NEW.upper,workdir=$NEW.work" "$NEW"
  mount_api "$NEW"
  echo "$NEW"
  exit 0
fi
echo "$R"
