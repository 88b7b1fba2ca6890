#!/usr/bin/env bash
# Compiles every code block of a doc marked `<!-- example: FILE -->` (FILE may
# name a subdirectory: project/CMakeLists.txt):
#   *.c            a C11 shared object, -Wall -Wextra -pedantic -Werror;
#   *.cpp          a plugin: a C++17 shared object;
#   *_test.cpp     a GoogleTest program linked with the plugin example whose
#                  name is its longest prefix (tariff_upgrade_test.cpp ->
#                  tariff_upgrade.cpp, else tariff.cpp; .cpp or .c), then run;
#   intree.cmake   a line of the aether tree's plugins/CMakeLists.txt: built
#                  in a project that adds the SDK from the source tree;
#   DIR/CMakeLists.txt with DIR/build.sh: an out-of-tree project; the SDK is
#                  installed from BUILD_DIR into a prefix that replaces
#                  /opt/aether-sdk in the commands, the sources it names are
#                  the doc's other examples, and build.sh is run in DIR.
# With --every-block, every fenced block of the doc must be such an example.
# Usage: doc_examples.sh DOC SOURCE_DIR BUILD_DIR WORK_DIR [--every-block]
set -euo pipefail
doc=$1 src=$2 build=$3 work=$4 every=${5:-}
rm -rf "$work"; mkdir -p "$work"
awk -v dir="$work" '
  /<!-- example: .* -->/ { match($0, /example: [^ ]+/); name = substr($0, RSTART + 9, RLENGTH - 9); want = 1; next }
  want && /^```/ && !inside { inside = 1; file = dir "/" name; system("mkdir -p \"$(dirname \"" file "\")\""); printf "" > file; next }
  inside && /^```/ { inside = 0; want = 0; close(file); next }
  inside { print >> file }
' "$doc"
examples=$(grep -c '<!-- example: ' "$doc" || true)
if [ "$every" == "--every-block" ]; then
  blocks=$(awk '/^```/{n++} END{print n / 2}' "$doc")
  [ "$blocks" -eq "$examples" ] ||
    { echo "FAILED: $doc has $blocks code blocks but only $examples are marked as examples"; exit 1; }
fi
inc="-I$src/sdk/include"
n=0
ok() { echo "ok: $*"; n=$((n + 1)); }

for f in "$work"/*.c "$work"/*.cpp; do
  [ -e "$f" ] || continue
  case "$f" in
    *_test.cpp) continue ;;
    *.c)   cc -std=c11 -Wall -Wextra -pedantic -Werror -fPIC -shared -fvisibility=hidden $inc "$f" -o "${f%.c}.so"
           cc -std=c11 -Wall -Wextra -pedantic -Werror -c $inc "$f" -o "${f%.c}.o" ;;
    *.cpp) c++ -std=c++17 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden $inc "$f" -o "${f%.cpp}.so" ;;
  esac
  ok "compiled $(basename "$f")"
done

for t in "$work"/*_test.cpp; do
  [ -e "$t" ] || continue
  p=${t%_test.cpp}
  while [ ! -e "$p.cpp" ] && [ ! -e "$p.c" ] && [[ $(basename "$p") == *_* ]]; do p=${p%_*}; done
  if [ -e "$p.cpp" ]; then plugin=$p.cpp; elif [ -e "$p.c" ]; then plugin=${p}.o; else
    echo "FAILED: no plugin example for $(basename "$t")"; exit 1
  fi
  c++ -std=c++17 -Wall -Wextra -Werror $inc "$t" "$plugin" -o "${t%.cpp}" -lgtest -lgtest_main -pthread
  "${t%.cpp}" --gtest_brief=1
  ok "compiled and ran $(basename "$t") (with $(basename "$plugin"))"
done

if [ -e "$work/intree.cmake" ]; then
  proj=$work/intree
  mkdir -p "$proj"
  cat >"$proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(doc_intree VERSION 0.1.0 LANGUAGES C CXX)
find_package(nlohmann_json 3.2 REQUIRED)
add_subdirectory($src/sdk aether-sdk)
include(\${CMAKE_CURRENT_SOURCE_DIR}/../intree.cmake)
CMAKE
  for s in $(grep -o '[A-Za-z0-9_/]*\.c[p]*' "$work/intree.cmake"); do
    mkdir -p "$proj/$(dirname "$s")"; cp "$work/$(basename "$s")" "$proj/$s"
  done
  cmake -S "$proj" -B "$proj/build" -G Ninja >"$proj.log" 2>&1 && cmake --build "$proj/build" >>"$proj.log" 2>&1 ||
    { cat "$proj.log"; exit 1; }
  ok "built intree.cmake: $(cd "$proj/build/plugins" && ls)"
fi

for script in "$work"/*/build.sh; do
  [ -e "$script" ] || continue
  proj=$(dirname "$script") prefix=$work/sdk-prefix
  [ -d "$prefix" ] || cmake --install "$build" --prefix "$prefix" --component sdk >/dev/null
  for s in $(grep -o '[A-Za-z0-9_/]*\.c[p]*' "$proj/CMakeLists.txt"); do cp "$work/$(basename "$s")" "$proj/$s"; done
  (cd "$proj" && sed "s|/opt/aether-sdk|$prefix|g" build.sh | bash -euo pipefail) >"$proj.log" 2>&1 ||
    { cat "$proj.log"; exit 1; }
  ok "built $(basename "$proj") out of tree: $(cd "$proj/build/plugins" && ls)"
  n=$((n + 1))  # two examples: its CMakeLists.txt and build.sh
done
[ "$n" -ge "$examples" ] || { echo "FAILED: $examples examples in $doc, $n built"; exit 1; }
echo "$n examples built"
