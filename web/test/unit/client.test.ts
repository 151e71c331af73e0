import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  connect,
  type ClientErrorEvent,
  type ClientOptions,
  type StatusEvent,
  type TickstreamClient,
  type UpdateEvent,
} from "../../src/sdk/index.js";
import { FakeDocument, FakeWebSocket, HELLO } from "./fake-websocket.js";

const flush = () => vi.advanceTimersByTimeAsync(0);

function setup(opts: ClientOptions = {}) {
  const client = connect("ws://127.0.0.1:9/ws", { WebSocket: FakeWebSocket, visibility: false, random: () => 0, ...opts });
  const updates: UpdateEvent[] = [];
  const statuses: StatusEvent[] = [];
  const errors: ClientErrorEvent[] = [];
  client.on("update", (u) => updates.push({ ...u, changed: [...u.changed] }));
  client.on("status", (s) => statuses.push(s));
  client.on("error", (e) => errors.push(e));
  return { client, updates, statuses, errors };
}

/** Opens the latest fake socket and sends HELLO. */
async function open(hb = 5000): Promise<FakeWebSocket> {
  await flush();
  const ws = FakeWebSocket.last;
  ws.serverOpen();
  ws.serverSend(HELLO(hb));
  return ws;
}

/** Answers every SUB on the socket with an ACK (sid = 100 + index in `universe`) and a SNAPSHOT. */
function ackSubs(ws: FakeWebSocket, universe: string[], seq = 10, from = 0): void {
  const subs = ws.sentOps(1).slice(from);
  for (const [, id, syms] of subs as Array<[number, number, string[]]>) {
    const pairs = syms.map((s) => [s, 100 + universe.indexOf(s)]);
    ws.serverSend([21, id, pairs], ...pairs.map(([, sid]) => [22, sid, seq, { 0: 1, 1: 10 + (sid as number), 5: 11 }]));
  }
}

let client: TickstreamClient | undefined;
beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
});

describe("connection and subscriptions", () => {
  it("offers the tickstream.v1 subprotocol, subscribes on open and applies snapshot + deltas", async () => {
    const t = setup();
    client = t.client;
    const sub = client.subscribe(["AAPL", "MSFT"], { maxHz: 20 });
    expect(client.status).toBe("connecting");
    const ws = await open();
    expect(ws.url).toBe("ws://127.0.0.1:9/ws");
    expect(ws.protocols).toBe("tickstream.v1");
    expect(ws.binaryType).toBe("arraybuffer");
    expect(ws.sent).toEqual([[1, 1, ["AAPL", "MSFT"], { maxHz: 20 }]]);
    expect(client.status).toBe("live");
    // ACK, both snapshots and a delta in ONE frame
    ws.serverSend(
      [21, 1, [["AAPL", 1], ["MSFT", 2]]],
      [22, 1, 5, { 0: 1764050000000000, 1: 187.2, 3: 187.3, 11: 180 }],
      [22, 2, 9, { 1: 410.5 }],
      [23, 1, 6, { 0: 1764050000000100, 1: 187.25 }],
    );
    await expect(sub).resolves.toEqual({ accepted: ["AAPL", "MSFT"], rejected: [] });
    const aapl = client.state("AAPL")!;
    expect(aapl.values).toEqual({ ts: 1764050000000100, bid: 187.25, ask: 187.3, prevClose: 180 });
    expect(aapl.seq).toBe(6);
    expect(aapl.ready).toBe(true);
    expect(t.updates.map((u) => [u.symbol, u.snapshot, u.seq, u.changed])).toEqual([
      ["AAPL", true, 5, ["ts", "bid", "ask", "prevClose"]],
      ["MSFT", true, 9, ["bid"]],
      ["AAPL", false, 6, ["ts", "bid"]],
    ]);
    expect(client.stats).toMatchObject({ frames: 2, messages: 5, snapshots: 2, deltas: 1, droppedDeltas: 0 });
  });

  it("names fields from the HELLO field table, including appended ones", async () => {
    client = setup().client;
    client.subscribe("X");
    await flush();
    const ws = FakeWebSocket.last;
    ws.serverOpen();
    ws.serverSend(HELLO(5000, ["ts", "bid", "ask", "vwap"]), [21, 1, [["X", 3]]], [22, 3, 1, { 2: 5, 3: 4.5, 9: 1 }]);
    expect(client.state("X")!.values).toEqual({ ask: 5, vwap: 4.5, "#9": 1 });
    expect(client.fields).toEqual(["ts", "bid", "ask", "vwap"]);
  });

  it("a snapshot replaces the whole state (absent fields are removed)", async () => {
    const t = setup();
    client = t.client;
    client.subscribe("A");
    const ws = await open();
    ws.serverSend([21, 1, [["A", 1]]], [22, 1, 1, { 1: 1, 3: 2 }]);
    client.resnapshot(["A"]);
    expect(ws.sentOps(3)).toEqual([[3, 2, ["A"]]]);
    ws.serverSend([22, 1, 4, { 1: 1, 5: 3 }]);
    expect(client.state("A")!.values).toEqual({ bid: 1, last: 3 });
    expect(t.updates[1]!.changed.sort()).toEqual(["ask", "last"]);
  });

  it("reports rejected symbols from ERROR (sent before the ACK) and resolves subscribe()", async () => {
    const t = setup();
    client = t.client;
    const p = client.subscribe(["AAPL", "NOPE", "bad sym"]);
    const ws = await open();
    expect(ws.sent[0]).toEqual([1, 1, ["AAPL", "NOPE"]]); // invalid symbol never sent
    ws.serverSend([25, 1, 404, "unknown symbol", ["NOPE"]], [21, 1, [["AAPL", 1]]]);
    const r = await p;
    expect(r.accepted).toEqual(["AAPL"]);
    expect(r.rejected).toEqual([
      { symbol: "bad sym", code: 400, message: "invalid symbol" },
      { symbol: "NOPE", code: 404, message: "unknown symbol" },
    ]);
    expect(client.state("NOPE")!.error).toEqual({ code: 404, message: "unknown symbol" });
    expect(t.errors).toContainEqual({ kind: "server", code: 404, message: "unknown symbol", id: 1, symbols: ["NOPE"] });
  });

  it("a SUB refused whole (bad options) keeps what the server kept, also after a reconnect", async () => {
    const t = setup({ reconnect: { initialDelayMs: 100 } });
    client = t.client;
    client.subscribe(["A"], { maxHz: 5 });
    let ws = await open();
    ackSubs(ws, ["A"]);
    const p = client.subscribe(["A", "B"], { fields: ["spread"] });
    expect(ws.sentOps(1).at(-1)).toEqual([1, 2, ["A", "B"], { fields: ["spread"] }]);
    const message = 'bad request: unknown field "spread"';
    ws.serverSend([25, 2, 400, message]); // no symbol list, and no ACK follows
    expect(await p).toEqual({
      accepted: [],
      rejected: [
        { symbol: "A", code: 400, message },
        { symbol: "B", code: 400, message },
      ],
    });
    expect(client.symbols()).toEqual(["A"]); // B never was subscribed
    expect(client.state("A")).toMatchObject({ ready: true, error: undefined });

    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(100);
    ws = FakeWebSocket.last;
    ws.serverOpen();
    expect(ws.sentOps(1)).toEqual([[1, 3, ["A"], { maxHz: 5 }]]);
  });

  it("a refused SUB does not undo the options of a later one", async () => {
    const t = setup({ reconnect: { initialDelayMs: 100 } });
    client = t.client;
    client.subscribe(["A"], { maxHz: 5 });
    let ws = await open();
    ackSubs(ws, ["A"]);
    void client.subscribe(["A"], { fields: ["spread"] });
    void client.subscribe(["A"], { maxHz: 1 });
    ws.serverSend([25, 2, 400, 'bad request: unknown field "spread"'], [21, 3, [["A", 100]]]);
    expect(client.symbols()).toEqual(["A"]);

    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(100);
    ws = FakeWebSocket.last;
    ws.serverOpen();
    expect(ws.sentOps(1)).toEqual([[1, 4, ["A"], { maxHz: 1 }]]);
  });

  it("unsubscribe sends UNSUB and ignores late messages for the symbol", async () => {
    const t = setup();
    client = t.client;
    client.subscribe(["A", "B"]);
    const ws = await open();
    ackSubs(ws, ["A", "B"]);
    client.unsubscribe(["A", "ZZZ"]);
    expect(ws.sentOps(2)).toEqual([[2, 2, ["A"]]]);
    const n = t.updates.length;
    ws.serverSend([23, 100, 11, { 1: 99 }]);
    expect(t.updates.length).toBe(n);
    expect(client.state("A")).toBeUndefined();
    expect(client.symbols()).toEqual(["B"]);
    expect(ws.sentOps(3)).toEqual([]); // no SNAP for an unsubscribed symbol
  });
});

describe("sequence checks", () => {
  it("drops a delta that arrives before the snapshot and asks for a SNAP once", async () => {
    const t = setup();
    client = t.client;
    client.subscribe("A");
    const ws = await open();
    ws.serverSend([21, 1, [["A", 1]]], [23, 1, 5, { 1: 1 }], [23, 1, 6, { 1: 2 }]);
    expect(t.updates).toEqual([]);
    expect(ws.sentOps(3)).toEqual([[3, 2, ["A"]]]);
    expect(client.stats.droppedDeltas).toBe(2);
    ws.serverSend([22, 1, 6, { 1: 2 }], [23, 1, 8, { 1: 3 }]); // seq may skip (conflation)
    expect(client.state("A")!.values.bid).toBe(3);
    expect(client.state("A")!.seq).toBe(8);
  });

  it("drops a delta whose seq is not greater than the last, and resyncs", async () => {
    const t = setup();
    client = t.client;
    client.subscribe("A");
    const ws = await open();
    ws.serverSend([21, 1, [["A", 1]]], [22, 1, 10, { 1: 1 }], [23, 1, 11, { 1: 2 }]);
    ws.serverSend([23, 1, 11, { 1: 99 }]);
    ws.serverSend([23, 1, 9, { 1: 98 }]);
    expect(client.state("A")!.values.bid).toBe(2);
    expect(ws.sentOps(3)).toEqual([[3, 2, ["A"]]]); // one SNAP until the snapshot comes
    expect(t.errors.filter((e) => e.kind === "protocol")).toHaveLength(2);
    ws.serverSend([22, 1, 12, { 1: 5 }]);
    ws.serverSend([23, 1, 12, { 1: 6 }]);
    expect(ws.sentOps(3)).toHaveLength(2); // a new problem after the resync asks again
  });

  it("a change that leaves a value equal is not reported as changed", async () => {
    const t = setup();
    client = t.client;
    client.subscribe("A");
    const ws = await open();
    ws.serverSend([21, 1, [["A", 1]]], [22, 1, 1, { 1: 1, 3: 2 }], [23, 1, 2, { 1: 1, 3: 3 }]);
    expect(t.updates[1]!.changed).toEqual(["ask"]);
  });
});

describe("status", () => {
  it("combines the socket state with the feed STATUS", async () => {
    const t = setup();
    client = t.client;
    const ws = await open();
    ws.serverSend([27, "stale", "broker unreachable"]);
    expect(client.status).toBe("stale");
    ws.serverSend([27, "recovering", "catching up"]);
    expect(client.status).toBe("stale");
    ws.serverSend([27, "live", ""]);
    expect(t.statuses.map((s) => [s.status, s.feed, s.detail])).toEqual([
      ["connecting", "live", ""],
      ["live", "live", ""],
      ["stale", "stale", "broker unreachable"],
      ["stale", "recovering", "catching up"],
      ["live", "live", ""],
    ]);
  });

  it("goes to closed after close() and does not reconnect", async () => {
    const t = setup();
    client = t.client;
    const ws = await open();
    client.close();
    expect(ws.closedWith).toEqual({ code: 1000, reason: "client closed" });
    expect(client.status).toBe("closed");
    await vi.advanceTimersByTimeAsync(60000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(t.statuses.at(-1)!.status).toBe("closed");
  });

  it("does not reconnect after a fatal close code (4003 not entitled)", async () => {
    const t = setup();
    client = t.client;
    const ws = await open();
    ws.serverClose(4003, "not entitled");
    expect(client.status).toBe("closed");
    await vi.advanceTimersByTimeAsync(60000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(t.errors).toContainEqual({ kind: "transport", code: 4003, message: "connection closed: 4003 not entitled" });
  });
});

describe("reconnect", () => {
  it("reconnects with exponential backoff and jitter, then re-subscribes and re-snapshots", async () => {
    let r = 0;
    const randoms = [0, 0.5, 0, 0];
    const t = setup({ reconnect: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, random: () => randoms[r++ % randoms.length]! });
    client = t.client;
    client.subscribe(["A", "B"], { maxHz: 5 });
    client.subscribe(["C"]);
    let ws = await open();
    ackSubs(ws, ["A", "B", "C"], 50);
    expect(client.state("A")!.seq).toBe(50);

    ws.serverClose(1006);
    expect(client.status).toBe("reconnecting");
    expect(t.statuses.at(-1)).toMatchObject({ status: "reconnecting", attempt: 1, retryInMs: 100 });
    expect(client.state("A")!.ready).toBe(false);
    expect(client.state("A")!.values.bid).toBe(110); // last known values stay for display

    // attempt 1 after 100 ms: fails before opening
    await vi.advanceTimersByTimeAsync(99);
    expect(FakeWebSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    FakeWebSocket.last.serverClose(1006);
    // attempt 2: 200 ms with jitter 0.5 and random 0.5 -> 150 ms
    expect(t.statuses.at(-1)).toMatchObject({ status: "reconnecting", attempt: 2, retryInMs: 150 });
    await vi.advanceTimersByTimeAsync(149);
    expect(FakeWebSocket.instances).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.instances).toHaveLength(3);
    FakeWebSocket.last.serverClose(1006);
    expect(t.statuses.at(-1)).toMatchObject({ attempt: 3, retryInMs: 400 });
    await vi.advanceTimersByTimeAsync(400);

    ws = FakeWebSocket.last;
    expect(FakeWebSocket.instances).toHaveLength(4);
    ws.serverOpen();
    // re-subscribed with the same options, grouped
    expect(ws.sentOps(1)).toEqual([
      [1, 3, ["A", "B"], { maxHz: 5 }],
      [1, 4, ["C"]],
    ]);
    ws.serverSend(HELLO());
    expect(client.status).toBe("live");
    // a restarted server may number versions lower: the new connection's snapshot wins
    ackSubs(ws, ["A", "B", "C"], 3);
    expect(client.state("A")!.seq).toBe(3);
    expect(client.state("A")!.ready).toBe(true);
    ws.serverSend([23, 100, 4, { 1: 1 }]);
    expect(client.state("A")!.values.bid).toBe(1);
    expect(t.errors.filter((e) => e.kind === "protocol")).toEqual([]);
  });

  it("caps the delay and resets the backoff after a stable connection", async () => {
    const t = setup({ reconnect: { initialDelayMs: 100, maxDelayMs: 300, jitter: 0, stableAfterMs: 1000 } });
    client = t.client;
    await open();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      FakeWebSocket.last.serverClose(1006);
      delays.push(t.statuses.at(-1)!.retryInMs!);
      await vi.advanceTimersByTimeAsync(t.statuses.at(-1)!.retryInMs!);
    }
    expect(delays).toEqual([100, 200, 300, 300]);
    // this one stays up long enough: the next loss starts from the initial delay again
    const ws = await open();
    await vi.advanceTimersByTimeAsync(1500);
    ws.serverSend([26, 1]);
    ws.serverClose(1001, "going away");
    expect(t.statuses.at(-1)!.retryInMs).toBe(100);
  });

  it("gives up after maxAttempts", async () => {
    const t = setup({ reconnect: { initialDelayMs: 10, maxAttempts: 2, jitter: 0 } });
    client = t.client;
    await open();
    FakeWebSocket.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10);
    FakeWebSocket.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(20);
    FakeWebSocket.last.serverClose(1006);
    expect(client.status).toBe("closed");
    expect(t.statuses.at(-1)!.detail).toMatch(/gave up after 2 attempts/);
  });

  it("fetches a fresh token for every attempt and retries 4001 when getToken is given", async () => {
    let n = 0;
    const t = setup({ getToken: async () => `tok${++n}`, reconnect: { initialDelayMs: 10, jitter: 0 } });
    client = t.client;
    await flush();
    expect(FakeWebSocket.last.url).toBe("ws://127.0.0.1:9/ws?token=tok1");
    FakeWebSocket.last.serverOpen();
    FakeWebSocket.last.serverClose(4001, "token expired");
    await vi.advanceTimersByTimeAsync(10);
    expect(FakeWebSocket.last.url).toBe("ws://127.0.0.1:9/ws?token=tok2");
    expect(client.status).toBe("reconnecting");
  });

  it("a static token is sent as ?token= and 4001 without getToken is final", async () => {
    const t = setup({ token: "s3cr3t&x" });
    client = t.client;
    await flush();
    expect(FakeWebSocket.last.url).toBe("ws://127.0.0.1:9/ws?token=s3cr3t%26x");
    FakeWebSocket.last.serverClose(4001, "bad token");
    expect(client.status).toBe("closed");
  });
});

describe("heartbeat", () => {
  it("declares the connection dead after 3 heartbeat intervals without any message", async () => {
    const t = setup({ reconnect: { initialDelayMs: 50, jitter: 0 } });
    client = t.client;
    const ws = await open(1000);
    await vi.advanceTimersByTimeAsync(1900);
    expect(client.status).toBe("live");
    await vi.advanceTimersByTimeAsync(200); // 2 intervals missed: stale, still connected
    expect(client.status).toBe("stale");
    expect(t.statuses.at(-1)).toMatchObject({ status: "stale", silent: true, feed: "live" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.closedWith?.code).toBe(4000);
    expect(client.status).toBe("reconnecting");
    expect(t.errors.at(-1)!.message).toMatch(/no message for \d+ ms \(3 heartbeats of 1000 ms\)/);
    await vi.advanceTimersByTimeAsync(50);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it("counts any message as life, not only heartbeats", async () => {
    const t = setup();
    client = t.client;
    client.subscribe("A");
    const ws = await open(1000);
    ackSubs(ws, ["A"]);
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(900);
      ws.serverSend([23, 100, 11 + i, { 1: i }]);
    }
    expect(client.status).toBe("live");
    expect(FakeWebSocket.instances).toHaveLength(1);
    // a heartbeat after a silence brings the status back from stale
    await vi.advanceTimersByTimeAsync(2500);
    expect(client.status).toBe("stale");
    ws.serverSend([26, 123]);
    expect(client.status).toBe("live");
  });

  it("gives up on a connection that sends no HELLO in time", async () => {
    const t = setup({ heartbeat: { connectTimeoutMs: 2000 }, reconnect: { initialDelayMs: 10, jitter: 0 } });
    client = t.client;
    await flush();
    FakeWebSocket.last.serverOpen();
    await vi.advanceTimersByTimeAsync(2000);
    expect(FakeWebSocket.instances[0]!.closedWith?.code).toBe(4000);
    expect(client.status).toBe("reconnecting");
  });
});

describe("ping", () => {
  it("sends op 4 and resolves on the matching PONG", async () => {
    client = setup().client;
    const ws = await open();
    const p = client.ping();
    const [, id, tsent] = ws.sentOps(4)[0] as [number, number, number];
    await vi.advanceTimersByTimeAsync(8);
    ws.serverSend([24, id + 100, tsent, 1]); // not ours: ignored
    ws.serverSend([24, id, tsent, tsent * 1000 + 2000]);
    const r = await p;
    expect(r.rttMs).toBe(8);
    expect(r.clockOffsetUs).toBe(-2000);
    expect(client.lastRttMs).toBe(8);
  });

  it("rejects pending pings when the connection drops, and pings periodically when asked", async () => {
    client = setup({ pingIntervalMs: 1000 }).client;
    const ws = await open();
    expect(ws.sentOps(4)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.sentOps(4)).toHaveLength(2);
    const p = client.ping();
    ws.serverClose(1006);
    await expect(p).rejects.toThrow(/connection lost/);
  });
});

describe("page visibility", () => {
  it("throttles with a low maxHz while hidden and re-snapshots on return", async () => {
    const doc = new FakeDocument();
    client = setup({ visibility: { document: doc, hiddenMaxHz: 2 } }).client;
    client.subscribe(["A", "B"], { maxHz: 20, fields: ["bid", "ask"] });
    const ws = await open();
    ackSubs(ws, ["A", "B"]);
    doc.set("hidden");
    expect(client.paused).toBe(true);
    expect(ws.sentOps(1).at(-1)).toEqual([1, 2, ["A", "B"], { snap: false, maxHz: 2, fields: ["bid", "ask"] }]);
    doc.set("visible");
    expect(ws.sentOps(1).at(-1)).toEqual([1, 3, ["A", "B"], { maxHz: 20, fields: ["bid", "ask"] }]);
    ackSubs(ws, ["A", "B"], 20, 2);
    expect(client.state("A")!.seq).toBe(20);
  });

  it("can unsubscribe while hidden and subscribe again with snapshots on return", async () => {
    const doc = new FakeDocument();
    const t = setup({ visibility: { document: doc, mode: "unsubscribe" } });
    client = t.client;
    client.subscribe(["A"]);
    const ws = await open();
    ackSubs(ws, ["A"]);
    doc.set("hidden");
    expect(ws.sentOps(2)).toEqual([[2, 2, ["A"]]]);
    const n = t.updates.length;
    ws.serverSend([23, 100, 11, { 1: 1 }]); // in flight before the UNSUB took effect
    expect(t.updates.length).toBe(n);
    expect(ws.sentOps(3)).toEqual([]);
    client.subscribe("B"); // remembered, not sent while hidden
    expect(ws.sentOps(1)).toHaveLength(1);
    doc.set("visible");
    expect(ws.sentOps(1).at(-1)).toEqual([1, 3, ["A", "B"]]);
  });

  it("starts throttled when the page is hidden at connect", async () => {
    const doc = new FakeDocument();
    doc.visibilityState = "hidden";
    client = setup({ visibility: { document: doc } }).client;
    client.subscribe(["A"]);
    const ws = await open();
    expect(ws.sentOps(1)).toEqual([[1, 1, ["A"], { maxHz: 1 }]]);
  });
});

describe("json format", () => {
  it("offers tickstream.v1.json and speaks JSON text frames", async () => {
    client = setup({ format: "json" }).client;
    client.subscribe("A", { fields: ["bid"] });
    await flush();
    const ws = FakeWebSocket.last;
    expect(ws.protocols).toBe("tickstream.v1.json");
    ws.serverOpen();
    expect(ws.raw[0]).toBe('[1,1,["A"],{"fields":["bid"]}]');
    ws.serverSendRaw('[20,1,"n",5000,["ts","bid"]]\n[21,1,[["A",4]]]\n[22,4,3,{"1":187.23}]');
    expect(client.state("A")!.values).toEqual({ bid: 187.23 });
  });

  it("sends every command as the binary mode does, each with its own non-zero id", async () => {
    // The JSON UNSUB used to carry id 0, which the server refuses: JSON clients never
    // unsubscribed, and a hidden page kept streaming.
    const session = async (format: "msgpack" | "json") => {
      FakeWebSocket.reset();
      const doc = new FakeDocument();
      const c = setup({ format, visibility: { document: doc, mode: "unsubscribe" } }).client;
      c.subscribe(["A", "B", "C"], { maxHz: 4, fields: ["bid"] });
      const ws = await open();
      ackSubs(ws, ["A", "B", "C"]);
      c.resnapshot(["A"]);
      void c.ping().catch(() => {});
      c.unsubscribe("C");
      doc.set("hidden"); // UNSUB of the rest
      doc.set("visible"); // SUB again
      c.close();
      return { sent: ws.sent, frames: ws.raw.map((f) => typeof f) };
    };
    const bin = await session("msgpack");
    const json = await session("json");
    expect(bin.frames.every((t) => t !== "string")).toBe(true);
    expect(json.frames.every((t) => t === "string")).toBe(true);
    const shape = (m: unknown[]) => m.map((v, i) => (m[0] === 4 && i === 2 ? "t" : v)); // PING's t is a clock
    expect(json.sent.map(shape)).toEqual(bin.sent.map(shape));
    expect(bin.sent.map((m) => m[0])).toEqual([1, 3, 4, 2, 2, 1]);
    const ids = bin.sent.map((m) => m[1] as number);
    expect(ids.every((id) => id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
