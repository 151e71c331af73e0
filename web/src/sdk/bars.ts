/**
 * The bars a client holds for one subscription (PROTOCOL.md §6.10, §6.11, §7 guarantee 5): the
 * history a BARS brought, then every BAR applied to it — the same `t` replaces the newest bar, a
 * later `t` appends one (and makes every earlier bar final).
 */
import type { Bar, BarMsg, BarsMsg } from "./protocol.js";

/** The server's limit on one history (barCount, and the bars of a barSince). */
export const MAX_BARS = 10000;

/** What applying a BAR did: replaced the newest bar, appended one, or broke guarantee 5 (the reason). */
export type BarApplied = "replaced" | "appended" | { violation: string };

export class BarSeries {
  /** The interval of the bars held ("1m"); "" while the subscription asks for none. */
  interval = "";
  /** The symbol's version the bars are complete up to on this connection (-1: none yet). */
  seq = -1;
  /**
   * True while the bars follow the server's: the history arrived (or the subscription asked for
   * live bars only), no violation since. False from a reconnect or a resync until the next BARS.
   */
  ready = false;
  /** Oldest first, at most `limit`; the newest may still be forming. */
  readonly list: Bar[] = [];
  /** How many bars are kept: barCount, else MAX_BARS; older ones are dropped as new ones come. */
  limit = MAX_BARS;
  /**
   * After a lost connection: the `t` of the newest bar held. The next history asks only for the
   * bars from there (`barSince`) and is merged: every earlier bar was final when the next one
   * began, and every node builds the same bars from the same log.
   */
  resumeFrom: number | undefined;
  /**
   * The server's subscription asks for a resume's history (barSince the newest bar held), not
   * the subscription's own: a later BARS (a SNAP's) brings only the newest bars, and is merged.
   */
  partial = false;

  /** The newest bar, or undefined. */
  get last(): Bar | undefined {
    return this.list[this.list.length - 1];
  }

  /** Forgets the bars (a new interval, or live-only bars after a resync). */
  reset(interval: string): void {
    this.interval = interval;
    this.list.length = 0;
    this.seq = -1;
    this.resumeFrom = undefined;
    this.partial = false;
  }

  /**
   * Replaces the bars with a BARS's history. Returns the violation when its bars are not in
   * strictly increasing `t` (the bars are then left as they were).
   */
  history(m: BarsMsg): string | undefined {
    for (let i = 1; i < m.bars.length; i++) {
      if (m.bars[i]!.t <= m.bars[i - 1]!.t) {
        return `BARS holds bar t=${m.bars[i]!.t} after t=${m.bars[i - 1]!.t}, not oldest first`;
      }
    }
    // After a resume, or a SNAP while the server's option is a resume's, the bars before the
    // BARS's first are final and held: only the rest is replaced.
    const resume = this.resumeFrom ?? (this.partial && this.ready ? (m.bars[0]?.t ?? Infinity) : undefined);
    this.resumeFrom = undefined;
    if (resume !== undefined && m.interval === this.interval && (m.bars[0]?.t ?? resume) >= resume) {
      // The bars since the newest one held: keep those before it, take the rest from here.
      let keep = this.list.length;
      while (keep > 0 && this.list[keep - 1]!.t >= resume) keep--;
      this.list.length = keep;
    } else {
      this.list.length = 0;
    }
    this.interval = m.interval;
    for (const b of m.bars) this.list.push(b);
    if (this.list.length > this.limit) this.list.splice(0, this.list.length - this.limit);
    this.seq = m.seq;
    this.ready = true;
    return undefined;
  }

  /** Applies a BAR of this series' interval: checks that neither `seq` nor `t` goes back. */
  update(m: BarMsg): BarApplied {
    if (m.seq < this.seq) return { violation: `BAR has seq ${m.seq}, below the bars' ${this.seq}` };
    const last = this.last;
    const b = m.bar;
    if (last && b.t < last.t) return { violation: `BAR has t=${b.t}, before the newest bar's t=${last.t}` };
    this.seq = m.seq;
    if (last && b.t === last.t) {
      this.list[this.list.length - 1] = b;
      return "replaced";
    }
    this.list.push(b);
    if (this.list.length > this.limit) this.list.splice(0, this.list.length - this.limit);
    return "appended";
  }
}
