// A fake agent for the API tests: a real ProcessTable fed with synthetic lifecycle events, and a
// subscribe/publish pair standing in for the pipeline's sink.
import type { ExitUsage, KText, LifecycleEvent } from '../../src/shared/events.js';
import { ProcessTable, type Enriched, type ProcFs } from '../../src/process/index.js';
import type { AgentStats, AgentView, EventListener } from '../../src/api/index.js';

const BOOT = '0f6c9c1e-5b0e-4d7e-a1c2-6d3f4e5a6b7c';
export const SEC = 1_000_000_000n;
export const MS = 1_000_000n;
/** wall clock of ktime 0 in the fake clock */
export const BOOT_EPOCH_MS = Date.UTC(2025, 0, 2, 3, 4, 5, 0);

class NoProcFs implements ProcFs {
  listPids(): number[] {
    return [];
  }
  readStat() {
    return null;
  }
  readCmdline() {
    return null;
  }
  readUid() {
    return null;
  }
}

const kt = (text: string): KText => ({ text });
let seq = 0n;
const hdr = <T extends LifecycleEvent['type']>(type: T, ktimeNs: bigint) => ({ type, ktimeNs, seq: seq++, cpu: 0, flags: 0 });
export const ZERO_USAGE: ExitUsage = {
  cpuNs: 1_500_000n,
  utimeNs: 0n,
  stimeNs: 0n,
  maxRssKb: 2048,
  readBytes: 0n,
  writeBytes: 0n,
  rchar: 0n,
  wchar: 0n,
  minflt: 0n,
  majflt: 0n,
  nvcsw: 0n,
  nivcsw: 0n,
};

/** Start time of a synthetic pid: distinct and increasing with the pid. */
export const startOf = (pid: number): bigint => BigInt(pid) * SEC;

export const ev = {
  /** a fork at `at` of a child whose start time is startOf(pid) */
  fork(pid: number, ppid: number, at: bigint, comm: string, thread = false): LifecycleEvent {
    return {
      ...hdr('fork', at),
      pid,
      tid: pid,
      startNs: startOf(pid),
      ppid,
      parentTid: ppid,
      parentStartNs: startOf(ppid),
      comm: kt(comm),
      thread,
    };
  },
  exec(pid: number, ppid: number, at: bigint, filename: string, args: (string | KText)[], uid = 0): LifecycleEvent {
    return {
      ...hdr('exec', at),
      pid,
      oldTid: pid,
      ppid,
      startNs: startOf(pid),
      parentStartNs: ppid === 0 ? 0n : startOf(ppid),
      cgroupId: 77n,
      uid,
      gid: uid,
      euid: uid,
      comm: kt(filename.split('/').pop()!.slice(0, 15)),
      filename: kt(filename),
      filenameTruncated: false,
      args: args.map((a) => (typeof a === 'string' ? kt(a) : a)),
      argsTruncated: false,
      argsFault: false,
      argsFullLen: args.length,
    };
  },
  exit(pid: number, ppid: number, at: bigint, comm: string, code: number | null, signal: number | null = null): LifecycleEvent {
    return {
      ...hdr('exit', at),
      pid,
      tid: pid,
      ppid,
      startNs: startOf(pid),
      status: signal !== null ? signal : (code ?? 0) << 8,
      exitCode: signal !== null ? null : code,
      signal,
      coreDumped: false,
      comm: kt(comm),
      usage: ZERO_USAGE,
    };
  },
  reap(pid: number, at: bigint, exitNs: bigint): LifecycleEvent {
    return { ...hdr('reap', at), pid, startNs: startOf(pid), exitNs };
  },
  execFailed(pid: number, at: bigint, filename: string, errno = 2): LifecycleEvent {
    return { ...hdr('exec_failed', at), pid, tid: pid, startNs: startOf(pid), errno, filename: kt(filename), comm: kt('bash') };
  },
};

export class FakeAgent implements AgentView {
  version = '9.9.9-test';
  startedAt = Date.now() - 42_000;
  pid = 4242;
  config = { ringBytes: 4 << 20, argsCap: 4096 };
  /** no state sensor: live processes show as S, zombies as Z, reaped as X */
  states = null;
  nowNs = (): bigint => 5000n * SEC;
  readonly table = new ProcessTable({ bootId: BOOT, procfs: new NoProcFs(), now: () => 5000n * SEC, graceMs: 3_600_000 });
  readonly clock = {
    epochMs: (ns: bigint) => BOOT_EPOCH_MS + Number(ns / MS),
    iso: (ns: bigint) => new Date(BOOT_EPOCH_MS + Number(ns / MS)).toISOString(),
  };
  readonly listeners = new Set<EventListener>();
  identityHolds = true;
  store: Record<string, unknown> | null = { dbBytes: 123n, rowsWritten: 5, nested: { walPages: 2 } };

  stats(): AgentStats {
    const t = (g: bigint, c: bigint) => ({ generated: g, captured: c, lostReserve: 0n, lostUserspace: g - c });
    return {
      programs: ['handle_exec', 'handle_fork', 'handle_exit'],
      accounting: {
        perType: { exec: t(10n, 10n), fork: t(12n, 12n), exit: t(9n, this.identityHolds ? 9n : 8n), reap: t(9n, 9n), exec_failed: t(1n, 1n) },
        identityHolds: this.identityHolds,
        seqGaps: this.identityHolds ? 0n : 1n,
        malformed: 0,
        threadExits: 3n,
        threadForks: 4n,
      },
      table: this.table.stats(),
      ring: {
        records: 41,
        batches: 7,
        deliveredBatches: 7,
        pendingBatches: 0,
        sleeps: 3,
        timedRecords: 0,
        running: true,
        droppedRecords: 0,
        droppedBatches: 0,
        droppedByTag: [0, 0, 0, 0, 0, 0],
        wakeups: 2,
        timedConsumes: 0,
        lingerRecords: 0,
      },
      store: this.store,
    };
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  publish(e: LifecycleEvent): Enriched {
    const en = this.table.apply(e);
    for (const l of this.listeners) l(e, en);
    return en;
  }
}

/** A small machine: systemd(1) → sshd(100) → bash(200, uid 1000) → {ls(300) dead, false(301)
 *  zombie}; systemd(1) → cron(400). */
export function populate(a: FakeAgent): void {
  a.publish(ev.exec(1, 0, 1n * SEC, '/sbin/init', ['/sbin/init', 'splash']));
  a.publish(ev.fork(100, 1, startOf(100), 'systemd'));
  a.publish(ev.exec(100, 1, startOf(100) + MS, '/usr/sbin/sshd', ['sshd', '-D']));
  a.publish(ev.fork(200, 100, startOf(200), 'sshd'));
  a.publish(ev.exec(200, 100, startOf(200) + MS, '/bin/bash', ['-bash'], 1000));
  a.publish(ev.fork(300, 200, startOf(300), 'bash'));
  a.publish(ev.exec(300, 200, startOf(300) + MS, '/usr/bin/ls', ['ls', '-l', 'my dir'], 1000));
  a.publish(ev.exit(300, 200, startOf(300) + 5n * MS, 'ls', 0));
  a.publish(ev.reap(300, startOf(300) + 6n * MS, startOf(300) + 5n * MS));
  a.publish(ev.fork(301, 200, startOf(301), 'bash'));
  a.publish(ev.exec(301, 200, startOf(301) + MS, '/bin/false', ['false'], 1000));
  a.publish(ev.exit(301, 200, startOf(301) + 2n * MS, 'false', 1));
  a.publish(ev.fork(400, 1, startOf(400), 'systemd'));
  a.publish(ev.exec(400, 1, startOf(400) + MS, '/usr/sbin/cron', ['/usr/sbin/cron', '-f']));
}
