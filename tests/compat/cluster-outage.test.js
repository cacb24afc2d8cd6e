// Redis going away and coming back; a node going away.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { next, ask, record, sample } from "./helpers.js";
import { startRedis, startCluster, untilStatus } from "./cluster-helpers.js";

let redis, nodes;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 3);
});
after(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

test("without Redis nodes serve their own clients and report not ready; with it back, cross-node delivery resumes", async () => {
  const [a, b] = nodes;
  const onA = await a.connect({ transports: ["websocket"] });
  const onB = await b.connect({ transports: ["websocket"] });
  await ask(onA, "subscribe:price", "OUT");
  await ask(onB, "subscribe:price", "OUT");

  await redis.kill();
  await Promise.all(nodes.map((n) => untilStatus(`${n.url}/readyz`, 503)));
  const local = next(onA, "price:update", 5000);
  const res = await a.publish("prices", { symbol: "OUT", price: 1 });
  assert.equal(res.status, 202, "publishing still works");
  assert.equal((await local).price, 1, "local delivery continues during the outage");
  assert.ok(onA.connected && onB.connected, "clients keep their connections");

  const restarted = Date.now();
  redis = await startRedis(redis.port);
  await Promise.all(nodes.map((n) => untilStatus(`${n.url}/readyz`, 200, 15000)));
  // Publish until node 2's client sees it: cross-node delivery came back without restarts.
  const seenOnB = record(onB, "price:update");
  let price = 100;
  while (!seenOnB.some((u) => u.price >= 100)) {
    if (Date.now() - restarted > 15000) throw new Error("cross-node delivery did not resume");
    await a.publish("prices", { symbol: "OUT", price: price++ });
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`# cross-node delivery resumed ${Date.now() - restarted} ms after redis-server restarted`);
  const metrics = await a.metrics();
  assert.equal(sample(metrics, "roomcast_redis_up"), 1);
  assert.ok(sample(metrics, "roomcast_redis_reconnects_total") >= 1);
});

test("killing one node leaves the other nodes' clients untouched", async () => {
  const [a, b, c] = nodes;
  const onB = await b.connect({ transports: ["websocket"] });
  const onC = await c.connect({ transports: ["websocket"] });
  await ask(onB, "subscribe:price", "LIVE");
  const dropped = next(onC, "disconnect", 5000);
  c.proc.kill("SIGKILL");
  await dropped;
  const update = next(onB, "price:update", 5000);
  await a.publish("prices", { symbol: "LIVE", price: 7 });
  assert.equal((await update).price, 7);
  assert.ok(onB.connected);
});
