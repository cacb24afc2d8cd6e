// A few-second smoke run of the load tool against a real server: it connects,
// counts deliveries and reports them consistently. (Benchmarks live in
// BENCHMARKS.md; nothing here is timed.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { BIN, PUBLISH_KEY, startServer } from "./helpers.js";

const LOAD = path.join(path.dirname(BIN), "roomcast-load");
let server;
after(() => server?.stop());

test("roomcast-load connects its clients and accounts for every delivery", async () => {
  server = await startServer(["--rate-limit", "*=1000/s"]);
  const { stdout } = await promisify(execFile)(
    LOAD,
    ["--url", server.url, "--key", PUBLISH_KEY, "--clients", "20", "--symbols", "4", "--per-client", "2", "--rate", "50", "--seconds", "2", "--server-pid", String(server.proc.pid)],
    { timeout: 30000 },
  );
  const report = JSON.parse(stdout);
  assert.equal(report.clients.connected, 20);
  assert.equal(report.clients.failed, 0);
  assert.ok(report.publish.prices > 50, `published ${report.publish.prices}`);
  assert.equal(report.price_update.expected, report.publish.prices * 10, "each symbol has 10 subscribers");
  assert.equal(report.price_update.received, report.price_update.expected);
  assert.equal(report.price_update.loss, 0);
  assert.equal(report.price_update.latency_ms.samples, report.price_update.received);
  assert.ok(report.price_batch.received > 0);
  assert.ok(report.server_memory.rss_connected_bytes > 0);
});
