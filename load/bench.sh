#!/usr/bin/env bash
# Runs every scenario against roomcast and the Node socket.io baseline in one
# go, server pinned to core 0 and load tool to core 1, and writes one JSON
# line per run to load/results/<date>.jsonl; then prints the table for
# BENCHMARKS.md (load/summarize.py). Bounded: every run stops by itself.
#   bash load/bench.sh
# Only some scenarios, or fewer clients (e.g. while developing on a busy
# machine; memory per connection is not CPU-sensitive):
#   SCENARIOS="connections watchlist subscriptions" IDLE_CLIENTS=2000 WATCH_CLIENTS=2000 bash load/bench.sh
#   SCENARIOS=cluster-rc CLUSTER_SECONDS=3 RATES=1000 BENCH_OUT=/tmp/check.jsonl bash load/bench.sh   # one scenario, briefly
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIOS=${SCENARIOS:-${BENCH_ONLY:-"latency fanout churn connections watchlist subscriptions held cluster cluster-rc"}}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
WATCH_CLIENTS=${WATCH_CLIENTS:-5000}
SUB_CLIENTS=${SUB_CLIENTS:-2000}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
cargo build --release --quiet -p roomcast -p roomcast-load -p roomcast-floor
(cd load/baseline && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
out="${BENCH_OUT:-load/results/$(date -u +%Y-%m-%d).jsonl}"
: > "$out"
LOAD=./target/release/roomcast-load
KEY=bench
# Sweep steps of the fanout and cluster scenarios (each stops at its first
# step with loss or a missed rate), and the publisher's concurrent requests:
# enough that the publisher's round trips never set the rate (with 4, a
# cluster sharing one core capped the publisher near 3,000 prices/s).
RATES="${RATES:-250 500 1000 2000 3000 4000 5000 6000 7000 8000 10000}"
CLUSTER_SECONDS=${CLUSTER_SECONDS:-8}
PUBLISHERS=16
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "no server on $1" >&2; return 1; }

# start SERVER PORT [REDIS_PORT or URL] [NODE_ID] -> sets $pid
start() {
  local server=$1 port=$2 redis=${3:-} node=${4:-n1}
  case "$redis" in ""|*://*) ;; *) redis=redis://127.0.0.1:$redis ;; esac
  if [ "$server" = floor ]; then
    taskset -c 0 ./target/release/roomcast-floor --listen 127.0.0.1:$port >/dev/null 2>&1 &
  elif [ "$server" = roomcast ]; then
    taskset -c 0 ./target/release/roomcast --listen 127.0.0.1:$port --publish-key $KEY --node-id "$node" --max-connections-per-ip 0 \
      --log-format json --rate-limit '*=1000/s' ${redis:+--redis-url $redis} >/dev/null 2>&1 &
  else
    env PORT=$port PUBLISH_KEY=$KEY ${redis:+REDIS_URL=$redis} taskset -c 0 node load/baseline/server.js >/dev/null 2>&1 &
  fi
  pid=$!
  pids+=($pid)
  wait_http "$port"
}

stop() { kill "$@" 2>/dev/null || true; for p in "$@"; do wait "$p" 2>/dev/null || true; done; }

# run SCENARIO SERVER LABEL -- load args...   (status 1: loss, failed clients or rate missed)
run() {
  local scenario=$1 server=$2 label=$3; shift 4
  echo "== $scenario $server $label" >&2
  local json
  json=$(taskset -c 1 $LOAD --key $KEY "$@" 2>/dev/null)
  python3 load/record.py "$out" "$scenario" "$server" "$label" "$json"
}

for server in roomcast node; do
  port=4400
  if want latency || want fanout || want churn; then
    start $server $port
    # latency
    want latency && { run latency $server "500 clients, 200 prices/s" -- --url http://127.0.0.1:$port --clients 500 --symbols 20 --per-client 1 --rate 200 --seconds 20 --server-pid $pid || true; }
    # fanout sweep: stop at the first rate with loss or an unreachable rate
    if want fanout; then
      for rate in $RATES; do
        run fanout $server "$rate prices/s" -- --url http://127.0.0.1:$port --clients 2000 --symbols 20 --per-client 1 \
          --rate $rate --per-request 10 --publishers $PUBLISHERS --seconds 8 || break
      done
    fi
    # churn on top of 500 steady clients
    want churn && { run churn $server "200 connects/s" -- --url http://127.0.0.1:$port --clients 500 --symbols 20 --per-client 1 --rate 200 --churn 200 --seconds 15 || true; }
    stop $pid
  fi
done

# Memory per connection, a fresh server for every run, the three servers side
# by side: idle subscribed clients (the floor: bare socketioxide served the same
# way), a watchlist with batches flowing, and 1 / 20 / 200 subscriptions per socket.
for server in roomcast node floor; do
  port=4400
  if want connections; then
    start $server $port
    run connections $server "$IDLE_CLIENTS idle" -- --url http://127.0.0.1:$port --clients $IDLE_CLIENTS --symbols 20 --per-client 1 --rate 0 --seconds 5 --server-pid $pid || true
    stop $pid
  fi
  [ $server = floor ] && continue
  if want watchlist; then
    # 20 of 200 symbols per client (200 distinct watchlists), 20 prices/s: every client gets price:update and price:batch
    start $server $port
    run watchlist $server "$WATCH_CLIENTS x 20 symbols" -- --url http://127.0.0.1:$port --clients $WATCH_CLIENTS --symbols 200 --per-client 20 --rate 20 --seconds 20 --server-pid $pid || true
    stop $pid
  fi
  if want subscriptions; then
    for n in 1 20 200; do
      start $server $port
      run subscriptions $server "$n per socket" -- --url http://127.0.0.1:$port --clients $SUB_CLIENTS --symbols 1000 --per-client $n --rate 0 --seconds 3 --server-pid $pid || true
      stop $pid
    done
  fi
done

# 19,000 connections held through a heartbeat (25 s), roomcast
if want held; then
  start roomcast 4400
  run connections roomcast "19000 held 40 s" -- --url http://127.0.0.1:4400 --clients 19000 --symbols 20 --per-client 1 --rate 0 --seconds 40 --server-pid $pid --connect-concurrency 500 || true
  stop $pid
fi

# cluster: redis + 3 nodes (all on core 0), clients over the 3, publisher to node 1
want cluster && for server in roomcast node; do
  taskset -c 0 redis-server --port 4490 --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
  redis_pid=$!; pids+=($redis_pid)
  for _ in $(seq 50); do redis-cli -p 4490 ping >/dev/null 2>&1 && break; sleep 0.1; done
  nodes=()
  for i in 1 2 3; do start $server $((4400 + i)) 4490 n$i; nodes+=($pid); done
  for rate in $RATES; do
    run cluster $server "$rate prices/s" -- --url http://127.0.0.1:4401,http://127.0.0.1:4402,http://127.0.0.1:4403 \
      --publish-url http://127.0.0.1:4401 --clients 2000 --symbols 20 --per-client 1 --rate $rate --per-request 10 --publishers $PUBLISHERS --seconds $CLUSTER_SECONDS || break
  done
  stop "${nodes[@]}" $redis_pid
done

# cluster-rc: the same on a Redis Cluster of 3 masters (no replicas; all on
# core 0 like the single Redis above), roomcast only (the fanout on sharded
# pub/sub, roomcast:fanout:{0..15})
if want cluster-rc; then
  rc_dir=$(mktemp -d)
  masters=()
  for port in 4491 4492 4493; do
    taskset -c 0 redis-server --port $port --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$rc_dir/nodes-$port.conf" \
      --dir "$rc_dir" --save "" --appendonly no >/dev/null 2>&1 &
    masters+=($!); pids+=($!)
  done
  for port in 4491 4492 4493; do for _ in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done; done
  redis-cli --cluster create 127.0.0.1:4491 127.0.0.1:4492 127.0.0.1:4493 --cluster-yes >/dev/null
  for _ in $(seq 100); do redis-cli -p 4491 cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
  nodes=()
  for i in 1 2 3; do start roomcast $((4400 + i)) redis+cluster://127.0.0.1:4491,127.0.0.1:4492,127.0.0.1:4493 n$i; nodes+=($pid); done
  for rate in $RATES; do
    run cluster-rc roomcast "$rate prices/s" -- --url http://127.0.0.1:4401,http://127.0.0.1:4402,http://127.0.0.1:4403 \
      --publish-url http://127.0.0.1:4401 --clients 2000 --symbols 20 --per-client 1 --rate $rate --per-request 10 --publishers $PUBLISHERS --seconds $CLUSTER_SECONDS || break
  done
  stop "${nodes[@]}" "${masters[@]}"
  rm -rf "$rc_dir"
fi

echo "results: $out" >&2
python3 load/summarize.py "$out"
