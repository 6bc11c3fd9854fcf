// `patrol status`: is the agent up, what it runs, and whether its loss accounting holds.
import type { Command } from 'commander';
import type { StatsJson } from '../api/json.js';
import { ApiClient, ApiError, addClientOptions, type ClientOptions } from './client.js';
import { term } from '../shared/terminal.js';

export type StatusOptions = ClientOptions;

export function registerStatus(program: Command): void {
  addClientOptions(program.command('status').description('agent status: version, uptime, programs, loss accounting, table size')).action(
    async (opts: StatusOptions) => {
      await runStatus(opts);
    },
  );
}

/** GET /v1/status: what runs (versions, generation) and the last reload. */
export interface StatusJson {
  version: string;
  versions: { config: string | null; sensors: string | null; rules: string | null; checks: string | null };
  generation: number;
  reloads: number;
  last_reload: {
    at: string;
    trigger: string;
    ok: boolean;
    duration_ms: number;
    results: Record<string, string>;
    codes: string[];
    overlap_ms: number | null;
    duplicates: number | null;
  } | null;
}

export async function runStatus(opts: StatusOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const client = new ApiClient(opts.socket);
  const stats = await client.get<StatsJson>('/stats');
  let reload: StatusJson | null = null;
  try {
    reload = await client.get<StatusJson>('/status');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e; // an older agent: no versions
  }
  const { version: _v, ...rest } = reload ?? { version: '' };
  out.write(opts.json ? JSON.stringify(reload ? { ...stats, reload: rest } : stats, null, 2) + '\n' : humanStatus(stats) + (reload ? humanReloadStatus(reload) : ''));
  // Scripts and probes read the exit code: 2 = up but degraded (1 stays "cannot ask").
  if (stats.health?.status === 'degraded') process.exitCode = 2;
}

export function fmtUptime(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** `fleet: local-only since …` while etcd is out of reach (docs/fleet.md, "Degraded mode"). */
export function fleetLine(f: NonNullable<StatsJson['fleet']>): string {
  const since = new Date(f.since).toISOString().replace(/\.\d+Z$/, 'Z');
  if (f.state === 'local-only') return `local-only since ${since}${f.reason ? ` (${term(f.reason)})` : ''}`;
  if (f.state === 'connecting') return `connecting since ${since} · node ${term(f.node)}`;
  const lead = f.is_leader ? `leading (term ${f.leader?.term ?? '?'})` : f.leader ? `leader ${term(f.leader.node)}` : 'no leader';
  const b = f.bundle;
  const bundle = b && (b.id || b.result !== 'none') ? ` · bundle ${term(b.id ? b.id.slice(0, 19) : 'none')}${b.result !== 'applied' ? ` (${term(b.result)}${b.target ? ` ${term(b.target.slice(0, 19))}` : ''})` : ''}` : '';
  return `connected · node ${term(f.node)} · ${lead}${f.desired_bundle ? ` · desired ${term(f.desired_bundle.slice(0, 19))}` : ''}${bundle}`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const short = (v: string | null) => (v ? v.slice(0, 12) : '-');

export function humanReloadStatus(r: StatusJson): string {
  const row = (k: string, v: string) => `${k.padEnd(10)} ${v}\n`;
  const v = r.versions;
  let text = row('versions', `config ${short(v.config)} · sensors ${short(v.sensors)} (generation ${r.generation}) · rules ${short(v.rules)} · checks ${short(v.checks)}`);
  const l = r.last_reload;
  if (!l) return text + row('reload', 'none since start');
  const results = Object.entries(l.results).map(([k, x]) => `${k} ${x}`).join(', ');
  const overlap = l.overlap_ms !== null ? `; sensor overlap ${l.overlap_ms} ms, ${l.duplicates ?? 0} duplicates removed` : '';
  text += row('reload', `${l.at} (${term(l.trigger)}): ${l.ok ? 'ok' : `rejected in part (${l.codes.map(term).join(', ')})`} in ${l.duration_ms} ms: ${results}${overlap}`);
  return text;
}

/** The CRI socket's line (docs/identity.md): where, in what state, what it answered. */
export function criLine(c: Record<string, unknown>): string {
  const n = (k: string) => Number(c[k] ?? 0);
  const where = String(c.socket_in_use ?? c.socket ?? '?');
  const rt = typeof c.runtime === 'string' ? ` (${c.runtime})` : '';
  if (c.state === 'absent') return term(`no socket found (${String(c.last_error ?? 'auto')})`);
  let line = `${where}: ${String(c.state)}${rt} · resolved ${n('resolved')} · not found ${n('not_found')} · pending ${n('pending')}`;
  if (n('failed') > 0) line += ` · failed ${n('failed')}`;
  if (n('mismatched') > 0) line += ` · mismatched ${n('mismatched')}`;
  if (n('dropped') > 0) line += ` · dropped ${n('dropped')}`;
  if (c.state === 'failing' && typeof c.last_error === 'string') line += ` (last: ${c.last_error})`;
  return term(line);
}

export function humanStatus(s: StatsJson): string {
  const a = s.accounting;
  const row = (k: string, v: string) => `${k.padEnd(10)} ${v}\n`;
  const reserve = Object.values(a.lost_reserve).reduce((x, y) => x + y, 0);
  const user = Object.values(a.lost_userspace).reduce((x, y) => x + y, 0);
  const flight = a.in_flight ? ` + ${a.in_flight} in flight` : '';
  const mark = a.identity_holds ? `generated = captured + lost${flight} ✓` : 'generated ≠ captured + lost ✗';
  const t = s.table;
  let text =
    row('agent', `up · version ${s.version} · pid ${s.pid} · uptime ${fmtUptime(s.uptime_s)}`) +
    (s.health?.status === 'degraded' ? row('health', `DEGRADED: ${s.health.reasons.map((r) => term(r.message)).join('; ')}`) : row('health', 'ok')) +
    row('programs', `${s.programs.length} attached${s.programs.length ? `: ${s.programs.join(', ')}` : ''}`) +
    row('captured', Object.entries(a.captured).map(([k, v]) => `${k} ${v}`).join(' · ')) +
    row('lost', `${a.totals.lost} (reserve ${reserve}, user space ${user}); ${mark}`);
  if (a.seq_gaps !== user) text += row('', `sequence gaps ${a.seq_gaps} ≠ user-space loss ${user} (cross-check failed)`);
  if (a.malformed > 0) text += row('', `malformed records ${a.malformed}`);
  text += row(
    'table',
    `${plural(t.size ?? 0, 'process', 'processes')}: ${t.live ?? 0} live, ${plural(t.zombies ?? 0, 'zombie')}, ${t.dead ?? 0} dead`,
  );
  const failing = Object.entries(s.consumers ?? {}).filter(([, c]) => c.errors > 0);
  if (failing.length) text += row('faults', failing.map(([k, c]) => `${k} ${c.errors} (last: ${term(c.last_error ?? '?')})`).join(' · '));
  for (const [name, o] of Object.entries(s.alerts ?? {})) {
    const n = (k: string) => Number(o[k] ?? 0);
    let line = `${term(name)}: delivered ${n('delivered')} · pending ${n('pending')} · dropped ${n('dropped')}`;
    if (n('superseded') > 0) line += ` · superseded ${n('superseded')}`;
    if (n('rejected') > 0) line += ` · rejected ${n('rejected')}`;
    if (n('failures') > 0) line += ` · failures ${n('failures')}`;
    if (n('pending') > 0 && typeof o.last_error === 'string') line += ` (last: ${term(o.last_error)})`;
    text += row('alerts', line);
  }
  const otlp = (s.export?.otlp ?? null) as Record<string, unknown> | null;
  if (otlp !== null) {
    text += row('otlp', Object.entries(otlp).filter(([, v]) => typeof v === 'number' || typeof v === 'string').map(([k, v]) => `${k}=${term(String(v))}`).join(' · '));
  }
  const cri = ((s.export?.identity ?? null) as { cri?: Record<string, unknown> } | null)?.cri;
  if (cri && cri.state !== 'off' && cri.state !== 'idle') text += row('cri', criLine(cri));
  if (s.fleet) text += row('fleet', fleetLine(s.fleet));
  if (s.store !== null) {
    const kv = Object.entries(s.store)
      .filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
      .map(([k, v]) => `${k}=${String(v)}`);
    if (kv.length) text += row('store', kv.join(' · '));
  }
  return text;
}
