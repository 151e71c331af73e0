import { encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import {
  ProtocolError,
  decodeFrame,
  encodePing,
  encodeSnap,
  encodeSub,
  encodeUnsub,
  isValidSymbol,
} from "../../src/sdk/index.js";
import { HELLO, frame } from "./fake-websocket.js";

const hexOf = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

describe("decodeFrame", () => {
  it("decodes several messages carried by one frame", () => {
    const msgs = decodeFrame(
      frame(HELLO(5000), [21, 1, [["AAPL", 7]]], [22, 7, 12, { 0: 1764050000000000, 1: 187.25, 5: 187.3 }], [23, 7, 13, { 1: 187.5 }], [26, 1764050000100000]),
    );
    expect(msgs.map((m) => m.op)).toEqual([20, 21, 22, 23, 26]);
    expect(msgs[0]).toMatchObject({ version: 1, serverId: "test-node", heartbeatMs: 5000 });
    expect(msgs[1]).toEqual({ op: 21, id: 1, symbols: [["AAPL", 7]] });
    expect(msgs[2]).toEqual({ op: 22, sid: 7, seq: 12, state: { 0: 1764050000000000, 1: 187.25, 5: 187.3 } });
    expect(msgs[3]).toEqual({ op: 23, sid: 7, seq: 13, state: { 1: 187.5 } });
  });

  it("decodes the byte-level example of a DELTA with integer keys", () => {
    // [23, 7, 13, {1: 187.5}] — 94 17 07 0d 81 01 cb <float64 187.5>
    const bytes = new Uint8Array([0x94, 0x17, 0x07, 0x0d, 0x81, 0x01, 0xcb, 0x40, 0x67, 0x70, 0, 0, 0, 0, 0]);
    expect(decodeFrame(bytes)).toEqual([{ op: 23, sid: 7, seq: 13, state: { 1: 187.5 } }]);
    // float32 form of the same price (ca 43 3b 80 00)
    const f32 = new Uint8Array([0x94, 0x17, 0x07, 0x0d, 0x81, 0x01, 0xca, 0x43, 0x3b, 0x80, 0x00]);
    expect(decodeFrame(f32)).toEqual([{ op: 23, sid: 7, seq: 13, state: { 1: 187.5 } }]);
  });

  it("ignores unknown ops and trailing elements", () => {
    const msgs = decodeFrame(frame([99, "future"], [26, 5, "extra", 1], [27, "stale", "broker down", { more: 1 }]));
    expect(msgs).toEqual([
      { op: 26, serverTimeUs: 5 },
      { op: 27, state: "stale", detail: "broker down" },
    ]);
  });

  it("keeps the messages before a bad one and reports it", () => {
    const errors: ProtocolError[] = [];
    const msgs = decodeFrame(frame([26, 1], [23, "x", 1, {}], [26, 2]), (e) => errors.push(e));
    expect(msgs.map((m) => m.op)).toEqual([26, 26]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/bad DELTA/);
  });

  it("reports a truncated frame but returns what decoded", () => {
    const good = encode([26, 1]);
    const cut = encode([22, 1, 1, { 1: 1.5 }]).slice(0, 5);
    const buf = new Uint8Array(good.length + cut.length);
    buf.set(good);
    buf.set(cut, good.length);
    const errors: ProtocolError[] = [];
    expect(decodeFrame(buf, (e) => errors.push(e)).map((m) => m.op)).toEqual([26]);
    expect(errors[0]!.message).toMatch(/undecodable MessagePack frame/);
    expect(() => decodeFrame(buf)).toThrow(ProtocolError);
  });

  it("throws on a message that is not an array", () => {
    expect(() => decodeFrame(encode({ op: 1 }))).toThrow(/not an array/);
  });

  it("decodes JSON text frames with several messages separated by newlines", () => {
    const msgs = decodeFrame('[20,1,"n",5000,["ts","bid"]]\n[22,3,1,{"1":187.23}]\n');
    expect(msgs).toEqual([
      { op: 20, version: 1, serverId: "n", heartbeatMs: 5000, fields: ["ts", "bid"] },
      { op: 22, sid: 3, seq: 1, state: { "1": 187.23 } },
    ]);
  });

  it("decodes BAR and BARS bytes, whatever number encoding each value has", () => {
    // [30, 7, 1043, "1m", [1764072000000000, 187.5, 188, 187, 187.5, 100, 2]]: t uint64, open
    // float32, high and low integers, close float64, volume fixint, trades fixint.
    const bar = new Uint8Array([
      0x95, 0x1e, 0x07, 0xcd, 0x04, 0x13, 0xa2, 0x31, 0x6d, 0x97, 0xcf, 0x00, 0x06, 0x44, 0x6a, 0x04, 0xeb, 0x10, 0x00, 0xca, 0x43,
      0x3b, 0x80, 0x00, 0xcc, 0xbc, 0xcc, 0xbb, 0xcb, 0x40, 0x67, 0x70, 0, 0, 0, 0, 0, 0x64, 0x02,
    ]);
    const want = { t: 1764072000000000, o: 187.5, h: 188, l: 187, c: 187.5, v: 100, n: 2 };
    expect(decodeFrame(bar)).toEqual([{ op: 30, sid: 7, seq: 1043, interval: "1m", bar: want }]);
    expect(decodeFrame('[30,7,1043,"1m",[1764072000000000,187.5,188,187,187.5,100,2]]')).toEqual(decodeFrame(bar));
    const bars = decodeFrame(frame([29, 7, 1043, "1m", [[1764071940000000, 187, 187.5, 186.5, 187, 0.5, 1], [1764072000000000, 187.5, 188, 187, 187.5, 100, 2]]]));
    expect(bars).toEqual([
      { op: 29, sid: 7, seq: 1043, interval: "1m", bars: [{ t: 1764071940000000, o: 187, h: 187.5, l: 186.5, c: 187, v: 0.5, n: 1 }, want] },
    ]);
    // no bar yet: an empty history; trailing elements of the message and of a bar are ignored
    expect(decodeFrame(frame([29, 7, 0, "1s", []], [30, 7, 5, "1s", [1, 2, 2, 2, 2, 0, 1, "future"], "future"]))).toEqual([
      { op: 29, sid: 7, seq: 0, interval: "1s", bars: [] },
      { op: 30, sid: 7, seq: 5, interval: "1s", bar: { t: 1, o: 2, h: 2, l: 2, c: 2, v: 0, n: 1 } },
    ]);
  });

  it.each([
    ["BARS without its interval", [29, 7, 1, 60, []], /bad BARS/],
    ["BARS whose list is a map", [29, 7, 1, "1m", {}], /bad BARS/],
    ["a bar with a fractional time", [29, 7, 1, "1m", [[1.5, 1, 1, 1, 1, 0, 1]]], /bad bar 0 in BARS/],
    ["a bar with 6 elements", [29, 7, 1, "1m", [[1, 1, 1, 1, 0, 1]]], /bad bar 0 in BARS/],
    ["a bar with a fractional trade count", [30, 7, 1, "1m", [1, 1, 1, 1, 1, 0, 1.5]], /bad BAR/],
    ["a bar with a price that is a string", [30, 7, 1, "1m", [1, "1", 1, 1, 1, 0, 1]], /bad BAR/],
    ["BAR without a bar", [30, 7, 1, "1m"], /bad BAR/],
  ])("refuses %s", (_, msg, re) => {
    const errors: ProtocolError[] = [];
    expect(decodeFrame(frame(msg as unknown[], [26, 1]), (e) => errors.push(e))).toEqual([{ op: 26, serverTimeUs: 1 }]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(re)]);
  });

  it("accepts a Uint8Array view into a larger buffer", () => {
    const inner = new Uint8Array(frame([26, 42]));
    const big = new Uint8Array(inner.length + 10);
    big.set(inner, 5);
    expect(decodeFrame(big.subarray(5, 5 + inner.length))).toEqual([{ op: 26, serverTimeUs: 42 }]);
  });
});

describe("client messages", () => {
  it("encodes SUB, UNSUB, SNAP and PING exactly", () => {
    expect(hexOf(encodeSub(1, ["AAPL"]))).toBe("93 01 01 91 a4 41 41 50 4c");
    expect(hexOf(encodeSub(2, ["A"], { maxHz: 4, fields: ["bid"] }))).toBe(
      "94 01 02 91 a1 41 82 a5 6d 61 78 48 7a 04 a6 66 69 65 6c 64 73 91 a3 62 69 64",
    );
    expect(hexOf(encodeSub(3, ["A"], { snap: false }))).toBe("94 01 03 91 a1 41 81 a4 73 6e 61 70 c2");
    // maxHz 0 is the default and is not sent
    expect(hexOf(encodeSub(4, ["A"], { maxHz: 0 }))).toBe("93 01 04 91 a1 41");
    // bars options: sent as given, after the others
    expect(hexOf(encodeSub(8, ["A"], { bars: "1m", barCount: 390 }))).toBe(
      "94 01 08 91 a1 41 82 a4 62 61 72 73 a2 31 6d a8 62 61 72 43 6f 75 6e 74 cd 01 86",
    );
    expect(encodeSub(9, ["A"], { maxHz: 4, bars: "1s", barSince: 1764072000000000 })).toEqual(
      encode([1, 9, ["A"], { maxHz: 4, bars: "1s", barSince: 1764072000000000 }]),
    );
    expect(hexOf(encodeUnsub(5, ["A", "B"]))).toBe("93 02 05 92 a1 41 a1 42");
    expect(hexOf(encodeSnap(6, ["A"]))).toBe("93 03 06 91 a1 41");
    expect(hexOf(encodePing(7, 12))).toBe("93 04 07 0c");
  });

  it("validates symbols like the server", () => {
    for (const s of ["AAPL", "BRK.B", "ES:CME", "EUR/USD", "a_b-c", "X".repeat(32)]) expect(isValidSymbol(s)).toBe(true);
    for (const s of ["", "X".repeat(33), "A B", "ÄPL", "A,B", "A;"]) expect(isValidSymbol(s)).toBe(false);
  });
});
