// `patrol zombies`: current zombies, each blamed on the parent that has not reaped it.
import type { Command } from 'commander';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { fmtMs } from './ps.js';
import { term } from '../shared/terminal.js';

export interface ZombieJson {
  pid: number;
  exec_id: string;
  comm: string;
  ppid: number;
  parent_exec_id: string | null;
  parent_comm: string | null;
  zombie_ms: number;
  exit_time?: string;
}

interface ZombiesReply {
  zombies: ZombieJson[];
  stuck_d?: Array<{ pid: number; tid: number; exec_id: string | null; comm: string; d_ms: number }>;
}

export interface ZombiesOptions extends ClientOptions {
  watch?: boolean;
}

export function registerZombies(program: Command): void {
  addClientOptions(program.command('zombies').description('zombie processes and the parents that have not reaped them'))
    .option('--watch', 'keep watching: print zombies as they appear and when they are reaped')
    .action(async (opts: ZombiesOptions) => {
      await runZombies(opts);
    });
}

const HEADER = `${'PID'.padEnd(7)} ${'COMM'.padEnd(16)} ${'ZOMBIE FOR'.padStart(10)}  PARENT (not reaping)`;

export function zombieLine(z: ZombieJson): string {
  return `${String(z.pid).padEnd(7)} ${term(z.comm).padEnd(16)} ${fmtMs(z.zombie_ms).padStart(10)}  ${z.ppid} (${z.parent_comm === null ? '?' : term(z.parent_comm)})`;
}

export async function runZombies(opts: ZombiesOptions, out: { write(s: string): unknown } = process.stdout): Promise<void> {
  const client = new ApiClient(opts.socket);
  if (!opts.watch) {
    const r = await client.get<ZombiesReply>('/zombies');
    if (opts.json) {
      out.write(JSON.stringify(r.zombies, null, 2) + '\n');
      return;
    }
    if (r.zombies.length === 0) out.write('no zombies\n');
    else {
      out.write(HEADER + '\n');
      for (const z of r.zombies) out.write(zombieLine(z) + '\n');
    }
    return;
  }
  // Watch: poll often and report what changed; --json gives NDJSON records.
  const known = new Map<string, ZombieJson>();
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  if (!opts.json) out.write(HEADER.replace('ZOMBIE FOR', '     EVENT') + '\n');
  while (!stop) {
    const r = await client.get<ZombiesReply>('/zombies');
    const now = new Map(r.zombies.map((z) => [z.exec_id, z]));
    for (const [id, z] of now) {
      if (known.has(id)) continue;
      out.write(opts.json ? JSON.stringify({ type: 'zombie', ...z }) + '\n' : `${zombieLine(z)}  zombie\n`);
    }
    for (const [id, z] of known) {
      if (now.has(id)) continue;
      out.write(opts.json ? JSON.stringify({ type: 'gone', ...z }) + '\n' : `${String(z.pid).padEnd(7)} ${term(z.comm).padEnd(16)} ${'gone'.padStart(10)}  after ≥${fmtMs(z.zombie_ms)}\n`);
    }
    known.clear();
    for (const [id, z] of now) known.set(id, z);
    await new Promise((res) => setTimeout(res, 200));
  }
}
