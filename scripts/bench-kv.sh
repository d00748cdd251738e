#!/usr/bin/env bash
# Durable SET and GET throughput and latency of a 3-node kv cluster on loopback, and of
# a single redis-server with the same durability (appendonly yes, appendfsync always),
# measured by redis-benchmark at 1, 16 and 64 clients. Prints a Markdown table.
#
#   scripts/bench-kv.sh [requests per run, default 20000]
#
# It installs redis-tools and redis-server with apt-get if they are missing, builds
# the kv binary in release mode, and cleans up its processes and directories.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${1:-20000}"

if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
  echo "installing redis-tools and redis-server" >&2
  (apt-get install -y -qq redis-tools redis-server >/dev/null 2>&1 ||
    (apt-get update -qq >/dev/null && apt-get install -y -qq redis-tools redis-server >/dev/null))
fi
cargo build --release -q -p kv-server
KV=target/release/kv

WORK="$(mktemp -d /tmp/kv-bench.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port); P3=$(free_port); PR=$(free_port)
NODES=(--node "127.0.0.1:$P1:1" --node "127.0.0.1:$P2:2" --node "127.0.0.1:$P3:3")
for id in 1 2 3; do
  "$KV" server --id "$id" "${NODES[@]}" --data-dir "$WORK/node-$id" >"$WORK/node-$id.log" 2>&1 &
  PIDS+=($!)
done
redis-server --port "$PR" --dir "$WORK" --appendonly yes --appendfsync always --save "" \
  --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

# The leader's port: redis-benchmark does not follow MOVED, so it talks to the leader.
LEADER=""
for _ in $(seq 1 100); do
  LEADER=$("$KV" client --node "127.0.0.1:$P1" --timeout 1 info 2>/dev/null | sed -n 's/^leader_address:127.0.0.1:\([0-9]*\)$/\1/p' || true)
  [ -n "$LEADER" ] && break
  sleep 0.1
done
[ -n "$LEADER" ] || { echo "no leader elected; logs in $WORK" >&2; cat "$WORK"/node-*.log >&2; exit 1; }

# One redis-benchmark run: prints "rps p50 p99" for the given test.
measure() {
  local port=$1 test=$2 clients=$3
  redis-benchmark -p "$port" -t "$test" -n "$REQUESTS" -c "$clients" -r 100000 -d 16 --csv 2>/dev/null |
    awk -F, 'NR==2 { gsub(/"/, ""); print $2, $5, $7 }'
}

echo "| command | clients | kv cluster (3 nodes) req/s | p50 ms | p99 ms | redis appendfsync always req/s | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for test in set get; do
  for clients in 1 16 64; do
    read -r kv_rps kv_p50 kv_p99 <<<"$(measure "$LEADER" "$test" "$clients")"
    read -r redis_rps redis_p50 redis_p99 <<<"$(measure "$PR" "$test" "$clients")"
    echo "| ${test^^} | $clients | $kv_rps | $kv_p50 | $kv_p99 | $redis_rps | $redis_p50 | $redis_p99 |"
  done
done
