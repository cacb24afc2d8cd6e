// The `/admin` namespace against two nodes and a real Redis, spoken the way
// the official @socket.io/admin-ui web app speaks it.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mintToken, ask, next, withTimeout } from "./helpers.js";
import { startRedis, startCluster } from "./cluster-helpers.js";
import { ADMIN_HASH, ADMIN_PASSWORD, adminSocket, seenEvent } from "./admin-ui-helpers.js";

const LOGIN = { username: "admin", password: ADMIN_PASSWORD };

/** Two nodes on their own Redis, with the Admin UI in `mode`. */
function cluster(mode) {
  const state = {};
  before(async () => {
    state.redis = await startRedis();
    state.nodes = await startCluster(state.redis, 2, ["--admin-ui-password", ADMIN_HASH, "--admin-ui-mode", mode]);
  });
  after(async () => {
    for (const a of state.admins ?? []) a.socket.close();
    await Promise.all((state.nodes ?? []).map((n) => n.stop()));
    await state.redis?.kill();
  });
  state.admins = [];
  state.login = async (node, auth = LOGIN) => {
    const admin = await adminSocket(node.url, auth);
    state.admins.push(admin);
    return admin;
  };
  return state;
}

describe("admin UI, read-only (the default)", () => {
  const c = cluster("readonly");

  test("a wrong password, a wrong user or no credentials are refused with 'invalid credentials'", async () => {
    for (const auth of [{ username: "admin", password: "nope" }, { username: "root", password: ADMIN_PASSWORD }, {}, { sessionId: "0123456789abcdef" }]) {
      const { error } = await c.login(c.nodes[0], auth);
      assert.ok(error, `refused: ${JSON.stringify(auth)}`);
      assert.equal(error.message, "invalid credentials");
    }
  });

  test("after login: session, config, every socket of both nodes with rooms and handshake, stats per node", async () => {
    const [n1, n2] = c.nodes;
    const alice = await n1.connect({ auth: { token: mintToken({ sub: "alice" }) } });
    await ask(alice, "subscribe:price", ["BTC"]);
    const bob = await n2.connect({ auth: { token: mintToken({ sub: "bob" }) } });
    await ask(bob, "subscribe:price", ["ETH"]);

    const admin = await c.login(n1);
    assert.equal(admin.error, null);
    const [[session]] = [await seenEvent(admin.seen, "session")];
    assert.match(session, /^[0-9a-f]{16}$/);
    const [[config]] = [await seenEvent(admin.seen, "config")];
    assert.deepEqual(config.supportedFeatures, ["AGGREGATED_EVENTS", "ALL_EVENTS"], "read-only: no commands offered");

    const [[all]] = [await seenEvent(admin.seen, "all_sockets")];
    const byId = new Map(all.map((s) => [s.id, s]));
    const a = byId.get(alice.id);
    const b = byId.get(bob.id);
    assert.ok(a, "alice (node 1) is listed");
    assert.ok(b, "bob (node 2) is listed");
    assert.ok(a.rooms.includes(alice.id) && a.rooms.includes("user:alice") && a.rooms.includes("price:BTC"), JSON.stringify(a.rooms));
    assert.ok(b.rooms.includes(bob.id) && b.rooms.includes("user:bob") && b.rooms.includes("price:ETH"), JSON.stringify(b.rooms));
    assert.ok(!b.rooms.some((r) => r.startsWith("$")), "internal rooms left out");
    assert.equal(a.nsp, "/");
    assert.equal(a.clientId, alice.id.slice(0, 12));
    assert.ok(["polling", "websocket"].includes(a.transport));
    assert.deepEqual(Object.keys(a.handshake).sort(), ["address", "headers", "issued", "query", "secure", "time", "url", "xdomain"]);
    assert.equal(typeof a.handshake.issued, "number");
    assert.equal(a.handshake.address, "127.0.0.1");
    assert.equal(a.handshake.query.EIO, "4");
    assert.equal(typeof a.handshake.headers, "object");
    assert.ok(!JSON.stringify(all).includes(mintToken({ sub: "alice" }).split(".")[2]), "no token in the list");
    assert.ok(all.some((s) => s.nsp === "/admin" && s.id === admin.socket.id), "the admin socket itself");

    const stats = await seenEvent(admin.seen, "server_stats", () => new Set(admin.seen.server_stats.map(([s]) => s.serverId)).size === 2, 8000);
    const n2stats = admin.seen.server_stats.map(([s]) => s).find((s) => s.serverId === "n2");
    assert.ok(stats && n2stats);
    assert.equal(typeof n2stats.uptime, "number");
    assert.equal(typeof n2stats.pid, "number");
    assert.ok(n2stats.clientsCount >= 1);
    assert.deepEqual(n2stats.namespaces.map((n) => n.name), ["/", "/admin"]);
    assert.ok(Array.isArray(n2stats.aggregatedEvents));
  });

  test("live: a socket on the other node connects, joins, leaves and goes; the session id logs in again", async () => {
    const [n1, n2] = c.nodes;
    const admin = await c.login(n1);
    await seenEvent(admin.seen, "all_sockets");
    const carol = await n2.connect({ auth: { token: mintToken({ sub: "carol" }) } });
    const [connected, at] = await seenEvent(admin.seen, "socket_connected", ([s]) => s.id === carol.id);
    assert.ok(connected.rooms.includes("user:carol"));
    assert.match(at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    if (connected.transport === "polling") {
      // It opened on polling and upgrades: the UI hears of it within a stats period.
      const [update] = await seenEvent(admin.seen, "socket_updated", ([s]) => s.id === carol.id, 5000);
      assert.deepEqual(update, { id: carol.id, nsp: "/", transport: "websocket" });
    }
    await ask(carol, "subscribe:price", ["SOL"]);
    await seenEvent(admin.seen, "room_joined", ([nsp, room, id]) => nsp === "/" && room === "price:SOL" && id === carol.id);
    await ask(carol, "unsubscribe:price", ["SOL"]);
    await seenEvent(admin.seen, "room_left", ([, room, id]) => room === "price:SOL" && id === carol.id);
    const carolId = carol.id; // socket.io-client forgets it on disconnect
    carol.close();
    const [, , reason] = await seenEvent(admin.seen, "socket_disconnected", ([nsp, id]) => nsp === "/" && id === carolId);
    assert.equal(reason, "client namespace disconnect");
    await seenEvent(admin.seen, "room_left", ([, room, id]) => room === "user:carol" && id === carolId);

    const [[session]] = admin.seen.session;
    const again = await c.login(n1, { sessionId: session });
    assert.equal(again.error, null, "the session id from the login works");
  });

  test("read-only: _disconnect, join and leave do nothing", async () => {
    const [n1, n2] = c.nodes;
    const admin = await c.login(n1);
    await seenEvent(admin.seen, "all_sockets");
    const dave = await n2.connect();
    await seenEvent(admin.seen, "socket_connected", ([s]) => s.id === dave.id);
    const local = await n1.connect();
    admin.socket.emit("join", "/", "vip", dave.id);
    admin.socket.emit("_disconnect", "/", false, dave.id);
    admin.socket.emit("_disconnect", "/", false, local.id);
    // What a command would do happens within milliseconds on the node that
    // has the socket; give it a second, then both sockets still answer.
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(dave.connected && local.connected);
    assert.ok((await ask(dave, "ping")).ts > 0);
    assert.equal(admin.seen.room_joined.filter(([, room]) => room === "vip").length, 0);
  });
});

describe("admin UI, development mode", () => {
  const c = cluster("development");

  test("commands reach a socket on the other node: join, then _disconnect by its id", async () => {
    const [n1, n2] = c.nodes;
    const admin = await c.login(n1);
    const [[config]] = [await seenEvent(admin.seen, "config")];
    assert.ok(config.supportedFeatures.includes("DISCONNECT") && config.supportedFeatures.includes("JOIN"));
    await seenEvent(admin.seen, "all_sockets");
    const erin = await n2.connect();
    await seenEvent(admin.seen, "socket_connected", ([s]) => s.id === erin.id);

    admin.socket.emit("join", "/", "vip", erin.id);
    await seenEvent(admin.seen, "room_joined", ([, room, id]) => room === "vip" && id === erin.id);

    const erinId = erin.id;
    const gone = next(erin, "disconnect", 5000);
    admin.socket.emit("_disconnect", "/", false, erinId);
    assert.equal(await gone, "io server disconnect");
    const [, , reason] = await seenEvent(admin.seen, "socket_disconnected", ([, id]) => id === erinId);
    assert.equal(reason, "server namespace disconnect");
  });

  test("leave without a filter clears the room on every node", async () => {
    const [n1, n2] = c.nodes;
    const admin = await c.login(n1);
    await seenEvent(admin.seen, "all_sockets");
    const [p, q] = [await n1.connect(), await n2.connect()];
    await ask(p, "subscribe:price", ["ADA"]);
    await ask(q, "subscribe:price", ["ADA"]);
    admin.socket.emit("leave", "/", "price:ADA");
    for (const id of [p.id, q.id]) {
      await seenEvent(admin.seen, "room_left", ([, room, who]) => room === "price:ADA" && who === id);
    }
    const all = (await c.login(n2)).seen;
    const [[list]] = [await seenEvent(all, "all_sockets")];
    assert.ok(!list.some((s) => s.rooms.includes("price:ADA")), "nobody is in the room any more");
  });

  test("_disconnect with a room disconnects that room's sockets on every node", async () => {
    const [n1, n2] = c.nodes;
    const admin = await c.login(n2);
    await seenEvent(admin.seen, "all_sockets");
    const [x, y, z] = [await n1.connect(), await n2.connect(), await n1.connect()];
    await ask(x, "subscribe:price", ["DOGE"]);
    await ask(y, "subscribe:price", ["DOGE"]);
    const gone = Promise.all([next(x, "disconnect", 5000), next(y, "disconnect", 5000)]);
    admin.socket.emit("_disconnect", "/", false, "price:DOGE");
    assert.deepEqual(await withTimeout(gone, 6000, "room disconnect"), ["io server disconnect", "io server disconnect"]);
    assert.ok(z.connected, "a socket outside the room stays");
  });
});
