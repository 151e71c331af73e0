/**
 * Bars in the SDK against a scripted server: history (BARS) and live bars (BAR) held per symbol,
 * ordering guarantee 5 of PROTOCOL.md §7 checked, and a resync by SNAP when the server breaks it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { connect, type Bar, type BarEvent, type BarsEvent, type ClientErrorEvent, type ClientOptions, type TickstreamClient } from "../../src/sdk/index.js";
import { FakeDocument, FakeWebSocket, HELLO } from "./fake-websocket.js";

const flush = () => vi.advanceTimersByTimeAsync(0);
const MIN = 60_000_000; // one minute in µs
const T0 = 1764072000000000;

/** A bar tuple at minute `i` (t = T0 + i min) closing at `c`, as the server sends it. */
const tuple = (i: number, c: number, n = 1): unknown[] => [T0 + i * MIN, c - 1, c + 1, c - 2, c, 100 * n, n];
const bar = (i: number, c: number, n = 1): Bar => ({ t: T0 + i * MIN, o: c - 1, h: c + 1, l: c - 2, c, v: 100 * n, n });

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

function setup(opts: ClientOptions = {}) {
  const c = connect("ws://127.0.0.1:9/ws", { WebSocket: FakeWebSocket, visibility: false, random: () => 0, ...opts });
  client = c;
  const histories: BarsEvent[] = [];
  const live: BarEvent[] = [];
  const errors: ClientErrorEvent[] = [];
  c.on("bars", (e) => histories.push({ ...e, bars: [...e.bars] }));
  c.on("bar", (e) => live.push(e));
  c.on("error", (e) => errors.push(e));
  return { client: c, histories, live, errors };
}

async function open(): Promise<FakeWebSocket> {
  await flush();
  const ws = FakeWebSocket.last;
  ws.serverOpen();
  ws.serverSend(HELLO());
  return ws;
}

/** ACK of the last SUB for AAPL with sid 1, and its SNAPSHOT at `seq`. */
function ackAndSnapshot(ws: FakeWebSocket, seq: number): void {
  const id = ws.sentOps(1).at(-1)![1];
  ws.serverSend([21, id, [["AAPL", 1]]], [22, 1, seq, { 0: T0, 5: 187 }]);
}

describe("bars", () => {
  it("holds the history of the BARS after the SNAPSHOT, then replaces and appends live BARs", async () => {
    const t = setup();
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 390 });
    const ws = await open();
    expect(ws.sent).toEqual([[1, 1, ["AAPL"], { bars: "1m", barCount: 390 }]]);
    ws.serverSend(
      [21, 1, [["AAPL", 1]]],
      [22, 1, 40, { 0: T0, 5: 187 }],
      [29, 1, 40, "1m", [tuple(0, 186), tuple(1, 187, 2)]],
      [23, 1, 41, { 5: 188 }],
      [30, 1, 41, "1m", tuple(1, 188, 3)], // the forming bar again
      [30, 1, 42, "1m", tuple(3, 189)], // a new bar (minute 2 had no trade: a gap)
    );
    expect(t.errors).toEqual([]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 186), bar(1, 188, 3), bar(3, 189)]);
    const st = t.client.state("AAPL")!;
    expect(st.bars).toMatchObject({ interval: "1m", seq: 42, ready: true });
    expect(t.histories).toEqual([{ symbol: "AAPL", state: st, interval: "1m", bars: [bar(0, 186), bar(1, 187, 2)], seq: 40 }]);
    expect(t.live.map((e) => [e.seq, e.bar.t, e.appended])).toEqual([
      [41, T0 + MIN, false],
      [42, T0 + 3 * MIN, true],
    ]);
    expect(t.client.stats).toMatchObject({ barHistories: 1, barUpdates: 2, droppedBars: 0, snapRequests: 0 });
  });

  it("keeps the last barCount bars as live ones arrive", async () => {
    const t = setup();
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 2 });
    const ws = await open();
    ackAndSnapshot(ws, 5);
    ws.serverSend([29, 1, 5, "1m", [tuple(0, 1), tuple(1, 2)]], [30, 1, 6, "1m", tuple(2, 3)], [30, 1, 7, "1m", tuple(3, 4)]);
    expect(t.client.bars("AAPL")).toEqual([bar(2, 3), bar(3, 4)]);
  });

  it.each([
    ["a BAR before the BARS", [[30, 1, 41, "1m", tuple(1, 1)]], /BAR for AAPL came before its BARS/],
    // (after a BARS of a symbol unsubscribed meanwhile: the server does send bars)
    ["a DELTA before the BARS", [[29, 7, 3, "1m", []], [23, 1, 41, { 5: 1 }]], /DELTA for AAPL came before its BARS/],
    ["a BAR whose t goes back", [[29, 1, 40, "1m", [tuple(0, 1), tuple(1, 2)]], [30, 1, 41, "1m", tuple(0, 3)]], /BAR has t=\d+, before the newest bar's/],
    ["a BAR whose seq goes back", [[29, 1, 40, "1m", [tuple(0, 1)]], [30, 1, 39, "1m", tuple(0, 3)]], /BAR has seq 39, below the bars' 40/],
    ["a BARS not oldest first", [[29, 1, 40, "1m", [tuple(1, 1), tuple(0, 2)]]], /not oldest first/],
  ])("resyncs with SNAP after %s, and takes the bars of the SNAP's BARS", async (_, msgs, re) => {
    const t = setup();
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 10 });
    const ws = await open();
    ackAndSnapshot(ws, 40);
    ws.serverSend(...(msgs as unknown[][]));
    expect(t.errors.map((e) => [e.kind, e.message])).toEqual([["protocol", expect.stringMatching(re)]]);
    expect(t.errors[0]!.message).toMatch(/requesting SNAP/);
    expect(ws.sentOps(3)).toEqual([[3, 2, ["AAPL"]]]);
    expect(t.client.state("AAPL")!.bars.ready).toBe(false);
    // BARs in flight before the server handles the SNAP are dropped, no second SNAP
    ws.serverSend([30, 1, 45, "1m", tuple(5, 9)]);
    expect(ws.sentOps(3)).toHaveLength(1);
    ws.serverSend([22, 1, 46, { 5: 9 }], [29, 1, 46, "1m", [tuple(4, 8), tuple(5, 9)]], [30, 1, 47, "1m", tuple(5, 10)]);
    expect(t.client.bars("AAPL")).toEqual([bar(4, 8), bar(5, 10)]);
    expect(t.client.state("AAPL")!.bars.ready).toBe(true);
    expect(t.errors).toHaveLength(1);
  });

  it("takes a server that answers with no BARS at all for one without bars: no resync, the DELTAs apply", async () => {
    const t = setup();
    void t.client.subscribe(["AAPL", "MSFT"], { bars: "1m", barCount: 10 });
    const ws = await open();
    expect(t.client.barsAvailable).toBeUndefined();
    // An older server: the options are unknown keys to it, ignored.
    ws.serverSend([21, 1, [["AAPL", 1], ["MSFT", 2]]], [22, 1, 40, { 5: 1 }], [22, 2, 7, { 5: 2 }], [23, 1, 41, { 5: 3 }], [23, 2, 8, { 5: 4 }]);
    expect(t.errors.map((e) => e.message)).toEqual([expect.stringMatching(/keeps no bars/)]);
    expect(ws.sentOps(3)).toEqual([]);
    expect(t.client.state("AAPL")!.values.last).toBe(3);
    expect(t.client.state("MSFT")!.values.last).toBe(4);
    expect(t.client.state("MSFT")!.awaitingBars).toBe(false);
    expect(t.client.barsAvailable).toBe(false);
    expect(t.client.bars("AAPL")).toEqual([]);
    // A later SUB on that connection awaits nothing either.
    void t.client.subscribe("NVDA", { bars: "1m", barCount: 10 });
    ws.serverSend([21, 2, [["NVDA", 3]]], [22, 3, 5, { 5: 5 }]);
    expect(t.client.state("NVDA")!.awaitingBars).toBe(false);
    expect(t.errors).toHaveLength(1);
  });

  it("refuses a BARS before the SNAPSHOT, but expects it right after the ACK when snap is false", async () => {
    const t = setup();
    void t.client.subscribe("AAPL", { bars: "1m", barSince: T0 });
    const ws = await open();
    expect(ws.sent).toEqual([[1, 1, ["AAPL"], { bars: "1m", barSince: T0 }]]);
    ws.serverSend([21, 1, [["AAPL", 1]]], [29, 1, 40, "1m", [tuple(0, 1)]]);
    expect(t.errors.map((e) => e.message)).toEqual([expect.stringMatching(/BARS for AAPL came before its SNAPSHOT/)]);
    expect(t.client.bars("AAPL")).toEqual([]);

    const u = setup();
    void u.client.subscribe("MSFT", { snap: false, bars: "1m", barSince: T0 });
    const ws2 = await open();
    ws2.serverSend([21, 1, [["MSFT", 3]]], [29, 3, 40, "1m", [tuple(0, 1)]], [30, 3, 41, "1m", tuple(0, 2)]);
    expect(u.errors).toEqual([]);
    expect(u.client.bars("MSFT")).toEqual([bar(0, 2)]);
  });

  it("with live bars only (no history) starts empty at the SNAPSHOT and appends", async () => {
    const t = setup();
    void t.client.subscribe("AAPL", { bars: "1s" });
    const ws = await open();
    ackAndSnapshot(ws, 7);
    ws.serverSend([23, 1, 8, { 5: 2 }], [30, 1, 8, "1s", tuple(0, 2)], [30, 1, 9, "1s", tuple(1, 3)]);
    expect(t.errors).toEqual([]);
    expect(t.histories).toEqual([]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 2), bar(1, 3)]);
  });

  it("keeps showing the bars across a reconnect, then asks only for the bars from the newest one held", async () => {
    const t = setup({ reconnect: { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } });
    void t.client.subscribe(["AAPL", "MSFT"], { bars: "1m", barCount: 3, maxHz: 4 });
    let ws = await open();
    ws.serverSend(
      [21, 1, [["AAPL", 1], ["MSFT", 2]]],
      [22, 1, 40, { 5: 2 }],
      [29, 1, 40, "1m", [tuple(0, 1), tuple(1, 2)]],
      [22, 2, 7, { 5: 9 }],
      [29, 2, 7, "1m", []], // no bar yet: nothing to resume from
    );
    ws.serverClose(1006);
    await flush();
    expect(t.client.bars("AAPL")).toEqual([bar(0, 1), bar(1, 2)]);
    expect(t.client.state("AAPL")!.bars.ready).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    ws = await open();
    expect(ws.sent).toEqual([
      [1, 2, ["AAPL"], { maxHz: 4, bars: "1m", barSince: T0 + MIN }],
      [1, 3, ["MSFT"], { maxHz: 4, bars: "1m", barCount: 3 }],
    ]);
    // another node: other sids, seqs that do not continue the old connection's; the newest bar
    // held (minute 1) changed meanwhile, and minutes 2 and 3 came
    ws.serverSend(
      [21, 2, [["AAPL", 9]]],
      [22, 9, 3, { 5: 3 }],
      [29, 9, 3, "1m", [tuple(1, 2.5), tuple(2, 3), tuple(3, 4)]],
      [21, 3, [["MSFT", 8]]],
      [22, 8, 2, { 5: 9 }],
      [29, 8, 2, "1m", [tuple(3, 9)]],
    );
    expect(t.errors).toEqual([]);
    // merged, then the last barCount kept
    expect(t.client.bars("AAPL")).toEqual([bar(1, 2.5), bar(2, 3), bar(3, 4)]);
    expect(t.client.bars("MSFT")).toEqual([bar(3, 9)]);
    expect(t.histories.map((h) => [h.symbol, h.seq, h.bars.length])).toEqual([
      ["AAPL", 40, 2],
      ["MSFT", 7, 0],
      ["AAPL", 3, 3],
      ["MSFT", 2, 1],
    ]);
    // A later SUB of the client's own asks for the whole history again, and it replaces.
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 3 });
    expect(ws.sentOps(1).at(-1)).toEqual([1, 4, ["AAPL"], { bars: "1m", barCount: 3 }]);
    ws.serverSend([21, 4, [["AAPL", 9]]], [22, 9, 4, { 5: 3 }], [29, 9, 4, "1m", [tuple(0, 1), tuple(1, 2.5)]]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 1), bar(1, 2.5)]);
  });

  it("after a resume, merges a SNAP's BARS, and resyncs a violation with the whole history", async () => {
    const t = setup({ reconnect: { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } });
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 10 });
    let ws = await open();
    ackAndSnapshot(ws, 40);
    ws.serverSend([29, 1, 40, "1m", [tuple(0, 1), tuple(1, 2)]]);
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(20);
    ws = await open();
    expect(ws.sent).toEqual([[1, 2, ["AAPL"], { bars: "1m", barSince: T0 + MIN }]]);
    ackAndSnapshot(ws, 50);
    ws.serverSend([29, 1, 50, "1m", [tuple(1, 2), tuple(2, 3)]]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 1), bar(1, 2), bar(2, 3)]);
    // A SNAP: the server's option is the resume's, its BARS has only the bars from minute 1.
    t.client.resnapshot(["AAPL"]);
    expect(ws.sentOps(3)).toEqual([[3, 3, ["AAPL"]]]);
    ws.serverSend([22, 1, 51, { 5: 3 }], [29, 1, 51, "1m", [tuple(1, 2), tuple(2, 3.5)]]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 1), bar(1, 2), bar(2, 3.5)]);
    // A violation: the held bars are not trusted, and a SNAP would bring only a resume's bars:
    // the SDK subscribes again with the subscription's own history option.
    ws.serverSend([30, 1, 52, "1m", tuple(0, 9)]);
    expect(t.errors.map((e) => e.message)).toEqual([expect.stringMatching(/before the newest bar's.*subscribing again for the whole history/)]);
    expect(ws.sentOps(3)).toHaveLength(1);
    expect(ws.sentOps(1).at(-1)).toEqual([1, 4, ["AAPL"], { bars: "1m", barCount: 10 }]);
    ws.serverSend([21, 4, [["AAPL", 1]]], [22, 1, 53, { 5: 4 }], [29, 1, 53, "1m", [tuple(0, 1), tuple(1, 2), tuple(2, 4)]]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 1), bar(1, 2), bar(2, 4)]);
    expect(t.client.state("AAPL")!.bars.partial).toBe(false);
  });

  it("takes a whole history that starts before the newest bar held as it is", async () => {
    const t = setup({ reconnect: { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } });
    void t.client.subscribe("AAPL", { bars: "1m", barSince: T0 });
    let ws = await open();
    ackAndSnapshot(ws, 40);
    ws.serverSend([29, 1, 40, "1m", [tuple(0, 1), tuple(1, 2)]]);
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(20);
    ws = await open();
    expect(ws.sent).toEqual([[1, 2, ["AAPL"], { bars: "1m", barSince: T0 + MIN }]]);
    // a server that answers with more than asked: no merge, the history as it came
    ackAndSnapshot(ws, 41);
    ws.serverSend([29, 1, 41, "1m", [tuple(0, 5), tuple(2, 6)]]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 5), bar(2, 6)]);
  });

  it("a re-SUB to another interval starts the new one from its BARS and drops BARs of the old", async () => {
    const t = setup();
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 5 });
    const ws = await open();
    ackAndSnapshot(ws, 40);
    ws.serverSend([29, 1, 40, "1m", [tuple(0, 1)]]);
    void t.client.subscribe("AAPL", { bars: "1s", barCount: 900 });
    expect(ws.sentOps(1).at(-1)).toEqual([1, 2, ["AAPL"], { bars: "1s", barCount: 900 }]);
    ws.serverSend([30, 1, 41, "1m", tuple(0, 2)]); // before the server switched
    expect(t.client.bars("AAPL")).toEqual([bar(0, 2)]);
    ws.serverSend([21, 2, [["AAPL", 1]]]);
    expect(t.client.state("AAPL")!.bars).toMatchObject({ interval: "1s", ready: false, list: [] });
    ws.serverSend([30, 1, 41, "1m", tuple(0, 3)], [22, 1, 41, { 5: 2 }], [29, 1, 41, "1s", [[T0, 2, 2, 2, 2, 0, 1]]]);
    expect(t.errors).toEqual([]);
    expect(t.client.bars("AAPL")).toEqual([{ t: T0, o: 2, h: 2, l: 2, c: 2, v: 0, n: 1 }]);
  });

  it("asks for no new history when the hidden page only slows the subscription down", async () => {
    const doc = new FakeDocument();
    const t = setup({ visibility: { document: doc, hiddenMaxHz: 1 } });
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 390 });
    const ws = await open();
    ackAndSnapshot(ws, 40);
    ws.serverSend([29, 1, 40, "1m", [tuple(0, 1)]]);
    doc.set("hidden");
    expect(ws.sentOps(1).at(-1)).toEqual([1, 2, ["AAPL"], { snap: false, maxHz: 1, bars: "1m" }]);
    ws.serverSend([21, 2, [["AAPL", 1]]], [30, 1, 41, "1m", tuple(1, 2)]);
    expect(t.client.bars("AAPL")).toEqual([bar(0, 1), bar(1, 2)]);
    doc.set("visible");
    expect(ws.sentOps(1).at(-1)).toEqual([1, 3, ["AAPL"], { bars: "1m", barCount: 390 }]);
    ackAndSnapshot(ws, 42);
    ws.serverSend([29, 1, 42, "1m", [tuple(0, 1), tuple(1, 2), tuple(2, 3)]]);
    expect(t.errors).toEqual([]);
    expect(t.client.bars("AAPL")).toHaveLength(3);
  });

  it("applies BARS and BAR from JSON text frames like binary ones", async () => {
    const t = setup({ format: "json" });
    void t.client.subscribe("AAPL", { bars: "1m", barCount: 2 });
    await flush();
    const ws = FakeWebSocket.last;
    ws.serverOpen();
    expect(ws.raw[0]).toBe('[1,1,["AAPL"],{"bars":"1m","barCount":2}]');
    ws.serverSendRaw(
      `[20,1,"n",5000,["ts","last"]]\n[21,1,[["AAPL",4]]]\n[22,4,3,{"1":187.25}]\n` +
        `[29,4,3,"1m",[[${T0},187,187.5,186.5,187.25,300,3]]]\n[30,4,4,"1m",[${T0 + MIN},187.5,187.5,187.5,187.5,0.5,1]]`,
    );
    expect(t.errors).toEqual([]);
    expect(t.client.bars("AAPL")).toEqual([
      { t: T0, o: 187, h: 187.5, l: 186.5, c: 187.25, v: 300, n: 3 },
      { t: T0 + MIN, o: 187.5, h: 187.5, l: 187.5, c: 187.5, v: 0.5, n: 1 },
    ]);
  });
});
