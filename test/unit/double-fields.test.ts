// Counters that start at DOUBLE_ZERO (src/shared/numbers.ts) keep one V8 shape when a value past
// 2^30 arrives, so no optimized reader of them is deoptimized then. Checked in a child process
// with V8's natives syntax (%HaveSameMap), on tsc's output (reads dist/: scripts/build.sh first).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = (p: string) => fileURLToPath(new URL(`../../dist/${p}`, import.meta.url));

/** Runs `body` (ES module code, natives syntax allowed) and returns what it printed, parsed. */
function probe(body: string): Record<string, boolean> {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', body], { encoding: 'utf8' });
  return JSON.parse(out) as Record<string, boolean>;
}

describe('double fields from the start', () => {
  it('an exit summary and the exited-process input keep their shape when a counter passes 2^30', () => {
    const r = probe(`
      import { blankSummary } from ${JSON.stringify(dist('store/summary.js'))};
      import { ExitInput } from ${JSON.stringify(dist('metrics/exited.js'))};
      const a = blankSummary(), b = blankSummary();
      b.cpuNs = 5e9; b.readBytes = 3e9; b.utimeNs = 2e9;
      const c = new ExitInput(), d = new ExitInput();
      d.cpuNs = 5e9; d.t1Ms = 1.5; d.rssMaxBytes = 4e9;
      // the control: the same fields starting at a small-integer 0 change shape
      const zero = () => ({ cpuNs: 0, readBytes: 0, utimeNs: 0 });
      const e = zero(), f = zero();
      f.cpuNs = 5e9;
      console.log(JSON.stringify({ summary: %HaveSameMap(a, b), input: %HaveSameMap(c, d), control: %HaveSameMap(e, f) }));
    `);
    expect(r.control).toBe(false);
    expect(r.summary).toBe(true);
    expect(r.input).toBe(true);
  });
});
