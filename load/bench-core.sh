#!/usr/bin/env bash
# Reproduces the single-node figures in BENCHMARKS.md: a fresh release server
# pinned to core 0, the load tool pinned to core 1, one scenario per run.
# Usage: bash load/bench-core.sh [clients symbols per_client rate seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p roomcast -p roomcast-load
clients=${1:-2000} symbols=${2:-20} per_client=${3:-3} rate=${4:-200} seconds=${5:-20}
port=4100
taskset -c 0 ./target/release/roomcast --listen 127.0.0.1:$port --publish-key bench --max-connections-per-ip 0 --log-format json >/tmp/roomcast-bench.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf 127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
cpu_ticks() { awk '{print $14+$15}' /proc/$server/stat; }
before=$(cpu_ticks); started=$(date +%s.%N)
taskset -c 1 ./target/release/roomcast-load --url http://127.0.0.1:$port --key bench --clients "$clients" \
  --symbols "$symbols" --per-client "$per_client" --rate "$rate" --seconds "$seconds" --server-pid $server \
  2>/tmp/roomcast-load-progress.log
after=$(cpu_ticks); ended=$(date +%s.%N)
echo "server_cpu_percent_of_one_core: $(echo "($after - $before) / ($ended - $started)" | bc -l | cut -c1-5)"
curl -s 127.0.0.1:$port/metrics | grep -E '^roomcast_batch_flush_seconds_(sum|count)|^roomcast_publish_to_emit_seconds_(sum|count)|^roomcast_batch_flush_seconds_bucket\{le="0.00(05|1|25)"\}'
