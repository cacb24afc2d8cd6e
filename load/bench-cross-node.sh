#!/usr/bin/env bash
# Cross-node delivery: two roomcast nodes joined by a private redis-server (all
# on core 0), clients on node B, publisher on node A, load tool on core 1.
# Usage: bash load/bench-cross-node.sh [clients symbols per_client rate seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p roomcast -p roomcast-load
clients=${1:-500} symbols=${2:-20} per_client=${3:-1} rate=${4:-200} seconds=${5:-20}
redis_port=4190
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no >/tmp/roomcast-bench-redis.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p $redis_port ping >/dev/null 2>&1 && break; sleep 0.1; done
for node in a:4101 b:4102; do
  taskset -c 0 ./target/release/roomcast --listen 127.0.0.1:${node#*:} --node-id ${node%%:*} --publish-key bench --max-connections-per-ip 0 \
    --redis-url redis://127.0.0.1:$redis_port --log-format json >/tmp/roomcast-bench-${node%%:*}.log 2>&1 &
  pids+=($!)
done
for port in 4101 4102; do for _ in $(seq 50); do curl -sf 127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done; done
taskset -c 1 ./target/release/roomcast-load --url http://127.0.0.1:4102 --publish-url http://127.0.0.1:4101 --key bench \
  --clients "$clients" --symbols "$symbols" --per-client "$per_client" --rate "$rate" --seconds "$seconds" \
  2>/tmp/roomcast-load-progress.log
