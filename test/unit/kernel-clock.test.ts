import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WallClock } from '../../src/kernel/clock.js';

describe('WallClock.iso', () => {
  it('matches Date#toISOString, across second boundaries and in any order', () => {
    const wc = new WallClock();
    const base = 5_000_000_000_000n; // ~83 min after boot
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -3_000_000_000n, max: 3_000_000_000n }), { minLength: 1, maxLength: 50 }), (deltas) => {
        for (const d of deltas) {
          const k = base + d;
          expect(wc.iso(k)).toBe(new Date(wc.epochMs(k)).toISOString());
        }
      }),
    );
    // the millisecond padding: .000, .007, .070, .700
    for (const ms of [0n, 7n, 70n, 700n]) {
      const k = base - (base % 1_000_000_000n) + ms * 1_000_000n;
      expect(wc.iso(k)).toBe(new Date(wc.epochMs(k)).toISOString());
    }
  });
});
