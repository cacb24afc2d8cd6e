// CONTRACT §8 on one node (memory backend): the latest price on subscribe,
// offsets only for sockets that connected with `recover`, and `resume`
// (replay in order, gaps, events published while the replay runs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { mintToken, ask, until, startServer, withTimeout } from "./helpers.js";

let server;
before(async () => {
  // A long batch window: any price:batch seen in these tests is the one sent on subscribe.
  server = await startServer(["--batch-interval-ms", "30000", "--recovery-max-events", "50"]);
});
after(async () => {
  await server?.stop();
});

/** Records every call of `event` with all its arguments. */
function recordArgs(socket, event) {
  const seen = [];
  socket.on(event, (...args) => seen.push(args));
  return seen;
}

const quiet = (ms = 200) => new Promise((r) => setTimeout(r, ms));

test("subscribe:price sends one price:batch with the latest known price of the new symbols, at once", async () => {
  await server.publish("prices", [
    { symbol: "LP1", price: 10 },
    { symbol: "LP1", price: 11.5 },
    { symbol: "LP2", price: 20 },
  ]);
  const s = await server.connect({ transports: ["websocket"] });
  const batches = recordArgs(s, "price:batch");
  const started = Date.now();
  assert.deepEqual(await ask(s, "subscribe:price", ["LP1", "LP2", "LP-NONE"]), {
    ok: true,
    rooms: ["price:LP1", "price:LP2", "price:LP-NONE"],
  });
  await until(() => batches.length === 1, 2000, "price:batch on subscribe");
  const took = Date.now() - started;
  assert.ok(took < 1000, `batch came after ${took} ms, not at once`);
  assert.deepEqual(batches[0], [[["LP1", 11.5], ["LP2", 20]]]);
  // Already subscribed, or no price known: nothing more (never an empty batch).
  await ask(s, "subscribe:price", ["LP1", "LP-NONE-2"]);
  await quiet();
  assert.equal(batches.length, 1);
});

test("only sockets connected with recover get the offset as one extra argument", async () => {
  const token = mintToken({ sub: "off-1" });
  const plain = await server.connect({ auth: { token }, transports: ["websocket"] });
  const rec = await server.connect({ auth: { token, recover: true }, transports: ["polling"] });
  for (const s of [plain, rec]) await ask(s, "subscribe:trades", "OFF");
  const plainTrades = recordArgs(plain, "trade:new");
  const recTrades = recordArgs(rec, "trade:new");
  const plainNotes = recordArgs(plain, "notification");
  const recNotes = recordArgs(rec, "notification");
  await server.publish("trades", [{ symbol: "OFF", id: 1 }, { symbol: "OFF", id: 2 }]);
  await server.publish("emit", { rooms: ["user:off-1", "admin"], event: "notification", data: { n: 1 } });
  await until(() => recTrades.length === 2 && recNotes.length === 1 && plainTrades.length === 2 && plainNotes.length === 1, 3000, "events");
  await quiet();
  assert.deepEqual(plainTrades, [[{ symbol: "OFF", id: 1 }], [{ symbol: "OFF", id: 2 }]], "no extra argument");
  assert.deepEqual(plainNotes, [[{ n: 1 }]]);
  for (const args of [...plainTrades, ...plainNotes]) assert.equal(args.length, 1);
  assert.equal(recTrades.length, 2);
  assert.deepEqual(recTrades.map((a) => a[0]), [{ symbol: "OFF", id: 1 }, { symbol: "OFF", id: 2 }]);
  for (const args of [...recTrades, ...recNotes]) {
    assert.equal(args.length, 2);
    assert.match(args[1], /^\d+-\d+$/);
  }
  assert.ok(offsetLess(recTrades[0][1], recTrades[1][1]), "offsets increase within a room");
  assert.deepEqual(recNotes[0][0], { n: 1 });
  // An emit to a room that is not recoverable carries no offset, recover or not.
  const admin = recordArgs(rec, "broadcast-x");
  await server.publish("emit", { room: "trades:OFF", event: "broadcast-x", data: 5 });
  await until(() => admin.length === 1, 3000, "plain emit");
  assert.deepEqual(admin, [[5]]);
});

test("a python-socketio client with one-parameter handlers keeps working", async (t) => {
  const probe = spawn(PYTHON, ["-c", "import socketio"]);
  const importable = await new Promise((resolve) => probe.on("exit", (code) => resolve(code === 0)));
  if (!importable) return t.skip("python-socketio is not installed (pip install 'python-socketio[client]')");
  const script = `
import socketio, sys, json
sio = socketio.Client()
got = []
@sio.on("trade:new")
def on_trade(trade):
    got.append(trade)
    if len(got) == 2:
        print(json.dumps(got, sort_keys=True)); sys.stdout.flush(); sio.disconnect()
sio.connect(sys.argv[1], transports=["websocket"])
print("ack", json.dumps(sio.call("subscribe:trades", "PY", timeout=5))); sys.stdout.flush()
sio.wait()
`;
  const py = spawn(PYTHON, ["-c", script, server.url]);
  let out = "";
  py.stdout.on("data", (d) => (out += d));
  py.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => py.on("exit", resolve));
  await until(() => out.includes("ack"), 10000, "python client subscribed");
  // A recover socket in the same room: the node delivers both ways at once.
  const rec = await recoverClient(server, "py-rec");
  await ask(rec.s, "subscribe:trades", "PY");
  await server.publish("trades", [{ symbol: "PY", id: 1 }, { symbol: "PY", id: 2 }]);
  const code = await withTimeout(exited, 10000, "python client exit");
  assert.equal(code, 0, out);
  assert.ok(out.includes('[{"id": 1, "symbol": "PY"}, {"id": 2, "symbol": "PY"}]'), out);
  await until(() => rec.trades.length === 2, 3000, "recover socket's trades");
  assert.ok(rec.trades.every((args) => args.length === 2));
});

// The pinned client of tests/python/setup.sh when it is there, else the system's.
const venvPython = fileURLToPath(new URL("../python/.venv/bin/python", import.meta.url));
const PYTHON = existsSync(venvPython) ? venvPython : "python3";

export function offsetLess(a, b) {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am < bm || (am === bm && as < bs);
}

/** A recover socket that keeps every (payload, offset) of trades and notifications. */
async function recoverClient(node, sub, transports = ["websocket"]) {
  const s = await node.connect({ auth: { token: mintToken({ sub }), recover: true }, transports });
  return { s, trades: recordArgs(s, "trade:new"), notes: recordArgs(s, "notification") };
}

test("resume replays missed trades and notifications once, in order, then live events", async () => {
  const first = await recoverClient(server, "res-1");
  await ask(first.s, "subscribe:trades", "RES");
  await server.publish("trades", { symbol: "RES", seq: 0 });
  await server.publish("emit", { room: "user:res-1", event: "notification", data: { seq: 0 } });
  await until(() => first.trades.length === 1 && first.notes.length === 1, 3000, "first events");
  const offsets = { "trades:RES": first.trades[0][1], "user:res-1": first.notes[0][1] };
  first.s.close();

  const M = 20, K = 7;
  for (let i = 1; i <= M; i++) await server.publish("trades", { symbol: "RES", seq: i });
  for (let i = 1; i <= K; i++) await server.publish("emit", { room: "user:res-1", event: "notification", data: { seq: i } });

  const again = await recoverClient(server, "res-1", ["polling"]);
  const ack = await ask(again.s, "resume", { offsets });
  assert.deepEqual(ack, { ok: true, replayed: M + K, gaps: [], refused: [] });
  // The ack comes after the replay: everything is there already.
  assert.deepEqual(again.trades.map((a) => a[0].seq), Array.from({ length: M }, (_, i) => i + 1));
  assert.deepEqual(again.notes.map((a) => a[0].seq), Array.from({ length: K }, (_, i) => i + 1));
  for (const list of [again.trades, again.notes])
    for (let i = 1; i < list.length; i++) assert.ok(offsetLess(list[i - 1][1], list[i][1]));
  // Live events follow, once, with offsets.
  await server.publish("trades", { symbol: "RES", seq: M + 1 });
  await server.publish("emit", { room: "user:res-1", event: "notification", data: { seq: K + 1 } });
  await until(() => again.trades.length === M + 1 && again.notes.length === K + 1, 3000, "live events");
  await quiet();
  assert.equal(again.trades.length, M + 1);
  assert.equal(again.notes.length, K + 1);
});

test("an offset older than what is kept comes back in gaps; other rooms are refused", async () => {
  const first = await recoverClient(server, "gap-1");
  await ask(first.s, "subscribe:trades", "GAP");
  await server.publish("trades", { symbol: "GAP", seq: 0 });
  await until(() => first.trades.length === 1, 3000, "first trade");
  const offset = first.trades[0][1];
  first.s.close();
  // --recovery-max-events 50: 60 more push the client's offset out.
  await server.publish("trades", Array.from({ length: 60 }, (_, i) => ({ symbol: "GAP", seq: i + 1 })));
  const again = await recoverClient(server, "gap-1");
  const ack = await ask(again.s, "resume", {
    offsets: { "trades:GAP": offset, "user:someone-else": offset, "chat:x": offset },
  });
  assert.deepEqual(ack, { ok: true, replayed: 0, gaps: ["trades:GAP"], refused: ["chat:x", "user:someone-else"] });
  assert.equal(again.trades.length, 0);
  // Joined anyway: live trades arrive.
  await server.publish("trades", { symbol: "GAP", seq: 61 });
  await until(() => again.trades.length === 1, 3000, "live trade after a gap");
  assert.equal(again.trades[0][0].seq, 61);
  // Bad input is an error ack, nothing joined.
  assert.match((await ask(again.s, "resume", { offsets: { "trades:GAP": "yesterday" } })).error, /invalid offset/);
  assert.match((await ask(again.s, "resume", "nope")).error, /offsets/);
  const plain = await server.connect({ transports: ["websocket"] });
  assert.match((await ask(plain, "resume", { offsets: {} })).error, /recover/);
});

test("events published while a replay runs arrive once, in order, after the replayed ones", async () => {
  const first = await recoverClient(server, "conc-1");
  await ask(first.s, "subscribe:trades", "CONC");
  await server.publish("trades", { symbol: "CONC", seq: 0 });
  await until(() => first.trades.length === 1, 3000, "first trade");
  const offset = first.trades[0][1];
  first.s.close();
  await server.publish("trades", Array.from({ length: 20 }, (_, i) => ({ symbol: "CONC", seq: i + 1 })));

  const again = await recoverClient(server, "conc-1");
  const live = [];
  const publisher = (async () => {
    for (let i = 21; i <= 45; i++) {
      live.push(i);
      await server.publish("trades", { symbol: "CONC", seq: i });
    }
  })();
  const ack = await ask(again.s, "resume", { offsets: { "trades:CONC": offset } });
  await publisher;
  assert.deepEqual(ack.gaps, []);
  const total = 20 + live.length;
  await until(() => again.trades.length >= total, 5000, `all ${total} trades`);
  await quiet();
  const seqs = again.trades.map((a) => a[0].seq);
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1), "every trade once, in order");
  for (let i = 1; i < again.trades.length; i++) assert.ok(offsetLess(again.trades[i - 1][1], again.trades[i][1]));
});

test("a notification published between the reconnect and the resume neither overtakes nor repeats the replay", async () => {
  const first = await recoverClient(server, "race-1");
  await server.publish("emit", { room: "user:race-1", event: "notification", data: { seq: 0 } });
  await until(() => first.notes.length === 1, 3000, "first notification");
  const offsets = { "user:race-1": first.notes[0][1] };
  first.s.close();
  for (let i = 1; i <= 5; i++) await server.publish("emit", { room: "user:race-1", event: "notification", data: { seq: i } });
  const again = await recoverClient(server, "race-1");
  // Live while the client has not resumed yet: it must come after 1..5.
  await server.publish("emit", { room: "user:race-1", event: "notification", data: { seq: 6 } });
  await quiet(100);
  const ack = await ask(again.s, "resume", { offsets });
  assert.deepEqual(ack.gaps, []);
  await until(() => again.notes.length >= 6, 3000, "six notifications");
  await quiet();
  assert.deepEqual(again.notes.map((a) => a[0].seq), [1, 2, 3, 4, 5, 6]);
});

test("a recover socket that never resumes still gets its notifications", async () => {
  const s = await recoverClient(server, "never-1");
  await server.publish("emit", { room: "user:never-1", event: "notification", data: { seq: 1 } });
  await until(() => s.notes.length === 1, 3000, "notification without resume");
  assert.equal(s.notes[0].length, 2);
});
