// Bad input never hurts: errors for the sender, nothing for anyone else.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startServer, next, ask, withTimeout } from "./helpers.js";

let server;
before(async () => (server = await startServer(["--max-payload", "65536", "--rate-limit", "*=1000/s,subscribe:price=1000/s"])));
after(() => server.stop());

test("malformed payloads get an error ack and the socket keeps working", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const cases = [
    () => socket.timeout(3000).emitWithAck("subscribe:price"),
    () => socket.timeout(3000).emitWithAck("subscribe:price", Buffer.from([1, 2, 3])),
    () => socket.timeout(3000).emitWithAck("subscribe:trades", { symbol: "BTC" }),
    () => socket.timeout(3000).emitWithAck("unsubscribe:price", true),
    () => socket.timeout(3000).emitWithAck("authenticate", { nested: { deep: [1, 2] } }),
    () => socket.timeout(3000).emitWithAck("no:such:event", "x"),
  ];
  for (const send of cases) {
    const ack = await send();
    assert.equal(typeof ack.error, "string", `error ack for ${send}`);
    assert.equal(ack.ok, undefined);
  }
  assert.ok(socket.connected);
  assert.deepEqual(await ask(socket, "subscribe:price", "STILL-OK"), { ok: true, rooms: ["price:STILL-OK"] });
});

test("without an ack, a refused event comes back as an error event", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const error = next(socket, "error");
  socket.emit("subscribe:price", 12);
  assert.deepEqual(Object.keys(await error).sort(), ["event", "message"]);
  const unknown = next(socket, "error");
  socket.emit("nope");
  const got = await unknown;
  assert.equal(got.event, "nope");
  assert.match(got.message, /unknown event/);
});

test("a message over --max-payload closes only the sender's connection", async () => {
  const bystander = await server.connect({ transports: ["websocket"] });
  await ask(bystander, "subscribe:price", "SAFE");
  const offender = await server.connect({ transports: ["websocket"] });
  const dropped = next(offender, "disconnect", 5000);
  offender.emit("subscribe:price", "X".repeat(200_000));
  assert.equal(await dropped, "transport close");
  const update = next(bystander, "price:update");
  await server.publish("prices", { symbol: "SAFE", price: 1 });
  assert.equal((await update).price, 1);
});

test("a polling request over --max-payload is refused; others carry on", async () => {
  const offender = await server.connect({ transports: ["polling"] });
  const bystander = await server.connect({ transports: ["polling"] });
  const dropped = next(offender, "disconnect", 5000);
  offender.emit("subscribe:price", "Y".repeat(200_000));
  await dropped;
  assert.deepEqual(await ask(bystander, "subscribe:price", "P"), { ok: true, rooms: ["price:P"] });
});

test("raw protocol garbage on a WebSocket harms nobody else", async () => {
  const bystander = await server.connect({ transports: ["websocket"] });
  const frames = ["42[", "4", "42\"text\"", "45-1[]", "42[1,2]", "43abc[]", "9", "", "40{bad json", "\u0000\u0001"];
  for (const frame of frames) {
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    await withTimeout(new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); }), 3000, "ws open");
    ws.send("40");
    ws.send(frame);
    ws.send(Buffer.from([0xff, 0x00, 0x13]));
    await new Promise((r) => setTimeout(r, 20));
    ws.terminate();
  }
  assert.ok(bystander.connected);
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await ask(bystander, "subscribe:price", "ALIVE"), { ok: true, rooms: ["price:ALIVE"] });
});
