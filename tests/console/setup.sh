#!/usr/bin/env bash
# Test setup of the console's browser tests: puppeteer-core (a DevTools
# protocol client, no browser download) into a cache directory outside the
# source tree. Never run at build time; each browser test runs it first.
# Prints the directory holding node_modules.
set -euo pipefail
dir="${AETHER_CONSOLE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aether-console-tests}"
version="24.43.1"
mkdir -p "$dir"
# The browser tests run in parallel and each calls this script: one installs
# while the others wait (on a fresh machine, two npm installs into the same
# directory break each other: ENOTEMPTY, a half-written package).
exec 9>"$dir/.install.lock"
flock 9
if [ ! -f "$dir/node_modules/puppeteer-core/package.json" ] ||
   ! grep -q "\"version\": \"$version\"" "$dir/node_modules/puppeteer-core/package.json"; then
  command -v npm >/dev/null || { echo "console tests: npm is missing (scripts/deps.sh installs it)" >&2; exit 1; }
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "puppeteer-core@$version" >&2
fi
echo "$dir"
