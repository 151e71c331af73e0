/**
 * The dashboard's credential on a node that authenticates its clients. The token comes from
 * the page's address (`?token=`, removed from the address bar at once so that it does not
 * stay in view, in bookmarks or in screenshots) or from the sign-in panel, which shows when
 * the node closes the connection with 4001 (no token, a bad one, or one that expired). It is
 * kept for this tab only (sessionStorage): closing the tab signs out.
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
    if (!this.needed) return this.current;
    return new Promise((resolve) => this.waiting.push(resolve));
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
