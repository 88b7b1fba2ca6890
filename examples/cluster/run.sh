#!/usr/bin/env bash
# Starts a 3-server NATS cluster and 3 aether-host nodes on loopback, prints
# how to reach them, and stops everything on Ctrl-C.
#
#   examples/cluster/run.sh            (from the repository root, after make build)
#
# NATS clients: 4222, 4223, 4224. HTTP: 8081, 8082, 8083. Data under
# ${CLUSTER_DATA:-./data/cluster} (removed with --clean).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${CLUSTER_DATA:-$root/data/cluster}
host=$root/build/host/aether-host
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

routes="nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224"
for i in 1 2 3; do
  mkdir -p "$data/nats-$i"
  nats-server -js -sd "$data/nats-$i" -n "s$i" -a 127.0.0.1 -p $((4221 + i)) \
    --cluster_name aether --cluster "nats://127.0.0.1:$((6221 + i))" --routes "$routes" \
    >"$data/nats-$i.log" 2>&1 &
  pids+=($!)
done

# JetStream needs its meta leader before the hosts can create streams.
for _ in $(seq 1 100); do
  if grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" "$data"/nats-*.log 2>/dev/null; then
    break
  fi
  sleep 0.2
done

for i in 1 2 3; do
  AETHER_NODE_ID=node-$i AETHER_LISTEN=127.0.0.1:$((8080 + i)) NATS_URL=nats://127.0.0.1:$((4221 + i)) \
    AETHER_PLUGIN_DIR="$root/build/plugins" \
    "$host" --config "$root/config/cluster.yaml" >"$data/node-$i.log" 2>&1 &
  pids+=($!)
done

echo "NATS: nats://127.0.0.1:4222,4223,4224   hosts: http://127.0.0.1:8081 8082 8083"
echo "logs: $data/*.log"
echo "try:  build/host/aether --url http://127.0.0.1:8081 cluster"
echo "      build/host/aether --url http://127.0.0.1:8082 send Counter c-1 Increment '{\"by\":1}'"
echo "Ctrl-C stops everything."
wait
