// V8 collects the old generation late: at 200 exec/s the agent's heap held ~44 MB of live
// objects while V8 reported 170+ MB in use and RSS grew by half within two minutes
// (bench/README.md, "Session 4"). The governor asks for a major GC when the heap in use has
// grown past `growth` × what the last major GC left, checked every `intervalMs`: a collection
// of a small live heap every minute or so, instead of a heap five times its live size.
// A regular major GC frees objects but keeps their pages, so RSS still holds the heap's peaks.
// V8's compacting "last resort" GC gives them back, but was tried and left out: it pauses the
// JS thread 0.1–0.3 s, and nodes compacting at different times made RSS a noisy gate for
// canary rollouts (bench/README.md, "Session 5").
// It needs `--expose-gc` (bin/patrol passes it to the agent); without it, it does nothing.
import { getHeapStatistics } from 'node:v8';
import type { Logger } from '../shared/log.js';
import { Ticker } from './ticker.js';

export interface HeapGovernorOptions {
  intervalMs?: number;
  /** collect when heap used > growth × the heap left by the last collection */
  growth?: number;
  /** …or when it has grown by this much, whichever comes first */
  headroomBytes?: number;
  /** never collect below this much heap in use */
  floorBytes?: number;
  /** the agent's shared ticker: the check runs in the once-a-second sweeps' wakeup */
  ticker?: Ticker;
}

type GcFn = (opts: { type: 'major'; execution: 'async' }) => Promise<void>;

export interface HeapGovernor {
  stop(): void;
  /** major collections asked for so far */
  collections(): number;
}

export function startHeapGovernor(log: Logger, opts: HeapGovernorOptions = {}): HeapGovernor | null {
  const gc = (globalThis as { gc?: GcFn }).gc;
  if (typeof gc !== 'function') return null;
  // every 5 s: flat out (~400 exits/s here) the heap in use can grow by 20 MB in 15 s, and a
  // peak the governor lets through stays in RSS
  const intervalMs = opts.intervalMs ?? 5_000;
  const growth = opts.growth ?? 1.5;
  const floor = opts.floorBytes ?? 48 << 20;
  // The headroom is capped: RSS keeps the highest peak the heap ever reached, and 1.5× of a live
  // heap that happened to be large (55 MB: 82 MB, plus 5 s of allocation) made a new peak, and a
  // step in RSS, every few hundred thousand processes in the million-process soak.
  const headroom = opts.headroomBytes ?? 16 << 20;
  let base = getHeapStatistics().used_heap_size;
  let busy = false;
  let collections = 0;
  const tick = (opts.ticker ?? new Ticker()).every(intervalMs, () => {
    if (busy) return;
    const used = getHeapStatistics().used_heap_size;
    if (used < floor || used < Math.min(base * growth, base + headroom)) return;
    busy = true;
    gc({ type: 'major', execution: 'async' })
      .then(() => {
        collections++;
        base = getHeapStatistics().used_heap_size;
        log.debug({ before: used, after: base }, 'heap governor: major GC');
      })
      .catch(() => {})
      .finally(() => (busy = false));
  });
  return { stop: () => tick.cancel(), collections: () => collections };
}
