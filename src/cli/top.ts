// `patrol top`: the processes (or cgroups) using the most CPU, memory or IO over a window, with
// the window's p95 and max. Served by the agent's resource windows; exited processes count.
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { parseDurationMs } from '../shared/duration.js';
import type { TopGroup, TopRow } from '../metrics/index.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { fmtBytes } from './format.js';
import { term } from '../shared/terminal.js';
import { addIdentityOptions, identityQuery, type IdentityOptions } from './identity.js';

export interface TopOptions extends ClientOptions, IdentityOptions {
  window: string;
  sort: string;
  limit?: string;
  cgroup?: boolean;
  interval: string;
  once?: boolean;
}

interface TopReply {
  window: string;
  sort: string;
  group: 'process' | 'cgroup';
  sweep: { sweeps: number; source: string; lastMs: number; lastProcesses: number };
  rows: TopRow[] | TopGroup[];
}

export function registerTop(program: Command): void {
  addIdentityOptions(addClientOptions(program.command('top').description('live view of the top processes by CPU, memory or IO over a window (exited ones included)')))
    .option('-w, --window <duration>', 'window: 10s, 1m, 5m (any duration up to the longest kept)', '1m')
    .option('-s, --sort <key>', 'cpu, rss or io', 'cpu')
    .option('-n, --limit <n>', 'rows (default: 20, or what fits the terminal)')
    .option('--cgroup', 'group the rows by cgroup')
    .option('-i, --interval <duration>', 'refresh interval of the live view', '1s')
    .option('--once', 'print one snapshot and exit (implied by --json and when stdout is not a terminal)')
    .action(async (opts: TopOptions) => {
      await runTop(opts);
    });
}

const pct = (x: number) => x.toFixed(1).padStart(6);

function processTable(rows: TopRow[]): string[] {
  const out = [`${'PID'.padEnd(7)} ${'COMM'.padEnd(16)} ${'CPU s'.padStart(7)} ${'CPU%avg'.padStart(7)} ${'p95'.padStart(6)} ${'max'.padStart(6)} ${'RSS max'.padStart(9)} ${'READ'.padStart(9)} ${'WRITE'.padStart(9)}  CGROUP`];
  for (const r of rows) {
    const comm = (r.exited ? `${term(r.comm)}†` : term(r.comm)).slice(0, 16);
    // an aggregate row has no pid: it shows how many exits it sums
    const pid = r.aggregate ? `×${r.aggregate.count}` : String(r.pid);
    out.push(
      `${pid.padEnd(7)} ${comm.padEnd(16)} ${r.cpu_seconds.toFixed(2).padStart(7)} ${pct(r.cpu.avg).padStart(7)} ${pct(r.cpu.p95)} ${pct(r.cpu.max)} ${fmtBytes(r.rss_bytes.max).padStart(9)} ${fmtBytes(r.io_read_bytes).padStart(9)} ${fmtBytes(r.io_write_bytes).padStart(9)}  ${term(r.owner ?? r.cgroup ?? '')}`,
    );
  }
  return out;
}

function groupTable(groups: TopGroup[]): string[] {
  const out = [`${'PROCS'.padStart(5)} ${'CPU s'.padStart(7)} ${'CPU%avg'.padStart(7)} ${'RSS max'.padStart(9)} ${'READ'.padStart(9)} ${'WRITE'.padStart(9)}  CGROUP (owner): top processes`];
  for (const g of groups) {
    const who = g.cgroup ? `${term(g.cgroup)}${g.owner && g.owner !== g.cgroup ? ` (${term(g.owner)})` : ''}` : '(unknown cgroup)';
    out.push(
      `${String(g.processes).padStart(5)} ${g.cpu_seconds.toFixed(2).padStart(7)} ${pct(g.cpu.avg).padStart(7)} ${fmtBytes(g.rss_bytes.max).padStart(9)} ${fmtBytes(g.io_read_bytes).padStart(9)} ${fmtBytes(g.io_write_bytes).padStart(9)}  ${who}: ${g.rows.map((r) => `${term(r.comm)}[${r.aggregate ? `×${r.aggregate.count}` : r.pid}]`).join(' ')}`,
    );
  }
  return out;
}

export async function runTop(opts: TopOptions, out: { write(s: string): unknown } = process.stdout): Promise<void> {
  if (!['cpu', 'rss', 'io'].includes(opts.sort)) throw new PatrolError('E_USAGE', `--sort must be cpu, rss or io (got ${JSON.stringify(opts.sort)})`);
  const windowMs = parseDurationMs(opts.window);
  if (windowMs === null || windowMs <= 0) throw new PatrolError('E_USAGE', `--window must be a duration like 10s, 1m or 5m (got ${JSON.stringify(opts.window)})`);
  const intervalMs = parseDurationMs(opts.interval);
  if (intervalMs === null || intervalMs < 100) throw new PatrolError('E_USAGE', `--interval must be a duration of at least 100ms (got ${JSON.stringify(opts.interval)})`);
  let limit = opts.limit === undefined ? undefined : Number(opts.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new PatrolError('E_USAGE', `--limit must be a positive whole number (got ${JSON.stringify(opts.limit)})`);
  const live = !opts.json && !opts.once && process.stdout.isTTY === true && out === process.stdout;
  limit ??= live ? Math.max(5, (process.stdout.rows ?? 24) - 4) : 20;
  const client = new ApiClient(opts.socket);
  const fetch = () =>
    client.get<TopReply>('/top', { window: opts.window, sort: opts.sort, limit: String(limit), group: opts.cgroup ? 'cgroup' : 'process', ...identityQuery(opts) });

  if (!live) {
    const r = await fetch();
    if (opts.json) out.write(JSON.stringify(r.rows, null, 2) + '\n');
    else out.write((r.group === 'cgroup' ? groupTable(r.rows as TopGroup[]) : processTable(r.rows as TopRow[])).join('\n') + '\n');
    return;
  }
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('data', (b: Buffer) => {
      if (b[0] === 0x71 /* q */ || b[0] === 0x03 /* ^C */) stop = true;
    });
  }
  try {
    while (!stop) {
      const r = await fetch();
      const lines = r.group === 'cgroup' ? groupTable(r.rows as TopGroup[]) : processTable(r.rows as TopRow[]);
      const head = `patrol top — window ${r.window}, sorted by ${r.sort}; sweep ${r.sweep.source} ${r.sweep.lastMs.toFixed(1)} ms over ${r.sweep.lastProcesses} processes; † exited, ×N: N exits summed by comm and cgroup; q quits`;
      out.write('\x1b[H\x1b[2J' + [head, '', ...lines].join('\n') + '\n');
      const until = Date.now() + intervalMs;
      while (!stop && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
  }
}
