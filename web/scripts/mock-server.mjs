#!/usr/bin/env node
// A small protocol-v1 mock of `tickstream serve` for developing the dashboard without the
// Go server: static files from dist/app, /readyz, /api/v1/symbols, /api/v1/snapshot,
// POST /api/v1/demo/feed?state=down|up, /api/v1/bars/intervals, and /ws (tickstream.v1
// MessagePack) with a random walk of N symbols at R updates/s, and 1-minute bars (BARS, BAR)
// of the last --history-hours (default 8) before the start, then live. Several messages are packed into one frame, like the
// server may do. It is NOT the reference implementation: the Go server is.
//
//   node scripts/mock-server.mjs --listen 127.0.0.1:8080 [--symbols 500 --rate 2000]
import { encode, decodeMulti } from "@msgpack/msgpack";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocketServer } from "ws";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const [host, port] = (args.listen ?? "127.0.0.1:8080").split(":");
const NSYM = Number(args.symbols ?? 500);
const RATE = Number(args.rate ?? 2000);
const HEARTBEAT_MS = Number(args.heartbeat ?? 5000);
const FIELDS = ["ts", "bid", "bidSize", "ask", "askSize", "last", "lastSize", "volume", "open", "high", "low", "prevClose"];
const F = Object.fromEntries(FIELDS.map((f, i) => [f, i]));
const DIST = join(fileURLToPath(new URL(".", import.meta.url)), "..", "dist", "app");

const REAL = "AAPL MSFT NVDA AMZN GOOGL GOOG META TSLA AVGO AMD NFLX ADBE CRM ORCL INTC CSCO QCOM TXN IBM JPM BAC WFC GS MS C V MA PYPL KO PEP WMT COST HD NKE MCD DIS XOM CVX PFE MRK JNJ UNH ABBV LLY T VZ BA CAT GE MMM".split(" ");
const symbols = [...REAL];
for (let i = 0; symbols.length < NSYM; i++) {
  const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const s = a[i % 26] + a[Math.floor(i / 26) % 26] + a[Math.floor(i / 676) % 26] + "X";
  if (!symbols.includes(s)) symbols.push(s);
}
symbols.length = NSYM;
symbols.sort();

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const r2 = (v) => Math.round(v * 100) / 100;
const store = new Map(); // sym -> {seq, state: {field: value}}
for (const s of symbols) {
  const p = 20 + Math.random() * 480;
  store.set(s, {
    seq: 1,
    state: { ts: nowUs(), bid: r2(p - 0.01), bidSize: 100, ask: r2(p + 0.01), askSize: 200, last: r2(p), lastSize: 100, volume: 1000, open: r2(p), high: r2(p), low: r2(p), prevClose: r2(p * (1 + (Math.random() - 0.5) * 0.04)) },
  });
}
// 1-minute bars per symbol: a random walk back from the current price, one bar a minute.
const BAR_US = 60_000_000;
const HISTORY_BARS = Math.round(Number(args["history-hours"] ?? 8) * 60);
const bars = new Map(); // sym -> [{t, o, h, l, c, v, n}], oldest first
for (const s of symbols) {
  const list = [];
  let c = store.get(s).state.last;
  const now = Math.floor(nowUs() / BAR_US) * BAR_US;
  for (let i = 1; i <= HISTORY_BARS; i++) {
    const o = r2(c * (1 + (Math.random() - 0.5) * 0.004));
    list.push({ t: now - i * BAR_US, o, h: r2(Math.max(o, c) * 1.001), l: r2(Math.min(o, c) * 0.999), c, v: 100 * (1 + Math.floor(Math.random() * 50)), n: 1 + Math.floor(Math.random() * 10) });
    c = o;
  }
  bars.set(s, list.reverse());
}
const tuple = (b) => [b.t, b.o, b.h, b.l, b.c, b.v, b.n];

/** Counts a trade into the symbol's newest bar or starts one; returns the bar. */
function trade(sym, ts, price, size) {
  const list = bars.get(sym);
  const t = Math.floor(ts / BAR_US) * BAR_US;
  let b = list[list.length - 1];
  if (b && b.t >= t) {
    b.h = Math.max(b.h, price);
    b.l = Math.min(b.l, price);
    b.c = price;
    b.v += size;
    b.n++;
  } else {
    b = { t, o: price, h: price, l: price, c: price, v: size, n: 1 };
    list.push(b);
    if (list.length > 1440) list.shift();
  }
  return b;
}

let feed = "live";
const conns = new Set();

function step(sym) {
  const e = store.get(sym);
  const st = e.state;
  const p = Math.max(1, st.last * (1 + (Math.random() - 0.5) * 0.002));
  const changed = {
    ts: nowUs(), last: r2(p), bid: r2(p - 0.01), ask: r2(p + 0.01),
    lastSize: 100 * (1 + Math.floor(Math.random() * 9)), bidSize: 100 * (1 + Math.floor(Math.random() * 20)),
  };
  changed.volume = st.volume + changed.lastSize;
  if (changed.last > st.high) changed.high = changed.last;
  if (changed.last < st.low) changed.low = changed.last;
  const diff = {};
  for (const [k, v] of Object.entries(changed)) if (st[k] !== v) { st[k] = v; diff[F[k]] = v; }
  e.seq++;
  const bar = trade(sym, changed.ts, changed.last, changed.lastSize);
  for (const c of conns) c.onUpdate(sym, e.seq, diff, bar);
}

// ~RATE updates/s in 10 ms ticks
let acc = 0;
setInterval(() => {
  if (feed !== "live") return;
  acc += RATE / 100;
  while (acc >= 1) { acc--; step(symbols[Math.floor(Math.random() * symbols.length)]); }
  for (const c of conns) c.flush();
}, 10);

function indexed(state) {
  const o = {};
  for (const [k, v] of Object.entries(state)) o[F[k]] = v;
  return o;
}

class Conn {
  constructor(ws) {
    this.ws = ws;
    this.out = [];
    this.sids = new Map(); // sym -> sid
    this.subs = new Map(); // sym -> {seq, opts}
    this.nextSid = 1;
    this.lastSent = Date.now();
    this.send([20, 1, "mock-node", HEARTBEAT_MS, FIELDS]);
    if (feed !== "live") this.send([27, feed, "demo: feed down"]);
    this.flush();
    this.hb = setInterval(() => { if (Date.now() - this.lastSent >= HEARTBEAT_MS) { this.send([26, nowUs()]); this.flush(); } }, 250);
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("close", () => { clearInterval(this.hb); conns.delete(this); });
  }
  send(m) { this.out.push(encode(m)); }
  flush() {
    if (this.out.length === 0) return;
    const total = this.out.reduce((n, b) => n + b.length, 0);
    const buf = new Uint8Array(total);
    let o = 0;
    for (const b of this.out) { buf.set(b, o); o += b.length; }
    this.out = [];
    this.ws.send(buf);
    this.lastSent = Date.now();
  }
  snapshot(sym) {
    const e = store.get(sym);
    const sid = this.sids.get(sym);
    const opts = this.subs.get(sym)?.opts;
    this.send([22, sid, e.seq, indexed(e.state)]);
    if (opts?.bars && (opts.barCount || opts.barSince)) {
      let list = bars.get(sym).filter((b) => !opts.barSince || b.t >= opts.barSince);
      if (opts.barCount) list = list.slice(-opts.barCount);
      this.send([29, sid, e.seq, opts.bars, list.map(tuple)]);
    }
  }
  onUpdate(sym, seq, diff, bar) {
    const s = this.subs.get(sym);
    if (!s) return;
    s.seq = seq;
    this.send([23, this.sids.get(sym), seq, diff]);
    if (s.opts?.bars) this.send([30, this.sids.get(sym), seq, s.opts.bars, tuple(bar)]);
  }
  onMessage(data) {
    let msgs;
    try { msgs = [...decodeMulti(data)]; } catch { this.send([25, 0, 400, "undecodable"]); this.flush(); return; }
    for (const m of msgs) {
      const [op, id, list, opts] = m;
      if (op === 1) {
        const ok = [], bad = [];
        for (const s of list) (store.has(s) ? ok : bad).push(s);
        if (bad.length) this.send([25, id, 404, "unknown symbol", bad]);
        if (opts?.bars !== undefined && opts.bars !== "1m") {
          this.send([25, id, 400, `bad request: option bars: unknown interval ${JSON.stringify(opts.bars)} (this server has 1m)`]);
          continue;
        }
        for (const s of ok) if (!this.sids.has(s)) this.sids.set(s, this.nextSid++);
        this.send([21, id, ok.map((s) => [s, this.sids.get(s)])]);
        for (const s of ok) {
          const had = this.subs.has(s);
          this.subs.set(s, { seq: store.get(s).seq, opts });
          if (!opts || opts.snap !== false || !had) this.snapshot(s);
        }
      } else if (op === 2) {
        for (const s of list) this.subs.delete(s);
      } else if (op === 3) {
        for (const s of list) if (this.subs.has(s)) this.snapshot(s);
      } else if (op === 4) {
        this.send([24, id, list, nowUs()]);
      } else {
        this.send([25, id ?? 0, 400, `unknown op ${op}`]);
      }
    }
    this.flush();
  }
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
const server = createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  const json = (code, body) => { res.writeHead(code, { "Content-Type": "application/json" }); res.end(JSON.stringify(body)); };
  if (url.pathname === "/readyz" || url.pathname === "/healthz") return json(200, { ok: true });
  if (url.pathname === "/api/v1/symbols") {
    const prefix = url.searchParams.get("prefix") ?? "";
    const limit = Number(url.searchParams.get("limit") ?? 50);
    const all = symbols.filter((s) => s.startsWith(prefix));
    return json(200, { symbols: all.slice(0, limit), total: all.length });
  }
  if (url.pathname === "/api/v1/snapshot") {
    const out = {};
    for (const s of (url.searchParams.get("symbols") ?? "").split(",")) { const e = store.get(s); if (e) out[s] = { seq: e.seq, state: e.state }; }
    return json(200, { snapshots: out });
  }
  if (url.pathname === "/api/v1/bars/intervals") return json(200, [{ name: "1m", seconds: 60, keep: 1440 }]);
  if (url.pathname === "/api/v1/demo/feed" && req.method === "POST") {
    const st = url.searchParams.get("state");
    feed = st === "down" ? "stale" : "live";
    for (const c of conns) { c.send([27, feed, feed === "live" ? "" : "demo: feed down"]); c.flush(); }
    return json(200, { feed });
  }
  try {
    const p = url.pathname === "/" ? "/index.html" : url.pathname;
    const file = normalize(join(DIST, p));
    if (!file.startsWith(DIST)) throw new Error("bad path");
    const data = await readFile(file);
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(data);
  } catch {
    res.writeHead(404).end("not found");
  }
});
const wss = new WebSocketServer({
  noServer: true,
  handleProtocols: (protocols) => (protocols.has("tickstream.v1") ? "tickstream.v1" : false),
});
server.on("upgrade", (req, socket, head) => {
  if (!req.url.startsWith("/ws")) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => conns.add(new Conn(ws)));
});
server.listen(Number(port), host, () => console.log(`mock tickstream on http://${host}:${port} (${NSYM} symbols, ${RATE}/s)`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
