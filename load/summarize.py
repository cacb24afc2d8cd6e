#!/usr/bin/env python3
"""Turns a load/results/*.jsonl file (from load/bench.sh) into the Markdown
tables of BENCHMARKS.md, with roomcast / Node ratios."""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def by(runs, scenario, server):
    return [r for r in runs if r["scenario"] == scenario and r["server"] == server]


def clean(r):
    return r["price_update"]["loss"] == 0 and not r["publish"]["saturated"] and r["clients"]["failed"] == 0


def best(runs):
    """The highest deliveries/s among runs with no loss, no failed client, target rate reached."""
    ok = [r for r in runs if clean(r)]
    return max(ok, key=lambda r: r["price_update"]["per_sec"]) if ok else None


def sweep(out, runs, scenario):
    """Appends the table of a rate sweep; returns each server's best loss-free run."""
    out.append("| server | prices/s | delivered / expected | loss | `price:update`/s | p99 (ms) | load tool CPU |")
    out.append("|---|---|---|---|---|---|---|")
    best_runs = {}
    for s in ("roomcast", "node"):
        for r in by(runs, scenario, s):
            u = r["price_update"]
            out.append(
                f"| {s} | {r['label'].split()[0]} | {u['received']:,} / {u['expected']:,} | {u['loss']:,} "
                f"| {u['per_sec']:,.0f} | {u['latency_ms']['p99']} | {r['load_tool']['cpu_percent_of_one_core']:.0f} % |"
            )
        best_runs[s] = best(by(runs, scenario, s))
    return best_runs


def ratio(a, b):
    return f"{a / b:.1f}×" if a and b else "–"


def main(path):
    runs = load(path)
    out = []
    lat = {s: (by(runs, "latency", s) or [None])[0] for s in ("roomcast", "node")}
    out.append("### latency: 500 clients, 20 symbols (1 each), 200 prices/s, 20 s\n")
    out.append("| server | delivered / expected | p50 | p90 | p99 | p99.9 | max (ms) |")
    out.append("|---|---|---|---|---|---|---|")
    for s, r in lat.items():
        if r:
            u, l = r["price_update"], r["price_update"]["latency_ms"]
            out.append(f"| {s} | {u['received']:,} / {u['expected']:,} | {l['p50']} | {l['p90']} | {l['p99']} | {l['p99.9']} | {l['max']} |")
    if lat["roomcast"] and lat["node"]:
        p = lambda s, q: lat[s]["price_update"]["latency_ms"][q]
        out.append(f"\np99 ratio Node / roomcast: **{ratio(p('node', 'p99'), p('roomcast', 'p99'))}** (target ≥ 4×); roomcast p50 {p('roomcast', 'p50')} ms (target < 1 ms).\n")

    out.append("### fanout: 2000 clients, 20 symbols (100 subscribers each), rising publish rate, 8 s per step\n")
    fan = sweep(out, runs, "fanout")
    if fan["roomcast"] and fan["node"]:
        a, b = fan["roomcast"]["price_update"]["per_sec"], fan["node"]["price_update"]["per_sec"]
        out.append(f"\nHighest loss-free rate: roomcast {a:,.0f} deliveries/s, Node {b:,.0f}: **{ratio(a, b)}** (target ≥ 5×).\n")

    out.append("### churn: 500 steady clients + 200 connect-subscribe-leave per second, 200 prices/s, 15 s\n")
    out.append("| server | cycles done / failed | cycles/s | connect→subscribed p50 / p99 (ms) | steady clients' loss | p99 (ms) |")
    out.append("|---|---|---|---|---|---|")
    for s in ("roomcast", "node"):
        for r in by(runs, "churn", s):
            c, u = r["churn"], r["price_update"]
            out.append(f"| {s} | {c['completed']:,} / {c['failed']} | {c['completed_per_sec']:.0f} | {c['connect_to_subscribed_ms']['p50']:.2f} / {c['connect_to_subscribed_ms']['p99']:.2f} | {u['loss']:,} | {u['latency_ms']['p99']} |")

    out.append("\n### connections: idle subscribed clients, server resident memory\n")
    out.append("| server | clients connected / failed | dropped during run | RSS before → with clients | RSS per connection |")
    out.append("|---|---|---|---|---|")
    per = {}
    for r in [x for x in runs if x["scenario"] == "connections"]:
        c, mem = r["clients"], r["server_memory"]
        out.append(f"| {r['server']} ({r['label']}) | {c['connected']:,} / {c['failed']:,} | {r['connections']['dropped_during_run']} | {mem['rss_before_bytes']/1e6:.1f} MB → {mem['rss_connected_bytes']/1e6:.1f} MB | {mem['rss_per_connection_bytes']/1024:.1f} KiB |")
        if "idle" in r["label"]:
            per[r["server"]] = mem["rss_per_connection_bytes"]
    if per.get("roomcast") and per.get("node"):
        out.append(f"\nRSS per idle connection: roomcast / Node = **{per['roomcast'] / per['node']:.2f}**.")
        out.append(f" 100,000 connections would take about {per['roomcast'] * 1e5 / 2**30:.2f} GiB for roomcast at this rate.")
    if per.get("roomcast") and per.get("floor"):
        out.append(f" roomcast − bare socketioxide floor: **{(per['roomcast'] - per['floor']) / 1024:+.2f} KiB** per connection (target ≤ 1 KiB).\n")

    watch = [x for x in runs if x["scenario"] == "watchlist"]
    if watch:
        out.append("### watchlist: clients × 20 of 200 symbols, 20 prices/s (price:update and price:batch flowing), server resident memory\n")
        out.append("| server | clients connected / failed | delivered / expected | `price:batch` received | RSS per connection (subscribed) | RSS per connection (batches flowing) |")
        out.append("|---|---|---|---|---|---|")
        flowing = {}
        for r in watch:
            c, mem, u = r["clients"], r["server_memory"], r["price_update"]
            flow = mem.get("rss_per_connection_flowing_bytes") or 0
            flowing[r["server"]] = flow
            out.append(f"| {r['server']} ({r['label']}) | {c['connected']:,} / {c['failed']:,} | {u['received']:,} / {u['expected']:,} | {r['price_batch']['received']:,} | {mem['rss_per_connection_bytes']/1024:.1f} KiB | {flow/1024:.1f} KiB |")
        if flowing.get("roomcast") and flowing.get("node"):
            out.append(f"\nWatchlist RSS per connection (flowing): roomcast / Node = **{flowing['roomcast'] / flowing['node']:.2f}**.\n")

    subs = [x for x in runs if x["scenario"] == "subscriptions"]
    if subs:
        out.append("### subscriptions: idle clients holding 1, 20 or 200 of 1,000 symbols (a fresh server each)\n")
        out.append("| server | subscriptions per socket | clients | RSS per connection | cost per subscription over 1 |")
        out.append("|---|---|---|---|---|")
        for srv in ("roomcast", "node"):
            rows = {int(r["label"].split()[0]): r["server_memory"]["rss_per_connection_bytes"] for r in subs if r["server"] == srv}
            clients = {int(r["label"].split()[0]): r["clients"]["connected"] for r in subs if r["server"] == srv}
            for n in sorted(rows):
                extra = f"{(rows[n] - rows[1]) / (n - 1):.0f} B" if n > 1 and 1 in rows else "–"
                out.append(f"| {srv} | {n} | {clients[n]:,} | {rows[n]/1024:.1f} KiB | {extra} |")
        out.append("")

    out.append("### cluster: 3 nodes + Redis on one core, clients spread over the 3, publisher on node 1\n")
    clu = sweep(out, runs, "cluster")
    for s in ("roomcast", "node"):
        if clu.get(s) and fan.get(s):
            c, f = clu[s]["price_update"]["per_sec"], fan[s]["price_update"]["per_sec"]
            out.append(f"\n{s}: best loss-free cluster rate {c:,.0f}/s vs single node {f:,.0f}/s: cross-node cost **{(1 - c / f) * 100:.0f} %** (target ≤ 25 % for roomcast).")

    if any(r["scenario"] == "cluster-rc" for r in runs):
        out.append("\n### cluster-rc: the same 3 nodes on a Redis Cluster of 3 masters (one core), sharded pub/sub\n")
        rc = sweep(out, runs, "cluster-rc")
        if rc.get("roomcast") and clu.get("roomcast"):
            r, c = rc["roomcast"]["price_update"]["per_sec"], clu["roomcast"]["price_update"]["per_sec"]
            out.append(f"\nroomcast: best loss-free rate on the Redis Cluster {r:,.0f}/s vs one Redis {c:,.0f}/s.")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
