// Log lines: the human format escapes text from processes (a log line is a terminal output like
// any other); the JSON format keeps every byte.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log.js';
import { formatPretty } from '../../src/shared/log-pretty.js';

const HOSTILE = {
  comm: '\x1b[2Jclear',
  filename: '/tmp/a\nINFO: forged line',
  args: ['sh', '-c', 'printf \x1b]0;title\x07', '\u202eevil', 'bad\ufffdutf8', 'c1\x9bx'],
  cgroup: '/system.slice/\x1b[31mred.service',
  unit: 'x\u2028y.service',
};

function capture(pretty: boolean): string[] {
  const lines: string[] = [];
  const log = createLogger({ pretty, write: (s) => lines.push(s) });
  log.warn({ ...HOSTILE, nested: { deep: ['\x1b[5m'] } }, 'check alert: comm \x1b[2J\nnew line');
  log.error({ err: new Error('boom \x1b[2J') }, 'failed');
  return lines;
}

// everything a terminal would act on: C0 (but the line breaks we write), DEL, C1, bidi, separators
// eslint-disable-next-line no-control-regex
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]/;

describe('log lines', () => {
  it('the human format escapes control characters, bidi overrides and invalid UTF-8 in every field, the message and the stack', () => {
    const out = capture(true).join('');
    expect(out).not.toMatch(RAW);
    expect(out).toContain('comm: "\\x1b[2Jclear"');
    expect(out).toContain('filename: "/tmp/a\\nINFO: forged line"');
    expect(out).toContain('"\\u{202e}evil"');
    expect(out).toContain('"bad\\u{fffd}utf8"');
    expect(out).toContain('"c1\\x9bx"');
    expect(out).toContain('unit: "x\\u{2028}y.service"');
    expect(out).toContain('deep: ["\\x1b[5m"]');
    expect(out).toContain('WARN: check alert: comm \\x1b[2J\\nnew line');
    expect(out).toContain('boom \\x1b[2J');
    // one record, its own lines: the newline in a field did not start a line of its own
    const lines = out.split('\n');
    expect(lines.filter((l) => l.startsWith('[')).length).toBe(2);
    expect(lines.every((l) => l === '' || l.startsWith('[') || l.startsWith('    '))).toBe(true);
  });

  it('quotes keep a value\'s end visible: a quote or backslash inside is escaped', () => {
    const out = formatPretty({ level: 30, time: 0, msg: 'm', a: 'x" y: "z', b: 'c:\\d' });
    expect(out).toContain('a: "x\\" y: \\"z"');
    expect(out).toContain('b: "c:\\\\d"');
  });

  it('the JSON format stays lossless', () => {
    const [line] = capture(false);
    const rec = JSON.parse(line!) as Record<string, unknown>;
    for (const [k, v] of Object.entries(HOSTILE)) expect(rec[k]).toEqual(v);
    expect(rec.msg).toBe('check alert: comm \x1b[2J\nnew line');
  });
});
