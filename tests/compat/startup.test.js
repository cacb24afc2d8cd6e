// What an operator sees when starting the binary: --help, and the publish key
// printed for a run without --publish-key (only when the node does start).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { BIN, SECRET, publish, withTimeout } from "./helpers.js";
import { freePort } from "./cluster-helpers.js";

test("--help shows the real default rate limits", () => {
  const help = execFileSync(BIN, ["--help"], { encoding: "utf8" });
  const rateLimit = help.slice(help.indexOf("--rate-limit"), help.indexOf("--redis-channels"));
  assert.ok(!rateLimit.includes('[default: ""]'), rateLimit);
  assert.match(rateLimit, /\[default: authenticate=5\/s,.*chat:send=5\/s,.*\*=50\/s\]/s);
});

/** Runs the binary until it logs `listening` or exits; resolves with its output. */
function run(args) {
  const proc = spawn(BIN, ["--listen", "127.0.0.1:0", "--jwt-secret", SECRET, "--log-format", "json", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  return withTimeout(
    new Promise((resolve) => {
      const check = () => {
        const listening = /"message":"listening","addr":"([^"]+)"/.exec(stdout + stderr);
        if (listening) resolve({ proc, stdout, stderr, url: `http://${listening[1]}` });
      };
      proc.stdout.on("data", (c) => { stdout += c; check(); });
      proc.stderr.on("data", (c) => { stderr += c; check(); });
      proc.on("exit", (code) => resolve({ proc, stdout, stderr, code }));
    }),
    15000,
    "roomcast to start or exit",
  );
}

test("a start-up that fails prints no publish key", async () => {
  const deadRedis = `redis://127.0.0.1:${await freePort()}`;
  const { code, stdout, stderr } = await run(["--redis-url", deadRedis]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /roomcast: error/);
  assert.ok(!/publish API key/.test(stdout + stderr), stderr);
});

test("a start-up that succeeds prints the generated publish key once, and it works", async () => {
  const { proc, stderr, url } = await run([]);
  try {
    const keys = [...stderr.matchAll(/publish API key for this run: (\S+)/g)].map((m) => m[1]);
    assert.equal(keys.length, 1, stderr);
    assert.equal((await publish(url, "prices", { symbol: "BTC", price: 1 }, keys[0])).status, 202);
  } finally {
    proc.kill("SIGKILL");
  }
});
