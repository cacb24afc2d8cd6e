// Chat on one node (in-memory store): Socket.IO, REST and plain WebSocket members.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, mintToken, next, ask, record, until, PUBLISH_KEY } from "./helpers.js";
import { plainClient } from "./chat-helpers.js";

let server;
before(async () => (server = await startServer(["--chat-open", "--rate-limit", "*=1000/s,chat:send=1000/s,chat:join=1000/s,chat:history=1000/s,chat:read=1000/s", "--user-rate-limit", "*=1000/s,chat:send=1000/s,chat:join=1000/s,chat:history=1000/s,chat:read=1000/s"])));
after(() => server.stop());

const user = (sub) => server.connect({ auth: { token: mintToken({ sub }) }, transports: ["websocket"] });
let roomSeq = 0;
const freshRoom = () => `desk-${++roomSeq}`;

test("two users chat: persisted, broadcast to the room with the sender, acked with the id", async () => {
  const room = freshRoom();
  const [alice, bob] = await Promise.all([user("alice"), user("bob")]);
  const joined = await ask(alice, "chat:join", { roomId: room });
  assert.deepEqual(joined, { ok: true, history: [], unread: 0, lastRead: null, online: ["alice"] });
  await ask(bob, "chat:join", { roomId: room });
  const toAlice = next(alice, "chat:message");
  const toBob = next(bob, "chat:message");
  const ack = await ask(alice, "chat:send", { roomId: room, message: "morning", clientMsgId: "a-1" });
  assert.equal(ack.ok, true);
  const got = await toBob;
  assert.deepEqual(await toAlice, got, "the sender gets it too");
  assert.equal(got.id, ack.id);
  assert.deepEqual(
    { roomId: got.roomId, senderId: got.senderId, message: got.message, type: got.type, clientMsgId: got.clientMsgId },
    { roomId: room, senderId: "alice", message: "morning", type: "TEXT", clientMsgId: "a-1" },
  );
  assert.ok(Math.abs(got.ts - Date.now()) < 5000);
  const history = await ask(bob, "chat:history", { roomId: room });
  assert.deepEqual(history, { ok: true, messages: [got] });
});

test("anonymous sockets and non-members get error acks", async () => {
  const room = freshRoom();
  const anon = await server.connect({ transports: ["websocket"] });
  assert.equal((await ask(anon, "chat:join", { roomId: room })).error, "authentication required");
  const carol = await user("carol");
  assert.match((await ask(carol, "chat:send", { roomId: room, message: "hi" })).error, /join the room first/);
  assert.match((await ask(carol, "chat:history", { roomId: room })).error, /join the room first/);
  for (const bad of [{}, { roomId: "" }, { roomId: "a b" }, "desk", null]) {
    assert.equal(typeof (await ask(carol, "chat:join", bad)).error, "string", JSON.stringify(bad));
  }
  await ask(carol, "chat:join", { roomId: room });
  for (const bad of [{ roomId: room }, { roomId: room, message: "" }, { roomId: room, message: 7 }, { roomId: room, message: "x", type: "a b" }, { roomId: room, message: "x", type: "x".repeat(33) }, { roomId: room, message: "not-a-url", type: "IMAGE" }, { roomId: room, message: "y".repeat(4001) }]) {
    assert.equal(typeof (await ask(carol, "chat:send", bad)).error, "string", JSON.stringify(bad).slice(0, 80));
  }
  const image = await ask(carol, "chat:send", { roomId: room, message: "https://img.example/chart.png", type: "IMAGE" });
  assert.equal(image.ok, true);
  assert.ok(carol.connected);
});

test("unread counts follow reads; read receipts are broadcast; lastRead is null until a read", async () => {
  const room = freshRoom();
  const alice = await user("alice");
  await ask(alice, "chat:join", { roomId: room });
  const ids = [];
  for (const text of ["one", "two", "three"]) ids.push((await ask(alice, "chat:send", { roomId: room, message: text })).id);
  const bob = await user("bob");
  const first = await ask(bob, "chat:join", { roomId: room });
  assert.equal(first.unread, 3);
  assert.equal(first.lastRead, null);
  assert.deepEqual(first.history.map((m) => m.message), ["one", "two", "three"]);
  const receipt = next(alice, "chat:read");
  assert.deepEqual(await ask(bob, "chat:read", { roomId: room, messageId: ids[1] }), { ok: true, lastRead: ids[1] });
  assert.deepEqual(await receipt, { roomId: room, userId: "bob", messageId: ids[1] });
  const again = await ask(await user("bob"), "chat:join", { roomId: room });
  assert.equal(again.unread, 1);
  assert.equal(again.lastRead, ids[1]);
  assert.equal((await ask(await user("alice"), "chat:join", { roomId: room })).unread, 0, "sending moves the sender's last read");
  assert.match((await ask(bob, "chat:read", { roomId: room, messageId: "nope" })).error, /message id/);
});

test("the same clientMsgId stores and broadcasts once and acks the first id", async () => {
  const room = freshRoom();
  const alice = await user("alice");
  await ask(alice, "chat:join", { roomId: room });
  const seen = record(alice, "chat:message");
  const first = await ask(alice, "chat:send", { roomId: room, message: "buy 10", clientMsgId: "retry-me" });
  const second = await ask(alice, "chat:send", { roomId: room, message: "buy 10", clientMsgId: "retry-me" });
  assert.equal(second.id, first.id);
  await until(() => seen.length >= 1, 2000, "broadcast");
  const history = await ask(alice, "chat:history", { roomId: room });
  assert.equal(history.messages.length, 1);
  assert.equal(seen.length, 1, "one broadcast");
});

test("history pages backwards with before and limit, newest last", async () => {
  const room = freshRoom();
  const alice = await user("alice");
  await ask(alice, "chat:join", { roomId: room });
  for (let i = 0; i < 25; i++) await ask(alice, "chat:send", { roomId: room, message: `m${i}` });
  const newest = await ask(alice, "chat:history", { roomId: room, limit: 10 });
  assert.deepEqual(newest.messages.map((m) => m.message), Array.from({ length: 10 }, (_, i) => `m${15 + i}`));
  const older = await ask(alice, "chat:history", { roomId: room, before: newest.messages[0].id, limit: 10 });
  assert.deepEqual(older.messages.map((m) => m.message), Array.from({ length: 10 }, (_, i) => `m${5 + i}`));
  const oldest = await ask(alice, "chat:history", { roomId: room, before: older.messages[0].id, limit: 10 });
  assert.deepEqual(oldest.messages.map((m) => m.message), ["m0", "m1", "m2", "m3", "m4"]);
  assert.match((await ask(alice, "chat:history", { roomId: room, limit: 1000 })).error, /limit/);
});

test("chat:leave stops delivery", async () => {
  const room = freshRoom();
  const [alice, bob] = await Promise.all([user("alice"), user("bob")]);
  await ask(alice, "chat:join", { roomId: room });
  await ask(bob, "chat:join", { roomId: room });
  assert.deepEqual(await ask(bob, "chat:leave", { roomId: room }), { ok: true });
  const bobs = record(bob, "chat:message");
  const alices = next(alice, "chat:message");
  await ask(alice, "chat:send", { roomId: room, message: "gone?" });
  await alices;
  assert.deepEqual(bobs, []);
});

test("REST send: 201 with the stored message, reaches sockets; 200 on retry; 401 and 400", async () => {
  const room = freshRoom();
  const bob = await user("bob");
  await ask(bob, "chat:join", { roomId: room });
  const url = `${server.url}/api/v1/chat/${room}/messages`;
  const post = (body, token = mintToken({ sub: "svc-user" })) =>
    fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const delivered = next(bob, "chat:message");
  const res = await post({ message: "from REST", clientMsgId: "r1" });
  assert.equal(res.status, 201);
  const stored = await res.json();
  assert.equal(stored.senderId, "svc-user");
  assert.deepEqual(await delivered, stored);
  const retry = await post({ message: "from REST", clientMsgId: "r1" });
  assert.equal(retry.status, 200);
  assert.equal((await retry.json()).id, stored.id);
  assert.equal((await post({ message: "x" }, "bad-token")).status, 401);
  assert.equal((await post({ message: "x" }, PUBLISH_KEY)).status, 401, "the publish key is not a user token");
  const invalid = await post({ text: "wrong field" });
  assert.equal(invalid.status, 400);
  assert.match((await invalid.json()).error, /missing message/);
  const badRoom = await fetch(`${server.url}/api/v1/chat/bad%20room/messages`, { method: "POST", headers: { authorization: `Bearer ${mintToken({ sub: "u" })}` }, body: "{}" });
  assert.equal(badRoom.status, 400);
});

test("plain WebSocket and Socket.IO members of one room see each other", async () => {
  const room = freshRoom();
  const sio = await user("sio-user");
  await ask(sio, "chat:join", { roomId: room });
  const plain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "plain-user" }) });
  const toSio = next(sio, "chat:message");
  plain.send({ type: "message", content: "hello from flutter", clientMsgId: "p1" });
  const got = await toSio;
  assert.equal(got.senderId, "plain-user");
  assert.equal(got.message, "hello from flutter");
  const echo = await plain.next((f) => f.type === "message");
  assert.deepEqual(echo.data, got, "the plain sender gets its own message as { type, data }");
  await ask(sio, "chat:send", { roomId: room, message: "hi back" });
  const back = await plain.next((f) => f.type === "message");
  assert.equal(back.data.message, "hi back");
  assert.equal(back.data.senderId, "sio-user");
  await ask(sio, "chat:read", { roomId: room, messageId: back.data.id });
  const receipt = await plain.next((f) => f.type === "read");
  assert.deepEqual(receipt.data, { roomId: room, userId: "sio-user", messageId: back.data.id });
  plain.close();
});

test("plain WebSocket: ping/pong, malformed frames answered with errors, connection stays", async () => {
  const room = freshRoom();
  const plain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "p" }) });
  plain.send({ type: "ping" });
  assert.deepEqual(await plain.next((f) => f.type === "pong"), { type: "pong" });
  for (const [frame, needle] of [["{not json", /malformed JSON/], [{ content: "x" }, /missing type/], [{ type: "dance" }, /unknown type/], [{ type: "message" }, /missing content/], [{ type: "message", content: 5 }, /must be a string/], [{ type: "read", messageId: "zz" }, /message id/]]) {
    plain.send(frame);
    const err = await plain.next((f) => f.type === "error");
    assert.match(err.message, needle);
  }
  plain.ws.send(Buffer.from([1, 2, 3]));
  assert.match((await plain.next((f) => f.type === "error")).message, /JSON text/);
  plain.send({ type: "ping" });
  assert.deepEqual(await plain.next((f) => f.type === "pong"), { type: "pong" }, "still open");
  plain.close();
});

test("plain WebSocket: a bad or missing token is refused with 401 before the upgrade", async () => {
  for (const token of [undefined, "garbage", mintToken({ sub: "x", secret: "other" }), mintToken({ sub: "x", exp: 1 })]) {
    const err = await plainClient(server.url, { sessionId: "r", token }).then(() => null, (e) => e);
    assert.equal(err?.status, 401, String(token).slice(0, 20));
  }
  const badRoom = await plainClient(server.url, { sessionId: "bad room", token: mintToken({ sub: "x" }) }).then(() => null, (e) => e);
  assert.equal(badRoom?.status, 400);
});
