// Text from processes reaches terminals escaped (src/shared/terminal.ts), in every human format.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TERM_UNSAFE, term, termBytes, termText } from '../../src/shared/terminal.js';
import { argvText, shellQuote, shellQuoteRaw } from '../../src/cli/format.js';
import { spawnSync } from 'node:child_process';
import { recordLine } from '../../src/cli/events.js';
import { zombieLine } from '../../src/cli/zombies.js';

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('term()', () => {
  it('leaves ordinary text alone, backslashes included', () => {
    for (const s of ['bash', '/usr/bin/python3', 'kworker/0:1', 'C:\\dir', 'naïve', '日本語', '🙂']) expect(term(s)).toBe(s);
  });

  it('escapes C0, DEL, C1, bidi overrides, separators and lone surrogates', () => {
    expect(term('\x1b[2Jclear')).toBe('\\x1b[2Jclear');
    expect(term('a\tb\nc\rd')).toBe('a\\tb\\nc\\rd');
    expect(term('\x7f\x9b31m')).toBe('\\x7f\\x9b31m');
    expect(term('evil\u202egnp.exe')).toBe('evil\\u{202e}gnp.exe');
    expect(term('a\u2028b')).toBe('a\\u{2028}b');
    expect(term('x\ud800y')).toBe('x\\u{d800}y');
    expect(term('\x1b\\x1b')).toBe('\\x1b\\\\x1b'); // an escaped line cannot be forged
  });

  it('never lets a raw control through, for any string', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => !RAW_CONTROL.test(term(s))));
  });

  it('shows invalid UTF-8 as the bytes it is, valid runs as text', () => {
    expect(termBytes(Buffer.from([0x61, 0xff, 0x62, 0xc3, 0xa9, 0x1b]))).toBe('a\\xffbé\\x1b');
    expect(termText({ text: 'a\ufffdb', raw: Buffer.from([0x61, 0xc3, 0x62]) })).toBe('a\\xc3b');
    expect(termText({ text: 'plain' })).toBe('plain');
  });
});

describe('human formats escape process text', () => {
  it('shellQuote: $\'..\' for controls, C1 and bidi', () => {
    expect(shellQuote('a\x1bb')).toBe("$'a\\x1bb'");
    expect(shellQuote('\x9b')).toBe("$'\\x9b'");
    expect(shellQuote('x\u202ey')).toBe("$'x\\u202ey'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it('events lines (the trace layout) escape comm, args and filenames', () => {
    const base = { time: new Date().toISOString(), pid: 1, ppid: 0, comm: '\x1b[2Jclear' };
    for (const r of [
      { ...base, type: 'exec', args: ['\x1b]0;pwned\x07', 'ok'] },
      { ...base, type: 'exec_failed', error: 'ENOENT', filename: '/tmp/\x1b[31mred' },
      { ...base, type: 'exit', exit_code: 0, signal: null, usage: { cpu_ns: 1, max_rss_kb: 1 } },
    ]) {
      const line = recordLine(r as never);
      expect(line).not.toMatch(RAW_CONTROL);
      expect(line).toContain('\\x1b[2Jclear');
    }
  });

  it('zombies escape comm and the parent comm', () => {
    const line = zombieLine({ pid: 5, exec_id: 'x', comm: '\x1b[2J', ppid: 1, parent_exec_id: null, parent_comm: 'p\x07', zombie_ms: 10, exit_ns: 0 } as never);
    expect(line).not.toMatch(RAW_CONTROL);
  });

  it('arguments that are not UTF-8 show their bytes, as bash $\'..\' that gives them back', () => {
    const raw = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x80, 0x27, 0x5c, 0x1b, 0xc3, 0xa9]); // bad \xff\xfe\x80 ' \\ ESC é
    const q = shellQuoteRaw(raw.toString('utf8'), raw);
    expect(q).toBe("$'bad\\xff\\xfe\\x80\\'\\\\\\x1bé'");
    expect(q).not.toMatch(RAW_CONTROL);
    const back = spawnSync('bash', ['-c', `printf %s ${q}`]);
    expect(back.stdout).toEqual(raw);
    // the events and ps lines take args_raw (base64) for such arguments
    const line = recordLine({ type: 'exec', time: '2026-01-01T00:00:00Z', pid: 1, ppid: 0, comm: 'x', args: ['x', raw.toString('utf8')], args_raw: [null, raw.toString('base64')] } as never);
    expect(line).toContain("x $'bad\\xff\\xfe\\x80");
    expect(argvText(['a b', 'c'], [null, null])).toBe("'a b' c");
  });

  it('TERM_UNSAFE is global (for replace)', () => {
    expect(TERM_UNSAFE.global).toBe(true);
  });
});
