// V8 collects the old generation late: at 200 exec/s the agent's heap held ~44 MB of live
// objects while V8 reported 170+ MB in use and RSS grew by half within two minutes
// (bench/README.md, "Session 4"). And a regular major GC frees objects but keeps the pages they
// were on: RSS keeps every peak of the heap. The governor, checked every `intervalMs`:
// - asks for a major GC when the heap in use has grown past `growth` × what the last one left
//   (or by `headroomBytes`): a collection of a small live heap, not of one five times its size;
// - asks for a compacting, memory-reducing GC (V8's "last resort": it moves the live objects
//   together and gives the emptied pages back) when RSS has risen `rssSlackBytes` above what the
//   last such GC left, at most once per `compactEveryMs`: a pause of ~0.1–0.3 s, during which
//   the ring buffers what arrives, so RSS falls back instead of ratcheting up with each peak.
//   Flat out here, RSS fell from ~185 to ~148 MB at each one (bench/README.md, "Session 5").
// It needs `--expose-gc` (bin/patrol passes it to the agent); without it, it does nothing.
import { getHeapStatistics } from 'node:v8';
import type { Logger } from '../shared/log.js';

export interface HeapGovernorOptions {
  intervalMs?: number;
  /** collect when heap used > growth × the heap left by the last collection */
  growth?: number;
  /** …or when it has grown by this much, whichever comes first */
  headroomBytes?: number;
  /** never collect below this much heap in use */
  floorBytes?: number;
  /** compact when RSS is this far above what the last compaction left */
  rssSlackBytes?: number;
  /** …at most this often */
  compactEveryMs?: number;
}

type GcFn = (opts: { type: 'major'; execution: 'async'; flavor?: 'regular' | 'last-resort' }) => Promise<void>;

export interface HeapGovernor {
  stop(): void;
  stats(): HeapGovernorStats;
}

export interface HeapGovernorStats {
  collections: number;
  compactions: number;
  /** pause of the last compaction, ms */
  lastCompactionMs: number | null;
}

export function startHeapGovernor(log: Logger, opts: HeapGovernorOptions = {}): HeapGovernor | null {
  const gc = (globalThis as { gc?: GcFn }).gc;
  if (typeof gc !== 'function') return null;
  // every 5 s: flat out (~400 exits/s here) the heap in use can grow by 20 MB in 15 s
  const intervalMs = opts.intervalMs ?? 5_000;
  const growth = opts.growth ?? 1.5;
  const headroom = opts.headroomBytes ?? Infinity;
  // A compaction pauses the JS thread ~0.1–0.3 s: every 5 min at most, it costs < 0.1 % of a core.
  const rssSlack = opts.rssSlackBytes ?? 8 * 2 ** 20;
  const compactEveryMs = opts.compactEveryMs ?? 300_000;
  const floor = opts.floorBytes ?? 48 << 20;
  const stats: HeapGovernorStats = { collections: 0, compactions: 0, lastCompactionMs: null };
  let base = getHeapStatistics().used_heap_size;
  let rssLow = process.memoryUsage.rss();
  let lastCompactAt = performance.now();
  let busy = false;
  const run = (flavor: 'regular' | 'last-resort', used: number) => {
    busy = true;
    const t0 = performance.now();
    gc({ type: 'major', execution: 'async', flavor })
      .then(() => {
        base = getHeapStatistics().used_heap_size;
        if (flavor === 'last-resort') {
          stats.compactions++;
          stats.lastCompactionMs = performance.now() - t0;
          lastCompactAt = performance.now();
          rssLow = process.memoryUsage.rss();
        } else stats.collections++;
        log.debug({ flavor, before: used, after: base, rss: process.memoryUsage.rss(), ms: Math.round(performance.now() - t0) }, 'heap governor: major GC');
      })
      .catch(() => {})
      .finally(() => (busy = false));
  };
  const timer = setInterval(() => {
    if (busy) return;
    const used = getHeapStatistics().used_heap_size;
    if (performance.now() - lastCompactAt >= compactEveryMs) {
      const rss = process.memoryUsage.rss();
      if (rss < rssLow) rssLow = rss;
      else if (rss > rssLow + rssSlack) return run('last-resort', used);
    }
    if (used < floor || (used < base * growth && used < base + headroom)) return;
    run('regular', used);
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), stats: () => ({ ...stats }) };
}
