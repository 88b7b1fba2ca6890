#!/usr/bin/env bash
# Installs the Debian packages aether needs to build, test and run.
# Idempotent: installs only what is missing. Needs root (or sudo) on Debian 12.
# Usage: deps.sh [--bench]   (--bench: also nginx-light and wrk, the baseline
# server and the cross-check load generator of `make bench`)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang
  libboost-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsqlite3-dev
  libnats-dev nats-server libcpp-httplib-dev libcli11-dev prometheus-cpp-dev
  libssl-dev zlib1g-dev libbrotli-dev curl ca-certificates
  # make check-asan / check-tsan (GCC's runtimes), make fuzz (clang's
  # libFuzzer and sanitizer runtimes), symbolized sanitizer reports
  libasan8 libubsan1 libtsan2 libclang-rt-14-dev llvm
  # the web console's browser tests (tests/console): a headless Chromium
  # driven by puppeteer-core, which the test setup installs with npm
  chromium
)
# Node.js and npm: Debian's packages unless the machine already has node and
# npm from elsewhere (e.g. NodeSource's nodejs, which ships npm and conflicts
# with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

if [ "${1:-}" = "--bench" ]; then
  packages+=(nginx-light wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
