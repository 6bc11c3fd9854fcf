// Start-up pages of the runtime, given back once the agent is warm.
//
// Why. The node binary is ~100 MB of code and read-only data (V8, ICU, OpenSSL, the built-in
// JavaScript). Starting the agent touches 55 MB of it: the bootstrap, the module loader, the
// compilers warming up. Those pages stay counted in the agent's RSS for the life of the process,
// although the warm agent runs out of ~13 MB of them (bench/README.md, "Session 11"). After the
// warm-up, the agent asks the kernel to reclaim the binary's file pages (MADV_PAGEOUT). They are
// clean file pages: nothing is written anywhere, and a page that is needed again is read back
// from the page cache (or the file) at its next touch. Pages another process also maps are left
// alone by the kernel. The ranges are advised MADV_RANDOM first: a page touched again is read back
// alone, not with the readahead and fault-around that brought most of the start-up pages in
// (RssFile of the warm agent 25 → 22 MB; bench/README.md, "Session 22").
//
// Only mappings of the executable itself that are not writable are advised: never the V8 heap,
// never a private page the process wrote to. malloc's free memory is trimmed at the same time:
// loading the BPF objects parses the kernel's BTF into tens of MB that are freed after the load
// but kept by malloc.
import { readFileSync, realpathSync } from 'node:fs';
import { native } from '../kernel/native.js';
import type { Logger } from '../shared/log.js';

export interface MappedRange {
  start: number;
  length: number;
}

/** The non-writable, file-backed mappings of `file` in a /proc/<pid>/maps text. */
export function readOnlyMappingsOf(maps: string, file: string): MappedRange[] {
  const out: MappedRange[] = [];
  for (const line of maps.split('\n')) {
    // "start-end perms offset dev inode path"; the path is the rest of the line (it may hold spaces)
    const m = /^([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][ps]) [0-9a-f]+ \S+ \d+\s+(.*)$/.exec(line);
    if (m === null || m[4] !== file || m[3]![1] === 'w') continue;
    const start = parseInt(m[1]!, 16);
    const end = parseInt(m[2]!, 16);
    if (end > start && Number.isSafeInteger(end)) out.push({ start, length: end - start });
  }
  return out;
}

/** Resident bytes of file-backed pages (RssFile in /proc/self/status), or null. */
export function rssFileBytes(status = readFileSync('/proc/self/status', 'utf8')): number | null {
  const m = /^RssFile:\s+(\d+) kB/m.exec(status);
  return m === null ? null : Number(m[1]) * 1024;
}

export interface StartupPagesReport {
  /** mappings advised */
  mappings: number;
  /** bytes of address space advised */
  advisedBytes: number;
  /** RssFile before and after, bytes (null when /proc did not say) */
  rssFileBefore: number | null;
  rssFileAfter: number | null;
  /** malloc_trim gave memory back */
  trimmed: boolean;
  /** why nothing was advised (no MADV_PAGEOUT before Linux 5.4, no addon), or null */
  error: string | null;
}

/** Advises the kernel to reclaim the executable's read-only pages now. */
export function releaseStartupPages(exe: string = realpathSync(process.execPath)): StartupPagesReport {
  const n = native();
  const rssFileBefore = rssFileBytes();
  const report: StartupPagesReport = { mappings: 0, advisedBytes: 0, rssFileBefore, rssFileAfter: rssFileBefore, trimmed: false, error: null };
  report.trimmed = n.trimHeap?.() ?? false;
  if (typeof n.pageOut !== 'function') {
    report.error = 'the native addon has no pageOut';
    return report;
  }
  for (const r of readOnlyMappingsOf(readFileSync('/proc/self/maps', 'utf8'), exe)) {
    const err = n.pageOut(r.start, r.length, true);
    if (err !== 0) {
      // EINVAL: a kernel before 5.4 (no MADV_PAGEOUT); nothing else will work either
      report.error = err === 22 ? 'MADV_PAGEOUT needs Linux 5.4' : `madvise failed, errno ${err}`;
      break;
    }
    report.mappings++;
    report.advisedBytes += r.length;
  }
  report.rssFileAfter = rssFileBytes();
  return report;
}

/** When the start-up pages are given back, in ms after the agent is ready. The first pass, once
 *  start-up is over (modules loaded, config parsed, BPF objects loaded and their BTF freed), takes
 *  most of them; the second, when V8's first wave of compiles is over, what that wave touched. */
export const STARTUP_PAGE_RELEASES_MS: readonly number[] = [10_000, 60_000];

/** Releases the start-up pages at each of `atMs` (ms from now). */
export function scheduleStartupPageRelease(log: Logger, atMs: readonly number[] = STARTUP_PAGE_RELEASES_MS): { stop(): void } {
  const timers = atMs.map((ms, i) => {
    const timer = setTimeout(() => {
      try {
        const r = releaseStartupPages();
        const mb = (b: number | null) => (b === null ? null : Math.round(b / 1048576));
        if (r.error !== null) {
          if (i === 0) log.info({ reason: r.error }, 'start-up pages of the runtime kept');
        } else {
          log.info({ pass: i + 1, mappings: r.mappings, rss_file_mb_before: mb(r.rssFileBefore), rss_file_mb_after: mb(r.rssFileAfter), malloc_trimmed: r.trimmed }, 'start-up pages of the runtime given back');
        }
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'could not give back the start-up pages of the runtime');
      }
    }, ms);
    timer.unref();
    return timer;
  });
  return { stop: () => timers.forEach(clearTimeout) };
}
