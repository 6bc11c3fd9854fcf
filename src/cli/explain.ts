// `patrol explain ALERT_ID` / `patrol explain --recent`: the agent's ranked causes with their
// evidence chains, best first.
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import type { CauseJson, ExplainJson, ExplainRecentJson } from '../api/index.js';
import { ApiClient, ApiError, addClientOptions, type ClientOptions } from './client.js';
import { term } from '../shared/terminal.js';

type Out = { write(s: string): unknown };

export interface ExplainOptions extends ClientOptions {
  recent?: boolean;
  limit?: string;
}

const time = (iso: string) => (iso.length >= 19 ? iso.slice(11, 19) : iso);

export function formatCauses(causes: readonly CauseJson[], indent = ''): string {
  if (causes.length === 0) return `${indent}no cause found by the rules\n`;
  let s = '';
  causes.forEach((c, i) => {
    const seen = c.count > 1 ? `, seen ${c.count}×` : '';
    s += `${indent}${i + 1}. ${c.cause}  (confidence ${c.confidence.toFixed(2)}${seen}, rule ${c.rule}, ${time(c.ts)})\n`;
    s += `${indent}   ${term(c.explanation)}\n`;
    for (const e of c.evidence) {
      s += `${indent}     ${time(e.ts)}  ${e.kind.padEnd(11)} ${term(e.summary.length > 200 ? e.summary.slice(0, 200) + '…' : e.summary)}\n`;
    }
  });
  return s;
}

export async function runExplain(id: string | undefined, opts: ExplainOptions, out: Out = process.stdout): Promise<void> {
  if (!id && !opts.recent) throw new PatrolError('E_USAGE', 'explain: give an ALERT_ID or --recent');
  if (id && opts.recent) throw new PatrolError('E_USAGE', 'explain: give an ALERT_ID or --recent, not both');
  const limit = opts.limit === undefined ? undefined : Number(opts.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 500)) throw new PatrolError('E_USAGE', 'explain: --limit takes 1 to 500');
  const client = new ApiClient(opts.socket);
  if (id) {
    let r: ExplainJson;
    try {
      r = await client.get<ExplainJson>(`/explain/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) throw new PatrolError('E_NOT_FOUND', `no alert ${id} (see patrol alerts)`);
      throw e;
    }
    if (opts.json) {
      out.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    if (r.alert) out.write(`alert ${r.alert.id}: ${r.alert.check} ${r.alert.state} at ${new Date(r.alert.ts).toISOString()}\n`);
    out.write(formatCauses(r.causes));
    return;
  }
  const r = await client.get<ExplainRecentJson>('/explain', { recent: true, limit });
  if (opts.json) {
    out.write(JSON.stringify(r, null, 2) + '\n');
    return;
  }
  for (const a of r.alerts) {
    if (!a.alert) continue;
    out.write(`alert ${a.alert.id}: ${a.alert.check} ${a.alert.state} at ${new Date(a.alert.ts).toISOString()}\n`);
    out.write(formatCauses(a.causes, '  '));
  }
  out.write(r.causes.length === 0 ? 'nothing notable in the last hour (no OOM kill, crash, crash loop, stuck process…)\n' : `recent findings, best first:\n${formatCauses(r.causes)}`);
}

export function registerExplain(program: Command): void {
  addClientOptions(
    program
      .command('explain')
      .description('ranked causes of an alert, with the evidence (or --recent: latest alerts and notable exits)')
      .argument('[alert_id]', 'an alert id (patrol alerts)'),
  )
    .option('--recent', 'explain the latest alerts and notable exits (OOM kills, segfaults, crash loops)')
    .option('--limit <n>', 'how many alerts and findings with --recent (default 10)')
    .action(async (id: string | undefined, opts: ExplainOptions) => {
      await runExplain(id, opts);
    });
}
