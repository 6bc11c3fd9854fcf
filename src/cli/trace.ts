// `patrol trace`: live lifecycle view (execsnoop + exitsnoop and more), human or NDJSON.
import type { Command } from 'commander';
import { isFailure, type LifecycleEvent } from '../shared/events.js';
import type { Enriched, SubtreeFilter } from '../process/index.js';
import { createLogger } from '../shared/log.js';
import { LifecyclePipeline, type AccountingReport } from '../app/lifecycle.js';
import { WallClock } from '../kernel/index.js';
import { eventRecord, stateRecord, summaryRecord, toLine } from '../export/index.js';
import { StatePipeline } from '../app/states.js';
import { HEADER, humanLine, stateLine } from './format.js';
import { collectList, parseBytes, parseDuration, parseIntArg } from './parse.js';
import { addIdentityOptions, type IdentityOptions } from './identity.js';
import { traceIntegrations } from '../app/integrations.js';

export interface TraceOptions extends IdentityOptions {
  json?: boolean;
  comm?: string[];
  pid?: number;
  uid?: number;
  failed?: boolean;
  duration?: number;
  threads?: boolean;
  argsCap?: number;
  ringSize?: number;
  states?: boolean;
  dThreshold?: number;
  realtime?: boolean;
  /** --no-redact: argv as the kernel gave it (root on a terminal only) */
  redact?: boolean;
  /** the agent config whose export.redact patterns apply (default: /etc/patrol/patrol.yaml if present) */
  config?: string;
}

export function registerTrace(program: Command): void {
  const cmd = program
    .command('trace')
    .description('live trace of exec, fork, exit, reap and failed exec, with loss accounting')
    .option('--json', 'NDJSON output: ready record, one record per event, summary record')
    .option('--comm <name>', 'only these process names (repeatable or comma-separated)', collectList)
    .option('--pid <pid>', 'only this pid and its descendants', parseIntArg('--pid', 1))
    .option('--uid <uid>', 'only processes of this uid', parseIntArg('--uid', 0, 0xffffffff))
    .option('--failed', 'only failures: non-zero exits, signals, failed execs')
    .option('--duration <time>', 'stop after this long (e.g. 10s, 2m)', parseDuration)
    .option('--threads', 'also show thread creation')
    .option('--args-cap <bytes>', 'argv bytes copied per exec (default 4096)', parseBytes('--args-cap', 64, 32768))
    .option('--ring-size <bytes>', 'ring buffer size, power of two (default 4M)', parseBytes('--ring-size', 4096, 1 << 30))
    .option('--no-states', 'do not load the scheduler-state sensor (no state records)')
    .option('--d-threshold <time>', 'report leaving D (uninterruptible) after this long (default 1s)', parseDuration)
    .option('--realtime', 'run the event reader and JS threads at SCHED_FIFO 1: lower latency tail (needs CAP_SYS_NICE)')
    .option('--config <file>', 'agent config whose export.redact patterns apply (default: /etc/patrol/patrol.yaml when present)')
    .option('--no-redact', 'show argv unmasked (root, output to a terminal only)');
  addIdentityOptions(cmd).action(async (opts: TraceOptions) => {
    await runTrace(opts);
  });
}

export async function runTrace(opts: TraceOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (opts.ringSize !== undefined && (opts.ringSize & (opts.ringSize - 1)) !== 0) {
    throw new Error('--ring-size must be a power of two (e.g. 4M, 8M)');
  }
  const log = createLogger({ level: 'warn' });
  // redaction and identity as the agent applies them (throws for --no-redact off a root terminal)
  const integ = traceIntegrations({ redact: opts.redact !== false, ...(opts.config !== undefined ? { config: opts.config } : {}), out, filter: { unit: opts.unit, container: opts.container, pod: opts.pod } });
  const clock = new WallClock();
  const comms = opts.comm && opts.comm.length ? new Set(opts.comm) : null;
  let pending = '';
  let shown = 0;
  const flush = () => {
    if (pending) {
      out.write(pending);
      pending = '';
    }
  };
  let flushQueued = false;
  const started = Date.now();

  let pipeline: LifecyclePipeline | null = null;
  // Subtree membership is fixed at birth (like strace -f): orphans re-parented to init stay in.
  let subtree: SubtreeFilter | null = null;
  const sink = (ev: LifecycleEvent, en: Enriched) => {
    if (comms && !comms.has(en.comm)) return;
    if (opts.uid !== undefined && en.entry.uid !== opts.uid) return;
    if (opts.failed && !isFailure(ev)) return;
    if (integ.filter !== null && !integ.filter(en.entry.identity)) return;
    if (opts.pid !== undefined) {
      subtree ??= pipeline!.table.subtreeFilter(opts.pid);
      if (!subtree.matches(ev, en)) return;
    }
    shown++;
    pending += opts.json ? toLine(eventRecord(ev, en, clock)) : humanLine(ev, en, clock.epochMs(ev.ktimeNs)) + '\n';
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(() => {
        flushQueued = false;
        flush();
      });
    }
  };

  pipeline = LifecyclePipeline.start(
    {
      // A live view: sub-millisecond delivery (the agent's default is the cheap timer drain).
      delivery: 'low_latency',
      emitThreads: Boolean(opts.threads),
      ...(opts.argsCap !== undefined ? { argsCap: opts.argsCap } : {}),
      ...(opts.ringSize !== undefined ? { ringBytes: opts.ringSize } : {}),
      ...(opts.realtime ? { consumerRealtimePriority: 1 } : {}),
      ...integ.tableHooks,
    },
    log,
    sink,
  );
  const states =
    opts.states === false
      ? null
      : StatePipeline.start({ ...(opts.dThreshold !== undefined ? { dThresholdMs: opts.dThreshold } : {}) }, pipeline.table, log, (ev) => {
          const entry = ev.type === 'state' ? pipeline!.table.byPid(ev.pid) : undefined;
          const own = entry && ev.type === 'state' && entry.startNs === ev.startNs ? entry : undefined;
          if (ev.type === 'state') {
            if (opts.failed || (comms && !comms.has(own?.comm ?? ev.comm.text))) return;
            if (opts.uid !== undefined && own?.uid !== opts.uid) return;
            if (integ.filter !== null && !integ.filter(own?.identity ?? null)) return;
            if (opts.pid !== undefined && ev.pid !== opts.pid && !(own && pipeline!.table.inSubtree(own, opts.pid))) return;
          }
          shown++;
          pending += opts.json ? toLine(stateRecord(ev, own?.execId ?? null, clock)) : stateLine(ev, own?.ppid ?? 0, clock.epochMs(ev.ktimeNs)) + '\n';
          if (!flushQueued) {
            flushQueued = true;
            setImmediate(() => {
              flushQueued = false;
              flush();
            });
          }
        });
  if (opts.json) {
    out.write(
      toLine({
        type: 'ready',
        time: new Date().toISOString(),
        schema: 1,
        programs: [...pipeline.attached, ...(states ? ['st_switch', 'st_wakeup', 'st_wakeup_new'] : [])],
        table_size: pipeline.table.size,
        ring_bytes: pipeline.config.ringBytes,
        args_cap: pipeline.config.argsCap,
      }),
    );
  } else {
    process.stderr.write(`patrol: tracing (${pipeline.attached.length} programs attached); Ctrl-C to stop\n`);
    out.write(HEADER + '\n');
  }

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (opts.duration !== undefined) setTimeout(done, opts.duration).unref();
  });

  const stateAcct = states ? await states.stop() : null;
  const acct = await pipeline.stop();
  await states?.close();
  await pipeline.close();
  integ.close();
  flush();
  const summary = summaryRecord({ ...acct, shown, elapsedMs: Date.now() - started }, new Date().toISOString());
  if (stateAcct) {
    summary.state = {
      generated: Number(stateAcct.generated.state),
      captured: Number(stateAcct.captured.state),
      throttled: Number(stateAcct.throttled),
      lost: Number(stateAcct.lostReserve.state + stateAcct.lostUserspace.state),
      identity_holds: stateAcct.identityHolds,
    };
  }
  if (opts.json) out.write(toLine(summary));
  else process.stderr.write(humanSummary(acct) + '\n');
}

function humanSummary(a: AccountingReport): string {
  const parts = Object.entries(a.perType).map(([t, v]) => `${t} ${v.captured}`);
  const lost = a.totals.lostReserve + a.totals.lostUserspace;
  const mark = a.identityHolds ? 'generated = captured + lost ✓' : 'generated ≠ captured + lost ✗';
  return `${parts.join(' · ')} — lost ${lost} (reserve ${a.totals.lostReserve}, user space ${a.totals.lostUserspace}); ${mark}`;
}
