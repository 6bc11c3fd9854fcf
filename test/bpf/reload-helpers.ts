// Shared by the reload tests: the other builds of the sensors (bpf/Makefile `variants`), the
// marker workload, and the exactly-once verdict over a recording.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LifecycleEvent } from '../../src/shared/events.js';
import type { Enriched } from '../../src/process/index.js';

export const BPF_DIR = fileURLToPath(new URL('../../bpf', import.meta.url));
export const BUILT = join(BPF_DIR, '.output');
export const VARIANTS = join(BUILT, 'test');

/** Builds the variant and refusal objects (make caches them). */
export function buildVariants(): void {
  execFileSync('make', ['-s', '-C', BPF_DIR, 'variants'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A directory laid out like agent.bpf_dir, with the given objects as lifecycle.bpf.o and
 *  state.bpf.o. */
export function objectDir(lifecycle: string, state: string): string {
  const d = mkdtempSync(join(tmpdir(), 'patrol-bpf-'));
  mkdirSync(d, { recursive: true });
  copyFileSync(lifecycle, join(d, 'lifecycle.bpf.o'));
  copyFileSync(state, join(d, 'state.bpf.o'));
  return d;
}

export function compileHelper(name: string): string {
  const src = fileURLToPath(new URL(`../helpers/${name}.c`, import.meta.url));
  const bin = join(mkdtempSync(join(tmpdir(), 'patrol-helper-')), name);
  execFileSync('cc', ['-O2', '-o', bin, src]);
  return bin;
}

export interface Seen {
  ev: LifecycleEvent;
  en: Enriched;
}

export interface MarkedProcess {
  pid: number;
  startNs: bigint;
  n: number;
  fork: Seen[];
  exec: Seen[];
  exit: Seen[];
  reap: Seen[];
}

/** Every process that exec'd with `tag` in its arguments, with everything recorded about it. */
export function markedProcesses(events: readonly Seen[], tag: string): Map<string, MarkedProcess> {
  const out = new Map<string, MarkedProcess>();
  const key = (pid: number, start: bigint) => `${pid}:${start}`;
  for (const s of events) {
    if (s.ev.type !== 'exec') continue;
    const args = s.ev.args.map((a) => a.text);
    if (args[2] !== tag) continue;
    const k = key(s.ev.pid, s.ev.startNs);
    const m = out.get(k) ?? { pid: s.ev.pid, startNs: s.ev.startNs, n: Number(args[3]), fork: [], exec: [], exit: [], reap: [] };
    out.set(k, m);
  }
  for (const s of events) {
    const ev = s.ev;
    if (ev.type === 'exec_failed') continue;
    const m = out.get(key(ev.pid, ev.startNs));
    if (!m) continue;
    if (ev.type === 'fork' && !ev.thread) m.fork.push(s);
    else if (ev.type === 'exec') m.exec.push(s);
    else if (ev.type === 'exit') m.exit.push(s);
    else if (ev.type === 'reap') m.reap.push(s);
  }
  return out;
}

/** What is wrong with a process's record: each of fork, exec, exit, reap exactly once. Says
 *  whether the task is still there (a zombie not reaped yet, or released but not yet freed: a
 *  reap seen only at free waits for an RCU grace period) when it was not reaped. */
export function notExactlyOnce(m: MarkedProcess): string | null {
  const c = [m.fork.length, m.exec.length, m.exit.length, m.reap.length];
  if (c.every((x) => x === 1)) return null;
  let task = '';
  if (m.reap.length === 0) {
    try {
      task = `; /proc: ${readFileSync(`/proc/${m.pid}/stat`, 'utf8').split(') ')[1]?.slice(0, 1) ?? '?'}`;
    } catch {
      task = '; /proc: gone';
    }
  }
  return `pid ${m.pid} n=${m.n}: fork ${c[0]} exec ${c[1]} exit ${c[2]} reap ${c[3]}${task}`;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
}

/** Waits until every marked process has been reaped (orphans are reaped by whoever adopted them,
 *  and a reap seen only at task free comes an RCU grace period late: seconds on a busy machine). */
export async function waitAllReaped(events: readonly Seen[], tag: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ([...markedProcesses(events, tag).values()].every((m) => m.reap.length > 0 && m.exit.length > 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
