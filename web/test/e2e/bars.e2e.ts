/**
 * Bars in the dashboard, in headless Chromium against a real tickstream server whose embedded
 * market has a past (--sim-history 16h), opened in the afternoon (the browser's time zone is
 * chosen so that it is about 14:00 there): every row's sparkline has the day's points in the
 * very frame that shows the row's first price, then moves live; a click on a row opens the
 * candlestick chart with volume, which draws the day and updates live; the keyboard opens and
 * closes it. Screenshots: test-results/bars-first-paint.png and test-results/bars-chart.png.
 *
 * Chromium: CHROMIUM_PATH or /usr/bin/chromium. Missing Chromium skips the test locally and
 * FAILS it when CI=true.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESULTS_DIR, Server, freePort, log } from "./harness.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const IS_CI = process.env.CI === "true";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ROWS = 8;

/** What the page saw at each row's first paint: the sparkline's points in that same frame. */
declare global {
  interface Window {
    __firstPaint: Record<string, { points: number; last: string; at: number }>;
  }
}

/**
 * A time zone where it is now about 14:00 (Etc/GMT-N is UTC+N): the dashboard's day starts at
 * local midnight, so whatever the hour the test runs at, the page sees 14 hours of the day.
 */
function afternoonZone(): string {
  const offset = 14 - new Date().getUTCHours(); // -9 to 14
  const zone = offset === 0 ? "Etc/GMT" : `Etc/GMT${offset > 0 ? "-" : "+"}${Math.abs(offset)}`;
  log(`browser time zone ${zone}`);
  return zone;
}

describe.skipIf(!HAVE_CHROMIUM && !IS_CI)("bars in the dashboard (headless Chromium)", () => {
  let server: Server;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const pageErrors: string[] = [];
  const protocolWarnings: string[] = [];

  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`Chromium not found at ${CHROMIUM} (CI=true: failing instead of skipping; run make chromium)`);
    // The past at about the live rate (200 000 updates over 16 h, 3.5/s; live 8/s), so that the
    // live bars look like the day's.
    server = new Server(await freePort(), ["--symbols", "20", "--rate", "8", "--sim-history", "16h"]);
    await server.start();
    profile = mkdtempSync(join(tmpdir(), "tickstream-chromium-"));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
      viewport: { width: 1440, height: 860 },
      timeout: 60_000,
      timezoneId: afternoonZone(),
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      const t = m.text();
      if (t.startsWith("tickstream protocol:")) protocolWarnings.push(t);
      // (The test's own readback of the chart's pixels makes Chromium advise willReadFrequently.)
      else if (m.type() === "error" || (m.type() === "warning" && !t.startsWith("Canvas2D: Multiple readback"))) {
        pageErrors.push(`console.${m.type()}: ${t}`);
      }
    });
    // Before the app runs: note, for each row, the sparkline's points when its price first
    // shows. The table writes a row's cells and draws its sparkline in one task, and the
    // observer runs right after that task: what it reads is what that frame paints.
    await page.addInitScript(() => {
      window.__firstPaint = {};
      new MutationObserver(() => {
        for (const cell of document.querySelectorAll<HTMLElement>('.qrow [data-field="last"]')) {
          const row = cell.closest<HTMLElement>(".qrow")!;
          const sym = row.dataset.symbol!;
          const text = cell.textContent ?? "—";
          if (text === "—" || window.__firstPaint[sym]) continue;
          const spark = row.querySelector<HTMLCanvasElement>("canvas.spark");
          window.__firstPaint[sym] = { points: Number(spark?.dataset.points ?? 0), last: text, at: performance.now() };
        }
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
  });

  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await server?.kill("SIGTERM").catch(() => {});
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const dialog = () => page.getByTestId("chart");
  const data = (k: string) => dialog().evaluate((d, key) => (d as HTMLElement).dataset[key] ?? "", k);

  it("draws every row's sparkline from the day's bars in its first frame, then live", async () => {
    const { symbols } = await server.get<{ symbols: string[] }>(`/api/v1/symbols?order=active&limit=${ROWS}`);
    expect(symbols).toHaveLength(ROWS);
    await page.goto(`${server.base}/?symbols=${symbols.join(",")}`);
    await expect.poll(() => page.evaluate(() => Object.keys(window.__firstPaint).length), { timeout: 30_000 }).toBe(ROWS);
    await page.screenshot({ path: join(RESULTS_DIR, "bars-first-paint.png") });
    log(`screenshot ${join(RESULTS_DIR, "bars-first-paint.png")}`);
    const first = await page.evaluate(() => window.__firstPaint);
    log(`points at first paint: ${JSON.stringify(Object.fromEntries(Object.entries(first).map(([s, f]) => [s, f.points])))}`);
    for (const s of symbols) {
      // 200 000 updates over 16 h, a fifth of them trades, Zipf over 20 symbols: the 8th
      // most active trades about twice a minute. Bars since local midnight: 14 hours.
      expect(first[s]!.points, `${s}: sparkline points at the first paint of its price`).toBeGreaterThanOrEqual(100);
    }
    // Live: the most active symbol's sparkline gains a bar or moves its newest one.
    const busiest = symbols[0]!;
    const canvas = page.locator(`.qrow[data-symbol="${busiest}"] canvas.spark`);
    const img0 = await canvas.evaluate((c) => (c as HTMLCanvasElement).toDataURL());
    await expect.poll(() => canvas.evaluate((c) => (c as HTMLCanvasElement).toDataURL()), { timeout: 30_000 }).not.toBe(img0);
    const stats = await page.evaluate(() => {
      const t = (globalThis as unknown as { tickstream: { stats: Record<string, number> } }).tickstream;
      return t.stats;
    });
    log(`SDK stats: ${JSON.stringify(stats)}`);
    expect(stats.barHistories).toBeGreaterThanOrEqual(ROWS);
    expect(stats.barUpdates).toBeGreaterThan(0);
    expect(stats.droppedBars).toBe(0);
  });

  it("opens a candlestick chart with volume on a click, which draws the day and updates live", async () => {
    const row = page.locator(".qbody .qrow").first();
    const sym = (await row.getAttribute("data-symbol"))!;
    await row.locator('[data-field="bid"]').click();
    await expect.poll(() => dialog().isVisible()).toBe(true);
    await expect.poll(() => dialog().locator("#chart-title").textContent()).toBe(`${sym} · 1-minute bars`);
    const bars0 = Number(await data("bars"));
    expect(bars0).toBeGreaterThanOrEqual(600); // of the 14 hours' 840 minutes
    // The chart's canvases hold candles of both colours (up and down).
    const colours = async () =>
      dialog().evaluate((d) => {
        let up = 0;
        let down = 0;
        for (const c of d.querySelectorAll("canvas")) {
          const g = c.getContext("2d");
          if (!g || c.width === 0 || c.height === 0) continue;
          const px = g.getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < px.length; i += 4) {
            const [r, gr, b] = [px[i]!, px[i + 1]!, px[i + 2]!];
            if (Math.abs(r - 0x2f) < 12 && Math.abs(gr - 0xcf) < 12 && Math.abs(b - 0x7a) < 12) up++;
            if (Math.abs(r - 0xff) < 12 && Math.abs(gr - 0x5d) < 12 && Math.abs(b - 0x67) < 12) down++;
          }
        }
        return { up, down };
      });
    await expect.poll(async () => Math.min(...Object.values(await colours())), { timeout: 10_000 }).toBeGreaterThan(200);
    // Live: BARs reach the chart (the newest candle changes, or a new one starts).
    const last0 = `${await data("lastT")}/${await data("lastClose")}`;
    await expect.poll(() => data("updates").then(Number), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    await expect.poll(async () => `${await data("lastT")}/${await data("lastClose")}`, { timeout: 30_000 }).not.toBe(last0);
    log(`chart of ${sym}: ${bars0} bars, then ${await data("bars")} after ${await data("updates")} live updates; colours ${JSON.stringify(await colours())}`);
    await page.mouse.move(10, 10); // no crosshair in the screenshot
    await page.screenshot({ path: join(RESULTS_DIR, "bars-chart.png") });
    log(`screenshot ${join(RESULTS_DIR, "bars-chart.png")}`);

    // Closable: Escape closes it and gives the focus back to the row's symbol.
    await page.keyboard.press("Escape");
    await expect.poll(() => dialog().isVisible()).toBe(false);
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe(sym);
  });

  it("opens and closes the chart with the keyboard alone", async () => {
    const second = (await page.locator(".qbody .qrow").nth(1).getAttribute("data-symbol"))!;
    await page.locator(`.qrow[data-symbol="${second}"] .sym-name`).focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => dialog().isVisible()).toBe(true);
    await expect.poll(() => dialog().locator("#chart-title").textContent()).toBe(`${second} · 1-minute bars`);
    // The focus is in the dialog, on its Close button: Enter closes it.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("chart-close");
    await page.keyboard.press("Enter");
    await expect.poll(() => dialog().isVisible()).toBe(false);
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe(second);
    expect(pageErrors).toEqual([]);
    expect(protocolWarnings).toEqual([]);
  });

  it("works on a node with bars off: prices and their sparklines, no chart", async () => {
    const off = new Server(await freePort(), ["--symbols", "20", "--rate", "200", "--bars", "off"]);
    await off.start();
    try {
      const syms = ["AAPL", "MSFT", "NVDA"];
      const warnings: string[] = [];
      const onConsole = (m: { type(): string; text(): string }) => {
        if (m.type() === "warning") warnings.push(m.text());
      };
      page.on("console", onConsole);
      await page.goto(`${off.base}/?symbols=${syms.join(",")}`);
      // The SUB with bars is refused (ERROR 400), the rows subscribe again without bars.
      for (const s of syms) {
        await expect.poll(() => page.locator(`.qrow[data-symbol="${s}"] [data-field="last"]`).textContent(), { timeout: 20_000 }).not.toBe("—");
      }
      await expect
        .poll(() => page.locator(".qbody canvas.spark").evaluateAll((cs) => Math.min(...cs.map((c) => Number((c as HTMLElement).dataset.points)))), { timeout: 20_000 })
        .toBeGreaterThanOrEqual(2);
      expect(warnings.some((w) => w.includes("bars are off on this server; the sparklines use the prices seen"))).toBe(true);
      await page.locator(`.qrow[data-symbol="AAPL"] [data-field="bid"]`).click();
      await expect.poll(() => page.locator("#hint").textContent()).toBe("This server keeps no bars: no chart");
      expect(await dialog().isVisible()).toBe(false);
      page.off("console", onConsole);
    } finally {
      await off.kill("SIGTERM");
    }
  });
});
