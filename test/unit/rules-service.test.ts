// The agent's rules service without BPF: a log rule tails its file (across rotation) into the
// engine; a reload with a bad set keeps the running one.
import { appendFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
    const svc = RulesService.start({
      config: { dir: rules, kmsg: false },
      table: new ProcessTable({ bootId: 'b', procfs: noProc, now: () => now }),
      log: createLogger({ level: 'silent' }),
      nowNs: () => now,
    });
    try {
      appendFileSync(log, 'INFO ok\nERROR [db] connection refused (1)\n');
      renameSync(log, log + '.1');
      writeFileSync(log, 'ERROR [db] connection refused (2)\n');
      for (let i = 0; i < 40 && (svc.engine.rankRecent()[0]?.count ?? 0) < 2; i++) await sleep(50);
      const [c] = svc.engine.rankRecent();
      expect(c).toMatchObject({ cause: 'db_down', count: 2, explanation: 'db: connection refused (2)' });
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
});
