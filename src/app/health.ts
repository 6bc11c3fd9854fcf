// The agent's health: ok, or degraded with reasons an operator can act on. Served by
// GET /v1/health and /v1/stats, shown by `patrol status` (which exits 2 when degraded), and
// exported to /metrics. Loss and consumer errors count over the last minute, so a burst an
// hour ago does not keep the agent "degraded" forever, while the counters keep the totals.
import { Ticker, type Tick } from './ticker.js';

export interface HealthProbes {
  /** the store's last flush error, null while writes succeed */
  storeError: () => string | null;
  /** errors so far per event consumer */
  consumerErrors: () => Record<string, number>;
  /** records lost so far (kernel and user space) */
  lost: () => number;
  /** sensors or programs that should run and do not, each named */
  missing: () => string[];
  /** what identity lacks and why (a CRI socket that fails) */
  identity?: () => string[];
}

export type HealthKind = 'store' | 'consumer' | 'loss' | 'sensor' | 'identity';

export interface HealthReport {
  status: 'ok' | 'degraded';
  reasons: Array<{ kind: HealthKind; message: string }>;
}

interface Sample {
  t: number;
  lost: number;
  errors: Record<string, number>;
}

const WINDOW_MS = 60_000;
const SAMPLE_MS = 1_000;

export class HealthMonitor {
  private readonly samples: Sample[] = [];
  private tick: Tick | null = null;

  constructor(
    private readonly probes: HealthProbes,
    private readonly now: () => number = Date.now,
    /** called from the sampler when the loss counter went up since the previous sample */
    private readonly onLoss: () => void = () => {},
  ) {}

  /** Samples every second: loss and errors are then judged over the last minute. The sampler
   *  shares `ticker`'s once-a-second wakeup with the agent's other sweeps. */
  start(ticker: Ticker = new Ticker()): void {
    this.sample();
    this.tick = ticker.every(SAMPLE_MS, () => this.sample());
  }

  stop(): void {
    this.tick?.cancel();
    this.tick = null;
  }

  /** A sample now, unless the last one is under 100 ms old: the lifecycle pipeline saw records
   *  lost under pressure, so the loss is judged (and its alert raised) without waiting for the
   *  next second. */
  sampleNow(): void {
    const last = this.samples[this.samples.length - 1];
    if (this.tick !== null && (last === undefined || this.now() - last.t >= 100)) this.sample();
  }

  private sample(): Sample {
    const s = { t: this.now(), lost: this.probes.lost(), errors: { ...this.probes.consumerErrors() } };
    const prev = this.samples[this.samples.length - 1];
    this.samples.push(s);
    if (prev !== undefined && s.lost > prev.lost) this.onLoss();
    while (this.samples.length > 2 && this.samples[1]!.t <= s.t - WINDOW_MS) this.samples.shift();
    return s;
  }

  report(): HealthReport {
    const cur = { t: this.now(), lost: this.probes.lost(), errors: this.probes.consumerErrors() };
    // The base: the newest sample at least a minute old, else the oldest there is (start-up).
    let base = this.samples[0] ?? { t: cur.t, lost: 0, errors: {} };
    for (const s of this.samples) if (s.t <= cur.t - WINDOW_MS) base = s;
    const reasons: HealthReport['reasons'] = [];
    const storeError = this.probes.storeError();
    if (storeError !== null) reasons.push({ kind: 'store', message: `store writes failing: ${storeError}` });
    for (const [name, n] of Object.entries(cur.errors)) {
      const d = n - (base.errors[name] ?? 0);
      if (d > 0) reasons.push({ kind: 'consumer', message: `consumer ${name}: ${d} error${d === 1 ? '' : 's'} in the last minute` });
    }
    const lost = cur.lost - base.lost;
    if (lost > 0) reasons.push({ kind: 'loss', message: `${lost} record${lost === 1 ? '' : 's'} lost in the last minute` });
    for (const m of this.probes.missing()) reasons.push({ kind: 'sensor', message: m });
    for (const m of this.probes.identity?.() ?? []) reasons.push({ kind: 'identity', message: m });
    return { status: reasons.length ? 'degraded' : 'ok', reasons };
  }
}
