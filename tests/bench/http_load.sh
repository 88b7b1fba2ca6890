#!/usr/bin/env bash
# HTTP load benchmarks against a real aether-host, each beside its baseline in
# the same run, driven by `aether bench` (closed loop, keep-alive):
#  1. memory store, 8 and 256 connections, against nginx (one worker)
#     returning a fixed reply of the same size (goal >= 0.5x); wrk drives both
#     once with 8 connections to cross-check the load generator;
#  2. the embedded default (sqlite, synchronous=full), 64 connections, against
#     the in-process runtime on the same store and load (goal >= 0.8x), and
#     its p99 against the p99 of raw SQLite committing the same rows 64 to a
#     transaction (goal <= 3x); the same with 1,000 connections (raw: 1,000
#     rows to a transaction), none timing out.
# nginx and wrk come from `scripts/deps.sh --bench`; without them their parts
# are skipped with a message.
# Usage: tests/bench/http_load.sh BUILD_DIR   (BENCH_SECONDS, default 5)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${BENCH_SECONDS:-5}
cli=$build/host/aether
work=$(mktemp -d /tmp/aether-http-load-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# field JSON NAME: a number from aether bench's one-line JSON report.
field() { grep -o "\"$2\":[0-9.e+-]*" <<<"$1" | head -1 | cut -d: -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_host NAME CONFIG [ENV...]: starts aether-host, waits for its port,
# sets HOST_URL.
start_host() {
  local name=$1 config=$2
  shift 2
  env "$@" "$build/host/aether-host" --config "$config" >"$work/$name.log" 2>&1 &
  pids+=($!)
  HOST_PID=$!
  for _ in $(seq 300); do
    if HOST_URL=$(grep -o 'listening on http://[0-9.:]*' "$work/$name.log" | head -1 | sed 's/listening on //'); then
      [ -n "$HOST_URL" ] && return 0
    fi
    sleep 0.1
  done
  echo "http_load: $name did not start:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

stop_last() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

# bench URL CLIENTS: aether bench's JSON report (Counter/Increment, 1000 actors).
bench() {
  "$cli" --url "$1" bench --clients "$2" --actors 1000 --duration "${secs}s" --json --no-progress
}

report() {  # LABEL JSON
  printf '  %-44s %8.0f commands/s  p50 %7.2f ms  p99 %7.2f ms  max %8.2f ms  sent %s errors %s\n' "$1" \
    "$(field "$2" commands_per_second)" "$(field "$2" p50)" "$(field "$2" p99)" "$(field "$2" max)" \
    "$(field "$2" sent)" "$(field "$2" errors)"
}

memory_vs_nginx() {
  local config=$work/memory.yaml
  cat >"$config" <<EOF
node: { data_dir: $work/memory }
store: { backend: memory }
plugins: { dir: $build/plugins, list: [counter] }
actors: { snapshot: { every: 0 } }
api: { http: { listen: "127.0.0.1:0", max_connections: 4096 } }
EOF
  start_host memory "$config"
  local aether_url=$HOST_URL
  # The reply nginx serves: one of aether's own replies (same size).
  local reply
  reply=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"command":"Increment","payload":{"by":1}}' \
    "$aether_url/v1/default/actors/Counter/bench-0/commands")
  if ! command -v nginx >/dev/null; then
    echo "  nginx not installed (scripts/deps.sh --bench): HTTP vs nginx skipped"
    for c in 8 256; do report "aether HTTP, memory, $c connections" "$(bench "$aether_url" $c)"; done
    stop_last
    return
  fi
  local port
  port=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '${reply//\'/}'; }
  }
}
EOF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
  pids+=($!)
  local nginx_pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  local nginx_url=http://127.0.0.1:$port
  echo "  reply of ${#reply} bytes from both"
  for c in 8 256; do
    local a n c0 c1 c2
    c0=$(cpu_seconds "$HOST_PID")
    a=$(bench "$aether_url" $c)
    c1=$(cpu_seconds "$HOST_PID")
    c2=$(cpu_seconds "$nginx_pid")
    n=$(bench "$nginx_url" $c)
    report "aether HTTP, memory store, $c connections" "$a"
    report "nginx fixed reply, $c connections" "$n"
    awk -v a="$(field "$a" ok)" -v n="$(field "$n" sent)" -v ca="$(awk -v x="$c1" -v y="$c0" 'BEGIN{print x-y}')" \
      -v cn="$(awk -v x="$(cpu_seconds "$nginx_pid")" -v y="$c2" 'BEGIN{print x-y}')" \
      'BEGIN { printf "  server CPU per request: aether %.1f us, nginx %.1f us\n", ca * 1e6 / (a > 0 ? a : 1), cn * 1e6 / (n > 0 ? n : 1) }'
    echo "  => aether / nginx, $c connections: $(ratio "$(field "$a" commands_per_second)" "$(field "$n" commands_per_second)") (goal >= 0.5x)"
  done
  wrk_cross_check "$aether_url" "$nginx_url"
  stop_last  # nginx
  stop_last  # host
}

wrk_cross_check() {
  if ! command -v wrk >/dev/null; then
    echo "  wrk not installed (scripts/deps.sh --bench): cross-check skipped"
    return
  fi
  cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"command":"Increment","payload":{"by":1}}'
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/default/actors/Counter/w" .. (n % 1000) .. "/commands")
end
EOF
  local a n
  a=$(wrk -t2 -c8 -d"${secs}s" --latency -s "$work/post.lua" "$1")
  n=$(wrk -t2 -c8 -d"${secs}s" --latency -s "$work/post.lua" "$2")
  local ar nr
  ar=$(awk '/Requests\/sec/ {print $2}' <<<"$a")
  nr=$(awk '/Requests\/sec/ {print $2}' <<<"$n")
  echo "  wrk -t2 -c8: aether $ar req/s (p99 $(awk '/ 99%/ {print $2}' <<<"$a"), non-2xx: $(grep -c 'Non-2xx' <<<"$a")), nginx $nr req/s (p99 $(awk '/ 99%/ {print $2}' <<<"$n"))"
  echo "  => wrk: aether / nginx, 8 connections: $(ratio "$ar" "$nr")"
}

# sqlite_at CLIENTS: the HTTP run and its baselines at that load.
sqlite_at() {
  local c=$1 h b
  h=$(bench "$HOST_URL" "$c")
  report "aether HTTP, sqlite full, $c connections" "$h"
  b=$("$build/tests/bench/sqlite_latency_bench" "$c" "$secs")
  echo "  baselines at $c: $b"
  local rt_cps raw_p99
  rt_cps=$(grep -o 'inprocess_cps=[0-9.]*' <<<"$b" | cut -d= -f2)
  raw_p99=$(grep -o 'raw_p99_ms=[0-9.]*' <<<"$b" | cut -d= -f2)
  echo "  => $c connections: HTTP / in-process (throughput): $(ratio "$(field "$h" commands_per_second)" "$rt_cps") (goal >= 0.8x)"
  echo "  => $c connections: HTTP p99 / raw SQLite $c-row commit p99: $(ratio "$(field "$h" p99)" "$raw_p99") (goal <= 3x)"
  echo "  => $c connections: $(field "$h" errors) errors $(grep -o '"errors_by_code":{[^}]*}' <<<"$h")"
}

sqlite_default() {
  start_host sqlite "$src/config/aether.yaml" AETHER_DATA="$work/sqlite" AETHER_LISTEN=127.0.0.1:0 \
    AETHER_PLUGIN_DIR="$build/plugins"
  sqlite_at 64
  sqlite_at 1000
  stop_last
}

echo "--- HTTP, memory store: aether vs nginx (${secs}s each)"
memory_vs_nginx
echo "--- HTTP, embedded default (sqlite, synchronous=full) (${secs}s each)"
sqlite_default
