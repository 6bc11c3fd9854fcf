// `patrol record FILE`: records the lifecycle and state event stream as NDJSON (the format of
// `patrol trace --json`, docs/ndjson.md) for `patrol check --replay`. Needs root, like trace.
import { createWriteStream } from 'node:fs';
import type { Command } from 'commander';
import { parseDuration } from './parse.js';

export function registerRecord(program: Command): void {
  program
    .command('record')
    .description('record the event stream to an NDJSON file, for patrol check --replay (root)')
    .argument('<file>', 'output file (overwritten)')
    .option('--duration <time>', 'stop after this long (e.g. 10m); default: until Ctrl-C', parseDuration)
    .action(async (file: string, opts: { duration?: number }) => {
      const out = createWriteStream(file, { mode: 0o600 });
      await new Promise<void>((resolve, reject) => {
        out.once('open', () => resolve());
        out.once('error', reject);
      }).catch((e: NodeJS.ErrnoException) => {
        throw new Error(`cannot write ${file}: ${e.code ?? e.message}`);
      });
      const { runTrace } = await import('./trace.js');
      process.stderr.write(`patrol: recording to ${file}\n`);
      await runTrace({ json: true, ...(opts.duration !== undefined ? { duration: opts.duration } : {}) }, out);
      await new Promise<void>((resolve) => out.end(resolve));
    });
}
