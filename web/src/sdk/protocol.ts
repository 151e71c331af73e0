/**
 * tickstream wire protocol v1: op codes, message types, encoding and decoding.
 *
 * Every message is a MessagePack array whose first element is the op. One WebSocket
 * frame may carry several messages back to back, so frames are decoded with decodeMulti
 * until the buffer is exhausted.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

/** Subprotocol for binary MessagePack frames. */
export const SUBPROTOCOL = "tickstream.v1";
/** Subprotocol for JSON text frames (debugging). */
export const SUBPROTOCOL_JSON = "tickstream.v1.json";
export const PROTOCOL_VERSION = 1;

export const Op = {
  // client -> server
  SUB: 1,
  UNSUB: 2,
  SNAP: 3,
  PING: 4,
  /** Extension: renew the connection's token in-band (PROTOCOL.md §5.5). */
  AUTH: 5,
  // server -> client
  HELLO: 20,
  ACK: 21,
  SNAPSHOT: 22,
  DELTA: 23,
  PONG: 24,
  ERROR: 25,
  HEARTBEAT: 26,
  STATUS: 27,
  /** Extension: the reply to AUTH, with the new token's expiry (PROTOCOL.md §6.9). */
  AUTHED: 28,
  /** Extension: a subscription's bar history, after its SNAPSHOT (PROTOCOL.md §6.10). */
  BARS: 29,
  /** Extension: the newest state of one bar of a subscription (PROTOCOL.md §6.11). */
  BAR: 30,
} as const;

/** The v1 field table; the server's HELLO is authoritative (fields may be appended). */
export const FIELDS_V1 = [
  "ts",
  "bid",
  "bidSize",
  "ask",
  "askSize",
  "last",
  "lastSize",
  "volume",
  "open",
  "high",
  "low",
  "prevClose",
] as const;

/** Close codes of the contract (PROTOCOL.md §12). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  DROPPED: 1006,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  NOT_AUTHENTICATED: 4001,
  NOT_ENTITLED: 4003,
  SLOW_CONSUMER: 4008,
  TOO_MANY_CONNECTIONS: 4029,
} as const;

/**
 * What a client does after a close: reconnect with backoff, reconnect only with new
 * credentials, or not at all (the same client would be refused again). The server's
 * codec/close.go holds the same rule; both are tested against PROTOCOL.md §12.
 */
export type ReconnectRule = "backoff" | "new credentials" | "final";

const CLOSE_NAMES: Record<number, string> = {
  1000: "normal",
  1001: "going away",
  1002: "protocol error",
  1006: "dropped",
  1007: "invalid data",
  1008: "policy",
  1009: "message too big",
  1011: "internal error",
  4001: "not authenticated",
  4003: "not entitled",
  4008: "slow consumer",
  4029: "too many connections",
};

/** The name of a close code ("slow consumer"), or "close N" for one the protocol does not define. */
export function closeName(code: number): string {
  return CLOSE_NAMES[code] ?? `close ${code}`;
}

/** The reconnect rule of a close code; a code the protocol does not define is a passing failure. */
export function reconnectRule(code: number): ReconnectRule {
  switch (code) {
    case CloseCode.NOT_AUTHENTICATED:
      return "new credentials";
    case CloseCode.PROTOCOL_ERROR:
    case CloseCode.INVALID_DATA:
    case CloseCode.POLICY:
    case CloseCode.TOO_BIG:
    case CloseCode.NOT_ENTITLED:
      return "final";
    default:
      return "backoff";
  }
}

export type FeedState = "live" | "stale" | "recovering";

/** Raw state map as it arrives: keys are field indexes (strings after decoding). */
export type RawState = Record<string, unknown>;

export interface HelloMsg {
  op: 20;
  version: number;
  serverId: string;
  heartbeatMs: number;
  fields: string[];
}
export interface AckMsg {
  op: 21;
  id: number;
  symbols: Array<[string, number]>;
}
export interface SnapshotMsg {
  op: 22;
  sid: number;
  seq: number;
  state: RawState;
}
export interface DeltaMsg {
  op: 23;
  sid: number;
  seq: number;
  state: RawState;
}
export interface PongMsg {
  op: 24;
  id: number;
  t: number;
  serverTimeUs: number;
}
export interface ErrorMsg {
  op: 25;
  id: number;
  code: number;
  message: string;
  symbols: string[];
}
export interface HeartbeatMsg {
  op: 26;
  serverTimeUs: number;
}
export interface StatusMsg {
  op: 27;
  state: string;
  detail: string;
}
export interface AuthedMsg {
  op: 28;
  id: number;
  /** The renewed token's expiry, unix µs; 0 when it has none. */
  expiresUs: number;
}

/**
 * One OHLCV bar as the server builds it (PROTOCOL.md §17): `t` its start in unix µs, open,
 * high, low and close prices, volume (sum of trade sizes) and the number of trades (of quotes,
 * for a symbol whose feed carries no trades). The same names as the REST API's `/api/v1/bars`.
 */
export interface Bar {
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  n: number;
}
export interface BarsMsg {
  op: 29;
  sid: number;
  /** The symbol's version the bars are complete up to. */
  seq: number;
  /** The interval's name, e.g. "1m". */
  interval: string;
  /** Oldest first; the last one may still be forming. */
  bars: Bar[];
}
export interface BarMsg {
  op: 30;
  sid: number;
  /** The version of the change that moved the bar. */
  seq: number;
  interval: string;
  bar: Bar;
}

export type ServerMessage =
  | HelloMsg
  | AckMsg
  | SnapshotMsg
  | DeltaMsg
  | PongMsg
  | ErrorMsg
  | HeartbeatMsg
  | StatusMsg
  | AuthedMsg
  | BarsMsg
  | BarMsg;

/** Thrown (and reported as an "error" event) when a frame does not follow the protocol. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export interface SubOptions {
  /** Send a SNAPSHOT first (server default true). */
  snap?: boolean;
  /** At most this many messages per second per symbol; 0 = every update. */
  maxHz?: number;
  /** Only these fields (by name); default all. */
  fields?: string[];
  /** Also receive bars of this interval (a name the server has, e.g. "1m"): live BARs. */
  bars?: string;
  /** History: the last n bars (1..10000, the forming one included) as one BARS. Needs `bars`. */
  barCount?: number;
  /** History: every retained bar with `t >= barSince` (unix µs) as one BARS. Needs `bars`; excludes `barCount`. */
  barSince?: number;
}

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

function wireOpts(opts: SubOptions | undefined): Record<string, unknown> | undefined {
  if (!opts) return undefined;
  const o: Record<string, unknown> = {};
  if (opts.snap !== undefined) o.snap = opts.snap;
  if (opts.maxHz !== undefined && opts.maxHz > 0) o.maxHz = opts.maxHz;
  if (opts.fields !== undefined && opts.fields.length > 0) o.fields = opts.fields;
  if (opts.bars !== undefined) o.bars = opts.bars;
  if (opts.barCount !== undefined) o.barCount = opts.barCount;
  if (opts.barSince !== undefined) o.barSince = opts.barSince;
  return Object.keys(o).length > 0 ? o : undefined;
}

/**
 * A client command as both subprotocols carry it: `[op, id, ...args]`. MessagePack encodes the
 * array as it is (`encodeCommand`), JSON as `JSON.stringify`. The client builds each command
 * once for both, so that the two encodings cannot disagree (the JSON UNSUB once carried id 0,
 * which the server refuses: JSON clients never unsubscribed).
 */
export type Command = [op: number, id: number, ...args: unknown[]];

/** SUB `[1, id, symbols, opts?]`; the options map only when it holds something. */
export function subCommand(id: number, symbols: string[], opts?: SubOptions): Command {
  const o = wireOpts(opts);
  return o ? [Op.SUB, id, symbols, o] : [Op.SUB, id, symbols];
}
/** The MessagePack frame of a command (tickstream.v1). */
export function encodeCommand(cmd: Command): Uint8Array {
  return encoder.encode(cmd);
}
export function encodeSub(id: number, symbols: string[], opts?: SubOptions): Uint8Array {
  return encodeCommand(subCommand(id, symbols, opts));
}
export function encodeUnsub(id: number, symbols: string[]): Uint8Array {
  return encodeCommand([Op.UNSUB, id, symbols]);
}
export function encodeSnap(id: number, symbols: string[]): Uint8Array {
  return encodeCommand([Op.SNAP, id, symbols]);
}
export function encodePing(id: number, t: number): Uint8Array {
  return encodeCommand([Op.PING, id, t]);
}
export function encodeAuth(id: number, token: string): Uint8Array {
  return encodeCommand([Op.AUTH, id, token]);
}

/**
 * The `exp` claim of a JWT as a time in ms, or undefined when the token is not a JWT or has
 * no `exp`. The signature is not checked: the server does that; the client only needs to know
 * when to renew.
 */
export function tokenExpiryMs(token: string | undefined): number | undefined {
  const payload = token?.split(".")[1];
  if (!payload) return undefined;
  try {
    const b64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4))) as { exp?: unknown };
    return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Encodes any server message (used by tests and mock servers). */
export function encodeServer(msg: unknown[]): Uint8Array {
  return encoder.encode(msg);
}

const SYMBOL_RE = /^[A-Za-z0-9._:/-]{1,32}$/;
/** True when `s` is a valid v1 symbol: 1 to 32 characters of A-Z a-z 0-9 . _ : / - */
export function isValidSymbol(s: string): boolean {
  return SYMBOL_RE.test(s);
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}
function isMap(v: unknown): v is RawState {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Validates one decoded value into a typed message. Returns null for unknown ops
 * (which the contract says to ignore); throws ProtocolError for a known op with a bad shape.
 * Trailing unknown elements are ignored.
 */
export function parseMessage(v: unknown): ServerMessage | null {
  if (!Array.isArray(v) || v.length === 0 || !isInt(v[0])) {
    throw new ProtocolError(`message is not an array starting with an op: ${preview(v)}`);
  }
  const op = v[0];
  switch (op) {
    case Op.HELLO: {
      const [, version, serverId, heartbeatMs, fields] = v;
      if (!isInt(version) || typeof serverId !== "string" || typeof heartbeatMs !== "number" || !Array.isArray(fields)) {
        throw new ProtocolError(`bad HELLO: ${preview(v)}`);
      }
      return { op, version, serverId, heartbeatMs, fields: fields.map(String) };
    }
    case Op.ACK: {
      const [, id, syms] = v;
      if (!isInt(id) || !Array.isArray(syms)) throw new ProtocolError(`bad ACK: ${preview(v)}`);
      const symbols: Array<[string, number]> = [];
      for (const p of syms) {
        if (!Array.isArray(p) || typeof p[0] !== "string" || !isInt(p[1])) throw new ProtocolError(`bad ACK entry: ${preview(v)}`);
        symbols.push([p[0], p[1]]);
      }
      return { op, id, symbols };
    }
    case Op.SNAPSHOT:
    case Op.DELTA: {
      const [, sid, seq, state] = v;
      if (!isInt(sid) || !isInt(seq) || !isMap(state)) {
        throw new ProtocolError(`bad ${op === Op.SNAPSHOT ? "SNAPSHOT" : "DELTA"}: ${preview(v)}`);
      }
      return { op, sid, seq, state } as SnapshotMsg | DeltaMsg;
    }
    case Op.PONG: {
      const [, id, t, serverTimeUs] = v;
      if (!isInt(id) || typeof t !== "number") throw new ProtocolError(`bad PONG: ${preview(v)}`);
      return { op, id, t, serverTimeUs: typeof serverTimeUs === "number" ? serverTimeUs : 0 };
    }
    case Op.ERROR: {
      const [, id, code, message, syms] = v;
      if (!isInt(id) || !isInt(code)) throw new ProtocolError(`bad ERROR: ${preview(v)}`);
      return {
        op,
        id,
        code,
        message: typeof message === "string" ? message : String(message ?? ""),
        symbols: Array.isArray(syms) ? syms.map(String) : [],
      };
    }
    case Op.HEARTBEAT:
      return { op, serverTimeUs: typeof v[1] === "number" ? v[1] : 0 };
    case Op.STATUS: {
      const [, state, detail] = v;
      if (typeof state !== "string") throw new ProtocolError(`bad STATUS: ${preview(v)}`);
      return { op, state, detail: typeof detail === "string" ? detail : "" };
    }
    case Op.AUTHED: {
      const [, id, expiresUs] = v;
      if (!isInt(id) || typeof expiresUs !== "number") throw new ProtocolError(`bad AUTHED: ${preview(v)}`);
      return { op, id, expiresUs };
    }
    case Op.BARS: {
      const [, sid, seq, interval, list] = v;
      if (!isInt(sid) || !isInt(seq) || typeof interval !== "string" || !Array.isArray(list)) {
        throw new ProtocolError(`bad BARS: ${preview(v)}`);
      }
      const bars: Bar[] = new Array<Bar>(list.length);
      for (let i = 0; i < list.length; i++) {
        const b = parseBar(list[i]);
        if (!b) throw new ProtocolError(`bad bar ${i} in BARS: ${preview(list[i])}`);
        bars[i] = b;
      }
      return { op, sid, seq, interval, bars };
    }
    case Op.BAR: {
      const [, sid, seq, interval, tuple] = v;
      const bar = parseBar(tuple);
      if (!isInt(sid) || !isInt(seq) || typeof interval !== "string" || !bar) throw new ProtocolError(`bad BAR: ${preview(v)}`);
      return { op, sid, seq, interval, bar };
    }
    default:
      return null; // unknown server op: ignored by contract
  }
}

/** A bar tuple `[t, o, h, l, c, v, n]` (more elements are ignored), or null when it is not one. */
function parseBar(b: unknown): Bar | null {
  if (!Array.isArray(b) || b.length < 7) return null;
  const [t, o, h, l, c, vol, n] = b as unknown[];
  if (!isInt(t) || !isNum(o) || !isNum(h) || !isNum(l) || !isNum(c) || !isNum(vol) || !isInt(n)) return null;
  return { t, o, h, l, c, v: vol, n };
}

function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/**
 * Decodes one WebSocket frame into its messages. Binary frames hold one or more
 * MessagePack values back to back; text frames (JSON mode) hold one or more JSON
 * values separated by newlines. Unknown ops are dropped.
 *
 * Without `onError` the first problem throws a ProtocolError. With it, a malformed
 * message is reported and skipped, and the messages decoded before an undecodable
 * byte sequence are still returned.
 */
export function decodeFrame(
  data: ArrayBuffer | ArrayBufferView | string,
  onError?: (e: ProtocolError) => void,
): ServerMessage[] {
  const out: ServerMessage[] = [];
  const fail = (e: ProtocolError): void => {
    if (!onError) throw e;
    onError(e);
  };
  const take = (v: unknown): void => {
    try {
      const m = parseMessage(v);
      if (m) out.push(m);
    } catch (e) {
      fail(e as ProtocolError);
    }
  };
  if (typeof data === "string") {
    for (const line of data.split("\n")) {
      if (line.trim() === "") continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        fail(new ProtocolError(`undecodable JSON message: ${(e as Error).message}`));
        continue;
      }
      take(v);
    }
    return out;
  }
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let it: Iterator<unknown>;
  try {
    it = decoder.decodeMulti(bytes)[Symbol.iterator]();
    for (;;) {
      const r = it.next();
      if (r.done) break;
      take(r.value);
    }
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    fail(new ProtocolError(`undecodable MessagePack frame (${bytes.byteLength} bytes): ${(e as Error).message}; ${hex(bytes)}`));
  }
  return out;
}

function preview(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s.length > 200 ? s.slice(0, 200) + "…" : s;
  } catch {
    return String(v);
  }
}

/** Hex dump of the first bytes of a frame, for error reports. */
export function hex(b: Uint8Array, max = 64): string {
  let s = "";
  const n = Math.min(b.length, max);
  for (let i = 0; i < n; i++) s += (i ? " " : "") + b[i]!.toString(16).padStart(2, "0");
  return b.length > max ? s + " …" : s;
}
