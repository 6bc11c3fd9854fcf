// `patrol ps`: the agent's process table, as a table or a tree.
import { Option, type Command } from 'commander';
import type { ProcessJson, ProcessListJson, TreeJson, TreeNodeJson } from '../api/json.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { argvText } from './format.js';
import { collectList, parseIntArg } from './parse.js';
import { term } from '../shared/terminal.js';
import { addIdentityOptions, identityQuery, type IdentityOptions } from './identity.js';

export interface PsOptions extends ClientOptions, IdentityOptions {
  comm?: string[];
  uid?: number;
  pid?: number;
  state?: 'R' | 'S' | 'D' | 'T' | 'Z' | 'X';
  sort?: 'pid' | 'start' | 'comm' | 'state' | 'state_ms' | 'rq_p95';
  tree?: boolean;
}

export function registerPs(program: Command): void {
  addIdentityOptions(addClientOptions(program.command('ps').description("processes in the agent's table (live, zombie, recently dead)")))
    .option('--comm <name>', 'only these process names (repeatable or comma-separated)', collectList)
    .option('--uid <uid>', 'only processes of this uid', parseIntArg('--uid', 0, 0xffffffff))
    .option('--pid <pid>', 'only this pid and its descendants', parseIntArg('--pid', 1))
    .addOption(new Option('--state <letter>', 'only processes in this state (R running, S sleeping, D disk wait, T stopped, I idle kernel thread, P parked kernel thread, Z zombie, X reaped)').choices(['R', 'S', 'D', 'T', 'I', 'P', 'Z', 'X']))
    .addOption(new Option('--sort <key>', 'sort order (state_ms and rq_p95: largest first)').choices(['pid', 'start', 'comm', 'state', 'state_ms', 'rq_p95']).default('pid'))
    .option('--tree', 'show the process tree')
    .action(async (opts: PsOptions) => {
      await runPs(opts);
    });
}

interface Out {
  write(s: string): unknown;
  columns?: number;
  isTTY?: boolean;
}

export async function runPs(opts: PsOptions, out: Out = process.stdout): Promise<void> {
  const client = new ApiClient(opts.socket);
  const width = out.isTTY && out.columns ? out.columns : Infinity;
  if (opts.tree) {
    const t = await client.get<TreeJson>('/tree', { pid: opts.pid });
    const roots = pruneTree(t.roots, opts);
    if (opts.json) out.write(JSON.stringify(roots, null, 2) + '\n');
    else for (const line of treeLines(roots)) out.write(cut(line, width) + '\n');
    return;
  }
  const r = await client.get<ProcessListJson>('/processes', {
    comm: opts.comm,
    uid: opts.uid,
    pid: opts.pid,
    state: opts.state,
    sort: opts.sort,
    ...identityQuery(opts),
  });
  if (opts.json) {
    out.write(JSON.stringify(r.processes, null, 2) + '\n');
    return;
  }
  out.write(PS_HEADER + '\n');
  for (const p of r.processes) out.write(cut(psLine(p), width) + '\n');
}

export const PS_HEADER = `${'PID'.padEnd(7)} ${'PPID'.padEnd(7)} S ${'IN-STATE'.padStart(9)} ${'RQ-P95'.padStart(8)} ${'COMM'.padEnd(16)} ARGS`;

/** Milliseconds as a short duration: 850ms, 12.3s, 4m05s, 3h12m. */
export function fmtMs(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

function fmtUs(us: number | null): string {
  if (us === null) return '-';
  return us < 1000 ? `${us}us` : us < 1_000_000 ? `${(us / 1000).toFixed(1)}ms` : `${(us / 1e6).toFixed(2)}s`;
}

/** argv as a copy-pasteable command line; [comm] when no argv is known (like ps). */
export function argsText(p: ProcessJson): string {
  if (p.args === null || p.args.length === 0) return `[${term(p.comm)}]`;
  return argvText(p.args, p.args_raw?.map((b) => (b ? Buffer.from(b, 'base64') : null))) + (p.args_truncated ? ' [truncated]' : '');
}

export function psLine(p: ProcessJson): string {
  return `${String(p.pid).padEnd(7)} ${String(p.ppid).padEnd(7)} ${p.state} ${fmtMs(p.state_ms).padStart(9)} ${fmtUs(p.rq_p95_us).padStart(8)} ${term(p.comm).padEnd(16)} ${argsText(p)}`;
}

function cut(line: string, width: number): string {
  return line.length > width ? line.slice(0, Math.max(1, width - 1)) + '…' : line;
}

function matches(p: ProcessJson, o: PsOptions): boolean {
  if (o.comm !== undefined && o.comm.length > 0 && !o.comm.includes(p.comm)) return false;
  if (o.uid !== undefined && p.uid !== o.uid) return false;
  if (o.state !== undefined && p.state !== o.state) return false;
  if (o.unit !== undefined && p.unit !== o.unit && p.unit !== `${o.unit}.service`) return false;
  if (o.container !== undefined && (p.container_id === null || !p.container_id.startsWith(o.container))) return false;
  if (o.pod !== undefined && (p.pod_uid === null || !p.pod_uid.startsWith(o.pod))) return false;
  return true;
}

/** Keeps the nodes that match the filters, and their ancestors as context. */
export function pruneTree(nodes: TreeNodeJson[], o: PsOptions): TreeNodeJson[] {
  const filtering = (o.comm !== undefined && o.comm.length > 0) || o.uid !== undefined || o.state !== undefined || o.unit !== undefined || o.container !== undefined || o.pod !== undefined;
  if (!filtering) return nodes;
  const out: TreeNodeJson[] = [];
  for (const n of nodes) {
    const children = pruneTree(n.children, o);
    if (children.length > 0 || matches(n.process, o)) out.push({ ...n, children });
  }
  return out;
}

function nodeText(p: ProcessJson): string {
  let s = `${p.pid} ${term(p.comm)}`;
  if (p.args !== null && p.args.length > 0) s += `  ${argsText(p)}`;
  if (p.state === 'Z') s += `  [zombie ${fmtMs(p.state_ms)}]`;
  else if (p.state === 'D') s += `  [D ${fmtMs(p.state_ms)}]`;
  else if (p.state === 'X') {
    const how = p.signal !== null ? `signal ${p.signal}` : p.exit_code !== null ? `exit ${p.exit_code}` : 'gone';
    s += `  [dead, ${how}]`;
  }
  return s;
}

/** ASCII tree, like pstree: roots flush left, children under ├─ / └─. */
export function treeLines(roots: TreeNodeJson[]): string[] {
  const lines: string[] = [];
  const walk = (n: TreeNodeJson, prefix: string, branch: string) => {
    lines.push(prefix + branch + nodeText(n.process));
    const childPrefix = prefix + (branch === '' ? '' : branch === '├─ ' ? '│  ' : '   ');
    n.children.forEach((c, i) => walk(c, childPrefix, i === n.children.length - 1 ? '└─ ' : '├─ '));
    if (n.children_truncated) lines.push(childPrefix + '└─ …');
  };
  for (const r of roots) walk(r, '', '');
  return lines;
}
