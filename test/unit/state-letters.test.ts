// The ps letter of each scheduler state, by the enum's names in the BPF header (generated from
// BTF), so a state added or renumbered in bpf/state.h cannot silently show as another letter.
import { describe, expect, it } from 'vitest';
import { STATE_LETTER, stateLetter } from '../../src/wire/state.js';
import * as S from '../../src/wire/generated/state.js';

describe('scheduler state letters', () => {
  it('each enum st_state value maps to the letter procps ps shows for it', () => {
    const want: Record<string, string> = {
      ST_NONE: 'S', ST_RUNNING: 'R', ST_RUNNABLE: 'R', ST_SLEEPING: 'S', ST_DISK: 'D', ST_STOPPED: 'T', ST_IDLE: 'I', ST_DEAD: 'X', ST_PARKED: 'P',
    };
    const values = S as unknown as Record<string, number>;
    for (const [name, letter] of Object.entries(want)) expect([name, stateLetter(values[name]!)]).toEqual([name, letter]);
    expect(STATE_LETTER).toHaveLength(values.ST_NSTATES!);
  });

  it('a value outside the enum reads as S, never undefined', () => {
    expect(stateLetter(200)).toBe('S');
  });
});
