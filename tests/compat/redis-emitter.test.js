// Node services publishing with the official @socket.io/redis-emitter reach
// roomcast's sockets on every node, exactly once (CONTRACT §10).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import { mintToken, next, record, sample, until, withTimeout } from "./helpers.js";
import { startRedis, startCluster, untilStatus } from "./cluster-helpers.js";

let redis, nodes, client, emitter;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2);
  await connectEmitter();
});
after(async () => {
  await client?.disconnect().catch(() => {});
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

/** The service side: the npm `redis` client and the official emitter on it. */
async function connectEmitter() {
  client = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
  client.on("error", () => {}); // a restart of redis-server in a test is expected
  await client.connect();
  emitter = new Emitter(client);
}

const user = (node, sub) => node.connect({ auth: { token: mintToken({ sub }) }, transports: ["websocket"] });

/** Emits a marker to everyone and waits until every socket has it: whatever
 * the emitter sent before has then been delivered (one pub/sub connection per
 * node keeps Redis' order), so counts are final without sleeping. */
let markers = 0;
async function drain(sockets) {
  const id = ++markers;
  const seen = sockets.map((s) => withTimeout(new Promise((resolve) => {
    const on = (n) => { if (n === id) { s.off("drain", on); resolve(); } };
    s.on("drain", on);
  }), 5000, `marker ${id}`));
  emitter.emit("drain", id);
  await Promise.all(seen);
}

test("emitter.to(user:42) reaches that user's sockets on both nodes exactly once, and nobody else", async () => {
  const [a, b] = nodes;
  const mine = [await user(a, "42"), await user(b, "42")];
  const other = await user(b, "7");
  const got = mine.map((s) => record(s, "notification"));
  const otherGot = record(other, "notification");
  emitter.to("user:42").emit("notification", { text: "filled", qty: 3 });
  await until(() => got.every((g) => g.length >= 1), 5000, "notification on both nodes");
  await drain([...mine, other]);
  for (const g of got) assert.deepEqual(g, [{ text: "filled", qty: 3 }], "exactly once");
  assert.deepEqual(otherGot, []);
  for (const s of [...mine, other]) s.close();
});

test("emitter.emit reaches everyone; several arguments and a Buffer arrive as sent", async () => {
  const [a, b] = nodes;
  const sockets = [await a.connect({ transports: ["websocket"] }), await b.connect({ transports: ["polling"] }), await user(b, "9")];
  const got = sockets.map((s) => {
    const seen = [];
    s.on("x", (...args) => seen.push(args));
    return seen;
  });
  emitter.emit("x", 1, "two", [3], Buffer.from([1, 2, 3]));
  await until(() => got.every((g) => g.length >= 1), 5000, "x everywhere");
  await drain(sockets);
  for (const g of got) {
    assert.equal(g.length, 1, "exactly once");
    const [one, two, three, bin] = g[0];
    assert.deepEqual([one, two, three], [1, "two", [3]]);
    assert.deepEqual([...new Uint8Array(bin)], [1, 2, 3], "binary argument");
  }
  for (const s of sockets) s.close();
});

test("except leaves out the sockets of those rooms; to() several rooms is a union", async () => {
  const [a, b] = nodes;
  const u1 = await user(a, "1");
  const u2 = await user(b, "2");
  const u3 = await user(b, "3");
  const got = [u1, u2, u3].map((s) => record(s, "y"));
  emitter.except("user:2").emit("y", "all-but-2");
  emitter.to("user:1").to("user:2").except("user:1").emit("y", "only-2");
  await drain([u1, u2, u3]);
  assert.deepEqual(got, [["all-but-2"], ["only-2"], ["all-but-2"]]);
  for (const s of [u1, u2, u3]) s.close();
});

test("socketsJoin, then to() that room, then disconnectSockets, on both nodes", async () => {
  const [a, b] = nodes;
  const vip = [await user(a, "v"), await user(b, "v")];
  const other = await user(a, "w");
  emitter.in("user:v").socketsJoin("vip");
  const got = [...vip, other].map((s) => record(s, "vip"));
  emitter.to("vip").emit("vip", "hi");
  await drain([...vip, other]);
  assert.deepEqual(got, [["hi"], ["hi"], []]);
  const gone = vip.map((s) => next(s, "disconnect", 5000));
  emitter.in("vip").disconnectSockets();
  assert.deepEqual(await Promise.all(gone), ["io server disconnect", "io server disconnect"]);
  assert.equal(other.connected, true);
  other.close();
});

test("rooms roomcast manages are not joined from outside; invalid messages are counted", async () => {
  const [a, b] = nodes;
  const u = [await user(a, "m"), await user(b, "m")];
  const invalid = 'roomcast_redis_messages_total{channel="socket.io#/#*",result="invalid"}';
  const before = await Promise.all(nodes.map(async (n) => sample(await n.metrics(), invalid)));
  assert.deepEqual(before.map((v) => typeof v), ["number", "number"], "the series exists from start-up");
  emitter.in("user:m").socketsJoin("price:BTC-USD");
  await client.publish("socket.io#/#", Buffer.from([0xc1])); // not msgpack
  const got = u.map((s) => record(s, "price:update"));
  await drain(u);
  const after = await Promise.all(nodes.map(async (n) => sample(await n.metrics(), invalid)));
  assert.deepEqual(after, before.map((v) => v + 2));
  emitter.to("price:BTC-USD").emit("price:update", { fake: true });
  await drain(u);
  assert.deepEqual(got, [[], []], "not in the price room");
  u.forEach((s) => s.close());
});

test("after Redis restarts, the emitter's messages arrive again (the pattern is subscribed again)", async () => {
  const [a, b] = nodes;
  const sockets = [await user(a, "r"), await user(b, "r")];
  await redis.kill();
  await Promise.all(nodes.map((n) => untilStatus(`${n.url}/readyz`, 503)));
  redis = await startRedis(redis.port);
  await Promise.all(nodes.map((n) => untilStatus(`${n.url}/readyz`, 200, 15000)));
  await client.disconnect().catch(() => {});
  await connectEmitter();
  const got = sockets.map((s) => record(s, "back"));
  const started = Date.now();
  while (!got.every((g) => g.length > 0)) {
    if (Date.now() - started > 15000) throw new Error(`emitter messages did not resume: ${JSON.stringify(got)}`);
    emitter.to("user:r").emit("back", 1);
    await new Promise((r) => setTimeout(r, 100));
  }
  sockets.forEach((s) => s.close());
});
