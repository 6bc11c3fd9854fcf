import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  execId,
  execIdFactory,
  readBootId,
  parseStat,
  parseCmdline,
  parseStatusUid,
  readUptimeNs,
  RealProcFs,
  BOOT_ID_PATH,
} from '../../src/process/index.js';
import { PatrolError } from '../../src/shared/errors.js';

const BOOT = '3c1e6a2e-93c7-4d0b-9f57-0b1a2f5a9d11';

describe('execId', () => {
  it('is 16 lowercase hex chars and deterministic', () => {
    const a = execId(BOOT, 1234, 5_000_000_123n);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(execId(BOOT, 1234, 5_000_000_123n)).toBe(a);
    expect(execIdFactory(BOOT)(1234, 5_000_000_123n)).toBe(a);
  });

  it('depends on boot id, pid and start time', () => {
    const a = execId(BOOT, 1234, 5_000_000_123n);
    expect(execId('other-boot', 1234, 5_000_000_123n)).not.toBe(a);
    expect(execId(BOOT, 1235, 5_000_000_123n)).not.toBe(a);
    expect(execId(BOOT, 1234, 5_000_000_124n)).not.toBe(a);
  });

  it('handles the u64 extremes', () => {
    expect(execId(BOOT, 1, 0n)).toMatch(/^[0-9a-f]{16}$/);
    expect(execId(BOOT, 4194304, 2n ** 64n - 1n)).toMatch(/^[0-9a-f]{16}$/);
    expect(execId(BOOT, 1, 0n)).not.toBe(execId(BOOT, 1, 2n ** 64n - 1n));
  });

  it('property: same pid, different start time -> different id (exact, not probabilistic)', () => {
    const id = execIdFactory(BOOT);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4194304 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        (pid, s1, s2) => {
          fc.pre(s1 !== s2);
          return id(pid, s1) !== id(pid, s2);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('no collisions among 200k realistic (pid, start) pairs', () => {
    const id = execIdFactory(BOOT);
    const seen = new Set<string>();
    let t = 10_000_000_000n;
    for (let i = 0; i < 200_000; i++) {
      t += BigInt(1 + ((i * 7919) % 50_000));
      seen.add(id(1 + (i % 32768), t));
    }
    expect(seen.size).toBe(200_000);
  });

  it('readBootId reads and trims; fails with a PatrolError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-bootid-'));
    const p = join(dir, 'boot_id');
    writeFileSync(p, `${BOOT}\n`);
    expect(readBootId(p)).toBe(BOOT);
    expect(() => readBootId(join(dir, 'missing'))).toThrow(PatrolError);
    if (existsSync(BOOT_ID_PATH)) expect(readBootId()).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('procfs parsing', () => {
  const tail = (state: string, ppid: number, start: number) =>
    `${state} ${ppid} 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 ${start} 1000 50 18446744073709551615`;

  it('parses a plain stat line', () => {
    const st = parseStat(Buffer.from(`42 (bash) ${tail('S', 1, 12345)}\n`));
    expect(st).toEqual({ pid: 42, comm: 'bash', state: 'S', ppid: 1, startTicks: 12345 });
  });

  it('parses comm containing ") ", spaces and parentheses from the LAST ")"', () => {
    const st = parseStat(Buffer.from(`7 (a) b) S 9 (x) ${tail('Z', 77, 999)}\n`));
    expect(st).toMatchObject({ pid: 7, comm: 'a) b) S 9 (x', state: 'Z', ppid: 77, startTicks: 999 });
  });

  it('keeps raw comm bytes when they are not UTF-8', () => {
    const buf = Buffer.concat([Buffer.from('8 ('), Buffer.from([0xff, 0x41]), Buffer.from(`) ${tail('R', 2, 5)}`)]);
    const st = parseStat(buf)!;
    expect(st.comm).toBe('\ufffdA');
    expect(st.commRaw).toEqual(Buffer.from([0xff, 0x41]));
  });

  it('rejects garbage', () => {
    expect(parseStat(Buffer.from(''))).toBeNull();
    expect(parseStat(Buffer.from('12 (x) S 1'))).toBeNull();
    expect(parseStat(Buffer.from('no parens at all'))).toBeNull();
  });

  it('parses cmdline', () => {
    expect(parseCmdline(Buffer.from('ls\0-l\0/tmp dir\0'))).toEqual(['ls', '-l', '/tmp dir']);
    expect(parseCmdline(Buffer.from('a\0\0b\0'))).toEqual(['a', '', 'b']);
    expect(parseCmdline(Buffer.from('setproctitle style'))).toEqual(['setproctitle style']);
    expect(parseCmdline(Buffer.alloc(0))).toEqual([]);
  });

  it('parses the real uid from status', () => {
    expect(parseStatusUid('Name:\tx\nState:\tS\nUid:\t1000\t0\t1000\t1000\nGid:\t5\t5\t5\t5\n')).toBe(1000);
    expect(parseStatusUid('Name:\tx\n')).toBeNull();
  });

  it('reads uptime as ns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-uptime-'));
    const p = join(dir, 'uptime');
    writeFileSync(p, '664.94 1255.62\n');
    expect(readUptimeNs(p)).toBe(664_940_000_000n);
  });

  it('RealProcFs reads this process', () => {
    const fs = new RealProcFs();
    const st = fs.readStat(process.pid)!;
    expect(st.pid).toBe(process.pid);
    expect(st.ppid).toBe(process.ppid);
    expect(st.startTicks).toBeGreaterThan(0);
    expect(fs.readCmdline(process.pid)!.length).toBeGreaterThan(0);
    expect(fs.readUid(process.pid)).toBe(process.getuid!());
    expect(fs.listPids()).toContain(process.pid);
    expect(fs.readStat(0x7ffffff0)).toBeNull();
    expect(fs.readCmdline(0x7ffffff0)).toBeNull();
  });
});
