/** Number formatting for the quote table (allocation-light; called for every changed cell). */

const volFmt = new Intl.NumberFormat("en-US");

export function fmtPrice(v: unknown): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  return v.toFixed(a !== 0 && a < 1 ? 4 : 2);
}

export function fmtChange(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  return (v > 0 ? "+" : v < 0 ? "−" : "") + a.toFixed(a !== 0 && a < 0.01 ? 4 : 2);
}

export function fmtPct(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  return (v > 0 ? "+" : v < 0 ? "−" : "") + Math.abs(v).toFixed(2) + "%";
}

export function fmtVolume(v: unknown): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "B";
  if (a >= 1e7) return (v / 1e6).toFixed(2) + "M";
  return volFmt.format(v);
}

export function fmtRate(v: number): string {
  return v >= 10000 ? (v / 1000).toFixed(1) + "k" : volFmt.format(Math.round(v));
}

export function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return "—";
  if (v < 1) return v.toFixed(2) + " ms";
  if (v < 100) return v.toFixed(1) + " ms";
  if (v < 10000) return Math.round(v) + " ms";
  return (v / 1000).toFixed(1) + " s";
}
