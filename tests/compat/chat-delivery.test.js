// Nothing acknowledged is lost (issue: exactly once across Redis faults):
// every stored chat message reaches every member connected anywhere, as the
// client sees it — also when Redis stalls mid-send (the ack failed, the
// message was stored) and right after Redis comes back. Two nodes, a real
// redis-server of the test's own; members drop ids they already have.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, ask, until } from "./helpers.js";
import { startRedis, startCluster, untilStatus } from "./cluster-helpers.js";

let redis, nodes;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2, [
    "--chat-open",
    "--rate-limit",
    "*=1000/s,chat:send=1000/s",
    "--user-rate-limit",
    "*=1000/s,chat:send=1000/s",
  ]);
});
after(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

/** A member that keeps the distinct message ids it received, in order. */
async function member(node, sub, roomId) {
  const socket = await node.connect({ auth: { token: mintToken({ sub }) }, transports: ["websocket"] });
  const ids = [];
  const texts = new Map();
  socket.on("chat:message", (m) => {
    if (!texts.has(m.id)) {
      ids.push(m.id);
      texts.set(m.id, m.message);
    }
  });
  assert.equal((await ask(socket, "chat:join", { roomId })).ok, true);
  return { socket, ids, texts };
}

test("a message stored while Redis stalled reaches the other node once its sender retries", async () => {
  const [a, b] = nodes;
  const sender = await member(a, "stall-sender", "stall");
  const reader = await member(b, "stall-reader", "stall");
  redis.proc.kill("SIGSTOP");
  let first;
  try {
    first = await ask(sender.socket, "chat:send", { roomId: "stall", message: "during the stall", clientMsgId: "s1" });
  } finally {
    redis.proc.kill("SIGCONT");
  }
  assert.match(first.error ?? "", /unavailable/, `the ack during the stall failed: ${JSON.stringify(first)}`);
  await Promise.all(nodes.map((n) => untilStatus(`${n.url}/readyz`, 200, 15000)));
  const retry = await ask(sender.socket, "chat:send", { roomId: "stall", message: "during the stall", clientMsgId: "s1" });
  assert.equal(retry.ok, true);
  await until(() => reader.texts.has(retry.id), 10000, "the stored message on the other node");
  assert.equal([...reader.texts.values()].filter((t) => t === "during the stall").length, 1);
});

test("messages sent right after Redis comes back reach every node", async () => {
  const [a, b] = nodes;
  const sender = await member(a, "back-sender", "back");
  const reader = await member(b, "back-reader", "back");
  await redis.kill();
  await Promise.all(nodes.map((n) => untilStatus(`${n.url}/readyz`, 503)));
  redis = await startRedis(redis.port);
  const acked = [];
  const deadline = Date.now() + 15000;
  // Send as soon as the store answers again (before the nodes count Redis as up).
  while (acked.length < 40) {
    if (Date.now() > deadline) throw new Error(`only ${acked.length} sends acked`);
    const ack = await ask(sender.socket, "chat:send", { roomId: "back", message: `m${acked.length}`, clientMsgId: `b${acked.length}` });
    if (ack.ok) acked.push(ack.id);
    else await new Promise((r) => setTimeout(r, 20));
  }
  await until(() => acked.every((id) => reader.texts.has(id)), 15000, "every acked message on the other node");
  assert.deepEqual(
    reader.ids.filter((id) => acked.includes(id)),
    acked,
    "in order, each once",
  );
});
