/** A tiny typed event emitter (no dependency on Node's EventEmitter or the DOM). */
export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private listeners: { [K in keyof Events]?: Array<Listener<Events[K]>> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    (this.listeners[event] ??= []).push(fn);
    return () => this.off(event, fn);
  }

  once<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(event, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void {
    const l = this.listeners[event];
    if (!l) return;
    const i = l.indexOf(fn);
    if (i >= 0) l.splice(i, 1);
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const l = this.listeners[event];
    if (!l || l.length === 0) return;
    // Copy only when there is more than one listener (the common case is one).
    const list = l.length === 1 ? l : l.slice();
    for (const fn of list) {
      try {
        fn(payload);
      } catch (e) {
        // A throwing listener must not break the client's message loop.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  protected hasListeners(event: keyof Events): boolean {
    return (this.listeners[event]?.length ?? 0) > 0;
  }
}
