import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/sdk/index.js";

describe("backoffDelay", () => {
  it("grows exponentially up to the cap without jitter", () => {
    const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, o))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });
  it("draws the jittered delay from [d·(1−jitter), d]", () => {
    const o = { initialDelayMs: 1000, maxDelayMs: 60000, jitter: 0.5 };
    expect(backoffDelay(2, o, () => 0)).toBe(4000);
    expect(backoffDelay(2, o, () => 0.999999)).toBe(2000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, o);
      expect(d).toBeGreaterThanOrEqual(4000);
      expect(d).toBeLessThanOrEqual(8000);
    }
  });
  it("full jitter can reach zero", () => {
    expect(backoffDelay(5, { jitter: 1 }, () => 0.9999999)).toBe(0);
  });
});
