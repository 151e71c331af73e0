/**
 * The live quote table. Rows are created once per symbol; updates only touch the
 * cells whose text changed and restart a CSS flash animation (no forced reflow).
 */
import type { SymbolState } from "../sdk/index.js";
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

interface Row {
  symbol: string;
  tr: HTMLTableRowElement;
  note: HTMLSpanElement;
  cells: Record<Col, HTMLTableCellElement>;
  shown: Record<Col, number | undefined>;
  text: Record<Col, string>;
  flip: Record<Col, number>;
  spark: Sparkline;
  ready: boolean | undefined;
  noteText: string;
}

export interface TableCallbacks {
  onRemove(symbol: string): void;
  onMove(symbol: string, to: number): void;
}

export class QuoteTable {
  readonly el: HTMLTableElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly rows = new Map<string, Row>();
  private order: string[] = [];
  private dragSymbol: string | null = null;

  constructor(private readonly cb: TableCallbacks) {
    const table = document.createElement("table");
    table.className = "quotes";
    table.dataset.testid = "quotes";
    const thead = table.createTHead();
    const hr = thead.insertRow();
    for (const [key, label, cls] of HEADERS) {
      const th = document.createElement("th");
      th.textContent = label;
      th.className = cls;
      th.dataset.col = key;
      if (key === "chg" || key === "pct") th.title = "Change vs previous close";
      if (key === "trend") th.title = "Recent last-trade prices";
      hr.appendChild(th);
    }
    this.tbody = table.createTBody();
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
        this.rows.delete(s);
      }
    }
    let prev: HTMLTableRowElement | null = null;
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

  /** Adds a price point to the symbol's sparkline (called for every update). */
  addPoint(symbol: string, price: number): void {
    this.rows.get(symbol)?.spark.push(price);
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
    this.cell(row, "last", last, fmtPrice);
    this.cell(row, "chg", chg, fmtChange);
    this.cell(row, "pct", pct, fmtPct);
    this.cell(row, "bid", num(v.bid), fmtPrice);
    this.cell(row, "ask", num(v.ask), fmtPrice);
    this.cell(row, "volume", num(v.volume), fmtVolume);
    this.cell(row, "high", num(v.high), fmtPrice);
    this.cell(row, "low", num(v.low), fmtPrice);
    if (row.ready !== state.ready) {
      row.ready = state.ready;
      row.tr.classList.toggle("not-ready", !state.ready);
    }
    const note = state.error
      ? state.error.code === 404
        ? "unknown symbol"
        : `rejected (${state.error.code})`
      : state.ready && state.seq === 0
        ? "no data yet"
        : "";
    if (note !== row.noteText) {
      row.noteText = note;
      row.note.textContent = note;
      row.tr.classList.toggle("has-error", !!state.error);
    }
    row.spark.maybeDraw(now, 200, dim);
  }

  /** Redraws every sparkline (e.g. when the connection state changes colour). */
  redrawSparks(dim: boolean): void {
    for (const row of this.rows.values()) row.spark.draw(dim);
  }

  private cell(row: Row, col: Col, value: number | undefined, fmt: (v: number | undefined) => string): void {
    const old = row.shown[col];
    if (value === old) return;
    row.shown[col] = value;
    const text = fmt(value);
    const td = row.cells[col];
    if (text !== row.text[col]) {
      row.text[col] = text;
      td.textContent = text;
    }
    let cls = "num";
    if (col === "chg" || col === "pct") cls += value === undefined || value === 0 ? "" : value > 0 ? " pos" : " neg";
    if (old !== undefined && value !== undefined && row.ready) {
      // Alternate between two identical animations so that a new change restarts the flash.
      const f = (row.flip[col] ^= 1);
      cls += (value > old ? " fu" : " fd") + f;
    }
    td.className = cls;
  }

  private createRow(symbol: string): Row {
    const tr = document.createElement("tr");
    tr.dataset.symbol = symbol;
    tr.className = "not-ready";

    const tdGrip = tr.insertCell();
    tdGrip.className = "grip-col";
    const grip = document.createElement("button");
    grip.className = "grip";
    grip.type = "button";
    grip.title = "Drag to reorder (or focus and press ↑ / ↓)";
    grip.setAttribute("aria-label", `Move ${symbol}`);
    grip.textContent = "⠿";
    tdGrip.appendChild(grip);

    const tdSym = tr.insertCell();
    tdSym.className = "sym-col";
    const name = document.createElement("span");
    name.className = "sym-name";
    name.textContent = symbol;
    const note = document.createElement("span");
    note.className = "sym-note";
    tdSym.append(name, note);

    const tdTrend = tr.insertCell();
    tdTrend.className = "trend-col";
    const spark = new Sparkline();
    tdTrend.appendChild(spark.canvas);

    const cells = {} as Record<Col, HTMLTableCellElement>;
    const shown = {} as Record<Col, number | undefined>;
    const text = {} as Record<Col, string>;
    const flip = {} as Record<Col, number>;
    for (const c of COLS) {
      const td = tr.insertCell();
      td.className = "num";
      td.dataset.field = c;
      td.textContent = "—";
      cells[c] = td;
      shown[c] = undefined;
      text[c] = "—";
      flip[c] = 0;
    }

    const tdX = tr.insertCell();
    tdX.className = "act-col";
    const rm = document.createElement("button");
    rm.className = "remove";
    rm.type = "button";
    rm.title = `Remove ${symbol}`;
    rm.setAttribute("aria-label", `Remove ${symbol}`);
    rm.textContent = "×";
    tdX.appendChild(rm);

    return { symbol, tr, note, cells, shown, text, flip, spark, ready: undefined, noteText: "" };
  }

  private symbolOf(target: EventTarget | null): string | null {
    const tr = (target as HTMLElement | null)?.closest?.("tr[data-symbol]") as HTMLTableRowElement | null;
    return tr?.dataset.symbol ?? null;
  }

  private wireEvents(): void {
    const tb = this.tbody;
    tb.addEventListener("click", (e) => {
      const t = e.target as HTMLElement;
      if (t.closest(".remove")) {
        const s = this.symbolOf(t);
        if (s) this.cb.onRemove(s);
      }
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
      const tr = t.closest("tr");
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
      const tr = (e.target as HTMLElement).closest("tr");
      if (!tr || tr.dataset.symbol === this.dragSymbol) return;
      const r = tr.getBoundingClientRect();
      tr.classList.add(e.clientY < r.top + r.height / 2 ? "drop-before" : "drop-after");
    });
    tb.addEventListener("drop", (e) => {
      if (!this.dragSymbol) return;
      e.preventDefault();
      const tr = (e.target as HTMLElement).closest("tr");
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

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
