// Chat across nodes with the Redis store: one conversation whichever node a
// member is on, and history that survives restarts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, next, ask, record, until, startServer } from "./helpers.js";
import { startRedis, startCluster } from "./cluster-helpers.js";
import { plainClient } from "./chat-helpers.js";

let redis, nodes;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2, ["--chat-open"]);
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
  const restarted = await startServer(["--redis-url", redis.url, "--node-id", "n1-again", "--chat-open"]);
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
