// The roomcast web console: the real socket.io-client against this server.
import { io } from "socket.io-client";
import { attachChat, initChat } from "./chat.js";

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;
const MAX_TRADES = 100;
/** The node charts show the last WINDOW_MS of `metrics` events. */
const WINDOW_MS = 60_000;

let socket;
const prices = new Map();

function connect(auth = {}) {
  socket?.close();
  socket = io({ auth, reconnectionDelay: 500 });
  socket.on("connect", () => {
    setStatus(true);
    socket.io.engine.on("upgrade", () => ($("transport").textContent = socket.io.engine.transport.name));
    resubscribe();
  });
  socket.on("disconnect", (reason) => {
    setStatus(false);
    // What was measured or granted on that connection no longer holds.
    $("latency").textContent = "–";
    $("user").textContent = "anonymous";
    log("disconnect", reason);
  });
  socket.on("connect_error", (err) => log("connect_error", err.message));
  socket.onAny((event, payload) => {
    if (event !== "price:batch" && event !== "metrics") log(event, payload);
  });
  socket.on("price:batch", onBatch);
  socket.on("price:update", (u) => setPrice(u.symbol, u.price));
  socket.on("trade:new", onTrade);
  socket.on("metrics", onMetrics);
  socket.on("authenticated", ({ userId }) => ($("user").textContent = userId));
  socket.on("unauthorized", () => ($("user").textContent = "anonymous"));
  attachChat(socket);
}

function setStatus(connected) {
  const status = $("status");
  status.textContent = connected ? "connected" : "disconnected";
  status.className = `pill ${connected ? "on" : "off"}`;
  $("transport").textContent = connected ? socket.io.engine.transport.name : "–";
}

function log(event, payload) {
  const li = document.createElement("li");
  const time = new Date().toLocaleTimeString();
  li.innerHTML = `<span class="ev"></span> `;
  li.firstChild.textContent = `${time} ${event}`;
  li.append(payload === undefined ? "" : JSON.stringify(payload));
  const list = $("log");
  list.prepend(li);
  while (list.children.length > MAX_LOG) list.lastChild.remove();
}

function symbols() {
  return $("symbols").value.split(",").map((s) => s.trim()).filter(Boolean);
}

async function subscribe(on) {
  const list = symbols();
  if (!socket?.connected || list.length === 0) return;
  const verb = on ? "subscribe" : "unsubscribe";
  for (const kind of ["price", "trades"]) {
    const ack = await socket.timeout(3000).emitWithAck(`${verb}:${kind}`, list).catch((e) => ({ error: e.message }));
    log(`${verb}:${kind} ack`, ack);
  }
  if (!on) list.forEach((s) => { prices.delete(s); $(`price-${s}`)?.remove(); });
}

let subscribed = false;
function resubscribe() {
  if (subscribed) subscribe(true);
}

function onBatch(batch) {
  for (const [symbol, price] of batch) setPrice(symbol, price);
}

function setPrice(symbol, price) {
  const before = prices.get(symbol);
  prices.set(symbol, price);
  let row = $(`price-${symbol}`);
  if (!row) {
    row = document.createElement("tr");
    row.id = `price-${symbol}`;
    row.dataset.testid = `price-${symbol}`;
    row.innerHTML = "<td></td><td class=price></td><td class=dir></td><td class=time></td>";
    row.cells[0].textContent = symbol;
    const rows = [...$("prices").tBodies[0].rows];
    const after = rows.find((r) => r.cells[0].textContent > symbol);
    $("prices").tBodies[0].insertBefore(row, after ?? null);
  }
  const cell = row.cells[1];
  cell.textContent = price;
  if (before !== undefined && before !== price) {
    const up = price > before;
    row.cells[2].textContent = up ? "▲" : "▼";
    row.cells[2].className = `dir ${up ? "up" : "down"}`;
    cell.classList.remove("flash-up", "flash-down");
    void cell.offsetWidth;
    cell.classList.add(up ? "flash-up" : "flash-down");
    setTimeout(() => cell.classList.remove("flash-up", "flash-down"), 600);
  }
  row.cells[3].textContent = new Date().toLocaleTimeString();
}

function onTrade(trade) {
  const li = document.createElement("li");
  const side = trade.side ? ` ${trade.side}` : "";
  li.textContent = `${new Date().toLocaleTimeString()} ${trade.symbol}${side} ${trade.qty ?? ""} @ ${trade.price ?? ""}`;
  if (trade.side) li.className = trade.side === "buy" ? "up" : "down";
  const list = $("trades");
  list.prepend(li);
  while (list.children.length > MAX_TRADES) list.lastChild.remove();
}

// ---- admin: per-node charts (last 60 s, with axes) ----
const nodes = new Map();
const CHARTS = [
  ["connections", (m) => m.connections],
  ["events/s", (m, last) => (last ? Math.max(0, (m.events - last.events) / Math.max(0.001, (m.ts - last.ts) / 1000)) : 0)],
  ["memory MB", (m) => m.memory / 1e6],
];

function onMetrics(m) {
  $("admin").hidden = false;
  let node = nodes.get(m.node);
  if (!node) {
    node = { el: document.createElement("div"), points: CHARTS.map(() => []), last: null };
    node.el.className = "node";
    node.el.innerHTML = `<h3></h3>${CHARTS.map(([t]) => `<div class="chart"><span class="label">${t} <b>–</b></span><canvas></canvas></div>`).join("")}`;
    node.el.querySelector("h3").textContent = m.node;
    $("nodes").append(node.el);
    nodes.set(m.node, node);
  }
  const now = Date.now();
  node.el.querySelectorAll(".chart").forEach((chart, i) => {
    const value = CHARTS[i][1](m, node.last);
    const points = node.points[i];
    points.push([now, value]);
    while (points.length && points[0][0] < now - WINDOW_MS) points.shift();
    chart.querySelector("b").textContent = Number.isInteger(value) ? value : value.toFixed(1);
    draw(chart.querySelector("canvas"), points, now);
  });
  node.last = m;
}

/** A round top for the y axis: 1, 2 or 5 × 10^k at or above `max`. */
function niceMax(max) {
  if (max <= 1) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((f) => f * step).find((v) => v >= max);
}

function draw(canvas, points, now) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 220;
  const height = canvas.clientHeight || 64;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const left = 34, right = 4, top = 6, bottom = 14;
  const w = width - left - right, h = height - top - bottom;
  const top_ = niceMax(Math.max(...points.map(([, v]) => v), 0));
  // The time axis spans what has been seen (at least 10 s), up to WINDOW_MS,
  // so a fresh chart is readable at once instead of a sliver at the edge.
  const span = Math.min(WINDOW_MS, Math.max(10_000, now - (points[0]?.[0] ?? now)));
  const x = (t) => left + ((t - (now - span)) / span) * w;
  const y = (v) => top + h - (v / top_) * h;
  // axes and grid: 0, half, top; 60 s ago, 30 s, now
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#7d8a99";
  ctx.strokeStyle = "#263040";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of [0, top_ / 2, top_]) {
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y(v)) + 0.5);
    ctx.lineTo(left + w, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.fillText(v >= 1000 ? `${v / 1000}k` : String(v), left - 4, y(v));
  }
  ctx.textBaseline = "top";
  const secs = Math.round(span / 1000);
  [[`-${secs}s`, 0, "left"], [`-${Math.round(secs / 2)}s`, 0.5, "center"], ["now", 1, "right"]].forEach(([t, f, align]) => {
    ctx.textAlign = align;
    ctx.fillText(t, left + f * w, top + h + 2);
  });
  if (points.length === 0) return;
  ctx.strokeStyle = "#4aa3ff";
  ctx.fillStyle = "rgba(74, 163, 255, 0.15)";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
  ctx.stroke();
  ctx.lineTo(x(points[points.length - 1][0]), y(0));
  ctx.lineTo(x(points[0][0]), y(0));
  ctx.closePath();
  ctx.fill();
  const [lt, lv] = points[points.length - 1];
  ctx.fillStyle = "#4aa3ff";
  ctx.beginPath();
  ctx.arc(x(lt), y(lv), 2.5, 0, 2 * Math.PI);
  ctx.fill();
}

// ---- latency ----
async function ping() {
  if (!socket?.connected) return;
  const started = performance.now();
  try {
    await socket.timeout(3000).emitWithAck("ping");
    $("latency").textContent = `${(performance.now() - started).toFixed(1)} ms`;
  } catch {
    $("latency").textContent = "timeout";
  }
}

// ---- demo tokens (only when the server runs with --demo) ----
async function demoToken(role) {
  const qs = new URLSearchParams({ sub: role ? "demo-admin" : "demo-user", ...(role ? { role } : {}) });
  const res = await fetch(`/api/v1/demo/token?${qs}`);
  if (!res.ok) return log("demo token", `HTTP ${res.status}`);
  const { token } = await res.json();
  $("token").value = token;
  authenticate();
}

async function authenticate() {
  const token = $("token").value.trim();
  if (!socket?.connected || !token) return;
  const ack = await socket.timeout(3000).emitWithAck("authenticate", token).catch((e) => ({ error: e.message }));
  log("authenticate ack", ack);
}

$("subscribe").onclick = () => { subscribed = true; subscribe(true); };
$("unsubscribe").onclick = () => { subscribed = false; subscribe(false); };
$("authenticate").onclick = authenticate;
$("ping").onclick = ping;
$("reconnect").onclick = () => connect($("token").value.trim() ? { token: $("token").value.trim() } : {});
$("disconnect").onclick = () => socket?.disconnect();
$("demo-user").onclick = () => demoToken();
$("demo-admin").onclick = () => demoToken("admin");
// With --demo (the server marks the page), show the token buttons and
// subscribe to the symbols at once.
initChat({ log, demo: document.body.dataset.demo !== undefined });
if (document.body.dataset.demo !== undefined) {
  document.querySelectorAll(".demo").forEach((b) => (b.hidden = false));
  subscribed = true;
}
setInterval(ping, 2000);
connect();
