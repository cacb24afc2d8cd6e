// Helpers for the compatibility suite: start a real roomcast binary on a free
// port, connect real socket.io-client v4 sockets, await events with timeouts.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { io } from "socket.io-client";

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.ROOMCAST_BIN ?? path.resolve(here, "../../target/debug/roomcast");
export const SECRET = "compat-test-secret";
export const PUBLISH_KEY = "compat-test-publish-key";

/** Starts roomcast with extra CLI args; resolves once it logs its address. */
export async function startServer(args = [], { env = {}, listen = "127.0.0.1:0" } = {}) {
  const proc = spawn(
    BIN,
    ["--listen", listen, "--jwt-secret", SECRET, "--publish-key", PUBLISH_KEY, "--log-format", "json", ...args],
    { env: { ...process.env, RUST_LOG: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output = [];
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`roomcast did not start:\n${output.join("")}`)), 15000);
    const onData = (chunk) => {
      output.push(chunk.toString());
      const match = /"message":"listening","addr":"([^"]+)"/.exec(output.join(""));
      if (match) {
        clearTimeout(timer);
        resolve(`http://${match[1]}`);
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`roomcast exited with ${code} before listening:\n${output.join("")}`));
    });
  });
  const sockets = [];
  return {
    url,
    proc,
    output,
    exited,
    /** A connected socket (rejects on connect_error). Closed by stop(). */
    async connect(opts = {}) {
      const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
      sockets.push(socket);
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      return socket;
    },
    /** A socket whose connection is expected to fail: resolves with the connect_error. */
    async connectError(opts = {}) {
      const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
      sockets.push(socket);
      return withTimeout(
        new Promise((resolve, reject) => {
          socket.once("connect", () => reject(new Error("connected, expected connect_error")));
          socket.once("connect_error", resolve);
        }),
        5000,
        "connect_error",
      );
    },
    publish: (route, body, key = PUBLISH_KEY) => publish(url, route, body, key),
    async metrics() {
      return (await fetch(`${url}/metrics`)).text();
    },
    async stop() {
      sockets.forEach((s) => s.close());
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

export async function publish(url, route, body, key = PUBLISH_KEY) {
  const res = await fetch(`${url}/api/v1/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** An HS256 JWT signed with `secret`. */
export function mintToken({ sub, role, chat, symbols, exp = Math.floor(Date.now() / 1000) + 600, secret = SECRET }) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  const claims = {
    exp,
    ...(sub !== undefined ? { sub } : {}),
    ...(role ? { role } : {}),
    ...(chat ? { chat } : {}),
    ...(symbols ? { symbols } : {}),
  };
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** The next `event` on `socket`, or a timeout error. */
export function next(socket, event, ms = 3000) {
  return withTimeout(new Promise((resolve) => socket.once(event, (...args) => resolve(args[0]))), ms, event);
}

/** Emits with an ack and resolves with the ack's payload. */
export function ask(socket, event, ...args) {
  return socket.timeout(5000).emitWithAck(event, ...args);
}

/** Records every `event` on `socket`. */
export function record(socket, event) {
  const seen = [];
  socket.on(event, (payload) => seen.push(payload));
  return seen;
}

/** Resolves when `predicate()` holds, polling an in-memory value (never the server). */
export async function until(predicate, ms = 3000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The value of one Prometheus sample line, e.g. `roomcast_rate_limited_total{event="x"}`
 * (written without the `node` label every line carries). */
export function sample(metricsText, series) {
  const line = metricsText
    .split("\n")
    .map((l) => l.replace(/node="[^"]*",?/, "").replace("{}", ""))
    .find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
