// Shared helpers for tests that load real BPF programs. Without root they skip, unless
// PATROL_REQUIRE_BPF=1 (CI), which makes them run and fail instead.
import { spawn, type SpawnOptions } from 'node:child_process';
import type { LifecycleEvent } from '../../src/shared/events.js';
import type { Enriched } from '../../src/process/index.js';
import { LifecyclePipeline, type LifecycleConfig } from '../../src/app/lifecycle.js';
import { createLogger } from '../../src/shared/log.js';

export const bpfRequired = process.env.PATROL_REQUIRE_BPF === '1';
export const bpfEnabled = bpfRequired || process.getuid?.() === 0;

export interface Captured {
  ev: LifecycleEvent;
  en: Enriched;
}

export class Recorder {
  readonly events: Captured[] = [];
  pipeline!: LifecyclePipeline;

  /** `onEvent`: also called with each event as it is emitted (to serialize it then, as the
   *  NDJSON stream does) */
  static start(cfg: Partial<LifecycleConfig> = {}, onEvent?: (ev: LifecycleEvent, en: Enriched) => void): Recorder {
    const r = new Recorder();
    r.pipeline = LifecyclePipeline.start(cfg, createLogger({ level: 'warn' }), (ev, en) => {
      // Enriched.entry mutates as later events arrive: snapshot what tests compare.
      r.events.push({ ev, en: { ...en } });
      onEvent?.(ev, en);
    });
    return r;
  }

  of(pid: number, type?: LifecycleEvent['type']): Captured[] {
    return this.events.filter((c) => c.ev.pid === pid && (type === undefined || c.ev.type === type));
  }

  async waitFor(pred: (c: Captured) => boolean, ms = 5000): Promise<Captured> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error('timed out waiting for an event');
      await sleep(5);
    }
  }

  async stop() {
    return this.pipeline.stop().finally(() => this.pipeline.close());
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command to completion; resolves with its pid and exit status. */
export function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<{ pid: number; code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore', ...opts });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ pid: child.pid!, code, signal }));
  });
}

export function marker(): string {
  return `patrol-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}
