// A real Redis Cluster of the test's own: 3 masters + 3 replicas on free
// loopback ports, config files in a temporary directory. Every process is
// SIGKILLed by kill() and, as a last resort, when the test process exits.
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./cluster-helpers.js";
import { sample, withTimeout } from "./helpers.js";

const run = promisify(execFile);
const live = new Set();
process.on("exit", () => live.forEach((p) => p.kill("SIGKILL")));

const cli = (port, ...args) => run("redis-cli", ["-p", String(port), ...args], { timeout: 5000 }).then((r) => r.stdout.trim());

async function waitFor(what, check, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts 6 cluster-enabled redis-servers and joins them: 3 masters, 1 replica each. */
export async function startRedisCluster() {
  const dir = mkdtempSync(path.join(tmpdir(), "roomcast-rc-"));
  const ports = [];
  while (ports.length < 6) {
    const port = await freePort();
    if (!ports.includes(port) && port < 55535) ports.push(port); // the cluster bus is port + 10000
  }
  const procs = new Map();
  for (const port of ports) {
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
        "--cluster-config-file", path.join(dir, `nodes-${port}.conf`), "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
        "--dir", dir, "--logfile", path.join(dir, `redis-${port}.log`), "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    const exited = new Promise((resolve) => proc.on("exit", resolve));
    live.add(proc);
    exited.then(() => live.delete(proc));
    procs.set(port, { proc, exited });
  }
  const cluster = {
    ports,
    url: `redis+cluster://${ports.slice(0, 3).map((p) => `127.0.0.1:${p}`).join(",")}`,
    cli,
    /** The live masters: port and slot ranges, from CLUSTER NODES of a live node. */
    async masters() {
      const alive = ports.filter((p) => procs.get(p).proc.exitCode === null && procs.get(p).proc.signalCode === null);
      const lines = (await cli(alive[0], "CLUSTER", "NODES")).split("\n");
      return lines
        .map((l) => l.split(" "))
        .filter((f) => f[2].includes("master") && !f[2].includes("fail"))
        .map((f) => ({
          port: Number(/:(\d+)@/.exec(f[1])[1]),
          ranges: f.slice(8).filter((r) => /^\d/.test(r)).map((r) => r.split("-").map(Number)),
        }));
    },
    /** The port of the master owning `key`'s slot. */
    async masterOf(key) {
      const slot = Number(await cli((await this.masters())[0].port, "CLUSTER", "KEYSLOT", key));
      const owner = (await this.masters()).find((m) => m.ranges.some(([from, to = from]) => slot >= from && slot <= to));
      if (!owner) throw new Error(`no master owns the slot of ${key}`);
      return owner.port;
    },
    /** PUBLISH through any live node (a cluster forwards it to every node). */
    async publish(channel, message) {
      const { port } = (await this.masters())[0];
      return cli(port, "PUBLISH", channel, message);
    },
    async killNode(port) {
      const { proc, exited } = procs.get(port);
      proc.kill("SIGKILL");
      await withTimeout(exited, 5000, `redis-server ${port} exit`);
    },
    async kill() {
      for (const { proc } of procs.values()) proc.kill("SIGKILL");
      await withTimeout(Promise.all([...procs.values()].map((p) => p.exited)), 5000, "redis-servers exit");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const port of ports) await waitFor(`redis-server ${port}`, async () => (await cli(port, "PING")) === "PONG", 10000);
    await run(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"],
      { timeout: 30000 },
    );
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () => (await cli(port, "CLUSTER", "INFO")).includes("cluster_state:ok"), 20000);
    }
    await waitFor("3 masters with a replica each", async () => {
      const lines = (await cli(ports[0], "CLUSTER", "NODES")).split("\n");
      return lines.filter((l) => l.includes("slave")).length === 3 && lines.filter((l) => l.includes("master")).length === 3;
    }, 20000);
    // A replica that never finished its first sync does not take over.
    for (const port of ports) {
      await waitFor(`replication of ${port}`, async () => {
        const info = await cli(port, "INFO", "replication");
        return info.includes("role:master") || info.includes("master_link_status:up");
      }, 20000);
    }
  } catch (e) {
    await cluster.kill();
    throw e;
  }
  return cluster;
}

/** Polls `url`'s metrics until `roomcast_redis_up` is `value`. */
export async function untilRedisUp(url, value, ms = 20000) {
  await waitFor(`roomcast_redis_up ${value} at ${url}`, async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return sample(text, "roomcast_redis_up") === value;
  }, ms);
}
