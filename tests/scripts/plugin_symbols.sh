#!/usr/bin/env bash
# Plugins built by aether_add_plugin export exactly one symbol,
# aether_plugin_entry (`nm -D --defined-only`), and a project that sets no
# build type gets Release flags for them.
#  1. every PLUGIN.so given on the command line (built in this tree);
#  2. tests/sdk_project configured without CMAKE_BUILD_TYPE, built, its
#     compile commands checked for the Release flags and its plugins checked
#     as in 1.
# Usage: plugin_symbols.sh SOURCE_DIR WORK_DIR PLUGIN.so...
set -euo pipefail
src=$1 work=$2
shift 2
failed=0

check_exports() {
  local so=$1 symbols
  symbols=$(nm -D --defined-only "$so" | awk '{print $NF}')
  if [ "$symbols" == "aether_plugin_entry" ]; then
    echo "ok: $(basename "$so") exports only aether_plugin_entry"
  else
    echo "FAILED: $so exports $(printf '%s\n' "$symbols" | wc -l) symbols:"
    printf '%s\n' "$symbols" | head -20 | sed 's/^/    /'
    failed=1
  fi
}

for so in "$@"; do check_exports "$so"; done

rm -rf "$work"
cmake -S "$src/tests/sdk_project" -B "$work" -G Ninja -DAETHER_SOURCE_DIR="$src" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$work.log" 2>&1 || { cat "$work.log"; exit 1; }
cmake --build "$work" >>"$work.log" 2>&1 || { cat "$work.log"; exit 1; }
for file in strict_values.cpp counter.c; do
  line=$(grep "\"command\".*$file" "$work/compile_commands.json")
  if [[ $line == *" -O3 "* && $line == *"-DNDEBUG"* ]]; then
    echo "ok: $file compiled with the Release flags (no build type set)"
  else
    echo "FAILED: $file not compiled with -O3 -DNDEBUG: $line"
    failed=1
  fi
done
check_exports "$work/plugins/strict.so"
check_exports "$work/plugins/counter.so"
exit $failed
