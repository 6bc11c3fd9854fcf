// The kept descriptors of src/host/proc.ts: the same text as a fresh read, the whole of a long
// seq_file, never a per-process file, and a file that went away (a removed cgroup) read as gone.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { closeKeptFiles, isKeptFile, keptFileCount, readOptional, readText, cgroup2Root } from '../../src/host/index.js';

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
    // a sysctl file allocates in the kernel what a read asks for (ENOMEM past a few MB): after
    // the buffer grew for kallsyms, it is still read through its kept descriptor
    expect(readText('/proc/sys/fs/file-nr')).toMatch(/^\d+\s+\d+\s+\d+\n$/);
    expect(isKeptFile('/proc/sys/fs/file-nr')).toBe(true);
    readText('/proc/sys/fs/file-nr');
    expect(isKeptFile('/proc/sys/fs/file-nr')).toBe(true);
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

  it('a kept file of a cgroup that was removed reads as gone, and a new one of the same name anew', async () => {
    if (process.getuid?.() !== 0) return; // creating a cgroup needs root; CI runs as root
    const dir = join(cgroup2Root(), `patrol-kept-${process.pid}`);
    const procs = join(dir, 'cgroup.procs');
    mkdirSync(dir);
    try {
      expect(readOptional(procs)).toBe('');
      expect(isKeptFile(procs)).toBe(true);
    } finally {
      rmdirSync(dir);
    }
    // removed and made again under the same name, with a process in it: the kept descriptor is
    // the old cgroup's (ENODEV); the read shows the new one's member, through a descriptor of
    // its own
    mkdirSync(dir);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(procs, String(child.pid));
      expect(readOptional(procs)).toBe(`${child.pid}\n`);
      expect(isKeptFile(procs)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // the cgroup is removable once its last member is gone (a moment after the exit)
      for (let i = 0; ; i++) {
        try {
          rmdirSync(dir);
          break;
        } catch (e) {
          if (i > 100) throw e;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }
    expect(readOptional(procs)).toBeUndefined();
    expect(isKeptFile(procs)).toBe(false);
    expect(() => readText(join(dir, 'cgroup.type'))).toThrow(/ENOENT/);
  });
});
