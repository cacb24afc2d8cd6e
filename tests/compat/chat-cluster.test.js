// Chat across nodes with the Redis store: one conversation whichever node a
// member is on, history that survives restarts, presence across nodes and
// transports (a SIGKILLed node's users go offline), the same inbox everywhere.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, next, ask, record, until, startServer } from "./helpers.js";
import { startRedis, startCluster } from "./cluster-helpers.js";
import { plainClient } from "./chat-helpers.js";

let redis, nodes;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2, ["--chat-open", "--presence-timeout-s", "3"]);
});
after(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

const member = (node, sub) => node.connect({ auth: { token: mintToken({ sub }) }, transports: ["websocket"] });

test("plain on node 1 and Socket.IO on node 2 see each other's messages and receipts, once", async () => {
  const [a, b] = nodes;
  const sio = await member(b, "sio");
  await ask(sio, "chat:join", { roomId: "x-desk" });
  const plain = await plainClient(a.url, { sessionId: "x-desk", token: mintToken({ sub: "plain" }) });
  const seen = record(sio, "chat:message");
  plain.send({ type: "message", content: "across nodes" });
  await until(() => seen.length === 1, 5000, "chat:message on node 2");
  assert.equal(seen[0].senderId, "plain");
  await ask(sio, "chat:send", { roomId: "x-desk", message: "and back" });
  const back = await plain.next((f) => f.type === "message" && f.data.message === "and back", 5000);
  assert.equal(back.data.senderId, "sio");
  await ask(sio, "chat:read", { roomId: "x-desk", messageId: back.data.id });
  assert.equal((await plain.next((f) => f.type === "read", 5000)).data.userId, "sio");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(seen.filter((m) => m.message === "across nodes").length, 1, "no duplicate");
  assert.equal(plain.frames.filter((f) => f.type === "message" && f.data.message === "and back").length, 0, "no duplicate");
  plain.close();
});

test("history and unread counts are the same from every node and survive a node restart", async () => {
  const [a, b] = nodes;
  const alice = await member(a, "alice");
  await ask(alice, "chat:join", { roomId: "durable" });
  const ids = [];
  for (const m of ["first", "second", "third"]) ids.push((await ask(alice, "chat:send", { roomId: "durable", message: m, clientMsgId: m })).id);
  const bobOnB = await member(b, "bob");
  await ask(bobOnB, "chat:join", { roomId: "durable" });
  await ask(bobOnB, "chat:read", { roomId: "durable", messageId: ids[0] });

  // Restart node 1: SIGTERM, then a new process on the same Redis.
  a.proc.kill("SIGTERM");
  assert.equal((await a.exited).code, 0);
  const restarted = await startServer(["--redis-url", redis.url, "--node-id", "n1-again", "--chat-open", "--presence-timeout-s", "3"]);
  nodes[0] = restarted;
  const bobOnNew = await member(restarted, "bob");
  const state = await ask(bobOnNew, "chat:join", { roomId: "durable" });
  assert.deepEqual(state.history.map((m) => m.message), ["first", "second", "third"]);
  assert.equal(state.lastRead, ids[0]);
  assert.equal(state.unread, 2);
  const fromB = await ask(await member(b, "bob"), "chat:join", { roomId: "durable" });
  assert.deepEqual({ unread: fromB.unread, lastRead: fromB.lastRead }, { unread: 2, lastRead: ids[0] });
  // A retried clientMsgId is recognised after the restart too.
  const aliceAgain = await member(restarted, "alice");
  await ask(aliceAgain, "chat:join", { roomId: "durable" });
  assert.equal((await ask(aliceAgain, "chat:send", { roomId: "durable", message: "second", clientMsgId: "second" })).id, ids[1]);
});

test("presence across nodes and transports: one event per change; a SIGKILLed node's users go offline", async () => {
  const [a, b] = nodes;
  const room = "x-presence";
  const alice = await member(a, "alice");
  assert.deepEqual((await ask(alice, "chat:join", { roomId: room })).online, ["alice"]);
  const seen = record(alice, "chat:presence");
  const bobPlain = await plainClient(b.url, { sessionId: room, token: mintToken({ sub: "bob" }) });
  await until(() => seen.length === 1, 5000, "bob online (node 2, plain)");
  assert.deepEqual(seen[0], { roomId: room, userId: "bob", online: true });
  // bob again on node 1 (Socket.IO): still one user online, no event.
  const bobSio = await member(a, "bob");
  assert.deepEqual((await ask(bobSio, "chat:join", { roomId: room })).online, ["alice", "bob"]);
  bobPlain.close();
  // carol on node 2: her event comes after anything bob's changes caused.
  const carol = await member(b, "carol");
  assert.deepEqual((await ask(carol, "chat:join", { roomId: room })).online, ["alice", "bob", "carol"]);
  await until(() => seen.length >= 2, 5000, "carol online");
  assert.deepEqual(seen.slice(1), [{ roomId: room, userId: "carol", online: true }], "bob never went offline");
  bobSio.disconnect();
  await until(() => seen.length >= 3, 5000, "bob offline");
  assert.deepEqual(seen[2], { roomId: room, userId: "bob", online: false });

  // dave on a third node that dies without a word.
  const doomed = await startServer(["--redis-url", redis.url, "--node-id", "n3", "--chat-open", "--presence-timeout-s", "3"]);
  const dave = await member(doomed, "dave");
  await ask(dave, "chat:join", { roomId: room });
  await until(() => seen.length >= 4, 5000, "dave online");
  assert.deepEqual(seen[3], { roomId: room, userId: "dave", online: true });
  const killedAt = Date.now();
  doomed.proc.kill("SIGKILL");
  await doomed.exited;
  await until(() => seen.length >= 5, 8000, "dave offline after his node died");
  assert.deepEqual(seen[4], { roomId: room, userId: "dave", online: false });
  const took = Date.now() - killedAt;
  assert.ok(took <= 3000 + 1000 + 1500, `offline after ${took} ms (timeout 3 s, sweep every 1 s)`);
  const seenByCarol = record(carol, "chat:presence");
  const erin = await member(b, "erin");
  assert.deepEqual((await ask(erin, "chat:join", { roomId: room })).online, ["alice", "carol", "erin"]);
  await until(() => seenByCarol.length >= 1, 5000, "erin online");
  assert.equal(seen.filter((p) => p.userId === "dave" && !p.online).length, 1, "announced once, by one node");
});

test("the inbox is the same from every node", async () => {
  const [a, b] = nodes;
  const onA = await member(a, "inbox");
  const onB = await member(b, "inbox");
  const friend = await member(b, "friend2");
  for (const room of ["ib-1", "ib-2"]) {
    await ask(onA, "chat:join", { roomId: room });
    await ask(friend, "chat:join", { roomId: room });
  }
  await ask(friend, "chat:send", { roomId: "ib-2", message: "two" });
  await new Promise((r) => setTimeout(r, 5)); // a later millisecond
  const last = await ask(friend, "chat:send", { roomId: "ib-1", message: "one" });
  const fromA = await ask(onA, "chat:rooms", {});
  assert.deepEqual(fromA.rooms.map((r) => [r.roomId, r.unread, r.lastMessage?.id]), [["ib-1", 1, last.id], ["ib-2", 1, fromA.rooms[1].lastMessage.id]]);
  assert.deepEqual(await ask(onB, "chat:rooms", {}), fromA);
});
