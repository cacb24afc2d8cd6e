// The official Socket.IO Admin UI web app, served by roomcast at /admin-ui/,
// in headless Chromium against two nodes and a real Redis: log in, see both
// servers and the test's sockets and rooms. Nothing is loaded from elsewhere.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { mintToken, ask } from "../helpers.js";
import { startRedis, startCluster } from "../cluster-helpers.js";
import { ADMIN_HASH, ADMIN_PASSWORD } from "../admin-ui-helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.resolve(here, "../../artifacts");
const docs = path.resolve(here, "../../../docs");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

let redis, nodes, browser;
before(async () => {
  redis = await startRedis();
  nodes = await startCluster(redis, 2, ["--admin-ui-password", ADMIN_HASH, "--chat-open"]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.kill();
});

test("log in to the Admin UI at /admin-ui/ and see both nodes, their sockets and rooms", async () => {
  const [n1, n2] = nodes;
  const alice = await n1.connect({ auth: { token: mintToken({ sub: "alice" }) } });
  await ask(alice, "subscribe:price", ["BTC-USD"]);
  const bob = await n2.connect({ auth: { token: mintToken({ sub: "bob" }) } });
  await ask(bob, "chat:join", { roomId: "lobby" });
  const carol = await n2.connect({ transports: ["polling"] });
  await ask(carol, "subscribe:trades", ["ETH-USD"]);

  const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
  const errors = [];
  const elsewhere = [];
  const failed = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(n1.url) && !r.url().startsWith("data:")) elsewhere.push(r.url());
  });
  page.on("response", async (r) => {
    if (r.status() < 400) return;
    const body = await r.text().catch(() => "");
    // The UI's first, refused connection (no session yet) is closed by the
    // server; a poll of it still in flight is answered "Session ID unknown",
    // as Node's engine.io does, and the client moves on. Anything else fails.
    if (r.status() === 400 && r.url().includes("transport=polling") && body.includes('"Session ID unknown"')) return;
    failed.push(`${r.status()} ${r.url()} ${body}`);
  });

  await page.goto(`${n1.url}/admin-ui`);
  assert.ok(page.url().startsWith(`${n1.url}/admin-ui/`), `redirected to the trailing slash: ${page.url()}`);

  // The server URL is prefilled with the page's origin; the first automatic
  // connection (no session yet) is refused and the login form shows.
  const url = page.getByLabel("Server URL");
  await url.waitFor({ timeout: 15000 });
  assert.equal(await url.inputValue(), n1.url);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("wrong");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByText("Invalid credentials").waitFor({ timeout: 10000 });
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByLabel("Server URL").waitFor({ state: "hidden", timeout: 10000 });

  await page.goto(`${n1.url}/admin-ui/#/servers`);
  await page.locator("table").getByText("n1", { exact: true }).waitFor({ timeout: 10000 });
  await page.locator("table").getByText("n2", { exact: true }).waitFor({ timeout: 10000 });

  await page.goto(`${n1.url}/admin-ui/#/sockets`);
  for (const socket of [alice, bob, carol]) {
    await page.locator("table").getByText(socket.id, { exact: true }).waitFor({ timeout: 10000 });
  }

  await page.goto(`${n1.url}/admin-ui/#/rooms`);
  for (const room of ["price:BTC-USD", "user:alice", "user:bob", "chat:lobby", "trades:ETH-USD"]) {
    await page.locator("table").getByText(room, { exact: true }).waitFor({ timeout: 10000 });
  }
  await page.waitForTimeout(500); // let the page transition finish for the screenshot
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, "admin-ui-rooms.png") });

  // A socket opened now on the other node shows up live.
  const dave = await n2.connect({ auth: { token: mintToken({ sub: "dave" }) } });
  await page.locator("table").getByText("user:dave", { exact: true }).waitFor({ timeout: 10000 });

  await page.goto(`${n1.url}/admin-ui/#/sockets`);
  await page.locator("table").getByText(dave.id, { exact: true }).waitFor({ timeout: 10000 });
  // Sockets that opened on polling and upgraded show as WebSocket (socket_updated);
  // only carol stays on polling.
  await page.waitForFunction(
    () => [...document.querySelectorAll("table tbody tr")].filter((tr) => /long-polling/.test(tr.textContent)).length === 1,
    null,
    { timeout: 10000 },
  );
  await page.locator("table tbody tr", { hasText: carol.id }).getByText("HTTP long-polling").waitFor({ timeout: 1000 });
  await page.waitForTimeout(500); // let the page transition finish for the screenshot
  await page.screenshot({ path: path.join(artifacts, "admin-ui-sockets.png") });

  await page.goto(`${n1.url}/admin-ui/#/`);
  await page.getByText("Servers").first().waitFor({ timeout: 10000 });
  const iconFont = await page.evaluate(async () => {
    await document.fonts.ready;
    return document.fonts.check('24px "Material Design Icons"');
  });
  assert.ok(iconFont, "the icon font is loaded from the binary");
  await page.waitForTimeout(2500); // two more server_stats for the dashboard's charts
  await page.screenshot({ path: path.join(artifacts, "admin-ui.png") });
  // docs/admin-ui.png (the README's picture) is refreshed only when asked:
  // UPDATE_DOCS=1 node --test browser/admin-ui.test.js
  if (process.env.UPDATE_DOCS) {
    mkdirSync(docs, { recursive: true });
    copyFileSync(path.join(artifacts, "admin-ui.png"), path.join(docs, "admin-ui.png"));
  }

  assert.deepEqual(elsewhere, [], "nothing is fetched from another origin");
  assert.deepEqual(failed, [], "no failed request");
  assert.deepEqual(errors, [], "no script errors in the page");
});
