/**
 * The candlestick chart of one symbol, with volume, in a modal <dialog> (Escape or the close
 * button closes it; the browser keeps the focus inside while it is open). It draws the bars the
 * row's subscription already holds (no second request) and follows them live.
 *
 * main.ts loads this module (and lightweight-charts with it) on the first click on a row, so
 * the first paint of the table does not wait for the charting library.
 */
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  createChart,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type MouseEventParams,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Bar } from "../sdk/index.js";
import { fmtPrice, fmtVolume } from "./format.js";

/** Bars shown when the chart opens (4 hours of 1-minute bars). */
const VISIBLE_BARS = 240;

const UP = "#2fcf7a";
const DOWN = "#ff5d67";

/**
 * lightweight-charts shows times as UTC; the bars are placed at their local wall-clock time
 * instead (the table's day starts at local midnight too).
 */
function chartTime(tUs: number): UTCTimestamp {
  const ms = tUs / 1000;
  return (Math.floor(ms / 1000) - new Date(ms).getTimezoneOffset() * 60) as UTCTimestamp;
}

function candle(b: Bar): CandlestickData<UTCTimestamp> {
  return { time: chartTime(b.t), open: b.o, high: b.h, low: b.l, close: b.c };
}

function volume(b: Bar): HistogramData<UTCTimestamp> {
  return { time: chartTime(b.t), value: b.v, color: b.c >= b.o ? "rgba(47, 207, 122, 0.45)" : "rgba(255, 93, 103, 0.45)" };
}

/** Where the dialog's parts are (index.html). */
export interface ChartElements {
  dialog: HTMLDialogElement;
  title: HTMLElement;
  legend: HTMLElement;
  host: HTMLElement;
  closeButton: HTMLButtonElement;
}

export class ChartPanel {
  /** The symbol shown, or undefined while closed. */
  symbol: string | undefined;
  private chart: IChartApi | undefined;
  private candles: ISeriesApi<"Candlestick"> | undefined;
  private volumes: ISeriesApi<"Histogram"> | undefined;
  private last: Bar | undefined;
  private updates = 0;

  constructor(
    private readonly el: ChartElements,
    private readonly onClosed: (symbol: string) => void,
  ) {
    el.closeButton.addEventListener("click", () => el.dialog.close());
    el.dialog.addEventListener("close", () => {
      const s = this.symbol;
      this.symbol = undefined;
      this.chart?.remove();
      this.chart = this.candles = this.volumes = undefined;
      if (s) this.onClosed(s);
    });
    // A click on the backdrop (outside the dialog's box) closes it too.
    el.dialog.addEventListener("click", (e) => {
      if (e.target === el.dialog) el.dialog.close();
    });
  }

  /** Opens the chart of `symbol` with the bars held now (empty while its history is on its way). */
  open(symbol: string, interval: string, bars: readonly Bar[]): void {
    if (this.symbol !== undefined) this.el.dialog.close();
    this.symbol = symbol;
    this.el.title.textContent = `${symbol} · ${intervalLabel(interval)}`;
    this.el.dialog.showModal();
    this.el.closeButton.focus();
    const chart = createChart(this.el.host, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#121824" }, textColor: "#8390a6", fontSize: 12 },
      grid: { vertLines: { color: "rgba(35, 45, 63, 0.6)" }, horzLines: { color: "rgba(35, 45, 63, 0.6)" } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: "#232d3f" },
      timeScale: { borderColor: "#232d3f", timeVisible: true, secondsVisible: interval.endsWith("s") },
    });
    const candles = chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    // Volume on its own scale in the bottom fifth, under the candles.
    this.volumes = chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    this.candles = candles;
    chart.subscribeCrosshairMove((p) => this.onCrosshair(p));
    this.chart = chart;
    this.updates = 0;
    this.setHistory(bars);
  }

  /** Replaces every bar (a BARS: the history arrived, or came again after a reconnect). */
  setHistory(bars: readonly Bar[]): void {
    if (!this.candles || !this.volumes) return;
    this.candles.setData(bars.map(candle));
    this.volumes.setData(bars.map(volume));
    this.last = bars[bars.length - 1];
    // The last few hours, readable candle by candle; the rest of the day is a scroll (drag, or
    // the mouse wheel) away. The row's sparkline already shows the whole day.
    if (bars.length > VISIBLE_BARS) {
      this.chart?.timeScale().setVisibleLogicalRange({ from: bars.length - VISIBLE_BARS, to: bars.length + 2 });
    } else {
      this.chart?.timeScale().fitContent();
    }
    this.el.dialog.dataset.bars = String(bars.length);
    this.mark();
  }

  /** A live bar: replaces the newest candle (same `t`) or appends one. */
  update(bar: Bar): void {
    if (!this.candles || !this.volumes) return;
    const appended = !this.last || bar.t > this.last.t;
    this.candles.update(candle(bar));
    this.volumes.update(volume(bar));
    this.last = bar;
    this.updates++;
    if (appended) this.el.dialog.dataset.bars = String(Number(this.el.dialog.dataset.bars ?? "0") + 1);
    this.mark();
  }

  /** Close of the dialog (Escape does it too). */
  close(): void {
    if (this.symbol !== undefined) this.el.dialog.close();
  }

  /** The newest bar in the legend, and what the tests read: how many live updates, the newest bar. */
  private mark(): void {
    const d = this.el.dialog.dataset;
    d.updates = String(this.updates);
    d.lastT = this.last ? String(this.last.t) : "";
    d.lastClose = this.last ? String(this.last.c) : "";
    this.legend(this.last);
  }

  private onCrosshair(p: MouseEventParams): void {
    const c = this.candles && (p.seriesData.get(this.candles) as CandlestickData | undefined);
    const v = this.volumes && (p.seriesData.get(this.volumes) as HistogramData | undefined);
    if (!c) {
      this.legend(this.last);
      return;
    }
    this.legend({ t: 0, o: c.open, h: c.high, l: c.low, c: c.close, v: v?.value ?? 0, n: 0 });
  }

  private legend(b: Bar | undefined): void {
    const el = this.el.legend;
    if (!b) {
      el.textContent = "no bars yet";
      return;
    }
    const cls = b.c >= b.o ? "pos" : "neg";
    el.innerHTML = "";
    for (const [k, v] of [
      ["O", fmtPrice(b.o)],
      ["H", fmtPrice(b.h)],
      ["L", fmtPrice(b.l)],
      ["C", fmtPrice(b.c)],
      ["V", fmtVolume(b.v)],
    ] as const) {
      const span = document.createElement("span");
      const key = document.createElement("i");
      key.textContent = k;
      span.append(key, v);
      if (k === "C") span.className = cls;
      el.appendChild(span);
    }
  }
}

/** "1m" → "1-minute bars"; a name it does not know stays as it is. */
export function intervalLabel(name: string): string {
  const m = /^(\d+)([smh])$/.exec(name);
  if (!m) return `${name} bars`;
  const unit = { s: "second", m: "minute", h: "hour" }[m[2] as "s" | "m" | "h"];
  return `${m[1]}-${unit} bars`;
}
