// A real redis-server of the test's own on a free port, and roomcast nodes
// joined to it. Never touches any other Redis.
import { spawn, execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import { startServer, withTimeout } from "./helpers.js";

const run = promisify(execFile);

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts redis-server on `port` (a free one by default); resolves when it answers PING. */
export async function startRedis(port) {
  port ??= await freePort();
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const { stdout } = await run("redis-cli", ["-p", String(port), "PING"]);
      if (stdout.trim() === "PONG") break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    proc,
    url: `redis://127.0.0.1:${port}`,
    publish: (channel, message) => run("redis-cli", ["-p", String(port), "PUBLISH", channel, message]),
    async kill() {
      proc.kill("SIGKILL");
      await withTimeout(exited, 5000, "redis-server exit");
    },
  };
}

/** Starts `n` roomcast nodes named n1..nN on `redis`. */
export async function startCluster(redis, n, args = []) {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      startServer(["--redis-url", redis.url, "--node-id", `n${i + 1}`, ...args]),
    ),
  );
}

/** Polls `url` until it answers `status`. */
export async function untilStatus(url, status, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await fetch(url).then((r) => r.status, () => 0);
    if (got === status) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${status} within ${ms} ms (last ${got})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
