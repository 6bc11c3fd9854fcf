// `patrol fleet status|alerts|desired set`: the fleet as etcd holds it (docs/fleet.md). Through
// the local agent's API by default, or straight from etcd with --endpoints (an operator's
// workstation: no agent needed). Every command takes --json.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { term } from '../shared/terminal.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';
import { fmtBytes } from './format.js';
import type { FleetAlertsJson, FleetStatusJson, DesiredTarget } from '../fleet/index.js';
import { registerBundles, registerRollouts } from './fleet-rollout.js';

export interface FleetOptions extends ClientOptions {
  endpoints?: string;
  prefix?: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

interface DesiredOptions extends FleetOptions {
  selector?: string;
  node?: string;
  all?: boolean;
}

export function addFleetOptions(cmd: Command): Command {
  return addClientOptions(cmd)
    .option('--endpoints <urls>', 'ask etcd directly: member URLs, comma-separated (no agent needed)')
    .option('--prefix <prefix>', 'key prefix with --endpoints (default /patrol/)')
    .option('--cacert <file>', 'with https:// endpoints: CA bundle (PEM)')
    .option('--cert <file>', 'with https:// endpoints: client certificate (PEM)')
    .option('--key <file>', 'with https:// endpoints: client key (PEM)');
}

/** --endpoints: a client of our own (loaded on demand: the other commands need no gRPC). */
export async function direct<T>(o: FleetOptions, f: (m: typeof import('../fleet/index.js'), c: import('../fleet/index.js').EtcdClient, k: import('../fleet/index.js').Keys) => Promise<T>): Promise<T> {
  const m = await import('../fleet/index.js');
  const endpoints = o.endpoints!.split(',').map((s) => s.trim().replace(/\/$/, '')).filter(Boolean);
  for (const e of endpoints) if (!/^https?:\/\/[^\s/]+$/.test(e)) throw new PatrolError('E_USAGE', `--endpoints: "${e}" is not a URL like http://10.0.0.1:2379`);
  const prefix = o.prefix ?? '/patrol/';
  if (!/^\/([\x21-\x7e]*\/)?$/.test(prefix)) throw new PatrolError('E_USAGE', `--prefix: "${prefix}" must start and end with '/'`);
  const pem = (p: string | undefined, flag: string) => {
    if (p === undefined) return null;
    try {
      return readFileSync(p);
    } catch (e) {
      throw new PatrolError('E_USAGE', `${flag}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const tls = o.cacert || o.cert ? { ca: pem(o.cacert, '--cacert'), cert: pem(o.cert, '--cert'), key: pem(o.key, '--key') } : null;
  const client = new m.EtcdClient({ endpoints, tls, timeoutMs: 5000 });
  try {
    return await f(m, client, new m.Keys(prefix));
  } finally {
    client.close();
  }
}

export function registerFleet(program: Command): void {
  const fleet = program.command('fleet').description('the fleet on etcd: nodes, versions, health, alerts, desired state (docs/fleet.md)');
  addFleetOptions(fleet.command('status').description('every node: up or down, versions, health, loss, last seen; the leader')).action(async (o: FleetOptions) => {
    const s = o.endpoints ? await direct(o, (m, c, k) => m.readFleetStatus(c, k)) : await new ApiClient(o.socket).get<FleetStatusJson>('/fleet/status');
    process.stdout.write(o.json ? JSON.stringify(s, null, 2) + '\n' : humanFleetStatus(s));
  });
  addFleetOptions(fleet.command('alerts').description('alerts firing across the fleet, and the leader\'s fleet-level findings')).action(async (o: FleetOptions) => {
    const a = o.endpoints ? await direct(o, (m, c, k) => m.readFleetAlerts(c, k)) : await new ApiClient(o.socket).get<FleetAlertsJson>('/fleet/alerts');
    process.stdout.write(o.json ? JSON.stringify(a, null, 2) + '\n' : humanFleetAlerts(a));
  });
  const desired = fleet.command('desired').description('what nodes should run');
  addFleetOptions(
    desired
      .command('set')
      .description('write desired state: a bundle id for the nodes a selector matches, one node, or all')
      .argument('<bundle>', 'bundle id')
      .option('--selector <labels>', 'nodes whose labels match, e.g. role=web or role=web,zone=a')
      .option('--node <name>', 'one node')
      .option('--all', 'every node (the lowest precedence)'),
  ).action(async (bundle: string, o: DesiredOptions) => {
    const n = (o.selector !== undefined ? 1 : 0) + (o.node !== undefined ? 1 : 0) + (o.all ? 1 : 0);
    if (n !== 1) throw new PatrolError('E_USAGE', 'give exactly one of --selector key=value, --node NAME or --all');
    let r: { key: string; revision: number; bundle: string };
    if (o.endpoints) {
      r = await direct(o, (m, c, k) => {
        const target: DesiredTarget = o.node !== undefined ? { node: o.node } : o.selector !== undefined ? { selector: m.parseSelector(o.selector) } : { all: true };
        return m.writeDesired(c, k, bundle, target);
      });
    } else {
      r = await new ApiClient(o.socket).post('/fleet/desired', { bundle, ...(o.node !== undefined ? { node: o.node } : o.selector !== undefined ? { selector: o.selector } : { all: true }) });
    }
    process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : `desired ${term(r.bundle)} at ${term(r.key)} (revision ${r.revision})\n`);
  });
  registerBundles(fleet);
  registerRollouts(fleet);
}

export function ago(iso: string | null, now = Date.now()): string {
  if (iso === null) return '?';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return '?';
  if (s < 2) return 'now';
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Bundle ids for tables: sha256:1a2b3c4d5e6f */
const short = (id: string | null | undefined): string => (!id ? '-' : id.startsWith('sha256:') ? id.slice(0, 19) : id);

export function humanFleetStatus(s: FleetStatusJson): string {
  const c = s.counts;
  const leader = s.leader ? `leader ${term(s.leader.node)} (term ${s.leader.term}${s.leader.since ? `, since ${ago(s.leader.since)}` : ''})` : 'no leader';
  let out = `fleet ${term(s.prefix)} · ${c.nodes} node${c.nodes === 1 ? '' : 's'}: ${c.up} up, ${c.down} down${c.degraded ? `, ${c.degraded} degraded` : ''}${c.losing ? `, ${c.losing} losing events` : ''} · ${leader}\n`;
  if (s.nodes.length) {
    const rows = [['NODE', 'STATE', 'VERSIONS', 'HEALTH', 'LOSS/S', 'CPU%', 'RSS', 'ALERTS', 'LAST SEEN', 'DESIRED', 'BUNDLE']];
    for (const n of s.nodes) {
      const parts = Object.entries(n.parts)
        .filter(([, p]) => p.version !== null)
        .map(([k, p]) => `${k[0]}:${p.version!.slice(0, 8)}`);
      rows.push([
        term(n.node) + (n.leader ? '*' : ''),
        n.up ? 'up' : 'DOWN',
        term([n.version ?? '?', ...parts].join(' ')),
        n.health === null ? '-' : n.health.status === 'ok' ? 'ok' : `degraded (${n.health.reasons.map((r) => r.kind).join(',')})`,
        n.lost_rate === null ? '-' : String(n.lost_rate),
        n.agent_cpu === null ? '-' : n.agent_cpu.toFixed(1),
        n.agent_rss === null ? '-' : fmtBytes(n.agent_rss),
        n.alerts_firing === null ? '-' : String(n.alerts_firing),
        n.up ? 'now' : ago(n.last_seen),
        term(short(n.desired_bundle)),
        term(`${short(n.bundle)}${n.bundle_result && n.bundle_result !== 'applied' && n.bundle_result !== 'none' ? ` (${n.bundle_result})` : ''}`),
      ]);
    }
    out += table(rows);
  }
  if (s.findings.length) {
    out += 'findings (leader):\n';
    for (const f of s.findings) {
      if (f.kind === 'node_down') out += `  ${term(f.node)} down${f.since ? ` since ${ago(f.since)}` : ''}\n`;
      else if (f.kind === 'loss') out += `  ${term(f.node)} losing events: ${f.lost_rate}/s\n`;
      else out += `  ${term(f.node)} runs ${term(f.part)} ${term(f.version.slice(0, 12))}, behind ${term(f.newest.slice(0, 12))} (out since ${ago(f.newest_since)})\n`;
    }
  }
  if (s.bad_values) out += `(${s.bad_values} value${s.bad_values === 1 ? '' : 's'} under the prefix not in the documented schema, skipped)\n`;
  return out;
}

export function humanFleetAlerts(a: FleetAlertsJson): string {
  if (a.alerts.length === 0 && a.findings.length === 0) return 'no alerts firing in the fleet\n';
  let out = '';
  if (a.alerts.length) {
    const rows = [['NODE', 'STATE', 'CHECK', 'SINCE', 'MESSAGE']];
    for (const x of a.alerts) rows.push([term(x.node), x.state.toUpperCase(), term(x.name), ago(x.since), term(x.message)]);
    out += table(rows);
  }
  if (a.findings.length) {
    out += 'fleet-level findings:\n';
    for (const f of a.findings) out += `  ${f.kind} ${term(f.node)}${f.kind === 'loss' ? ` ${f.lost_rate}/s` : f.kind === 'version_skew' ? ` ${term(f.part)} ${term(f.version.slice(0, 12))} < ${term(f.newest.slice(0, 12))}` : ''}\n`;
  }
  return out;
}
