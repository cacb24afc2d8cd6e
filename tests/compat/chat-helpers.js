// A plain WebSocket chat client (CONTRACT §6) for the tests.
import WebSocket from "ws";
import { withTimeout } from "./helpers.js";

/** Opens /ws/chat; resolves with a client, or rejects with the HTTP status of a refused upgrade. */
export function plainClient(url, { sessionId, token }) {
  const qs = new URLSearchParams({ ...(sessionId ? { sessionId } : {}), ...(token ? { token } : {}) });
  const ws = new WebSocket(`${url.replace("http", "ws")}/ws/chat?${qs}`);
  const frames = [];
  const waiters = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString());
    frames.push(frame);
    waiters.splice(0).forEach((w) => w());
  });
  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once("open", () =>
        resolve({
          ws,
          frames,
          send: (obj) => ws.send(typeof obj === "string" ? obj : JSON.stringify(obj)),
          /** The next frame matching `pred` not yet taken. */
          async next(pred = () => true, ms = 3000) {
            const deadline = Date.now() + ms;
            for (;;) {
              const i = frames.findIndex(pred);
              if (i >= 0) return frames.splice(i, 1)[0];
              if (Date.now() > deadline) throw new Error(`no matching frame within ${ms} ms: ${JSON.stringify(frames)}`);
              await withTimeout(new Promise((r) => waiters.push(r)), Math.max(1, deadline - Date.now()), "frame").catch(() => {});
            }
          },
          close: () => ws.close(),
        }),
      );
      ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once("error", reject);
    }),
    5000,
    "plain WebSocket open",
  );
}
