// The offline delivery hook (--chat-webhook-url): one signed POST per stored
// message with the members who have no live connection in the room, retried
// with back-off, never delaying chat:send.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHmac } from "node:crypto";
import { startServer, mintToken, ask, record, until, sample, PUBLISH_KEY } from "./helpers.js";
import { plainClient } from "./chat-helpers.js";

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** A local HTTP server; `answer(request, n)` decides each reply (n counts from 1). */
async function hook(answer) {
  const requests = [];
  const open = new Set();
  const srv = http.createServer((req, res) => {
    open.add(res);
    res.on("close", () => open.delete(res));
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      requests.push({ headers: req.headers, body });
      answer(res, requests.length);
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  cleanup.push(async () => {
    open.forEach((res) => res.destroy());
    await new Promise((r) => srv.close(r));
  });
  return { url: `http://127.0.0.1:${srv.address().port}/push`, requests };
}

test("fails twice then succeeds: one signed delivery per message, to the members without a live connection", async () => {
  const target = await hook((res, n) => {
    res.writeHead(n <= 2 ? 503 : 204);
    res.end();
  });
  const server = await startServer(["--chat-open", "--chat-webhook-url", target.url]);
  cleanup.push(() => server.stop());
  const user = (sub) => server.connect({ auth: { token: mintToken({ sub }) }, transports: ["websocket"] });
  const room = "hooked";
  const [alice, bob] = await Promise.all([user("alice"), user("bob")]);
  await ask(alice, "chat:join", { roomId: room });
  const presence = record(alice, "chat:presence");
  await ask(bob, "chat:join", { roomId: room });
  await until(() => presence.length === 1, 3000, "bob online");
  bob.disconnect(); // a member who is away
  await until(() => presence.length === 2, 3000, "bob offline");
  assert.deepEqual(presence[1], { roomId: room, userId: "bob", online: false });
  const plain = await plainClient(server.url, { sessionId: room, token: mintToken({ sub: "carol" }) }); // online, plain
  await ask(await user("dave"), "chat:join", { roomId: "elsewhere" }); // not a member

  const sent = await ask(alice, "chat:send", { roomId: room, message: "ping bob" });
  await until(() => target.requests.length >= 3, 8000, "three attempts");
  for (const { headers, body } of target.requests) {
    const expected = "sha256=" + createHmac("sha256", PUBLISH_KEY).update(body).digest("hex");
    assert.equal(headers["x-roomcast-signature"], expected);
    assert.equal(headers["content-type"], "application/json");
  }
  const payload = JSON.parse(target.requests[2].body);
  assert.equal(payload.roomId, room);
  assert.equal(payload.message.id, sent.id);
  assert.equal(payload.message.message, "ping bob");
  assert.deepEqual(payload.recipients, ["bob"]);
  assert.deepEqual(new Set(target.requests.map((r) => r.body.toString())).size, 1, "the same body each time");

  // The next message proves nothing more came for the first one.
  const later = await ask(alice, "chat:send", { roomId: room, message: "second" });
  await until(() => target.requests.length >= 4, 5000, "the second message");
  await new Promise((r) => setTimeout(r, 300));
  const ids = target.requests.map((r) => JSON.parse(r.body).message.id);
  assert.deepEqual(ids, [sent.id, sent.id, sent.id, later.id], "delivered once after two failures");
  const metrics = await server.metrics();
  assert.equal(sample(metrics, "roomcast_webhook_sent_total"), 2);
  assert.equal(sample(metrics, "roomcast_webhook_failed_total"), 2);
  assert.equal(sample(metrics, "roomcast_webhook_dropped_total"), 0);
  plain.close();
});

test("a hook that hangs never slows chat:send", async () => {
  const target = await hook(() => {}); // never answers
  const server = await startServer(["--chat-open", "--chat-webhook-url", target.url, "--rate-limit", "chat:send=1000/s", "--user-rate-limit", "chat:send=1000/s"]);
  cleanup.push(() => server.stop());
  const alice = await server.connect({ auth: { token: mintToken({ sub: "alice" }) }, transports: ["websocket"] });
  await ask(alice, "chat:join", { roomId: "stuck" });
  const started = Date.now();
  for (let i = 0; i < 40; i++) {
    const ack = await ask(alice, "chat:send", { roomId: "stuck", message: `m${i}` });
    assert.equal(ack.ok, true);
  }
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2000, `40 sends took ${elapsed} ms`);
  await until(() => target.requests.length >= 16, 5000, "deliveries in flight");
  assert.equal(target.requests.length, 16, "at most 16 in flight at once");
});
