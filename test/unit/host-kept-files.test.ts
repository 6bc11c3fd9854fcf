// The kept descriptors of src/host/proc.ts: the same text as a fresh read, the whole of a long
// seq_file, never a per-process file, and a file that went away (a removed cgroup) read as gone.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { closeKeptFiles, keptFileCount, readOptional, readText, cgroup2Root } from '../../src/host/index.js';

afterEach(() => closeKeptFiles());

describe('kept host files', () => {
  it('reads what a fresh read reads, twice, with one descriptor', () => {
    expect(readText('/proc/version')).toBe(readFileSync('/proc/version', 'utf8'));
    const n = keptFileCount();
    expect(readText('/proc/version')).toBe(readFileSync('/proc/version', 'utf8'));
    expect(keptFileCount()).toBe(n);
    expect(n).toBeGreaterThan(0);
  });

  it('reads the whole of a seq_file that takes many reads (past the first buffer)', () => {
    // kallsyms: thousands of records, a page or so per read, megabytes in all
    const kept = readText('/proc/kallsyms');
    const fresh = readFileSync('/proc/kallsyms', 'utf8');
    expect(kept.length).toBeGreaterThan(64 << 10);
    // modules may load between the two reads: compare the lines both have
    expect(Math.abs(kept.length - fresh.length)).toBeLessThan(fresh.length / 100);
    expect(kept.endsWith('\n')).toBe(true);
  });

  it('never keeps a per-process file or a file outside /proc and /sys', () => {
    const before = keptFileCount();
    readText(`/proc/${process.pid}/stat`);
    readText('/proc/self/status');
    readText('/etc/hostname');
    expect(keptFileCount()).toBe(before);
  });

  it('a missing optional file is undefined, and a required one a clear error', () => {
    expect(readOptional('/proc/pressure/nonexistent')).toBeUndefined();
    expect(() => readText('/proc/nonexistent-file')).toThrow(/cannot read \/proc\/nonexistent-file: ENOENT/);
  });

  it('a kept file of a cgroup that was removed reads as gone, and a new one of the same name anew', () => {
    if (process.getuid?.() !== 0) return; // creating a cgroup needs root; CI runs as root
    const dir = join(cgroup2Root(), `patrol-kept-${process.pid}`);
    mkdirSync(dir);
    try {
      expect(readOptional(join(dir, 'cgroup.procs'))).toBe('');
      expect(keptFileCount()).toBeGreaterThan(0);
    } finally {
      rmdirSync(dir);
    }
    expect(readOptional(join(dir, 'cgroup.procs'))).toBeUndefined();
    expect(() => readText(join(dir, 'cgroup.type'))).toThrow(/ENOENT/);
    mkdirSync(dir);
    try {
      expect(readOptional(join(dir, 'cgroup.type'))).toBe('domain\n');
    } finally {
      rmdirSync(dir);
    }
  });
});
