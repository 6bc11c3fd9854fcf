// `patrol record FILE`: records the lifecycle and state event stream as NDJSON (the format of
// `patrol trace --json`, docs/ndjson.md) for `patrol check --replay`. Needs root, like trace.
import { constants, createWriteStream, openSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDuration } from './parse.js';

export function registerRecord(program: Command): void {
  program
    .command('record')
    .description('record the event stream to an NDJSON file, for patrol check --replay (root)')
    .argument('<file>', 'output file (must not exist, unless --force)')
    .option('--duration <time>', 'stop after this long (e.g. 10m); default: until Ctrl-C', parseDuration)
    .option('--force', 'overwrite an existing regular file')
    .action(async (file: string, opts: { duration?: number; force?: boolean }) => {
      // Run as root: never follow a symlink (it could point at /etc/shadow), never truncate an
      // existing file unless asked, and keep the recording (argv can hold secrets) owner-only.
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (opts.force ? constants.O_TRUNC : constants.O_EXCL);
      let fd: number;
      try {
        fd = openSync(file, flags, 0o600);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new Error(`${file} already exists; use --force to overwrite it`);
        if (code === 'ELOOP') throw new Error(`${file} is a symbolic link; refusing to write through it`);
        throw new Error(`cannot write ${file}: ${code ?? (e as Error).message}`);
      }
      const out = createWriteStream(file, { fd });
      const { runTrace } = await import('./trace.js');
      process.stderr.write(`patrol: recording to ${file}\n`);
      await runTrace({ json: true, ...(opts.duration !== undefined ? { duration: opts.duration } : {}) }, out);
      await new Promise<void>((resolve) => out.end(resolve));
    });
}
