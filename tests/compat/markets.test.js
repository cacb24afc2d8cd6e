// CONTRACT §3 market rooms: validation, the subscription cap, leaving, ordering.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, next, ask, record, until } from "./helpers.js";

let server;
before(async () => (server = await startServer(["--max-subscriptions", "4", "--rate-limit", "*=1000/s,subscribe:price=1000/s,unsubscribe:price=1000/s"])));
after(() => server.stop());

test("an array subscribes to every symbol; the ack lists the rooms", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  assert.deepEqual(await ask(socket, "subscribe:price", ["BTC", "ETH", "BTC"]), { ok: true, rooms: ["price:BTC", "price:ETH"] });
  const updates = record(socket, "price:update");
  await server.publish("prices", [{ symbol: "BTC", price: 1 }, { symbol: "ETH", price: 2 }, { symbol: "DOGE", price: 3 }]);
  await until(() => updates.length === 2, 3000, "two updates");
  assert.deepEqual(updates.map((u) => u.symbol).sort(), ["BTC", "ETH"]);
});

test("invalid symbols are refused and join nothing", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  for (const bad of ["", "BTC USD", "X".repeat(33), "ä", 42, null, {}, [], ["OK", "NOT OK"], [7]]) {
    const ack = await ask(socket, "subscribe:price", bad);
    assert.equal(typeof ack.error, "string", `refused: ${JSON.stringify(bad)}`);
  }
  const updates = record(socket, "price:update");
  await server.publish("prices", { symbol: "OK", price: 1 });
  assert.deepEqual(await ask(socket, "subscribe:price", "PROBE"), { ok: true, rooms: ["price:PROBE"] });
  assert.deepEqual(updates, [], "the valid half of a refused array was not joined");
});

test("a socket holds at most --max-subscriptions price and trades rooms together", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  assert.equal((await ask(socket, "subscribe:price", ["A", "B", "C"])).ok, true);
  const over = await ask(socket, "subscribe:trades", ["A", "B"]);
  assert.match(over.error, /subscription limit/);
  assert.equal((await ask(socket, "subscribe:trades", "A")).ok, true, "exactly at the cap is fine");
  assert.equal((await ask(socket, "subscribe:price", "A")).ok, true, "re-subscribing a held room costs nothing");
  assert.match((await ask(socket, "subscribe:price", "D")).error, /subscription limit/);
  assert.equal((await ask(socket, "unsubscribe:price", "B")).ok, true);
  assert.equal((await ask(socket, "subscribe:price", "D")).ok, true, "leaving frees a place");
});

test("unsubscribe stops updates; trades and prices are separate rooms", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  await ask(socket, "subscribe:price", "LTC");
  await ask(socket, "subscribe:trades", "LTC");
  assert.deepEqual(await ask(socket, "unsubscribe:price", ["LTC"]), { ok: true, rooms: ["price:LTC"] });
  const updates = record(socket, "price:update");
  const trade = next(socket, "trade:new");
  await server.publish("prices", { symbol: "LTC", price: 80 });
  await server.publish("trades", { symbol: "LTC", qty: 1 });
  assert.deepEqual(await trade, { symbol: "LTC", qty: 1 });
  assert.deepEqual(updates, [], "price:update was sent before the trade and did not arrive");
  assert.deepEqual(await ask(socket, "unsubscribe:trades", "LTC"), { ok: true, rooms: ["trades:LTC"] });
});

test("events of one socket are handled in the order sent (subscribe, unsubscribe, subscribe)", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  for (let i = 0; i < 30; i++) {
    socket.emit("subscribe:price", "ORD");
    socket.emit("unsubscribe:price", "ORD");
  }
  socket.emit("subscribe:price", "ORD");
  socket.emit("unsubscribe:price", "ORD");
  const last = await ask(socket, "subscribe:price", "ORD");
  assert.equal(last.ok, true);
  const update = next(socket, "price:update");
  await server.publish("prices", { symbol: "ORD", price: 9 });
  assert.equal((await update).price, 9, "the last subscribe won");
});
