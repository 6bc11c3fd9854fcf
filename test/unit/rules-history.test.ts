// History counts: a count is asked up to three times per event (gate, tree, explanation) and
// remembered; any new fact or other window must count afresh, the same as a plain scan.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { History } from '../../src/rules/history.js';

const limits = { horizonMs: 3_600_000, maxExits: 1000, maxKeys: 100, maxPerKey: 64 };

describe('History.countExecs', () => {
  it('counts a new exec at once, though the same window was just counted', () => {
    const h = new History(limits);
    h.recordExec('p', 1000, 'a', 'sh', 1);
    expect(h.countExecs('p', 0, 2000)).toBe(1);
    expect(h.countExecs('p', 0, 2000)).toBe(1);
    h.recordExec('p', 1500, 'b', 'sh', 2);
    expect(h.countExecs('p', 0, 2000)).toBe(2);
    expect(h.countExecs('p', 1200, 2000)).toBe(1);
    expect(h.countExecs('q', 0, 2000)).toBe(0);
  });

  it('stops counting at a limit, and a limited count is not taken for the full one', () => {
    const h = new History(limits);
    for (let i = 0; i < 10; i++) h.recordExec('p', 1000 + i, String(i), 'sh', i);
    expect(h.countExecs('p', 0, 2000, 3)).toBe(3);
    expect(h.countExecs('p', 0, 2000, 5)).toBe(5);
    expect(h.countExecs('p', 0, 2000)).toBe(10);
    expect(h.countExecs('p', 0, 2000, 4)).toBe(4);
    expect(h.countExecs('p', 0, 2000, 11)).toBe(10);
    expect(h.countExecs('p', 0, 2000, 0)).toBe(0); // min(count, 0): found by the property test
  });

  it('agrees with a plain count of the facts, for any mix of writes and queries', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('exec' as const), parent: fc.constantFrom('p', 'q'), t: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({ kind: fc.constant('count' as const), parent: fc.constantFrom('p', 'q'), from: fc.integer({ min: 0, max: 5000 }), len: fc.integer({ min: 0, max: 5000 }), limits: fc.array(fc.option(fc.integer({ min: 0, max: 70 }), { nil: undefined }), { minLength: 1, maxLength: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const h = new History(limits);
        const facts: Record<string, number[]> = { p: [], q: [] };
        let now = 0;
        for (const o of ops) {
          if (o.kind === 'exec') {
            now += o.t % 50; // time moves forward, a little out of order at most
            const t = Math.max(0, now - (o.t % 3));
            h.recordExec(o.parent, t, 'x', 'sh', 1);
            facts[o.parent]!.push(t);
            if (facts[o.parent]!.length > limits.maxPerKey) facts[o.parent]!.shift();
          } else {
            // the reference: the ring's own rule (stop once 1 s before the window) on the kept facts
            const from = o.from;
            const to = o.from + o.len;
            let want = 0;
            const kept = facts[o.parent]!;
            for (let k = kept.length - 1; k >= 0; k--) {
              if (kept[k]! < from - 1000) break;
              if (kept[k]! >= from && kept[k]! <= to) want++;
            }
            // a comparison's limited count, the full count, in any order: each as if asked alone
            for (const limit of o.limits) expect(h.countExecs(o.parent, from, to, limit)).toBe(limit === undefined ? want : Math.min(want, limit));
            expect(h.countExecs(o.parent, from, to)).toBe(want);
          }
        }
      }),
    );
  });
});

describe('History: keys beyond maxKeys', () => {
  it('past maxKeys the least recently written quarter goes at once; a key written again stays', () => {
    const h = new History(limits); // maxKeys 100
    for (let i = 0; i < 100; i++) h.recordExec(`p${i}`, 1000 + i, `e${i}`, 'sh', i);
    h.recordExec('p0', 2000, 'again', 'sh', 1); // p0 is now the most recent
    h.recordExec('p100', 2001, 'e100', 'sh', 100); // 101 keys: down to 75
    expect(h.countExecs('p0', 0, 3000)).toBe(2);
    for (let i = 1; i <= 26; i++) expect(h.countExecs(`p${i}`, 0, 3000), `p${i}`).toBe(0);
    for (let i = 27; i <= 100; i++) expect(h.countExecs(`p${i}`, 0, 3000), `p${i}`).toBe(1);
    // the next 25 new keys fit without another eviction
    for (let i = 101; i < 126; i++) h.recordExec(`p${i}`, 3000 + i, `e${i}`, 'sh', i);
    expect(h.countExecs('p27', 0, 9000)).toBe(1);
    h.recordExec('p126', 9000, 'e126', 'sh', 126);
    expect(h.countExecs('p27', 0, 9999)).toBe(0);
    expect(h.countExecs('p126', 0, 9999)).toBe(1);
  });
});
