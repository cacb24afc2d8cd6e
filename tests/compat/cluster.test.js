// Several roomcast processes and one real redis-server behave as one server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, next, ask, record, until, sample, startServer } from "./helpers.js";
import { startRedis, startCluster, freePort } from "./cluster-helpers.js";

let redis, nodes;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 3, ["--metrics-interval-ms", "300", "--redis-channels", "community_monitor,scan_monitor=admin"]);
});
after(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

const settle = () => new Promise((r) => setTimeout(r, 300));

test("a price published on node 1 reaches subscribers on nodes 2 and 3 once, and their batches", async () => {
  const [a, b, c] = nodes;
  const onA = await a.connect({ transports: ["websocket"] });
  const onB = await b.connect({ transports: ["websocket"] });
  const onC = await c.connect({ transports: ["polling"] });
  for (const s of [onA, onB, onC]) await ask(s, "subscribe:price", "XBT");
  const updates = [onA, onB, onC].map((s) => record(s, "price:update"));
  const batches = [onA, onB, onC].map((s) => record(s, "price:batch"));
  assert.deepEqual(await a.publish("prices", { symbol: "XBT", price: 101, ts: 5 }), { status: 202, body: { accepted: 1 } });
  await until(() => updates.every((u) => u.length >= 1) && batches.every((b) => b.length >= 1), 5000, "delivery on every node");
  await settle();
  for (const u of updates) assert.deepEqual(u, [{ symbol: "XBT", price: 101, ts: 5 }], "exactly once");
  for (const b of batches) assert.deepEqual(b, [[["XBT", 101]]], "one batch, no duplicate");
});

test("an emit to user:<id> on node 1 reaches that user's socket on node 3", async () => {
  const [a, , c] = nodes;
  const user = await c.connect({ auth: { token: mintToken({ sub: "trader-9" }) }, transports: ["websocket"] });
  const notes = record(user, "notification");
  await a.publish("emit", { room: "user:trader-9", event: "notification", data: { text: "filled" } });
  await until(() => notes.length === 1, 5000, "notification");
  await settle();
  assert.deepEqual(notes, [{ text: "filled" }]);
});

test("trades published on any node reach trades rooms on every node", async () => {
  const [a, b, c] = nodes;
  const onA = await a.connect({ transports: ["websocket"] });
  const onC = await c.connect({ transports: ["websocket"] });
  await ask(onA, "subscribe:trades", "ETH");
  await ask(onC, "subscribe:trades", "ETH");
  const tradeA = next(onA, "trade:new", 5000);
  const tradeC = next(onC, "trade:new", 5000);
  await b.publish("trades", [{ symbol: "ETH", qty: 3, id: "x1" }]);
  assert.deepEqual(await tradeA, { symbol: "ETH", qty: 3, id: "x1" });
  assert.deepEqual(await tradeC, { symbol: "ETH", qty: 3, id: "x1" });
});

test("roomcast:prices, roomcast:trades and roomcast:emit on Redis act like the POSTs", async () => {
  const [a, b] = nodes;
  const onA = await a.connect({ transports: ["websocket"] });
  const onB = await b.connect({ auth: { token: mintToken({ sub: "r1" }) }, transports: ["websocket"] });
  await ask(onA, "subscribe:price", "SOL");
  await ask(onB, "subscribe:trades", "SOL");
  const price = next(onA, "price:update", 5000);
  const trade = next(onB, "trade:new", 5000);
  const note = next(onB, "notification", 5000);
  await redis.publish("roomcast:prices", JSON.stringify([{ symbol: "SOL", price: 150.5, ts: 9 }]));
  await redis.publish("roomcast:trades", JSON.stringify({ symbol: "SOL", qty: 1 }));
  await redis.publish("roomcast:emit", JSON.stringify({ rooms: ["user:r1"], event: "notification", data: "via redis" }));
  assert.deepEqual(await price, { symbol: "SOL", price: 150.5, ts: 9 });
  assert.deepEqual(await trade, { symbol: "SOL", qty: 1 });
  assert.equal(await note, "via redis");
});

test("an invalid Redis message is counted, delivers nothing and breaks nothing", async () => {
  const [a] = nodes;
  const s = await a.connect({ transports: ["websocket"] });
  await ask(s, "subscribe:price", "BAD");
  const updates = record(s, "price:update");
  const series = 'roomcast_redis_messages_total{channel="roomcast:prices",result="invalid"}';
  const before = sample(await a.metrics(), series) ?? 0;
  await redis.publish("roomcast:prices", "not json");
  await redis.publish("roomcast:prices", JSON.stringify([{ symbol: "BAD", price: 1 }, { symbol: "BAD", price: "x" }]));
  const deadline = Date.now() + 5000;
  while ((sample(await a.metrics(), series) ?? 0) < before + 2) {
    if (Date.now() > deadline) throw new Error("invalid messages not counted");
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(updates, [], "all or nothing: the valid half was not delivered");
  assert.deepEqual(await ask(s, "subscribe:price", "OK"), { ok: true, rooms: ["price:OK"] });
});

test("bridged channels: JSON and text to everyone, name=room to that room only", async () => {
  const [a, b, c] = nodes;
  const plain = await a.connect({ transports: ["websocket"] });
  const other = await c.connect({ transports: ["websocket"] });
  const admin = await b.connect({ auth: { token: mintToken({ sub: "ops", role: "admin" }) }, transports: ["websocket"] });
  const json = next(other, "community_monitor", 5000);
  const jsonOnPlain = next(plain, "community_monitor", 5000);
  await redis.publish("community_monitor", JSON.stringify({ alert: "spike" }));
  const got = await json;
  // Everyone gets it; taken on `plain` too, so the next wait there sees the text one.
  assert.deepEqual((await jsonOnPlain).data, { alert: "spike" });
  assert.equal(got.type, "community_monitor");
  assert.deepEqual(got.data, { alert: "spike" });
  assert.ok(Math.abs(got.timestamp - Date.now()) < 5000);
  const text = next(plain, "community_monitor", 5000);
  await redis.publish("community_monitor", "hello, not json");
  assert.equal((await text).data, "hello, not json");
  const scans = record(plain, "scan_monitor");
  const scan = next(admin, "scan_monitor", 5000);
  await redis.publish("scan_monitor", JSON.stringify({ n: 1 }));
  assert.deepEqual((await scan).data, { n: 1 });
  await settle();
  assert.deepEqual(scans, [], "scan_monitor=admin goes to the admin room only");
});

test("an admin on one node receives every node's metrics", async () => {
  const [a] = nodes;
  const admin = await a.connect({ auth: { token: mintToken({ sub: "ops2", role: "admin" }) }, transports: ["websocket"] });
  const seen = new Set();
  admin.on("metrics", (m) => seen.add(m.node));
  await until(() => seen.size === 3, 5000, "metrics from n1, n2 and n3");
  assert.deepEqual([...seen].sort(), ["n1", "n2", "n3"]);
});

test("a node that cannot reach Redis at start-up exits non-zero with a clear line", async () => {
  const port = await freePort();
  const started = Date.now();
  const err = await startServer(["--redis-url", `redis://127.0.0.1:${port}`]).then(
    (s) => (s.stop(), null),
    (e) => e,
  );
  assert.ok(err, "refused to start");
  assert.match(err.message, /exited with 1/);
  assert.match(err.message, /cannot reach Redis/);
  assert.ok(Date.now() - started < 10000);
});
