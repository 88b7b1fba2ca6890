#!/usr/bin/env bash
# Installs the SDK from the build tree into a prefix, builds
# examples/external-plugin with clang against it (find_package(AetherSDK)),
# checks the image was produced by clang, and loads it into g++-built host code.
# Usage: external_plugin.sh SOURCE_DIR BINARY_DIR CHECK_BINARY
set -euo pipefail
src=$1 bin=$2 check=$3
prefix=$bin/sdk-install
out=$bin/external-plugin
rm -rf "$prefix" "$out"
cmake --install "$bin" --prefix "$prefix" --component sdk >/dev/null
CC=clang CXX=clang++ cmake -S "$src/examples/external-plugin" -B "$out" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out"
so=$out/plugins/guestbook.so
test -f "$so" || { echo "FAILED: $so was not built"; exit 1; }
if ! readelf -p .comment "$so" | grep -q "clang version"; then
  echo "FAILED: $so was not compiled by clang:"; readelf -p .comment "$so"; exit 1
fi
echo "ok: $so built by $(readelf -p .comment "$so" | grep -o 'clang version [0-9.]*' | head -1)"
"$check" "$so"
