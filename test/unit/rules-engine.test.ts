// The attribution engine with fake process facts and a fake clock: joins, trees, merging,
// ranking, evidence chains and the cost profile.
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ExecEvent, ExitEvent, KText } from '../../src/shared/events.js';
import { RuleEngine, compileRuleSet, loadRuleFiles, parseKmsgRecord, type ProcFact, type RuleClock, type RssSample } from '../../src/rules/index.js';

const PACK = fileURLToPath(new URL('../../rules', import.meta.url));
const S = 1_000_000_000n;
const kt = (text: string): KText => ({ text });

class Fakes {
  nowNs = 1000n * S;
  procs = new Map<string, ProcFact>();
  rss = new Map<string, RssSample[]>();
  clock: RuleClock = {
    nowNs: () => this.nowNs,
    epochMs: (ns) => 1_700_000_000_000 + Number(ns / 1_000_000n),
    fromEpochMs: (ms) => BigInt(ms - 1_700_000_000_000) * 1_000_000n,
  };
  add(p: Partial<ProcFact> & { execId: string; pid: number; comm: string }): ProcFact {
    const full: ProcFact = { ppid: 1, parentExecId: null, args: null, filename: null, cgroup: null, startNs: 900n * S, exitNs: null, exitCode: null, signal: null, maxRssBytes: null, ...p };
    this.procs.set(p.execId, full);
    return full;
  }
  engine(): RuleEngine {
    const r = loadRuleFiles(PACK);
    if (!r.ok) throw new Error('pack does not load');
    const e = new RuleEngine({
      clock: this.clock,
      processes: {
        byPid: (pid) => [...this.procs.values()].find((p) => p.pid === pid) ?? null,
        get: (id) => this.procs.get(id) ?? null,
        ancestry: (id) => {
          const out: ProcFact[] = [];
          for (let p = this.procs.get(id); p?.parentExecId; ) {
            p = this.procs.get(p.parentExecId);
            if (p) out.push(p);
          }
          return out;
        },
      },
      windows: { rss: (id, windowMs, now) => (this.rss.get(id) ?? []).filter((s) => s.tNs >= now - BigInt(windowMs) * 1_000_000n && s.tNs <= now) },
    });
    e.setRules(r.set);
    return e;
  }
}

function exitEv(pid: number, comm: string, t: bigint, o: { code?: number | null; signal?: number | null; maxRssKb?: number; writeBytes?: bigint } = {}): ExitEvent {
  const signal = o.signal ?? null;
  return {
    type: 'exit', ktimeNs: t, seq: 0n, cpu: 0, flags: 0, pid, tid: pid, ppid: 1, startNs: t - S, status: 0,
    exitCode: signal !== null ? null : (o.code ?? 0), signal, coreDumped: false, comm: kt(comm),
    usage: { cpuNs: 0, utimeNs: 0, stimeNs: 0, maxRssKb: o.maxRssKb ?? 1000, readBytes: 0, writeBytes: o.writeBytes ?? 0, rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
  };
}

const kmsg = (seq: number, tNs: bigint, msg: string) => parseKmsgRecord(`6,${seq},${tNs / 1000n},-;${msg}`)!;

describe('attribution engine', () => {
  let f: Fakes;
  beforeEach(() => {
    f = new Fakes();
    f.add({ execId: 'sys', pid: 1, comm: 'systemd', ppid: 0 });
    f.add({ execId: 'sh0', pid: 500, comm: 'bash', parentExecId: 'sys' });
  });

  it('joins an OOM line to the exec_id, cgroup, RSS window and ancestry; the exit adds to the chain', () => {
    const e = f.engine();
    const victim = f.add({ execId: 'aaaa000000000001', pid: 1234, comm: 'java', parentExecId: 'sh0', startNs: 600n * S, cgroup: '/app.slice' });
    f.rss.set(victim.execId, [
      { tNs: 760n * S, bytes: 300 << 20 },
      { tNs: 880n * S, bytes: 1200 << 20 },
      { tNs: 990n * S, bytes: 2000 << 20 },
    ]);
    const t = 1000n * S;
    e.onKmsg(kmsg(10, t, 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app.slice,task_memcg=/app.slice,task=java,pid=1234,uid=0'));
    e.onKmsg(kmsg(11, t, 'Memory cgroup out of memory: Killed process 1234 (java) total-vm:3000000kB, anon-rss:2048000kB, file-rss:0kB'));
    victim.exitNs = t + 5_000_000n;
    victim.signal = 9;
    e.onLifecycle(exitEv(1234, 'java', t + 5_000_000n, { signal: 9, maxRssKb: 2_100_000 }), { execId: victim.execId, parentExecId: 'sh0', ppid: 500, comm: 'java' });
    const recent = e.rankRecent();
    expect(recent).toHaveLength(1); // the two kernel lines and the exit are one finding
    const c = recent[0]!;
    expect(c).toMatchObject({ cause: 'oom_cgroup_limit', confidence: 0.95, exec_id: victim.execId, count: 2, rule: 'oom-kill' });
    expect(c.explanation).toBe('pid 1234 (java, exec_id aaaa000000000001) was OOM-killed by the memory limit of cgroup /app.slice; its RSS grew by 1.7 GiB in the last 5 min; started by bash');
    const kinds = c.evidence.map((x) => x.kind);
    expect(kinds).toEqual(expect.arrayContaining(['kmsg', 'process', 'window', 'ancestry', 'exit']));
    expect(c.evidence.find((x) => x.kind === 'ancestry')!.summary).toBe('java[1234] ← bash[500] ← systemd[1]');
    expect(c.evidence.find((x) => x.kind === 'window')!.data).toMatchObject({ metric: 'rss', first: 300 << 20, samples: 3 });
    expect(c.evidence.find((x) => x.kind === 'exit')!.summary).toMatch(/killed by SIGKILL, max RSS 2\.0 GiB/);
  });

  it('tells a global OOM from a cgroup limit', () => {
    const e = f.engine();
    f.add({ execId: 'bbbb', pid: 77, comm: 'x' });
    e.onKmsg(kmsg(1, f.nowNs, 'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=,task_memcg=/,task=x,pid=77,uid=0'));
    expect(e.rankRecent()[0]).toMatchObject({ cause: 'oom_global', exec_id: 'bbbb' });
  });

  it('names a segfault from the kernel line and merges the SIGSEGV exit into it', () => {
    const e = f.engine();
    const p = f.add({ execId: 'cccc', pid: 4321, comm: 'nullderef', parentExecId: 'sh0' });
    e.onKmsg(kmsg(3, f.nowNs, 'nullderef[4321]: segfault at 0 ip 000055d0c8a0113d sp 00007ffc1c2f6d40 error 6 in nullderef[55d0c8a01000+1000] likely on CPU 1 (core 1, socket 0)'));
    p.exitNs = f.nowNs;
    p.signal = 11;
    e.onLifecycle(exitEv(4321, 'nullderef', f.nowNs, { signal: 11 }), { execId: 'cccc', parentExecId: 'sh0', ppid: 500, comm: 'nullderef' });
    const r = e.rankRecent();
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ cause: 'segfault', confidence: 0.95, exec_id: 'cccc', count: 2, rule: 'segfault' });
    expect(r[0]!.explanation).toMatch(/NULL pointer dereference .*ip 000055d0c8a0113d in nullderef/);
  });

  it('ranks a crash loop first and explains an exit-failure alert with it', () => {
    const e = f.engine();
    f.add({ execId: 'one', pid: 900, comm: 'lonely' });
    e.onLifecycle(exitEv(900, 'lonely', f.nowNs - 60n * S, { signal: 6 }), { execId: 'one', parentExecId: null, ppid: 1, comm: 'lonely' });
    for (let i = 0; i < 5; i++) {
      const id = `w${i}`;
      f.add({ execId: id, pid: 1000 + i, comm: 'worker', parentExecId: 'sh0', filename: '/usr/bin/worker' });
      e.onLifecycle(exitEv(1000 + i, 'worker', f.nowNs - BigInt(10 - i) * S, { code: 2 }), { execId: id, parentExecId: 'sh0', ppid: 500, comm: 'worker' });
    }
    const r = e.rankRecent();
    expect(r.map((c) => c.cause)).toEqual(['crash_loop', 'crash']);
    expect(r[0]!.count).toBe(3); // the 3rd, 4th and 5th failures reached the leaf
    expect(r[0]!.explanation).toMatch(/^worker failed 5 times in 10 min \(the last: exit code 2, signal \?, exec_id w4\); started by bash/);
    expect(r[0]!.evidence.find((x) => x.kind === 'failures')!.data).toMatchObject({ count: 5 });
    const alert = { id: 'al-1', check: 'exit_failures', state: 'critical', ts: f.clock.epochMs(f.nowNs), evidence: { value: 5 } };
    const ex = e.explain(alert);
    expect(ex[0]!.cause).toBe('crash_loop');
    // unrelated checks get no causes from these findings
    expect(e.explain({ ...alert, id: 'al-2', check: 'cert_expiry' })).toEqual([]);
  });

  it('runs check rules for an alert: disk full names the top writers', () => {
    const e = f.engine();
    for (const [i, mb] of [[1, 5], [2, 900], [3, 40]] as const) {
      f.add({ execId: `d${i}`, pid: 2000 + i, comm: `writer${i}` });
      e.onLifecycle(exitEv(2000 + i, `writer${i}`, f.nowNs - 60n * S, { writeBytes: BigInt(mb) << 20n }), { execId: `d${i}`, parentExecId: null, ppid: 1, comm: `writer${i}` });
    }
    const ex = e.explain({ id: 'al-d', check: 'disk_usage', state: 'critical', ts: f.clock.epochMs(f.nowNs), evidence: { mount: '/', value: 0.97 } });
    expect(ex[0]).toMatchObject({ cause: 'disk_filled_by_writer' });
    const writers = ex[0]!.evidence.filter((x) => x.kind === 'top_writers').map((x) => x.exec_id);
    expect(writers).toEqual(['d2', 'd3', 'd1']);
    // live writers from the resource windows join the exited ones
    const live = new RuleEngine({ clock: f.clock, windows: { rss: () => [], topWriters: () => [{ execId: 'live1', pid: 42, comm: 'dd', bytes: 5 * 2 ** 30 }] } });
    live.setRules(loadRuleFiles(PACK).ok ? (loadRuleFiles(PACK) as { set: import('../../src/rules/index.js').RuleSet }).set : (undefined as never));
    live.onLifecycle(exitEv(2002, 'writer2', f.nowNs - 60n * S, { writeBytes: 900n << 20n }), { execId: 'd2', parentExecId: null, ppid: 1, comm: 'writer2' });
    const lx = live.explain({ id: 'al-e', check: 'disk_usage', state: 'critical', ts: f.clock.epochMs(f.nowNs), evidence: null });
    expect(lx[0]!.explanation).toContain('the largest writer wrote 5.0 GiB');
    expect(lx[0]!.evidence.filter((x) => x.kind === 'top_writers').map((x) => x.summary)).toEqual(['pid 42 (dd) wrote 5.0 GiB in the last 15.0 min', 'pid 2002 (writer2) wrote 900 MiB in the last 15.0 min']);
    expect(ex[0]!.evidence.find((x) => x.kind === 'check')!.summary).toBe('disk_usage critical (alert al-d)');
  });

  it('spots an exec storm by parent', () => {
    const e = f.engine();
    for (let i = 0; i < 250; i++) {
      const ev: ExecEvent = {
        type: 'exec', ktimeNs: f.nowNs + BigInt(i) * 1_000_000n, seq: 0n, cpu: 0, flags: 0, pid: 3000 + i, oldTid: 3000 + i, ppid: 500, startNs: 0n, parentStartNs: 0n,
        cgroupId: 0n, uid: 0, gid: 0, euid: 0, comm: kt('true'), filename: kt('/bin/true'), filenameTruncated: false, args: [kt('true')], argsTruncated: false, argsFault: false, argsFullLen: 5,
      };
      f.add({ execId: `s${i}`, pid: 3000 + i, comm: 'true', parentExecId: 'sh0' });
      e.onLifecycle(ev, { execId: `s${i}`, parentExecId: 'sh0', ppid: 500, comm: 'true' });
    }
    const r = e.rankRecent();
    expect(r[0]).toMatchObject({ cause: 'exec_storm', count: 51 });
    expect(r[0]!.explanation).toBe('bash (exec_id sh0) started 250 programs in 10 s, the latest true');
  });

  it('keeps one storm finding per parent when two parents storm in turns', () => {
    // a repeat firing reuses the key of its leaf's last firing: alternating subjects must not
    // merge into each other's finding
    const e = f.engine();
    f.add({ execId: 'pa', pid: 600, comm: 'loopa' });
    f.add({ execId: 'pb', pid: 601, comm: 'loopb' });
    for (let i = 0; i < 500; i++) {
      const parent = i % 2 === 0 ? 'pa' : 'pb';
      const ppid = i % 2 === 0 ? 600 : 601;
      const ev: ExecEvent = {
        type: 'exec', ktimeNs: f.nowNs + BigInt(i) * 1_000_000n, seq: 0n, cpu: 0, flags: 0, pid: 4000 + i, oldTid: 4000 + i, ppid, startNs: 0n, parentStartNs: 0n,
        cgroupId: 0n, uid: 0, gid: 0, euid: 0, comm: kt('true'), filename: kt('/bin/true'), filenameTruncated: false, args: [kt('true')], argsTruncated: false, argsFault: false, argsFullLen: 5,
      };
      f.add({ execId: `t${i}`, pid: 4000 + i, comm: 'true', ppid, parentExecId: parent });
      e.onLifecycle(ev, { execId: `t${i}`, parentExecId: parent, ppid, comm: 'true' });
    }
    const storms = e.rankRecent().filter((x) => x.cause === 'exec_storm');
    expect(storms.map((x) => x.explanation.split(' ')[0]).sort()).toEqual(['loopa', 'loopb']);
    // each parent passed 200 execs at its 200th: 51 firings each
    expect(storms.map((x) => x.count)).toEqual([51, 51]);
  });

  it('holds a kernel line about an unknown pid until the process shows up, or the wait is over', () => {
    const e = f.engine();
    const line = (pid: number) => kmsg(5, f.nowNs, `late[${pid}]: segfault at 0 ip 0000000000401000 sp 00007ffd00000000 error 6 in late[401000+1000]`);
    e.onKmsg(line(7001));
    expect(e.rankRecent()).toEqual([]);
    f.add({ execId: 'late1', pid: 7001, comm: 'late', startNs: f.nowNs - S });
    e.onLifecycle(exitEv(7001, 'late', f.nowNs + 1_000_000n, { signal: 11 }), { execId: 'late1', parentExecId: null, ppid: 1, comm: 'late' });
    expect(e.rankRecent()[0]).toMatchObject({ cause: 'segfault', rule: 'segfault', exec_id: 'late1', confidence: 0.95 });
    e.onKmsg(line(7002));
    e.expireDeferred(f.nowNs + 3n * S);
    expect(e.rankRecent().find((c) => c.pid === 7002)).toMatchObject({ cause: 'segfault', exec_id: null });
    expect(e.stats()).toMatchObject({ joined: 1, expired: 1, pending: 0 });
  });

  it('profiles each rule: evaluations, matches, time', () => {
    const e = f.engine();
    e.onKmsg(kmsg(1, f.nowNs, 'nothing to see')); // the set scan rules every kmsg rule out
    expect(e.profile().find((x) => x.rule === 'oom-kill')).toMatchObject({ evaluations: 0 });
    e.onKmsg(kmsg(2, f.nowNs, 'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=,task_memcg=/,task=x,pid=99999,uid=0'));
    e.expireDeferred(f.nowNs + 3n * S);
    const p = e.profile().find((x) => x.rule === 'oom-kill')!;
    expect(p).toMatchObject({ evaluations: 2, patternMatches: 2, matches: 1 }); // deferred once, then without the process
    expect(p.timeNs).toBeGreaterThan(0);
    expect(e.profile().find((x) => x.rule === 'crash-signal')).toMatchObject({ evaluations: 0 });
  });
});

describe('line prefilter', () => {
  it('runs only the rules whose pattern matches a line, with the same findings as one by one', () => {
    const text =
      'rules:\n' +
      Array.from({ length: 300 }, (_, i) => `  - id: r${i}\n    source: kmsg\n    pattern: 'word${i}\\b (?P<pid>\\d+)'\n    tree: { cause: c${i}, confidence: 0.5, explanation: 'x {pid}' }\n`).join('');
    const set = compileRuleSet([{ file: 'many.yaml', text }]);
    if (!set.ok) throw new Error(set.diagnostics.map((d) => d.message).join());
    const f = new Fakes();
    const e = new RuleEngine({ clock: f.clock });
    e.setRules(set.set);
    e.onKmsg(kmsg(1, f.nowNs, 'hello word150 42'));
    e.onKmsg(kmsg(2, f.nowNs, 'nothing here'));
    const evaluated = e.profile().filter((p) => p.evaluations > 0);
    expect(evaluated.map((p) => p.rule)).toEqual(['r150']);
    expect(e.rankRecent()).toEqual([expect.objectContaining({ cause: 'c150', rule: 'r150', explanation: 'x 42' })]);
  });
});

describe('kmsg records', () => {
  it('parses priority, sequence, timestamp, flags, escapes and dictionary lines', () => {
    const r = parseKmsgRecord('3,1234,5678901,c;usb 1-1: tab\\x09here\n SUBSYSTEM=usb\n DEVICE=c189:1\n')!;
    expect(r).toMatchObject({ level: 3, facility: 0, seq: 1234n, usec: 5678901n, tNs: 5678901000n, flags: 'c', message: 'usb 1-1: tab\there', dict: { SUBSYSTEM: 'usb', DEVICE: 'c189:1' } });
    expect(parseKmsgRecord('14,2,3,-,caller=T1;hello')).toMatchObject({ level: 6, facility: 1, message: 'hello' });
    expect(parseKmsgRecord('garbage')).toBeNull();
    expect(parseKmsgRecord('a,b,c,d;x')).toBeNull();
  });
});

describe('explain API routes', () => {
  it('answer 503 without attribution, 400 without recent, 404 for an unknown alert, and serialize bigints', async () => {
    const { startApi } = await import('../../src/api/index.js');
    const { ApiClient } = await import('../../src/cli/client.js');
    const { FakeAgent } = await import('./api-fake.js');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const pino = (await import('pino')).default;
    const agent = new FakeAgent();
    const sock = join(mkdtempSync(join(tmpdir(), 'patrol-explain-')), 's.sock');
    const api = await startApi(agent, { socket: sock, log: pino({ level: 'silent' }) });
    const c = new ApiClient(sock);
    const status = (p: string, q?: Record<string, string | number | boolean>) => c.get(p, q).then(() => 200, (e: { status?: number }) => e.status);
    try {
      expect(await status('/explain', { recent: true })).toBe(503);
      (agent as { explain?: unknown }).explain = {
        explain: (id: string) => (id === 'a1' ? { alert: { id: 'a1', check: 'mem', state: 'critical', ts: 1, evidence: { big: 2n ** 60n } }, causes: [] } : null),
        explainRecent: (limit: number) => ({ alerts: [], causes: Array.from({ length: Math.min(limit, 2) }, (_, i) => ({ cause: `c${i}`, confidence: 0.5, explanation: 'x', evidence: [], rule: 'r', score: 0.5, ts: 'now', count: 1, processes: 1, exec_id: null, pid: null })) }),
        rules: () => ({ dir: '/r', rules: 1, diagnostics: [], profile: [], stats: {} }),
      };
      expect(await status('/explain')).toBe(400);
      expect(await status('/explain/nope')).toBe(404);
      expect(await c.get('/explain/a1')).toEqual({ alert: { id: 'a1', check: 'mem', state: 'critical', ts: 1, evidence: { big: 2 ** 60 } }, causes: [] });
      expect(((await c.get('/explain', { recent: 1, limit: 1 })) as { causes: unknown[] }).causes).toHaveLength(1);
      expect(await status('/explain', { recent: 1, limit: 0 })).toBe(400);
      expect(await c.get('/rules')).toMatchObject({ dir: '/r', rules: 1 });
    } finally {
      await api.close();
    }
  });
});
