// CONTRACT §7 with the real socket.io-client v4 and a plain WebSocket client:
// private chat rooms, entitlements, live token expiry, and a user sent away
// on node A while connected to node B (two nodes, a real redis-server).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, next, ask, withTimeout } from "./helpers.js";
import { startRedis, startCluster } from "./cluster-helpers.js";
import { plainClient } from "./chat-helpers.js";

let redis;
let nodes;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2);
});
after(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

test("a refused user gets nothing of a private room; the chat claim lets its owner in", async () => {
  const [a] = nodes;
  const alice = await a.connect({ auth: { token: mintToken({ sub: "alice", chat: ["dm-alice-*"] }) } });
  const joined = await ask(alice, "chat:join", { roomId: "dm-alice-bob" });
  assert.equal(joined.ok, true);
  await ask(alice, "chat:send", { roomId: "dm-alice-bob", message: "secret: the wire code is 4711" });
  const mallory = await a.connect({ auth: { token: mintToken({ sub: "mallory" }) } });
  assert.deepEqual(await ask(mallory, "chat:join", { roomId: "dm-alice-bob" }), { error: "not allowed in this room" });
  const history = await ask(mallory, "chat:history", { roomId: "dm-alice-bob" });
  assert.equal(history.messages, undefined);
  await assert.rejects(
    plainClient(a.url, { sessionId: "dm-alice-bob", token: mintToken({ sub: "mallory" }) }),
    (e) => e.status === 403,
  );
});

test("market entitlements come from the symbols claim", async () => {
  const [, b] = nodes;
  const socket = await b.connect({ auth: { token: mintToken({ sub: "t", symbols: ["BTC-*"] }) } });
  assert.deepEqual(await ask(socket, "subscribe:price", ["BTC-USD"]), { ok: true, rooms: ["price:BTC-USD"] });
  assert.deepEqual(await ask(socket, "subscribe:price", ["BTC-EUR", "ETH-USD"]), { error: "not entitled to ETH-USD" });
});

test("a token expiring on a live socket: token:expiring, then unauthorized, rooms left, prices kept", async () => {
  const [a, b] = nodes;
  const exp = Math.floor(Date.now() / 1000) + 3;
  const socket = await b.connect({ auth: { token: mintToken({ sub: "short", exp }) } });
  await ask(socket, "subscribe:price", "EXP");
  const expiring = await next(socket, "token:expiring", 5000);
  assert.equal(expiring.expiresAt, exp * 1000);
  assert.deepEqual(await next(socket, "unauthorized", 5000), { message: "Token expired" });
  assert.ok(socket.connected, "the socket stays, as anonymous");
  const note = next(socket, "notification", 500).catch(() => "none");
  await a.publish("emit", { room: "user:short", event: "notification", data: 1 });
  assert.equal(await note, "none");
  const price = next(socket, "price:update");
  await a.publish("prices", { symbol: "EXP", price: 5 });
  assert.equal((await price).price, 5);
});

test("a user sent away on node A is disconnected on node B and does not reconnect", async () => {
  const [a, b] = nodes;
  const token = mintToken({ sub: "evicted", chat: ["*"] });
  const socket = await b.connect({ auth: { token } });
  const plain = await plainClient(b.url, { sessionId: "lobby", token });
  const closed = new Promise((resolve) => plain.ws.once("close", (code) => resolve(code)));
  const disconnected = new Promise((resolve) => socket.once("disconnect", resolve));
  const response = await fetch(`${a.url}/api/v1/users/evicted/disconnect`, {
    method: "POST",
    headers: { authorization: "Bearer compat-test-publish-key", "content-type": "application/json" },
    body: JSON.stringify({ reason: "account closed" }),
  });
  assert.equal(response.status, 202);
  assert.deepEqual(await response.json(), { disconnected: 0 }, "none of them on the node that took it");
  assert.equal(await withTimeout(disconnected, 5000, "disconnect"), "io server disconnect");
  assert.equal(await withTimeout(closed, 5000, "plain close"), 4003);
});
