// Per-process scheduler state machine (R, S, D, T, I, P, Z, X). It applies only transitions that can
// happen; anything else is counted and reported as an anomaly, never applied blindly.
//
// Observations come from three places: lifecycle events (exit → Z, reap → X), transitions of
// interest from the state sensor (exact), and periodic sweeps of per-thread accounting (which
// can miss short R periods, so S → D is accepted as S → R → D).
import type { StateLetter } from '../shared/events.js';

/** I: an idle kernel thread (TASK_IDLE: uninterruptible without load contribution), shown as
 *  procps `ps` shows it, not as S. P: a parked kernel thread, as /proc shows it. */
export type ProcState = StateLetter;

const LIVE: ReadonlySet<ProcState> = new Set(['R', 'S', 'D', 'T', 'I', 'P']);

/** Whether `from → to` is possible for a process. */
export function validTransition(from: ProcState, to: ProcState): boolean {
  if (from === to) return false;
  if (LIVE.has(from)) return LIVE.has(to) || to === 'Z';
  if (from === 'Z') return to === 'X';
  return false; // X is final
}

export function normalize(letter: StateLetter): ProcState {
  return letter;
}

export interface Anomaly {
  from: ProcState;
  to: ProcState;
  atNs: bigint;
  source: string;
}

export class StateMachine {
  state: ProcState;
  /** CLOCK_BOOTTIME ns when the current state began */
  sinceNs: bigint;

  constructor(initial: ProcState, sinceNs: bigint) {
    this.state = initial;
    this.sinceNs = sinceNs;
  }

  /** Applies `to` at `atNs`. Returns null when applied (or already in it), else the anomaly. */
  apply(to: ProcState, atNs: bigint, source: string): Anomaly | null {
    if (to === this.state) return null;
    if (!validTransition(this.state, to)) return { from: this.state, to, atNs, source };
    this.state = to;
    // A sweep may report a state whose start predates what we knew; never move time backwards.
    this.sinceNs = atNs > this.sinceNs ? atNs : this.sinceNs;
    return null;
  }

  /** Milliseconds in the current state at `nowNs`. */
  stateMs(nowNs: bigint): number {
    return nowNs > this.sinceNs ? Number((nowNs - this.sinceNs) / 1_000_000n) : 0;
  }
}
