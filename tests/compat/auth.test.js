// CONTRACT §2: handshake auth, the authenticate event, user and admin rooms.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, mintToken, next, ask, sample } from "./helpers.js";

let server;
before(async () => (server = await startServer(["--metrics-interval-ms", "200"])));
after(() => server.stop());

test("a valid handshake token puts the socket in user:<sub>", async () => {
  const socket = await server.connect({ auth: { token: mintToken({ sub: "42" }) } });
  const note = next(socket, "notification");
  const res = await server.publish("emit", { room: "user:42", event: "notification", data: { text: "filled" } });
  assert.deepEqual(res, { status: 202, body: { accepted: 1 } });
  assert.deepEqual(await note, { text: "filled" });
});

for (const [name, token] of [
  ["bad signature", mintToken({ sub: "1", secret: "wrong" })],
  ["expired", mintToken({ sub: "1", exp: Math.floor(Date.now() / 1000) - 3600 })],
  ["garbage", "not-a-jwt"],
  ["no sub", mintToken({})],
  ["not a string", 12345],
]) {
  test(`handshake with a ${name} token is refused with "Authentication failed"`, async () => {
    const before = sample(await server.metrics(), "roomcast_auth_failures_total") ?? 0;
    const err = await server.connectError({ auth: { token } });
    assert.equal(err.message, "Authentication failed");
    assert.equal(sample(await server.metrics(), "roomcast_auth_failures_total"), before + 1);
  });
}

test("no token connects as anonymous: public data yes, user rooms no", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  assert.deepEqual(await ask(socket, "subscribe:price", "BTC"), { ok: true, rooms: ["price:BTC"] });
  const chat = await ask(socket, "chat:join", { roomId: "lobby" });
  assert.equal(typeof chat.error, "string", "chat is not open to anonymous sockets");
  const note = next(socket, "notification", 300).catch(() => "none");
  await server.publish("emit", { room: "user:undefined", event: "notification", data: 1 });
  assert.equal(await note, "none", "an anonymous socket is in no user room");
});

test("authenticate event: success emits authenticated and acks, then user emits arrive", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const event = next(socket, "authenticated");
  const ack = await ask(socket, "authenticate", mintToken({ sub: "u-7" }));
  assert.deepEqual(ack, { ok: true, userId: "u-7" });
  assert.deepEqual(await event, { userId: "u-7" });
  const note = next(socket, "notification");
  await server.publish("emit", { rooms: ["user:u-7"], event: "notification", data: 1 });
  assert.equal(await note, 1);
});

test("authenticate event: failure emits unauthorized, acks an error and the socket stays usable", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const event = next(socket, "unauthorized");
  const ack = await ask(socket, "authenticate", mintToken({ sub: "x", secret: "nope" }));
  assert.match(ack.error, /Authentication failed/);
  assert.match((await event).message, /Authentication failed/);
  assert.ok(socket.connected);
  assert.deepEqual(await ask(socket, "subscribe:price", "ETH"), { ok: true, rooms: ["price:ETH"] });
  // Without an ack the unauthorized event still arrives.
  const again = next(socket, "unauthorized");
  socket.emit("authenticate", 17);
  assert.match((await again).message, /expected a token string/);
});

test("admins join the admin room and receive this node's metrics", async () => {
  const admin = await server.connect({ auth: { token: mintToken({ sub: "root", role: "admin" }) } });
  const figures = await next(admin, "metrics", 3000);
  for (const key of ["node", "connections", "rooms", "events", "memory", "cpu", "uptime", "ts"]) {
    assert.ok(key in figures, `metrics has ${key}`);
  }
  assert.equal(typeof figures.node, "string");
  assert.ok(figures.connections >= 1);
  assert.ok(figures.memory > 1_000_000, "RSS in bytes");
  assert.ok(Math.abs(figures.ts - Date.now()) < 5000);
});

test("a plain user does not receive admin metrics", async () => {
  const user = await server.connect({ auth: { token: mintToken({ sub: "plain" }) } });
  const admin = await server.connect({ auth: { token: mintToken({ sub: "boss", role: "admin" }) } });
  let userGotMetrics = false;
  user.on("metrics", () => (userGotMetrics = true));
  await next(admin, "metrics", 3000);
  await next(admin, "metrics", 3000);
  assert.equal(userGotMetrics, false);
});
