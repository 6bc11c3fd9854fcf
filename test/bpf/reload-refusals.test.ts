// Sensor reloads that must be refused, against the real kernel: each leaves the running
// generation attached and recording, with nothing lost, and answers with a code and a message
// naming what is missing. Then the overlap made visible: both generations emitting at once
// under load, and every duplicate removed in user space.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LifecyclePipeline, type AccountingReport } from '../../src/app/lifecycle.js';
import { StatePipeline } from '../../src/app/states.js';
import { SensorReloader } from '../../src/app/sensor-reload.js';
import { defaultConfig, type AgentConfig } from '../../src/app/config.js';
import { bpfEnabled, marker, run, sleep } from './helpers.js';
import { BUILT, VARIANTS, buildVariants, compileHelper, markedProcesses, notExactlyOnce, objectDir, waitAllReaped, type Seen } from './reload-helpers.js';

// the log, kept: a refusal must be in it with its code
const logLines: string[] = [];
const log = pino({ level: 'info', base: undefined }, new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }));

describe.skipIf(!bpfEnabled)('sensor reload refusals (real kernel)', () => {
  const events: Seen[] = [];
  let lifecycle: LifecyclePipeline;
  let states: StatePipeline;
  let reloader: SensorReloader;
  let accounting: AccountingReport;

  const cfgFor = (dir: string): AgentConfig => {
    const d = defaultConfig();
    return { ...d, agent: { ...d.agent, bpfDir: dir } };
  };

  /** A process that runs now must be seen: the running generation still records. */
  async function stillRecording(): Promise<void> {
    const m = marker();
    await run('/bin/sh', ['-c', `exec /bin/true ${m}`]);
    for (let i = 0; i < 200; i++) {
      if (events.some((s) => s.ev.type === 'exec' && s.ev.args.some((a) => a.text === m))) return;
      await sleep(10);
    }
    throw new Error('the running sensor no longer records');
  }

  beforeAll(() => {
    buildVariants();
    lifecycle = LifecyclePipeline.start({}, log, (ev, en) => {
      events.push({ ev, en: { ...en } });
      states?.states.applyLifecycle(ev, en);
    });
    states = StatePipeline.start({}, lifecycle.table, log, () => {});
    reloader = new SensorReloader({ lifecycle, states, log, config: defaultConfig() });
  }, 120_000);

  afterAll(async () => {
    await states?.close();
    await lifecycle?.close();
  });

  const cases: Array<[string, string, string, RegExp]> = [
    ['a tracepoint this kernel does not have', 'lifecycle-missing-tp.bpf.o', 'E_SENSOR_BTF', /btf_trace_patrol_no_such_tracepoint .*program handle_missing_tp/],
    ['a CO-RE relocation this kernel cannot resolve', 'lifecycle-core-missing.bpf.o', 'E_SENSOR_BTF', /task_struct___patrol_test\.patrol_no_such_field/],
    ['a program the verifier rejects', 'lifecycle-verifier-reject.bpf.o', 'E_SENSOR_VERIFIER', /handle_verifier_reject/],
    ['a map layout that cannot be shared', 'lifecycle-map-layout.bpf.o', 'E_SENSOR_MAP_LAYOUT', /pt_exits \(value 24 → 32 bytes/],
  ];

  for (const [what, object, code, reason] of cases) {
    it(`refuses ${what} with ${code}; the running generation stays`, async () => {
      const before = reloader.status();
      const programs = [...lifecycle.attached];
      const r = await reloader.reload(cfgFor(objectDir(join(VARIANTS, object), join(BUILT, 'state.bpf.o'))), 'objects');
      expect(r.result).toBe('rejected');
      expect(r.code).toBe(code);
      expect(r.reason).toMatch(reason);
      expect(r.sensors.lifecycle).toMatchObject({ result: 'rejected', code });
      expect(reloader.status()).toEqual(before);
      expect(lifecycle.attached).toEqual(programs);
      expect(lifecycle.missingPrograms()).toEqual([]);
      const logged = logLines.map((l) => JSON.parse(l) as { level: number; code?: string; err?: string }).filter((l) => l.code === code && l.level === 50).at(-1);
      expect(logged?.err).toMatch(reason);
      await stillRecording();
    });
  }

  it('an object that is not there: E_SENSOR_OBJECT', async () => {
    const r = await reloader.reload(cfgFor('/nonexistent/patrol-bpf'), 'objects');
    expect(r).toMatchObject({ result: 'rejected', code: 'E_SENSOR_OBJECT' });
    expect(r.reason).toContain('/nonexistent/patrol-bpf/lifecycle.bpf.o');
    await stillRecording();
  });

  it('both generations emitting at once under load: every duplicate is removed, every event seen once', async () => {
    const bin = compileHelper('reload_load');
    const tag = `dup${process.pid}`;
    const load = spawn(bin, ['200', '600000', tag], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    load.stdout!.on('data', (d) => (out += d));
    const done = new Promise<void>((r) => load.once('exit', () => r()));
    await sleep(300);
    // 40 ms with PT_GEN_ALL in the word, then the flip: both generations record every event
    reloader.forceOverlapMs = 40;
    const dups: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await reloader.reload(cfgFor(i % 2 ? BUILT : objectDir(join(VARIANTS, 'lifecycle-variant.bpf.o'), join(VARIANTS, 'state-variant.bpf.o'))), 'forced');
      expect(r.result).toBe('applied');
      expect(r.overlap_ms).toBeGreaterThanOrEqual(40);
      await sleep(150); // the filter's window closes with the first batch after its grace
      dups.push(lifecycle.overlap.lastDuplicates);
    }
    reloader.forceOverlapMs = 0;
    load.kill('SIGTERM');
    await done;
    await waitAllReaped(events, tag);
    accounting = await lifecycle.stop();
    const marked = markedProcesses(events, tag);
    expect(marked.size).toBeGreaterThan(10);
    const bad = [...marked.values()].map(notExactlyOnce).filter((x) => x !== null);
    expect(bad).toEqual([]);
    const total = dups.reduce((a, b) => a + b, 0);
    console.log(`forced overlaps: duplicates removed per reload ${dups.join(', ')}; total ${accounting.totals.duplicates} (${JSON.stringify(Object.fromEntries(Object.entries(accounting.duplicates).map(([k, v]) => [k, Number(v)])))})`);
    expect(total).toBeGreaterThan(0);
    expect(accounting.totals.duplicates).toBe(BigInt(total));
    // exec and fork are the ones two generations both record; exit, reap and exec_failed are
    // settled in the kernel (their hooks consume what they report)
    expect(accounting.duplicates.exec + accounting.duplicates.fork).toBeGreaterThan(0n);
    expect(accounting.duplicates.exit + accounting.duplicates.reap + accounting.duplicates.exec_failed).toBe(0n);
    // the identity is about the ring: duplicates are captured records, then removed
    expect(accounting.exact).toBe(true);
    expect(accounting.identityHolds).toBe(true);
    expect(accounting.totals.lostReserve + accounting.totals.lostUserspace).toBe(0n);
    expect(accounting.seqGaps).toBe(0n);
    expect(Number(out.trim())).toBeGreaterThan(0);
  }, 300_000);
});
