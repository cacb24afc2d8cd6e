// CONTRACT §8 across nodes with a real redis-server: the latest price from
// another node's publish and after a restart, the same offsets on every node,
// and resume on another node after the client's node was SIGKILLed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, ask, until, startServer } from "./helpers.js";
import { startRedis, startCluster } from "./cluster-helpers.js";

let redis, nodes;
const extra = [];
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 3, ["--batch-interval-ms", "30000"]);
});
after(async () => {
  await Promise.all([...(nodes ?? []), ...extra].map((n) => n.stop()));
  await redis?.kill();
});

function recordArgs(socket, event) {
  const seen = [];
  socket.on(event, (...args) => seen.push(args));
  return seen;
}

function offsetLess(a, b) {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am < bm || (am === bm && as < bs);
}

const quiet = (ms = 300) => new Promise((r) => setTimeout(r, ms));

async function recoverClient(node, sub) {
  const s = await node.connect({ auth: { token: mintToken({ sub }), recover: true }, transports: ["websocket"] });
  return { s, trades: recordArgs(s, "trade:new"), notes: recordArgs(s, "notification") };
}

test("the latest price comes from another node's publish, and from Redis after a restart", async () => {
  const [a, b] = nodes;
  // A probe on B tells when the price has reached B.
  const probe = await b.connect({ transports: ["websocket"] });
  await ask(probe, "subscribe:price", "CL1");
  const updates = recordArgs(probe, "price:update");
  await a.publish("prices", [{ symbol: "CL1", price: 1 }, { symbol: "CL1", price: 2.25 }]);
  await until(() => updates.length === 2, 5000, "price on node B");
  const onB = await b.connect({ transports: ["websocket"] });
  const batchesB = recordArgs(onB, "price:batch");
  await ask(onB, "subscribe:price", "CL1");
  await until(() => batchesB.length === 1, 5000, "batch on subscribe on node B");
  assert.deepEqual(batchesB[0], [[["CL1", 2.25]]]);

  // A node started after the publish has never seen CL1: it reads it from Redis.
  const fresh = await startServer(["--redis-url", redis.url, "--node-id", "n4", "--batch-interval-ms", "30000"]);
  extra.push(fresh);
  const onFresh = await fresh.connect({ transports: ["polling"] });
  const batchesFresh = recordArgs(onFresh, "price:batch");
  await ask(onFresh, "subscribe:price", ["CL1", "CL-UNKNOWN"]);
  await until(() => batchesFresh.length === 1, 5000, "batch on subscribe on a restarted node");
  assert.deepEqual(batchesFresh[0], [[["CL1", 2.25]]]);
  await quiet();
  assert.equal(batchesFresh.length, 1);
});

test("a trade published on one node reaches recover sockets on every node with the same offset, once", async () => {
  const [a, b, c] = nodes;
  const onA = await recoverClient(a, "same-1");
  const onC = await recoverClient(c, "same-2");
  const plain = await b.connect({ transports: ["websocket"] });
  const plainTrades = recordArgs(plain, "trade:new");
  for (const s of [onA.s, onC.s, plain]) await ask(s, "subscribe:trades", "SAME");
  await b.publish("trades", [{ symbol: "SAME", n: 1 }, { symbol: "SAME", n: 2 }]);
  await until(() => onA.trades.length === 2 && onC.trades.length === 2 && plainTrades.length === 2, 5000, "trades everywhere");
  await quiet();
  assert.deepEqual(onA.trades, onC.trades, "same payloads and offsets on both nodes");
  assert.ok(offsetLess(onA.trades[0][1], onA.trades[1][1]));
  assert.deepEqual(plainTrades, [[{ symbol: "SAME", n: 1 }], [{ symbol: "SAME", n: 2 }]]);
});

test("roomcast:emit to a user room is recorded once although every node receives it", async () => {
  const [a, , c] = nodes;
  const onA = await recoverClient(a, "svc-1");
  const plain = await c.connect({ auth: { token: mintToken({ sub: "svc-1" }) }, transports: ["websocket"] });
  const plainNotes = recordArgs(plain, "notification");
  const message = JSON.stringify({ room: "user:svc-1", event: "notification", data: { same: true } });
  await redis.publish("roomcast:emit", message);
  await redis.publish("roomcast:emit", message);
  await until(() => onA.notes.length === 2 && plainNotes.length === 2, 5000, "two notifications");
  await quiet(500);
  assert.equal(onA.notes.length, 2, "identical messages both delivered, each once");
  assert.equal(plainNotes.length, 2);
  assert.ok(offsetLess(onA.notes[0][1], onA.notes[1][1]));
});

test("resume on node B after node A was SIGKILLed: every missed event once, in order, also with publishes during the replay", async () => {
  const [a, b, c] = nodes;
  const first = await recoverClient(a, "kill-1");
  await ask(first.s, "subscribe:trades", "KILL");
  await c.publish("trades", { symbol: "KILL", seq: 0 });
  await c.publish("emit", { room: "user:kill-1", event: "notification", data: { seq: 0 } });
  await until(() => first.trades.length === 1 && first.notes.length === 1, 5000, "first events on node A");
  const offsets = { "trades:KILL": first.trades[0][1], "user:kill-1": first.notes[0][1] };

  a.proc.kill("SIGKILL");
  await a.exited;
  const awayFrom = Date.now();
  const M = 300, K = 60, N_MS = 2000;
  const batches = 20;
  for (let i = 0; i < batches; i++) {
    const t0 = (i * M) / batches;
    await c.publish("trades", Array.from({ length: M / batches }, (_, j) => ({ symbol: "KILL", seq: t0 + j + 1 })));
    const n0 = (i * K) / batches;
    await c.publish("emit", Array.from({ length: K / batches }, (_, j) => ({ room: "user:kill-1", event: "notification", data: { seq: n0 + j + 1 } })));
    await new Promise((r) => setTimeout(r, N_MS / batches));
  }

  const again = await recoverClient(b, "kill-1");
  const more = 40;
  const publisher = (async () => {
    for (let i = 1; i <= more; i++) await c.publish("trades", { symbol: "KILL", seq: M + i });
  })();
  const resumeAt = Date.now();
  const ack = await ask(again.s, "resume", { offsets });
  const resumeMs = Date.now() - resumeAt;
  const awayMs = resumeAt - awayFrom;
  await publisher;
  assert.deepEqual(ack.gaps, []);
  assert.ok(ack.replayed >= M + K, `replayed ${ack.replayed}`);
  await until(() => again.trades.length >= M + more && again.notes.length >= K, 10000, "every trade and notification");
  await quiet(500);
  assert.deepEqual(again.trades.map((x) => x[0].seq), Array.from({ length: M + more }, (_, i) => i + 1), "trades once, in order");
  assert.deepEqual(again.notes.map((x) => x[0].seq), Array.from({ length: K }, (_, i) => i + 1), "notifications once, in order");
  for (const list of [again.trades, again.notes])
    for (let i = 1; i < list.length; i++) assert.ok(offsetLess(list[i - 1][1], list[i][1]));
  const figures = `recovery: away ${(awayMs / 1000).toFixed(1)} s (node killed), ${M} trades + ${K} notifications missed, ` +
    `${more} trades published during the resume; resumed on another node in ${resumeMs} ms ` +
    `(replayed ${ack.replayed}), all ${M + more + K} received once, in order`;
  console.log(figures);
});
