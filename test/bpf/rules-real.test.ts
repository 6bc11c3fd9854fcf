// Attribution against the real kernel: a real OOM kill in a 64 MiB memory cgroup, a real NULL
// dereference, and a crash loop, each explained through the agent's API and `patrol explain`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExitEvent } from '../../src/shared/events.js';
import { createLogger } from '../../src/shared/log.js';
import { boottimeNs } from '../../src/kernel/index.js';
import { LifecyclePipeline } from '../../src/app/lifecycle.js';
import { RulesService, explainView } from '../../src/app/rules.js';
import { startApi, type ApiHandle, type CauseJson, type ExplainRecentJson } from '../../src/api/index.js';
import type { RssSample, WindowFacts } from '../../src/rules/index.js';
import { StatePipeline } from '../../src/app/states.js';
import { runExplain } from '../../src/cli/explain.js';
import { FakeAgent } from '../unit/api-fake.js';
import { bpfEnabled, sleep, type Captured } from './helpers.js';

const HELPERS = fileURLToPath(new URL('../helpers', import.meta.url));

/** Samples VmRSS of watched processes every 25 ms: the stand-in for src/metrics' windows. */
class RssSampler implements WindowFacts {
  private readonly samples = new Map<string, RssSample[]>();
  private readonly watched = new Map<string, number>();
  private readonly timer = setInterval(() => this.tick(), 25);
  watch(execId: string, pid: number) {
    this.watched.set(execId, pid);
    this.tick();
  }
  private tick() {
    for (const [id, pid] of this.watched) {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (m) (this.samples.get(id) ?? this.samples.set(id, []).get(id)!).push({ tNs: boottimeNs(), bytes: Number(m[1]) * 1024 });
      } catch {
        this.watched.delete(id);
      }
    }
  }
  rss(execId: string, windowMs: number, nowNs: bigint): RssSample[] {
    const from = nowNs - BigInt(windowMs) * 1_000_000n;
    return (this.samples.get(execId) ?? []).filter((s) => s.tNs >= from && s.tNs <= nowNs);
  }
  close() {
    clearInterval(this.timer);
  }
}

/** A memory cgroup limited to 64 MiB without swap: cgroup v2 when it has the memory controller, else v1. */
function makeMemoryCgroup(name: string): { dir: string; path: string; remove(): void } {
  const v2roots = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'];
  for (const root of v2roots) {
    const ctl = join(root, 'cgroup.controllers');
    if (existsSync(ctl) && readFileSync(ctl, 'utf8').split(/\s+/).includes('memory')) {
      const dir = join(root, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'memory.max'), '64M');
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
      return { dir, path: `/${name}`, remove: () => rmdirSync(dir) };
    }
  }
  const dir = join('/sys/fs/cgroup/memory', name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'memory.limit_in_bytes'), String(64 << 20));
  if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(64 << 20));
  return { dir, path: `/${name}`, remove: () => rmdirSync(dir) };
}

function compile(src: string): string {
  const out = join(mkdtempSync(join(tmpdir(), 'patrol-rules-')), src.replace(/\.c$/, ''));
  execFileSync('cc', ['-O0', '-o', out, join(HELPERS, src)]);
  return out;
}

describe.skipIf(!bpfEnabled)('attribution on the real kernel', () => {
  let pipeline: LifecyclePipeline;
  let st: StatePipeline | null = null;
  let rules: RulesService;
  let sampler: RssSampler;
  let api: ApiHandle;
  let sock: string;
  const events: Captured[] = [];
  const watchComms = new Set(['alloc']);
  let exceptionTrace: string | null = null;

  beforeAll(async () => {
    const log = createLogger({ level: 'warn' });
    sampler = new RssSampler();
    let svc: RulesService | null = null;
    pipeline = LifecyclePipeline.start({}, log, (ev, en) => {
      events.push({ ev, en: { ...en } });
      st?.states.applyLifecycle(ev, en);
      if (ev.type === 'exec' && watchComms.has(ev.comm.text)) sampler.watch(en.execId, ev.pid);
      svc?.onLifecycle(ev, en);
    });
    // the state sensor as the agent runs it: zombies, and D past 200 ms
    st = StatePipeline.start({ dThresholdMs: 200, sweepMs: 100 }, pipeline.table, log, (ev) => svc?.onState(ev));
    svc = rules = RulesService.start({
      config: { dir: null, kmsg: true }, table: pipeline.table, log, nowNs: boottimeNs, windows: sampler, kmsgBacklogMs: 0, states: st,
    });
    // `segfault at` lines need debug.exception-trace=1; restored after
    try {
      exceptionTrace = readFileSync('/proc/sys/debug/exception-trace', 'utf8').trim();
      writeFileSync('/proc/sys/debug/exception-trace', '1');
    } catch {
      exceptionTrace = null;
    }
    const agent = new FakeAgent();
    (agent as { explain?: unknown }).explain = explainView(rules);
    sock = join(mkdtempSync(join(tmpdir(), 'patrol-api-')), 'patrol.sock');
    api = await startApi(agent, { socket: sock, log: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    if (exceptionTrace !== null) writeFileSync('/proc/sys/debug/exception-trace', exceptionTrace);
    await api?.close();
    rules?.close();
    sampler?.close();
    await st?.close();
    await pipeline?.stop().finally(() => pipeline.close());
  });

  const exitOf = async (pid: number) => {
    const end = Date.now() + 10_000;
    for (;;) {
      const e = events.find((c) => c.ev.pid === pid && c.ev.type === 'exit');
      if (e) return e;
      if (Date.now() > end) throw new Error(`no exit event for pid ${pid}`);
      await sleep(10);
    }
  };
  const causeFor = async (pred: (c: CauseJson) => boolean, ms = 5000): Promise<CauseJson> => {
    const end = Date.now() + ms;
    for (;;) {
      const hit = (explainView(rules).explainRecent(50).causes as CauseJson[]).find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no such cause; have: ${JSON.stringify(rules.engine.rankRecent(50).map((c) => [c.cause, c.exec_id]))}`);
      await sleep(50);
    }
  };
  const explainCli = async (): Promise<{ json: ExplainRecentJson; text: string }> => {
    let j = '';
    let t = '';
    await runExplain(undefined, { recent: true, json: true, socket: sock, limit: '50' }, { write: (s: string) => (j += s) });
    await runExplain(undefined, { recent: true, socket: sock, limit: '50' }, { write: (s: string) => (t += s) });
    return { json: JSON.parse(j) as ExplainRecentJson, text: t };
  };

  it('OOM in a 64 MiB memory cgroup: SIGKILL, the kmsg line, the cgroup limit, the exec_id and RSS growth', async () => {
    const alloc = compile('alloc.c');
    const cg = makeMemoryCgroup(`patrol-oom-${process.pid}`);
    try {
      const child = spawn('/bin/sh', ['-c', `echo $$ > ${cg.dir}/cgroup.procs && exec ${alloc}`], { stdio: 'ignore' });
      const exit = await exitOf(child.pid!);
      const x = exit.ev as ExitEvent;
      expect(x.signal).toBe(9);
      expect(x.comm.text).toBe('alloc');
      const execId = exit.en.execId;
      const c = await causeFor((k) => k.cause === 'oom_cgroup_limit' && k.exec_id === execId);
      expect(c.explanation).toContain(`pid ${child.pid} (alloc, exec_id ${execId}) was OOM-killed by the memory limit of cgroup ${cg.path}`);
      const line = c.evidence.find((e) => e.kind === 'kmsg')!;
      expect(line.summary).toMatch(new RegExp(`oom-kill:constraint=CONSTRAINT_MEMCG,.*oom_memcg=${cg.path},.*task=alloc,pid=${child.pid}`));
      const rss = c.evidence.find((e) => e.kind === 'window')!;
      expect(rss.exec_id).toBe(execId);
      expect(rss.data!.max as number).toBeGreaterThan(40 << 20);
      expect((rss.data!.max as number) - (rss.data!.first as number)).toBeGreaterThan(30 << 20);
      expect(rss.summary).toMatch(/^RSS grew from .* to \d+(\.\d)? MiB/);
      await sleep(300);
      const withExit = rules.engine.rankRecent(50).find((k) => k.exec_id === execId)!;
      expect(withExit.evidence.find((e) => e.kind === 'exit')?.summary).toMatch(/killed by SIGKILL/);
      // the same through the API and the CLI
      const { json, text } = await explainCli();
      expect(json.causes.some((k) => k.cause === 'oom_cgroup_limit' && k.exec_id === execId)).toBe(true);
      expect(text).toContain(`oom_cgroup_limit  (confidence 0.95`);
      expect(text).toContain(`exec_id ${execId}`);
    } finally {
      await sleep(100);
      cg.remove();
    }
  });

  it('segfault: the kernel line is joined to the exec_id', async () => {
    const bin = compile('nullderef.c');
    const child = spawn(bin, [], { stdio: 'ignore' });
    const exit = await exitOf(child.pid!);
    expect((exit.ev as ExitEvent).signal).toBe(11);
    const execId = exit.en.execId;
    const c = await causeFor((k) => k.cause === 'segfault' && k.exec_id === execId && k.rule === 'segfault');
    expect(c.confidence).toBe(0.95);
    expect(c.explanation).toContain(`pid ${child.pid} (nullderef, exec_id ${execId}) crashed on a NULL pointer dereference (segfault at 0`);
    expect(c.evidence.find((e) => e.kind === 'kmsg')!.summary).toMatch(new RegExp(`nullderef\\[${child.pid}\\]: segfault at 0 ip`));
    const { json } = await explainCli();
    expect(json.causes.find((k) => k.exec_id === execId)).toMatchObject({ cause: 'segfault', rule: 'segfault' });
  });

  it('an exec storm is blamed on the parent running it', async () => {
    const child = spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' });
    await exitOf(child.pid!);
    const shell = events.find((c) => c.ev.pid === child.pid && c.ev.type === 'exec')!;
    const c = await causeFor((k) => k.cause === 'exec_storm' && k.evidence.some((e) => e.kind === 'children' && e.exec_id === shell.en.execId));
    expect(c.explanation).toMatch(new RegExp(`^sh \\(exec_id ${shell.en.execId}\\) started \\d+ programs in 10 s, the latest true$`));
  });

  it('a zombie alert is blamed on the parent that does not reap', async () => {
    // perl forks 3 children that exit at once, then sleeps without waiting for them
    const parent = spawn('perl', ['-e', 'for (1..3) { exit 0 unless fork() } sleep 3'], { stdio: 'ignore' });
    try {
      const end = Date.now() + 5000;
      while (pipeline.table.children(pipeline.table.byPid(parent.pid!)?.execId ?? '').filter((c) => c.state === 'zombie').length < 3) {
        if (Date.now() > end) throw new Error('no zombies');
        await sleep(20);
      }
      const alert = { id: `zombie-${parent.pid}`, check: 'zombie_count', state: 'critical', ts: Date.now(), evidence: { value: 3 } };
      const [top] = rules.engine.explain(alert);
      expect(top).toMatchObject({ cause: 'zombie_leak', rule: 'zombie-leak' });
      expect(top!.explanation).toMatch(/^perl is not reaping its children: 3 of the \d+ zombies are its$/);
      const z = top!.evidence.find((e) => e.kind === 'zombies')!;
      expect(z.summary).toMatch(new RegExp(`^parent pid ${parent.pid} \\(perl\\) has not reaped 3 children`));
      expect(z.exec_id).toBe(pipeline.table.byPid(parent.pid!)!.execId);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a process stuck in D is named with how long', async () => {
    const bin = compile('vfork_sleep.c');
    const child = spawn(bin, ['500'], { stdio: 'ignore' });
    await exitOf(child.pid!);
    const execId = events.find((c) => c.ev.pid === child.pid && c.ev.type === 'exec')!.en.execId;
    const c = await causeFor((k) => k.cause === 'stuck_d_state' && k.exec_id === execId);
    expect(c.explanation).toMatch(new RegExp(`^pid ${child.pid} \\(vfork_sleep, exec_id ${execId}\\) spent (4[89]\\d|5\\d\\d) ms in D state`));
    expect(c.evidence.find((e) => e.kind === 'stuck_d')!.data).toMatchObject({ pid: child.pid });
  });

  it('a command that fails repeatedly is ranked first', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'patrol-loop-')), 'flaky-worker');
    writeFileSync(script, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    let last = 0;
    for (let i = 0; i < 6; i++) {
      const child = spawn(script, [], { stdio: 'ignore' });
      await new Promise((r) => child.on('exit', r));
      last = child.pid!;
    }
    await exitOf(last);
    const { json, text } = await explainCli();
    expect(json.causes[0], JSON.stringify({ last, top: json.causes[0] }, null, 1)).toMatchObject({ cause: 'crash_loop', pid: last });
    expect(json.causes[0]!.explanation).toMatch(/^flaky-worker is crash-looping|^flaky-worker failed 6 times in 10 min/);
    expect(json.causes[0]!.evidence.find((e) => e.kind === 'failures')!.data).toMatchObject({ count: 6 });
    expect(text.split('\n')[1]).toMatch(/^1\. crash_loop/);
  });
});
