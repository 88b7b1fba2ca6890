#!/usr/bin/env bash
# Runs the README quickstart as written: starts aether-host on the embedded
# default config (data in a temp dir, a free port), then runs every `$ `
# command of the block after `<!-- quickstart -->` from the repository root
# and compares what it prints with the README. The only change made to the
# commands is the host's address (127.0.0.1:8080 -> the port it got).
# Usage: readme_quickstart.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$1 build=$2
work=$(mktemp -d)
trap 'kill $host_pid 2>/dev/null; wait $host_pid 2>/dev/null; rm -rf "$work"' EXIT
cd "$src"

AETHER_DATA=$work/data AETHER_LISTEN=127.0.0.1:0 AETHER_PLUGIN_DIR=$build/plugins \
  "$build/host/aether-host" --config config/aether.yaml >"$work/host.log" 2>&1 &
host_pid=$!
# Up to 30 s: a sanitizer build under ctest -j2 starts slowly.
for _ in $(seq 1 600); do
  addr=$(grep -o 'listening on http://[0-9.:]*' "$work/host.log" | sed 's|listening on http://||')
  [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "$addr" ] || { echo "FAILED: host did not start"; cat "$work/host.log"; exit 1; }
export AETHER_URL=http://$addr

# Split the block into commands and expected outputs.
awk '/<!-- quickstart -->/{f=1; next} f && /^```console/{in_block=1; next} in_block && /^```/{exit} in_block{print}' \
  README.md >"$work/block"
[ -s "$work/block" ] || { echo "FAILED: no quickstart block in README.md"; exit 1; }

# One shell runs the commands in order (so `echo $?` sees the command
# before it); each output ends with a marker line.
cmds=() expects=() expected=""
while IFS= read -r line; do
  if [[ $line == '$ '* ]]; then
    [ ${#cmds[@]} -gt 0 ] && expects+=("$expected")
    cmds+=("${line#\$ }")
    expected=""
  else
    expected+=${expected:+$'\n'}$line
  fi
done <"$work/block"
expects+=("$expected")
{
  echo "cd '$src'; __rc=0"
  for c in "${cmds[@]}"; do
    c=${c//127.0.0.1:8080/$addr}
    c=${c//.\/build\/host\//$build/host/}
    printf '(exit $__rc); %s 2>&1\n__rc=$?\nprintf "\\n<<<END>>>\\n"\n' "$c"
  done
} >"$work/run.sh"
bash "$work/run.sh" >"$work/out" 2>&1
failed=0
for i in "${!cmds[@]}"; do
  actual=$(awk -v want=$((i + 1)) 'BEGIN{n=1} /^<<<END>>>$/{n++; next} n==want{print}' "$work/out")
  actual=${actual%$'\n'}
  if [ "$actual" == "${expects[$i]}" ]; then
    echo "ok: ${cmds[$i]}"
  else
    echo "FAILED: ${cmds[$i]}"
    diff <(printf '%s\n' "${expects[$i]}") <(printf '%s\n' "$actual") | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done
echo "${#cmds[@]} commands, $failed failed"
[ "$failed" -eq 0 ] && [ "${#cmds[@]}" -ge 5 ]
