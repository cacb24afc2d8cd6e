// The roomcast web console: the real socket.io-client against this server.
import { io } from "socket.io-client";

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;
const MAX_TRADES = 100;
const HISTORY = 60;

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

// ---- admin: per-node sparklines ----
const nodes = new Map();

function onMetrics(m) {
  $("admin").hidden = false;
  let node = nodes.get(m.node);
  if (!node) {
    node = { el: document.createElement("div"), connections: [], eventsPerSec: [], memoryMb: [], last: null };
    node.el.className = "node";
    node.el.innerHTML = `<h3></h3>${["connections", "events/s", "memory MB"].map((t) => `<div class="chart"><canvas width="160" height="32"></canvas><span>${t}: <b>–</b></span></div>`).join("")}`;
    node.el.querySelector("h3").textContent = m.node;
    $("nodes").append(node.el);
    nodes.set(m.node, node);
  }
  const rate = node.last ? Math.max(0, (m.events - node.last.events) / Math.max(0.001, (m.ts - node.last.ts) / 1000)) : 0;
  node.last = m;
  const series = [
    [node.connections, m.connections],
    [node.eventsPerSec, Math.round(rate * 10) / 10],
    [node.memoryMb, Math.round(m.memory / 1e5) / 10],
  ];
  node.el.querySelectorAll(".chart").forEach((chart, i) => {
    const [values, value] = series[i];
    values.push(value);
    if (values.length > HISTORY) values.shift();
    chart.querySelector("b").textContent = value;
    spark(chart.querySelector("canvas"), values);
  });
}

function spark(canvas, values) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const max = Math.max(...values, 1);
  ctx.strokeStyle = "#4aa3ff";
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, HISTORY - 1)) * width;
    const y = height - 2 - (v / max) * (height - 4);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
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
fetch("/api/v1/demo/token", { method: "HEAD" }).then((r) => {
  if (r.ok || r.status === 405) document.querySelectorAll(".demo").forEach((b) => (b.hidden = false));
}, () => {});
setInterval(ping, 2000);
connect();
