// argv redaction (src/export/redact.ts): the defaults mask the common secrets and leave ordinary
// command lines alone; capture groups are kept; a flag's value in the next argument is masked
// in that argument; arguments keep their places; bad patterns are refused with a coded error;
// property: the secret never survives, whatever surrounds it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_REDACT_PATTERNS, MASK, RedactPatternError, Redactor, checkPatterns } from '../../src/export/redact.js';
import { ProcessTable } from '../../src/process/index.js';
import type { ExecEvent } from '../../src/shared/events.js';

const r = Redactor.fromConfig({ redact: ['(?i)(--password[= ])\\S+'], redactDefaults: true });
const red = (...args: string[]) => r.argv(args.map((text) => ({ text })))?.map((a) => a.text) ?? null;

describe('Redactor', () => {
  it('masks the defaults: --password=…, a flag\'s value in the next argument, token=…, AWS keys, URL credentials, auth headers', () => {
    expect(red('mysql', '--password=hunter2', '-u', 'root')).toEqual(['mysql', `--password=${MASK}`, '-u', 'root']);
    expect(red('mysql', '--password', 'hunter2')).toEqual(['mysql', '--password', MASK]);
    expect(red('app', '--api-key=abc123', '--token', 'xyz')).toEqual(['app', `--api-key=${MASK}`, '--token', MASK]);
    expect(red('env', 'PGPASSWORD=pw', 'GITHUB_TOKEN=ghp_x', 'x')).toEqual(['env', `PGPASSWORD=${MASK}`, `GITHUB_TOKEN=${MASK}`, 'x']);
    expect(red('aws', 'AKIAABCDEFGHIJKLMNOP')).toEqual(['aws', MASK]);
    expect(red('curl', 'https://bob:s3cret@example.com/x?token=zzz&a=1')).toEqual(['curl', `https://bob:${MASK}@example.com/x?token=${MASK}&a=1`]);
    expect(red('curl', '-H', 'Authorization: Bearer abc.def')).toEqual(['curl', '-H', `Authorization: Bearer ${MASK}`]);
    expect(red('kubectl', 'create', 'secret', 'generic', 'x', '--from-literal=password=abc')).toEqual(['kubectl', 'create', 'secret', 'generic', 'x', `--from-literal=password=${MASK}`]);
  });

  it('leaves ordinary command lines alone (null: nothing allocated)', () => {
    for (const argv of [['ls', '-la', '/tmp'], ['git', 'commit', '-m', 'auth: fix the token refresh'], ['node', '--max-old-space-size=4096', '--token-file', '/etc/t'], ['ssh', 'git@github.com'], ['sh', '-c', 'echo $PWD'], []]) {
      expect(red(...argv)).toBeNull();
    }
    expect(new Redactor([]).argv([{ text: '--password=x' }])).toBeNull();
  });

  it('a command line that matched nothing is not scanned again; one with a secret always is', () => {
    const x = Redactor.fromConfig({ redact: [], redactDefaults: true });
    const argv = (...a: string[]) => a.map((text) => ({ text }));
    expect(x.argv(argv('ls', '-la', '/tmp'))).toBeNull();
    expect(x.argv(argv('ls', '-la', '/tmp'))).toBeNull();
    expect(x.scans).toBe(1);
    // the same words split differently are another line only if the joined text differs
    expect(x.argv(argv('ls', '-la /tmp'))).toBeNull();
    expect(x.scans).toBe(1);
    for (let i = 0; i < 3; i++) expect(x.argv(argv('mysql', '--password=hunter2'))!.map((a) => a.text)).toEqual(['mysql', `--password=${MASK}`]);
    expect(x.scans).toBe(4);
    // many more lines than slots: each is scanned once, and masking goes on
    for (let i = 0; i < 3000; i++) expect(x.argv(argv('job', String(i)))).toBeNull();
    expect(x.scans).toBe(4 + 3000);
    expect(x.argv(argv('ls', '-la', '/tmp'))).toBeNull(); // remembered, or scanned again if its slot was taken
    expect(x.argv(argv('mysql', '--password=hunter2'))!.map((a) => a.text)).toEqual(['mysql', `--password=${MASK}`]);
    const before = x.scans;
    // a very long line is scanned every time (not remembered)
    const long = argv('x', 'a'.repeat(600));
    x.argv(long);
    x.argv(long);
    expect(x.scans).toBe(before + 2);
  });

  it('property: remembering clean lines never changes an answer (against a fresh Redactor each time)', () => {
    const words = ['ls', '-la', '/tmp', '--password=hunter2', 'token=abc', 'x', 'é', 'AKIAABCDEFGHIJKLMNOP', '--token', 'v', ''];
    const kept = Redactor.fromConfig({ redact: [], redactDefaults: true });
    fc.assert(
      fc.property(fc.array(fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 }), (lines) => {
        for (const line of lines) {
          const argv = line.map((text) => ({ text }));
          const fresh = Redactor.fromConfig({ redact: [], redactDefaults: true }).argv(argv);
          expect(kept.argv(argv)).toEqual(fresh);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('masked arguments lose their raw bytes; the others keep them', () => {
    const raw = Buffer.from([0xff]);
    const out = r.argv([{ text: 'a\ufffd', raw }, { text: '--password=x' }])!;
    expect(out[0]).toEqual({ text: 'a\ufffd', raw });
    expect(out[1]).toEqual({ text: `--password=${MASK}` });
  });

  it('text(): one string, for alerts', () => {
    expect(r.text('ran mysql --password=hunter2 and died')).toBe(`ran mysql --password=${MASK} and died`);
    expect(r.text('nothing here')).toBe('nothing here');
  });

  it('refuses bad patterns with E_REDACT_PATTERN, naming the index', () => {
    expect(() => checkPatterns(['ok', '(?<=x)y'])).toThrow(RedactPatternError);
    try {
      checkPatterns(['ok', 'a(']);
    } catch (e) {
      expect(e).toMatchObject({ code: 'E_REDACT_PATTERN', index: 1 });
    }
    expect(() => checkPatterns(['x*'])).toThrow(/empty string/);
    expect(() => checkPatterns([''])).toThrow(/empty/);
    for (const d of DEFAULT_REDACT_PATTERNS) expect(() => checkPatterns([d.pattern])).not.toThrow();
  });

  it('property: the secret after --password= never survives, the argument count never changes', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9_./:-]{0,12}$/);
    fc.assert(
      fc.property(fc.array(word, { maxLength: 5 }), fc.array(word, { maxLength: 5 }), fc.stringMatching(/^[A-Za-z0-9]{6,20}$/), (before, after, secret) => {
        const argv = [...before, `--password=${secret}`, ...after];
        const out = red(...argv)!;
        expect(out).toHaveLength(argv.length);
        expect(out[before.length]).toBe(`--password=${MASK}`);
      }),
    );
  });
});

describe('the process table applies it at ingress', () => {
  it('an exec event\'s args are masked in place and the entry is marked', () => {
    const t = new ProcessTable({ bootId: 'b', procfs: { listPids: () => [], readStat: () => null, readCmdline: () => null, readUid: () => null } as never, now: () => 0n, redactArgv: (a) => r.argv(a) });
    const ev: ExecEvent = {
      type: 'exec', ktimeNs: 1n, seq: 0n, cpu: 0, flags: 0, pid: 50, oldTid: 50, ppid: 1, startNs: 10n, parentStartNs: 1n, cgroupId: 1n, uid: 0, gid: 0, euid: 0,
      comm: { text: 'mysql' }, filename: { text: '/usr/bin/mysql' }, filenameTruncated: false, args: ['mysql', '--password=hunter2'].map((text) => ({ text })), argsTruncated: false, argsFault: false, argsFullLen: 30,
    };
    const en = t.apply(ev);
    expect(ev.args.map((a) => a.text)).toEqual(['mysql', `--password=${MASK}`]);
    expect(ev.argsRedacted).toBe(true);
    expect(en.entry.args).toEqual(['mysql', `--password=${MASK}`]);
    expect(en.entry.argsRedacted).toBe(true);
  });
});
