// What the engine needs from other stages, as small interfaces: src/app adapts the process table,
// the resource windows (src/metrics), the state tracker and the check engine's alerts to them.
// src/rules never imports those stages (they are siblings or downstream).

/** One process as the engine sees it. Times are CLOCK_BOOTTIME ns. */
export interface ProcFact {
  execId: string;
  pid: number;
  ppid: number;
  parentExecId: string | null;
  comm: string;
  args: readonly string[] | null;
  filename: string | null;
  /** cgroup v2 path (or v1 memory controller path), when known */
  cgroup: string | null;
  startNs: bigint;
  exitNs: bigint | null;
  exitCode: number | null;
  signal: number | null;
  maxRssBytes: number | null;
}

export interface ProcessFacts {
  /** the process that held `pid` at `atNs` (live, or exited recently) */
  byPid(pid: number, atNs: bigint): ProcFact | null;
  get(execId: string): ProcFact | null;
  /** parent first, up to the root */
  ancestry(execId: string): ProcFact[];
}

export interface RssSample {
  tNs: bigint;
  bytes: number;
}

export interface WriterFigure {
  execId: string;
  pid: number;
  comm: string;
  /** bytes written to storage in the window */
  bytes: number;
}

export interface WindowFacts {
  /** RSS samples of a process in [nowNs − windowMs, nowNs], oldest first; empty when unsampled */
  rss(execId: string, windowMs: number, nowNs: bigint): RssSample[];
  /** the processes (live or exited) that wrote the most in the window, most first */
  topWriters?(windowMs: number, nowNs: bigint, limit: number): WriterFigure[];
}

export interface NodeStateFacts {
  zombies(nowNs: bigint): Array<{ pid: number; execId: string; comm: string; ppid: number; parentExecId: string | null; parentComm: string | null; zombieMs: number }>;
  stuckD(nowNs: bigint): Array<{ pid: number; execId: string | null; comm: string; dMs: number }>;
}

/** A check result or alert, as the check engine stores it. ts is epoch ms. */
export interface AlertLike {
  id: string;
  check: string;
  state: string;
  ts: number;
  evidence: unknown;
}

export interface AlertSource {
  get(id: string): AlertLike | null;
  /** newest first */
  recent(limit: number): AlertLike[];
}

/** boottime ns ⇄ epoch ms */
export interface RuleClock {
  nowNs(): bigint;
  epochMs(ns: bigint): number;
  fromEpochMs(ms: number): bigint;
}

export function systemClock(boottimeNs: () => bigint): RuleClock {
  const offset = BigInt(Date.now()) * 1_000_000n - boottimeNs();
  return {
    nowNs: boottimeNs,
    epochMs: (ns) => Number((ns + offset) / 1_000_000n),
    fromEpochMs: (ms) => BigInt(Math.round(ms)) * 1_000_000n - offset,
  };
}
