#!/usr/bin/env bash
# The SDK's public headers (sdk.hpp, values.hpp, testing.hpp) and a plugin
# using its typed commands compile as C++17 and C++20 with g++ and clang,
# warnings as errors.
# Usage: sdk_headers.sh SOURCE_DIR
set -uo pipefail
src=$1
failed=0
for cxx in g++ clang++; do
  for std in c++17 c++20; do
    if printf '#include <aether/sdk.hpp>\n#include <aether/testing.hpp>\n#include <aether/values.hpp>\n' |
         "$cxx" -std=$std -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$src/sdk/include" -x c++ - &&
       "$cxx" -std=$std -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$src/sdk/include" \
         "$src/tests/plugins/strict_values.cpp"; then
      echo "ok: $cxx -std=$std"
    else
      echo "FAILED: $cxx -std=$std"; failed=1
    fi
  done
done
exit $failed
