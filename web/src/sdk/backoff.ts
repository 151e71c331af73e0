/** Exponential backoff with jitter for reconnects. */
export interface BackoffOptions {
  /** First delay in ms (default 250). */
  initialDelayMs?: number;
  /** Upper bound of a delay in ms (default 15000). */
  maxDelayMs?: number;
  /** Growth factor per attempt (default 2). */
  factor?: number;
  /**
   * Fraction of the delay that is randomised (default 0.5): the delay is drawn
   * uniformly from [d·(1−jitter), d]. 1 gives "full jitter", 0 none.
   */
  jitter?: number;
}

/**
 * Delay before reconnect attempt number `attempt` (0-based).
 * `random` returns a number in [0, 1) (Math.random by default).
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 15000;
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const base = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(base * (1 - jitter * random()));
}
