// Crash hygiene. patrol attaches through BPF links held by file descriptors only, so a killed
// agent leaves nothing attached: the kernel drops the links with the last fd. Anything pinned
// under our bpffs directory (by an older version, or by hand while debugging) would survive,
// so it is removed at start.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';

export function removeStalePins(pinDir: string, log: Logger): number {
  if (!existsSync(pinDir)) return 0;
  let removed = 0;
  for (const name of readdirSync(pinDir)) {
    try {
      rmSync(join(pinDir, name), { recursive: true, force: true });
      removed++;
    } catch (e) {
      log.warn({ pin: join(pinDir, name), err: (e as Error).message }, 'could not remove stale pin');
    }
  }
  if (removed) log.warn({ pinDir, removed }, 'removed pins left by a previous agent');
  return removed;
}
