import { describe, expect, it } from "vitest";
import { fmtChange, fmtMs, fmtPct, fmtPrice, fmtRate, fmtVolume } from "../../src/dashboard/format.js";

describe("dashboard formatting", () => {
  it("formats prices, changes and percentages", () => {
    expect(fmtPrice(187.2)).toBe("187.20");
    expect(fmtPrice(0.12345)).toBe("0.1235");
    expect(fmtPrice(undefined)).toBe("—");
    expect(fmtPrice(NaN)).toBe("—");
    expect(fmtChange(1.5)).toBe("+1.50");
    expect(fmtChange(-0.004)).toBe("−0.0040");
    expect(fmtChange(0)).toBe("0.00");
    expect(fmtPct(-1.234)).toBe("−1.23%");
    expect(fmtPct(undefined)).toBe("—");
  });
  it("formats volumes, rates and durations", () => {
    expect(fmtVolume(1234567)).toBe("1,234,567");
    expect(fmtVolume(12_345_678)).toBe("12.35M");
    expect(fmtVolume(2_500_000_000)).toBe("2.50B");
    expect(fmtRate(1987.4)).toBe("1,987");
    expect(fmtRate(25_300)).toBe("25.3k");
    expect(fmtMs(0.5)).toBe("0.50 ms");
    expect(fmtMs(12.34)).toBe("12.3 ms");
    expect(fmtMs(250)).toBe("250 ms");
    expect(fmtMs(12_000)).toBe("12.0 s");
  });
});
