#!/usr/bin/env bash
# Builds the Debian package dovecot-replicator_<version>_<arch>.deb from this tree,
# for the Dovecot whose dovecot-dev is installed (2.3 on Debian 12, 2.4 on Debian 13).
#   scripts/package.sh [OUT_DIR]          default OUT_DIR: build-pkg/deb
#   scripts/package.sh --root ROOT [OUT_DIR]
#       build inside a Debian root instead (e.g. Dovecot 2.4: the root from
#       scripts/trixie-root.sh): the tree is bind-mounted at ROOT/drepl-src, the build
#       goes to build-pkg-<codename>/ of the tree, the .deb to OUT_DIR (default
#       build-pkg-<codename>/deb).
#   BUILD_DIR=build-pkg   JOBS=2          the build directory (no tests, no benchmarks)
#   DOVECOT_CONFIG=/usr/lib/dovecot/dovecot-config   which Dovecot to build for
# The ABI, paths and maintainer scripts follow the Dovecot found.
#
# Why dpkg-deb and not CPack: the package is mostly maintainer scripts (dpkg-divert,
# restoring Dovecot's files, systemd) and exact control fields (Depends on the
# dovecot-abi-* virtual package, conffiles); dpkg-deb takes those as they are, and
# dpkg-shlibdeps computes the library dependencies the Debian way. CPack's DEB
# generator would add a layer that writes the same files less visibly.
#
# The package holds:
#   /usr/lib/dovecot/modules/lib20_replication_plugin.so          the mail plugin
#       (2.3: Dovecot's own file of that name is diverted to
#        /usr/lib/dovecot-replicator/diverted/ while installed)
#   /usr/lib/dovecot/modules/doveadm/lib10_doveadm_replicator_plugin.so
#   /usr/libexec/dovecot-replicator/replicator                     daemon + aggregator
#   /etc/dovecot/conf.d/95-dovecot-replicator.conf                 conffile
#   /etc/dovecot/dovecot-replicator.conf       2.4: conffile, the admin's settings, read
#       through /usr/share/dovecot-replicator/dovecot-replicator-installed.conf
#   /usr/share/dovecot-replicator/dovecot-replicator-{master,systemd}.conf
#   <systemdsystemunitdir>/dovecot-replicator.service, dovecot-*.socket (not enabled)
#   /usr/share/man/man8/replicator.8.gz, man1/doveadm-replicator.1.gz
#       (2.3: dovecot-core's doveadm-replicator.1.gz is diverted while installed)
# Depends: dovecot-core and dovecot-abi-<abi> (Dovecot refuses modules built for another
# ABI, so apt holds back a Dovecot upgrade instead of breaking mail), plus the shared
# libraries (dpkg-shlibdeps).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
if [ "${1:-}" = --root ]; then
  ROOT=$(realpath "${2:?--root needs a directory}"); shift 2
  [ -x "$ROOT/usr/bin/dpkg-deb" ] || { echo "package.sh: $ROOT is not a Debian root" >&2; exit 1; }
  codename=$(. "$ROOT/etc/os-release" && echo "${VERSION_CODENAME:-root}")
  for m in proc dev; do mountpoint -q "$ROOT/$m" || { echo "package.sh: $ROOT/$m not mounted (scripts/trixie-root.sh mounts it)" >&2; exit 1; }; done
  out_rel=${1:-build-pkg-$codename/deb}
  case "$out_rel" in /*) echo "package.sh: with --root, OUT_DIR is relative to the tree" >&2; exit 1 ;; esac
  # The bind mount lives in a private mount namespace: it goes when the build ends,
  # and two trees packaged in the same root at once never see each other's.
  mkdir -p "$ROOT/drepl-src"
  deb=$(unshare --mount --propagation private sh -c '
          mount --bind "$1" "$2/drepl-src" &&
          exec chroot "$2" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
            CCACHE_DIR=/var/cache/ccache BUILD_DIR="/drepl-src/build-pkg-$3" JOBS="$4" \
            /drepl-src/scripts/package.sh "/drepl-src/$5"' \
        sh "$SRC" "$ROOT" "$codename" "${JOBS:-2}" "$out_rel" | tail -1)
  [ -n "$deb" ] || { echo "package.sh: the build in $ROOT failed" >&2; exit 1; }
  echo "$SRC/${deb#/drepl-src/}"
  exit 0
fi
OUT=$(realpath -m "${1:-build-pkg/deb}")
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build-pkg}")
DOVECOT_CONFIG=${DOVECOT_CONFIG:-/usr/lib/dovecot/dovecot-config}
PKG=dovecot-replicator

die() { echo "package.sh: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps cmake; do
  command -v "$tool" >/dev/null || die "$tool missing (scripts/deps.sh installs it)"
done
[ -r "$DOVECOT_CONFIG" ] || die "no $DOVECOT_CONFIG: install dovecot-dev"

# ---- which Dovecot -------------------------------------------------------------
# dovecot-config names the include and module directories; the ABI string is
# DOVECOT_ABI_VERSION, in dovecot-config when it has it, else in config.h:
# "2.3.ABIv19(2.3.19.1)" -> Debian's virtual package dovecot-abi-2.3.abiv19.
cfg() { sed -n "s/^$1=['\"]\{0,1\}\([^'\"]*\)['\"]\{0,1\}\$/\1/p" "$DOVECOT_CONFIG" | tail -1; }
INCDIR=$(cfg dovecot_pkgincludedir); INCDIR=${INCDIR:-/usr/include/dovecot}
MODDIR=$(cfg dovecot_moduledir); MODDIR=${MODDIR:-/usr/lib/dovecot/modules}
ABI=$(cfg DOVECOT_ABI_VERSION)
[ -n "$ABI" ] || ABI=$(sed -n 's/^#define DOVECOT_ABI_VERSION "\(.*\)"$/\1/p' "$INCDIR/config.h")
[ -n "$ABI" ] || die "no DOVECOT_ABI_VERSION in $DOVECOT_CONFIG or $INCDIR/config.h"
ABI_SHORT=$(printf '%s' "${ABI%%(*}" | tr 'A-Z' 'a-z')        # 2.3.abiv19
ABI_PKG="dovecot-abi-$ABI_SHORT"
DOVECOT_MAJOR=${ABI_SHORT%%.abiv*}                             # 2.3
if provides=$(dpkg-query -W -f='${Provides}' dovecot-core 2>/dev/null); then
  case ", $provides," in
    *", $ABI_PKG,"*|*", $ABI_PKG "*) ;;
    *) die "installed dovecot-core provides '$provides', not $ABI_PKG (headers and runtime differ)" ;;
  esac
fi
echo "package.sh: building for Dovecot $ABI ($ABI_PKG)"

# ---- build and stage -------------------------------------------------------------
VERSION_UPSTREAM=$(sed -n 's/^project(dovecot-replicator VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
VERSION="$VERSION_UPSTREAM-1+dovecot$ABI_SHORT"
ARCH=$(dpkg --print-architecture)
cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DDREPL_BUILD_TESTS=OFF -DDREPL_BUILD_BENCH=OFF -DDOVECOT_INCLUDE_DIR="$INCDIR" \
  -DDREPL_DOVECOT_MODULE_DIR="${MODDIR#/usr/}" \
  -DDREPL_DOVEADM_MODULE_DIR="${MODDIR#/usr/}/doveadm" \
  -DDREPL_SYSTEMD_UNIT_DIR="$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)" >"$BUILD_DIR.cmake.log" 2>&1 \
  || { tail -20 "$BUILD_DIR.cmake.log" >&2; die "cmake failed (log: $BUILD_DIR.cmake.log)"; }
cmake --build "$BUILD_DIR" -j"${JOBS:-2}"
STAGE="$BUILD_DIR/stage"
rm -rf "$STAGE"
DESTDIR="$STAGE" cmake --install "$BUILD_DIR" >/dev/null
# Separate debug info would need a -dbgsym package; ship stripped binaries.
find "$STAGE" -type f \( -name '*.so' -o -path '*/libexec/*' \) -exec strip --strip-unneeded {} +
# The conffile goes where Dovecot reads conf.d; its sample copy stays out of the package.
mkdir -p "$STAGE/etc/dovecot/conf.d"
mv "$STAGE/usr/share/dovecot-replicator/conf.d/95-dovecot-replicator.conf" "$STAGE/etc/dovecot/conf.d/"
CONFFILES=(/etc/dovecot/conf.d/95-dovecot-replicator.conf)
# 2.4: the admin's settings beside dovecot.conf, read only while the package is installed
if [ -e "$STAGE/usr/share/dovecot-replicator/conf.d/dovecot-replicator.conf" ]; then
  mv "$STAGE/usr/share/dovecot-replicator/conf.d/dovecot-replicator.conf" "$STAGE/etc/dovecot/"
  CONFFILES+=(/etc/dovecot/dovecot-replicator.conf)
fi
rmdir "$STAGE/usr/share/dovecot-replicator/conf.d"
gzip -9n "$STAGE"/usr/share/man/man*/*.[0-9]
DOC="$STAGE/usr/share/doc/$PKG"
mkdir -p "$DOC"
cp README.md "$DOC/"
cp doveadm-cmds/README.md "$DOC/README.doveadm-cmds.md"
printf 'dovecot-replicator %s, built for Dovecot %s.\nSource: the dovecot-replicator tree (scripts/package.sh).\n' \
  "$VERSION" "$ABI" >"$DOC/copyright"
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f -exec chmod 0644 {} +
chmod 0755 "$STAGE/usr/libexec/dovecot-replicator/replicator"

# ---- what Dovecot's own package ships that we replace (diverted while installed) ------
# Only files dovecot-core really has (2.3 has the plugin and the man page; 2.4 neither).
DIVERTS=()
for f in "$MODDIR/lib20_replication_plugin.so" /usr/share/man/man1/doveadm-replicator.1.gz; do
  [ -e "$STAGE$f" ] || die "staged package lacks $f"
  if [ "$DOVECOT_MAJOR" = 2.3 ] || dpkg-query -S "$f" 2>/dev/null | grep -Eq '(^|, )dovecot-core(,|:)'; then
    DIVERTS+=("$f")
  fi
done

# ---- control files ------------------------------------------------------------------
CTRL="$STAGE/DEBIAN"
mkdir -p "$CTRL"
tmpd=$(mktemp -d); trap 'rm -rf "$tmpd"' EXIT
mkdir -p "$tmpd/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$tmpd/debian/control"
bins=()
while IFS= read -r -d '' f; do bins+=("$f"); done < <(find "$STAGE/usr" -type f \( -name '*.so' -o -path '*/libexec/*' \) -print0)
# The modules' Dovecot symbols resolve in the loading process (not NEEDED): ignore them.
shlibs=$(cd "$tmpd" && dpkg-shlibdeps -O --ignore-missing-info --warnings=0 "${bins[@]}" 2>/dev/null \
         | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependencies"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$CTRL/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: dovecot-replicator developers <root@localhost>
Installed-Size: $SIZE
Depends: dovecot-core, $ABI_PKG, $shlibs
Suggests: systemd
Section: mail
Priority: optional
Description: master/master mail replication for Dovecot $DOVECOT_MAJOR
 A drop-in for Dovecot 2.3's replication (removed in Dovecot 2.4): the
 replication mail plugin, the aggregator, the replicator daemon and
 doveadm replicator commands (status, dsync-status, replicate, add,
 remove, detail), with Dovecot's wire formats, settings and replicator.db.
 It runs under Dovecot's master or as a systemd service
 (dovecot-replicator.service with socket activation). Built for Dovecot
 $ABI; install, set mail_replica, restart Dovecot.
EOF
printf '%s\n' "${CONFFILES[@]}" >"$CTRL/conffiles"

UNITS=$(cd "$STAGE" && find . -path '*/systemd/system/*' -type f -printf '%f ' | sed 's/ $//')
for script in preinst postinst prerm postrm; do
  sed -e "s|@PKG@|$PKG|g" -e "s|@DIVERTS@|${DIVERTS[*]}|g" -e "s|@UNITS@|$UNITS|g" \
    "packaging/debian/$script.in" >"$CTRL/$script"
  chmod 0755 "$CTRL/$script"
done
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum) >"$CTRL/md5sums"

mkdir -p "$OUT"
DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
