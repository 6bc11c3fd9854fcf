// `patrol record FILE` runs as root: it must not follow symlinks or clobber files (checked
// before any BPF is loaded, so these run anywhere).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));

describe('patrol record FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'patrol-record-'));

  it('refuses an existing file without --force, and leaves it alone', () => {
    const f = join(dir, 'existing.ndjson');
    writeFileSync(f, 'precious\n');
    const r = spawnSync(PATROL, ['record', f, '--duration', '1s'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`patrol: ${f} already exists; use --force to overwrite it`);
    expect(readFileSync(f, 'utf8')).toBe('precious\n');
  });

  it('refuses to write through a symlink, even with --force', () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'precious\n');
    const link = join(dir, 'link.ndjson');
    symlinkSync(target, link);
    const r = spawnSync(PATROL, ['record', link, '--force', '--duration', '1s'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`patrol: ${link} is a symbolic link; refusing to write through it`);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });
});
