// The agent's NDJSON event stream read with fetch: lines are parsed as they arrive and handed on
// one by one. Stopping aborts the request, which ends the agent's subscription.
import { apiUrl } from './api.js';
import type { EventRecord } from './types.js';

export type StreamState = { state: 'connecting' } | { state: 'open' } | { state: 'closed'; why: string };

export class EventStream {
  private ac: AbortController | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly query: Record<string, string | number | boolean | readonly string[] | undefined>,
    private readonly onRecord: (r: EventRecord) => void,
    private readonly onState: (s: StreamState) => void,
  ) {}

  start(): void {
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.ac?.abort();
  }

  private async run(): Promise<void> {
    this.ac = new AbortController();
    this.onState({ state: 'connecting' });
    let why = 'the agent ended the stream (it stopped or restarted)';
    try {
      const r = await fetch(apiUrl('/events', this.query), { signal: this.ac.signal, headers: { accept: 'application/x-ndjson' } });
      if (!r.ok || r.body === null) {
        let m = `HTTP ${r.status}`;
        try {
          m = ((await r.json()) as { message?: string }).message ?? m;
        } catch {
          /* not JSON */
        }
        throw new Error(m);
      }
      this.onState({ state: 'open' });
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let rest = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line === '') continue;
          let rec: EventRecord;
          try {
            rec = JSON.parse(line) as EventRecord;
          } catch {
            continue; // a line cut by a broken connection
          }
          this.onRecord(rec);
        }
      }
    } catch (e) {
      if (this.stopped) return;
      why = (e as Error).message;
    }
    if (this.stopped) return;
    this.onState({ state: 'closed', why });
    // the agent may be restarting: try again in a while
    this.retry = setTimeout(() => {
      this.retry = null;
      if (!this.stopped) void this.run();
    }, 2000);
  }
}
