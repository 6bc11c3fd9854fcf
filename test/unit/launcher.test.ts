// bin/patrol's first line picks the runtime and, for `agent`, the Node flags and the malloc
// setting the agent's cost figures were measured with (docs/config.md, "The agent's Node.js
// flags"). Run here against a stand-in runtime that prints what it was given.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-launcher-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, '.runtime/node/bin'), { recursive: true });
  copyFileSync(join(ROOT, 'bin/patrol'), join(dir, 'bin/patrol'));
  chmodSync(join(dir, 'bin/patrol'), 0o755);
  const node = join(dir, '.runtime/node/bin/node');
  writeFileSync(node, '#!/bin/sh\necho "arena=${MALLOC_ARENA_MAX-unset}"\nfor a in "$@"; do echo "arg=$a"; done\n');
  chmodSync(node, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function launch(args: string[], env: Record<string, string> = {}): { arena: string; flags: string[]; rest: string[] } {
  const base = { ...process.env };
  for (const k of ['MALLOC_ARENA_MAX', 'PATROL_AGENT_NODE_FLAGS', 'PATROL_AGENT_NODE_FLAGS_EXTRA']) delete base[k];
  const out = execFileSync(join(dir, 'bin/patrol'), args, { encoding: 'utf8', env: { ...base, ...env } }).trim().split('\n');
  const argv = out.filter((l) => l.startsWith('arg=')).map((l) => l.slice(4));
  const script = argv.findIndex((a) => a.endsWith('bin/patrol'));
  return { arena: out[0]!.slice('arena='.length), flags: argv.slice(0, script), rest: argv.slice(script + 1) };
}

describe('bin/patrol', () => {
  it('starts the agent with its Node flags and one malloc arena', () => {
    expect(launch(['agent', '--checks', 'checks'])).toEqual({
      arena: '1',
      flags: ['--max-semi-space-size=2', '--expose-gc'],
      rest: ['agent', '--checks', 'checks'],
    });
  });

  it('PATROL_AGENT_NODE_FLAGS replaces the flags, PATROL_AGENT_NODE_FLAGS_EXTRA adds to them, MALLOC_ARENA_MAX set is kept', () => {
    expect(launch(['agent'], { PATROL_AGENT_NODE_FLAGS: '--max-semi-space-size=8' }).flags).toEqual(['--max-semi-space-size=8']);
    expect(launch(['agent'], { PATROL_AGENT_NODE_FLAGS_EXTRA: '--perf-prof --trace-gc' }).flags).toEqual([
      '--max-semi-space-size=2', '--expose-gc', '--perf-prof', '--trace-gc',
    ]);
    expect(launch(['agent'], { MALLOC_ARENA_MAX: '4' }).arena).toBe('4');
  });

  it('other commands run with no flags and malloc as it is', () => {
    expect(launch(['ps', '--json'])).toEqual({ arena: 'unset', flags: [], rest: ['ps', '--json'] });
  });
});
