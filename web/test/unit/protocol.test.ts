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
    expect(hexOf(encodeUnsub(5, ["A", "B"]))).toBe("93 02 05 92 a1 41 a1 42");
    expect(hexOf(encodeSnap(6, ["A"]))).toBe("93 03 06 91 a1 41");
    expect(hexOf(encodePing(7, 12))).toBe("93 04 07 0c");
  });

  it("validates symbols like the server", () => {
    for (const s of ["AAPL", "BRK.B", "ES:CME", "EUR/USD", "a_b-c", "X".repeat(32)]) expect(isValidSymbol(s)).toBe(true);
    for (const s of ["", "X".repeat(33), "A B", "ÄPL", "A,B", "A;"]) expect(isValidSymbol(s)).toBe(false);
  });
});
