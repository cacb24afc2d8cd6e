// The Node socket.io baseline: the subset of the roomcast contract the load
// tool exercises, written the way a Node team would (socket.io 4, one
// setInterval batcher that builds each socket's batch, @socket.io/redis-adapter
// for several nodes). Same wire behaviour as roomcast for:
//   subscribe:price / unsubscribe:price (ack { ok, rooms }), price:update,
//   price:batch, POST /api/v1/prices (bearer key, 202 { accepted }), /healthz.
//
//   PORT=3000 PUBLISH_KEY=k [REDIS_URL=redis://127.0.0.1:6379] [BATCH_MS=100] node server.js
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const PORT = Number(process.env.PORT ?? 3000);
const KEY = process.env.PUBLISH_KEY;
const BATCH_MS = Number(process.env.BATCH_MS ?? 100);
const REDIS_URL = process.env.REDIS_URL;
const SYMBOL = /^[A-Za-z0-9._:/-]{1,32}$/;
const PRICES_CHANNEL = "baseline:prices";
if (!KEY) throw new Error("PUBLISH_KEY is required");

let pending = new Map();
let redisPub;

function deliver(prices) {
  for (const p of prices) {
    io.local.to(`price:${p.symbol}`).emit("price:update", p);
    pending.set(p.symbol, p.price);
  }
}

const http = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") return res.writeHead(200).end("ok");
  if (req.method !== "POST" || req.url !== "/api/v1/prices") return res.writeHead(404).end();
  if (req.headers.authorization !== `Bearer ${KEY}`) return reply(res, 401, { error: "wrong publish key" });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks));
    } catch {
      return reply(res, 400, { error: "malformed JSON" });
    }
    const items = Array.isArray(body) ? body : [body];
    const now = Date.now();
    const prices = [];
    for (const item of items) {
      if (!item || !SYMBOL.test(item.symbol) || typeof item.price !== "number") return reply(res, 400, { error: "invalid price" });
      prices.push({ symbol: item.symbol, price: item.price, ts: item.ts ?? now });
    }
    deliver(prices);
    redisPub?.publish(PRICES_CHANNEL, JSON.stringify({ origin: process.pid, prices }));
    reply(res, 202, { accepted: prices.length });
  });
});

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const io = new Server(http, { cors: { origin: "*" }, maxHttpBufferSize: 1e6 });

function symbolsOf(payload) {
  const list = Array.isArray(payload) ? payload : [payload];
  return list.length > 0 && list.every((s) => typeof s === "string" && SYMBOL.test(s)) ? [...new Set(list)] : null;
}

io.on("connection", (socket) => {
  socket.data.prices = new Set();
  socket.on("subscribe:price", (payload, ack) => {
    const symbols = symbolsOf(payload);
    if (!symbols) return typeof ack === "function" && ack({ error: "invalid symbol" });
    const rooms = symbols.map((s) => `price:${s}`);
    socket.join(rooms);
    symbols.forEach((s) => socket.data.prices.add(s));
    if (typeof ack === "function") ack({ ok: true, rooms });
  });
  socket.on("unsubscribe:price", (payload, ack) => {
    const symbols = symbolsOf(payload);
    if (!symbols) return typeof ack === "function" && ack({ error: "invalid symbol" });
    const rooms = symbols.map((s) => `price:${s}`);
    rooms.forEach((r) => socket.leave(r));
    symbols.forEach((s) => socket.data.prices.delete(s));
    if (typeof ack === "function") ack({ ok: true, rooms });
  });
});

setInterval(() => {
  if (pending.size === 0) return;
  const changed = pending;
  pending = new Map();
  for (const socket of io.of("/").sockets.values()) {
    const items = [];
    for (const symbol of socket.data.prices) if (changed.has(symbol)) items.push([symbol, changed.get(symbol)]);
    if (items.length > 0) socket.emit("price:batch", items);
  }
}, BATCH_MS);

if (REDIS_URL) {
  redisPub = createClient({ url: REDIS_URL });
  const sub = redisPub.duplicate();
  await Promise.all([redisPub.connect(), sub.connect()]);
  io.adapter(createAdapter(redisPub, sub));
  const prices = sub.duplicate();
  await prices.connect();
  await prices.subscribe(PRICES_CHANNEL, (message) => {
    const { origin, prices: items } = JSON.parse(message);
    if (origin !== process.pid) deliver(items);
  });
}

http.listen(PORT, "127.0.0.1", () => console.log(`baseline listening on 127.0.0.1:${PORT}`));
