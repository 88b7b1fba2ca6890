#!/usr/bin/env bash
# Builds the .deb packages of the build tree with CPack (what `make package`
# does), extracts each into a temporary root with dpkg-deb -x and checks its
# layout, its control data, the packaged config (aether-host --check-config)
# and the systemd unit (systemd-analyze verify, when available).
# Usage: package_layout.sh BINARY_DIR
set -euo pipefail
bin=$1
work=$(mktemp -d /tmp/aether-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*"; exit 1; }

cpack --config "$bin/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack"; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$bin/CPackConfig.cmake")
deb() { ls "$work"/out/"$1"_"$version"_*.deb 2>/dev/null | head -1; }
host_deb=$(deb aether) dev_deb=$(deb aether-dev)
[ -f "$host_deb" ] || fail "no aether_${version}_*.deb in $(ls "$work/out")"
[ -f "$dev_deb" ] || fail "no aether-dev_${version}_*.deb in $(ls "$work/out")"
echo "ok: built $(basename "$host_deb") and $(basename "$dev_deb")"

expect_files() {  # ROOT FILE...: each file exists under ROOT
  local root=$1; shift
  for f in "$@"; do [ -e "$root/$f" ] || fail "$f missing from the package"; done
}

# aether: the host, the CLI, the example plugins, config, unit
root=$work/root-aether host_root=$work/root-aether
dpkg-deb -x "$host_deb" "$root"
expect_files "$root" usr/bin/aether-host usr/bin/aether \
  usr/lib/aether/plugins/bank.so usr/lib/aether/plugins/order.so usr/lib/aether/plugins/counter.so \
  etc/aether/aether.yaml usr/lib/systemd/system/aether.service usr/share/doc/aether/operations.md
[ -x "$root/usr/bin/aether-host" ] || fail "aether-host is not executable"
[ ! -e "$root/usr/include" ] || fail "the aether package ships headers"
grep -q 'AETHER_DATA:-/var/lib/aether' "$root/etc/aether/aether.yaml" || fail "config: data dir"
grep -q 'AETHER_PLUGIN_DIR:-/usr/lib/aether/plugins' "$root/etc/aether/aether.yaml" ||
  fail "config: plugin dir"
(cd "$work" && AETHER_DATA=$work/data AETHER_PLUGIN_DIR=$root/usr/lib/aether/plugins \
  "$root/usr/bin/aether-host" --check-config "$root/etc/aether/aether.yaml") ||
  fail "aether-host --check-config rejects the packaged config"
unit=$root/usr/lib/systemd/system/aether.service
grep -q '^User=aether$' "$unit" || fail "the unit does not run as user aether"
grep -q '^ExecStart=/usr/bin/aether-host --config /etc/aether/aether.yaml$' "$unit" ||
  fail "the unit's ExecStart"
grep -q '^StateDirectory=aether$' "$unit" || fail "the unit's state directory"

control=$work/control-aether
dpkg-deb -e "$host_deb" "$control"
grep -q 'adduser --system' "$control/postinst" || fail "postinst does not create the user"
grep -q 'chown aether:aether /var/lib/aether' "$control/postinst" || fail "postinst: data dir"
grep -qx '/etc/aether/aether.yaml' "$control/conffiles" || fail "the config is not a conffile"
depends=$(dpkg-deb -f "$host_deb" Depends)
grep -q adduser <<<"$depends" || fail "aether does not depend on adduser: $depends"
grep -q libsqlite3 <<<"$depends" || fail "aether's shared library dependencies: $depends"
echo "ok: aether layout, control files, config, unit ($depends)"

# aether-dev: SDK headers, the CMake package, the testkit
root=$work/root-dev
dpkg-deb -x "$dev_deb" "$root"
expect_files "$root" usr/include/aether/abi.h usr/include/aether/sdk.hpp \
  usr/include/aether/testing.hpp usr/include/aether/testkit.hpp \
  usr/lib/cmake/AetherSDK/AetherSDKConfig.cmake usr/lib/cmake/AetherSDK/AetherPlugin.cmake \
  usr/lib/cmake/AetherSDK/AetherSDKTestkitTargets.cmake usr/lib/libaethertestkit.so
[ ! -e "$root/usr/bin" ] || fail "aether-dev ships programs"
[ ! -e "$root/etc" ] || fail "aether-dev ships configuration"
echo "ok: aether-dev layout ($(dpkg-deb -f "$dev_deb" Depends))"

# the unit, verified against the extracted binary
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/bin/aether-host|$host_root/usr/bin/aether-host|" "$unit" \
    >"$work/aether.service"
  out=$(systemd-analyze verify "$work/aether.service" 2>&1) || { echo "$out"; fail "systemd-analyze verify"; }
  # verify also reports on unrelated system units; only ours counts here
  if grep -i "aether.service" <<<"$out"; then fail "systemd-analyze verify: aether.service"; fi
  echo "ok: systemd-analyze verify aether.service"
else
  echo "skipped: systemd-analyze is not installed"
fi
