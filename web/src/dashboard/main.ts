/**
 * tickstream dashboard: a watchlist of live quotes over the v1 WebSocket protocol.
 *
 * Updates from the SDK only mark symbols dirty; the DOM is updated once per animation
 * frame for the symbols that changed, so 200 symbols at thousands of updates per second
 * cost one small batch of text/class writes per frame.
 */
import "./style.css";
import { CloseCode, connect, type StatusEvent, type SubOptions, type TickstreamClient } from "../sdk/index.js";
import { TokenStore, refusalReason } from "./auth.js";
import type { ChartPanel } from "./chart.js";
import { SymbolInput, symbolSearch } from "./autocomplete.js";
import { fmtMs, fmtRate } from "./format.js";
import { QuoteTable } from "./table.js";
import { Watchlist } from "./watchlist.js";

const $ = <T extends HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`missing element ${sel}`);
  return el;
};

const params = new URLSearchParams(location.search);
const maxHz = Number(params.get("maxHz") ?? "0") || 0;

const watchlist = new Watchlist();
const table = new QuoteTable({
  onRemove: (s) => watchlist.remove(s),
  onMove: (s, to) => watchlist.move(s, to),
  onOpen: (s) => void openChart(s),
});
$("#table-wrap").appendChild(table.el);

// ----- credential: ?token= or the sign-in panel (a node without auth never asks) ---------

const signin = $<HTMLElement>("#signin");
const tokenInput = $<HTMLInputElement>("#token-input");
const auth = new TokenStore({
  show(reason) {
    $("#signin-reason").textContent = reason;
    signin.hidden = false;
    tokenInput.value = "";
    tokenInput.focus();
  },
  hide() {
    signin.hidden = true;
  },
});
$<HTMLFormElement>("#signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  auth.signIn(tokenInput.value);
});
$("#signout").addEventListener("click", () => {
  auth.signOut();
  location.reload();
});
const search = symbolSearch(() => auth.headers());

const client: TickstreamClient = connect("/ws", {
  // Called before every connection attempt: after a 4001 it waits for the panel.
  getToken: () => auth.token(),
  // A pasted token cannot be renewed: its expiry closes with 4001 and brings the panel. One
  // from ?tokenUrl= is fetched again before it expires and renewed on the same connection.
  renewToken: auth.renewable,
  maxHz,
  pingIntervalMs: 5000,
  visibility: { mode: "throttle", hiddenMaxHz: 1 },
  reconnect: { initialDelayMs: 300, maxDelayMs: 8000, jitter: 0.5 },
});
// Handy for debugging from the console.
(globalThis as { tickstream?: TickstreamClient }).tickstream = client;

// ----- rendering: once per animation frame ---------------------------------------------

const dirty = new Set<string>();
let frameQueued = false;
let dim = true;
let renderMsTotal = 0;
let renderFrames = 0;

function queueFrame(): void {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(flush);
}

/**
 * How long a row whose history is on its way may wait for it: its BARS follows its SNAPSHOT,
 * maybe in the next WebSocket frame, and its first paint should show the price and the day's
 * shape. A server that sends no BARS at all (older than bars) is found out by the first DELTA;
 * the bound keeps a quiet symbol's row from waiting for one.
 */
const HOLD_FOR_BARS_MS = 500;
const heldSince = new Map<string, number>();
let holdTimer: ReturnType<typeof setTimeout> | undefined;

function flush(): void {
  frameQueued = false;
  const t0 = performance.now();
  for (const s of dirty) {
    const st = client.state(s);
    if (st?.awaitingBars) {
      const since = heldSince.get(s) ?? t0;
      heldSince.set(s, since);
      if (t0 - since < HOLD_FOR_BARS_MS) {
        holdTimer ??= setTimeout(() => {
          holdTimer = undefined;
          queueFrame();
        }, HOLD_FOR_BARS_MS);
        continue;
      }
    }
    heldSince.delete(s);
    if (st) table.render(st, t0, dim);
    dirty.delete(s);
  }
  // Keep frames coming while highlights are pending, so they end on time.
  if (table.sweepFlashes(t0)) queueFrame();
  renderMsTotal += performance.now() - t0;
  renderFrames++;
}

// Latency samples (µs) of the current second: browser clock minus the event's `ts`.
const latency = new Float64Array(8192);
let latencyN = 0;

client.on("update", (u) => {
  dirty.add(u.symbol);
  const v = u.state.values;
  if (u.changed.includes("last") && typeof v.last === "number") table.addPoint(u.symbol, v.last);
  if (!u.snapshot && typeof v.ts === "number" && latencyN < latency.length && u.changed.includes("ts")) {
    latency[latencyN++] = (performance.timeOrigin + performance.now()) * 1000 - v.ts;
  }
  queueFrame();
});

// ----- bars: each row's sparkline, and the chart -----------------------------------------
//
// Every row asks for the 1-minute bars since local midnight with its subscription, so its
// sparkline has the day's shape in the frame that shows its first price (the BARS follows
// the SNAPSHOT in the same batch). The chart draws the same bars: opening it costs no request.

/** The interval the rows ask for; null on a server that keeps no bars. */
let barInterval: string | null = params.get("bars") ?? "1m";

function localMidnightUs(): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime() * 1000;
}

function subOptions(): SubOptions {
  return barInterval ? { bars: barInterval, barSince: localMidnightUs() } : {};
}

/**
 * Subscribes rows. A server without the interval, or with bars off, refuses the whole SUB
 * (ERROR 400 naming the option): the rows then ask for the interval nearest to a minute that
 * the server lists, or for no bars, and the sparklines draw the prices seen instead.
 */
async function subscribeRows(symbols: string[]): Promise<void> {
  const asked = barInterval;
  const r = await client.subscribe(symbols, subOptions());
  const refused = r.rejected.filter((x) => x.code === 400 && /\bbar(s|Count|Since)\b/.test(x.message)).map((x) => x.symbol);
  if (!asked || refused.length === 0) return;
  if (barInterval === asked) {
    // "bars are off on this server": no interval to look for.
    const next = /bars are off/.test(r.rejected[0]!.message) ? null : await nearestInterval(asked);
    if (barInterval === asked) barInterval = next;
    console.warn(`tickstream: ${r.rejected[0]!.message}; the sparklines use ${barInterval ? `${barInterval} bars` : "the prices seen"}`);
  }
  const again = refused.filter((s) => watchlist.has(s) && !client.state(s));
  if (again.length) await subscribeRows(again);
}

/** The server's interval nearest to a minute other than `refused`, or null (none, or bars off). */
async function nearestInterval(refused: string): Promise<string | null> {
  try {
    const res = await fetch("/api/v1/bars/intervals", { headers: { Accept: "application/json", ...auth.headers() }, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return null;
    const list = (await res.json()) as Array<{ name?: unknown; seconds?: unknown }>;
    let best: string | null = null;
    let bestDist = Infinity;
    for (const it of Array.isArray(list) ? list : []) {
      if (typeof it.name !== "string" || typeof it.seconds !== "number" || it.name === refused || !(it.seconds > 0)) continue;
      const dist = Math.abs(Math.log(it.seconds / 60));
      if (dist < bestDist) [best, bestDist] = [it.name, dist];
    }
    return best;
  } catch {
    return null;
  }
}

client.on("bars", (e) => {
  table.setBars(e.symbol, e.bars);
  dirty.add(e.symbol);
  queueFrame();
  if (chart?.symbol === e.symbol) chart.setHistory(e.bars);
});
client.on("bar", (e) => {
  table.barsChanged(e.symbol);
  dirty.add(e.symbol);
  queueFrame();
  if (chart?.symbol === e.symbol) chart.update(e.bar);
});

let chart: ChartPanel | undefined;
let chartModule: Promise<typeof import("./chart.js")> | undefined;

/** Opens the candlestick chart of a row; lightweight-charts loads on the first one. */
async function openChart(symbol: string): Promise<void> {
  if (!barInterval || client.barsAvailable === false) {
    flashHint("This server keeps no bars: no chart");
    return;
  }
  let mod: typeof import("./chart.js");
  try {
    mod = await (chartModule ??= import("./chart.js"));
  } catch (e) {
    chartModule = undefined;
    flashHint(`Could not load the chart: ${(e as Error).message}`);
    return;
  }
  const st = client.state(symbol);
  if (!st) return; // removed meanwhile
  chart ??= new mod.ChartPanel(
    {
      dialog: $<HTMLDialogElement>("#chart"),
      title: $("#chart-title"),
      legend: $("#chart-legend"),
      host: $("#chart-host"),
      closeButton: $<HTMLButtonElement>("#chart-close"),
    },
    (s) => table.focus(s),
  );
  chart.open(symbol, st.bars.interval || barInterval, st.bars.list);
}

// ----- watchlist <-> subscriptions ------------------------------------------------------

watchlist.onChange((symbols) => {
  const want = new Set(symbols);
  const have = client.symbols();
  const gone = have.filter((s) => !want.has(s));
  const added = symbols.filter((s) => !client.state(s));
  if (gone.length) client.unsubscribe(gone);
  if (chart?.symbol !== undefined && !want.has(chart.symbol)) chart.close();
  if (added.length) void subscribeRows(added);
  table.sync(symbols);
  for (const s of symbols) dirty.add(s);
  queueFrame();
  updateEmptyState(symbols.length);
});

const input = $<HTMLInputElement>("#symbol-input");
const symbolInput = new SymbolInput(
  input,
  $<HTMLUListElement>("#suggestions"),
  (syms) => {
    const added = watchlist.add(syms);
    if (added.length) flashHint(`Added ${added.join(", ")}`);
    else if (syms.length) flashHint(`${syms.join(", ")} already in the list or invalid`);
  },
  (s) => watchlist.has(s),
  search,
);
$<HTMLFormElement>("#add-form").addEventListener("submit", (e) => {
  e.preventDefault();
  symbolInput.submit();
});
$("#clear").addEventListener("click", () => {
  if (watchlist.symbols.length === 0 || confirm(`Remove all ${watchlist.symbols.length} symbols?`)) watchlist.clear();
});
for (const btn of document.querySelectorAll<HTMLButtonElement>("[data-sample]")) {
  btn.addEventListener("click", async () => {
    const n = Number(btn.dataset.sample); // the n most active symbols
    try {
      const ac = new AbortController();
      watchlist.add(await search("", n, ac.signal));
    } catch (e) {
      flashHint(`Could not load symbols: ${(e as Error).message}`);
    }
  });
}

function updateEmptyState(n: number): void {
  $("#empty").hidden = n > 0;
  $("#table-wrap").hidden = n === 0;
  $("#count").textContent = n === 1 ? "1 symbol" : `${n} symbols`;
}

let hintTimer: ReturnType<typeof setTimeout> | undefined;
function flashHint(text: string): void {
  const el = $("#hint");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(hintTimer);
  hintTimer = setTimeout(() => el.classList.remove("show"), 2500);
}

// ----- header: connection, feed, rates --------------------------------------------------

const LABELS: Record<string, string> = {
  connecting: "Connecting",
  live: "Live",
  stale: "Stale",
  reconnecting: "Reconnecting",
  closed: "Disconnected",
  auth: "Sign-in required",
};

let lastStatus: StatusEvent | undefined;
let retryAt = 0;

function renderStatus(s: StatusEvent): void {
  lastStatus = s;
  const pill = $("#conn");
  // Waiting for a token is not a connection problem: no reconnect banner, no countdown.
  const state = auth.awaiting ? "auth" : s.status;
  pill.dataset.state = state;
  $("#conn-label").textContent = LABELS[state] ?? state;
  $("#signout").hidden = !auth.signedIn;
  const feed = $("#feed");
  feed.textContent = s.status === "live" || s.status === "stale" ? s.feed : "—";
  feed.dataset.state = s.feed;
  retryAt = s.retryInMs !== undefined ? performance.now() + s.retryInMs : 0;
  renderBanner();
  const newDim = s.status !== "live";
  if (newDim !== dim) {
    dim = newDim;
    document.body.classList.toggle("not-live", dim);
    table.redrawSparks(dim);
  }
}

function renderBanner(): void {
  const s = lastStatus;
  const banner = $("#banner");
  let reason = "";
  let title = "";
  let detail = "";
  if (auth.awaiting) {
    // the sign-in panel says why
  } else if (s && s.status === "stale" && s.feed !== "live") {
    reason = "feed";
    title = "Data delayed";
    detail = `The market-data feed is ${s.feed}${s.detail ? ` (${s.detail})` : ""}. Prices show the last known values.`;
  } else if (s && s.status === "stale" && s.silent) {
    reason = "silent";
    title = "Data delayed";
    detail = "No message from the server for a while; the connection may be failing.";
  } else if (s && (s.status === "reconnecting" || s.status === "closed")) {
    reason = "disconnected";
    title = s.status === "closed" ? "Disconnected" : "Connection lost — data delayed";
    const secs = retryAt ? Math.max(0, Math.ceil((retryAt - performance.now()) / 1000)) : 0;
    detail =
      s.status === "closed"
        ? `${s.detail || "The connection was closed."} Reload the page to try again.`
        : retryAt && secs > 0
          ? `Reconnecting in ${secs}s (attempt ${s.attempt})${s.detail ? ` — ${s.detail}` : ""}.`
          : `Reconnecting (attempt ${s.attempt})…`;
  }
  banner.hidden = reason === "";
  banner.dataset.reason = reason;
  $("#banner-title").textContent = title;
  $("#banner-detail").textContent = detail;
}

client.on("status", renderStatus);
client.on("hello", (h) => {
  $("#server").textContent = h.serverId;
  $("#server").title = `protocol v${h.version}, heartbeat ${h.heartbeatMs} ms`;
});
client.on("error", (e) => {
  if (e.kind === "protocol") console.warn("tickstream protocol:", e.message);
  else if (e.kind === "server") {
    console.warn(`tickstream server error ${e.code}: ${e.message}`, e.symbols ?? "");
    // A refused symbol (403 not entitled, 413, 503...) says so on its row.
    for (const s of e.symbols ?? []) dirty.add(s);
    queueFrame();
  } else if (e.kind === "transport" && e.code === CloseCode.NOT_AUTHENTICATED) auth.refused(refusalReason(e.message));
});
auth.onChange(() => {
  if (lastStatus) renderStatus(lastStatus);
});

let lastMessages = 0;
let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  const dt = (now - lastTick) / 1000;
  lastTick = now;
  const m = client.stats.messages;
  const rate = (m - lastMessages) / dt;
  lastMessages = m;
  $("#rate").textContent = fmtRate(rate);

  if (latencyN > 0) {
    const arr = latency.subarray(0, latencyN).sort();
    const p50 = arr[Math.floor(latencyN * 0.5)]! / 1000;
    const p99 = arr[Math.min(latencyN - 1, Math.floor(latencyN * 0.99))]! / 1000;
    $("#latency").textContent = fmtMs(p50);
    $("#latency").title = `end-to-end latency from the event timestamp, last second: p50 ${fmtMs(p50)}, p99 ${fmtMs(p99)} (${latencyN} samples)`;
    $("#latency-p99").textContent = fmtMs(p99);
    latencyN = 0;
  } else if (client.status !== "live") {
    $("#latency").textContent = "—";
    $("#latency-p99").textContent = "—";
  }
  $("#render").textContent = renderFrames ? fmtMs(renderMsTotal / renderFrames) : "—";
  renderMsTotal = 0;
  renderFrames = 0;
  if (lastStatus?.status === "reconnecting") renderBanner(); // countdown
}, 1000);

// ----- start ----------------------------------------------------------------------------

renderStatus({ status: client.status, feed: "live", detail: "", silent: false, attempt: 0 });

// A first visit (no ?symbols=, no list kept in this browser) opens on the most active
// symbols, so that the first screen moves. On a node that wants a token first, the list is
// loaded once the user has signed in.
const DEFAULT_SYMBOLS = 20;
async function loadDefaultWatchlist(): Promise<boolean> {
  try {
    watchlist.load(await search("", DEFAULT_SYMBOLS, AbortSignal.timeout(10_000)));
    return true;
  } catch {
    return false;
  }
}
if (Watchlist.stored()) watchlist.load([]);
else {
  void loadDefaultWatchlist().then((ok) => {
    if (ok) return;
    updateEmptyState(0);
    let tried = false;
    auth.onChange(() => {
      if (tried || !auth.signedIn || watchlist.symbols.length > 0) return;
      tried = true;
      void loadDefaultWatchlist();
    });
  });
}
