// The heap governor in a child Node with --expose-gc (the agent's flags): with thresholds at
// zero it must run both kinds of collection, and without gc() it must do nothing.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../dist/app/heap-governor.js', import.meta.url));
const script = `
import { startHeapGovernor } from ${JSON.stringify(MODULE)};
const log = { debug() {}, info() {}, warn() {}, error() {} };
const g = startHeapGovernor(log, { intervalMs: 20, growth: 1, floorBytes: 0, rssSlackBytes: 0, compactEveryMs: 0 });
if (g === null) { console.log(JSON.stringify(null)); process.exit(0); }
let junk = [];
const t = setInterval(() => { for (let i = 0; i < 20000; i++) junk.push({ i, s: 'x' + i }); if (junk.length > 200000) junk = []; }, 5);
setTimeout(() => { clearInterval(t); console.log(JSON.stringify(g.stats())); g.stop(); }, 1500);
`;

function run(flags: string[]): unknown {
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim());
}

describe('heap governor', () => {
  it('runs regular collections and compactions when its thresholds are passed', () => {
    const s = run(['--expose-gc']) as { collections: number; compactions: number; lastCompactionMs: number | null };
    expect(s.compactions).toBeGreaterThan(0);
    expect(s.collections + s.compactions).toBeGreaterThan(1);
    expect(s.lastCompactionMs).toBeGreaterThanOrEqual(0);
  });

  it('does nothing without --expose-gc', () => {
    expect(run([])).toBeNull();
  });
});
