// The console's chat panel in headless Chromium: two pages, two users, one
// roomcast started with --demo --chat-open.
//
// What needs the chat events of CONTRACT §9 (presence, typing, edit, delete,
// the inbox) runs through `needsChatExtras`: it is skipped only when this
// server answers `unknown event` to `chat:typing` (a server built before
// those events existed), and runs in full against one that serves them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer, mintToken } from "../helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.resolve(here, "../../artifacts");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const T = { timeout: 10000 };

let server, browser, extras;
before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await startServer(["--demo", "--chat-open"]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  extras = await serverHasChatExtras();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Does this server serve CONTRACT §9's events? False only on `unknown event` to `chat:typing`. */
async function serverHasChatExtras() {
  const res = await fetch(`${server.url}/api/v1/demo/token?sub=probe`);
  const { token } = await res.json();
  const socket = await server.connect({ auth: { token } });
  try {
    await socket.timeout(5000).emitWithAck("chat:join", { roomId: "probe" });
    const ack = await socket.timeout(5000).emitWithAck("chat:typing", { roomId: "probe", typing: false });
    return !(typeof ack?.error === "string" && ack.error.startsWith("unknown event"));
  } finally {
    socket.close();
  }
}

/** A test step that needs the §9 chat events; skipped (with a note) only on a server without them. */
async function needsChatExtras(t, what, fn) {
  const skip = extras ? false : 'this server answers "unknown event" to chat:typing';
  await t.test(what, { skip }, fn);
}

/** A page at `viewport` that records script errors, console errors and failed requests. */
async function openPage(viewport = { width: 1366, height: 900 }) {
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} ${r.url()}`));
  await page.goto(server.url);
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, T);
  return { page, problems };
}

/** Sign in as `name` (demo token) and join `room` through the chat panel. */
async function joinAs(page, name, room) {
  await page.fill("#chat-name", name);
  await page.fill("#chat-room", room);
  await page.click("#chat-join");
  await page.waitForFunction(
    ([n, r]) => document.querySelector("#chat-me").textContent === n && document.querySelector("#chat-title").textContent === r,
    [name, room],
    T,
  );
  await page.waitForFunction(() => !document.querySelector("#chat-input").disabled, null, T);
}

async function say(page, text) {
  await page.fill("#chat-input", text);
  await page.click("#chat-send");
}

const bodies = (page) => page.locator("#chat-messages li .body").allTextContents();
const waitForText = (page, text) =>
  page.waitForFunction(
    (t) => [...document.querySelectorAll("#chat-messages li .body")].some((b) => b.textContent.startsWith(t)),
    text,
    T,
  );

test("two tabs chat: join, send, the other sees it, history after a reload, read receipts", async (t) => {
  const room = `desk-${Date.now()}`;
  const a = await openPage();
  const b = await openPage();
  await joinAs(a.page, "alice", room);
  await joinAs(b.page, "bob", room);

  await say(a.page, "hello bob");
  await waitForText(b.page, "hello bob");
  await waitForText(a.page, "hello bob");
  assert.equal(await a.page.locator("#chat-input").inputValue(), "", "the composer is cleared after a send");
  const fromAlice = b.page.locator("#chat-messages li", { hasText: "hello bob" });
  assert.match(await fromAlice.locator(".head b").textContent(), /^alice$/);
  assert.equal(await fromAlice.getAttribute("class"), "msg", "not bob's own");
  assert.equal(await fromAlice.locator(".chat-edit").count(), 0, "no Edit on someone else's message");
  await say(b.page, "hi alice");
  await waitForText(a.page, "hi alice");

  // bob's tab shows alice's message and reads it; alice sees the receipt.
  await a.page.waitForFunction(
    () => [...document.querySelectorAll("#chat-messages .reads")].some((r) => r.textContent === "read by bob"),
    null,
    T,
  );

  // Reload: the room's history comes back on join, in order.
  await b.page.reload();
  await b.page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, T);
  await joinAs(b.page, "bob", room);
  await waitForText(b.page, "hi alice");
  assert.deepEqual(await bodies(b.page), ["hello bob", "hi alice"]);
  await b.page.waitForFunction(() => !/join a room/.test(document.querySelector("#chat-rooms").textContent), null, T);

  await needsChatExtras(t, "presence: each sees the other online; a closed tab goes offline", async () => {
    await a.page.waitForFunction(() => !!document.querySelector('#chat-online li[data-user="bob"]'), null, T);
    await b.page.waitForFunction(() => !!document.querySelector('#chat-online li[data-user="alice"]'), null, T);
    const c = await openPage();
    await joinAs(c.page, "carol", room);
    await a.page.waitForFunction(() => !!document.querySelector('#chat-online li[data-user="carol"]'), null, T);
    await c.page.close();
    await a.page.waitForFunction(() => !document.querySelector('#chat-online li[data-user="carol"]'), null, T);
    assert.deepEqual(await a.page.locator("#chat-online li").allTextContents(), ["alice (you)", "bob"]);
  });

  await needsChatExtras(t, "typing: alice types, bob sees `alice is typing…`, and it goes away", async () => {
    await a.page.locator("#chat-input").pressSequentially("typing now", { delay: 20 });
    await b.page.waitForFunction(() => document.querySelector("#chat-typing").textContent === "alice is typing…", null, T);
    // Stopped typing: gone after the idle timeout (3 s) or its expiry (5 s).
    await b.page.waitForFunction(() => document.querySelector("#chat-typing").textContent === "", null, { timeout: 9000 });
    await a.page.fill("#chat-input", "");
  });

  await needsChatExtras(t, "edit and delete of one's own message reach the other tab; history keeps both", async () => {
    const mine = a.page.locator("#chat-messages li", { hasText: "hello bob" });
    await mine.locator(".chat-edit").click();
    assert.equal(await a.page.locator("#chat-input").inputValue(), "hello bob");
    assert.equal(await a.page.locator("#chat-send").textContent(), "Save");
    await a.page.fill("#chat-input", "hello bob (fixed)");
    await a.page.click("#chat-send");
    await b.page.waitForFunction(
      () => [...document.querySelectorAll("#chat-messages li .body")].some((x) => x.textContent === "hello bob (fixed) (edited)"),
      null,
      T,
    );
    // alice's own ack may come after bob has the edit: the composer is Send again once it does.
    await a.page.waitForFunction(() => document.querySelector("#chat-send").textContent === "Send", null, T);
    assert.equal(await a.page.locator("#chat-input").inputValue(), "");

    await say(a.page, "oops, wrong room");
    await waitForText(b.page, "oops, wrong room");
    await a.page.locator("#chat-messages li", { hasText: "oops, wrong room" }).locator(".chat-delete").click();
    await b.page.waitForFunction(
      () => [...document.querySelectorAll("#chat-messages li.deleted .body")].some((x) => x.textContent === "message deleted"),
      null,
      T,
    );
    // A reload shows the edit and the tombstone from history.
    await b.page.reload();
    await b.page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, T);
    await joinAs(b.page, "bob", room);
    await waitForText(b.page, "message deleted");
    assert.deepEqual(await bodies(b.page), ["hello bob (fixed) (edited)", "hi alice", "message deleted"]);
  });

  await needsChatExtras(t, "inbox: bob's rooms with unread counts, newest first; a click joins", async () => {
    const other = `${room}-b`;
    await joinAs(a.page, "alice", other); // alice leaves `room` for `other`
    await joinAs(b.page, "bob", other);
    await joinAs(b.page, "bob", room); // bob back in `room`; `other` now waits in the inbox
    await say(a.page, "over here");
    await b.page.waitForFunction(
      (r) => {
        const li = document.querySelector(`#chat-rooms li[data-room="${r}"]`);
        return li && li.querySelector(".badge").textContent === "1" && li.querySelector("small").textContent === "alice: over here";
      },
      other,
      T,
    );
    assert.equal(await b.page.locator("#chat-rooms li").first().getAttribute("data-room"), other, "most recent first");
    await b.page.click(`#chat-rooms li[data-room="${other}"]`);
    await b.page.waitForFunction((r) => document.querySelector("#chat-title").textContent === r, other, T);
    await waitForText(b.page, "over here");
    await joinAs(a.page, "alice", room);
    await joinAs(b.page, "bob", room);
  });

  // The picture in the README: alice's tab, bob read her last message and types.
  await say(a.page, "see you at 8");
  await waitForText(b.page, "see you at 8");
  await a.page.waitForFunction(
    () => document.querySelector("#chat-messages li:last-child .reads")?.textContent === "read by bob",
    null,
    T,
  );
  await b.page.locator("#chat-input").pressSequentially("on my way", { delay: 10 });
  if (extras) await a.page.waitForFunction(() => document.querySelector("#chat-typing").textContent === "bob is typing…", null, T);
  await a.page.locator("#chat-panel").screenshot({ path: path.join(artifacts, "console-chat.png") });
  await b.page.locator("#chat-panel").screenshot({ path: path.join(artifacts, "console-chat-bob.png") });
  assert.deepEqual(a.problems, [], "no failed request, console error or page error");
  assert.deepEqual(b.problems, []);
  await a.page.close();
  await b.page.close();
});

test("the chat panel fits at 390 px and at 1366 px", async () => {
  const room = `phone-${Date.now()}`;
  for (const width of [390, 1366]) {
    const { page, problems } = await openPage({ width, height: 844 });
    await joinAs(page, `user-${width}`, room);
    await say(page, `a rather long message from a ${width} px screen that has to wrap inside its bubble without pushing anything sideways`);
    await waitForText(page, "a rather long message");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, `no horizontal scroll at ${width} px`);
    for (const id of ["#chat-join", "#chat-send", "#chat-input", "#chat-messages li", "#chat-online", "#chat-rooms"]) {
      const box = await page.locator(id).first().boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= width, `${id} fits ${width} px: ${JSON.stringify(box)}`);
    }
    await page.waitForFunction(() => !/join a room/.test(document.querySelector("#chat-rooms").textContent), null, T);
    await page.locator("#chat-panel").screenshot({ path: path.join(artifacts, `console-chat-${width}.png`) });
    await page.screenshot({ path: path.join(artifacts, `console-chat-page-${width}.png`), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  }
});

test("without --demo the chat panel signs in with the pasted token; private rooms say why they refuse", async () => {
  const plain = await startServer([]);
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.goto(plain.url);
    await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, T);
    assert.equal(await page.locator("#chat-name-label").isHidden(), true, "no name field without --demo");
    await page.click("#chat-join");
    await page.waitForFunction(() => /sign in first/.test(document.querySelector("#chat-note").textContent), null, T);
    await page.fill("#token", mintToken({ sub: "carol" }));
    await page.click("#chat-join");
    await page.waitForFunction(() => document.querySelector("#chat-me").textContent === "carol", null, T);
    await page.waitForFunction(() => /--chat-open/.test(document.querySelector("#chat-note").textContent), null, T);
    assert.equal(await page.locator("#chat-input").isDisabled(), true);
    await page.close();
  } finally {
    await plain.stop();
  }
});
