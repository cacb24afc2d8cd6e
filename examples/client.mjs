// A small trading frontend client with the real socket.io-client v4:
// authenticate, subscribe, and print what arrives.
//
//   cd examples && npm install && node client.mjs http://127.0.0.1:3000 BTC-USD,ETH-USD [token]
import { io } from "socket.io-client";

const [url = "http://127.0.0.1:3000", symbols = "BTC-USD,ETH-USD", token] = process.argv.slice(2);
const socket = io(url, { auth: token ? { token } : {} });

socket.on("connect", async () => {
  console.log(`connected ${socket.id} over ${socket.io.engine.transport.name}`);
  const list = symbols.split(",");
  console.log("subscribe:price", await socket.emitWithAck("subscribe:price", list));
  console.log("subscribe:trades", await socket.emitWithAck("subscribe:trades", list));
});
socket.on("connect_error", (err) => console.error("connect_error:", err.message));
socket.on("disconnect", (reason) => console.log("disconnected:", reason));
socket.on("price:update", (u) => console.log("price:update", u));
socket.on("price:batch", (b) => console.log("price:batch", JSON.stringify(b)));
socket.on("trade:new", (t) => console.log("trade:new", t));
socket.on("notification", (n) => console.log("notification", n));
socket.on("error", (e) => console.warn("error", e));
