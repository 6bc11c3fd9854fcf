// What loading the agent brings into its heap. An ESM import of node:http reads every export of
// the module, and its lazy WebSocket/MessageEvent exports then load undici and the web streams
// (2.9 MB of heap on Node 24) that nothing in the agent uses (src/shared/node-http.ts).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = (p: string) => fileURLToPath(new URL(`../../dist/${p}`, import.meta.url));

/** The Node-internal modules loaded by importing `file` in a fresh process. */
function internalsLoadedBy(file: string): string[] {
  const script = `const before = new Set(process.moduleLoadList); await import(${JSON.stringify(file)}); console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

// Only a Node whose node:http has the lazy WebSocket export (22.4+) loads undici this way; the
// project's runtime (Node 24, scripts/setup.sh) has it. `in` reads no getter.
const httpHasWebSocket = 'WebSocket' in (createRequire(import.meta.url)('node:http') as object);

describe.skipIf(!httpHasWebSocket)('module footprint (reads dist/: scripts/build.sh first)', () => {
  it('the agent and the API load no undici and no web streams', () => {
    // tsc's output, and the bundle bin/patrol runs (scripts/bundle.mjs)
    for (const file of [dist('app/agent.js'), dist('api/index.js'), dist('cli/client.js'), dist('pack/agent.js')]) {
      const loaded = internalsLoadedBy(file);
      expect(loaded.length, file).toBeGreaterThan(10); // the probe itself works: fastify, sqlite, ...
      expect(loaded.filter((m) => /undici|webstreams/.test(m)), file).toEqual([]);
    }
  });

  it('an ESM import of node:http would load them (what the probe guards against)', () => {
    const script = `const before = new Set(process.moduleLoadList); await import('node:http'); console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
    expect(loaded.some((m) => m.includes('undici'))).toBe(true);
  });
});
