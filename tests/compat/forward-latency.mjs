// What forwarding costs, measured over raw Engine.IO long-polling (no proxy
// in between): a session opened on node 1, then driven either on node 1
// (local) or on node 2 (every request forwarded to node 1). Two figures each:
// one POST of an event without ack (a single HTTP request), and an acked `ping` event
// (the POST, then the held GET that brings the ack). Two nodes, a
// redis-server of its own, loopback. Prints medians and p90s.
//
//   cargo build --release && cd tests/compat && npm ci
//   ROOMCAST_BIN=../../target/release/roomcast node forward-latency.mjs [samples, default 500]
import { startRedis, startCluster } from "./cluster-helpers.js";

const N = Number(process.argv[2] ?? 500);
const WARMUP = 50;
const TIMEOUT = 5000;

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  return `median ${quantile(sorted, 0.5).toFixed(3)} ms, p90 ${quantile(sorted, 0.9).toFixed(3)} ms`;
}

async function http(url, init = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text}`);
  return text;
}

/** A polling session opened on `owner`, driven through `via`. */
async function session(owner, via) {
  const open = await http(`${owner}/socket.io/?EIO=4&transport=polling`);
  const sid = JSON.parse(open.slice(1)).sid;
  const url = `${via}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  const post = (packet) => http(url, { method: "POST", body: packet, headers: { "content-type": "text/plain" } });
  await post("40");
  const connected = (await http(url)).split("\x1e");
  if (!connected.some((p) => p.startsWith("40"))) throw new Error(`no connect answer: ${connected}`);
  if (connected.includes("2")) await post("3");
  let id = 0;
  return {
    post,
    /** An acked `ping`: POST the event, GET until its ack arrives (answering server pings). */
    async ping() {
      id += 1;
      const ack = `43${id}[`;
      const polled = http(url);
      await post(`42${id}["ping"]`);
      let body = await polled;
      while (!body.split("\x1e").some((p) => p.startsWith(ack))) {
        if (body.split("\x1e").includes("2")) await post("3");
        body = await http(url);
      }
    },
    close: () => post("1").catch(() => {}),
  };
}

async function time(fn) {
  const times = [];
  for (let i = 0; i < WARMUP + N; i++) {
    const start = process.hrtime.bigint();
    await fn();
    if (i >= WARMUP) times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times;
}

const redis = await startRedis();
let nodes = [];
try {
  nodes = await startCluster(redis, 2, ["--rate-limit", "ping=100000/s"]);
  const [one, two] = nodes.map((n) => n.url);
  const local = await session(one, one);
  const forwarded = await session(one, two);
  // Interleaved in rounds, so both see the same machine load.
  const results = { localPost: [], fwdPost: [], localPing: [], fwdPing: [] };
  for (let round = 0; round < 5; round++) {
    results.localPost.push(...(await time(() => local.post(`42["ping"]`))));
    results.fwdPost.push(...(await time(() => forwarded.post(`42["ping"]`))));
    results.localPing.push(...(await time(() => local.ping())));
    results.fwdPing.push(...(await time(() => forwarded.ping())));
  }
  await local.close();
  await forwarded.close();
  console.log(`Engine.IO long-polling on loopback, ${5 * N} samples each (${process.env.ROOMCAST_BIN ?? "debug build"})`);
  console.log(`  POST of one event (no ack), local:     ${summary(results.localPost)}`);
  console.log(`  POST of one event (no ack), forwarded: ${summary(results.fwdPost)}`);
  console.log(`  acked ping (POST + GET), local:     ${summary(results.localPing)}`);
  console.log(`  acked ping (POST + GET), forwarded: ${summary(results.fwdPing)}`);
} finally {
  await Promise.all(nodes.map((n) => n.stop()));
  await redis.kill();
}
