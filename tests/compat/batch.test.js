// price:batch: the latest price per symbol per window, only subscribed symbols,
// only to sockets for which something changed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, next, ask, record, until, sample } from "./helpers.js";

let server;
before(async () => (server = await startServer(["--batch-interval-ms", "100"])));
after(() => server.stop());

test("a window coalesces to the latest price per symbol, filtered per socket", async () => {
  const both = await server.connect({ transports: ["websocket"] });
  const ethOnly = await server.connect({ transports: ["polling"] });
  const idle = await server.connect({ transports: ["websocket"] });
  await ask(both, "subscribe:price", ["BTC", "ETH"]);
  await ask(ethOnly, "subscribe:price", "ETH");
  await ask(idle, "subscribe:price", "NOTHING");
  const idleBatches = record(idle, "price:batch");
  const bothBatch = next(both, "price:batch");
  const ethBatch = next(ethOnly, "price:batch");
  await server.publish("prices", [
    { symbol: "BTC", price: 1 },
    { symbol: "ETH", price: 10 },
    { symbol: "BTC", price: 2 },
    { symbol: "XRP", price: 5 },
    { symbol: "BTC", price: 3 },
  ]);
  const got = await bothBatch;
  assert.deepEqual(new Map(got), new Map([["BTC", 3], ["ETH", 10]]));
  assert.equal(got.length, 2);
  assert.deepEqual(await ethBatch, [["ETH", 10]]);
  // The next windows carry nothing new: no batch, and never an empty one.
  const later = record(both, "price:batch");
  await new Promise((r) => setTimeout(r, 350));
  assert.deepEqual(later, []);
  assert.deepEqual(idleBatches, []);
  const metrics = await server.metrics();
  assert.ok(sample(metrics, "roomcast_batch_symbols_count") >= 1);
});

test("prices in successive windows arrive in successive batches", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  await ask(socket, "subscribe:price", "ADA");
  const batches = record(socket, "price:batch");
  await server.publish("prices", { symbol: "ADA", price: 1 });
  await until(() => batches.length === 1, 2000, "first batch");
  await server.publish("prices", { symbol: "ADA", price: 2 });
  await until(() => batches.length === 2, 2000, "second batch");
  assert.deepEqual(batches, [[["ADA", 1]], [["ADA", 2]]]);
});

test("after unsubscribing, a socket gets no batch for that symbol", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  await ask(socket, "subscribe:price", ["DOT", "AVAX"]);
  await ask(socket, "unsubscribe:price", "DOT");
  const batch = next(socket, "price:batch");
  await server.publish("prices", [{ symbol: "DOT", price: 1 }, { symbol: "AVAX", price: 2 }]);
  assert.deepEqual(await batch, [["AVAX", 2]]);
});
