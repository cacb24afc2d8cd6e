// A real Prometheus (Debian's `prometheus`, installed by .ci/run) scrapes two
// fresh roomcast nodes every second, and every PromQL expression of the
// Grafana dashboard evaluates without error and returns data (CONTRACT §10).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withTimeout } from "./helpers.js";
import { startRedis, startCluster, freePort } from "./cluster-helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dashboard = JSON.parse(readFileSync(path.join(root, "grafana/dashboards/roomcast.json"), "utf8"));

/** Every target expression of every panel (rows included), with its panel title. */
function expressions(panels) {
  return panels.flatMap((p) => [
    ...(p.targets ?? []).filter((t) => t.expr).map((t) => ({ title: p.title, expr: t.expr })),
    ...expressions(p.panels ?? []),
  ]);
}

/** Grafana's variables, replaced the way Grafana would for this 1 s scrape
 * ($__rate_interval = max($__interval + scrape, 4 × scrape)). */
function substitute(expr) {
  return expr
    .replaceAll("$__rate_interval", "4s")
    .replaceAll("$__interval", "1s")
    .replaceAll("$__range", "5m")
    .replace(/\$\{?node\}?/g, ".*");
}

const queries = expressions(dashboard.panels);

let redis, nodes, prom, dir, promUrl;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2);
  dir = mkdtempSync(path.join(os.tmpdir(), "roomcast-prom-"));
  const targets = nodes.map((n) => new URL(n.url).host);
  writeFileSync(
    path.join(dir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: roomcast",
      "    static_configs:",
      `      - targets: ${JSON.stringify(targets)}`,
    ].join("\n"),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  const output = [];
  prom = spawn(
    "prometheus",
    [
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prom.stdout.on("data", (c) => output.push(c.toString()));
  prom.stderr.on("data", (c) => output.push(c.toString()));
  prom.exited = new Promise((resolve) => prom.on("exit", resolve));
  const deadline = Date.now() + 20000;
  while ((await fetch(`${promUrl}/-/ready`).then((r) => r.status, () => 0)) !== 200) {
    if (prom.exitCode !== null) throw new Error(`prometheus exited:\n${output.join("")}`);
    if (Date.now() > deadline) throw new Error(`prometheus not ready:\n${output.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});
after(async () => {
  if (prom && prom.exitCode === null) {
    prom.kill("SIGTERM");
    await withTimeout(prom.exited, 10000, "prometheus exit");
  }
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function query(expr) {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`${expr}: ${body.errorType}: ${body.error}`);
  return body.data.result;
}

/** Polls until `expr` returns at least `min` series (scrapes arrive once a second). */
async function untilResult(expr, min = 1, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await query(expr);
    if (result.length >= min) return result;
    if (Date.now() > deadline) throw new Error(`${expr} returned ${result.length} series after ${ms} ms, wanted ${min}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test("the dashboard has queries to check", () => {
  assert.ok(queries.length >= 20, `${queries.length} expressions`);
});

test("Prometheus scrapes both nodes", async () => {
  const up = await untilResult('up{job="roomcast"} == 1', 2);
  assert.equal(up.length, 2);
});

test("every series the dashboard queries is on a fresh node's /metrics, at 0 where it counts", async () => {
  const names = new Set(queries.flatMap(({ expr }) => expr.match(/roomcast_[a-z_]+/g) ?? []));
  for (const node of nodes) {
    const text = await node.metrics();
    for (const name of names) {
      assert.match(text, new RegExp(`^${name}[{ ]`, "m"), `${name} on ${node.url}`);
    }
  }
});

test("every dashboard expression evaluates in Prometheus and returns data", async () => {
  for (const { title, expr } of queries) {
    const result = await untilResult(substitute(expr)).catch((e) => {
      throw new Error(`panel ${JSON.stringify(title)}: ${e.message}`);
    });
    assert.ok(result.length >= 1, `panel ${title}: ${expr}`);
  }
});

test("per-node series come from both nodes", async () => {
  for (const expr of ["roomcast_redis_up", "roomcast_process_resident_memory_bytes", "sum by (node) (roomcast_connections)"]) {
    const result = await untilResult(expr, 2);
    assert.deepEqual(result.map((r) => r.metric.node).sort(), ["n1", "n2"], expr);
  }
});
