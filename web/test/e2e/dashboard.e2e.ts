/**
 * The dashboard in headless Chromium against a real tickstream server on 127.0.0.1:
 * add three symbols, see prices move, feed outage banner on and off, server killed and
 * restarted on the same port, page recovers. Screenshots go to web/test-results/.
 *
 * Chromium: CHROMIUM_PATH or /usr/bin/chromium (never downloaded). Missing Chromium skips
 * the test locally and FAILS it when CI=true.
 */
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESULTS_DIR, Server, freePort, log, sleep } from "./harness.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const IS_CI = process.env.CI === "true";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe.skipIf(!HAVE_CHROMIUM && !IS_CI)("dashboard in headless Chromium", () => {
  let server: Server;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const pageErrors: string[] = [];
  const protocolWarnings: string[] = [];

  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`Chromium not found at ${CHROMIUM} (CI=true: failing instead of skipping; run make chromium)`);
    server = new Server(await freePort());
    await server.start();
    profile = mkdtempSync(join(tmpdir(), "tickstream-chromium-"));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 860 },
      timeout: 60_000,
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      const t = m.text();
      if (t.startsWith("tickstream protocol:")) protocolWarnings.push(t);
      if (m.type() === "error" && !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|Failed to load resource/.test(t)) {
        pageErrors.push(`console.error: ${t}`);
      }
    });
  });

  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await server?.kill("SIGTERM").catch(() => {});
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (protocolWarnings.length) log(`protocol warnings from the page:\n  ${protocolWarnings.slice(0, 20).join("\n  ")}`);
  });

  const conn = () => page.getByTestId("conn-status");
  const banner = () => page.getByTestId("stale-banner");
  const lastCell = (s: string) => page.locator(`.qrow[data-symbol="${s}"] [data-field="last"]`);

  async function waitState(state: string, timeout = 30_000): Promise<void> {
    await expect.poll(() => conn().getAttribute("data-state"), { timeout, interval: 100 }).toBe(state);
  }

  /** Waits until the last price of every symbol has changed `times` times. */
  async function seePricesMove(symbols: string[], times = 2, timeout = 30_000): Promise<void> {
    const seen = new Map<string, Set<string>>(symbols.map((s) => [s, new Set<string>()]));
    const t0 = Date.now();
    for (;;) {
      for (const s of symbols) {
        const t = (await lastCell(s).textContent())?.trim() ?? "";
        if (t && t !== "—") seen.get(s)!.add(t);
      }
      if ([...seen.values()].every((v) => v.size > times)) return;
      if (Date.now() - t0 > timeout) {
        throw new Error(`prices did not move: ${JSON.stringify([...seen].map(([s, v]) => [s, [...v]]))}`);
      }
      await sleep(100);
    }
  }

  it("adds symbols, shows live prices, the stale banner, and recovers after a server restart", async () => {
    const { symbols: universe } = await server.get<{ symbols: string[]; total: number }>("/api/v1/symbols?limit=1000");
    expect(universe.length).toBeGreaterThanOrEqual(3);
    const preferred = ["AAPL", "MSFT", "NVDA"].filter((s) => universe.includes(s));
    const picks = [...preferred, ...universe.filter((s) => !preferred.includes(s))].slice(0, 3);
    log(`symbols: ${picks.join(", ")} (of ${universe.length})`);

    await page.goto(`${server.base}/?symbols=`);
    await waitState("live");
    await expect.poll(() => page.locator("#empty").isVisible()).toBe(true);

    // 1: autocomplete by prefix, click the suggestion
    const input = page.getByTestId("symbol-input");
    await input.click();
    await input.pressSequentially(picks[0]!.slice(0, 2), { delay: 30 });
    const sugg = page.locator(`#suggestions li[data-symbol="${picks[0]}"]`);
    await sugg.waitFor();
    expect(await page.locator("#suggestions li[data-symbol]").count()).toBeLessThanOrEqual(20);
    await sugg.click();
    // 2: full name + Enter (the exact match is the highlighted suggestion)
    await input.fill(picks[1]!);
    await page.locator(`#suggestions li[data-symbol="${picks[1]}"].active`).waitFor();
    await input.press("Enter");
    // 3: typed and added with the button
    await input.fill(picks[2]!);
    await page.locator("#add-form button[type=submit]").click();

    for (const s of picks) await page.locator(`.qrow[data-symbol="${s}"]`).waitFor();
    expect(await page.locator(".qbody .qrow").count()).toBe(3);
    expect(new URL(page.url()).searchParams.get("symbols")).toBe(picks.join(","));
    await seePricesMove(picks);
    log("prices move");

    // reorder with the keyboard: third row up
    await page.locator(`.qrow[data-symbol="${picks[2]}"] .grip`).focus();
    await page.keyboard.press("ArrowUp");
    const order = [picks[0]!, picks[2]!, picks[1]!];
    expect(await page.locator(".qbody .qrow").evaluateAll((trs) => trs.map((t) => (t as HTMLElement).dataset.symbol))).toEqual(order);
    expect(new URL(page.url()).searchParams.get("symbols")).toBe(order.join(","));

    // remove: add a fourth and take it out again
    const extra = universe.find((s) => !picks.includes(s))!;
    await input.fill(extra);
    await input.press("Enter");
    await page.locator(`.qrow[data-symbol="${extra}"]`).waitFor();
    await page.locator(`.qrow[data-symbol="${extra}"] .remove`).click();
    await page.locator(`.qrow[data-symbol="${extra}"]`).waitFor({ state: "detached" });

    // feed outage: STATUS "stale" -> banner; back up -> banner gone
    await server.post("/api/v1/demo/feed?state=down");
    await banner().waitFor({ state: "visible", timeout: 15_000 });
    expect(await banner().getAttribute("data-reason")).toBe("feed");
    expect(await banner().textContent()).toMatch(/data delayed/i);
    await waitState("stale");
    await page.screenshot({ path: join(RESULTS_DIR, "dashboard-stale.png") });
    log("stale banner shown");
    await server.post("/api/v1/demo/feed?state=up");
    await banner().waitFor({ state: "hidden", timeout: 15_000 });
    await waitState("live");
    await seePricesMove(picks, 1);
    log("stale banner gone, prices move again");

    // kill the server, restart it on the same port, the page recovers
    await server.kill("SIGKILL");
    await waitState("reconnecting", 30_000);
    await banner().waitFor({ state: "visible" });
    expect(await banner().getAttribute("data-reason")).toBe("disconnected");
    await page.screenshot({ path: join(RESULTS_DIR, "dashboard-reconnecting.png") });
    log("server killed, page reconnecting");
    await sleep(1500);
    await server.start();
    await waitState("live", 60_000);
    await banner().waitFor({ state: "hidden" });
    await seePricesMove(order, 2);
    log("recovered after restart");

    // localStorage keeps the list for a visit without ?symbols=
    await page.goto(`${server.base}/`);
    await waitState("live");
    await expect.poll(() => new URL(page.url()).searchParams.get("symbols")).toBe(order.join(","));
    await seePricesMove(order, 2);
    await sleep(1200); // let the header rates fill in and some cells flash
    await page.screenshot({ path: join(RESULTS_DIR, "dashboard.png") });
    log(`screenshot ${join(RESULTS_DIR, "dashboard.png")}`);

    expect(pageErrors).toEqual([]);
  });

  it("stays smooth with 200 symbols", async () => {
    const { symbols: universe } = await server.get<{ symbols: string[] }>("/api/v1/symbols?limit=200");
    const list = universe.slice(0, 200);
    await page.goto(`${server.base}/?symbols=${list.join(",")}`);
    await waitState("live");
    await expect.poll(() => page.locator(".qbody .qrow").count()).toBe(list.length);
    await sleep(2000);
    const m = await page.evaluate(async () => {
      const longTasks: number[] = [];
      const po = new PerformanceObserver((l) => l.getEntries().forEach((e) => longTasks.push(e.duration)));
      try {
        po.observe({ type: "longtask", buffered: false });
      } catch {
        /* not supported */
      }
      const client = (globalThis as unknown as { tickstream: { stats: { messages: number } } }).tickstream;
      const m0 = client.stats.messages;
      let frames = 0;
      let worst = 0;
      let prev = performance.now();
      const t0 = prev;
      await new Promise<void>((res) => {
        const f = (t: number) => {
          frames++;
          worst = Math.max(worst, t - prev);
          prev = t;
          if (t - t0 < 5000) requestAnimationFrame(f);
          else res();
        };
        requestAnimationFrame(f);
      });
      po.disconnect();
      const secs = (performance.now() - t0) / 1000;
      return {
        fps: frames / secs,
        worstFrameMs: worst,
        msgsPerSec: (client.stats.messages - m0) / secs,
        longTasks: longTasks.length,
        longestTaskMs: Math.max(0, ...longTasks),
        render: document.querySelector("#render")?.textContent,
      };
    });
    log(`200 symbols: ${JSON.stringify(m)}`);
    await page.screenshot({ path: join(RESULTS_DIR, "dashboard-200.png") });
    expect(m.msgsPerSec).toBeGreaterThan(100);
    // Loose bound: a 2-core machine also runs the server and the simulator.
    expect(m.fps).toBeGreaterThan(20);
    expect(pageErrors).toEqual([]);
  });
});

const SECRET = "dashboard-e2e-secret-of-32-bytes!";

/** An HS256 JWT, signed as `tickstream serve --jwt-secret` checks it. */
function mint(syms: string[], ttlSec = 3600): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ syms, exp: Math.floor(Date.now() / 1000) + ttlSec })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

describe.skipIf(!HAVE_CHROMIUM && !IS_CI)("dashboard on a node that authenticates (--auth jwt)", () => {
  let server: Server;
  let ctx: BrowserContext;
  let profile: string;
  let universe: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`Chromium not found at ${CHROMIUM} (CI=true: failing instead of skipping; run make chromium)`);
    server = new Server(await freePort(), ["--symbols", "20", "--rate", "400", "--auth", "jwt", "--jwt-secret", SECRET]);
    await server.start();
    const r = await fetch(`${server.base}/api/v1/symbols?limit=100`, { headers: { Authorization: `Bearer ${mint(["*"])}` } });
    universe = ((await r.json()) as { symbols: string[] }).symbols;
    profile = mkdtempSync(join(tmpdir(), "tickstream-chromium-"));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 720 },
      timeout: 60_000,
    });
  });

  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await server?.kill("SIGTERM").catch(() => {});
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** A new tab: its own sessionStorage, so a new sign-in. */
  async function newTab(): Promise<Page> {
    const page = await ctx.newPage();
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    return page;
  }
  const connState = (page: Page) => page.getByTestId("conn-status").getAttribute("data-state");
  const note = (page: Page, s: string) => page.locator(`.qrow[data-symbol="${s}"] .sym-note`);
  const pricesShown = async (page: Page, symbols: string[]) => {
    for (const s of symbols) {
      await expect
        .poll(async () => (await page.locator(`.qrow[data-symbol="${s}"] [data-field="last"]`).textContent())?.trim(), { timeout: 30_000 })
        .toMatch(/\d/);
    }
  };

  it("takes ?token= from the address, keeps it for the tab, and marks refused and unknown symbols", async () => {
    const [a, b, c] = universe as [string, string, string];
    const unknown = "NO.SUCH.SYMBOL.EVER";
    const token = mint([a, b, unknown]);
    const page = await newTab();
    await page.goto(`${server.base}/?symbols=${[a, b, c, unknown].join(",")}&token=${token}`);
    await expect.poll(() => connState(page), { timeout: 30_000 }).toBe("live");
    // Out of the address bar at once, the watchlist kept.
    const url = new URL(page.url());
    expect(url.searchParams.has("token")).toBe(false);
    expect(url.searchParams.get("symbols")).toBe([a, b, c, unknown].join(","));
    expect(await page.evaluate(() => sessionStorage.getItem("tickstream.token"))).toBe(token);
    await pricesShown(page, [a, b]);
    await expect.poll(() => note(page, c).textContent()).toBe("not entitled");
    await expect.poll(() => note(page, unknown).textContent()).toBe("unknown symbol");
    expect(await note(page, a).textContent()).toBe("");
    expect(await page.getByTestId("signin").isVisible()).toBe(false);
    expect(await page.getByTestId("signout").isVisible()).toBe(true);
    await sleep(1200); // header rates fill in
    await page.screenshot({ path: join(RESULTS_DIR, "dashboard-auth.png") });

    // A reload keeps the tab signed in.
    await page.reload();
    await expect.poll(() => connState(page), { timeout: 30_000 }).toBe("live");
    await pricesShown(page, [a, b]);
    expect(await page.getByTestId("signin").isVisible()).toBe(false);

    // Signing out forgets the token: the node asks again.
    await page.getByTestId("signout").click();
    await page.getByTestId("signin").waitFor({ state: "visible" });
    expect(await page.evaluate(() => sessionStorage.getItem("tickstream.token"))).toBeNull();
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it("asks for a token with the sign-in panel when the node closes with 4001", async () => {
    const [a, b] = universe as [string, string];
    const page = await newTab();
    await page.goto(`${server.base}/?symbols=${a},${b}`);
    const panel = page.getByTestId("signin");
    await panel.waitFor({ state: "visible" });
    await expect.poll(() => connState(page)).toBe("auth");
    expect(await page.getByTestId("signin-reason").textContent()).toMatch(/no token/);
    expect(await page.getByTestId("stale-banner").isVisible()).toBe(false);
    await page.screenshot({ path: join(RESULTS_DIR, "dashboard-signin.png") });

    // A token the node refuses brings the panel back with the node's reason.
    await page.getByTestId("token-input").fill("not-a-jwt");
    await page.getByTestId("token-input").press("Enter");
    await expect.poll(() => page.getByTestId("signin-reason").textContent()).toMatch(/invalid token/);
    await panel.waitFor({ state: "visible" });

    // A good one: live, and kept for the tab only.
    const token = mint([a, b], 4);
    await page.getByTestId("token-input").fill(token);
    await page.locator("#signin-form button[type=submit]").click();
    await panel.waitFor({ state: "hidden" });
    await expect.poll(() => connState(page), { timeout: 30_000 }).toBe("live");
    await pricesShown(page, [a, b]);
    expect(await page.evaluate(() => sessionStorage.getItem("tickstream.token"))).toBe(token);
    expect(await page.evaluate(() => localStorage.getItem("tickstream.token"))).toBeNull();

    // Its expiry (4 s) closes the connection with 4001 "token expired": the panel again.
    await panel.waitFor({ state: "visible", timeout: 15_000 });
    expect(await page.getByTestId("signin-reason").textContent()).toMatch(/expired/);
    await page.close();
    expect(pageErrors).toEqual([]);
  });
});
