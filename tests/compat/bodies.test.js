// Big bodies (CONTRACT §7): Node's own http.request, writing a body over
// --max-body, reads the 413 — with and without `Expect: 100-continue` —
// instead of EPIPE / ECONNRESET.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startServer, withTimeout, PUBLISH_KEY } from "./helpers.js";

const LIMIT = 1024;
const BODY = Buffer.alloc(4_000_000, "x");

/** POSTs BODY; with `expect`, writes it only on `continue` (as Node documents) or at once (`eager`). */
function post(url, { expect = false, eager = false } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${PUBLISH_KEY}`, "content-type": "application/json", "content-length": BODY.length };
    if (expect) headers.expect = "100-continue";
    const req = http.request(`${url}/api/v1/prices`, { method: "POST", headers, agent: false });
    let continued = false;
    req.on("continue", () => {
      continued = true;
      req.end(BODY);
    });
    req.on("response", (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), continued }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (!expect || eager) req.end(BODY);
    else req.flushHeaders();
  });
}

test("a body over --max-body gets 413 that Node's http.request reads, with and without Expect: 100-continue", async () => {
  const server = await startServer(["--max-body", String(LIMIT)]);
  try {
    for (const opts of [{}, { expect: true }, { expect: true, eager: true }]) {
      for (let i = 0; i < 3; i++) {
        const { status, body, continued } = await withTimeout(post(server.url, opts), 10000, `POST ${JSON.stringify(opts)}`);
        assert.equal(status, 413, JSON.stringify(opts));
        assert.match(body, /larger than the limit of 1024 bytes/);
        assert.equal(continued, false, "no 100 Continue for a body declared over the limit");
      }
    }
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200, "the server is fine afterwards");
  } finally {
    await server.stop();
  }
});

// Compatibility note in the README: forceBase64 sends binary as base64 text
// frames; engineioxide refuses them over WebSocket, accepts them over polling.
test("forceBase64: binary works over polling; over WebSocket the transport closes (documented)", async () => {
  const server = await startServer();
  try {
    const outcome = async (transports) => {
      const socket = await server.connect({ transports, forceBase64: true });
      const gone = new Promise((resolve) => socket.once("disconnect", (reason) => resolve(`disconnect: ${reason}`)));
      const acked = new Promise((resolve) => socket.emit("ping", { blob: Buffer.from([1, 2, 3]) }, (ack) => resolve(ack.ok ? "ack" : "error")));
      return withTimeout(Promise.race([gone, acked]), 5000, `${transports} outcome`);
    };
    assert.equal(await outcome(["polling"]), "ack");
    assert.equal(await outcome(["websocket"]), "disconnect: transport close");
  } finally {
    await server.stop();
  }
});
