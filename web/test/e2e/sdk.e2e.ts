/**
 * The SDK (@tickstream/client) in Node, with `ws` as the WebSocket, against a real
 * `tickstream serve` on 127.0.0.1: snapshot + deltas rebuild the server's state exactly
 * (binary and JSON), maxHz and fields, a feed outage, a server restart, and rejected symbols.
 *
 * Two servers, one after the other: one whose simulator stops after SIM_FOR (so that its
 * state settles and can be compared exactly), and one whose simulator keeps running.
 * Skipped with TICKSTREAM_MOCK=1: the mock has no --sim-duration and is not the reference.
 */
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  backoffDelay,
  connect,
  type ClientErrorEvent,
  type ClientOptions,
  type StatusEvent,
  type TickstreamClient,
  type UpdateEvent,
  type VisibilitySource,
} from "../../src/sdk/index.js";
import { Server, freePort, log, sleep, trackedWebSocket } from "./harness.js";

const SIM_FOR_MS = 4000;
// 20 symbols at 400 updates/s: the busiest (AAPL) gets about 100 a second, the quietest a few.
const SIM_FLAGS = ["--symbols", "20", "--rate", "400"];

interface SnapshotResponse {
  snapshots: Record<string, { seq: number; state: Record<string, number> }>;
}

interface Probe {
  client: TickstreamClient;
  /** Every socket the client opened, in order. */
  sockets: WebSocket[];
  statuses: StatusEvent[];
  errors: ClientErrorEvent[];
  updates: Array<Omit<UpdateEvent, "state"> & { at: number }>;
}

const probes: Probe[] = [];

/** Connects a client that records what it emits; afterEach closes it. */
function probe(server: Server, opts: ClientOptions = {}): Probe {
  const sockets: WebSocket[] = [];
  const client = connect(`ws://127.0.0.1:${server.port}/ws`, { WebSocket: trackedWebSocket(sockets), visibility: false, ...opts });
  const p: Probe = { client, sockets, statuses: [], errors: [], updates: [] };
  client.on("status", (s) => p.statuses.push(s));
  client.on("error", (e) => p.errors.push(e));
  client.on("update", ({ symbol, changed, snapshot, seq }) =>
    p.updates.push({ symbol, changed: [...changed], snapshot, seq, at: Date.now() }),
  );
  probes.push(p);
  return p;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const waitStatus = (p: Probe, status: string, timeoutMs = 15_000) =>
  until(`status ${status} (now ${p.client.status})`, () => p.client.status === status, timeoutMs);

/** Picks `n` symbols of the server's universe, busiest first when the server names them. */
async function pickSymbols(server: Server, n: number): Promise<string[]> {
  const { symbols } = await server.get<{ symbols: string[] }>("/api/v1/symbols?limit=1000");
  const preferred = ["AAPL", "MSFT", "NVDA", "AMZN", "META"].filter((s) => symbols.includes(s));
  const picks = [...preferred, ...symbols.filter((s) => !preferred.includes(s))].slice(0, n);
  expect(picks).toHaveLength(n);
  return picks;
}

/** The server's state once its simulator has stopped: two reads 500 ms apart agree. */
async function settledSnapshot(server: Server, startedAt: number): Promise<SnapshotResponse> {
  await sleep(Math.max(0, startedAt + SIM_FOR_MS - Date.now()));
  let prev = "";
  let snap: SnapshotResponse | undefined;
  await until(
    "the server's state to settle after --sim-duration",
    async () => {
      snap = await server.get<SnapshotResponse>("/api/v1/snapshot");
      const now = JSON.stringify(snap);
      const same = now === prev;
      prev = now;
      if (!same) await sleep(500);
      return same;
    },
    20_000,
  );
  return snap!;
}

/** Waits until the client holds exactly the server's values and seq for every symbol. */
async function expectSameState(p: Probe, want: SnapshotResponse, symbols: string[]): Promise<void> {
  let diff: string[] = [];
  const mismatches = () => {
    diff = [];
    for (const s of symbols) {
      const st = p.client.state(s);
      const w = want.snapshots[s];
      if (!st || !w) diff.push(`${s}: missing (client ${!!st}, server ${!!w})`);
      else if (!st.ready || st.seq !== w.seq || JSON.stringify(sorted(st.values)) !== JSON.stringify(sorted(w.state))) {
        diff.push(`${s}: client seq ${st.seq} ${JSON.stringify(sorted(st.values))}, server seq ${w.seq} ${JSON.stringify(sorted(w.state))}`);
      }
    }
    return diff.length;
  };
  try {
    await until("the client to converge to the server's snapshot", () => mismatches() === 0, 10_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}:\n  ${diff.join("\n  ")}`);
  }
}

function sorted(o: object): Array<[string, unknown]> {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1));
}

/** A value of the server's /metrics. */
async function metric(server: Server, name: string): Promise<number> {
  const r = await fetch(`${server.base}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const line = (await r.text()).split("\n").find((l) => l.startsWith(name + " "));
  if (!line) throw new Error(`/metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

/** The page's visibility, switched by the test. */
class PageVisibility implements VisibilitySource {
  visibilityState = "visible";
  private fns: Array<() => void> = [];
  addEventListener(_type: "visibilitychange", fn: () => void): void {
    this.fns.push(fn);
  }
  removeEventListener(_type: "visibilitychange", fn: () => void): void {
    this.fns = this.fns.filter((f) => f !== fn);
  }
  set(state: "visible" | "hidden"): void {
    this.visibilityState = state;
    for (const f of this.fns) f();
  }
}

afterEach(() => {
  for (const p of probes.splice(0)) p.client.close();
});

describe.skipIf(process.env.TICKSTREAM_MOCK === "1")("SDK against tickstream serve", () => {
  describe(`a simulator that stops after ${SIM_FOR_MS} ms`, () => {
    let server: Server;
    let startedAt = 0;

    beforeAll(async () => {
      server = new Server(await freePort(), [...SIM_FLAGS, "--sim-duration", `${SIM_FOR_MS}ms`]);
      startedAt = Date.now();
      await server.start();
    });
    afterAll(async () => {
      await server?.kill("SIGTERM").catch(() => {});
    });

    it("rebuilds the server's state exactly from snapshot + deltas, in binary and in JSON mode", async () => {
      const symbols = await pickSymbols(server, 8);
      const bin = probe(server);
      const json = probe(server, { format: "json" });
      for (const p of [bin, json]) {
        const r = await p.client.subscribe(symbols);
        expect(r.rejected).toEqual([]);
        expect(r.accepted.sort()).toEqual([...symbols].sort());
      }
      expect(bin.sockets[0]!.protocol).toBe("tickstream.v1");
      expect(json.sockets[0]!.protocol).toBe("tickstream.v1.json");
      await until("deltas in both modes", () => bin.client.stats.deltas > 20 && json.client.stats.deltas > 20);

      const want = await settledSnapshot(server, startedAt);
      for (const p of [bin, json]) {
        await expectSameState(p, want, symbols);
        expect(p.client.status).toBe("live");
        expect(p.sockets).toHaveLength(1);
        expect(p.errors).toEqual([]);
        // One snapshot per symbol, then only deltas: nothing had to be resynchronised.
        expect(p.updates.filter((u) => u.snapshot).map((u) => u.symbol).sort()).toEqual([...symbols].sort());
        expect(p.client.stats.droppedDeltas).toBe(0);
      }
      log(`binary: ${bin.client.stats.deltas} deltas, json: ${json.client.stats.deltas} deltas; both match /api/v1/snapshot`);
    });

    it("rejects invalid symbols with 400 and accepts the valid ones", async () => {
      const [a, b, c] = await pickSymbols(server, 3);
      const p = probe(server);
      const r = await p.client.subscribe([a!, "BAD SYM", b!, "X".repeat(33)]);
      expect(r.accepted.sort()).toEqual([a!, b!].sort());
      expect(r.rejected).toEqual([
        { symbol: "BAD SYM", code: 400, message: "invalid symbol" },
        { symbol: "X".repeat(33), code: 400, message: "invalid symbol" },
      ]);
      expect(p.client.symbols()).toEqual([a, b]);

      // What the SDK cannot check itself, the server refuses: the whole SUB, with ERROR 400
      // and no ACK. A new symbol is then not subscribed; one already subscribed keeps its
      // subscription and options, as the server does.
      const bad = await p.client.subscribe([c!, a!], { fields: ["bid", "spread"] });
      expect(bad.accepted).toEqual([]);
      const refused = { code: 400, message: expect.stringMatching(/spread/) };
      expect(bad.rejected).toEqual([
        { symbol: c, ...refused },
        { symbol: a, ...refused },
      ]);
      expect(p.errors).toEqual([expect.objectContaining({ kind: "server", ...refused })]);
      expect(p.client.symbols()).toEqual([a, b]);

      // The connection is unharmed: the valid subscriptions hold their snapshots.
      for (const s of [a!, b!]) expect(p.client.state(s)).toMatchObject({ ready: true, error: undefined });
      expect(Object.keys(p.client.state(a!)!.values).length).toBeGreaterThan(2);
      expect(p.client.status).toBe("live");
      expect(p.sockets).toHaveLength(1);
    });
  });

  describe("a simulator that keeps running", () => {
    let server: Server;

    beforeAll(async () => {
      server = new Server(await freePort(), [...SIM_FLAGS]);
      await server.start();
    });
    afterAll(async () => {
      await server?.kill("SIGTERM").catch(() => {});
    });

    it("keeps maxHz 2 per symbol and delivers only the requested fields", async () => {
      const symbols = await pickSymbols(server, 4);
      const limited = probe(server, { maxHz: 2 });
      const filtered = probe(server, { fields: ["bid", "ask"] });
      const unlimited = probe(server);
      for (const p of [limited, filtered, unlimited]) expect((await p.client.subscribe(symbols)).accepted).toHaveLength(symbols.length);

      const windowMs = 3000;
      const t0 = Date.now();
      await sleep(windowMs);
      const t1 = Date.now();
      const deltasIn = (p: Probe, s: string) => p.updates.filter((u) => u.symbol === s && !u.snapshot && u.at >= t0 && u.at < t1).length;

      // PROTOCOL.md §8.1: at most one message every 1/maxHz s, so a window of W s holds at
      // most W·maxHz of them, plus one where the window's start cuts an interval.
      const max = Math.floor((windowMs / 1000) * 2) + 1;
      const counts = Object.fromEntries(symbols.map((s) => [s, [deltasIn(limited, s), deltasIn(unlimited, s)]]));
      log(`deltas in ${windowMs} ms, maxHz 2 vs unlimited: ${JSON.stringify(counts)}`);
      for (const s of symbols) expect(deltasIn(limited, s), s).toBeLessThanOrEqual(max);
      expect(Math.max(...symbols.map((s) => deltasIn(limited, s)))).toBeGreaterThan(0);
      // Without maxHz the busiest symbol goes past the limit, or the check above proves nothing.
      expect(Math.max(...symbols.map((s) => deltasIn(unlimited, s)))).toBeGreaterThan(max);

      for (const s of symbols) {
        expect(Object.keys(filtered.client.state(s)!.values).sort(), s).toEqual(["ask", "bid"]);
      }
      const otherFields = filtered.updates.flatMap((u) => u.changed).filter((f) => f !== "bid" && f !== "ask");
      expect(otherFields).toEqual([]);
      expect(filtered.updates.filter((u) => !u.snapshot).length).toBeGreaterThan(0);
    });

    for (const format of ["msgpack", "json"] as const) {
      it(`gets its answer to every request it sends, and unsubscribes for real (${format})`, async () => {
        const symbols = await pickSymbols(server, 3);
        const [a, b, c] = symbols as [string, string, string];
        const subscriptions = async () => metric(server, "tickstream_subscriptions");
        await until("no subscription left from earlier tests", async () => (await subscriptions()) === 0);
        const doc = new PageVisibility();
        const p = probe(server, { format, visibility: { document: doc, mode: "unsubscribe" } });
        // SUB
        expect((await p.client.subscribe(symbols, { maxHz: 10 })).accepted.sort()).toEqual([...symbols].sort());
        await until("3 subscriptions on the server", async () => (await subscriptions()) === 3);
        // SNAP
        const snapAt = Date.now();
        p.client.resnapshot([a]);
        await until(`a fresh SNAPSHOT of ${a}`, () => p.updates.some((u) => u.symbol === a && u.snapshot && u.at >= snapAt));
        // PING
        expect((await p.client.ping()).rttMs).toBeGreaterThanOrEqual(0);
        // UNSUB: the PONG of a later PING proves the server handled it (PROTOCOL.md 5.2), and
        // the server's own count of subscriptions shows it took effect.
        p.client.unsubscribe(c);
        await p.client.ping();
        expect(await subscriptions()).toBe(2);
        // UNSUB of every symbol while the page is hidden, SUB again when it shows.
        doc.set("hidden");
        await p.client.ping();
        expect(await subscriptions()).toBe(0);
        doc.set("visible");
        await until("2 subscriptions again", async () => (await subscriptions()) === 2);
        await until(`updates of ${b} again`, () => p.client.state(b)!.ready);
        expect(p.errors).toEqual([]);
        expect(p.sockets).toHaveLength(1);
      });
    }

    it("reports a feed outage as stale, then live again, on the same connection", async () => {
      const symbols = await pickSymbols(server, 3);
      const p = probe(server);
      await p.client.subscribe(symbols);
      await waitStatus(p, "live");

      await server.post("/api/v1/demo/feed?state=down");
      await waitStatus(p, "stale");
      expect(p.statuses.at(-1)).toMatchObject({ status: "stale", feed: "stale", silent: false });
      log(`stale: ${p.statuses.at(-1)!.detail}`);

      await server.post("/api/v1/demo/feed?state=up");
      await waitStatus(p, "live", 30_000);
      const liveAt = Date.now();
      await until("deltas after the feed came back", () => p.updates.some((u) => !u.snapshot && u.at > liveAt));

      // Between stale and live the server may send STATUS recovering (ingest
      // catching up with what was produced during the outage); the SDK reports
      // it as a second "stale" event with feed "recovering".
      const feeds = p.statuses.map((s) => s.feed);
      expect(feeds.filter((f) => f !== "stale" && f !== "recovering")).toEqual(["live", "live", "live"]);
      expect(p.statuses.map((s) => s.status).filter((s, i, all) => i === 0 || s !== all[i - 1])).toEqual([
        "connecting",
        "live",
        "stale",
        "live",
      ]);
      expect(p.sockets).toHaveLength(1);
      expect(p.client.stats.connections).toBe(1);
      expect(p.updates.filter((u) => u.snapshot)).toHaveLength(symbols.length);
      expect(p.errors).toEqual([]);
    });

    it("reconnects with backoff after a server restart, re-subscribes and matches the new server", async () => {
      const symbols = await pickSymbols(server, 5);
      const reconnect = { initialDelayMs: 100, maxDelayMs: 800, factor: 2, jitter: 0.5 };
      const p = probe(server, { reconnect });
      await p.client.subscribe(symbols);
      await until("deltas", () => p.client.stats.deltas > 10);
      // A refused change of options must not follow the subscription to the next connection.
      expect((await p.client.subscribe([symbols[0]!], { fields: ["spread"] })).rejected).toHaveLength(1);
      const seqBefore = Math.max(...symbols.map((s) => p.client.state(s)!.seq));

      await server.kill("SIGKILL");
      await waitStatus(p, "reconnecting");
      expect(p.client.state(symbols[0]!)).toMatchObject({ ready: false });
      // Let a few attempts fail against the closed port.
      await until("three failed attempts", () => p.sockets.length >= 4, 10_000);

      // The new server stops its simulator soon, so that its state can be compared exactly.
      server.flags = [...SIM_FLAGS, "--sim-duration", `${SIM_FOR_MS}ms`];
      const restartedAt = Date.now();
      await server.start();
      const killedAt = p.statuses.findIndex((s) => s.status === "reconnecting");
      await waitStatus(p, "live", 30_000);

      const waits = p.statuses.slice(killedAt).filter((s) => s.status === "reconnecting" && s.retryInMs !== undefined);
      log(`retries: ${waits.map((s) => `#${s.attempt} ${s.retryInMs} ms`).join(", ")}`);
      expect(waits.length).toBeGreaterThanOrEqual(3);
      waits.forEach((s, i) => {
        expect(s.attempt).toBe(i + 1);
        const d = backoffDelay(i, reconnect, () => 0);
        expect(s.retryInMs).toBeGreaterThanOrEqual(Math.round(d * (1 - reconnect.jitter)));
        expect(s.retryInMs).toBeLessThanOrEqual(d);
      });
      expect(p.client.stats.connections).toBe(2);

      const want = await settledSnapshot(server, restartedAt);
      await expectSameState(p, want, symbols);
      // Fresh snapshots on the new connection, numbered by the new server.
      const resnapped = p.updates.filter((u) => u.snapshot && u.at >= restartedAt).map((u) => u.symbol);
      expect(resnapped.sort()).toEqual([...symbols].sort());
      log(`seq before the restart up to ${seqBefore}, after: ${symbols.map((s) => p.client.state(s)!.seq).join(", ")}`);
      expect(p.errors).toEqual([expect.objectContaining({ kind: "server", code: 400, message: expect.stringMatching(/spread/) })]);
    });
  });
});
