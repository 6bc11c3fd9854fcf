// `patrol results` and `patrol alerts`: the agent's stored check results and alerts (API
// clients, like status and ps).
import type { Command } from 'commander';
import type { AlertJson, CheckRunJson } from '../api/checks.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { parseIntArg } from './parse.js';
import { term } from '../shared/terminal.js';

interface ResultsOptions extends ClientOptions {
  all?: boolean;
  check?: string;
  state?: string;
  limit?: number;
}

interface AlertsOptions extends ClientOptions {
  check?: string;
  limit?: number;
}

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

export function registerResults(program: Command): void {
  addClientOptions(
    program
      .command('results')
      .description("check results from the agent's store: the latest of each check (--all: every run, newest first)")
      .option('--all', 'every stored run, not only the latest of each check')
      .option('--check <id>', 'only this check (its 16-hex-digit id)')
      .option('--state <state>', 'only runs in this state (ok, warning, critical, unknown, timeout)')
      .option('--limit <n>', 'at most this many rows (default 100)', parseIntArg('--limit', 1, 10_000)),
  ).action(async (opts: ResultsOptions) => {
    const r = await new ApiClient(opts.socket).get<{ results: CheckRunJson[] }>('/checks/results', {
      latest: !opts.all, check_id: opts.check, state: opts.state, limit: opts.limit,
    });
    if (opts.json) {
      process.stdout.write(JSON.stringify(r.results, null, 2) + '\n');
      return;
    }
    if (r.results.length === 0) process.stdout.write('no check results yet\n');
    for (const x of r.results) process.stdout.write(`${time(x.at)}  ${x.state.toUpperCase().padEnd(8)} ${term(x.name)} — ${term(x.message)}\n`);
  });

  addClientOptions(
    program
      .command('alerts')
      .description("alerts raised by the agent's checks, newest first")
      .option('--check <id>', 'only this check (its 16-hex-digit id)')
      .option('--limit <n>', 'at most this many alerts (default 100)', parseIntArg('--limit', 1, 10_000)),
  ).action(async (opts: AlertsOptions) => {
    const r = await new ApiClient(opts.socket).get<{ alerts: AlertJson[] }>('/alerts', { check_id: opts.check, limit: opts.limit });
    if (opts.json) {
      process.stdout.write(JSON.stringify(r.alerts, null, 2) + '\n');
      return;
    }
    if (r.alerts.length === 0) process.stdout.write('no alerts\n');
    for (const a of r.alerts) {
      process.stdout.write(`${time(a.at)}  ${a.kind.padEnd(12)} ${a.previous} → ${a.state}  ${term(a.name)} — ${term(a.message)}  [${a.id}]\n`);
      // the attribution engine's best cause when the alert fired; `patrol explain ID` for all
      const best = (a.attribution as { causes?: Array<{ cause: string; confidence: number; explanation: string }> } | null | undefined)?.causes?.[0];
      if (best) process.stdout.write(`${' '.repeat(14)}likely cause: ${best.cause} (confidence ${best.confidence}): ${term(best.explanation)}\n`);
    }
  });
}
