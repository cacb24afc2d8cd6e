#!/usr/bin/env bash
# Before/after for a change on a hot path: the latency and fanout scenarios of
# bench.sh against two roomcast binaries in one run, alternating, server
# pinned to core 0 and load tool to core 1. Bounded: every run stops by itself.
#   bash load/bench-compare.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
# Writes load/results/<date>-compare.jsonl (server = before|after) and prints
# the medians per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
before_bin=$(realpath "$1") after_bin=$(realpath "$2") rounds=${3:-2}
cargo build --release --quiet -p roomcast-load
out="load/results/$(date -u +%Y-%m-%d)-compare.jsonl"
: > "$out"
LOAD=./target/release/roomcast-load
KEY=bench
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "no server on $1" >&2; return 1; }

# start BINARY PORT -> sets $pid (newer binaries need the per-address cap off for 2,000 loopback clients)
start() {
  local extra=()
  "$1" --help | grep -q -- --max-connections-per-ip && extra=(--max-connections-per-ip 0)
  taskset -c 0 "$1" --listen 127.0.0.1:$2 --publish-key $KEY --log-format json --rate-limit '*=1000/s' "${extra[@]}" >/dev/null 2>&1 &
  pid=$!
  wait_http "$2"
}

run() {
  local scenario=$1 server=$2 label=$3; shift 4
  echo "== $scenario $server $label" >&2
  local json
  json=$(taskset -c 1 $LOAD --key $KEY "$@" 2>/dev/null)
  python3 load/record.py "$out" "$scenario" "$server" "$label" "$json"
}

for round in $(seq "$rounds"); do
  for side in before after; do
    bin=$before_bin; [ "$side" = after ] && bin=$after_bin
    port=4500
    start "$bin" $port
    run latency $side "500 clients, 200 prices/s" -- --url http://127.0.0.1:$port --clients 500 --symbols 20 --per-client 1 --rate 200 --seconds 15 --server-pid $pid || true
    for rate in 2000 3000 4000 5000 6000 7000 8000 10000; do
      run fanout $side "$rate prices/s" -- --url http://127.0.0.1:$port --clients 2000 --symbols 20 --per-client 1 \
        --rate $rate --per-request 10 --publishers 16 --seconds 6 || break
    done
    kill $pid; wait $pid 2>/dev/null || true; pid=
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for side in ("before", "after"):
    lat = [r for r in runs if r["server"] == side and r["scenario"] == "latency"]
    p50 = statistics.median(r["price_update"]["latency_ms"]["p50"] for r in lat)
    p99 = statistics.median(r["price_update"]["latency_ms"]["p99"] for r in lat)
    fan = [r for r in runs if r["server"] == side and r["scenario"] == "fanout" and r["price_update"]["loss"] == 0]
    best = max((r["price_update"]["per_sec"] for r in fan), default=0)
    print(f"{side:6}  latency p50 {p50:.2f} ms  p99 {p99:.2f} ms (median of {len(lat)})  fanout loss-free max {best:,.0f} deliveries/s")
PY
echo "results: $out" >&2
