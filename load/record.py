#!/usr/bin/env python3
"""record.py OUT SCENARIO SERVER LABEL JSON: appends one labelled run to OUT
and prints a one-line summary on stderr. Exit status 1 when the run lost
deliveries, had failed clients, or missed its publish rate (bench.sh stops a
rate sweep there)."""
import json
import sys

out, scenario, server, label, raw = sys.argv[1:6]
run = json.loads(raw)
run.update(scenario=scenario, server=server, label=label)
with open(out, "a") as f:
    f.write(json.dumps(run) + "\n")
u = run["price_update"]
lat = u["latency_ms"]
print(
    f"   delivered {u['received']}/{u['expected']} loss {u['loss']} {u['per_sec']:.0f}/s "
    f"p50 {lat['p50']} p99 {lat['p99']} clients {run['clients']['connected']}/{run['clients']['requested']} "
    f"load-cpu {run['load_tool']['cpu_percent_of_one_core']:.0f}%",
    file=sys.stderr,
)
clean = u["loss"] == 0 and not run["publish"]["saturated"] and run["clients"]["failed"] == 0
sys.exit(0 if clean else 1)
