// A frontend that loses nothing across a reconnect (README "Nothing lost across
// a reconnect"): keep the last offset per room, resume on every (re)connect,
// reload a room's state when the server reports a gap.
//
//   cd examples && npm install && node recovering-client.mjs http://127.0.0.1:3000 BTC-USD,ETH-USD <token>
import { io } from "socket.io-client";

const [url = "http://127.0.0.1:3000", list = "BTC-USD", token] = process.argv.slice(2);
const symbols = list.split(",");
const userId = token && JSON.parse(Buffer.from(token.split(".")[1], "base64url")).sub;
const show = (what, x) => console.log(what, JSON.stringify(x));
const reload = (room) => show("gap: reload the state of", room); // e.g. refetch from your API

// --- the dozen lines to copy ---
const last = {}; // room -> last offset seen
const socket = io(url, { auth: { token, recover: true } });
socket.on("connect", async () => {
  // Resume first (it joins the rooms it names and replays what was missed, in order),
  // then subscribe to what has no offset yet.
  const { gaps } = await socket.emitWithAck("resume", { offsets: last });
  gaps.forEach(reload);
  const fresh = symbols.filter((s) => !last[`trades:${s}`]);
  if (fresh.length) await socket.emitWithAck("subscribe:trades", fresh);
});
socket.on("trade:new", (trade, offset) => {
  last[`trades:${trade.symbol}`] = offset;
  show("trade:new", trade);
});
socket.on("notification", (note, offset) => {
  last[`user:${userId}`] = offset;
  show("notification", note);
});
// --- end ---

socket.on("connect_error", (err) => console.error("connect_error:", err.message));
socket.on("disconnect", (reason) => console.log("disconnected:", reason, "- offsets kept:", last));
