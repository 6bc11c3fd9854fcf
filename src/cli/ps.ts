// `patrol ps`: the agent's process table, as a table or a tree.
import { Option, type Command } from 'commander';
import type { ProcessJson, ProcessListJson, TreeJson, TreeNodeJson } from '../api/json.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { shellQuote } from './format.js';
import { collectList, parseIntArg } from './parse.js';

export interface PsOptions extends ClientOptions {
  comm?: string[];
  uid?: number;
  pid?: number;
  state?: 'live' | 'zombie' | 'dead';
  sort?: 'pid' | 'start' | 'comm';
  tree?: boolean;
}

export function registerPs(program: Command): void {
  addClientOptions(program.command('ps').description("processes in the agent's table (live, zombie, recently dead)"))
    .option('--comm <name>', 'only these process names (repeatable or comma-separated)', collectList)
    .option('--uid <uid>', 'only processes of this uid', parseIntArg('--uid', 0, 0xffffffff))
    .option('--pid <pid>', 'only this pid and its descendants', parseIntArg('--pid', 1))
    .addOption(new Option('--state <state>', 'only processes in this state').choices(['live', 'zombie', 'dead']))
    .addOption(new Option('--sort <key>', 'sort order').choices(['pid', 'start', 'comm']).default('pid'))
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
  });
  if (opts.json) {
    out.write(JSON.stringify(r.processes, null, 2) + '\n');
    return;
  }
  out.write(PS_HEADER + '\n');
  for (const p of r.processes) out.write(cut(psLine(p), width) + '\n');
}

export const PS_HEADER = `${'PID'.padEnd(7)} ${'PPID'.padEnd(7)} ${'STATE'.padEnd(6)} ${'COMM'.padEnd(16)} ARGS`;

/** argv as a copy-pasteable command line; [comm] when no argv is known (like ps). */
export function argsText(p: ProcessJson): string {
  if (p.args === null || p.args.length === 0) return `[${p.comm}]`;
  return p.args.map(shellQuote).join(' ') + (p.args_truncated ? ' [truncated]' : '');
}

export function psLine(p: ProcessJson): string {
  return `${String(p.pid).padEnd(7)} ${String(p.ppid).padEnd(7)} ${p.state.padEnd(6)} ${p.comm.padEnd(16)} ${argsText(p)}`;
}

function cut(line: string, width: number): string {
  return line.length > width ? line.slice(0, Math.max(1, width - 1)) + '…' : line;
}

function matches(p: ProcessJson, o: PsOptions): boolean {
  if (o.comm !== undefined && o.comm.length > 0 && !o.comm.includes(p.comm)) return false;
  if (o.uid !== undefined && p.uid !== o.uid) return false;
  if (o.state !== undefined && p.state !== o.state) return false;
  return true;
}

/** Keeps the nodes that match the filters, and their ancestors as context. */
export function pruneTree(nodes: TreeNodeJson[], o: PsOptions): TreeNodeJson[] {
  const filtering = (o.comm !== undefined && o.comm.length > 0) || o.uid !== undefined || o.state !== undefined;
  if (!filtering) return nodes;
  const out: TreeNodeJson[] = [];
  for (const n of nodes) {
    const children = pruneTree(n.children, o);
    if (children.length > 0 || matches(n.process, o)) out.push({ ...n, children });
  }
  return out;
}

function nodeText(p: ProcessJson): string {
  let s = `${p.pid} ${p.comm}`;
  if (p.args !== null && p.args.length > 0) s += `  ${argsText(p)}`;
  if (p.state === 'zombie') s += '  [zombie]';
  else if (p.state === 'dead') {
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
