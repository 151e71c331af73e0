/** A per-symbol sparkline of recent prices, drawn on a small canvas. */

const CAP = 120;

export class Sparkline {
  readonly canvas: HTMLCanvasElement;
  private readonly buf = new Float64Array(CAP);
  private start = 0;
  private len = 0;
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
    this.canvas = c;
    const ctx = c.getContext("2d");
    ctx?.scale(dpr, dpr);
  }

  push(v: number): void {
    if (!Number.isFinite(v)) return;
    if (this.len < CAP) {
      this.buf[(this.start + this.len) % CAP] = v;
      this.len++;
    } else {
      this.buf[this.start] = v;
      this.start = (this.start + 1) % CAP;
    }
    this.dirty = true;
  }

  get size(): number {
    return this.len;
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
    const n = this.len;
    if (n < 2) return;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = this.buf[(this.start + i) % CAP]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const pad = 2;
    const range = max - min || Math.abs(max) * 1e-4 || 1;
    const dx = (w - pad * 2) / (n - 1); // the points seen so far span the width
    const x0 = pad;
    const y = (v: number) => h - pad - ((v - min) / range) * (h - pad * 2);
    const first = this.buf[this.start]!;
    const last = this.buf[(this.start + n - 1) % CAP]!;
    const up = last >= first;
    const stroke = dim ? "#6b7385" : up ? "#2fcf7a" : "#ff5d67";
    ctx.beginPath();
    ctx.moveTo(x0, y(first));
    for (let i = 1; i < n; i++) ctx.lineTo(x0 + i * dx, y(this.buf[(this.start + i) % CAP]!));
    ctx.lineWidth = 1.25;
    ctx.strokeStyle = stroke;
    ctx.lineJoin = "round";
    ctx.stroke();
    // soft area under the line
    ctx.lineTo(x0 + (n - 1) * dx, h);
    ctx.lineTo(x0, h);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = stroke;
    ctx.fill();
    ctx.globalAlpha = 1;
    // last point
    ctx.beginPath();
    ctx.arc(x0 + (n - 1) * dx, y(last), 1.8, 0, Math.PI * 2);
    ctx.fillStyle = stroke;
    ctx.fill();
  }
}
