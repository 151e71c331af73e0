import { decode, encode } from "@msgpack/msgpack";
import type { VisibilitySource, WebSocketLike } from "../../src/sdk/index.js";

/** Concatenates several encoded messages into one frame, as the server may send them. */
export function frame(...msgs: unknown[][]): ArrayBuffer {
  const parts = msgs.map((m) => encode(m));
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out.buffer;
}

export const HELLO = (hb = 5000, fields = ["ts", "bid", "bidSize", "ask", "askSize", "last", "lastSize", "volume", "open", "high", "low", "prevClose"]) =>
  [20, 1, "test-node", hb, fields];

/** A WebSocket double: the test plays the server. */
export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = [];
  static reset(): void {
    FakeWebSocket.instances = [];
  }
  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    if (!ws) throw new Error("no FakeWebSocket created");
    return ws;
  }

  readyState = 0;
  binaryType = "blob";
  protocol = "";
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** Raw client frames. */
  readonly raw: Array<Uint8Array | ArrayBuffer | string> = [];
  closedWith: { code?: number; reason?: string } | undefined;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.instances.push(this);
  }

  /** Client messages, decoded. */
  get sent(): unknown[][] {
    return this.raw.map((d) => (typeof d === "string" ? JSON.parse(d) : decode(d instanceof ArrayBuffer ? new Uint8Array(d) : d))) as unknown[][];
  }
  sentOps(op: number): unknown[][] {
    return this.sent.filter((m) => m[0] === op);
  }

  send(data: Uint8Array | ArrayBuffer | string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.raw.push(data instanceof Uint8Array ? data.slice() : data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    if (this.readyState === 3) return;
    this.readyState = 2;
    // Like a browser, the close event comes later.
    queueMicrotask(() => this.serverClose(code ?? 1005, reason ?? ""));
  }

  // --- server side
  serverOpen(): void {
    this.readyState = 1;
    this.protocol = "tickstream.v1";
    this.onopen?.({});
  }
  /** Sends all messages in ONE frame. */
  serverSend(...msgs: unknown[][]): void {
    this.onmessage?.({ data: frame(...msgs) });
  }
  serverSendRaw(data: ArrayBuffer | string): void {
    this.onmessage?.({ data });
  }
  serverClose(code = 1006, reason = ""): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** A page whose visibility the test sets. */
export class FakeDocument implements VisibilitySource {
  visibilityState = "visible";
  private fns: Array<() => void> = [];
  addEventListener(_t: "visibilitychange", fn: () => void) {
    this.fns.push(fn);
  }
  removeEventListener(_t: "visibilitychange", fn: () => void) {
    this.fns = this.fns.filter((f) => f !== fn);
  }
  set(state: "visible" | "hidden") {
    this.visibilityState = state;
    for (const f of this.fns) f();
  }
}
