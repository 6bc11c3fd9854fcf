import { describe, expect, it } from 'vitest';
import { StateMachine, validTransition, type ProcState } from '../../src/process/state-machine.js';

const ALL: ProcState[] = ['R', 'S', 'D', 'T', 'I', 'Z', 'X'];
const VALID = new Set([
  'R>S', 'R>D', 'R>T', 'R>I', 'R>Z',
  'S>R', 'S>D', 'S>T', 'S>I', 'S>Z',
  'D>R', 'D>S', 'D>T', 'D>I', 'D>Z',
  'T>R', 'T>S', 'T>D', 'T>I', 'T>Z',
  'I>R', 'I>S', 'I>D', 'I>T', 'I>Z',
  'Z>X',
]);

describe('process state machine', () => {
  for (const from of ALL) {
    for (const to of ALL) {
      if (from === to) continue;
      const ok = VALID.has(`${from}>${to}`);
      it(`${from} → ${to} is ${ok ? 'applied' : 'an anomaly'}`, () => {
        expect(validTransition(from, to)).toBe(ok);
        const m = new StateMachine(from, 1_000n);
        const anomaly = m.apply(to, 5_000_000n, 'test');
        if (ok) {
          expect(anomaly).toBeNull();
          expect(m.state).toBe(to);
          expect(m.sinceNs).toBe(5_000_000n);
        } else {
          expect(anomaly).toEqual({ from, to, atNs: 5_000_000n, source: 'test' });
          expect(m.state).toBe(from); // never applied blindly
          expect(m.sinceNs).toBe(1_000n);
        }
      });
    }
  }

  it('the same state is not a transition and keeps its start', () => {
    const m = new StateMachine('S', 10n);
    expect(m.apply('S', 99n, 'sweep')).toBeNull();
    expect(m.sinceNs).toBe(10n);
  });

  it('counts time in state with ms precision and never goes backwards', () => {
    const m = new StateMachine('R', 0n);
    m.apply('D', 2_000_000_000n, 'event');
    expect(m.stateMs(2_300_500_000n)).toBe(300);
    m.apply('R', 1_000_000_000n, 'late sweep');
    expect(m.sinceNs).toBe(2_000_000_000n);
    expect(m.stateMs(1n)).toBe(0);
  });
});
