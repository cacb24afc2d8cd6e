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
  server = await startServer(["--demo", "--metrics-interval-ms", "500"]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the console connects, shows live prices and trades, pings, and shows admin metrics", async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(server.url);

  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
  await page.waitForFunction(() => document.querySelector("#transport").textContent === "websocket", null, { timeout: 15000 });

  await page.fill("#symbols", "BTC-USD,ETH-USD");
  await page.click("#subscribe");
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
  await page.waitForTimeout(1200); // let the sparklines draw a few points for the screenshot
  assert.match(await page.locator("#log").textContent(), /authenticated/);

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, "console.png") });
  assert.deepEqual(errors, [], "no script errors in the page");
});

test("the console reconnects after Disconnect", async () => {
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
  await page.click("#disconnect");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "disconnected", null, { timeout: 10000 });
  await page.click("#reconnect");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 15000 });
});
