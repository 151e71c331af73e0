/**
 * A per-symbol sparkline on a small canvas: the closes of the symbol's bars (the day's 1-minute
 * bars, history then live), placed by time; or, while there are fewer than two bars (a server
 * without bars, a symbol's first minute), the last prices seen since the row appeared.
 */
import type { Bar } from "../sdk/index.js";

/** Prices kept for a sparkline without bars. */
const CAP = 120;

export class Sparkline {
  readonly canvas: HTMLCanvasElement;
  private readonly buf = new Float64Array(CAP);
  private start = 0;
  private len = 0;
  /** The bars drawn (the SDK's own array, never copied), or null: draw the prices. */
  private bars: readonly Bar[] | null = null;
  private dirty = false;
  private drawnAt = 0;
  private readonly w: number;
  private readonly h: number;

  constructor(width = 110, height = 26) {
    this.w = width;
    this.h = height;
    const c = document.createElement("canvas");
    const dpr = Math.min(2, globalThis.devicePixelRatio || 1);
    c.width = Math.round(width * dpr);
    c.height = Math.round(height * dpr);
    c.style.width = width + "px";
    c.style.height = height + "px";
    c.className = "spark";
    c.dataset.points = "0";
    this.canvas = c;
    const ctx = c.getContext("2d");
    ctx?.scale(dpr, dpr);
  }

  /** Draws these bars from now on (they change in place: call `changed()` after a BAR). */
  setBars(bars: readonly Bar[]): void {
    this.bars = bars;
    this.dirty = true;
  }

  /** The bars drawn changed. */
  changed(): void {
    this.dirty = true;
  }

  /** A last price; drawn while the sparkline has fewer than two bars. */
  push(v: number): void {
    if (!Number.isFinite(v)) return;
    if (this.len < CAP) {
      this.buf[(this.start + this.len) % CAP] = v;
      this.len++;
    } else {
      this.buf[this.start] = v;
      this.start = (this.start + 1) % CAP;
    }
    if (!this.bars || this.bars.length < 2) this.dirty = true;
  }

  /** Redraws when new points arrived, at most every `minIntervalMs`. */
  maybeDraw(now: number, minIntervalMs: number, dim: boolean): boolean {
    if (!this.dirty || now - this.drawnAt < minIntervalMs) return false;
    this.draw(dim);
    this.drawnAt = now;
    return true;
  }

  draw(dim = false): void {
    this.dirty = false;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const { w, h } = this;
    ctx.clearRect(0, 0, w, h);
    const bars = this.bars && this.bars.length >= 2 ? this.bars : null;
    const n = bars ? bars.length : this.len;
    this.canvas.dataset.points = String(n);
    if (n < 2) return;
    const value = bars ? (i: number) => bars[i]!.c : (i: number) => this.buf[(this.start + i) % CAP]!;
    // Bars are sparse (a minute without a trade has none): place them by time, so a quiet
    // stretch shows as a straight segment, not squeezed away.
    const t0 = bars ? bars[0]!.t : 0;
    const span = bars ? bars[n - 1]!.t - t0 || 1 : n - 1;
    const pos = bars ? (i: number) => (bars[i]!.t - t0) / span : (i: number) => i / span;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = value(i);
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const pad = 2;
    const range = max - min || Math.abs(max) * 1e-4 || 1;
    const x = (i: number) => pad + pos(i) * (w - pad * 2);
    const y = (v: number) => h - pad - ((v - min) / range) * (h - pad * 2);
    const first = bars ? bars[0]!.o : value(0);
    const last = value(n - 1);
    const up = last >= first;
    const stroke = dim ? "#6b7385" : up ? "#2fcf7a" : "#ff5d67";
    ctx.beginPath();
    ctx.moveTo(x(0), y(value(0)));
    for (let i = 1; i < n; i++) ctx.lineTo(x(i), y(value(i)));
    ctx.lineWidth = 1.25;
    ctx.strokeStyle = stroke;
    ctx.lineJoin = "round";
    ctx.stroke();
    // soft area under the line
    ctx.lineTo(x(n - 1), h);
    ctx.lineTo(x(0), h);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = stroke;
    ctx.fill();
    ctx.globalAlpha = 1;
    // last point
    ctx.beginPath();
    ctx.arc(x(n - 1), y(last), 1.8, 0, Math.PI * 2);
    ctx.fillStyle = stroke;
    ctx.fill();
  }
}
