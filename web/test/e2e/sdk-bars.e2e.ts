/**
 * The SDK's bars against a real `tickstream serve`: after the simulator stops, the bars a client
 * holds (its BARS, then every BAR applied) equal the server's own (GET /api/v1/bars), in binary
 * and in JSON, for barCount and for barSince — also for a client whose connection was cut
 * mid-stream and that resumed with only the bars from the newest one it held. Guarantee 5 is
 * checked by the SDK on every message: no protocol error, no resync.
 *
 * Skipped with TICKSTREAM_MOCK=1: the mock is not the reference server.
 */
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Bar, type ClientErrorEvent, type ServerMessage, type TickstreamClient } from "../../src/sdk/index.js";
import { Server, freePort, log, sleep, trackedWebSocket } from "./harness.js";

const SIM_FOR_MS = 6000;
const SYMBOLS = 8;

interface BarsResponse {
  symbol: string;
  interval: string;
  seq: number;
  bars: Bar[];
}

describe.skipIf(process.env.TICKSTREAM_MOCK === "1")("SDK bars against tickstream serve", () => {
  let server: Server;
  beforeAll(async () => {
    server = new Server(await freePort(), ["--symbols", "20", "--rate", "400", "--sim-history", "2h", "--sim-duration", `${SIM_FOR_MS}ms`]);
    await server.start();
  });
  afterAll(async () => {
    await server?.kill("SIGTERM");
  });

  it("holds the server's bars exactly, across a cut connection that resumes", async () => {
    const startedAt = Date.now();
    const { symbols } = await server.get<{ symbols: string[] }>(`/api/v1/symbols?order=active&limit=${SYMBOLS}`);
    const since = (Date.now() - 45 * 60_000) * 1000; // the last 45 minutes
    const clients: Array<{ name: string; client: TickstreamClient; sockets: WebSocket[]; errors: ClientErrorEvent[]; histories: number[] }> = [];
    const open = (name: string, format: "msgpack" | "json", opts: { barCount?: number; barSince?: number }) => {
      const sockets: WebSocket[] = [];
      const client = connect(`ws://127.0.0.1:${server.port}/ws`, {
        WebSocket: trackedWebSocket(sockets),
        visibility: false,
        format,
        reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      });
      const c = { name, client, sockets, errors: [] as ClientErrorEvent[], histories: [] as number[] };
      client.on("error", (e) => c.errors.push(e));
      // The number of bars each BARS carried, in order.
      client.on("message", (m: ServerMessage) => {
        if (m.op === 29) c.histories.push(m.bars.length);
      });
      void client.subscribe(symbols, { bars: "1m", ...opts });
      clients.push(c);
      return c;
    };
    const counted = open("msgpack barCount 60", "msgpack", { barCount: 60 });
    const dated = open("json barSince", "json", { barSince: since });
    const cut = open("msgpack barCount 60, cut mid-stream", "msgpack", { barCount: 60 });

    // Cut one connection while the market moves: the SDK reconnects and asks only for the bars
    // from the newest one it holds.
    await sleep(2500);
    expect(cut.sockets).toHaveLength(1);
    expect(cut.histories).toHaveLength(SYMBOLS);
    cut.sockets[0]!.terminate();

    // The server's bars once the simulator has stopped: two reads agree.
    await sleep(Math.max(0, startedAt + SIM_FOR_MS + 1000 - Date.now()));
    const read = async (query: string) => {
      const out: Record<string, Bar[]> = {};
      for (const s of symbols) out[s] = (await server.get<BarsResponse>(`/api/v1/bars?symbol=${s}&interval=1m&${query}`)).bars;
      return out;
    };
    let last = await read("limit=60");
    for (let i = 0; i < 20; i++) {
      await sleep(500);
      const now = await read("limit=60");
      if (JSON.stringify(now) === JSON.stringify(last)) break;
      last = now;
    }
    const wantCount = last;
    const wantSince = await read(`from=${since}`);

    const mismatch = (c: (typeof clients)[number], want: Record<string, Bar[]>) =>
      symbols.filter((s) => JSON.stringify(c.client.bars(s)) !== JSON.stringify(want[s]));
    for (const [c, want] of [
      [counted, wantCount],
      [dated, wantSince],
      [cut, wantCount],
    ] as const) {
      const t0 = Date.now();
      while (mismatch(c, want).length > 0 && Date.now() - t0 < 10_000) await sleep(100);
      const bad = mismatch(c, want);
      expect(bad, `${c.name}: ${bad.map((s) => `${s}: client ${JSON.stringify(c.client.bars(s).slice(-2))}, server ${JSON.stringify(want[s]!.slice(-2))}`).join("; ")}`).toEqual([]);
      expect(c.errors, c.name).toEqual([]);
      expect(c.client.stats.snapRequests, c.name).toBe(0);
      expect(c.client.stats.droppedBars, c.name).toBe(0);
    }
    const held = symbols.map((s) => counted.client.bars(s).length);
    log(`bars held per symbol (barCount 60): ${held.join(", ")}; barSince 45 min: ${symbols.map((s) => dated.client.bars(s).length).join(", ")}`);
    expect(Math.min(...held)).toBeGreaterThan(0);
    // The cut client: a second connection, whose BARS carried only the newest bars.
    expect(cut.sockets).toHaveLength(2);
    const [first, resumed] = [cut.histories.slice(0, SYMBOLS), cut.histories.slice(SYMBOLS)];
    log(`cut client: bars per BARS ${first.join(",")} on the first connection, ${resumed.join(",")} after the cut`);
    expect(resumed).toHaveLength(SYMBOLS);
    expect(Math.max(...resumed)).toBeLessThanOrEqual(3);
    expect(first.reduce((a, b) => a + b, 0)).toBeGreaterThan(resumed.reduce((a, b) => a + b, 0) * 5);
    for (const c of clients) c.client.close();
  });
});
