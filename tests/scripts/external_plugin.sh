#!/usr/bin/env bash
# The plugin author's path, out of tree: installs the sdk and testkit
# components of the build into a temporary prefix, then
#   1. compiles every installed header alone as C++17 and C++20 with g++ and
#      clang++ and checks that none pulls in host internals;
#   2. builds examples/external-plugin against the prefix only (no build or
#      source tree on an include or link path) with g++ and clang++, C++17 and
#      C++20, and runs its tests (FakeHost unit tests, testkit swap tests);
#   3. loads the clang-built plugin into g++-built host code (CHECK_BINARY);
#   4. compiles and runs the testkit code blocks of docs/testing.md.
# Usage: external_plugin.sh SOURCE_DIR BINARY_DIR CHECK_BINARY [PRELOAD]
# PRELOAD: in a sanitizer build the installed testkit is instrumented and
# the example's programs are not; they run with that sanitizer's runtime
# preloaded (it must come first), without leak checks of their own.
set -euo pipefail
src=$1 bin=$2 check=$3 preload=${4:-}
uninstrumented() {
  if [ -n "$preload" ]; then
    LD_PRELOAD="$preload" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$@"
  else
    "$@"
  fi
}
# Outside the build tree, and the same directory for the same build tree, so
# that a compiler cache finds the example's objects of the previous run.
work=/tmp/aether-external-$(printf %s "$bin" | sha256sum | cut -c1-16)
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
for component in sdk testkit; do
  cmake --install "$bin" --prefix "$prefix" --component "$component" >/dev/null
done
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

fail() { echo "FAILED: $*"; exit 1; }

# 1. the public headers
for cxx in g++ clang++; do
  for std in 17 20; do
    for h in "$prefix"/include/aether/*; do
      tu="#include <aether/$(basename "$h")>"
      flags=(-std=c++$std -x c++ -Wall -Wextra -Werror -I"$prefix/include" -)
      "$cxx" -fsyntax-only "${flags[@]}" <<<"$tu" || fail "$h does not compile alone ($cxx, C++$std)"
      deps=$("$cxx" -M "${flags[@]}" <<<"$tu")
      if grep -E "spdlog|nats/|boost/|core/records.hpp|$src/host|$src/sdk|$bin" <<<"$deps"; then
        fail "$h pulls in host internals ($cxx, C++$std)"
      fi
    done
  done
done
echo "ok: $(ls "$prefix"/include/aether | tr '\n' ' ')compile alone as C++17 and C++20 with g++ and clang++"

# 2. the example, out of tree
example() {  # CXX STD: configures, builds and tests; prints the build dir
  local out=$work/example-$1-$2
  CXX=$1 cmake -S "$src/examples/external-plugin" -B "$out" -G Ninja "${launcher[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD="$2" >/dev/null
  cmake --build "$out" >/dev/null
  if grep -E -q "$src/(host|sdk)|$bin" "$out/build.ninja"; then
    fail "the example's build refers to the aether source or build tree"
  fi
  (cd "$out" && uninstrumented ctest --output-on-failure >&2) || fail "the example's tests ($1, C++$2)"
  echo "ok: examples/external-plugin built and tested with $1, C++$2 (${SECONDS}s)" >&2
}
for cxx in g++ clang++; do
  for std in 17 20; do example "$cxx" "$std"; done
done

# 3. a clang-built plugin in g++-built host code
so=$work/example-clang++-20/plugins/wallet_v1.so
readelf -p .comment "$so" | grep -q "clang version" || fail "$so was not compiled by clang"
"$check" "$so"

# 4. the testkit examples of docs/testing.md (```cpp blocks that include
# <aether/testkit.hpp>), each a source file of one test program
docs=$work/doc-testkit
mkdir -p "$docs"
awk -v dir="$docs" '
  /^```cpp/ { inblock = 1; text = ""; next }
  /^```/ && inblock { inblock = 0
    if (text ~ /#include <aether\/testkit.hpp>/) { n++; printf "%s", text > (dir "/block_" n ".cpp") }
    next }
  inblock { text = text $0 "\n" }' "$src/docs/testing.md"
count=$(ls "$docs"/block_*.cpp 2>/dev/null | wc -l)
[ "$count" -gt 0 ] || fail "no testkit code blocks found in docs/testing.md"
plugins=$work/example-g++-17/plugins
cat > "$docs/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(doc_testkit CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(AetherSDK REQUIRED COMPONENTS testkit)
find_package(GTest REQUIRED)
file(GLOB blocks \${CMAKE_SOURCE_DIR}/block_*.cpp)
add_executable(doc_testkit_test \${blocks})
target_link_libraries(doc_testkit_test PRIVATE AetherSDK::testkit GTest::gtest_main)
target_compile_definitions(doc_testkit_test PRIVATE
  WALLET_V1="$plugins/wallet_v1.so" WALLET_V2="$plugins/wallet_v2.so")
CMAKE
cmake -S "$docs" -B "$docs/build" -G Ninja "${launcher[@]}" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$docs/build" >/dev/null || fail "the testkit blocks of docs/testing.md do not compile"
uninstrumented "$docs/build/doc_testkit_test" --gtest_brief=1 || fail "the testkit blocks of docs/testing.md fail"
echo "ok: $count testkit blocks of docs/testing.md compiled and passed"
