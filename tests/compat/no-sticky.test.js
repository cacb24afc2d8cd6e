// No sticky sessions: two roomcast nodes on one real redis-server behind a
// round-robin proxy (every request to the other node than the one before,
// WebSocket upgrades included). socket.io-client v4 over long-polling, and
// with its default transports (polling, then the upgrade), works as against
// one node: the node a request lands on forwards it to the session's owner.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { ask, mintToken, next, sample, withTimeout } from "./helpers.js";
import { startRedis, startCluster } from "./cluster-helpers.js";
import { startProxy } from "./proxy-helpers.js";

const ROUND_TRIPS = 25;

let redis, nodes;
const proxies = [];
const sockets = [];
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2, ["--rate-limit", "ping=1000/s"]);
});
after(async () => {
  sockets.forEach((s) => s.close());
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

async function proxy(choose) {
  const p = await startProxy(
    nodes.map((n) => n.url),
    choose,
  );
  proxies.push(p);
  return p;
}

/** Connects through `url`; every connect_error and disconnect is kept in `problems`. */
async function connect(url, opts) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  sockets.push(socket);
  const problems = [];
  socket.on("connect_error", (e) => problems.push(`connect_error: ${e.message}`));
  socket.on("disconnect", (reason) => problems.push(`disconnect: ${reason}`));
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    5000,
    "connect",
  );
  return { socket, problems };
}

/** Acked events and published prices, `ROUND_TRIPS` times, publishing on each node in turn. */
async function roundTrips(socket, symbol) {
  assert.deepEqual(await ask(socket, "subscribe:price", symbol), { ok: true, rooms: [`price:${symbol}`] });
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const pong = await ask(socket, "ping");
    assert.ok(pong.ts > 0, JSON.stringify(pong));
    const update = next(socket, "price:update", 5000);
    const published = await nodes[i % 2].publish("prices", { symbol, price: i, ts: i });
    assert.equal(published.status, 202);
    assert.deepEqual(await update, { symbol, price: i, ts: i });
  }
}

async function forwards(node, transport) {
  return sample(await node.metrics(), `roomcast_session_forwards_total{transport="${transport}",result="ok"}`) ?? 0;
}

test("a polling-only client works through a round-robin balancer", async () => {
  const p = await proxy();
  const before = await Promise.all(nodes.map((n) => forwards(n, "polling")));
  const { socket, problems } = await connect(p.url, {
    transports: ["polling"],
    auth: { token: mintToken({ sub: "poller" }) },
  });
  await roundTrips(socket, "RR-POLL");
  assert.equal(socket.io.engine.transport.name, "polling");
  assert.ok(socket.connected);
  assert.deepEqual(problems, []);
  assert.ok(p.requests.every((n) => n >= ROUND_TRIPS), `both nodes took requests: ${p.requests}`);
  const after = await Promise.all(nodes.map((n) => forwards(n, "polling")));
  const forwarded = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
  assert.ok(forwarded >= ROUND_TRIPS, `polls forwarded: ${forwarded}`);
});

test("a client with default transports polls, upgrades, and works through a round-robin balancer", async () => {
  const p = await proxy();
  const { socket, problems } = await connect(p.url, {});
  if (socket.io.engine.transport.name !== "websocket") {
    await withTimeout(new Promise((resolve) => socket.io.engine.once("upgrade", resolve)), 5000, "upgrade");
  }
  await roundTrips(socket, "RR-WS");
  assert.equal(socket.io.engine.transport.name, "websocket");
  assert.deepEqual(problems, []);
  assert.equal(p.upgrades.reduce((a, b) => a + b, 0), 1);
});

test("every request after the handshake landing on the other node: polls and the upgrade are forwarded", async () => {
  // Handshakes (no sid) to node 1, everything else to node 2.
  const p = await proxy((req) => (new URL(req.url, "http://x").searchParams.has("sid") ? 1 : 0));
  const before = { polling: await forwards(nodes[1], "polling"), websocket: await forwards(nodes[1], "websocket") };
  const { socket, problems } = await connect(p.url, {});
  if (socket.io.engine.transport.name !== "websocket") {
    await withTimeout(new Promise((resolve) => socket.io.engine.once("upgrade", resolve)), 5000, "upgrade");
  }
  await roundTrips(socket, "FWD-WS");
  assert.deepEqual(problems, []);
  assert.deepEqual(p.upgrades, [0, 1]);
  assert.ok((await forwards(nodes[1], "polling")) > before.polling, "polls forwarded by node 2");
  assert.equal((await forwards(nodes[1], "websocket")) - before.websocket, 1, "the upgrade forwarded by node 2");
});

test("a session id no node registered is refused as before (400), not forwarded anywhere", async () => {
  const res = await fetch(`${nodes[0].url}/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAA`);
  assert.equal(res.status, 400);
  await res.body?.cancel();
});
