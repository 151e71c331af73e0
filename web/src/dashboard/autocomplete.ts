/**
 * Symbol input with autocomplete from /api/v1/symbols?prefix=..&limit=20&order=active, the
 * most active symbols first (ARIA combobox: ↑/↓ to pick, Enter to add, Escape to close).
 */
import { split } from "./watchlist.js";

export interface SymbolSearch {
  (prefix: string, limit: number, signal: AbortSignal): Promise<string[]>;
}

/**
 * A search of the server's symbols, the most active first (the symbols the node has applied
 * the most updates to), with the headers (the credential) of each request.
 */
export function symbolSearch(headers: () => Record<string, string> = () => ({})): SymbolSearch {
  return async (prefix, limit, signal) => {
    const q = new URLSearchParams({ prefix, limit: String(limit), order: "active" });
    const res = await fetch(`/api/v1/symbols?${q}`, { signal, headers: { Accept: "application/json", ...headers() } });
    if (res.status === 401) throw new Error("sign in to search symbols");
    if (!res.ok) throw new Error(`symbol search: HTTP ${res.status}`);
    const body = (await res.json()) as { symbols?: unknown };
    return Array.isArray(body.symbols) ? body.symbols.filter((s): s is string => typeof s === "string") : [];
  };
}

export class SymbolInput {
  private items: string[] = [];
  private active = -1;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private abort: AbortController | undefined;
  private seq = 0;

  constructor(
    private readonly input: HTMLInputElement,
    private readonly list: HTMLUListElement,
    private readonly onAdd: (symbols: string[]) => void,
    private readonly isAdded: (symbol: string) => boolean,
    private readonly search: SymbolSearch = symbolSearch(),
  ) {
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    list.setAttribute("role", "listbox");
    input.addEventListener("input", () => this.schedule());
    input.addEventListener("focus", () => {
      if (input.value.trim() !== "") this.schedule();
    });
    input.addEventListener("keydown", (e) => this.onKey(e));
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    // mousedown (not click) so that the input's blur does not close the list first
    list.addEventListener("mousedown", (e) => {
      const li = (e.target as HTMLElement).closest("li[data-symbol]") as HTMLLIElement | null;
      if (!li) return;
      e.preventDefault();
      this.commit([li.dataset.symbol!]);
    });
  }

  /** Adds whatever is typed (comma/space separated), or the highlighted suggestion. */
  submit(): void {
    if (this.active >= 0 && this.items[this.active]) {
      this.commit([this.items[this.active]!]);
      return;
    }
    const typed = split(this.input.value);
    if (typed.length) this.commit(typed);
  }

  private commit(symbols: string[]): void {
    this.onAdd(symbols);
    this.input.value = "";
    this.close();
    this.input.focus();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const raw = this.input.value.trim();
    // Only the last token of a list like "AAPL, MS" is completed.
    const token = split(raw).pop() ?? "";
    if (token === "" || /[\s,;]$/.test(this.input.value)) {
      this.close();
      return;
    }
    this.timer = setTimeout(() => void this.run(token.toUpperCase()), 90);
  }

  private async run(prefix: string): Promise<void> {
    this.abort?.abort();
    const ac = new AbortController();
    this.abort = ac;
    const my = ++this.seq;
    let items: string[];
    try {
      items = await this.search(prefix, 20, ac.signal);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      items = [];
    }
    if (my !== this.seq || document.activeElement !== this.input) return;
    this.items = items;
    this.active = items.length > 0 ? 0 : -1;
    this.renderList(prefix);
  }

  private renderList(prefix: string): void {
    const ul = this.list;
    ul.replaceChildren();
    if (this.items.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = `No symbol starts with “${prefix}”. Press Enter to add it anyway.`;
      ul.appendChild(li);
    }
    this.items.forEach((s, i) => {
      const li = document.createElement("li");
      li.id = `${ul.id}-${i}`;
      li.dataset.symbol = s;
      li.setAttribute("role", "option");
      const strong = document.createElement("b");
      strong.textContent = s.slice(0, prefix.length);
      li.append(strong, s.slice(prefix.length));
      if (this.isAdded(s)) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "in list";
        li.appendChild(tag);
      }
      ul.appendChild(li);
    });
    ul.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight();
  }

  private highlight(): void {
    const lis = this.list.querySelectorAll<HTMLLIElement>("li[data-symbol]");
    lis.forEach((li, i) => {
      const on = i === this.active;
      li.classList.toggle("active", on);
      li.setAttribute("aria-selected", String(on));
      if (on) li.scrollIntoView({ block: "nearest" });
    });
    if (this.active >= 0) this.input.setAttribute("aria-activedescendant", `${this.list.id}-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  private onKey(e: KeyboardEvent): void {
    const open = !this.list.hidden && this.items.length > 0;
    switch (e.key) {
      case "ArrowDown":
        if (!open) return;
        e.preventDefault();
        this.active = (this.active + 1) % this.items.length;
        this.highlight();
        break;
      case "ArrowUp":
        if (!open) return;
        e.preventDefault();
        this.active = (this.active - 1 + this.items.length) % this.items.length;
        this.highlight();
        break;
      case "Enter":
        e.preventDefault();
        // A list typed by hand ("AAPL, MSFT") is taken as typed.
        if (split(this.input.value).length > 1) this.active = -1;
        this.submit();
        break;
      case "Escape":
        this.close();
        break;
      case "Tab":
        if (open && this.active >= 0) {
          e.preventDefault();
          this.input.value = this.items[this.active]!;
          this.close();
        }
        break;
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.seq++;
    this.abort?.abort();
    this.items = [];
    this.active = -1;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }
}
