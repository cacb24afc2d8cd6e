// The real socket.io-client v4 over each transport: connect, ack, room, price:update.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, next, ask } from "./helpers.js";

let server;
before(async () => (server = await startServer()));
after(() => server.stop());

const transports = {
  "websocket only": { transports: ["websocket"] },
  "polling only": { transports: ["polling"] },
};

for (const [name, opts] of Object.entries(transports)) {
  test(`${name}: subscribe, ack and price:update`, async () => {
    const socket = await server.connect(opts);
    assert.equal(socket.io.engine.transport.name, opts.transports[0]);
    const ack = await ask(socket, "subscribe:price", "BTC-USD");
    assert.deepEqual(ack, { ok: true, rooms: ["price:BTC-USD"] });
    const update = next(socket, "price:update");
    const res = await server.publish("prices", { symbol: "BTC-USD", price: 64000.5, ts: 1700000000000 });
    assert.deepEqual(res, { status: 202, body: { accepted: 1 } });
    assert.deepEqual(await update, { symbol: "BTC-USD", price: 64000.5, ts: 1700000000000 });
  });
}

test("default client upgrades from polling to websocket and keeps its rooms", async () => {
  const socket = await server.connect();
  if (socket.io.engine.transport.name !== "websocket") {
    await next(socket.io.engine, "upgrade", 5000);
  }
  assert.equal(socket.io.engine.transport.name, "websocket");
  await ask(socket, "subscribe:trades", ["ETH"]);
  const trade = next(socket, "trade:new");
  await server.publish("trades", { symbol: "ETH", price: 3000, qty: 2, side: "buy", id: "t1" });
  assert.deepEqual(await trade, { symbol: "ETH", price: 3000, qty: 2, side: "buy", id: "t1" });
});

test("price:update without ts carries the server's receive time", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  await ask(socket, "subscribe:price", "SOL");
  const before = Date.now();
  const update = next(socket, "price:update");
  await server.publish("prices", [{ symbol: "SOL", price: 150 }]);
  const got = await update;
  assert.equal(got.symbol, "SOL");
  assert.equal(got.price, 150);
  assert.ok(got.ts >= before - 5 && got.ts <= Date.now() + 5, `ts ${got.ts} near now`);
});

test("a client reconnects after its transport drops and can subscribe again", async () => {
  const socket = await server.connect({ transports: ["websocket"], reconnection: true, reconnectionDelay: 50 });
  const firstId = socket.id;
  const reconnected = next(socket.io, "reconnect", 5000);
  socket.io.engine.close();
  await reconnected;
  assert.notEqual(socket.id, firstId);
  assert.deepEqual(await ask(socket, "subscribe:price", "BTC"), { ok: true, rooms: ["price:BTC"] });
});
