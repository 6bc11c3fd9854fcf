// The runtime's start-up pages: which mappings are advised, and that advising them really takes
// the executable's pages out of a process's RSS (in a child Node, so this runner's own memory is
// left alone), while the child keeps working.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { STARTUP_PAGE_RELEASES_MS, readOnlyMappingsOf, rssFileBytes, scheduleStartupPageRelease } from '../../src/app/startup-pages.js';
import { native } from '../../src/kernel/native.js';

const MODULE = fileURLToPath(new URL('../../dist/app/startup-pages.js', import.meta.url));
const SCRATCH = fileURLToPath(new URL('../../tmp/', import.meta.url));

describe('start-up pages', () => {
  it('picks only the non-writable mappings of the executable', () => {
    const maps = [
      '00400000-00600000 r--p 00000000 fd:01 123 /opt/node/bin/node',
      '00600000-02600000 r-xp 00200000 fd:01 123 /opt/node/bin/node',
      '02600000-02700000 rw-p 02200000 fd:01 123 /opt/node/bin/node',
      '02700000-02800000 r--p 00000000 fd:01 124 /opt/node/bin/node-other',
      '03000000-03100000 rw-p 00000000 00:00 0                          [heap]',
      '7f0000000000-7f0000001000 r--p 00000000 fd:01 125 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f0000002000-7f0000003000 r-xp 00000000 fd:01 126 /opt/a dir/bin/node',
      'garbage line',
    ].join('\n');
    expect(readOnlyMappingsOf(maps, '/opt/node/bin/node')).toEqual([
      { start: 0x400000, length: 0x200000 },
      { start: 0x600000, length: 0x2000000 },
    ]);
    // a path with a space is matched whole
    expect(readOnlyMappingsOf(maps, '/opt/a dir/bin/node')).toEqual([{ start: 0x7f0000002000, length: 0x1000 }]);
    expect(rssFileBytes('Name:\tnode\nRssFile:\t   72944 kB\n')).toBe(72944 * 1024);
    expect(rssFileBytes('Name:\tnode\n')).toBeNull();
  });

  it('the addon refuses what is not a page-aligned range, and reports an unmapped one', () => {
    const n = native();
    for (const [a, len] of [[Number.NaN, 4096], [4096, Number.NaN], [4097, 4096], [-4096, 4096], [0, 4096], [4096, 0], [2 ** 60, 4096]]) {
      expect(() => n.pageOut!(a!, len!), `${a}, ${len}`).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    // a page-aligned range with nothing mapped: madvise's own answer, ENOMEM (12), not a throw
    expect(n.pageOut!(4096, 4096)).toBe(12);
  });

  it("takes the executable's pages out of the RSS, and the process goes on", () => {
    const script = `
      import { releaseStartupPages } from ${JSON.stringify(MODULE)};
      const r = releaseStartupPages();
      // the process still works: compile and run fresh code, use Intl (ICU data lives in the binary)
      const f = new Function('a', 'return a.map((x) => x * 2).reduce((s, x) => s + x, 0)');
      const ok = f([1, 2, 3]) === 12 && new Intl.NumberFormat('de-DE').format(1234.5) === '1.234,5';
      // every advised mapping now reads back page by page: smaps' VmFlags "rr" (MADV_RANDOM)
      const { readFileSync, realpathSync } = await import('node:fs');
      const exe = realpathSync(process.execPath);
      const flags = readFileSync('/proc/self/smaps', 'utf8').split(/\\n(?=[0-9a-f]+-[0-9a-f]+ )/)
        .filter((b) => b.split('\\n')[0].endsWith(' ' + exe) && !/^\\S+ .w/.test(b))
        .map((b) => / rr( |$)/m.test(/^VmFlags:(.*)$/m.exec(b)?.[1] ?? ''));
      console.log(JSON.stringify({ ...r, ok, random: flags.length === r.mappings && flags.every(Boolean) }));
    `;
    // a copy of the runtime: the kernel keeps pages another process maps too (this runner maps
    // the same binary), and the child's must be its own, as the agent's are. The copy sits in the
    // repository's ignored /tmp, not the system's, which may be a tmpfs (pages there are not file
    // pages the kernel can drop).
    mkdirSync(SCRATCH, { recursive: true });
    const dir = mkdtempSync(join(SCRATCH, 'pages-'));
    const node = join(dir, 'node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
    const p = spawnSync(node, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    expect(p.status, p.stderr).toBe(0);
    const r = JSON.parse(p.stdout.trim()) as { mappings: number; advisedBytes: number; rssFileBefore: number; rssFileAfter: number; error: string | null; ok: boolean; random: boolean };
    expect(r.error).toBeNull();
    expect(r.ok).toBe(true);
    expect(r.random).toBe(true);
    expect(r.mappings).toBeGreaterThan(0);
    expect(r.advisedBytes).toBeGreaterThan(10 << 20);
    // the binary's pages this child touched to start are mostly gone from its RSS
    expect(r.rssFileBefore - r.rssFileAfter).toBeGreaterThan(10 << 20);
  });

  it('gives the pages back once start-up is over and again after the first compiles; stop() cancels what is left', () => {
    expect(STARTUP_PAGE_RELEASES_MS).toEqual([10_000, 60_000]);
    vi.useFakeTimers();
    try {
      const lines: unknown[] = [];
      const log = { info: (o: unknown) => lines.push(o), warn: (o: unknown) => lines.push(o) } as never;
      const s = scheduleStartupPageRelease(log, [1_000, 5_000]);
      vi.advanceTimersByTime(999);
      expect(lines).toHaveLength(0);
      vi.advanceTimersByTime(1);
      expect(lines).toEqual([expect.objectContaining({ pass: 1 })]);
      s.stop();
      vi.advanceTimersByTime(10_000);
      expect(lines).toHaveLength(1);
      const t = scheduleStartupPageRelease(log, [1_000, 5_000]);
      vi.advanceTimersByTime(5_000);
      expect(lines.slice(1)).toEqual([expect.objectContaining({ pass: 1 }), expect.objectContaining({ pass: 2 })]);
      t.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
