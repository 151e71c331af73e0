/** The watchlist: an ordered list of symbols, kept in the URL (?symbols=A,B) and localStorage. */
import { isValidSymbol } from "../sdk/index.js";

const STORAGE_KEY = "tickstream.watchlist";
export const MAX_SYMBOLS = 500;

export class Watchlist {
  private list: string[] = [];
  private listeners: Array<(symbols: string[]) => void> = [];

  get symbols(): readonly string[] {
    return this.list;
  }

  has(s: string): boolean {
    return this.list.includes(s);
  }

  onChange(fn: (symbols: string[]) => void): void {
    this.listeners.push(fn);
  }

  /** True when the URL names `symbols` (even empty) or this browser kept a list. */
  static stored(): boolean {
    if (new URLSearchParams(location.search).has("symbols")) return true;
    try {
      return localStorage.getItem(STORAGE_KEY) !== null;
    } catch {
      return false;
    }
  }

  /** Loads from the URL when it names `symbols` (even empty), else from localStorage. */
  load(defaults: string[] = []): void {
    const params = new URLSearchParams(location.search);
    let src: string[] | null = null;
    if (params.has("symbols")) src = split(params.get("symbols") ?? "");
    else {
      try {
        const raw = localStorage.getItem(STORAGE_KEY);
        if (raw !== null) src = JSON.parse(raw) as string[];
      } catch {
        src = null;
      }
    }
    this.list = normalize(src ?? defaults);
    this.save();
    this.notify();
  }

  /** Adds symbols (upper-cased, validated, deduplicated); returns the ones added. */
  add(symbols: string[]): string[] {
    const added: string[] = [];
    for (const raw of symbols) {
      const s = canonical(raw);
      if (!s || this.list.includes(s) || this.list.length >= MAX_SYMBOLS) continue;
      this.list.push(s);
      added.push(s);
    }
    if (added.length) this.commit();
    return added;
  }

  remove(symbol: string): void {
    const i = this.list.indexOf(symbol);
    if (i < 0) return;
    this.list.splice(i, 1);
    this.commit();
  }

  clear(): void {
    if (this.list.length === 0) return;
    this.list = [];
    this.commit();
  }

  /** Moves `symbol` to position `to` (clamped). */
  move(symbol: string, to: number): void {
    const from = this.list.indexOf(symbol);
    if (from < 0) return;
    const dest = Math.max(0, Math.min(this.list.length - 1, to));
    if (dest === from) return;
    this.list.splice(from, 1);
    this.list.splice(dest, 0, symbol);
    this.commit();
  }

  private commit(): void {
    this.save();
    this.notify();
  }

  private notify(): void {
    const copy = [...this.list];
    for (const fn of this.listeners) fn(copy);
  }

  private save(): void {
    const url = new URL(location.href);
    // Keep commas readable in the address bar.
    url.searchParams.delete("symbols");
    const rest = url.searchParams.toString();
    const q = "symbols=" + this.list.map(encodeURIComponent).join(",") + (rest ? "&" + rest : "");
    history.replaceState(history.state, "", url.pathname + "?" + q + url.hash);
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(this.list));
    } catch {
      /* storage may be disabled */
    }
  }
}

/** Splits user input on commas and whitespace. */
export function split(s: string): string[] {
  return s.split(/[\s,;]+/).filter((x) => x !== "");
}

function canonical(raw: string): string | null {
  const s = raw.trim().toUpperCase();
  return isValidSymbol(s) ? s : null;
}

function normalize(list: string[]): string[] {
  const out: string[] = [];
  for (const raw of list) {
    if (typeof raw !== "string") continue;
    const s = canonical(raw);
    if (s && !out.includes(s) && out.length < MAX_SYMBOLS) out.push(s);
  }
  return out;
}
