#!/usr/bin/env bash
# Redis CPU per published price in a 3-node roomcast cluster on one Redis:
# publishes RATE prices/s for SECONDS through node 1 (2,000 clients over the
# three nodes, 20 symbols), reads redis-server's used CPU (INFO cpu) before and
# after, and prints CPU-seconds per second and microseconds per published
# price and per fanout message. Bounded; everything it starts it stops.
#   bash load/redis-cost.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-2000} seconds=${2:-10}
cargo build --release --quiet -p roomcast -p roomcast-load
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
redis-server --port 4590 --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p 4590 ping >/dev/null 2>&1 && break; sleep 0.1; done
for i in 1 2 3; do
  ./target/release/roomcast --listen 127.0.0.1:$((4600 + i)) --publish-key bench --node-id n$i --max-connections-per-ip 0 \
    --log-format json --rate-limit '*=1000/s' --redis-url redis://127.0.0.1:4590 >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf 127.0.0.1:$((4600 + i))/healthz >/dev/null && break; sleep 0.1; done
done
cpu() { redis-cli -p 4590 info cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {print s}'; }
published() { redis-cli -p 4590 info stats | awk -F: '/^total_commands_processed:/ {print $2+0}'; }
before=$(cpu); cmds_before=$(published)
./target/release/roomcast-load --key bench --url http://127.0.0.1:4601,http://127.0.0.1:4602,http://127.0.0.1:4603 \
  --publish-url http://127.0.0.1:4601 --clients 2000 --symbols 20 --per-client 1 --rate "$rate" --per-request 10 \
  --publishers 16 --seconds "$seconds" > /tmp/redis-cost.json 2>/dev/null
after=$(cpu); cmds_after=$(published)
python3 - "$before" "$after" "$cmds_before" "$cmds_after" "$rate" "$seconds" <<'PY'
import json, sys
before, after, c0, c1, rate, seconds = map(float, sys.argv[1:])
run = json.load(open("/tmp/redis-cost.json"))
prices = run["price_update"]["expected"] / 100  # 100 subscribers per symbol
cpu = after - before
print(f"published {prices:.0f} prices ({rate:.0f}/s for {seconds:.0f} s), delivered {run['price_update']['received']}/{run['price_update']['expected']}")
print(f"redis CPU {cpu:.2f} s = {cpu / seconds * 100:.1f} % of a core; {cpu / prices * 1e6:.1f} us per published price")
print(f"redis commands {c1 - c0:.0f} ({(c1 - c0) / seconds:.0f}/s); {cpu / max(c1 - c0, 1) * 1e6:.1f} us per command")
PY
