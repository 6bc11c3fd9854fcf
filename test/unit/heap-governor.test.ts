// The heap governor in a child Node with --expose-gc (the agent's flags): with thresholds at
// zero it must collect, and without gc() it must do nothing.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../dist/app/heap-governor.js', import.meta.url));
const script = `
import { startHeapGovernor } from ${JSON.stringify(MODULE)};
const log = { debug() {}, info() {}, warn() {}, error() {} };
const g = startHeapGovernor(log, { intervalMs: 20, growth: 1, floorBytes: 0 });
if (g === null) { console.log(JSON.stringify(null)); process.exit(0); }
let junk = [];
const t = setInterval(() => { for (let i = 0; i < 20000; i++) junk.push({ i, s: 'x' + i }); if (junk.length > 200000) junk = []; }, 5);
setTimeout(() => { clearInterval(t); console.log(JSON.stringify({ collections: g.collections() })); g.stop(); }, 1500);
`;

function run(flags: string[]): unknown {
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim());
}

describe('heap governor', () => {
  it('asks for major collections when the heap grows past its threshold', () => {
    const s = run(['--expose-gc']) as { collections: number };
    expect(s.collections).toBeGreaterThan(1);
  });

  it('collects at the headroom cap, though the heap never grows by the factor', () => {
    const capped = `
import { startHeapGovernor } from ${JSON.stringify(MODULE)};
const g = startHeapGovernor({ debug() {} }, { intervalMs: 20, growth: 1000, headroomBytes: 1 << 20, floorBytes: 0 });
let junk = [];
const t = setInterval(() => { for (let i = 0; i < 20000; i++) junk.push({ i, s: 'x' + i }); if (junk.length > 200000) junk = []; }, 5);
setTimeout(() => { clearInterval(t); console.log(JSON.stringify({ collections: g.collections() })); g.stop(); }, 1500);
`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', capped], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout.trim()) as { collections: number }).collections).toBeGreaterThan(1);
  });

  it('leaves a heap below its floor alone', () => {
    const floor = `
import { startHeapGovernor } from ${JSON.stringify(MODULE)};
const g = startHeapGovernor({ debug() {} }, { intervalMs: 20, growth: 1, floorBytes: 1 << 30 });
setTimeout(() => { console.log(JSON.stringify({ collections: g.collections() })); g.stop(); }, 300);
`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', floor], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ collections: 0 });
  });

  it('does nothing without --expose-gc', () => {
    expect(run([])).toBeNull();
  });
});
