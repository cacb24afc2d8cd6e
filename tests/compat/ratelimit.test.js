// Per-socket, per-event rate limits: refused events get `error` (+ error ack), the socket stays.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, next, ask, record, sample, until } from "./helpers.js";

let server;
before(async () => (server = await startServer(["--rate-limit", "subscribe:price=3/s,*=5/s"])));
after(() => server.stop());

test("a burst over N/s is refused with Rate limit exceeded and retryAfterMs", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const errors = record(socket, "error");
  const acks = await Promise.all([1, 2, 3, 4, 5].map((i) => ask(socket, "subscribe:price", `S${i}`)));
  assert.deepEqual(acks.filter((a) => a.ok).length, 3);
  const refused = acks.filter((a) => a.error);
  assert.equal(refused.length, 2);
  for (const ack of refused) {
    assert.equal(ack.error, "Rate limit exceeded");
    assert.ok(ack.retryAfterMs > 0 && ack.retryAfterMs <= 1000);
  }
  await until(() => errors.length === 2, 2000, "two error events");
  for (const e of errors) {
    assert.equal(e.event, "subscribe:price");
    assert.equal(e.message, "Rate limit exceeded");
    assert.ok(e.retryAfterMs > 0);
  }
  assert.ok(socket.connected, "still connected");
  const metrics = await server.metrics();
  assert.equal(sample(metrics, 'roomcast_rate_limited_total{event="subscribe:price"}'), 2);
  // Other events have their own bucket.
  assert.deepEqual(await ask(socket, "subscribe:trades", "T"), { ok: true, rooms: ["trades:T"] });
  // After the refill the event is admitted again.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await ask(socket, "subscribe:price", "LATER")).ok, true);
});

test("a refused event is not processed and other sockets are unaffected", async () => {
  const noisy = await server.connect({ transports: ["websocket"] });
  const quiet = await server.connect({ transports: ["websocket"] });
  const acks = await Promise.all([..."ABCDEFGH"].map((s) => ask(noisy, "subscribe:price", `N${s}`)));
  const refusedSymbols = acks.map((a, i) => (a.error ? `N${"ABCDEFGH"[i]}` : null)).filter(Boolean);
  assert.equal(refusedSymbols.length, 5);
  const updates = record(noisy, "price:update");
  await server.publish("prices", refusedSymbols.map((symbol) => ({ symbol, price: 1 })));
  assert.deepEqual(await ask(quiet, "subscribe:price", "Q"), { ok: true, rooms: ["price:Q"] });
  const quietUpdate = next(quiet, "price:update");
  await server.publish("prices", { symbol: "Q", price: 2 });
  assert.equal((await quietUpdate).price, 2);
  assert.deepEqual(updates, [], "refused subscriptions joined nothing");
});

test("unknown events fall under * and are limited too", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const acks = await Promise.all([1, 2, 3, 4, 5, 6, 7].map(() => ask(socket, "made:up", 1)));
  assert.equal(acks.filter((a) => a.error === "Rate limit exceeded").length, 2);
  assert.equal(acks.filter((a) => /unknown event/.test(a.error)).length, 5);
});
