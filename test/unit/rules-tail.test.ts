// The log tailer follows a file across rename-rotation and copytruncate, and keeps partial lines.
import { appendFileSync, mkdtempSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileTailer } from '../../src/rules/index.js';

describe('FileTailer', () => {
  it('starts at the end, survives rotation and truncation, and joins partial lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-tail-'));
    const path = join(dir, 'app.log');
    writeFileSync(path, 'old line\n');
    const lines: string[] = [];
    const t = new FileTailer(path, (l) => lines.push(l));
    appendFileSync(path, 'one\ntw');
    t.poll();
    appendFileSync(path, 'o\r\n');
    t.poll();
    expect(lines).toEqual(['one', 'two']);
    // logrotate (create): rename, then a new file at the path; the old file's tail is not lost
    appendFileSync(path, 'last of old\n');
    renameSync(path, path + '.1');
    writeFileSync(path, 'first of new\n');
    t.poll();
    expect(lines.slice(2)).toEqual(['last of old', 'first of new']);
    expect(t.stats.rotations).toBe(1);
    // copytruncate: the file shrinks, read again from 0
    truncateSync(path, 0);
    appendFileSync(path, 'after truncate\n');
    t.poll();
    expect(lines.slice(4)).toEqual(['after truncate']);
    expect(t.stats.truncations).toBe(1);
    t.close();
  });

  it('waits for a file that does not exist yet, then reads it from the start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-tail-'));
    const path = join(dir, 'later.log');
    const lines: string[] = [];
    const t = new FileTailer(path, (l) => lines.push(l));
    t.poll();
    writeFileSync(path, 'hello\n');
    t.poll();
    expect(lines).toEqual(['hello']);
    t.close();
  });
});
