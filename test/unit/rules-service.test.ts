// The agent's rules service without BPF: a log rule tails its file (across rotation) into the
// engine; a reload with a bad set keeps the running one.
import { appendFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { Enriched } from '../../src/process/index.js';
import type { ExitEvent, StateEvent } from '../../src/shared/events.js';
import { ProcessTable, type ProcFs } from '../../src/process/index.js';
import { createLogger } from '../../src/shared/log.js';
import { RulesService, alertSource, readCgroupPath } from '../../src/app/rules.js';

const noProc: ProcFs = { listPids: () => [], readStat: () => null, readCmdline: () => null, readUid: () => null };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RulesService', () => {
  it('tails a log rule\'s file into findings, across rotation; a bad reload keeps the set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-svc-'));
    const log = join(dir, 'app.log');
    writeFileSync(log, 'old ERROR [db] not counted: before the start\n');
    const rules = join(dir, 'rules');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(rules);
    writeFileSync(
      join(rules, 'app.yaml'),
      `rules:\n  - id: app-db-down\n    source: log\n    path: ${log}\n    pattern: 'ERROR \\[(?P<svc>\\w+)\\] (?P<msg>connection refused.*)'\n    tree: { cause: db_down, confidence: 0.6, key: '{svc}', explanation: '{svc}: {msg}', evidence: [line] }\n`,
    );
    let now = 1000n * 1_000_000_000n;
    let drains = 0;
    const svc = RulesService.start({
      config: { dir: rules, kmsg: false },
      table: new ProcessTable({ bootId: 'b', procfs: noProc, now: () => now }),
      log: createLogger({ level: 'silent' }),
      nowNs: () => now,
      beforeInput: () => drains++, // the agent drains its ring there, before each line goes in
    });
    try {
      appendFileSync(log, 'INFO ok\nERROR [db] connection refused (1)\n');
      renameSync(log, log + '.1');
      writeFileSync(log, 'ERROR [db] connection refused (2)\n');
      for (let i = 0; i < 40 && (svc.engine.rankRecent()[0]?.count ?? 0) < 2; i++) await sleep(50);
      const [c] = svc.engine.rankRecent();
      expect(c).toMatchObject({ cause: 'db_down', count: 2, explanation: 'db: connection refused (2)' });
      expect(drains).toBeGreaterThanOrEqual(3); // INFO ok, and the two errors
      expect(c!.evidence.map((e) => e.summary)).toEqual(['ERROR [db] connection refused (1)', 'ERROR [db] connection refused (2)']);
      expect(svc.stats().tailers).toEqual([expect.objectContaining({ path: log, rotations: 1 })]);
      writeFileSync(join(rules, 'bad.yaml'), 'rules: [ {id: x} ]\n');
      expect(svc.reload().ok).toBe(false);
      expect(svc.registry.set.rules.map((r) => r.id)).toEqual(['app-db-down']);
      expect(svc.lastDiagnostics[0]).toMatch(/bad\.yaml:1:\d+: E_RULE_SHAPE/);
      now += 1n;
    } finally {
      svc.close();
    }
  });

  it('explains stored alerts through the AlertSource adapter', () => {
    const now = 1000n * 1_000_000_000n;
    const svc = RulesService.start({
      config: { dir: null, kmsg: false },
      table: new ProcessTable({ bootId: 'b', procfs: noProc, now: () => now }),
      log: createLogger({ level: 'silent' }),
      nowNs: () => now,
    });
    try {
      const stored = [{ id: 'a1b2', name: 'disk_root', check_id: 'c1', state: 'critical', at: Date.now(), evidence: { value: 0.97 } }];
      svc.alerts = alertSource((q) => stored.slice(0, q.limit));
      expect(svc.explain('nope')).toBeNull();
      const r = svc.explain('a1b2')!;
      expect(r.alert).toMatchObject({ id: 'a1b2', check: 'disk_root', state: 'critical' });
      expect(r.causes[0]).toMatchObject({ cause: 'disk_filled_unattributed', rule: 'disk-full-writers' });
      expect(svc.explainRecent(5).alerts).toHaveLength(1);
    } finally {
      svc.close();
    }
  });

  it('reads the cgroup path of a live process', () => {
    const p = readCgroupPath(process.pid);
    expect(p === null || p.startsWith('/')).toBe(true);
    expect(readCgroupPath(2 ** 22 + 1)).toBeNull();
  });

  describe('lifecycle batches (rules.batch_interval)', () => {
    const S = 1_000_000_000n;
    const MS = 1_000_000n;
    const T0 = 1000n * S;
    const failingExit = (i: number, t: bigint): ExitEvent => ({
      type: 'exit', ktimeNs: t, seq: BigInt(i), cpu: 0, flags: 0, pid: 7000 + i, tid: 7000 + i, ppid: 1, startNs: t - 5n * MS, status: 256,
      exitCode: 1, signal: null, coreDumped: false, comm: { text: 'flaky' },
      usage: { cpuNs: 0, utimeNs: 0, stimeNs: 0, maxRssKb: 1000, readBytes: 0, writeBytes: 0, rchar: 0, wchar: 0, minflt: 0, majflt: 0, nvcsw: 0, nivcsw: 0 },
    });
    const service = (batchIntervalMs: number, onError?: (e: unknown) => void) => {
      const table = new ProcessTable({ bootId: 'b', procfs: noProc, now: () => T0 + 60n * S });
      const svc = RulesService.start({
        config: { dir: null, kmsg: false, batchIntervalMs },
        table,
        log: createLogger({ level: 'silent' }),
        nowNs: () => T0 + 60n * S,
        ...(onError ? { onError } : {}),
      });
      return { svc, feed: (ev: ExitEvent) => svc.onLifecycle(ev, table.apply(ev)) };
    };
    const crashLoops = (svc: RulesService) => svc.engine.rankRecent(50).filter((c) => c.cause === 'crash_loop').map((c) => ({ count: c.count, explanation: c.explanation }));

    it('finds what event-by-event application finds, in batches due by kernel time', () => {
      const one = service(0);
      const batched = service(250);
      try {
        let most = 0;
        for (let i = 0; i < 30; i++) {
          const ev = failingExit(i, T0 + BigInt(i) * 20n * MS);
          one.feed(ev);
          batched.feed(ev);
          most = Math.max(most, batched.svc.waitingEvents);
        }
        // 20 ms apart: the 14th event is 260 ms after the first, due, and goes in with its batch
        expect(most).toBe(13);
        expect(one.svc.waitingEvents).toBe(0);
        const expected = crashLoops(one.svc);
        expect(expected).toHaveLength(1);
        expect(expected[0]!.count).toBe(28);
        expect(crashLoops(batched.svc)).toEqual(expected);
        expect(batched.svc.waitingEvents).toBe(0);
        expect(batched.svc.stats().lifecycleBatches).toEqual({ events: 30, batches: 3, maxEvents: 14 }); // 14, 14, and 2 read out
      } finally {
        one.svc.close();
        batched.svc.close();
      }
    });

    it('applies the waiting events before a state event, a reader, a new config, and at close', () => {
      const { svc, feed } = service(250);
      try {
        feed(failingExit(0, T0));
        feed(failingExit(1, T0 + 10n * MS));
        expect(svc.waitingEvents).toBe(2);
        const st: StateEvent = { type: 'state', ktimeNs: T0 + 20n * MS, seq: 0n, cpu: 0, pid: 9, tid: 9, startNs: 0n, from: 'D', to: 'R', durationNs: 2n * S, reason: 'd_long', comm: { text: 'io' } };
        svc.onState(st);
        expect(svc.waitingEvents).toBe(0);
        feed(failingExit(2, T0 + 30n * MS));
        expect(svc.waitingEvents).toBe(1);
        expect(crashLoops(svc)).toEqual([expect.objectContaining({ count: 1 })]); // reading `engine` applied it
        expect(svc.waitingEvents).toBe(0);
        feed(failingExit(3, T0 + 40n * MS));
        svc.setConfig({ dir: null, kmsg: false, batchIntervalMs: 0 });
        expect(svc.waitingEvents).toBe(0);
        feed(failingExit(4, T0 + 50n * MS)); // interval 0: at once
        expect(svc.waitingEvents).toBe(0);
        svc.setConfig({ dir: null, kmsg: false, batchIntervalMs: 250 });
        feed(failingExit(5, T0 + 60n * MS));
        expect(svc.waitingEvents).toBe(1);
      } finally {
        svc.close();
      }
      expect(svc.waitingEvents).toBe(0);
      expect(svc.stats().lifecycleBatches.events).toBe(5); // the one at interval 0 went straight in
    });

    it('applies a batch on its timer when the stream stops', async () => {
      const { svc, feed } = service(40);
      try {
        feed(failingExit(0, T0));
        expect(svc.waitingEvents).toBe(1);
        for (let i = 0; i < 40 && svc.waitingEvents > 0; i++) await sleep(10);
        expect(svc.waitingEvents).toBe(0);
        expect(svc.stats().lifecycleBatches).toEqual({ events: 1, batches: 1, maxEvents: 1 });
      } finally {
        svc.close();
      }
    });

    it('with the agent\'s ticker, renders coalesced firings at its tick, not on a timer of their own', async () => {
      const ticks: (() => void)[] = [];
      let cancelled = 0;
      const ticker = { every: (_ms: number, fn: () => void) => (ticks.push(fn), { cancel: () => void cancelled++ }) };
      const run = (withTicker: boolean) => {
        const table = new ProcessTable({ bootId: 'b', procfs: noProc, now: () => T0 + 60n * S });
        const svc = RulesService.start({
          config: { dir: null, kmsg: false, batchIntervalMs: 0 }, table, log: createLogger({ level: 'silent' }), nowNs: () => T0 + 60n * S,
          ...(withTicker ? { ticker } : {}),
        });
        // a crash loop fires from the third failure on; later firings within 1 s are coalesced
        for (let i = 0; i < 6; i++) {
          const ev = failingExit(i, T0 + BigInt(i) * 10n * MS);
          svc.onLifecycle(ev, table.apply(ev));
        }
        return svc;
      };
      const ticked = run(true);
      const timed = run(false);
      try {
        expect(ticks).toHaveLength(1);
        expect(ticked.stats().evidenceBuilds).toBe(1);
        expect(timed.stats().evidenceBuilds).toBe(1);
        // without a ticker the 500 ms expiry timer renders the latest firing (polled: a loaded
        // machine may run the timer late); with one, nothing wakes for it
        for (let i = 0; i < 60 && timed.stats().evidenceBuilds < 2; i++) await sleep(50);
        expect(timed.stats().evidenceBuilds).toBe(2);
        expect(ticked.stats().evidenceBuilds).toBe(1);
        ticks[0]!();
        expect(ticked.stats().evidenceBuilds).toBe(2);
        expect(crashLoops(ticked)).toEqual(crashLoops(timed));
        expect(crashLoops(ticked)).toEqual([expect.objectContaining({ count: 4 })]);
      } finally {
        ticked.close();
        timed.close();
      }
      expect(cancelled).toBe(1);
    });

    it('reports a throw inside a batch and applies the rest of it', () => {
      const onError = vi.fn();
      const { svc, feed } = service(250, onError);
      try {
        feed(failingExit(0, T0));
        feed(failingExit(1, T0 + 10n * MS));
        svc.onLifecycle(failingExit(2, T0 + 20n * MS), undefined as unknown as Enriched); // a bug upstream
        feed(failingExit(3, T0 + 30n * MS));
        feed(failingExit(4, T0 + 300n * MS)); // due: the batch goes in
        expect(onError).toHaveBeenCalledTimes(1);
        expect(svc.waitingEvents).toBe(0);
        // four good failures reached the engine: the finding counts its firings (from the 3rd)
        expect(crashLoops(svc)).toEqual([expect.objectContaining({ count: 2 })]);
      } finally {
        svc.close();
      }
    });
  });
});
