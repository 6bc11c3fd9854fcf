// `patrol reload`: config, sensors, rules and checks go live without a restart (POST
// /v1/reload; SIGHUP does the same). Prints what each part did; exit 1 when anything was
// rejected (it keeps running as it was), so scripts and canary tooling can tell.
import type { Command } from 'commander';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { term } from '../shared/terminal.js';

interface PartJson {
  result: 'applied' | 'unchanged' | 'rejected';
  version: string | null;
  previous_version?: string | null;
  code?: string;
  reason?: string;
  diagnostics?: string[];
}

interface SectionJson {
  result: PartJson['result'];
  keys: string[];
  applied: string[];
  not_live: string[];
  code?: string;
  reason?: string;
}

interface SensorJson {
  result: PartJson['result'];
  version: string | null;
  code?: string;
  reason?: string;
  maps_reused?: string[];
  programs?: string[];
  overlap_ms?: number;
}

export interface ReloadJson {
  ok: boolean;
  trigger: string;
  at: string;
  duration_ms: number;
  parts: {
    config: PartJson & { sections: Record<string, SectionJson> };
    sensors: PartJson & { generation: number; reason_loaded: string | null; overlap_ms: number | null; duplicates: number | null; sensors: Record<string, SensorJson> };
    rules: PartJson;
    checks: PartJson;
  };
}

export interface ReloadOptions extends ClientOptions {
  sensors?: boolean;
}

/** Loading and verifying BPF objects takes a while on a busy machine. */
const RELOAD_TIMEOUT_MS = 120_000;

export async function runReload(opts: ReloadOptions, out: NodeJS.WritableStream = process.stdout): Promise<ReloadJson> {
  const r = await new ApiClient(opts.socket, RELOAD_TIMEOUT_MS).post<ReloadJson>('/reload', opts.sensors ? { sensors: true } : {});
  out.write(opts.json ? JSON.stringify(r, null, 2) + '\n' : humanReload(r));
  if (!r.ok) process.exitCode = 1;
  return r;
}

const short = (v: string | null | undefined) => (v ? v.slice(0, 12) : '-');

function lines(text: string, indent: string): string {
  return text
    .split('\n')
    .map((l) => `${indent}${term(l)}\n`)
    .join('');
}

export function humanReload(r: ReloadJson): string {
  const p = r.parts;
  const row = (name: string, part: PartJson, extra: string) =>
    `  ${name.padEnd(8)} ${part.result.padEnd(9)} ${short(part.version).padEnd(12)}${extra ? `  ${extra}` : ''}\n`;
  let text = `reload ${r.ok ? 'ok' : 'REJECTED in part'} (${r.duration_ms} ms)\n`;

  const changed = Object.entries(p.config.sections).filter(([, s]) => s.keys.length > 0);
  text += row('config', p.config, changed.length ? changed.map(([n, s]) => `${n} ${s.result}`).join(', ') : '');
  if (p.config.result === 'rejected' && p.config.code) text += `           ${term(p.config.code)}: ${term(p.config.reason)}\n`;
  for (const d of p.config.diagnostics ?? []) text += lines(d, '           ');
  for (const [, s] of changed) {
    if (s.applied.length) text += `           applied: ${s.applied.map(term).join(', ')}\n`;
    if (s.result === 'rejected') text += `           ${term(s.code ?? '')}: ${term(s.reason ?? '')}\n`;
  }

  const s = p.sensors;
  const sx = [`generation ${s.generation}`];
  if (s.reason_loaded) sx.push(`loaded: ${s.reason_loaded}`);
  if (s.overlap_ms !== null) sx.push(`overlap ${s.overlap_ms} ms`);
  if (s.duplicates !== null) sx.push(`duplicates removed ${s.duplicates}`);
  text += row('sensors', s, sx.join(' · '));
  if (s.result === 'rejected') text += `           ${term(s.code ?? '')}: ${term(s.reason ?? '')}\n`;
  for (const [name, o] of Object.entries(s.sensors)) {
    const bits = [`${o.result}`];
    if (o.overlap_ms !== undefined) bits.push(`overlap ${o.overlap_ms} ms`);
    if (o.maps_reused) bits.push(`${o.maps_reused.length} maps reused`);
    if (o.code) bits.push(`${term(o.code)}: ${term(o.reason ?? '')}`);
    text += `           ${name}: ${bits.join(' · ')}\n`;
  }

  for (const name of ['rules', 'checks'] as const) {
    const part = p[name];
    text += row(name, part, part.result === 'rejected' ? term(part.code ?? '') : '');
    if (part.result === 'rejected') for (const d of part.diagnostics ?? [part.reason ?? '']) text += lines(d, '           ');
  }
  return text;
}

export function registerReload(program: Command): void {
  addClientOptions(
    program
      .command('reload')
      .description('reload config, rules, checks and (when their objects changed, or with --sensors) the BPF sensors, without losing an event')
      .option('--sensors', 'load the BPF sensors again even if nothing they depend on changed'),
  ).action(async (opts: ReloadOptions) => {
    await runReload(opts);
  });
}
