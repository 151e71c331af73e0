/**
 * The README's "Production in ten minutes", run line by line as a new user would, against the
 * real Apache Kafka that `make test-production` starts: the secret from `tickstream token
 * --new-secret`, the topic created by `produce`, `serve` with authentication on, a token from
 * `tickstream token`, the dashboard URL opened in headless Chromium (signed in, live prices,
 * a symbol outside the token shown as not entitled), and `watch --token`. The only changes to
 * the lines are the addresses (the test's broker and a free port) and the binary's path.
 *
 * Needs TICKSTREAM_KAFKA_BROKERS (set by make test-production) and Chromium; without them it
 * skips locally and FAILS when CI=true.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_DIR, RESULTS_DIR, freePort, log, serverCommand, sleep } from "../e2e/harness.js";

const BROKERS = process.env.TICKSTREAM_KAFKA_BROKERS ?? "";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const IS_CI = process.env.CI === "true";
const READY = BROKERS !== "" && existsSync(CHROMIUM);

/** The commands of the README's section, comments stripped, one a line. */
function readmeCommands(): string[] {
  const readme = readFileSync(join(REPO_DIR, "README.md"), "utf8");
  const section = readme.split("\n## Production in ten minutes\n")[1];
  const block = section?.match(/```sh\n([\s\S]*?)\n```/)?.[1];
  if (!block) throw new Error("README.md has no ```sh block under ## Production in ten minutes");
  return block
    .split("\n")
    .map((l) => l.replace(/\s+#\s.*$/, "").trim())
    .filter((l) => l !== "");
}

const procs: ChildProcess[] = [];
let dir = "";
let ctx: BrowserContext | undefined;

afterAll(async () => {
  await ctx?.close().catch(() => {});
  for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  await sleep(500);
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!READY && !IS_CI)("README: production in ten minutes", () => {
  it("runs every command of the section as written", async () => {
    if (!BROKERS) throw new Error("TICKSTREAM_KAFKA_BROKERS is not set: run make test-production (CI=true: failing instead of skipping)");
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: run make chromium`);
    const { cmd: bin } = serverCommand();
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), "tickstream-production-"));
    const envFile = join(dir, ".env");
    writeFileSync(envFile, "");
    // Each line runs in bash in the user's shell state so far: set -a exports what a line
    // assigns (TOKEN=…) and the state is dumped for the next line.
    const shell = (line: string) => `set -a; . ${envFile}; ${line}`;
    const adapt = (line: string) =>
      line
        .replaceAll("./bin/tickstream", bin)
        .replaceAll("127.0.0.1:9092", BROKERS)
        .replaceAll("127.0.0.1:8080", `127.0.0.1:${port}`);
    const base = `http://127.0.0.1:${port}`;
    let dashboardURL = "";
    let watched = "";

    for (const original of readmeCommands()) {
      const line = adapt(original);
      log(`$ ${original}`);
      if (original.startsWith("make ")) {
        // The harness built the binary with the dashboard and started the broker.
        expect(["make web build", "make kafka-up"]).toContain(original);
        continue;
      }
      if (original.endsWith("&")) {
        const p = spawn("bash", ["-c", shell(`exec ${line.slice(0, -1).trim()}`)], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        p.stdout!.on("data", (d) => (out += d));
        p.stderr!.on("data", (d) => (out += d));
        p.on("exit", (code) => log(`${original.split(" ")[1]} exited ${code}:\n${out.slice(-2000)}`));
        procs.push(p);
        if (original.includes(" serve ")) await waitReady(base, p, () => out);
        continue;
      }
      if (original.includes(" watch ")) {
        const p = spawn("bash", ["-c", shell(`exec ${line}`)], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
        procs.push(p);
        p.stdout!.on("data", (d) => (watched += d));
        p.stderr!.on("data", (d) => (watched += d));
        await expect
          .poll(() => /AAPL\s+[\d.]+/.test(watched) && /MSFT\s+[\d.]+/.test(watched), { timeout: 30_000, interval: 250 })
          .toBe(true)
          .catch((e: Error) => {
            throw new Error(`${e.message}: watch printed:\n${watched.slice(-1500)}`);
          });
        p.kill("SIGINT");
        continue;
      }
      const r = spawnSync("bash", ["-c", `${shell(line)} && export -p > ${envFile}.next`], { cwd: dir, encoding: "utf8", timeout: 60_000 });
      if (r.status !== 0) throw new Error(`${original}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
      writeFileSync(envFile, readFileSync(`${envFile}.next`, "utf8"));
      if (original.startsWith("echo ")) dashboardURL = r.stdout.trim();
    }

    // What the section promised.
    expect(readFileSync(join(dir, "jwt-secret"), "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
    const env = readFileSync(envFile, "utf8");
    const token = env.match(/TOKEN="([^"]+)"/)?.[1] ?? "";
    expect(token.split(".")).toHaveLength(3);
    expect((await fetch(`${base}/api/v1/snapshot?symbols=AAPL`)).status).toBe(401); // auth is on
    const snap = (await (await fetch(`${base}/api/v1/snapshot?symbols=AAPL&token=${token}`)).json()) as {
      snapshots: Record<string, { seq: number }>;
    };
    expect(snap.snapshots.AAPL!.seq).toBeGreaterThan(0);
    expect(dashboardURL).toBe(`${base}/?token=${token}`);
    log(`watch printed:\n${watched.slice(-600)}`);

    // The dashboard, signed in from its URL.
    const profile = join(dir, "chromium");
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
      viewport: { width: 1440, height: 860 },
      timeout: 60_000,
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(30_000);
    const state = () => page.getByTestId("conn-status").getAttribute("data-state");
    const rows = () => page.locator(".qbody .qrow").evaluateAll((trs) => trs.map((t) => (t as HTMLElement).dataset.symbol));
    const note = (s: string) => page.locator(`.qrow[data-symbol="${s}"] .sym-note`).textContent();
    const price = (s: string) => page.locator(`.qrow[data-symbol="${s}"] [data-field="last"]`).textContent();
    await page.goto(dashboardURL);
    await expect.poll(state, { timeout: 30_000, interval: 200 }).toBe("live");
    // The token does not stay in the address bar.
    expect(page.url()).not.toContain(token);
    // A first visit opens on the most active symbols the token grants, with moving prices.
    const granted = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"];
    const active = (await (await fetch(`${base}/api/v1/symbols?order=active&token=${token}`)).json()) as { symbols: string[] };
    expect([...active.symbols].sort()).toEqual([...granted].sort());
    await expect.poll(async () => [...(await rows())].sort(), { timeout: 30_000 }).toEqual([...granted].sort());
    for (const s of granted) await expect.poll(async () => (await price(s))?.trim(), { timeout: 30_000 }).toMatch(/\d/);
    // A symbol outside the token says so on its row.
    await page.getByTestId("symbol-input").fill("TSLA");
    await page.locator("#add-form button[type=submit]").click();
    await expect.poll(() => note("TSLA"), { timeout: 30_000 }).toBe("not entitled");
    await sleep(1200); // the header's rates fill in
    await page.screenshot({ path: join(RESULTS_DIR, "production-dashboard.png") });
    await page.close();

    // A page left open: with ?tokenUrl= the dashboard fetches short-lived tokens from the
    // operator's endpoint and renews each before it expires, on the same connection.
    let minted = 0;
    const tokens = createServer((req, res) => {
      const r = spawnSync("bash", ["-c", shell(`${bin} token --syms 'AAPL,MSFT' --ttl 4s`)], { cwd: dir, encoding: "utf8" });
      minted++;
      res.writeHead(r.status === 0 ? 200 : 500, {
        "Content-Type": "text/plain",
        "Access-Control-Allow-Origin": req.headers.origin ?? "*",
        "Access-Control-Allow-Credentials": "true",
      });
      res.end(r.status === 0 ? r.stdout : r.stderr);
    });
    await new Promise<void>((ok) => tokens.listen(0, "127.0.0.1", ok));
    try {
      const tokenURL = `http://127.0.0.1:${(tokens.address() as { port: number }).port}/token`;
      const open = await ctx.newPage();
      await open.goto(`${base}/?symbols=AAPL&tokenUrl=${encodeURIComponent(tokenURL)}`);
      await expect.poll(() => open.getByTestId("conn-status").getAttribute("data-state"), { timeout: 30_000 }).toBe("live");
      const seq = () => open.evaluate(() => (globalThis as { tickstream?: { state(s: string): { seq: number } | undefined } }).tickstream?.state("AAPL")?.seq ?? -1);
      const before = await seq();
      await sleep(10_000); // two and a half token lifetimes
      const stats = await open.evaluate(() => (globalThis as { tickstream?: { stats: { connections: number } } }).tickstream?.stats.connections);
      log(`tokenUrl: ${minted} tokens minted, ${stats} connection(s), AAPL seq ${before} -> ${await seq()}`);
      expect(minted).toBeGreaterThanOrEqual(3);
      expect(stats).toBe(1);
      expect(await open.getByTestId("conn-status").getAttribute("data-state")).toBe("live");
      expect(await seq()).toBeGreaterThan(before);
    } finally {
      tokens.close();
    }
  });
});

async function waitReady(base: string, p: ChildProcess, out: () => string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (p.exitCode !== null) throw new Error(`serve exited ${p.exitCode}:\n${out()}`);
    try {
      const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) {
        log(`serve ready after ${Date.now() - t0} ms`);
        return;
      }
    } catch {
      /* not listening yet */
    }
    if (Date.now() - t0 > 120_000) throw new Error(`serve not ready after 120 s:\n${out()}`);
    await sleep(250);
  }
}
