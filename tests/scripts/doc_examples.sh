#!/usr/bin/env bash
# Compiles every code block of docs/sdk.md marked `<!-- example: FILE -->`:
# .c files as C11 shared objects with -Wall -Wextra -pedantic -Werror, .cpp
# plugins as shared objects, and *_test.cpp as a GoogleTest program linked with
# the plugin example it names by prefix, which is then run.
# Usage: doc_examples.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
doc=$src/docs/sdk.md
rm -rf "$work"; mkdir -p "$work"
awk -v dir="$work" '
  /<!-- example: .* -->/ { match($0, /example: [^ ]+/); name = substr($0, RSTART + 9, RLENGTH - 9); want = 1; next }
  want && /^```/ && !inside { inside = 1; file = dir "/" name; printf "" > file; next }
  inside && /^```/ { inside = 0; want = 0; close(file); next }
  inside { print >> file }
' "$doc"
inc="-I$src/sdk/include"
n=0
for f in "$work"/*; do
  case "$f" in
    *_test.cpp) continue ;;
    *.c)   cc -std=c11 -Wall -Wextra -pedantic -Werror -fPIC -shared -fvisibility=hidden $inc "$f" -o "${f%.c}.so" ;;
    *.cpp) c++ -std=c++17 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden $inc "$f" -o "${f%.cpp}.so" ;;
  esac
  echo "ok: compiled $(basename "$f")"; n=$((n + 1))
done
for t in "$work"/*_test.cpp; do
  [ -e "$t" ] || continue
  plugin=${t%_test.cpp}.cpp
  c++ -std=c++17 -Wall -Wextra -Werror $inc "$t" "$plugin" -o "${t%.cpp}" -lgtest -lgtest_main -pthread
  "${t%.cpp}" --gtest_brief=1
  echo "ok: compiled and ran $(basename "$t")"; n=$((n + 1))
done
[ "$n" -ge 4 ] || { echo "FAILED: expected at least 4 examples in $doc, found $n"; exit 1; }
echo "$n examples built"
