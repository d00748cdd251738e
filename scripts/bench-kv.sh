#!/usr/bin/env bash
# Durable SET and GET throughput and latency of a 3-node kv cluster on loopback, and of
# a single redis-server with the same durability (appendonly yes, appendfsync always),
# measured by redis-benchmark in the same run on the same machine: SET and GET at 1,
# 16, 64 and 256 clients, and SET pipelined 16 deep (-P 16) at 64 clients; 16-byte
# values over 100,000 random keys. Prints a Markdown table with the ratio kv/Redis and
# each process's CPU seconds per 1,000 requests (the kv leader, each kv follower on
# average, Redis).
#
#   scripts/bench-kv.sh [requests per run, default 20000]
#   KV_BIN=/path/to/kv scripts/bench-kv.sh    (measure another build)
#   KV_TLS=1 scripts/bench-kv.sh              (both over TLS, with the test certificates
#                                              in kv-server/tests/tls: kv's clients and
#                                              peer links, Redis's tls-port)
#
# It installs redis-tools and redis-server with apt-get if they are missing, builds
# the kv binary in release mode, and cleans up its processes and directories. Every
# process listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${1:-20000}"

if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
  echo "installing redis-tools and redis-server" >&2
  (apt-get install -y -qq redis-tools redis-server >/dev/null 2>&1 ||
    (apt-get update -qq >/dev/null && apt-get install -y -qq redis-tools redis-server >/dev/null))
fi
# KV_BIN=path runs another build of kv (say, the previous commit's) instead.
if [ -n "${KV_BIN:-}" ]; then
  KV="$KV_BIN"
else
  cargo build --release -q -p kv-server
  KV=target/release/kv
fi

WORK="$(mktemp -d /tmp/kv-bench.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

TLS_DIR="$PWD/kv-server/tests/tls"
KV_TLS_FLAGS=()
CLIENT_TLS=()
REDIS_LISTEN=(--port)
if [ "${KV_TLS:-0}" = 1 ]; then
  KV_TLS_FLAGS=(--tls-cert "$TLS_DIR/node.pem" --tls-key "$TLS_DIR/node-key.pem" --tls-ca "$TLS_DIR/ca.pem")
  CLIENT_TLS=(--tls --cacert "$TLS_DIR/ca.pem")
  REDIS_LISTEN=(--port 0 --tls-cert-file "$TLS_DIR/node.pem" --tls-key-file "$TLS_DIR/node-key.pem"
    --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no --tls-port)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port); P3=$(free_port); PR=$(free_port)
NODES=(--node "127.0.0.1:$P1:1" --node "127.0.0.1:$P2:2" --node "127.0.0.1:$P3:3")
for id in 1 2 3; do
  "$KV" server --id "$id" "${NODES[@]}" "${KV_TLS_FLAGS[@]}" --data-dir "$WORK/node-$id" >"$WORK/node-$id.log" 2>&1 &
  PIDS+=($!)
done
redis-server "${REDIS_LISTEN[@]}" "$PR" --dir "$WORK" --appendonly yes --appendfsync always --save "" \
  --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

# The leader's port: redis-benchmark does not follow MOVED, so it talks to the leader.
LEADER=""
for _ in $(seq 1 100); do
  KV_CLIENT_TLS=()
  [ "${KV_TLS:-0}" = 1 ] && KV_CLIENT_TLS=(--tls-ca "$TLS_DIR/ca.pem")
  LEADER=$("$KV" client --node "127.0.0.1:$P1" "${KV_CLIENT_TLS[@]}" --timeout 1 info 2>/dev/null | sed -n 's/^leader_address:127.0.0.1:\([0-9]*\)$/\1/p' || true)
  [ -n "$LEADER" ] && break
  sleep 0.1
done
[ -n "$LEADER" ] || { echo "no leader elected; logs in $WORK" >&2; cat "$WORK"/node-*.log >&2; exit 1; }

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.4f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# One redis-benchmark run against `port`: prints "rps p99" for the given test.
measure() {
  local port=$1 test=$2 clients=$3 pipeline=$4
  redis-benchmark -p "$port" "${CLIENT_TLS[@]}" -t "$test" -n "$REQUESTS" -c "$clients" -P "$pipeline" -r 100000 -d 16 --csv 2>/dev/null |
    awk -F, 'NR==2 { gsub(/"/, ""); print $2, $7 }'
}

# The kv pids: the leader's first, then the followers'.
KV_PIDS=("${PIDS[@]:0:3}")
REDIS_PID="${PIDS[3]}"
LEADER_PID=""
for index in 0 1 2; do
  port_var="P$((index + 1))"
  [ "${!port_var}" = "$LEADER" ] && LEADER_PID="${KV_PIDS[$index]}"
done
FOLLOWER_PIDS=()
for pid in "${KV_PIDS[@]}"; do [ "$pid" != "$LEADER_PID" ] && FOLLOWER_PIDS+=("$pid"); done

per_thousand() { awk -v used="$1" -v n="$REQUESTS" 'BEGIN { printf "%.3f", used * 1000 / n }'; }

echo "| command | clients | kv cluster (3 nodes) req/s | p99 ms | Redis (appendfsync always) req/s | p99 ms | kv / Redis | kv leader CPU s per 1k | kv follower CPU s per 1k | Redis CPU s per 1k |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for run in "set 1 1" "set 16 1" "set 64 1" "set 256 1" "set 64 16" "get 1 1" "get 16 1" "get 64 1" "get 256 1"; do
  read -r test clients pipeline <<<"$run"
  leader_before=$(cpu_seconds "$LEADER_PID")
  followers_before=$(for pid in "${FOLLOWER_PIDS[@]}"; do cpu_seconds "$pid"; echo; done | awk '{ s += $1 } END { print s }')
  read -r kv_rps kv_p99 <<<"$(measure "$LEADER" "$test" "$clients" "$pipeline")"
  leader_used=$(awk -v a="$(cpu_seconds "$LEADER_PID")" -v b="$leader_before" 'BEGIN { print a - b }')
  followers_after=$(for pid in "${FOLLOWER_PIDS[@]}"; do cpu_seconds "$pid"; echo; done | awk '{ s += $1 } END { print s }')
  follower_used=$(awk -v a="$followers_after" -v b="$followers_before" -v n="${#FOLLOWER_PIDS[@]}" 'BEGIN { print (a - b) / n }')
  redis_before=$(cpu_seconds "$REDIS_PID")
  read -r redis_rps redis_p99 <<<"$(measure "$PR" "$test" "$clients" "$pipeline")"
  redis_used=$(awk -v a="$(cpu_seconds "$REDIS_PID")" -v b="$redis_before" 'BEGIN { print a - b }')
  ratio=$(awk -v a="$kv_rps" -v b="$redis_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  label="${test^^}"
  [ "$pipeline" -gt 1 ] && label="$label -P $pipeline"
  echo "| $label | $clients | $kv_rps | $kv_p99 | $redis_rps | $redis_p99 | $ratio | $(per_thousand "$leader_used") | $(per_thousand "$follower_used") | $(per_thousand "$redis_used") |"
done
