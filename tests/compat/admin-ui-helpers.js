// The Socket.IO Admin UI side: the password of the tests and its bcrypt hash,
// and an admin socket on `/admin` that records what the server sends.
import { io } from "socket.io-client";
import { withTimeout, until } from "./helpers.js";

export const ADMIN_PASSWORD = "roomcast-admin";
// bcryptjs.hashSync(ADMIN_PASSWORD, 10)
export const ADMIN_HASH = "$2a$10$B8zar/OC3uM.XLVg8jY26uONXPi1e8dkMEGmjvfo3oQTrL/PLAFqq";

const EVENTS = [
  "session", "config", "all_sockets", "server_stats", "socket_connected", "socket_updated",
  "socket_disconnected", "room_joined", "room_left",
];

/** Connects to `${url}/admin` with `auth`; resolves { socket, seen, error }. */
export async function adminSocket(url, auth) {
  const socket = io(`${url}/admin`, { forceNew: true, reconnection: false, timeout: 5000, auth });
  const seen = Object.fromEntries(EVENTS.map((e) => [e, []]));
  // Listeners before connecting: `session` and `config` come right after CONNECT.
  for (const event of EVENTS) socket.on(event, (...args) => seen[event].push(args));
  const error = await withTimeout(
    new Promise((resolve) => {
      socket.once("connect", () => resolve(null));
      socket.once("connect_error", (e) => resolve(e));
    }),
    8000,
    "admin connect",
  );
  return { socket, seen, error };
}

/** Waits until `seen[event]` has an entry matching `predicate(args)`; returns it. */
export async function seenEvent(seen, event, predicate = () => true, ms = 5000) {
  await until(() => seen[event].some(predicate), ms, event);
  return seen[event].find(predicate);
}
