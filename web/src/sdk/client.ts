/**
 * The tickstream client: one WebSocket connection speaking protocol v1, with
 * subscriptions, per-symbol state, sequence checks, heartbeats, reconnects and
 * page-visibility throttling.
 */
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { BarSeries, MAX_BARS } from "./bars.js";
import { Emitter } from "./emitter.js";
import {
  CloseCode,
  FIELDS_V1,
  Op,
  PROTOCOL_VERSION,
  ProtocolError,
  SUBPROTOCOL,
  SUBPROTOCOL_JSON,
  decodeFrame,
  encodeCommand,
  subCommand,
  type Command,
  isValidSymbol,
  reconnectRule,
  tokenExpiryMs,
  type AckMsg,
  type AuthedMsg,
  type Bar,
  type BarMsg,
  type BarsMsg,
  type DeltaMsg,
  type ErrorMsg,
  type FeedState,
  type HelloMsg,
  type PongMsg,
  type RawState,
  type ServerMessage,
  type SnapshotMsg,
  type SubOptions,
} from "./protocol.js";

// ---------------------------------------------------------------------------
// Public types

/** The subset of the WHATWG WebSocket the client uses (inject a fake or `ws` in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  readonly protocol?: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array | ArrayBuffer | string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Where page visibility comes from (normally `document`). */
export interface VisibilitySource {
  readonly visibilityState: string;
  addEventListener(type: "visibilitychange", fn: () => void): void;
  removeEventListener(type: "visibilitychange", fn: () => void): void;
}

/** Combined connection + feed status. */
export type Status = "connecting" | "live" | "stale" | "reconnecting" | "closed";

export interface StatusEvent {
  status: Status;
  /** Feed status from the server's STATUS message (op 27); "live" until told otherwise. */
  feed: FeedState | string;
  /** The STATUS detail, or why the connection is not live. */
  detail: string;
  /** True while no message arrived for `staleAfterMissed` heartbeat intervals. */
  silent: boolean;
  /** Reconnect attempt number (1-based) while reconnecting, else 0. */
  attempt: number;
  /** Delay until the next connection attempt, while reconnecting. */
  retryInMs?: number;
  /** Close code of the last connection, when it closed. */
  closeCode?: number;
}

/** Known v1 fields; more may appear (the HELLO field table is authoritative). */
export interface Quote {
  ts?: number;
  bid?: number;
  bidSize?: number;
  ask?: number;
  askSize?: number;
  last?: number;
  lastSize?: number;
  volume?: number;
  open?: number;
  high?: number;
  low?: number;
  prevClose?: number;
  [field: string]: unknown;
}

/** Live state of one subscribed symbol. The object is stable for the subscription's life. */
export class SymbolState {
  /** Numeric id on the current connection (-1 until ACKed). */
  sid = -1;
  /** Sequence number of the last applied SNAPSHOT/DELTA on this connection (-1: none). */
  seq = -1;
  /** True once a SNAPSHOT was applied on the current connection. */
  ready = false;
  /** Field values by name. */
  readonly values: Quote = {};
  /** Local time (ms since epoch) of the last applied message. */
  updatedAt = 0;
  /** Set when the server rejected the symbol (ERROR op 25). */
  error: { code: number; message: string } | undefined;
  /** The bars of the subscription's `bars` interval: history (BARS) and live (BAR). */
  readonly bars = new BarSeries();
  /**
   * True from the SNAPSHOT (or, with `snap` false, the ACK) of a subscription that asked for
   * history until its BARS: guarantee 5 has no DELTA or BAR of the symbol come in between.
   */
  awaitingBars = false;
  constructor(readonly symbol: string) {}
}

export interface UpdateEvent {
  symbol: string;
  state: SymbolState;
  /** Names of the fields whose value changed with this message. */
  changed: string[];
  /** True for a SNAPSHOT, false for a DELTA. */
  snapshot: boolean;
  seq: number;
}

/** A BARS applied: the symbol's bars are now this history (PROTOCOL.md §6.10). */
export interface BarsEvent {
  symbol: string;
  state: SymbolState;
  interval: string;
  /** Every bar held now, oldest first (the same array as `state.bars.list`). */
  bars: readonly Bar[];
  seq: number;
}

/** A BAR applied (PROTOCOL.md §6.11). */
export interface BarEvent {
  symbol: string;
  state: SymbolState;
  interval: string;
  bar: Bar;
  seq: number;
  /** True when the bar is a new one: every earlier bar is final. False: it replaced the newest. */
  appended: boolean;
}

export type ClientErrorKind = "server" | "protocol" | "transport" | "auth";
export interface ClientErrorEvent {
  kind: ClientErrorKind;
  /** HTTP-like code for server errors (op 25), close code for transport errors, 0 otherwise. */
  code: number;
  message: string;
  /** Request id for server errors (0 when no request caused it). */
  id?: number;
  symbols?: string[];
}

export interface PingResult {
  rttMs: number;
  serverTimeUs: number;
  /** Estimated server clock minus local clock, in microseconds. */
  clockOffsetUs: number;
}

export interface SubscribeResult {
  accepted: string[];
  rejected: Array<{ symbol: string; code: number; message: string }>;
}

export interface ClientEvents {
  update: UpdateEvent;
  /** A subscription's bar history arrived (after its SNAPSHOT; again after a reconnect or resync). */
  bars: BarsEvent;
  /** A live bar update. */
  bar: BarEvent;
  status: StatusEvent;
  error: ClientErrorEvent;
  hello: HelloMsg;
  /** Every decoded server message (for debugging/inspection). */
  message: ServerMessage;
}

export interface HeartbeatOptions {
  /** Heartbeats missed before the connection is declared dead (default 3). */
  missed?: number;
  /** Heartbeats missed before the status turns "stale" (default 2; 0 disables). */
  staleAfterMissed?: number;
  /** Time allowed from creating the socket to receiving HELLO (default 10000 ms). */
  connectTimeoutMs?: number;
}

export interface ReconnectOptions extends BackoffOptions {
  /** Give up after this many consecutive failed attempts (default Infinity). */
  maxAttempts?: number;
  /** A connection that stayed up this long resets the backoff (default 5000 ms). */
  stableAfterMs?: number;
}

export interface VisibilityOptions {
  /** Source of visibility (default: globalThis.document when present). */
  document?: VisibilitySource;
  /** "throttle" re-SUBs at `hiddenMaxHz`; "unsubscribe" drops the subscriptions while hidden. */
  mode?: "throttle" | "unsubscribe";
  /** maxHz used while hidden in "throttle" mode (default 1). */
  hiddenMaxHz?: number;
}

export interface ClientOptions {
  /** Static credential, sent as `?token=` (browsers cannot set headers on a WebSocket). */
  token?: string;
  /**
   * Called before every connection attempt; wins over `token`. When the token is a JWT with
   * `exp`, it is also called at 80% of the token's remaining life, and a newer token is sent
   * in-band (AUTH, op 5) so that the connection and its subscriptions outlive the first token.
   */
  getToken?: () => string | Promise<string>;
  /** Renew the token in-band before it expires (default true; needs `getToken`). */
  renewToken?: boolean;
  /** Default maxHz for subscriptions (0 = every update). */
  maxHz?: number;
  /** Default field filter for subscriptions (names). */
  fields?: string[];
  heartbeat?: HeartbeatOptions;
  /** Send an application PING (op 4) this often to measure RTT and clock offset (0 = off, default). */
  pingIntervalMs?: number;
  /** Reconnect policy, or false to never reconnect. */
  reconnect?: ReconnectOptions | false;
  /** Pause the flood while the page is hidden (default on when a document exists), or false. */
  visibility?: VisibilityOptions | false;
  /** WebSocket implementation (default globalThis.WebSocket). */
  WebSocket?: WebSocketCtor;
  /** "msgpack" (tickstream.v1, default) or "json" (tickstream.v1.json). */
  format?: "msgpack" | "json";
  /** Random source for backoff jitter, in [0, 1) (tests). */
  random?: () => number;
}

export interface ClientStats {
  frames: number;
  messages: number;
  bytes: number;
  snapshots: number;
  deltas: number;
  /** DELTAs dropped because they could not apply (no snapshot yet, or seq not greater). */
  droppedDeltas: number;
  snapRequests: number;
  /** BARS applied. */
  barHistories: number;
  /** BARs applied. */
  barUpdates: number;
  /** BARs dropped: awaiting a resync, or of an interval the subscription no longer has. */
  droppedBars: number;
  /** Connections opened (HELLO received). */
  connections: number;
  heartbeats: number;
}

// ---------------------------------------------------------------------------

interface Desired {
  state: SymbolState;
  opts: SubOptions;
  /** The options of the last SUB the server ACKed for the symbol, on any connection. */
  acked?: SubOptions;
  /** The options as sent in the last SUB the server ACKed on this connection: what it applies. */
  server?: SubOptions;
}

/** A SUB awaiting its ACK: per symbol, the `Desired.opts` object it was sent for and what it sent. */
type PendingSub = Map<string, { opts: SubOptions; wire: SubOptions }>;

interface SubWaiter {
  pending: Set<string>;
  result: SubscribeResult;
  resolve: (r: SubscribeResult) => void;
}

const OPEN = 1;

/** Opens a connection and returns the client. */
export function connect(url: string, options: ClientOptions = {}): TickstreamClient {
  return new TickstreamClient(url, options);
}

export class TickstreamClient extends Emitter<ClientEvents> {
  readonly stats: ClientStats = {
    frames: 0,
    messages: 0,
    bytes: 0,
    snapshots: 0,
    deltas: 0,
    droppedDeltas: 0,
    snapRequests: 0,
    barHistories: 0,
    barUpdates: 0,
    droppedBars: 0,
    connections: 0,
    heartbeats: 0,
  };
  /** Field table of the current connection (from HELLO). */
  fields: string[] = [...FIELDS_V1];
  serverId = "";
  heartbeatMs = 0;
  /** Last measured application-level round trip (ms), or NaN. */
  lastRttMs = NaN;
  /** Estimated server clock − local clock (µs), from PONGs; 0 until measured. */
  clockOffsetUs = 0;

  private readonly url: string;
  private readonly opts: ClientOptions;
  private readonly WS: WebSocketCtor;
  private readonly random: () => number;
  private ws: WebSocketLike | null = null;
  private phase: "idle" | "connecting" | "open" | "waiting" | "closed" = "idle";
  private everLive = false;
  private userClosed = false;
  private attempt = 0;
  private helloAt = 0;
  private lastRx = 0;
  private silent = false;
  private feed: FeedState | string = "live";
  private feedDetail = "";
  private lastReason = "";
  private closeCode: number | undefined;
  private retryInMs: number | undefined;
  private nextId = 1;
  private desired = new Map<string, Desired>();
  private sidMap = new Map<number, SymbolState>();
  /** SUBs awaiting their ACK: each symbol with the `Desired.opts` object the SUB was sent for. */
  private pendingSubs = new Map<number, PendingSub>();
  private pendingSnap = new Set<string>();
  private pings = new Map<number, { sentAt: number; resolve: (r: PingResult) => void; reject: (e: Error) => void }>();
  private waiters: SubWaiter[] = [];
  private hidden = false;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private visSource: VisibilitySource | undefined;
  private readonly onVisibility = (): void => this.handleVisibility();
  private lastStatusKey = "";
  /** Expiry (ms) of the token the connection holds, when it is a JWT with exp. */
  private tokenExpMs: number | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  /** Request id of the AUTH in flight, 0 when none. */
  private authId = 0;
  /** A BARS or BAR came on this connection: the server has bars. */
  private barsSeen = false;
  /** The server answered a SUB with history without BARS (noBarsOnServer). */
  private barsAbsent = false;

  constructor(url: string, options: ClientOptions = {}) {
    super();
    this.url = url;
    this.opts = options;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!WS) throw new Error("tickstream: no WebSocket implementation; pass options.WebSocket");
    this.WS = WS;
    this.random = options.random ?? Math.random;
    if (options.visibility !== false) {
      const doc = options.visibility?.document ?? (globalThis as { document?: VisibilitySource }).document;
      if (doc && typeof doc.addEventListener === "function") {
        this.visSource = doc;
        this.hidden = doc.visibilityState === "hidden";
        doc.addEventListener("visibilitychange", this.onVisibility);
      }
    }
    // Start on the next tick so that listeners attached right after connect() see "connecting".
    queueMicrotask(() => {
      if (!this.userClosed) void this.open();
    });
    this.phase = "connecting";
  }

  // ----- public API --------------------------------------------------------

  /** Current combined status. */
  get status(): Status {
    switch (this.phase) {
      case "closed":
        return "closed";
      case "open":
        return this.feed !== "live" || this.silent ? "stale" : "live";
      default:
        // "connecting" only for the very first attempt; every retry is "reconnecting".
        return this.everLive || this.attempt > 0 ? "reconnecting" : "connecting";
    }
  }

  /** Feed state from the last STATUS message ("live" when none was received on this connection). */
  get feedState(): string {
    return this.feed;
  }

  /** True while the page is hidden and the subscriptions are throttled/paused. */
  get paused(): boolean {
    return this.hidden && this.visSource !== undefined;
  }

  /** State of a subscribed symbol. */
  state(symbol: string): SymbolState | undefined {
    return this.desired.get(symbol)?.state;
  }

  /**
   * Whether the server of this connection sends bars: true once a BARS or BAR came, false once
   * it answered a SUB asking for history with a DELTA and no BARS (a server without bars, or
   * older than them), undefined until either.
   */
  get barsAvailable(): boolean | undefined {
    return this.barsSeen ? true : this.barsAbsent ? false : undefined;
  }

  /** The bars held for a subscribed symbol, oldest first (empty when none; see `state(s).bars`). */
  bars(symbol: string): readonly Bar[] {
    return this.desired.get(symbol)?.state.bars.list ?? [];
  }

  /** All subscribed symbols and their states, in subscription order. */
  states(): Map<string, SymbolState> {
    const m = new Map<string, SymbolState>();
    for (const [k, d] of this.desired) m.set(k, d.state);
    return m;
  }

  /** Subscribed symbols, in subscription order. */
  symbols(): string[] {
    return [...this.desired.keys()];
  }

  /**
   * Subscribes to `symbols` (or replaces their options). Sent now when connected, and
   * again after every reconnect. Resolves when the server ACKed (or rejected) every symbol;
   * when the client is closed first, the remaining symbols are reported rejected with code 0.
   */
  subscribe(symbols: string | string[], opts: SubOptions = {}): Promise<SubscribeResult> {
    const list = dedupe(typeof symbols === "string" ? [symbols] : symbols);
    const result: SubscribeResult = { accepted: [], rejected: [] };
    const valid: string[] = [];
    for (const s of list) {
      if (!isValidSymbol(s)) {
        result.rejected.push({ symbol: s, code: 400, message: "invalid symbol" });
        continue;
      }
      valid.push(s);
    }
    const merged: SubOptions = {
      maxHz: opts.maxHz ?? this.opts.maxHz,
      fields: opts.fields ?? this.opts.fields,
    };
    if (opts.snap === false) merged.snap = false;
    // Passed on as given: the server refuses bad combinations with an ERROR 400 that names them.
    if (opts.bars !== undefined) merged.bars = opts.bars;
    if (opts.barCount !== undefined) merged.barCount = opts.barCount;
    if (opts.barSince !== undefined) merged.barSince = opts.barSince;
    for (const s of valid) {
      const d = this.desired.get(s);
      if (d) {
        d.opts = merged;
        d.state.error = undefined;
      } else {
        this.desired.set(s, { state: new SymbolState(s), opts: merged });
      }
    }
    if (valid.length === 0) return Promise.resolve(result);
    const p = new Promise<SubscribeResult>((resolve) => {
      this.waiters.push({ pending: new Set(valid), result, resolve });
    });
    if (this.isOpen() && !(this.hidden && this.pauseMode() === "unsubscribe")) {
      this.sendSub(valid, this.wireOpts(merged));
    }
    return p;
  }

  /** Unsubscribes and forgets the symbols' state. */
  unsubscribe(symbols: string | string[]): void {
    const list = dedupe(typeof symbols === "string" ? [symbols] : symbols).filter((s) => this.desired.has(s));
    if (list.length === 0) return;
    for (const s of list) {
      const d = this.desired.get(s)!;
      if (d.state.sid >= 0 && this.sidMap.get(d.state.sid) === d.state) this.sidMap.delete(d.state.sid);
      this.desired.delete(s);
      this.pendingSnap.delete(s);
    }
    this.settleWaiters(list, 0, "unsubscribed");
    if (this.isOpen()) this.send([Op.UNSUB, this.id(), list]);
  }

  /** Asks for fresh SNAPSHOTs of subscribed symbols (op 3). */
  resnapshot(symbols?: string[]): void {
    const list = (symbols ?? this.symbols()).filter((s) => this.desired.has(s));
    if (list.length === 0 || !this.isOpen()) return;
    for (const s of list) this.pendingSnap.add(s);
    this.stats.snapRequests += list.length;
    this.sendSnap(list);
  }

  /** Application-level PING (op 4). Rejects when the connection closes first. */
  ping(): Promise<PingResult> {
    if (!this.isOpen()) return Promise.reject(new Error("tickstream: not connected"));
    const id = this.id();
    const t = nowMs();
    return new Promise<PingResult>((resolve, reject) => {
      this.pings.set(id, { sentAt: t, resolve, reject });
      this.send([Op.PING, id, t]);
    });
  }

  /** Closes the connection for good. */
  close(): void {
    if (this.phase === "closed") return;
    this.userClosed = true;
    this.visSource?.removeEventListener("visibilitychange", this.onVisibility);
    const ws = this.ws;
    this.teardown("closed by client");
    if (ws) {
      try {
        ws.close(CloseCode.NORMAL, "client closed");
      } catch {
        /* ignore */
      }
    }
    this.phase = "closed";
    this.lastReason = "closed by client";
    this.settleWaiters(null, 0, "client closed");
    this.emitStatus(true);
  }

  // ----- connection lifecycle ------------------------------------------------

  private async open(): Promise<void> {
    this.retryTimer = undefined;
    this.retryInMs = undefined;
    this.phase = "connecting";
    this.emitStatus();
    let token = this.opts.token;
    if (this.opts.getToken) {
      try {
        token = await this.opts.getToken();
      } catch (e) {
        this.emit("error", { kind: "auth", code: 0, message: `getToken failed: ${(e as Error).message}` });
        this.scheduleReconnect("getToken failed");
        return;
      }
      if (this.userClosed) return;
    }
    this.tokenExpMs = tokenExpiryMs(token);
    let ws: WebSocketLike;
    try {
      ws = new this.WS(buildUrl(this.url, token), this.opts.format === "json" ? SUBPROTOCOL_JSON : SUBPROTOCOL);
    } catch (e) {
      this.emit("error", { kind: "transport", code: 0, message: `cannot open WebSocket: ${(e as Error).message}` });
      this.scheduleReconnect("cannot open WebSocket");
      return;
    }
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.lastRx = nowMs();
      this.resubscribeAll();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.onFrame(ev.data);
    };
    ws.onerror = () => {
      /* the close event follows and carries the code */
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onSocketClosed(ev.code, ev.reason || `closed (${ev.code})`);
    };
    const timeout = this.opts.heartbeat?.connectTimeoutMs ?? 10000;
    this.connectTimer = setTimeout(() => {
      if (this.ws === ws && this.phase !== "open") this.abort(4000, `no HELLO within ${timeout} ms`);
    }, timeout);
  }

  private onSocketClosed(code: number, reason: string): void {
    const wasOpenFor = this.phase === "open" ? nowMs() - this.helloAt : 0;
    this.closeCode = code;
    this.teardown(reason);
    if (this.userClosed) return;
    if (code !== CloseCode.NORMAL && code !== CloseCode.GOING_AWAY && code !== 1005 && code !== 1006) {
      this.emit("error", { kind: "transport", code, message: `connection closed: ${code} ${reason}` });
    }
    // "new credentials" is worth a retry only when getToken can bring them.
    const rule = reconnectRule(code);
    const fatal = rule === "final" || (rule === "new credentials" && !this.opts.getToken);
    if (fatal || this.opts.reconnect === false) {
      this.phase = "closed";
      this.lastReason = reason;
      this.settleWaiters(null, code, reason);
      this.emitStatus(true);
      return;
    }
    const stable = this.opts.reconnect?.stableAfterMs ?? 5000;
    if (wasOpenFor >= stable) this.attempt = 0;
    this.scheduleReconnect(reason);
  }

  private scheduleReconnect(reason: string): void {
    const r = this.opts.reconnect === false ? undefined : this.opts.reconnect;
    const max = r?.maxAttempts ?? Infinity;
    if (this.attempt >= max) {
      this.phase = "closed";
      this.lastReason = `gave up after ${this.attempt} attempts: ${reason}`;
      this.settleWaiters(null, 0, this.lastReason);
      this.emitStatus(true);
      return;
    }
    const delay = backoffDelay(this.attempt, r ?? {}, this.random);
    this.attempt++;
    this.phase = "waiting";
    this.lastReason = reason;
    this.retryInMs = delay;
    this.emitStatus(true);
    this.retryTimer = setTimeout(() => {
      if (!this.userClosed) void this.open();
    }, delay);
  }

  /** Drops the current socket without waiting for its close handshake, then reconnects. */
  private abort(code: number, reason: string): void {
    const ws = this.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch {
        /* ignore */
      }
    }
    this.emit("error", { kind: "transport", code, message: reason });
    this.onSocketClosed(code, reason);
  }

  /** Clears everything tied to one connection. */
  private teardown(reason: string): void {
    this.ws = null;
    clearTimeout(this.connectTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    clearInterval(this.pingTimer);
    clearTimeout(this.renewTimer);
    this.connectTimer = this.retryTimer = this.watchdog = this.pingTimer = this.renewTimer = undefined;
    this.authId = 0;
    this.barsSeen = this.barsAbsent = false;
    this.sidMap.clear();
    this.pendingSubs.clear();
    this.pendingSnap.clear();
    this.silent = false;
    // A new connection starts live; the server sends STATUS on connect when it is not.
    this.feed = "live";
    this.feedDetail = "";
    for (const d of this.desired.values()) {
      d.state.ready = false;
      d.state.seq = -1;
      d.state.sid = -1;
      // The bars stay on show until the next connection's BARS, which brings only the bars
      // from the newest one held on.
      const bars = d.state.bars;
      if (bars.ready && bars.last) bars.resumeFrom = bars.last.t;
      bars.ready = false;
      bars.seq = -1;
      d.state.awaitingBars = false;
      d.server = undefined;
    }
    for (const p of this.pings.values()) p.reject(new Error(`tickstream: connection lost (${reason})`));
    this.pings.clear();
  }

  private startWatchdog(): void {
    clearInterval(this.watchdog);
    const hb = this.heartbeatMs;
    if (!(hb > 0)) return;
    const missed = this.opts.heartbeat?.missed ?? 3;
    const staleAfter = this.opts.heartbeat?.staleAfterMissed ?? 2;
    const tick = Math.max(50, Math.min(1000, hb / 4));
    this.watchdog = setInterval(() => {
      const gap = nowMs() - this.lastRx;
      if (gap >= missed * hb) {
        this.abort(4000, `no message for ${Math.round(gap)} ms (${missed} heartbeats of ${hb} ms)`);
        return;
      }
      const silent = staleAfter > 0 && gap >= staleAfter * hb;
      if (silent !== this.silent) {
        this.silent = silent;
        this.emitStatus();
      }
    }, tick);
  }

  // ----- inbound -------------------------------------------------------------

  private onFrame(data: unknown): void {
    this.lastRx = nowMs();
    this.stats.frames++;
    let msgs: ServerMessage[];
    if (typeof data === "string") {
      this.stats.bytes += data.length;
      msgs = decodeFrame(data, (e) => this.protocolError(e));
    } else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      this.stats.bytes += (data as ArrayBuffer).byteLength;
      msgs = decodeFrame(data as ArrayBuffer, (e) => this.protocolError(e));
    } else {
      this.protocolError(new ProtocolError(`unexpected frame type ${Object.prototype.toString.call(data)}`));
      return;
    }
    if (this.silent) {
      this.silent = false;
      this.emitStatus();
    }
    const wantMessages = this.hasListeners("message");
    for (const m of msgs) {
      this.stats.messages++;
      if (wantMessages) this.emit("message", m);
      this.dispatch(m);
      if (this.ws === null) return; // closed while dispatching
    }
  }

  private dispatch(m: ServerMessage): void {
    switch (m.op) {
      case Op.DELTA:
        this.onDelta(m);
        break;
      case Op.SNAPSHOT:
        this.onSnapshot(m);
        break;
      case Op.BAR:
        this.onBar(m);
        break;
      case Op.BARS:
        this.onBars(m);
        break;
      case Op.HEARTBEAT:
        this.stats.heartbeats++;
        break;
      case Op.HELLO:
        this.onHello(m);
        break;
      case Op.ACK:
        this.onAck(m);
        break;
      case Op.STATUS:
        if (m.state !== this.feed || m.detail !== this.feedDetail) {
          this.feed = m.state;
          this.feedDetail = m.detail;
          this.emitStatus();
        }
        break;
      case Op.ERROR:
        this.onError(m);
        break;
      case Op.PONG:
        this.onPong(m);
        break;
      case Op.AUTHED:
        this.onAuthed(m);
        break;
    }
  }

  private onHello(m: HelloMsg): void {
    if (this.phase === "open") {
      this.protocolError(new ProtocolError("second HELLO on one connection"));
    }
    if (m.version !== PROTOCOL_VERSION) {
      this.protocolError(new ProtocolError(`server speaks protocol version ${m.version}, client ${PROTOCOL_VERSION}`));
    }
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.fields = m.fields.length > 0 ? m.fields : [...FIELDS_V1];
    this.serverId = m.serverId;
    this.heartbeatMs = m.heartbeatMs;
    this.phase = "open";
    this.helloAt = nowMs();
    this.everLive = true;
    this.closeCode = undefined;
    this.lastReason = "";
    this.stats.connections++;
    this.startWatchdog();
    const pi = this.opts.pingIntervalMs ?? 0;
    if (pi > 0) {
      this.pingTimer = setInterval(() => {
        this.ping().catch(() => {});
      }, pi);
      this.ping().catch(() => {});
    }
    this.scheduleRenewal();
    this.emit("hello", m);
    this.emitStatus();
  }

  // ----- token renewal (AUTH, op 5) ----------------------------------------------

  /** Arms the renewal at 80% of the current token's remaining life, or `inMs` when given. */
  private scheduleRenewal(inMs?: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (!this.opts.getToken || this.opts.renewToken === false || this.tokenExpMs === undefined) return;
    const left = this.tokenExpMs - nowMs();
    if (left <= 0) return; // the server closes with 4001, and the reconnect fetches a token
    this.renewTimer = setTimeout(() => void this.renew(), inMs ?? left * 0.8);
  }

  private async renew(): Promise<void> {
    this.renewTimer = undefined;
    const ws = this.ws;
    let token: string;
    try {
      token = await this.opts.getToken!();
    } catch (e) {
      this.emit("error", { kind: "auth", code: 0, message: `getToken failed: ${(e as Error).message}` });
      this.retryRenewal();
      return;
    }
    if (this.ws !== ws || !this.isOpen()) return;
    const exp = tokenExpiryMs(token);
    if (exp !== undefined && this.tokenExpMs !== undefined && exp <= this.tokenExpMs) {
      this.emit("error", { kind: "auth", code: 0, message: "getToken returned no token that lasts longer than the current one" });
      this.retryRenewal();
      return;
    }
    const id = this.id();
    this.authId = id;
    this.send([Op.AUTH, id, token]);
  }

  /** After a failed renewal: again halfway to the expiry, but at most 30 s later. */
  private retryRenewal(): void {
    if (this.tokenExpMs === undefined) return;
    this.scheduleRenewal(Math.min(30_000, (this.tokenExpMs - nowMs()) / 2));
  }

  private onAuthed(m: AuthedMsg): void {
    if (m.id !== this.authId) return;
    this.authId = 0;
    this.tokenExpMs = m.expiresUs > 0 ? m.expiresUs / 1000 : undefined;
    this.scheduleRenewal();
  }

  /** ERRORs answering the AUTH in flight: 401 keeps the old token; 403 lists dropped symbols. */
  private onAuthError(m: ErrorMsg): void {
    if (m.code === 403) {
      for (const s of m.symbols) {
        const d = this.desired.get(s);
        if (!d) continue;
        const st = d.state;
        if (st.sid >= 0 && this.sidMap.get(st.sid) === st) this.sidMap.delete(st.sid);
        st.sid = -1;
        st.ready = false;
        st.error = { code: m.code, message: m.message };
      }
      return;
    }
    this.authId = 0;
    this.retryRenewal();
  }

  private onAck(m: AckMsg): void {
    const requested = this.pendingSubs.get(m.id);
    this.pendingSubs.delete(m.id);
    const accepted: string[] = [];
    for (const [sym, sid] of m.symbols) {
      const d = this.desired.get(sym);
      if (!d) continue; // unsubscribed meanwhile
      const st = d.state;
      if (st.sid >= 0 && st.sid !== sid && this.sidMap.get(st.sid) === st) this.sidMap.delete(st.sid);
      st.sid = sid;
      st.error = undefined;
      const sent = requested?.get(sym);
      if (sent) {
        d.acked = sent.opts;
        this.applyBarOptions(st, sent.wire, sent.opts);
        d.server = sent.wire;
      }
      this.sidMap.set(sid, st);
      accepted.push(sym);
    }
    this.resolveWaiters(accepted);
    // Symbols of this SUB that were neither accepted nor named in an ERROR stay pending
    // until the next ACK; report them as rejected so that no promise hangs.
    if (requested) {
      const acked = new Set(m.symbols.map((p) => p[0]));
      const missing = [...requested.keys()].filter((s) => !acked.has(s) && this.desired.get(s)?.state.error === undefined);
      if (missing.length > 0) this.settleWaiters(missing, 0, "not acknowledged by the server");
    }
  }

  private onError(m: ErrorMsg): void {
    this.emit("error", { kind: "server", code: m.code, message: m.message, id: m.id, symbols: m.symbols });
    if (m.id !== 0 && m.id === this.authId) {
      this.onAuthError(m);
      return;
    }
    const sent = m.id !== 0 ? this.pendingSubs.get(m.id) : undefined;
    if (!sent) return;
    if (m.symbols.length > 0) {
      for (const s of m.symbols) {
        const d = this.desired.get(s);
        if (d) d.state.error = { code: m.code, message: m.message };
      }
      this.settleWaiters(m.symbols, m.code, m.message);
      return;
    }
    // No symbol list: the server refused the whole SUB (its options) and sends no ACK. It
    // kept what it had, so the client does too, or the refused options would be re-sent
    // (and refused again, dropping a live subscription) on every reconnect.
    this.pendingSubs.delete(m.id);
    const refused: string[] = [];
    for (const [s, { opts }] of sent) {
      const d = this.desired.get(s);
      if (!d || d.opts !== opts) continue; // unsubscribed, or a later SUB replaced the options
      refused.push(s);
      if (d.acked) d.opts = d.acked;
      else this.desired.delete(s);
    }
    this.settleWaiters(refused, m.code, m.message);
  }

  private onPong(m: PongMsg): void {
    const p = this.pings.get(m.id);
    if (!p) return;
    this.pings.delete(m.id);
    const now = nowMs();
    const rttMs = now - p.sentAt;
    this.lastRttMs = rttMs;
    const clockOffsetUs = m.serverTimeUs > 0 ? Math.round(m.serverTimeUs - (p.sentAt + rttMs / 2) * 1000) : 0;
    if (m.serverTimeUs > 0) this.clockOffsetUs = clockOffsetUs;
    p.resolve({ rttMs, serverTimeUs: m.serverTimeUs, clockOffsetUs });
  }

  private onSnapshot(m: SnapshotMsg): void {
    const st = this.sidMap.get(m.sid);
    if (!st) return; // not (or no longer) subscribed
    this.stats.snapshots++;
    if (st.ready && m.seq < st.seq) {
      this.protocolError(
        new ProtocolError(`SNAPSHOT for ${st.symbol} has seq ${m.seq} below the previous message's ${st.seq}`),
      );
    }
    this.pendingSnap.delete(st.symbol);
    const next = this.decodeState(m.state);
    const changed: string[] = [];
    const v = st.values;
    for (const k of Object.keys(v)) {
      if (!(k in next)) {
        delete v[k];
        changed.push(k);
      }
    }
    for (const k in next) {
      if (v[k] !== next[k]) {
        v[k] = next[k];
        changed.push(k);
      }
    }
    st.seq = m.seq;
    st.ready = true;
    st.updatedAt = Date.now();
    this.emit("update", { symbol: st.symbol, state: st, changed, snapshot: true, seq: m.seq });
    // The server follows the SNAPSHOT of a subscription with history (SUB, re-SUB, SNAP) by a BARS.
    const o = this.desired.get(st.symbol)?.server;
    if (o?.bars !== undefined && !this.barsAbsent) {
      if (hasHistory(o)) st.awaitingBars = true;
      else if (!st.bars.ready) this.startLiveBars(st, o.bars);
    }
  }

  /**
   * Sets a symbol's bars up for the options `o` of a SUB the server has just ACKed (`asked`: the
   * subscription's own, whose barCount bounds the bars kept, also when the SUB resumed with
   * barSince): a new interval starts empty; history arrives with the next BARS (right after the
   * ACK when `snap` is false).
   */
  private applyBarOptions(st: SymbolState, o: SubOptions, asked: SubOptions): void {
    const series = st.bars;
    if (hasHistory(o) || o.bars !== series.interval) {
      series.limit = asked.barCount !== undefined ? Math.min(asked.barCount, MAX_BARS) : MAX_BARS;
    }
    // A SUB that resumed (its barSince is not the subscription's) leaves the server with a
    // partial history option; one that asks for no history leaves the server's option as it was.
    if (hasHistory(o)) series.partial = o.barSince !== undefined && o.barSince !== asked.barSince;
    if (o.bars === undefined) {
      series.reset("");
      series.ready = false;
      st.awaitingBars = false;
      return;
    }
    if (o.bars !== series.interval) {
      series.reset(o.bars);
      series.ready = false;
    }
    if (o.snap === false && !this.barsAbsent) {
      if (hasHistory(o)) st.awaitingBars = true;
      else if (!series.ready) this.startLiveBars(st, o.bars);
    }
  }

  /** Live bars only: no history will come, so the bars start empty from here. */
  private startLiveBars(st: SymbolState, interval: string): void {
    st.bars.reset(interval);
    st.bars.ready = true;
  }

  private onBars(m: BarsMsg): void {
    this.barsSeen = true;
    const st = this.sidMap.get(m.sid);
    if (!st) return;
    const o = this.desired.get(st.symbol)?.server;
    if (!st.ready && o?.snap !== false) {
      this.barsViolation(st, `BARS for ${st.symbol} came before its SNAPSHOT`);
      return;
    }
    const bad = st.bars.history(m);
    if (bad) {
      this.barsViolation(st, `${bad} (${st.symbol})`);
      return;
    }
    st.awaitingBars = false;
    this.stats.barHistories++;
    this.emit("bars", { symbol: st.symbol, state: st, interval: m.interval, bars: st.bars.list, seq: m.seq });
  }

  private onBar(m: BarMsg): void {
    this.barsSeen = true;
    const st = this.sidMap.get(m.sid);
    if (!st) return;
    if (st.awaitingBars) {
      this.barsViolation(st, `BAR for ${st.symbol} came before its BARS`);
      return;
    }
    const series = st.bars;
    if (!series.ready || m.interval !== series.interval) {
      // Awaiting a resync, or sent before a re-SUB changed the interval.
      this.stats.droppedBars++;
      return;
    }
    const r = series.update(m);
    if (typeof r === "object") {
      this.barsViolation(st, `${r.violation} (${st.symbol})`);
      return;
    }
    this.stats.barUpdates++;
    this.emit("bar", { symbol: st.symbol, state: st, interval: m.interval, bar: m.bar, seq: m.seq, appended: r === "appended" });
  }

  /**
   * The server answered SUBs that asked for history without a BARS: it keeps no bars. Said once
   * per connection; no symbol awaits a BARS on it any more (`barsAvailable` is false).
   */
  private noBarsOnServer(): void {
    this.barsAbsent = true;
    for (const d of this.desired.values()) d.state.awaitingBars = false;
    this.protocolError(
      new ProtocolError("the server answered a SUB with bars without BARS: it keeps no bars (a server older than them); no bars on this connection"),
    );
  }

  /**
   * The server broke guarantee 5 for a symbol: its bars are no longer trusted. Reported as a
   * protocol error and repaired like a DELTA out of order, by SNAP: the SNAPSHOT it brings is
   * followed by a fresh BARS (or, for live bars only, the bars start again empty).
   */
  private barsViolation(st: SymbolState, why: string): void {
    this.stats.droppedBars++;
    st.bars.ready = false;
    st.awaitingBars = false;
    const d = this.desired.get(st.symbol);
    if (st.bars.partial && d) {
      // The server would answer a SNAP with a resume's few bars: ask again for the whole history
      // (the SUB's SNAPSHOT resyncs the state too).
      this.protocolError(new ProtocolError(`${why}; subscribing again for the whole history`));
      this.stats.snapRequests++;
      this.sendSub([st.symbol], this.wireOpts(d.opts));
      return;
    }
    this.protocolError(new ProtocolError(`${why}; requesting SNAP`));
    this.requestSnap(st);
  }

  private requestSnap(st: SymbolState): void {
    if (this.pendingSnap.has(st.symbol)) return;
    this.pendingSnap.add(st.symbol);
    this.stats.snapRequests++;
    this.sendSnap([st.symbol]);
  }

  private onDelta(m: DeltaMsg): void {
    const st = this.sidMap.get(m.sid);
    if (!st) return;
    if (!st.ready || m.seq <= st.seq) {
      // Cannot apply: no base state yet, or out of order / duplicate. Resync.
      this.stats.droppedDeltas++;
      if (st.ready) {
        this.protocolError(
          new ProtocolError(`DELTA for ${st.symbol} has seq ${m.seq}, not greater than ${st.seq}; requesting SNAP`),
        );
      }
      this.requestSnap(st);
      return;
    }
    if (st.awaitingBars) {
      if (!this.barsSeen) {
        // Not one BARS or BAR on this connection: a server without bars (one older than them
        // ignores the options), not a broken one. A SNAP would bring no BARS either.
        this.noBarsOnServer();
      } else {
        this.stats.droppedDeltas++;
        this.barsViolation(st, `DELTA for ${st.symbol} came before its BARS`);
        return;
      }
    }
    this.stats.deltas++;
    const fields = this.fields;
    const v = st.values;
    const changed: string[] = [];
    const raw = m.state;
    for (const k in raw) {
      const i = +k;
      const name = fields[i] ?? `#${k}`;
      const val = raw[k];
      if (v[name] !== val) {
        v[name] = val;
        changed.push(name);
      }
    }
    st.seq = m.seq;
    st.updatedAt = Date.now();
    this.emit("update", { symbol: st.symbol, state: st, changed, snapshot: false, seq: m.seq });
  }

  private decodeState(raw: RawState): Quote {
    const out: Quote = {};
    const fields = this.fields;
    for (const k in raw) out[fields[+k] ?? `#${k}`] = raw[k];
    return out;
  }

  private protocolError(e: ProtocolError): void {
    this.emit("error", { kind: "protocol", code: 0, message: e.message });
  }

  // ----- outbound ------------------------------------------------------------

  private isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === OPEN;
  }

  private id(): number {
    const id = this.nextId++;
    if (this.nextId > 0x7fffffff) this.nextId = 1;
    return id;
  }

  /** Sends a command in the connection's subprotocol. */
  private send(cmd: Command): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(this.opts.format === "json" ? JSON.stringify(cmd) : encodeCommand(cmd));
    } catch (e) {
      this.emit("error", { kind: "transport", code: 0, message: `send failed: ${(e as Error).message}` });
    }
  }

  private sendSub(symbols: string[], o: SubOptions): void {
    const id = this.id();
    this.pendingSubs.set(id, new Map(symbols.map((s) => [s, { opts: this.desired.get(s)!.opts, wire: o }])));
    this.send(subCommand(id, symbols, o));
  }

  private sendSnap(symbols: string[]): void {
    const id = this.id();
    this.send([Op.SNAP, id, symbols]);
  }

  private pauseMode(): "throttle" | "unsubscribe" {
    return (this.opts.visibility || undefined)?.mode ?? "throttle";
  }

  /**
   * The options actually sent for a subscription, given the visibility state; `resumeFrom`: the
   * history asks only for the bars from the newest one held (BarSeries.resumeFrom).
   */
  private wireOpts(o: SubOptions, snap = true, resumeFrom?: number): SubOptions {
    const w: SubOptions = { ...o };
    if (resumeFrom !== undefined && snap && hasHistory(o)) {
      delete w.barCount;
      w.barSince = resumeFrom;
    }
    if (!snap) {
      w.snap = false;
      if (o.snap !== false) {
        // The client's own re-SUB that only changes the pace (page hidden): the server keeps the
        // subscription's bars, so no history is asked again.
        delete w.barCount;
        delete w.barSince;
      }
    }
    if (this.hidden && this.visSource) {
      const hz = (this.opts.visibility || undefined)?.hiddenMaxHz ?? 1;
      w.maxHz = o.maxHz && o.maxHz > 0 ? Math.min(o.maxHz, hz) : hz;
    }
    return w;
  }

  /** Sends SUBs for every desired symbol, grouped by identical options. */
  private resubscribeAll(snap = true): void {
    if (this.hidden && this.visSource && this.pauseMode() === "unsubscribe") return;
    const groups = new Map<string, { opts: SubOptions; symbols: string[] }>();
    for (const [sym, d] of this.desired) {
      const o = this.wireOpts(d.opts, snap && d.opts.snap !== false, d.state.bars.resumeFrom);
      const key = JSON.stringify([o.snap, o.maxHz, o.fields, o.bars, o.barCount, o.barSince]);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { opts: o, symbols: [] }));
      g.symbols.push(sym);
    }
    for (const g of groups.values()) {
      // Keep SUBs reasonably small.
      for (let i = 0; i < g.symbols.length; i += 500) this.sendSub(g.symbols.slice(i, i + 500), g.opts);
    }
  }

  private handleVisibility(): void {
    const hidden = this.visSource?.visibilityState === "hidden";
    if (hidden === this.hidden) return;
    if (!this.isOpen()) {
      this.hidden = hidden; // applied when the next connection subscribes
      return;
    }
    if (hidden) {
      if (this.pauseMode() === "unsubscribe") {
        const syms = this.symbols();
        this.hidden = true;
        for (const d of this.desired.values()) {
          if (d.state.sid >= 0) this.sidMap.delete(d.state.sid);
          d.state.ready = false;
          const bars = d.state.bars;
          if (bars.ready && bars.last) bars.resumeFrom = bars.last.t;
          bars.ready = false;
        }
        if (syms.length) this.send([Op.UNSUB, this.id(), syms]);
      } else {
        this.hidden = true;
        this.resubscribeAll(false); // same subscriptions, low maxHz, no snapshot
      }
    } else {
      this.hidden = false;
      this.resubscribeAll(true); // full rate again, with fresh snapshots
    }
    this.emitStatus(true);
  }

  // ----- promises for subscribe() -------------------------------------------------

  private resolveWaiters(accepted: string[]): void {
    if (this.waiters.length === 0 || accepted.length === 0) return;
    for (const w of this.waiters) {
      for (const s of accepted) {
        if (w.pending.delete(s)) w.result.accepted.push(s);
      }
    }
    this.flushWaiters();
  }

  /** Marks symbols (all when null) as rejected in every waiting subscribe() promise. */
  private settleWaiters(symbols: string[] | null, code: number, message: string): void {
    if (this.waiters.length === 0) return;
    for (const w of this.waiters) {
      const list = symbols ?? [...w.pending];
      for (const s of list) {
        if (w.pending.delete(s)) w.result.rejected.push({ symbol: s, code, message });
      }
    }
    this.flushWaiters();
  }

  private flushWaiters(): void {
    const keep: SubWaiter[] = [];
    for (const w of this.waiters) {
      if (w.pending.size === 0) w.resolve(w.result);
      else keep.push(w);
    }
    this.waiters = keep;
  }

  // ----- status --------------------------------------------------------------------

  private emitStatus(force = false): void {
    const status = this.status;
    let detail: string;
    if (this.phase === "open") {
      detail = this.feed !== "live" ? this.feedDetail : this.silent ? "no data from the server" : "";
    } else {
      detail = this.lastReason;
    }
    const key = `${status}|${this.feed}|${detail}|${this.silent}`;
    if (!force && key === this.lastStatusKey) return;
    this.lastStatusKey = key;
    const ev: StatusEvent = {
      status,
      feed: this.feed,
      detail,
      silent: this.silent,
      attempt: this.phase === "waiting" || this.phase === "connecting" ? this.attempt : 0,
    };
    if (this.retryInMs !== undefined && this.phase === "waiting") ev.retryInMs = this.retryInMs;
    if (this.closeCode !== undefined && this.phase !== "open") ev.closeCode = this.closeCode;
    this.emit("status", ev);
  }
}

// ---------------------------------------------------------------------------

/** True when SUB options ask for a history (BARS). */
function hasHistory(o: SubOptions): boolean {
  return o.bars !== undefined && (o.barCount !== undefined || o.barSince !== undefined);
}

function nowMs(): number {
  return Date.now();
}

function dedupe(list: string[]): string[] {
  return [...new Set(list.map((s) => s.trim()).filter((s) => s !== ""))];
}

/** Resolves relative and http(s) URLs to ws(s) and appends the token. */
export function buildUrl(url: string, token?: string): string {
  let u: URL;
  const loc = (globalThis as { location?: { href: string } }).location;
  try {
    u = loc ? new URL(url, loc.href) : new URL(url);
  } catch {
    throw new Error(`tickstream: invalid URL ${url}`);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (token) u.searchParams.set("token", token);
  return u.toString();
}
