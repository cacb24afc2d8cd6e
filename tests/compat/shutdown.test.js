// SIGTERM: close transports (clients reconnect elsewhere), exit 0 within 10 s.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, next, ask, withTimeout, mintToken } from "./helpers.js";
import { plainClient } from "./chat-helpers.js";

test("SIGTERM closes transports so clients will reconnect, flushes the batch and exits 0", async () => {
  const server = await startServer(["--batch-interval-ms", "2000", "--chat-open"]);
  try {
    const ws = await server.connect({ transports: ["websocket"] });
    const polling = await server.connect({ transports: ["polling"] });
    const plain = await plainClient(server.url, { sessionId: "desk", token: mintToken({ sub: "p" }) });
    const plainClosed = new Promise((resolve) => plain.ws.once("close", (code) => resolve(code)));
    await ask(ws, "subscribe:price", "FLUSH");
    await server.publish("prices", { symbol: "FLUSH", price: 42 });
    const batch = next(ws, "price:batch", 5000);
    const wsGone = next(ws, "disconnect", 10000);
    const pollingGone = next(polling, "disconnect", 10000);
    const started = Date.now();
    server.proc.kill("SIGTERM");
    assert.deepEqual(await batch, [["FLUSH", 42]], "the queued batch went out before the close");
    // "transport close" makes socket.io-client reconnect; "io server disconnect" would not.
    assert.equal(await wsGone, "transport close");
    assert.notEqual(await pollingGone, "io server disconnect");
    assert.equal(await withTimeout(plainClosed, 10000, "plain close"), 1001, "plain WebSocket: going away");
    const { code } = await withTimeout(server.exited, 10000, "exit");
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 10000);
  } finally {
    await server.stop();
  }
});

test("after SIGTERM and a restart on the same port, socket.io-client reconnects by itself (WebSocket and polling)", async () => {
  let server = await startServer();
  const { io } = await import("socket.io-client");
  const clients = [["websocket"], ["polling"]].map((transports) =>
    io(server.url, { transports, reconnectionDelay: 100, reconnectionDelayMax: 300, timeout: 5000 }),
  );
  try {
    await Promise.all(clients.map((c) => withTimeout(new Promise((r) => c.once("connect", r)), 5000, "connect")));
    const back = clients.map((c) => withTimeout(new Promise((r) => c.io.once("reconnect", r)), 15000, "reconnect"));
    server.proc.kill("SIGTERM");
    assert.equal((await withTimeout(server.exited, 10000, "exit")).code, 0);
    server = await startServer([], { listen: server.url.replace("http://", "") });
    await Promise.all(back);
    for (const c of clients) assert.equal(typeof (await ask(c, "ping")).ts, "number");
  } finally {
    clients.forEach((c) => c.close());
    await server.stop();
  }
});

test("bad configuration exits non-zero at once with one clear line", async () => {
  for (const [args, needle] of [
    [["--listen", "not-an-address"], /--listen/],
    [["--rate-limit", "chat:send=often"], /rate-limit/],
    [["--cors-origin", "bad\u0001origin"], /cors-origin/],
  ]) {
    const err = await startServer(args).then(
      (s) => (s.stop(), null),
      (e) => e,
    );
    assert.ok(err, `refused: ${args.join(" ")}`);
    assert.match(err.message, /exited with [1-9]/);
    assert.match(err.message, needle);
  }
});
