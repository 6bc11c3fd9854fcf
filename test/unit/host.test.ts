// Node fact readers: parsers against recorded text, and the live readers against this machine.
import { describe, expect, it } from 'vitest';
import {
  cgroupOwner, cpuUsage, fsUsage, parseCpuStat, parseDiskstats, parseFileNr, parseLoadavg, parseMeminfo,
  parseMountinfo, parseNetDev, parsePsi, readCpuStat, readMeminfo, readMounts, readPsi, CgroupResolver, readCgroupStats, cgroup2Root,
  CGROUP_ABSENT_RECHECK_MS, CGROUP_STAT_FILES, CGROUP_USAGE_FILES, type CgroupFileMemo,
} from '../../src/host/index.js';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

describe('host parsers', () => {
  it('cpu stat and usage', () => {
    const a = parseCpuStat('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\nctxt 5\nprocesses 9\nprocs_running 2\nprocs_blocked 1\n');
    const b = parseCpuStat('cpu  200 0 100 850 50 0 0 0 0 0\n');
    expect(a.perCpu).toHaveLength(1);
    expect(a.procsBlocked).toBe(1);
    // 150 busy ticks of 200 elapsed.
    expect(cpuUsage(a.total, b.total).busyPct).toBeCloseTo(75);
    expect(cpuUsage(a.total, a.total).busyPct).toBe(0);
  });
  it('meminfo in bytes, usage from MemAvailable', () => {
    const m = parseMeminfo('MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    250 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 3\n');
    expect(m.totalBytes).toBe(1024000);
    expect(m.usagePct).toBeCloseTo(75);
    expect(m.swapUsagePct).toBe(0);
    expect(m.fields.HugePages_Total).toBe(3);
  });
  it('loadavg, file-nr, psi', () => {
    expect(parseLoadavg('0.50 1.25 2.00 3/456 789\n')).toEqual({ load1: 0.5, load5: 1.25, load15: 2, runnable: 3, threads: 456 });
    expect(parseFileNr('2000\t0\t10000\n').usagePct).toBeCloseTo(20);
    const p = parsePsi('some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=99\n');
    expect(p.some.avg10).toBe(1.5);
    expect(p.full?.totalUs).toBe(99);
  });
  it('diskstats skips loops and partitions; sectors are 512 bytes', () => {
    const d = parseDiskstats(
      '   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n 253       0 vda 10 0 20 5 30 0 40 6 1 7 8 0 0 0 0 0 0\n 253       1 vda1 10 0 20 5 30 0 40 6 0 7 8 0 0 0 0 0 0\n',
    );
    expect(d.map((x) => x.device)).toEqual(['vda']);
    expect(d[0]).toMatchObject({ readBytes: 20 * 512, writeBytes: 40 * 512, inFlight: 1, ioTicksMs: 7 });
  });
  it('mountinfo: escapes, pseudo filesystems, overmounts', () => {
    const text = [
      '22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
      '23 22 0:21 / /proc rw - proc proc rw',
      '24 22 0:30 / /mnt/my\\040disk rw - tmpfs tmpfs rw',
      '25 24 0:31 / /mnt/my\\040disk rw - tmpfs other rw',
    ].join('\n');
    const m = parseMountinfo(text);
    expect(m.map((x) => x.mountPoint)).toEqual(['/', '/mnt/my disk']);
    expect(m[1]!.source).toBe('other');
  });
  it('net dev', () => {
    const n = parseNetDev('Inter-|..\n face |..\n  eth0: 100 2 0 0 0 0 0 0 200 3 0 0 0 0 0 0\n');
    expect(n[0]).toMatchObject({ iface: 'eth0', rxBytes: 100, txBytes: 200, txPackets: 3 });
  });
  it('cgroup owners', () => {
    expect(cgroupOwner('/system.slice/nginx.service')).toEqual({ kind: 'systemd', name: 'nginx.service' });
    expect(cgroupOwner('/user.slice/user-1000.slice/session-3.scope').name).toBe('session-3.scope');
    const id = 'a'.repeat(64);
    expect(cgroupOwner(`/system.slice/docker-${id}.scope`)).toMatchObject({ kind: 'docker', containerId: 'aaaaaaaaaaaa' });
    expect(cgroupOwner(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_12ab_34cd_56ef_1234567890ab.slice/cri-containerd-${id}.scope`)).toMatchObject({
      kind: 'kubernetes', podUid: '1234abcd-12ab-34cd-56ef-1234567890ab', containerId: 'aaaaaaaaaaaa',
    });
    expect(cgroupOwner('/').kind).toBe('root');
  });
});

describe('host readers on this machine', () => {
  it('read real files', () => {
    expect(readCpuStat().perCpu.length).toBeGreaterThan(0);
    expect(readMeminfo().totalBytes).toBeGreaterThan(0);
    expect(readMounts().some((m) => m.mountPoint === '/')).toBe(true);
    const root = fsUsage('/');
    expect(root.totalBytes).toBeGreaterThan(0);
    expect(root.usagePct).toBeGreaterThanOrEqual(0);
    expect(readPsi('nonexistent' as never)).toBeUndefined();
  });
  it('resolves the cgroup id of the root and of a child to their paths', () => {
    let t = 0;
    const r = new CgroupResolver(cgroup2Root(), 1000, () => t);
    const rootIno = statSync(cgroup2Root(), { bigint: true }).ino;
    expect(r.resolve(rootIno)).toBe('/');
    expect(r.resolve(123456789n)).toBeUndefined(); // unknown: no second walk inside minRescanMs
    expect(r.scans).toBe(1);
    t = 5000;
    r.resolve(123456789n);
    expect(r.scans).toBe(2);
    expect(readCgroupStats('/').cpuUsageUs ?? 0).toBeGreaterThanOrEqual(0);
  });
});

describe('cgroup stats and the absent-file memo', () => {
  // A cgroup tree in a temporary directory: its files are read by path, like cgroupfs files
  // that are not kept open.
  const tree = () => {
    const root = mkdtempSync(path.join(tmpdir(), 'patrol-cg-'));
    mkdirSync(path.join(root, 'app.slice'));
    writeFileSync(path.join(root, 'app.slice', 'cpu.stat'), 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n');
    return root;
  };

  it('reads every counter the cgroup has, and parses each file', () => {
    const root = tree();
    try {
      const dir = path.join(root, 'app.slice');
      writeFileSync(path.join(dir, 'memory.current'), '4096\n');
      writeFileSync(path.join(dir, 'memory.max'), 'max\n');
      writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n');
      writeFileSync(path.join(dir, 'io.stat'), '8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=5 wbytes=1 rios=1 wios=1\n');
      writeFileSync(path.join(dir, 'pids.current'), '7\n');
      expect(readCgroupStats('/app.slice', root)).toEqual({
        cpuUsageUs: 1500, memoryCurrentBytes: 4096, memoryMaxBytes: undefined, memoryPeakBytes: undefined,
        ioReadBytes: 105, ioWriteBytes: 21, oomKills: 2, pids: 7,
      });
      // the sweep's reads: CPU, memory and IO only, and an unread file is not marked absent
      const memo: CgroupFileMemo = { absent: 0, recheckAtMs: 0 };
      expect(readCgroupStats('/app.slice', root, memo, 0, CGROUP_USAGE_FILES)).toEqual({
        cpuUsageUs: 1500, memoryCurrentBytes: 4096, memoryMaxBytes: undefined, memoryPeakBytes: undefined,
        ioReadBytes: 105, ioWriteBytes: 21, oomKills: undefined, pids: undefined,
      });
      expect(memo.absent).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('does not ask again about an absent file before the recheck, then sees it', () => {
    const root = tree();
    try {
      const memo: CgroupFileMemo = { absent: 0, recheckAtMs: 0 };
      const first = readCgroupStats('/app.slice', root, memo, 1_000);
      expect(first.cpuUsageUs).toBe(1500);
      expect(first.memoryCurrentBytes).toBeUndefined();
      // every file but cpu.stat was absent
      const absent = CGROUP_STAT_FILES.filter((_, i) => (memo.absent & (1 << i)) !== 0);
      expect(absent).toEqual(CGROUP_STAT_FILES.filter((f) => f !== 'cpu.stat'));
      // the memory controller appears; a present file is still read every time
      writeFileSync(path.join(root, 'app.slice', 'memory.current'), '8192\n');
      writeFileSync(path.join(root, 'app.slice', 'cpu.stat'), 'usage_usec 2500\n');
      const soon = readCgroupStats('/app.slice', root, memo, 1_000 + CGROUP_ABSENT_RECHECK_MS - 1);
      expect(soon.cpuUsageUs).toBe(2500);
      expect(soon.memoryCurrentBytes).toBeUndefined();
      // without a memo, or once the recheck is due, it is read
      expect(readCgroupStats('/app.slice', root).memoryCurrentBytes).toBe(8192);
      const later = readCgroupStats('/app.slice', root, memo, 1_000 + CGROUP_ABSENT_RECHECK_MS);
      expect(later.memoryCurrentBytes).toBe(8192);
      expect(memo.absent & (1 << CGROUP_STAT_FILES.indexOf('memory.current'))).toBe(0);
      // a file that goes away is absent from its next read on
      rmSync(path.join(root, 'app.slice', 'cpu.stat'));
      expect(readCgroupStats('/app.slice', root, memo, 1_000 + CGROUP_ABSENT_RECHECK_MS + 1).cpuUsageUs).toBeUndefined();
      expect(memo.absent & (1 << CGROUP_STAT_FILES.indexOf('cpu.stat'))).not.toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
