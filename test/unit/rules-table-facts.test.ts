// TableFacts remembers the last 8,192 exits by pid (kernel lines about a process often arrive
// after its reap), in a ring: the oldest exit leaves unless its pid exited again since.
import { describe, expect, it } from 'vitest';
import { TableFacts } from '../../src/app/rules.js';
import type { ProcessTable } from '../../src/process/index.js';

function facts(): TableFacts {
  // exited entries only: every exec_id is a process that ended 1 s after boot
  const table = {
    byPid: () => undefined,
    get: (execId: string) => ({ execId, pid: 0, startNs: 0n, exitNs: 1_000_000_000n }),
  } as unknown as ProcessTable;
  return new TableFacts(table);
}
const at = 2_000_000_000n;

describe('TableFacts: exits by pid', () => {
  it('keeps the last 8,192 exits; a pid that exited again keeps its newer exit until that one leaves', () => {
    const f = facts();
    f.noteExit(5, 'x');
    f.noteExit(5, 'y'); // pid 5 reused
    expect(f.byPid(5, at)?.execId).toBe('y');
    for (let i = 0; i < 8190; i++) f.noteExit(1000 + i, `e${i}`);
    // 8,192 exits so far: x and y both still in the ring
    expect(f.byPid(1000, at)?.execId).toBe('e0');
    f.noteExit(9999, 'z'); // x's slot leaves: pid 5 now means y, which stays
    expect(f.byPid(5, at)?.execId).toBe('y');
    f.noteExit(9998, 'w'); // y's slot leaves
    expect(f.byPid(5, at)).toBeNull();
    expect(f.byPid(1000, at)?.execId).toBe('e0');
    f.noteExit(9997, 'v'); // e0's slot leaves
    expect(f.byPid(1000, at)).toBeNull();
    expect(f.byPid(1001, at)?.execId).toBe('e1');
    expect(f.byPid(9997, at)?.execId).toBe('v');
  });
});
