// The console's chat panel: join a room, its history, send, live messages,
// presence, typing, read receipts, edit and delete of one's own messages, and
// an inbox of the user's rooms. Events the server does not know (an older
// node answers `{ error: "unknown event ..." }`) turn that feature off
// quietly instead of breaking the rest.

const $ = (id) => document.getElementById(id);
/** Send `chat:typing true` at most this often while keys are pressed. */
const TYPING_EVERY_MS = 2000;
/** Send `chat:typing false` this long after the last key press. */
const TYPING_IDLE_MS = 3000;
/** Forget someone's "is typing" this long after their last `chat:typing true`. */
const TYPING_SHOWN_MS = 5000;
const ACK_MS = 5000;
/**
 * Ask `chat:rooms` again this often while signed in and the tab is visible:
 * rooms other than the joined one send this tab nothing (it left them), so
 * their new messages and unread counts only come from asking.
 */
const INBOX_EVERY_MS = 4000;

const state = {
  socket: null,
  log: () => {},
  demo: false,
  me: null, // the authenticated user id
  token: null, // the token that made `me`, to authenticate again after a reconnect
  room: null, // the joined room
  messages: new Map(), // id -> message as shown
  reads: new Map(), // userId -> the last messageId they read (from `chat:read` events)
  online: new Set(),
  typers: new Map(), // userId -> timeout handle
  unsupported: new Set(), // events this server answered "unknown event"
  editing: null, // the id of the message being edited
  typingSentAt: 0,
  typingIdle: null,
  lastReadSent: null,
  oldestId: null,
};

const isUnknown = (ack) => typeof ack?.error === "string" && ack.error.startsWith("unknown event");

/** Emit with an ack and a timeout; an error ack or a timeout comes back as `{ error }`. */
async function ask(event, payload) {
  const socket = state.socket;
  if (!socket?.connected) return { error: "not connected" };
  const ack = await socket.timeout(ACK_MS).emitWithAck(event, payload).catch((e) => ({ error: e.message }));
  if (isUnknown(ack)) state.unsupported.add(event);
  return ack ?? { error: "no answer" };
}

/** Message ids are `<ms>-<seq>`: order them as numbers. */
function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}

function note(text) {
  $("chat-note").textContent = text ?? "";
}

// ---- identity ----

function setMe(userId, token) {
  state.me = userId;
  if (token) state.token = token;
  $("chat-me").textContent = userId ?? "not signed in";
  renderAllMessages();
}

/** Make sure the socket is authenticated before a chat call; in --demo as the name typed. */
async function ensureIdentity() {
  const wanted = $("chat-name").value.trim();
  if (state.demo && (!state.me || (wanted && wanted !== state.me))) {
    const sub = wanted || `guest-${Math.floor(1000 + Math.random() * 9000)}`;
    const res = await fetch(`/api/v1/demo/token?${new URLSearchParams({ sub })}`);
    if (!res.ok) return note(`demo token: HTTP ${res.status}`), false;
    const { token } = await res.json();
    $("chat-name").value = sub;
    return authenticate(token);
  }
  if (state.me) return true;
  const token = $("token").value.trim();
  if (!token) return note("sign in first: paste a user token above (or run with --demo)"), false;
  return authenticate(token);
}

async function authenticate(token) {
  const ack = await ask("authenticate", token);
  if (!ack.ok) return note(`authenticate: ${ack.error}`), false;
  setMe(ack.userId, token);
  return true;
}

// ---- joining ----

async function join(roomId) {
  roomId = roomId.trim();
  if (!roomId) return;
  if (!(await ensureIdentity())) return;
  if (state.room && state.room !== roomId) await ask("chat:leave", { roomId: state.room });
  const ack = await ask("chat:join", { roomId });
  if (!ack.ok) {
    state.room = null;
    const hint = /not allowed|forbidden|private/i.test(ack.error ?? "")
      ? " (rooms are private: run with --chat-open, or use a token whose chat claim allows it)"
      : "";
    return note(`join ${roomId}: ${ack.error}${hint}`);
  }
  note("");
  state.room = roomId;
  $("chat-room").value = roomId;
  $("chat-title").textContent = roomId;
  $("chat-panel").classList.add("joined");
  state.messages.clear();
  state.reads.clear();
  state.typers.forEach(clearTimeout);
  state.typers.clear();
  state.lastReadSent = ack.lastRead ?? null;
  state.online = new Set(Array.isArray(ack.online) ? ack.online : state.me ? [state.me] : []);
  $("chat-online").dataset.known = Array.isArray(ack.online) ? "yes" : "no";
  $("chat-messages").replaceChildren();
  for (const m of ack.history ?? []) upsert(m);
  state.oldestId = ack.history?.[0]?.id ?? null;
  $("chat-older").hidden = (ack.history ?? []).length < 50;
  $("chat-unread").textContent = ack.unread ? `${ack.unread} unread` : "";
  renderOnline();
  renderTyping();
  scrollToEnd();
  markRead();
  $("chat-input").disabled = false;
  $("chat-send").disabled = false;
  refreshInbox();
}

async function leave() {
  if (!state.room) return;
  await ask("chat:leave", { roomId: state.room });
  state.room = null;
  $("chat-panel").classList.remove("joined");
  $("chat-title").textContent = "no room";
  $("chat-messages").replaceChildren();
  $("chat-online").replaceChildren();
  $("chat-input").disabled = true;
  $("chat-send").disabled = true;
  stopEditing();
  renderTyping();
}

async function older() {
  if (!state.room || !state.oldestId) return;
  const ack = await ask("chat:history", { roomId: state.room, before: state.oldestId, limit: 50 });
  if (!ack.ok) return note(`history: ${ack.error}`);
  const list = $("chat-messages");
  const keep = list.scrollHeight - list.scrollTop;
  for (const m of ack.messages) upsert(m);
  if (ack.messages.length) state.oldestId = ack.messages[0].id;
  $("chat-older").hidden = ack.messages.length < 50;
  list.scrollTop = list.scrollHeight - keep;
}

// ---- messages ----

function upsert(m) {
  if (!m?.id) return;
  state.messages.set(m.id, { ...state.messages.get(m.id), ...m });
  let li = document.querySelector(`#chat-messages li[data-id="${CSS.escape(m.id)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = m.id;
    const list = $("chat-messages");
    const after = [...list.children].find((other) => compareIds(other.dataset.id, m.id) > 0);
    list.insertBefore(li, after ?? null);
  }
  render(li, state.messages.get(m.id));
}

function render(li, m) {
  const mine = state.me !== null && m.senderId === state.me;
  li.className = `msg${mine ? " mine" : ""}${m.deleted ? " deleted" : ""}`;
  li.replaceChildren();
  const head = document.createElement("div");
  head.className = "head";
  const who = document.createElement("b");
  who.textContent = m.deleted ? "" : m.senderId;
  const when = document.createElement("time");
  when.textContent = m.ts ? new Date(m.ts).toLocaleTimeString() : "";
  head.append(who, when);
  const body = document.createElement("div");
  body.className = "body";
  if (m.deleted) {
    body.textContent = "message deleted";
  } else if (m.type === "IMAGE" && /^https?:\/\//.test(m.message)) {
    const a = document.createElement("a");
    a.href = m.message;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = m.message;
    body.append(a);
  } else {
    body.textContent = m.message;
  }
  if (m.editedAt && !m.deleted) {
    const edited = document.createElement("span");
    edited.className = "edited";
    edited.textContent = " (edited)";
    edited.title = new Date(m.editedAt).toLocaleString();
    body.append(edited);
  }
  li.append(head, body);
  if (mine && !m.deleted) {
    const tools = document.createElement("span");
    tools.className = "tools";
    for (const [label, action] of [["Edit", () => startEditing(m.id)], ["Delete", () => remove(m.id)]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.className = `chat-${label.toLowerCase()}`;
      b.onclick = action;
      tools.append(b);
    }
    head.append(tools);
  }
  const readers = mine ? readersOf(m.id) : [];
  if (readers.length) {
    const reads = document.createElement("div");
    reads.className = "reads";
    reads.textContent = `read by ${readers.sort().join(", ")}`;
    li.append(reads);
  }
}

/**
 * Who read up to `id`, one of my messages, and no later one of mine: each
 * other user's receipt shows on the newest of my messages they have read.
 */
function readersOf(id) {
  const mine = [...state.messages.values()]
    .filter((m) => m.senderId === state.me && !m.deleted)
    .map((m) => m.id)
    .sort(compareIds);
  const readers = [];
  for (const [user, readId] of state.reads) {
    if (user === state.me) continue;
    const seen = mine.filter((own) => compareIds(own, readId) <= 0);
    if (seen[seen.length - 1] === id) readers.push(user);
  }
  return readers;
}

function renderAllMessages() {
  document.querySelectorAll("#chat-messages li").forEach((li) => {
    const m = state.messages.get(li.dataset.id);
    if (m) render(li, m);
  });
}

function scrollToEnd() {
  const list = $("chat-messages");
  list.scrollTop = list.scrollHeight;
}

async function send(event) {
  event.preventDefault();
  const input = $("chat-input");
  const message = input.value.trim();
  if (!state.room || !message) return;
  if (state.editing) return saveEdit(message);
  const clientMsgId = crypto.randomUUID?.() ?? `${Date.now()}-${Math.random()}`;
  input.value = "";
  sendTyping(false);
  const ack = await ask("chat:send", { roomId: state.room, message, clientMsgId });
  if (!ack.ok) {
    input.value = message;
    return note(`send: ${ack.error}`);
  }
  note("");
  refreshInbox();
}

function startEditing(id) {
  const m = state.messages.get(id);
  if (!m || state.unsupported.has("chat:edit")) return note("this server cannot edit messages");
  state.editing = id;
  $("chat-input").value = m.message;
  $("chat-input").focus();
  $("chat-send").textContent = "Save";
  $("chat-cancel").hidden = false;
}

function stopEditing() {
  state.editing = null;
  $("chat-input").value = "";
  $("chat-send").textContent = "Send";
  $("chat-cancel").hidden = true;
}

async function saveEdit(message) {
  const messageId = state.editing;
  const ack = await ask("chat:edit", { roomId: state.room, messageId, message });
  if (!ack.ok) return note(isUnknown(ack) ? "this server cannot edit messages" : `edit: ${ack.error}`);
  note("");
  stopEditing();
}

async function remove(messageId) {
  if (state.unsupported.has("chat:delete")) return note("this server cannot delete messages");
  const ack = await ask("chat:delete", { roomId: state.room, messageId });
  if (!ack.ok) return note(isUnknown(ack) ? "this server cannot delete messages" : `delete: ${ack.error}`);
  note("");
  if (state.editing === messageId) stopEditing();
}

// ---- read receipts: the newest message once this tab shows it ----

function markRead() {
  if (!state.room || document.visibilityState !== "visible") return;
  const ids = [...state.messages.keys()].sort(compareIds);
  const newest = ids[ids.length - 1];
  if (!newest || (state.lastReadSent && compareIds(newest, state.lastReadSent) <= 0)) return;
  state.lastReadSent = newest;
  // Sending already moved my last read to my own message.
  if (state.messages.get(newest)?.senderId === state.me) return;
  ask("chat:read", { roomId: state.room, messageId: newest }).then((ack) => {
    if (ack.ok) $("chat-unread").textContent = "";
  });
}

// ---- presence and typing ----

function renderOnline() {
  const list = $("chat-online");
  list.replaceChildren();
  if (list.dataset.known === "no") {
    const li = document.createElement("li");
    li.className = "dim";
    li.textContent = "presence not served by this server";
    list.append(li);
    return;
  }
  for (const user of [...state.online].sort()) {
    const li = document.createElement("li");
    li.textContent = user === state.me ? `${user} (you)` : user;
    li.dataset.user = user;
    list.append(li);
  }
}

function renderTyping() {
  const names = [...state.typers.keys()].sort();
  $("chat-typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

function sendTyping(typing) {
  if (!state.room || state.unsupported.has("chat:typing")) return;
  clearTimeout(state.typingIdle);
  if (typing) {
    state.typingIdle = setTimeout(() => sendTyping(false), TYPING_IDLE_MS);
    if (Date.now() - state.typingSentAt < TYPING_EVERY_MS) return;
    state.typingSentAt = Date.now();
  } else {
    if (state.typingSentAt === 0) return; // nothing announced
    state.typingSentAt = 0;
  }
  ask("chat:typing", { roomId: state.room, typing });
}

// ---- inbox ----

let inboxTimer = null;
/** `chat:rooms`, at most once a second. */
function refreshInbox() {
  if (inboxTimer || state.unsupported.has("chat:rooms")) return;
  inboxTimer = setTimeout(async () => {
    inboxTimer = null;
    if (!state.me) return;
    const ack = await ask("chat:rooms", { limit: 50 });
    const list = $("chat-rooms");
    if (!ack.ok) {
      list.replaceChildren();
      const li = document.createElement("li");
      li.className = "dim";
      li.textContent = isUnknown(ack) ? "inbox not served by this server" : `inbox: ${ack.error}`;
      list.append(li);
      return;
    }
    list.replaceChildren(
      ...ack.rooms.map((room) => {
        const li = document.createElement("li");
        li.dataset.room = room.roomId;
        if (room.roomId === state.room) li.className = "current";
        const name = document.createElement("b");
        name.textContent = room.roomId;
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = room.unread > 0 && room.roomId !== state.room ? String(room.unread) : "";
        const last = document.createElement("small");
        const lm = room.lastMessage;
        last.textContent = !lm ? "no messages" : lm.deleted ? "message deleted" : `${lm.senderId}: ${lm.message}`;
        li.append(name, badge, last);
        li.onclick = () => join(room.roomId);
        return li;
      }),
    );
    if (ack.rooms.length === 0) list.innerHTML = `<li class="dim">no rooms yet</li>`;
  }, 300);
}

// ---- wiring ----

/** Called for every new socket the console opens. */
export function attachChat(socket) {
  state.socket = socket;
  socket.on("connect", async () => {
    // A new connection is a new session: sign in and join again.
    if (state.token && (await authenticate(state.token)) && state.room) join(state.room);
  });
  socket.on("disconnect", () => {
    state.me = null;
    $("chat-me").textContent = "not signed in";
  });
  socket.on("authenticated", ({ userId }) => {
    if (userId !== state.me) setMe(userId);
  });
  socket.on("chat:message", (m) => {
    if (m.roomId !== state.room) return refreshInbox();
    const list = $("chat-messages");
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    upsert(m);
    if (state.typers.has(m.senderId)) {
      clearTimeout(state.typers.get(m.senderId));
      state.typers.delete(m.senderId);
      renderTyping();
    }
    if (atEnd || m.senderId === state.me) scrollToEnd();
    markRead();
    refreshInbox();
  });
  socket.on("chat:read", ({ roomId, userId, messageId }) => {
    if (roomId !== state.room) return;
    const before = state.reads.get(userId);
    if (before && compareIds(messageId, before) <= 0) return;
    state.reads.set(userId, messageId);
    renderAllMessages();
  });
  socket.on("chat:edited", ({ roomId, id, message, editedAt }) => {
    if (roomId !== state.room || !state.messages.has(id)) return refreshInbox();
    upsert({ id, message, editedAt });
    refreshInbox();
  });
  socket.on("chat:deleted", ({ roomId, id }) => {
    if (roomId !== state.room || !state.messages.has(id)) return refreshInbox();
    const m = state.messages.get(id);
    state.messages.set(id, { id, roomId, deleted: true, ts: m.ts });
    upsert({ id });
    if (state.editing === id) stopEditing();
    refreshInbox();
  });
  socket.on("chat:presence", ({ roomId, userId, online }) => {
    if (roomId !== state.room) return;
    if (online) state.online.add(userId);
    else state.online.delete(userId);
    $("chat-online").dataset.known = "yes";
    renderOnline();
  });
  socket.on("chat:typing", ({ roomId, userId, typing }) => {
    if (roomId !== state.room || userId === state.me) return;
    clearTimeout(state.typers.get(userId));
    if (typing) {
      state.typers.set(
        userId,
        setTimeout(() => {
          state.typers.delete(userId);
          renderTyping();
        }, TYPING_SHOWN_MS),
      );
    } else {
      state.typers.delete(userId);
    }
    renderTyping();
  });
}

export function initChat({ log, demo }) {
  state.log = log;
  state.demo = demo;
  if (demo) $("chat-name-label").hidden = false;
  $("chat-join").onclick = () => join($("chat-room").value);
  $("chat-room").addEventListener("keydown", (e) => {
    if (e.key === "Enter") join($("chat-room").value);
  });
  $("chat-leave").onclick = leave;
  $("chat-older").onclick = older;
  $("chat-form").onsubmit = send;
  $("chat-cancel").onclick = stopEditing;
  $("chat-inbox-refresh").onclick = () => refreshInbox();
  $("chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.editing) stopEditing();
  });
  $("chat-input").addEventListener("input", () => {
    if (!state.editing) sendTyping($("chat-input").value.length > 0);
  });
  document.addEventListener("visibilitychange", () => {
    markRead();
    if (document.visibilityState === "visible" && state.me) refreshInbox();
  });
  setInterval(() => {
    if (state.me && state.socket?.connected && document.visibilityState === "visible") refreshInbox();
  }, INBOX_EVERY_MS);
}
