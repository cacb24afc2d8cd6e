// roomcast nodes on a real Redis Cluster (3 masters + 3 replicas started
// here): delivery across nodes over sharded pub/sub, chat, and a master
// failing over without a node restart.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, next, ask, record, until, startServer } from "./helpers.js";
import { untilStatus } from "./cluster-helpers.js";
import { startRedisCluster, untilRedisUp } from "./redis-cluster-helpers.js";
import { plainClient } from "./chat-helpers.js";

let cluster, nodes;
before(async () => {
  cluster = await startRedisCluster();
  nodes = await Promise.all(
    ["n1", "n2"].map((id) => startServer(["--redis-url", cluster.url, "--node-id", id, "--chat-open"])),
  );
});
after(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await cluster?.kill();
});

const settle = () => new Promise((r) => setTimeout(r, 300));
const member = (node, sub) => node.connect({ auth: { token: mintToken({ sub }) }, transports: ["websocket"] });

/** Publishes a price on `from` until `socket` sees it (bounded); resolves with the attempts. */
async function priceGetsThrough(from, socket, symbol, ms) {
  const seen = record(socket, "price:update");
  const deadline = Date.now() + ms;
  for (let i = 1; ; i++) {
    await from.publish("prices", { symbol, price: i });
    const by = Date.now() + 300;
    while (Date.now() < by && seen.length === 0) await new Promise((r) => setTimeout(r, 20));
    if (seen.length > 0) return i;
    if (Date.now() > deadline) throw new Error(`no price:update across nodes within ${ms} ms`);
  }
}

test("the fanout runs on shard channels: every node subscribes to each of roomcast:fanout:{0..15} on its master", async () => {
  const counts = {};
  for (const { port } of await cluster.masters()) {
    const reply = await cluster.cli(port, "PUBSUB", "SHARDCHANNELS", "roomcast:fanout:*");
    for (const channel of reply.split("\n").filter(Boolean)) {
      const [, n] = (await cluster.cli(port, "PUBSUB", "SHARDNUMSUB", channel)).split("\n");
      counts[channel] = Number(n);
    }
  }
  assert.equal(Object.keys(counts).length, 16, JSON.stringify(counts));
  assert.ok(Object.values(counts).every((n) => n === 2), JSON.stringify(counts));
});

test("prices, trades, user emits and chat cross nodes on the cluster, once", async () => {
  const [a, b] = nodes;
  const onB = await member(b, "trader-1");
  await ask(onB, "subscribe:price", "XBT");
  await ask(onB, "subscribe:trades", "XBT");
  const updates = record(onB, "price:update");
  const trades = record(onB, "trade:new");
  const notes = record(onB, "notification");
  assert.equal((await a.publish("prices", { symbol: "XBT", price: 7, ts: 1 })).status, 202);
  assert.equal((await a.publish("trades", [{ symbol: "XBT", qty: 2, id: "t1" }])).status, 202);
  assert.equal((await a.publish("emit", { rooms: ["user:trader-1", "user:other", "admin"], event: "notification", data: "hi" })).status, 202);
  await until(() => updates.length && trades.length && notes.length, 5000, "delivery on node 2");
  await settle();
  assert.deepEqual(updates, [{ symbol: "XBT", price: 7, ts: 1 }]);
  assert.deepEqual(trades, [{ symbol: "XBT", qty: 2, id: "t1" }]);
  assert.deepEqual(notes, ["hi"]);

  const alice = await member(a, "alice");
  const bob = await member(b, "bob");
  await ask(alice, "chat:join", { roomId: "rc-desk" });
  await ask(bob, "chat:join", { roomId: "rc-desk" });
  const seen = record(bob, "chat:message");
  const sent = await ask(alice, "chat:send", { roomId: "rc-desk", message: "over the cluster" });
  await until(() => seen.length === 1, 5000, "chat:message on node 2");
  assert.equal(seen[0].id, sent.id);
  const state = await ask(bob, "chat:join", { roomId: "rc-desk" });
  assert.deepEqual(state.history.map((m) => m.message), ["over the cluster"]);
  const plain = await plainClient(b.url, { sessionId: "rc-desk", token: mintToken({ sub: "plain" }) });
  const got = next(alice, "chat:message", 5000);
  plain.send({ type: "message", content: "from plain ws" });
  assert.equal((await got).message, "from plain ws");
  plain.close();
});

test("a service PUBLISH on roomcast:prices reaches every node through the cluster", async () => {
  const [a, b] = nodes;
  const sockets = [await a.connect({ transports: ["websocket"] }), await b.connect({ transports: ["websocket"] })];
  for (const s of sockets) await ask(s, "subscribe:price", "SVC");
  const got = sockets.map((s) => next(s, "price:update", 5000));
  await cluster.publish("roomcast:prices", JSON.stringify({ symbol: "SVC", price: 3 }));
  for (const g of got) assert.deepEqual({ ...(await g), ts: 0 }, { symbol: "SVC", price: 3, ts: 0 });
});

test("a master killed: /readyz and roomcast_redis_up tell the truth, delivery resumes after the replica takes over", async () => {
  const [a, b] = nodes;
  const onB = await b.connect({ transports: ["websocket"] });
  await ask(onB, "subscribe:price", "FO1");
  await priceGetsThrough(a, onB, "FO1", 5000);

  // The master holding most of the fanout's shard channels.
  const owners = {};
  for (let n = 0; n < 16; n++) {
    const port = await cluster.masterOf(`roomcast:fanout:{${n}}`);
    owners[port] = (owners[port] ?? 0) + 1;
  }
  const victim = Number(Object.entries(owners).sort((x, y) => y[1] - x[1])[0][0]);
  await cluster.killNode(victim);

  for (const node of nodes) {
    await untilStatus(`${node.url}/readyz`, 503, 5000);
    await untilRedisUp(node.url, 0, 5000);
  }
  // The replica is promoted (node timeout 1 s); each node rebuilds its connection by itself.
  for (const node of nodes) {
    await untilStatus(`${node.url}/readyz`, 200, 20000);
    await untilRedisUp(node.url, 1, 5000);
  }
  assert.ok(!(await cluster.masters()).some((m) => m.port === victim), "the killed master is gone");
  const onB2 = await b.connect({ transports: ["websocket"] });
  await ask(onB2, "subscribe:price", "FO2");
  await priceGetsThrough(a, onB2, "FO2", 5000);
  const onA = await a.connect({ transports: ["websocket"] });
  await ask(onA, "subscribe:price", "FO3");
  await priceGetsThrough(b, onA, "FO3", 5000);

  // Chat, whose keys may have lived on the killed master, works again too.
  const alice = await member(a, "alice2");
  const bob = await member(b, "bob2");
  for (const s of [alice, bob]) await ask(s, "chat:join", { roomId: "after-failover" });
  const seen = next(bob, "chat:message", 5000);
  const ack = await ask(alice, "chat:send", { roomId: "after-failover", message: "still here" });
  assert.ok(ack.id, JSON.stringify(ack));
  assert.equal((await seen).message, "still here");
});
