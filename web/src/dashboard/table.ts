/**
 * The live quote table. Rows are created once per symbol; updates only touch the
 * cells whose text changed and restart a CSS flash animation (no forced reflow).
 */
import type { Bar, SymbolState } from "../sdk/index.js";
import { fmtChange, fmtPct, fmtPrice, fmtVolume } from "./format.js";
import { Sparkline } from "./sparkline.js";

const COLS = ["last", "chg", "pct", "bid", "ask", "volume", "high", "low"] as const;
type Col = (typeof COLS)[number];

const HEADERS: Array<[string, string, string]> = [
  // [key, label, class]
  ["grip", "", "grip-col"],
  ["symbol", "Symbol", "sym-col"],
  ["trend", "Trend", "trend-col"],
  ["last", "Last", "num"],
  ["chg", "Chg", "num"],
  ["pct", "Chg %", "num"],
  ["bid", "Bid", "num"],
  ["ask", "Ask", "num"],
  ["volume", "Volume", "num"],
  ["high", "High", "num"],
  ["low", "Low", "num"],
  ["x", "", "act-col"],
];

/** How long a changed cell stays highlighted. */
const FLASH_MS = 400;
const FLASHING = new Set<Col>(["last", "bid", "ask", "high", "low"]);

interface Row {
  symbol: string;
  tr: HTMLDivElement;
  note: HTMLSpanElement;
  cells: Record<Col, HTMLDivElement>;
  shown: Record<Col, number | undefined>;
  text: Record<Col, string>;
  base: Record<Col, string>;
  spark: Sparkline;
  ready: boolean | undefined;
  noteText: string;
}

export interface TableCallbacks {
  onRemove(symbol: string): void;
  onMove(symbol: string, to: number): void;
  /** A click on a row (or Enter on its symbol): open the symbol's chart. */
  onOpen(symbol: string): void;
}

export class QuoteTable {
  readonly el: HTMLDivElement;
  private readonly tbody: HTMLDivElement;
  private readonly rows = new Map<string, Row>();
  private order: string[] = [];
  private dragSymbol: string | null = null;
  /**
   * Highlighted cells and when their highlight ends. A flash is a plain class that is set
   * and later removed (two paints per change), not a CSS animation: animating the
   * background of hundreds of cells repaints them every frame, which software rendering
   * cannot keep up with.
   */
  private readonly flashes = new Map<HTMLDivElement, { until: number; base: string }>();

  constructor(private readonly cb: TableCallbacks) {
    // A grid of divs rather than a <table>: rows can then use CSS containment and
    // content-visibility, so a changed cell re-lays out only its row and rows scrolled out
    // of view cost nothing to render.
    const table = document.createElement("div");
    table.className = "quotes";
    table.setAttribute("role", "table");
    table.setAttribute("aria-label", "Live quotes");
    table.dataset.testid = "quotes";
    const head = document.createElement("div");
    head.className = "qhead";
    head.setAttribute("role", "row");
    for (const [key, label, cls] of HEADERS) {
      const th = document.createElement("div");
      th.textContent = label;
      th.className = "th " + cls;
      th.setAttribute("role", "columnheader");
      th.dataset.col = key;
      if (key === "chg" || key === "pct") th.title = "Change vs previous close";
      if (key === "trend") th.title = "Today's 1-minute bars (recent last prices on a server without bars)";
      head.appendChild(th);
    }
    const body = document.createElement("div");
    body.className = "qbody";
    body.setAttribute("role", "rowgroup");
    table.append(head, body);
    this.tbody = body;
    this.el = table;
    this.wireEvents();
  }

  get size(): number {
    return this.order.length;
  }

  /** Makes the rows match `symbols`, in that order. */
  sync(symbols: string[]): void {
    const want = new Set(symbols);
    for (const [s, row] of this.rows) {
      if (!want.has(s)) {
        row.tr.remove();
        for (const td of Object.values(row.cells)) this.flashes.delete(td);
        this.rows.delete(s);
      }
    }
    let prev: HTMLDivElement | null = null;
    for (const s of symbols) {
      let row = this.rows.get(s);
      if (!row) {
        row = this.createRow(s);
        this.rows.set(s, row);
      }
      // Only move rows that are out of place (keeps DOM mutations minimal).
      const expected: ChildNode | null = prev ? prev.nextSibling : this.tbody.firstChild;
      if (expected !== row.tr) this.tbody.insertBefore(row.tr, expected);
      prev = row.tr;
    }
    this.order = [...symbols];
  }

  /** Adds a price point to the symbol's sparkline (called for every update; drawn while it has fewer than two bars). */
  addPoint(symbol: string, price: number): void {
    this.rows.get(symbol)?.spark.push(price);
  }

  /** Draws the symbol's sparkline from these bars (the SDK's array: `barsChanged` after it changed). */
  setBars(symbol: string, bars: readonly Bar[]): void {
    this.rows.get(symbol)?.spark.setBars(bars);
  }

  /** The bars of the symbol's sparkline changed (a live BAR). */
  barsChanged(symbol: string): void {
    this.rows.get(symbol)?.spark.changed();
  }

  /** Renders one symbol's state. `now` is performance.now(). */
  render(state: SymbolState, now: number, dim: boolean): void {
    const row = this.rows.get(state.symbol);
    if (!row) return;
    const v = state.values;
    const last = num(v.last);
    const prevClose = num(v.prevClose);
    const chg = last !== undefined && prevClose !== undefined ? last - prevClose : undefined;
    const pct = chg !== undefined && prevClose ? (chg / prevClose) * 100 : undefined;
    this.cell(row, "last", last, fmtPrice, now);
    this.cell(row, "chg", chg, fmtChange, now);
    this.cell(row, "pct", pct, fmtPct, now);
    this.cell(row, "bid", num(v.bid), fmtPrice, now);
    this.cell(row, "ask", num(v.ask), fmtPrice, now);
    this.cell(row, "volume", num(v.volume), fmtVolume, now);
    this.cell(row, "high", num(v.high), fmtPrice, now);
    this.cell(row, "low", num(v.low), fmtPrice, now);
    if (row.ready !== state.ready) {
      row.ready = state.ready;
      row.tr.classList.toggle("not-ready", !state.ready);
    }
    const [note, why] = rowNote(state);
    if (note !== row.noteText) {
      row.noteText = note;
      row.note.textContent = note;
      row.note.title = why;
      row.tr.dataset.note = note;
      row.tr.classList.toggle("has-error", !!state.error);
    }
    row.spark.maybeDraw(now, 200, dim);
  }

  /** Moves the keyboard focus to the symbol's name (where its chart was opened from). */
  focus(symbol: string): void {
    this.rows.get(symbol)?.tr.querySelector<HTMLButtonElement>(".sym-name")?.focus();
  }

  /** Redraws every sparkline (e.g. when the connection state changes colour). */
  redrawSparks(dim: boolean): void {
    for (const row of this.rows.values()) row.spark.draw(dim);
  }

  /** Ends the highlights whose time is up; returns true while some remain. */
  sweepFlashes(now: number): boolean {
    for (const [td, f] of this.flashes) {
      if (now >= f.until) {
        td.className = f.base;
        this.flashes.delete(td);
      }
    }
    return this.flashes.size > 0;
  }

  private cell(row: Row, col: Col, value: number | undefined, fmt: (v: number | undefined) => string, now: number): void {
    const old = row.shown[col];
    if (value === old) return;
    row.shown[col] = value;
    const text = fmt(value);
    const td = row.cells[col];
    if (text !== row.text[col]) {
      row.text[col] = text;
      td.textContent = text;
    }
    let base = "num";
    if (col === "chg" || col === "pct") base += value === undefined || value === 0 ? "" : value > 0 ? " pos" : " neg";
    row.base[col] = base;
    // Prices flash; volume only grows and the change columns follow `last`, so they don't.
    if (old !== undefined && value !== undefined && row.ready && FLASHING.has(col)) {
      td.className = base + (value > old ? " up" : " down");
      this.flashes.set(td, { until: now + FLASH_MS, base });
    } else {
      const f = this.flashes.get(td);
      if (f) f.base = base;
      else td.className = base;
    }
  }

  private createRow(symbol: string): Row {
    const tr = document.createElement("div");
    tr.dataset.symbol = symbol;
    tr.className = "qrow not-ready";
    tr.setAttribute("role", "row");
    const cellEl = (cls: string): HTMLDivElement => {
      const d = document.createElement("div");
      d.className = cls;
      d.setAttribute("role", "cell");
      tr.appendChild(d);
      return d;
    };

    const tdGrip = cellEl("grip-col");
    const grip = document.createElement("button");
    grip.className = "grip";
    grip.type = "button";
    grip.title = "Drag to reorder (or focus and press ↑ / ↓)";
    grip.setAttribute("aria-label", `Move ${symbol}`);
    grip.textContent = "⠿";
    tdGrip.appendChild(grip);

    const tdSym = cellEl("sym-col");
    // A button: the row's chart opens with the keyboard too (Enter or Space on the name).
    const name = document.createElement("button");
    name.type = "button";
    name.className = "sym-name";
    name.textContent = symbol;
    name.title = `${symbol}: open the chart`;
    name.setAttribute("aria-label", `Open the chart of ${symbol}`);
    name.setAttribute("aria-haspopup", "dialog");
    const note = document.createElement("span");
    note.className = "sym-note";
    tdSym.append(name, note);

    const tdTrend = cellEl("trend-col");
    const spark = new Sparkline();
    tdTrend.appendChild(spark.canvas);

    const cells = {} as Record<Col, HTMLDivElement>;
    const shown = {} as Record<Col, number | undefined>;
    const text = {} as Record<Col, string>;
    const base = {} as Record<Col, string>;
    for (const c of COLS) {
      const td = cellEl("num");
      td.dataset.field = c;
      td.textContent = "—";
      cells[c] = td;
      shown[c] = undefined;
      text[c] = "—";
      base[c] = "num";
    }

    const tdX = cellEl("act-col");
    const rm = document.createElement("button");
    rm.className = "remove";
    rm.type = "button";
    rm.title = `Remove ${symbol}`;
    rm.setAttribute("aria-label", `Remove ${symbol}`);
    rm.textContent = "×";
    tdX.appendChild(rm);

    return { symbol, tr, note, cells, shown, text, base, spark, ready: undefined, noteText: "" };
  }

  private symbolOf(target: EventTarget | null): string | null {
    const tr = (target as HTMLElement | null)?.closest?.(".qrow[data-symbol]") as HTMLDivElement | null;
    return tr?.dataset.symbol ?? null;
  }

  private wireEvents(): void {
    const tb = this.tbody;
    tb.addEventListener("click", (e) => {
      const t = e.target as HTMLElement;
      const s = this.symbolOf(t);
      if (!s) return;
      if (t.closest(".remove")) this.cb.onRemove(s);
      else if (!t.closest(".grip")) this.cb.onOpen(s);
    });
    tb.addEventListener("keydown", (e) => {
      const t = e.target as HTMLElement;
      if (!t.classList.contains("grip")) return;
      const s = this.symbolOf(t);
      if (!s) return;
      const i = this.order.indexOf(s);
      let to = -1;
      if (e.key === "ArrowUp") to = i - 1;
      else if (e.key === "ArrowDown") to = i + 1;
      else if (e.key === "Home") to = 0;
      else if (e.key === "End") to = this.order.length - 1;
      else return;
      e.preventDefault();
      if (to < 0 || to >= this.order.length) return;
      this.cb.onMove(s, to);
      // keep focus on the moved row's grip
      this.rows.get(s)?.tr.querySelector<HTMLButtonElement>(".grip")?.focus();
    });
    // Drag and drop: rows become draggable only while the grip is held.
    tb.addEventListener("pointerdown", (e) => {
      const t = e.target as HTMLElement;
      if (!t.classList.contains("grip")) return;
      const tr = t.closest<HTMLDivElement>(".qrow");
      if (tr) tr.draggable = true;
    });
    tb.addEventListener("dragstart", (e) => {
      const s = this.symbolOf(e.target);
      if (!s) return;
      this.dragSymbol = s;
      e.dataTransfer?.setData("text/plain", s);
      if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
      (e.target as HTMLElement).classList.add("dragging");
    });
    tb.addEventListener("dragover", (e) => {
      if (!this.dragSymbol) return;
      e.preventDefault();
      this.clearDropMarks();
      const tr = (e.target as HTMLElement).closest<HTMLDivElement>(".qrow");
      if (!tr || tr.dataset.symbol === this.dragSymbol) return;
      const r = tr.getBoundingClientRect();
      tr.classList.add(e.clientY < r.top + r.height / 2 ? "drop-before" : "drop-after");
    });
    tb.addEventListener("drop", (e) => {
      if (!this.dragSymbol) return;
      e.preventDefault();
      const tr = (e.target as HTMLElement).closest<HTMLDivElement>(".qrow");
      const target = tr?.dataset.symbol;
      const s = this.dragSymbol;
      if (tr && target && target !== s) {
        const r = tr.getBoundingClientRect();
        const after = e.clientY >= r.top + r.height / 2;
        const without = this.order.filter((x) => x !== s);
        const to = without.indexOf(target) + (after ? 1 : 0);
        this.cb.onMove(s, to);
      }
      this.endDrag();
    });
    tb.addEventListener("dragend", () => this.endDrag());
  }

  private endDrag(): void {
    this.clearDropMarks();
    for (const row of this.rows.values()) {
      row.tr.draggable = false;
      row.tr.classList.remove("dragging");
    }
    this.dragSymbol = null;
  }

  private clearDropMarks(): void {
    for (const el of this.tbody.querySelectorAll(".drop-before, .drop-after")) {
      el.classList.remove("drop-before", "drop-after");
    }
  }
}

/** What a row says besides prices, and the longer explanation of its tooltip. */
function rowNote(state: SymbolState): [string, string] {
  const e = state.error;
  if (e) {
    switch (e.code) {
      case 403:
        return ["not entitled", `Your token does not grant ${state.symbol} (${e.message}).`];
      case 400:
        return ["invalid symbol", e.message];
      default:
        return [`refused (${e.code})`, e.message];
    }
  }
  // seq 0 is the server's "no data yet": the feed has never carried the symbol. The server
  // accepts any valid name (there is no fixed universe), so this is how a typo shows.
  if (state.ready && state.seq === 0) {
    return ["unknown symbol", `The feed has never carried ${state.symbol}; prices show if it ever does.`];
  }
  return ["", ""];
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
