// memory_limit's sources (src/host/memory-limit.ts) on fake cgroup and proc trees: the tightest
// v2 memory.max on the path, the v1 hierarchical limit (hybrid hosts), "no limit" as undefined.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupV1MemoryLimit, cgroupV2MemoryLimit, findMemoryV1Root, processCgroups } from '../../src/host/index.js';

const root = mkdtempSync(join(tmpdir(), 'patrol-memlimit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const put = (path: string, text: string) => {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
};

describe('memory limits', () => {
  it('v2: the tightest memory.max from the cgroup up to the root; "max" is none', () => {
    put('v2/a/memory.max', '1073741824\n');
    put('v2/a/b/memory.max', 'max\n');
    put('v2/a/b/c/memory.max', '2147483648\n');
    put('v2/x/memory.max', 'max\n');
    const v2 = join(root, 'v2');
    expect(cgroupV2MemoryLimit('/a/b/c', v2)).toBe(1 << 30);
    expect(cgroupV2MemoryLimit('/a/b', v2)).toBe(1 << 30);
    expect(cgroupV2MemoryLimit('/x', v2)).toBeUndefined();
    expect(cgroupV2MemoryLimit('/', v2)).toBeUndefined();
    expect(cgroupV2MemoryLimit('/nowhere', v2)).toBeUndefined();
  });

  it('v1: hierarchical_memory_limit, else memory.limit_in_bytes; PAGE_COUNTER_MAX is none', () => {
    put('v1/app/memory.stat', 'cache 0\nrss 4096\nhierarchical_memory_limit 268435456\nhierarchical_memsw_limit 9223372036854771712\n');
    put('v1/app/memory.limit_in_bytes', '536870912\n');
    put('v1/old/memory.limit_in_bytes', '134217728\n');
    put('v1/free/memory.stat', 'hierarchical_memory_limit 9223372036854771712\n');
    const v1 = join(root, 'v1');
    expect(cgroupV1MemoryLimit('/app', v1)).toBe(256 << 20); // the parent's tighter limit wins
    expect(cgroupV1MemoryLimit('/old', v1)).toBe(128 << 20);
    expect(cgroupV1MemoryLimit('/free', v1)).toBeUndefined();
    expect(cgroupV1MemoryLimit('/app', undefined)).toBeUndefined(); // no v1 memory controller
  });

  it('finds the v1 memory mount and a process\'s cgroups (hybrid host)', () => {
    put(
      'proc/self/mountinfo',
      '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n' +
        '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n' +
        '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n' +
        '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n',
    );
    put('proc/42/cgroup', '9:name=systemd:/\n4:memory:/patrol-x\n1:cpu:/\n0::/patrol-x\n');
    put('proc/43/cgroup', '0::/system.slice/a.service\n');
    const proc = join(root, 'proc');
    expect(findMemoryV1Root(proc)).toBe('/sys/fs/cgroup/memory');
    expect(processCgroups(42, proc)).toEqual({ v2: '/patrol-x', memoryV1: '/patrol-x' });
    expect(processCgroups(43, proc)).toEqual({ v2: '/system.slice/a.service', memoryV1: null });
    expect(processCgroups(44, proc)).toBeNull();
    put('proc2/self/mountinfo', '40 30 0:37 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n');
    expect(findMemoryV1Root(join(root, 'proc2'))).toBeUndefined();
  });
});
