// The kernel-log reader driven by the addon's libuv fd watch: records arrive when the fd turns
// readable, with no polling timer (an idle agent then does not wake 5 times a second for kmsg).
// A FIFO stands in for /dev/kmsg: one record per write, read while the writer stays open.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { KmsgReader, type KmsgRecord } from '../../src/rules/index.js';
import { native } from '../../src/kernel/index.js';

describe('KmsgReader with an fd watch', () => {
  it('reads each record when the fd turns readable, with a polling interval that never fires', async () => {
    const W = native().FdWatch!;
    expect(typeof W).toBe('function');
    const fifo = join(mkdtempSync(join(tmpdir(), 'patrol-kmsg-')), 'kmsg');
    execFileSync('mkfifo', [fifo]);
    const got: KmsgRecord[] = [];
    let watches = 0;
    const reader = new KmsgReader((r) => got.push(r), {
      path: fifo,
      intervalMs: 3_600_000, // a timer would never deliver within this test
      watch: (fd, cb) => (watches++, new W(fd, cb)),
    }).start();
    const w = openSync(fifo, 'w');
    try {
      expect(watches).toBe(1);
      writeSync(w, '6,1,1000,-;first line\n');
      await vi.waitFor(() => expect(got.map((r) => r.message)).toEqual(['first line']), { timeout: 2000, interval: 5 });
      writeSync(w, '3,2,2000,-;second line\n');
      await vi.waitFor(() => expect(got.map((r) => r.message)).toEqual(['first line', 'second line']), { timeout: 2000, interval: 5 });
      expect(reader.stats).toMatchObject({ records: 2, errors: 0, missed: 0 });
    } finally {
      reader.close();
      closeSync(w);
    }
  });

  it('falls back to the timer when the watch cannot be set up', async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'patrol-kmsg-')), 'kmsg');
    execFileSync('mkfifo', [fifo]);
    const got: string[] = [];
    const reader = new KmsgReader((r) => got.push(r.message), {
      path: fifo,
      intervalMs: 10,
      watch: () => {
        throw new Error('no watch');
      },
    }).start();
    const w = openSync(fifo, 'w');
    try {
      writeSync(w, '6,1,1000,-;polled\n');
      await vi.waitFor(() => expect(got).toEqual(['polled']), { timeout: 2000, interval: 5 });
      expect(reader.stats.errors).toBe(1);
    } finally {
      reader.close();
      closeSync(w);
    }
  });
});
