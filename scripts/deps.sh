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
  libnats-dev libcpp-httplib-dev libcli11-dev prometheus-cpp-dev
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

# nats-server 2.10 or later. Debian 12 ships 2.9.10, whose replicated streams
# can lose a message that their leader acknowledged when a paused leader
# comes back (two replicas then hold different messages under one sequence:
# BENCHMARKS.md, "Cluster availability under NATS faults"), and which has
# CVE-2025-30215. Debian 13's package (one static binary; it depends on libc6
# and adduser only) is fetched with apt from Debian's trixie suite, its
# signature checked against the machine's Debian archive keyring, without
# adding trixie to the machine's sources; then installed over 2.9.10.
# The installed package's version (its binary is in /usr/sbin, which a
# user's PATH may lack), else what a nats-server on the PATH says of itself.
nats_server_version() {
  if dpkg-query -W -f='${Status}' nats-server 2>/dev/null | grep -q "install ok installed"; then
    dpkg-query -W -f='${Version}' nats-server
  else
    nats-server --version 2>/dev/null | sed -n 's/^nats-server: v//p'
  fi
}

nats_server_ok() {
  local v
  v=$(nats_server_version)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 2.10
}

install_nats_server() {
  if nats_server_ok; then return 0; fi
  # A machine on Debian 13 or later has it in its own suite.
  local candidate
  candidate=$(apt-cache policy nats-server 2>/dev/null | sed -n 's/^ *Candidate: //p')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && dpkg --compare-versions "$candidate" ge 2.10; then
    "${apt[@]}" install -y -qq --no-install-recommends nats-server
    nats_server_ok && return 0
  fi
  tmp=$(mktemp -d)
  trap '$sudo rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$tmp/sources.list"
  local apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/nonexistent
                  -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
  echo "deps: fetching nats-server 2.10 from Debian 13 (trixie); installed here: $(nats_server_version || true)"
  "${apt[@]}" -qq "${apt_opts[@]}" update
  (cd "$tmp" && "${apt[@]}" -qq "${apt_opts[@]}" download nats-server)
  # Keeps an operator's edited /etc/nats-server.conf without asking.
  "${apt[@]}" install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "$tmp"/nats-server_*.deb
  nats_server_ok || { echo "deps: nats-server 2.10 or later is needed; installed: $(nats_server_version || true)" >&2; return 1; }
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ] && nats_server_ok; then
  echo "deps: all ${#packages[@]} packages present; nats-server $(nats_server_version)"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]} nats-server (2.10 or later)" >&2; exit 1; }
  sudo="sudo"
fi
# sudo resets the environment: the frontend is passed through env.
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi
install_nats_server
