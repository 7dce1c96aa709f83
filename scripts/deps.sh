#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, if any are missing.
#   scripts/deps.sh          install what is missing (apt-get; needs root or sudo)
#   scripts/deps.sh --list   print the package list (used by .ci/run)
#   scripts/deps.sh --check  exit 1 if anything is missing, install nothing
# While installing it puts a temporary /usr/sbin/policy-rc.d in place (if there is
# none) so that the packaged system Dovecot and sshd are not started.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates ccache debootstrap
  clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libasio-dev libfmt-dev libcli11-dev nlohmann-json3-dev libssl-dev libsystemd-dev
  systemd man-db dpkg-dev
  dovecot-core dovecot-imapd dovecot-dev
  python3 procps openssh-server openssh-client openssl
)

case "${1:-}" in
  --list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = --check ]; then
  echo "missing packages: ${missing[*]}" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "installing missing packages: ${missing[*]}"
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
