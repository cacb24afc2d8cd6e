// Chat for real apps on one node (CONTRACT §9): app-defined message types,
// presence, typing, edit and delete (socket and REST), the inbox, and the
// same for plain WebSocket members.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, mintToken, next, ask, record, until } from "./helpers.js";
import { plainClient } from "./chat-helpers.js";

const RATES = "*=1000/s,chat:send=1000/s,chat:join=1000/s,chat:history=1000/s,chat:read=1000/s,chat:edit=1000/s,chat:delete=1000/s,chat:rooms=1000/s";
let server;
// chat:typing keeps its default of 5/s (per socket and per user).
before(async () => (server = await startServer(["--chat-open", "--rate-limit", RATES, "--user-rate-limit", RATES])));
after(() => server.stop());

const user = (sub, claims = {}) => server.connect({ auth: { token: mintToken({ sub, ...claims }) }, transports: ["websocket"] });
let roomSeq = 0;
const freshRoom = () => `apps-${++roomSeq}`;

test("a message type is the app's own kind, kept exactly; IMAGE still means a URL", async () => {
  const room = freshRoom();
  const alice = await user("alice");
  await ask(alice, "chat:join", { roomId: room });
  for (const type of ["text", "poll.v2", "system_notice", "a-b", "x".repeat(32)]) {
    const got = next(alice, "chat:message");
    const ack = await ask(alice, "chat:send", { roomId: room, message: "hi", type });
    assert.equal(ack.ok, true, `${type}: ${JSON.stringify(ack)}`);
    assert.equal((await got).type, type);
  }
  for (const type of ["", "a b", "é", "x".repeat(33), 5]) {
    assert.match((await ask(alice, "chat:send", { roomId: room, message: "hi", type })).error, /type must be 1-32 characters/, String(type));
  }
  assert.match((await ask(alice, "chat:send", { roomId: room, message: "nope", type: "IMAGE" })).error, /URL/);
  const plain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "p" }) });
  plain.send({ type: "message", content: "vote!", messageType: "poll" });
  assert.equal((await plain.next((f) => f.type === "message" && f.data.message === "vote!")).data.type, "poll");
  plain.close();
});

test("presence: online in the join ack, one chat:presence per change, across Socket.IO and plain WebSocket", async () => {
  const room = freshRoom();
  const alice = await user("alice");
  assert.deepEqual((await ask(alice, "chat:join", { roomId: room })).online, ["alice"]);
  const seen = record(alice, "chat:presence");
  const bobPlain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "bob" }) });
  await until(() => seen.length === 1, 3000, "bob online");
  assert.deepEqual(seen[0], { roomId: room, userId: "bob", online: true });
  // bob's second connection (Socket.IO): no change, no event.
  const bobSio = await user("bob");
  assert.deepEqual((await ask(bobSio, "chat:join", { roomId: room })).online, ["alice", "bob"]);
  bobPlain.close();
  // carol's arrival is announced after anything bob's changes caused.
  const carol = await user("carol");
  await ask(carol, "chat:join", { roomId: room });
  await until(() => seen.length >= 2, 3000, "carol online");
  assert.deepEqual(seen.slice(1), [{ roomId: room, userId: "carol", online: true }], "bob stayed online: no event");
  // bob's last connection goes: offline once.
  bobSio.disconnect();
  await until(() => seen.length >= 3, 3000, "bob offline");
  assert.deepEqual(seen[2], { roomId: room, userId: "bob", online: false });
  // chat:leave counts out too.
  assert.deepEqual(await ask(carol, "chat:leave", { roomId: room }), { ok: true });
  await until(() => seen.length >= 4, 3000, "carol offline");
  assert.deepEqual(seen[3], { roomId: room, userId: "carol", online: false });
  const dave = await user("dave");
  assert.deepEqual((await ask(dave, "chat:join", { roomId: room })).online, ["alice", "dave"]);
  await until(() => seen.length >= 5, 3000, "dave online");
  assert.equal(seen.length, 5, "nothing else");
  // A plain client sees presence frames.
  const watcher = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "erin" }) });
  dave.disconnect();
  assert.deepEqual((await watcher.next((f) => f.type === "presence" && f.data.userId === "dave")).data, { roomId: room, userId: "dave", online: false });
  watcher.close();
});

test("typing: relayed to the other members only (Socket.IO and plain), never stored, joined only, rate limited", async () => {
  const room = freshRoom();
  const [alice, bob] = await Promise.all([user("alice"), user("bob")]);
  const outsider = await user("mallory");
  await ask(alice, "chat:join", { roomId: room });
  await ask(bob, "chat:join", { roomId: room });
  const plain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "carol" }) });
  const alicesTyping = record(alice, "chat:typing");
  const toBob = next(bob, "chat:typing");
  assert.deepEqual(await ask(alice, "chat:typing", { roomId: room, typing: true }), { ok: true });
  assert.deepEqual(await toBob, { roomId: room, userId: "alice", typing: true });
  assert.deepEqual((await plain.next((f) => f.type === "typing")).data, { roomId: room, userId: "alice", typing: true });
  plain.send({ type: "typing", typing: false });
  assert.deepEqual(await next(alice, "chat:typing"), { roomId: room, userId: "carol", typing: false });
  assert.deepEqual(alicesTyping, [{ roomId: room, userId: "carol", typing: false }], "the sender never gets its own");
  assert.equal(plain.frames.filter((f) => f.type === "typing").length, 0, "nor does a plain sender");
  assert.match((await ask(outsider, "chat:typing", { roomId: room, typing: true })).error, /join the room first/);
  assert.match((await ask(alice, "chat:typing", { roomId: room, typing: "yes" })).error, /typing must be true or false/);
  assert.deepEqual((await ask(bob, "chat:history", { roomId: room })).messages, [], "not stored");
  const answers = [];
  for (let i = 0; i < 8; i++) answers.push(await ask(bob, "chat:typing", { roomId: room, typing: i % 2 === 0 }));
  assert.ok(answers.some((a) => a.error === "Rate limit exceeded"), JSON.stringify(answers));
  plain.close();
});

test("edit and delete: the author edits, author or admin deletes; members, plain clients and history see it", async () => {
  const room = freshRoom();
  const [alice, bob] = await Promise.all([user("alice"), user("bob")]);
  await ask(alice, "chat:join", { roomId: room });
  await ask(bob, "chat:join", { roomId: room });
  const plain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "carol" }) });
  const first = await ask(alice, "chat:send", { roomId: room, message: "helo" });
  const second = await ask(bob, "chat:send", { roomId: room, message: "spam" });
  const third = await ask(alice, "chat:send", { roomId: room, message: "bye" });

  assert.deepEqual(await ask(bob, "chat:edit", { roomId: room, messageId: first.id, message: "hacked" }), { error: "only the author may edit this message" });
  const edited = next(bob, "chat:edited");
  const ack = await ask(alice, "chat:edit", { roomId: room, messageId: first.id, message: "hello" });
  assert.equal(ack.ok, true);
  const event = await edited;
  assert.deepEqual(event, { roomId: room, id: first.id, message: "hello", editedAt: ack.editedAt });
  assert.ok(Math.abs(event.editedAt - Date.now()) < 5000);
  assert.deepEqual((await plain.next((f) => f.type === "edited")).data, event);

  assert.deepEqual(await ask(alice, "chat:delete", { roomId: room, messageId: second.id }), { error: "only the author or an admin may delete this message" });
  const admin = await user("ops", { role: "admin" });
  await ask(admin, "chat:join", { roomId: room });
  const deleted = next(alice, "chat:deleted");
  assert.deepEqual(await ask(admin, "chat:delete", { roomId: room, messageId: second.id }), { ok: true, id: second.id });
  assert.deepEqual(await deleted, { roomId: room, id: second.id });
  assert.deepEqual((await plain.next((f) => f.type === "deleted")).data, { roomId: room, id: second.id });
  assert.deepEqual(await ask(alice, "chat:delete", { roomId: room, messageId: third.id }), { ok: true, id: third.id });
  assert.match((await ask(alice, "chat:edit", { roomId: room, messageId: third.id, message: "again" })).error, /deleted/);
  assert.match((await ask(alice, "chat:edit", { roomId: room, messageId: "1-0", message: "x" })).error, /unknown messageId/);

  const history = (await ask(bob, "chat:history", { roomId: room })).messages;
  assert.deepEqual(history.map((m) => m.id), [first.id, second.id, third.id], "ids keep their places");
  assert.equal(history[0].message, "hello");
  assert.equal(history[0].editedAt, ack.editedAt);
  assert.deepEqual(history[1], { id: second.id, roomId: room, deleted: true });
  assert.deepEqual(history[2], { id: third.id, roomId: room, deleted: true });
  const newcomer = await ask(await user("dave"), "chat:join", { roomId: room });
  assert.equal(newcomer.unread, 1, "unread counts the live messages only");
  plain.close();
});

test("REST PATCH and DELETE /api/v1/chat/{roomId}/messages/{id}: 200, 403, 404, private rooms", async () => {
  const room = freshRoom();
  const bob = await user("bob");
  await ask(bob, "chat:join", { roomId: room });
  const sent = await ask(bob, "chat:send", { roomId: room, message: "typo" });
  const call = (method, id, sub, body, claims = {}) =>
    fetch(`${server.url}/api/v1/chat/${room}/messages/${id}`, {
      method,
      headers: { authorization: `Bearer ${mintToken({ sub, ...claims })}` },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const edited = next(bob, "chat:edited");
  const res = await call("PATCH", sent.id, "bob", { message: "fixed" });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.message, "fixed");
  assert.equal((await edited).editedAt, body.editedAt);
  const other = await call("PATCH", sent.id, "eve", { message: "mine now" });
  assert.equal(other.status, 403);
  assert.deepEqual(await other.json(), { error: "only the author may edit this message" });
  assert.equal((await call("PATCH", "123-0", "bob", { message: "x" })).status, 404);
  assert.equal((await call("PATCH", "nonsense", "bob", { message: "x" })).status, 404);
  assert.equal((await call("PATCH", sent.id, "bob", { message: "" })).status, 400);
  assert.equal((await call("PATCH", sent.id, "bob", { message: "x" }, { chat: ["elsewhere-*"] })).status, 403, "the room is checked first");
  assert.equal((await call("DELETE", sent.id, "eve")).status, 403);
  assert.equal((await call("DELETE", sent.id, "bob", null, { chat: ["elsewhere-*"] })).status, 403);
  const deleted = next(bob, "chat:deleted");
  const del = await call("DELETE", sent.id, "bob");
  assert.equal(del.status, 200);
  assert.deepEqual(await del.json(), { id: sent.id, roomId: room, deleted: true });
  assert.deepEqual(await deleted, { roomId: room, id: sent.id });
  assert.equal((await call("PATCH", sent.id, "bob", { message: "x" })).status, 409);
  assert.equal((await call("DELETE", "123-0", "ops", null, { role: "admin" })).status, 404);
  const unauthenticated = await fetch(`${server.url}/api/v1/chat/${room}/messages/${sent.id}`, { method: "DELETE" });
  assert.equal(unauthenticated.status, 401);
});

test("chat:rooms: the user's rooms with unread, lastRead and lastMessage, most recent first, the same from every device; refused rooms left out", async () => {
  const [a, b, c] = [freshRoom(), freshRoom(), freshRoom()];
  const phone = await user("inbox-user");
  for (const room of [a, b, c]) await ask(phone, "chat:join", { roomId: room });
  const friend = await user("friend");
  for (const room of [a, b, c]) await ask(friend, "chat:join", { roomId: room });
  const inA = await ask(friend, "chat:send", { roomId: a, message: "a1" });
  await ask(friend, "chat:send", { roomId: c, message: "c1" });
  const lastC = await ask(friend, "chat:send", { roomId: c, message: "c2" });
  await new Promise((r) => setTimeout(r, 5)); // a later millisecond for the next activity
  const lastA = await ask(friend, "chat:send", { roomId: a, message: "a2" });
  await ask(phone, "chat:read", { roomId: a, messageId: inA.id });

  const inbox = await ask(phone, "chat:rooms", {});
  assert.equal(inbox.ok, true);
  assert.deepEqual(inbox.rooms.map((r) => r.roomId), [a, c, b]);
  assert.deepEqual(
    inbox.rooms.map(({ roomId, unread, lastRead }) => ({ roomId, unread, lastRead })),
    [
      { roomId: a, unread: 1, lastRead: inA.id },
      { roomId: c, unread: 2, lastRead: null },
      { roomId: b, unread: 0, lastRead: null },
    ],
  );
  assert.equal(inbox.rooms[0].lastMessage.id, lastA.id);
  assert.equal(inbox.rooms[1].lastMessage.id, lastC.id);
  assert.equal(inbox.rooms[2].lastMessage, null);
  const laptop = await user("inbox-user");
  assert.deepEqual(await ask(laptop, "chat:rooms", {}), inbox, "the same from another device");
  assert.deepEqual((await laptop.timeout(5000).emitWithAck("chat:rooms")).rooms.length, 3, "no payload: defaults");
  assert.deepEqual((await ask(laptop, "chat:rooms", { limit: 1 })).rooms.map((r) => r.roomId), [a]);
  // A token that no longer allows room a: a is left out.
  const narrowed = await user("inbox-user", { chat: [b, c] });
  assert.deepEqual((await ask(narrowed, "chat:rooms", {})).rooms.map((r) => r.roomId), [c, b]);
  assert.match((await ask(laptop, "chat:rooms", { limit: 0 })).error, /limit/);
  const anon = await server.connect({ transports: ["websocket"] });
  assert.equal((await ask(anon, "chat:rooms", {})).error, "authentication required");
});
