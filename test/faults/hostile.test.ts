// Fault: hostile argv and comm. A copy of perl named `\e[2Jevil` (so its comm holds an ESC) is
// exec'd with 1 MB of arguments: an argv[0] with an OSC title sequence and a BEL, an empty one
// (two NULs in a row in the kernel's argv), a newline, an ESC colour sequence, invalid UTF-8,
// then eight 128 KiB arguments. Pass: JSON keeps every captured byte (`patrol events --json`,
// /v1/events, `patrol trace --json`, /v1/processes); every human output escapes them (trace,
// events, ps, top, zombies, explain: no raw control character, the escaped forms present); no
// exporter throws (the store row is exact, /metrics parses, the API stream goes on, every
// consumer's error count stays 0).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, run } from '../bpf/helpers.js';
import { PATROL, agentDir, exited, figure, get, runOut, sleep, startAgent, stats, stopAgent, until, waitReady, type Agent, type AgentDir } from './harness.js';

const COMM = '\x1b[2Jevil';
const ARGV0 = 'x\x1b]0;pwned\x07';
const NEWLINE = 'a\nb';
const COLOUR = 'esc\x1b[31mred';
const BAD_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x80, 0x75, 0x74, 0x66, 0x38]); // bad\xff\xfe\x80utf8
const BIG = 8; // arguments of 128 KiB - 1 (MAX_ARG_STRLEN is 128 KiB with its NUL)

// What a terminal must never receive from us: C0 controls but the line feed (and tab), DEL, C1,
// the replacement character, bidi overrides.
// eslint-disable-next-line no-control-regex
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd\u202a-\u202e\u2066-\u2069]/;

/** A follower of a child's stdout. */
function follow(cmd: string, args: string[]): { proc: ChildProcess; out: () => string; err: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('latin1'); // every byte as it came, to see raw ones
  proc.stdout!.on('data', (b: string) => (out += b));
  proc.stderr!.on('data', (b) => (err += b));
  return { proc, out: () => out, err: () => err };
}

const stop = async (f: { proc: ChildProcess }) => {
  if (f.proc.exitCode === null) f.proc.kill('SIGINT');
  await exited(f.proc);
};

const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

describe.skipIf(!bpfEnabled)('fault: hostile argv and comm', () => {
  let d: AgentDir;
  let agent: Agent;
  let dir: string;
  let bin: string;
  let launcher: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-hostile-'));
    chmodSync(dir, 0o755);
    bin = join(dir, COMM);
    copyFileSync('/usr/bin/perl', bin);
    // The launcher builds the argv itself (Node cannot pass invalid UTF-8 in argv) and execs the
    // hostile perl: `live` burns CPU for a second and sleeps (ps, top, /metrics see it), `fail`
    // exits 3 (three make a crash loop for explain), `zombie` runs one child it does not reap.
    // The sleepers are ended by the test once it has looked.
    launcher = join(dir, 'launch.pl');
    writeFileSync(
      launcher,
      `$| = 1;
my ($mode, $bin) = @ARGV;
my $script = $mode eq 'fail' ? 'exit 3' : $mode eq 'zombie' ? 'exit 0' : 'my $t = time; 1 while time - $t < 1; sleep 120';
my @argv = (${JSON.stringify(ARGV0).replace(/\\u001b/g, '\\e').replace(/\\u0007/g, '\\a')}, '-e', $script, '', "a\\nb", "esc\\e[31mred", "bad\\xff\\xfe\\x80utf8", ('A' x 131071) x ${BIG});
if ($mode eq 'zombie') { my $pid = fork(); if (!$pid) { exec {$bin} @argv or exit 127 } print "$pid\\n"; sleep 120; exit 0 }
exec {$bin} @argv or die "exec: $!";
`,
    );
    // every process exported to /metrics (top_n), so the hostile comm is a label there
    d = agentDir({ metrics: '{ sweep_interval: 200ms, prometheus: { port: 0, top_n: 1000 } }' });
    agent = startAgent(d);
    await waitReady(d, agent);
  });

  afterAll(async () => {
    await stopAgent(agent);
  });

  it('JSON keeps every byte, human output escapes them, no exporter throws', async () => {
    // followers, before anything runs
    const eventsJson = follow(PATROL, ['events', '--json', '--socket', d.socket]);
    const eventsHuman = follow(PATROL, ['events', '--socket', d.socket]);
    const traceJson = follow(PATROL, ['trace', '--json', '--no-states']);
    const traceHuman = follow(PATROL, ['trace', '--no-states']);
    let api = '';
    const req = request({ socketPath: d.socket, path: '/v1/events' }, (res) => {
      res.setEncoding('latin1');
      res.on('data', (b: string) => (api += b));
    });
    req.on('error', () => {});
    req.end();
    expect(await until(() => eventsJson.out().includes('"ready"') && api.includes('"ready"') && traceJson.out().includes('"ready"'), 20_000, 50), traceJson.err()).toBe(true);
    await sleep(1500); // the human trace prints no ready line: give its sensor time to attach

    const live = spawn('perl', [launcher, 'live', bin], { stdio: 'ignore' });
    const zombieParent = spawn('perl', [launcher, 'zombie', bin], { stdio: ['ignore', 'pipe', 'ignore'] });
    let zombiePid = 0;
    zombieParent.stdout!.on('data', (b) => (zombiePid = Number(String(b).trim())));
    const failed: number[] = [];
    for (let i = 0; i < 3; i++) failed.push((await run('perl', [launcher, 'fail', bin])).pid);
    // the live one has burned its CPU second and sleeps; the zombie is one (slow machines: wait)
    await sleep(1300);
    expect(await until(async () => zombiePid > 0 && ((await get(d.socket, '/v1/zombies')).body.zombies as Array<{ pid: number }>).some((z) => z.pid === zombiePid), 20_000, 200)).toBe(true);
    expect(await until(async () => ((await get(d.socket, `/v1/processes?pid=${live.pid}`)).body.processes as Array<{ comm: string }>).some((p) => p.comm === COMM), 20_000, 200)).toBe(true);

    // --- human output while they exist
    const ps = await runOut(PATROL, ['ps', '--socket', d.socket]);
    const top = await runOut(PATROL, ['top', '--once', '--limit', '10000', '--socket', d.socket]);
    const zombies = await runOut(PATROL, ['zombies', '--socket', d.socket]);
    const explain = await runOut(PATROL, ['explain', '--recent', '--socket', d.socket]);
    const explainJson = await runOut(PATROL, ['explain', '--recent', '--json', '--socket', d.socket]);
    const zombiesJson = await runOut(PATROL, ['zombies', '--json', '--socket', d.socket]);
    const processes = (await get(d.socket, '/v1/processes?limit=1000000')).body.processes as Array<Record<string, any>>;
    const metricsText = (await get(d.socket, '/v1/metrics')).text;

    live.kill('SIGTERM');
    zombieParent.kill('SIGTERM');
    await exited(live);
    await exited(zombieParent);
    // a plain process after them: the stream went on
    const after = await run('/bin/true', ['after-hostile']);
    await until(() => api.includes('"after-hostile"') && eventsJson.out().includes('"after-hostile"'), 10_000);
    await sleep(300);
    req.destroy();
    for (const f of [eventsJson, eventsHuman, traceJson, traceHuman]) await stop(f);

    // --- JSON: every captured byte as it was
    const execsIn = (ndjson: string) =>
      utf8(ndjson)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>)
        .filter((r) => r.type === 'exec' && r.comm === COMM);
    const checkExec = (r: Record<string, any>, where: string) => {
      expect(r.filename, where).toBe(bin);
      expect(r.args.slice(0, 7), where).toEqual([ARGV0, '-e', r.args[2], '', NEWLINE, COLOUR, BAD_UTF8.toString('utf8')]);
      expect(Buffer.from(r.args_raw[6], 'base64'), `${where}: the invalid UTF-8 as raw bytes`).toEqual(BAD_UTF8);
      expect(r.args_truncated, where).toBe(true); // 1 MB is past the capture cap
    };
    const sources: Record<string, string> = { 'patrol events --json': eventsJson.out(), '/v1/events': api, 'patrol trace --json': traceJson.out() };
    const counts: Record<string, number> = {};
    for (const [where, text] of Object.entries(sources)) {
      const execs = execsIn(text);
      counts[where] = execs.length;
      expect(execs.length, `${where}: the live, three failing and the zombie's execs`).toBeGreaterThanOrEqual(5);
      for (const r of execs) checkExec(r, where);
    }
    const proc = processes.find((p) => p.pid === live.pid)!;
    expect(proc.comm).toBe(COMM);
    expect(proc.args.slice(3, 6)).toEqual(['', NEWLINE, COLOUR]);
    expect(Buffer.from(proc.args_raw[6], 'base64')).toEqual(BAD_UTF8);
    expect(JSON.parse(explainJson.out).causes.some((c: { explanation: string }) => c.explanation.startsWith(`${COMM} failed`) || c.explanation.startsWith(`${COMM} is crash-looping`))).toBe(true);

    // --- human: nothing raw, the escaped forms there
    // (the followers kept bytes as latin1; runOut decoded UTF-8: raw invalid bytes show as U+FFFD)
    const human: Record<string, string> = {
      'patrol trace': utf8(traceHuman.out()), 'patrol events': utf8(eventsHuman.out()), 'patrol ps': ps.out, 'patrol top': top.out, 'patrol zombies': zombies.out, 'patrol explain': explain.out,
    };
    for (const [where, s] of Object.entries(human)) {
      const bad = RAW.exec(s);
      expect(bad, `${where}: raw ${JSON.stringify(bad?.[0])} at …${JSON.stringify(s.slice(Math.max(0, (bad?.index ?? 0) - 40), (bad?.index ?? 0) + 20))}`).toBeNull();
      expect(s, where).toContain('\\x1b[2Jevil');
    }
    // argv as a command line to paste: bash $'..' quoting, the invalid bytes as themselves
    for (const where of ['patrol trace', 'patrol events', 'patrol ps']) {
      const s = human[where]!;
      expect(s, where).toContain("$'x\\x1b]0;pwned\\x07' -e");
      expect(s, where).toContain(" '' $'a\\x0ab' $'esc\\x1b[31mred' $'bad\\xff\\xfe\\x80utf8' AAAA");
    }
    expect(zombiePid).toBeGreaterThan(0);
    expect((JSON.parse(zombiesJson.out) as Array<{ pid: number; comm: string }>).find((z) => z.pid === zombiePid)?.comm).toBe(COMM);

    // --- exporters: the store row exact, /metrics parses, no consumer threw
    const db = new Database(d.db, { readonly: true });
    await until(() => (db.prepare(`SELECT count(*) AS n FROM process_exits WHERE pid = ?`).get(live.pid) as { n: number }).n === 1, 5000, 100);
    const row = db.prepare('SELECT * FROM process_exits WHERE pid = ?').get(live.pid) as Record<string, unknown>;
    db.close();
    expect(row.comm).toBe(COMM);
    const families = parsePrometheus(metricsText) as Array<{ name: string; metrics: Array<{ labels?: Record<string, string> }> }>;
    const commLabel = families.some((f) => f.metrics.some((m) => m.labels?.comm === COMM));
    expect(commLabel, 'the comm, exact, as a label value').toBe(true);
    const st = await stats(d);
    for (const [k, v] of Object.entries(st.consumers as Record<string, { errors: number }>)) expect(v.errors, k).toBe(0);
    expect(after.code).toBe(0);
    expect(agent.proc.exitCode).toBeNull();
    figure('hostile argv', {
      argv_bytes: ARGV0.length + 3 + NEWLINE.length + COLOUR.length + BAD_UTF8.length + BIG * 131072, exec_records: counts, human_outputs_checked: Object.keys(human),
      metrics_bytes: metricsText.length, metrics_comm_label_exact: commLabel, consumer_errors: 0,
    });
  }, 120_000);
});
