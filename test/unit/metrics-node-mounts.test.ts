// NodeWindows reads the swept mounts from mountinfo at most every MOUNTS_REREAD_NS (a container
// host's mountinfo has hundreds of lines); the usage of the mounts it holds is read every sweep.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MOUNTS_REREAD_NS, NodeWindows } from '../../src/metrics/node.js';

let root: string;
afterEach(() => rmSync(root, { recursive: true, force: true }));

const line = (id: number, mountPoint: string, fsType: string) => `${id} 1 8:1 / ${mountPoint} rw,relatime shared:1 - ${fsType} /dev/vda1 rw`;

function procRoot(): string {
  root = mkdtempSync(join(tmpdir(), 'patrol-proc-'));
  for (const d of ['self', 'net', 'sys/fs']) mkdirSync(join(root, d), { recursive: true });
  for (const f of ['stat', 'meminfo', 'loadavg', 'diskstats', 'net/dev', 'sys/fs/file-nr']) copyFileSync(join('/proc', f), join(root, f));
  writeFileSync(join(root, 'self/mountinfo'), [line(1, '/', 'ext4'), line(2, '/proc', 'proc')].join('\n') + '\n');
  return root;
}

describe('NodeWindows: swept mounts', () => {
  it('re-reads mountinfo only after MOUNTS_REREAD_NS, while statfs of the held mounts runs every sweep', () => {
    const nw = new NodeWindows(undefined, procRoot());
    const t0 = 1_000_000_000_000n;
    expect(nw.read(t0).filesystems.map((f) => f.mountPoint)).toEqual(['/']);
    // a new block-backed mount (/tmp exists, so statfs of it succeeds)
    writeFileSync(join(root, 'self/mountinfo'), [line(1, '/', 'ext4'), line(3, '/tmp', 'xfs')].join('\n') + '\n');
    expect(nw.read(t0 + MOUNTS_REREAD_NS - 1n).filesystems.map((f) => f.mountPoint)).toEqual(['/']);
    expect(nw.read(t0 + MOUNTS_REREAD_NS).filesystems.map((f) => f.mountPoint)).toEqual(['/', '/tmp']);
  });
});
