// The web console in headless Chromium against a --demo server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.resolve(here, "../../artifacts");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

let server, browser;
before(async () => {
  server = await startServer(["--demo"]); // --demo: `metrics` every second by default
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page that records script errors, console errors and failed requests (404s included). */
async function openPage(viewport = { width: 1366, height: 900 }) {
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} ${r.url()}`));
  page.on("requestfailed", (r) => problems.push(`failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(server.url);
  return { page, problems };
}

test("in --demo the console subscribes on its own: prices without any click", async () => {
  const { page, problems } = await openPage();
  await page.waitForFunction(() => document.querySelectorAll("#prices tbody tr").length >= 3, null, { timeout: 10000 });
  const symbols = await page.locator("#prices tbody td:first-child").allTextContents();
  assert.deepEqual(symbols, ["BTC-USD", "ETH-USD", "SOL-USD"]);
  assert.ok(Number(await page.locator("#price-BTC-USD td.price").textContent()) > 0);
  assert.deepEqual(problems, [], "no 404, console error or page error (favicon included)");
  await page.close();
});

test("the console connects, shows live prices and trades, pings, and shows admin metrics", async () => {
  const { page, problems } = await openPage({ width: 1366, height: 900 });

  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
  await page.waitForFunction(() => document.querySelector("#transport").textContent === "websocket", null, { timeout: 15000 });

  // Wait for the demo's own subscription, then narrow it by hand.
  await page.locator("#price-SOL-USD").waitFor({ timeout: 10000 });
  await page.fill("#symbols", "SOL-USD");
  await page.click("#unsubscribe");
  await page.locator("#price-SOL-USD").waitFor({ state: "detached", timeout: 10000 });
  await page.evaluate(() => (document.querySelector("#trades").innerHTML = ""));
  const row = page.locator("#price-BTC-USD td.price");
  await row.waitFor({ timeout: 10000 });
  const first = await row.textContent();
  await page.waitForFunction(
    (before) => document.querySelector("#price-BTC-USD td.price").textContent !== before,
    first,
    { timeout: 10000 },
  );
  assert.ok(Number(await row.textContent()) > 0, "a price is shown");

  await page.waitForFunction(() => document.querySelectorAll("#trades li").length > 0, null, { timeout: 15000 });
  const trade = await page.locator("#trades li").first().textContent();
  assert.match(trade, /(BTC|ETH)-USD/, "only subscribed symbols' trades");

  await page.click("#ping");
  await page.waitForFunction(() => /ms$/.test(document.querySelector("#latency").textContent), null, { timeout: 10000 });

  await page.click("#demo-admin");
  await page.waitForFunction(() => document.querySelector("#user").textContent === "demo-admin", null, { timeout: 10000 });
  await page.waitForFunction(() => document.querySelectorAll("#nodes .node").length === 1, null, { timeout: 15000 });
  // --demo sends `metrics` every second: the charts have points within seconds.
  await page.waitForFunction(() => Number(document.querySelector("#nodes .node .chart b").textContent) >= 1, null, { timeout: 10000 });
  await page.waitForTimeout(3000); // a few points on the charts for the screenshot
  assert.match(await page.locator("#log").textContent(), /authenticated/);

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, "console.png") });
  assert.deepEqual(problems, [], "no 404, console error or page error");
});

test("at phone width (390 px) nothing overflows sideways", async () => {
  const { page, problems } = await openPage({ width: 390, height: 844 });
  await page.waitForFunction(() => document.querySelectorAll("#prices tbody tr").length >= 3, null, { timeout: 10000 });
  await page.click("#demo-admin");
  await page.waitForFunction(() => document.querySelectorAll("#nodes .node").length === 1, null, { timeout: 15000 });
  await page.waitForFunction(() => document.querySelectorAll("#trades li").length > 0, null, { timeout: 15000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, "no horizontal scroll");
  for (const id of ["#disconnect", "#subscribe", "#demo-admin", "#nodes canvas"]) {
    const box = await page.locator(id).first().boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${id} fits the screen: ${JSON.stringify(box)}`);
  }
  await page.screenshot({ path: path.join(artifacts, "console-390.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("after Disconnect the old latency and user are gone; the console reconnects", async () => {
  const { page } = await openPage();
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
  await page.click("#demo-user");
  await page.waitForFunction(() => document.querySelector("#user").textContent === "demo-user", null, { timeout: 10000 });
  await page.click("#ping");
  await page.waitForFunction(() => /ms$/.test(document.querySelector("#latency").textContent), null, { timeout: 10000 });
  await page.click("#disconnect");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "disconnected", null, { timeout: 10000 });
  assert.equal(await page.locator("#latency").textContent(), "–");
  assert.equal(await page.locator("#user").textContent(), "anonymous");
  await page.click("#reconnect");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
});

test("without --demo: no demo buttons, no subscription of its own, and no failed request", async () => {
  const plain = await startServer([]);
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
    page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} ${r.url()}`));
    await page.goto(plain.url);
    await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
    await page.click("#ping");
    await page.waitForFunction(() => /ms$/.test(document.querySelector("#latency").textContent), null, { timeout: 10000 });
    assert.equal(await page.locator("#demo-admin").isHidden(), true);
    assert.doesNotMatch(await page.locator("#log").textContent(), /subscribe/);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await plain.stop();
  }
});
