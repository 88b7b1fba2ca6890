#!/usr/bin/env bash
# Starts a 3-server NATS cluster and 3 aether-host nodes on loopback, prints
# how to reach them, and stops everything on Ctrl-C.
#
#   examples/cluster/run.sh            (from the repository root, after make build)
#
# NATS clients: 4222, 4223, 4224 (routes 6222..6224). HTTP: 8081, 8082, 8083.
# Other ports: NATS_PORT, ROUTE_PORT, HTTP_PORT set the first of each three.
# Another build directory (e.g. build-asan): AETHER_BUILD_DIR.
# Data under ${CLUSTER_DATA:-./data/cluster} (removed with --clean).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${CLUSTER_DATA:-$root/data/cluster}
build=${AETHER_BUILD_DIR:-$root/build}
host=$build/host/aether-host
[ -x "$host" ] || { echo "build first: make build" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "nats-server is not installed: make deps" >&2; exit 1; }
if [ "${1:-}" = "--clean" ]; then rm -rf "$data"; fi
mkdir -p "$data"

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo "stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

nats_port=${NATS_PORT:-4222}
route_port=${ROUTE_PORT:-6222}
http_port=${HTTP_PORT:-8081}
routes=""
for i in 0 1 2; do routes+="${routes:+,}nats://127.0.0.1:$((route_port + i))"; done
for i in 1 2 3; do
  mkdir -p "$data/nats-$i"
  nats-server -js -sd "$data/nats-$i" -n "s$i" -a 127.0.0.1 -p $((nats_port + i - 1)) \
    --cluster_name aether --cluster "nats://127.0.0.1:$((route_port + i - 1))" --routes "$routes" \
    >"$data/nats-$i.log" 2>&1 &
  pids+=($!)
done

# Waits (bounded) until the process with pid $1 accepts connections on port
# $2; if it exits first or never listens, shows its log and stops everything.
await_port() {
  local pid=$1 port=$2 name=$3 log=$4
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited during start; the end of $log:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$name did not listen on 127.0.0.1:$port within 30 s; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
}
for i in 1 2 3; do await_port "${pids[$((i - 1))]}" $((nats_port + i - 1)) "nats-server s$i" "$data/nats-$i.log"; done

# JetStream needs its meta leader before the hosts can create streams.
for _ in $(seq 1 100); do
  if grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" "$data"/nats-*.log 2>/dev/null; then
    break
  fi
  sleep 0.2
done

for i in 1 2 3; do
  AETHER_NODE_ID=node-$i AETHER_LISTEN=127.0.0.1:$((http_port + i - 1)) NATS_URL=nats://127.0.0.1:$((nats_port + i - 1)) \
    AETHER_PLUGIN_DIR="$build/plugins" \
    "$host" --config "$root/config/cluster.yaml" >"$data/node-$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do await_port "${pids[$((i + 2))]}" $((http_port + i - 1)) "aether-host node-$i" "$data/node-$i.log"; done

echo "NATS: nats://127.0.0.1:$nats_port,$((nats_port + 1)),$((nats_port + 2))"
echo "hosts: http://127.0.0.1:$http_port $((http_port + 1)) $((http_port + 2))"
echo "logs: $data/*.log"
echo "try:  build/host/aether --url http://127.0.0.1:$http_port cluster"
echo "      build/host/aether --url http://127.0.0.1:$((http_port + 1)) send Counter c-1 Increment '{\"by\":1}'"
echo "Ctrl-C stops everything."
wait
