/**
 * The dashboard's credential on a node that authenticates its clients. The token comes from
 * the page's address (`?token=`, removed from the address bar at once so that it does not
 * stay in view, in bookmarks or in screenshots) or from the sign-in panel, which shows when
 * the node closes the connection with 4001 (no token, a bad one, or one that expired). It is
 * kept for this tab only (sessionStorage): closing the tab signs out.
 *
 * With `?tokenUrl=` (an http(s) address, kept in the address bar: it is no secret), the
 * token comes from that endpoint instead, fetched with the browser's cookies before every
 * connection and again before the token expires, so that a page left open renews its token
 * without reconnecting. The endpoint answers the token as text, or JSON with `token` or
 * `access_token`, and must allow the dashboard's origin (CORS with credentials).
 *
 * A node without authentication never asks: the dashboard connects without a token and the
 * panel never shows.
 */

const STORAGE_KEY = "tickstream.token";

export interface SignInView {
  /** Shows the panel with why the node refused the connection. */
  show(reason: string): void;
  hide(): void;
}

export class TokenStore {
  private current = "";
  /** The node refused the connection (4001) and no new token was given since. */
  private needed = false;
  private waiting: Array<(token: string) => void> = [];
  private listeners: Array<() => void> = [];

  /** Where fresh tokens come from (?tokenUrl=), if anywhere. */
  private readonly source: URL | undefined;

  constructor(private readonly view: SignInView) {
    this.current = read();
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get("token");
    if (fromUrl !== null) {
      params.delete("token");
      const q = params.toString();
      history.replaceState(history.state, "", location.pathname + (q ? `?${q}` : "") + location.hash);
      if (fromUrl.trim() !== "") this.save(fromUrl.trim());
    }
    this.source = tokenSource(params.get("tokenUrl"));
  }

  /** True when tokens come from a ?tokenUrl= endpoint, and so can be renewed. */
  get renewable(): boolean {
    return this.source !== undefined;
  }

  /** True while the dashboard waits for the user to sign in. */
  get awaiting(): boolean {
    return this.needed;
  }

  /** True when the dashboard holds a token (the node may still refuse it). */
  get signedIn(): boolean {
    return this.current !== "";
  }

  /**
   * The SDK's getToken: the token held, none while the node has not asked for one, and
   * after a refusal a promise that the sign-in panel settles.
   */
  token(): string | Promise<string> {
    if (this.needed) return new Promise((resolve) => this.waiting.push(resolve));
    if (this.source) return this.fetchToken(this.source);
    return this.current;
  }

  private async fetchToken(source: URL): Promise<string> {
    const res = await fetch(source, { credentials: "include", headers: { Accept: "application/json, text/plain" } });
    if (!res.ok) throw new Error(`token endpoint ${source.origin}${source.pathname}: HTTP ${res.status}`);
    const text = (await res.text()).trim();
    let token = text;
    if (text.startsWith("{")) {
      const body = JSON.parse(text) as { token?: unknown; access_token?: unknown };
      token = String(body.token ?? body.access_token ?? "");
    }
    if (token === "") throw new Error(`token endpoint ${source.origin}${source.pathname} gave no token`);
    this.save(token);
    this.notify();
    return token;
  }

  /** Headers for the REST API. */
  headers(): Record<string, string> {
    return this.current ? { Authorization: `Bearer ${this.current}` } : {};
  }

  /** The node closed the connection with 4001: forget the token and ask for another. */
  refused(reason: string): void {
    this.save("");
    this.needed = true;
    this.view.show(reason);
    this.notify();
  }

  /** A token typed into the panel: kept for the tab, and the waiting connection goes on. */
  signIn(token: string): void {
    token = token.trim();
    if (token === "") return;
    this.save(token);
    this.needed = false;
    this.view.hide();
    for (const resolve of this.waiting.splice(0)) resolve(token);
    this.notify();
  }

  /** Forgets the token; the caller reloads the page. */
  signOut(): void {
    this.save("");
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }

  private save(token: string): void {
    this.current = token;
    try {
      if (token) sessionStorage.setItem(STORAGE_KEY, token);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      /* storage disabled: the token lives as long as the page */
    }
  }
}

/** The ?tokenUrl= endpoint, resolved against the page; only http(s) is taken. */
function tokenSource(raw: string | null): URL | undefined {
  if (!raw) return undefined;
  try {
    const u = new URL(raw, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u : undefined;
  } catch {
    return undefined;
  }
}

function read(): string {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}

/** The reason of a 4001 close, from the SDK's transport error message, for a person. */
export function refusalReason(message: string): string {
  const reason = message.replace(/^connection closed: 4001 ?/, "").trim();
  // The node's "no token: send Authorization: Bearer <token> or ?token=<token>" is for
  // programmers; the panel itself says where the token goes.
  if (reason === "" || reason.startsWith("no token")) return "no token given";
  return reason;
}
