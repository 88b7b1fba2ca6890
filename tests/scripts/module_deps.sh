#!/usr/bin/env bash
# Fails when a host module includes a header of a module it does not depend on
# (DESIGN.md's dependency table, as declared by aether_module() in
# host/CMakeLists.txt and written to module_deps.txt at configure time).
# Usage: module_deps.sh SOURCE_DIR TABLE
set -euo pipefail
src=$1/host/src table=$2
[ -s "$table" ] || { echo "module_deps: no table at $table (configure first)"; exit 2; }
modules=$(cut -d' ' -f1 "$table" | tr '\n' ' ')
bad=0 checked=0
while read -r module sees; do
  [ -d "$src/$module" ] || { echo "module_deps: $module has no folder $src/$module"; bad=1; continue; }
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$text")
    case " $modules " in *" $target "*) ;; *) continue ;; esac
    checked=$((checked + 1))
    case " $module $sees " in *" $target "*) continue ;; esac
    echo "${file#$1/}:$line: module '$module' includes '$target', which it does not depend on (it may use: $sees)"
    bad=1
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]+/' "$src/$module" || true)
done < "$table"
if [ "$bad" -ne 0 ]; then
  echo "module_deps: FAILED (fix the include or declare the dependency in host/CMakeLists.txt and DESIGN.md)"
  exit 1
fi
echo "module_deps: ok, $checked module includes checked against $(wc -l < "$table") modules"
