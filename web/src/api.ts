// The agent's API as the dashboard server proxies it (/api/v1/...), polling that never piles
// up (one request at a time, paused while the tab is hidden), and the connection banner.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | boolean | readonly string[] | undefined | null>;

export function apiUrl(path: string, q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === false || v === '') continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, String(x));
    else p.append(k, String(v));
  }
  const s = p.toString();
  return `/api/v1${path}${s ? `?${s}` : ''}`;
}

type StatusListener = (s: { ok: boolean; message: string }) => void;
const statusListeners = new Set<StatusListener>();
export const onConnection = (l: StatusListener): void => void statusListeners.add(l);
function report(ok: boolean, message: string): void {
  for (const l of statusListeners) l({ ok, message });
}

/** GET a JSON document. 401 (no session) and 502 (agent unreachable) also go to the banner. */
export async function getJson<T>(path: string, q?: Query, signal?: AbortSignal): Promise<T> {
  let r: Response;
  try {
    r = await fetch(apiUrl(path, q), { signal, credentials: 'same-origin', headers: { accept: 'application/json' } });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    report(false, 'the dashboard server does not answer (patrol dashboard stopped?)');
    throw new HttpError(0, 'network', 'the dashboard server does not answer');
  }
  if (!r.ok) {
    let code = 'error';
    let message = `HTTP ${r.status}`;
    try {
      const j = (await r.json()) as { error?: string; message?: string };
      code = j.error ?? code;
      message = j.message ?? message;
    } catch {
      /* not JSON */
    }
    if (r.status === 401) report(false, 'no dashboard session: open the URL patrol dashboard printed (it works once)');
    else if (r.status === 502) report(false, message);
    else report(true, '');
    throw new HttpError(r.status, code, message);
  }
  report(true, '');
  return (await r.json()) as T;
}

/** `getJson`, with "not there" (404, 503: a feature the agent does not run) as null. */
export async function getOptional<T>(path: string, q?: Query, signal?: AbortSignal): Promise<T | null> {
  try {
    return await getJson<T>(path, q, signal);
  } catch (e) {
    if (e instanceof HttpError && (e.status === 404 || e.status === 503)) return null;
    throw e;
  }
}

/** The poll interval: 1 s. Benchmarks speed an hour up with localStorage 'patrol.pollMs'. */
export function pollMs(): number {
  try {
    const v = Number(localStorage.getItem('patrol.pollMs'));
    if (Number.isFinite(v) && v >= 20) return v;
  } catch {
    /* storage off */
  }
  return 1000;
}

/** Runs `tick` about every `intervalMs`: never two at once, never while the tab is hidden (a
 *  hidden tab does no work and catches up with one request when shown again). */
export class Poller {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ac: AbortController | null = null;
  private running = false;
  private stopped = true;
  private readonly onVisible = () => {
    if (!document.hidden && !this.stopped && !this.running && this.timer === null) void this.run();
  };

  constructor(
    private readonly tick: (signal: AbortSignal) => Promise<void>,
    private readonly intervalMs = pollMs(),
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    document.addEventListener('visibilitychange', this.onVisible);
    void this.run();
  }

  /** Runs a tick now (after the one in flight, if any). */
  now(): void {
    if (this.stopped) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.running) void this.run();
  }

  stop(): void {
    this.stopped = true;
    document.removeEventListener('visibilitychange', this.onVisible);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.ac?.abort();
  }

  private async run(): Promise<void> {
    if (this.stopped || document.hidden) return;
    this.running = true;
    const t0 = performance.now();
    this.ac = new AbortController();
    try {
      await this.tick(this.ac.signal);
    } catch (e) {
      if ((e as Error)?.name !== 'AbortError') this.onError(e);
    } finally {
      this.running = false;
      this.ac = null;
    }
    if (this.stopped) return;
    // a slow answer (a huge table, a busy agent) spaces the polls out: at most half the time
    // is spent waiting for answers, so the dashboard never keeps the agent busy
    const took = performance.now() - t0;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!document.hidden) void this.run();
    }, Math.max(50, this.intervalMs - took, took));
  }
}
