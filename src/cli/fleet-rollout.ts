// `patrol fleet bundle create|push`, `patrol fleet rollout …` and `patrol fleet history`
// (docs/fleet.md, "Rollouts"). Like the other fleet commands: through the local agent's API by
// default, or straight against etcd with --endpoints. `bundle create` needs neither.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { term } from '../shared/terminal.js';
import { ApiClient } from './client.js';
import { addFleetOptions, ago, direct, table, type FleetOptions } from './fleet.js';
import type { CreatedRollout, HistoryJson, PushResult, RolloutStatusJson, RolloutValue } from '../fleet/index.js';

interface RolloutOptions extends FleetOptions {
  selector?: string;
  waves?: string;
  bake?: string;
  gate?: string[];
  failureLimit?: string;
  maxIncompatible?: string;
}

const short = (id: string | null | undefined): string => (!id ? '-' : id.startsWith('sha256:') ? id.slice(0, 19) : id);
const out = (o: { json?: boolean }, doc: unknown, human: () => string) => process.stdout.write(o.json ? `${JSON.stringify(doc, null, 2)}\n` : human());

export function registerBundles(fleet: Command): void {
  const bundle = fleet.command('bundle').description('signed bundles of rules, checks, BPF objects and a config overlay');
  bundle
    .command('create')
    .description('pack DIR (rules/, checks/, bpf/, config.yaml, manifest.yaml) into a signed bundle file; prints its id')
    .argument('<dir>', 'the bundle directory')
    .requiredOption('--key <file>', 'ed25519 private key (PEM) to sign with')
    .requiredOption('-o, --output <file>', 'the bundle file to write')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: { key: string; output: string; json?: boolean }) => {
      const m = await import('../fleet/bundle.js');
      const b = m.createBundle(dir, m.readPrivateKey(o.key));
      try {
        writeFileSync(o.output, b.bytes, { mode: 0o644 });
      } catch (e) {
        throw new PatrolError('E_USAGE', `-o: cannot write ${o.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      out(o, { id: b.id, file: o.output, size: b.bytes.length, manifest: b.manifest }, () => `${b.id}\n`);
    });
  addFleetOptions(bundle.command('push').description('store a bundle file in etcd (in chunks of at most 1 MiB)').argument('<file>', 'the bundle file')).action(async (file: string, o: FleetOptions) => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new PatrolError('E_USAGE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const r = o.endpoints ? await direct(o, (m, c, k) => m.pushBundle(c, k, bytes)) : await new ApiClient(o.socket, 60_000).post<PushResult>('/fleet/bundles', bytes);
    out(o, r, () => `${r.id}\n${r.existed ? 'already in etcd' : `pushed: ${r.size} bytes in ${r.chunks} chunk${r.chunks === 1 ? '' : 's'}`} (revision ${r.revision}); parts: ${r.parts.join(', ')}\n`);
  });
}

export function registerRollouts(fleet: Command): void {
  const rollout = addFleetOptions(
    fleet
      .command('rollout')
      .description('roll a bundle out in health-gated waves; status|pause|resume|abort')
      .argument('[bundle]', 'the bundle id (patrol fleet bundle create printed it)')
      .option('--selector <labels>', 'the nodes whose labels match, e.g. role=web (default: every node)')
      .option('--waves <list>', 'cumulative wave sizes: node counts or shares (default 1,10%,50%,100%)')
      .option('--bake <duration>', 'how long the gates must hold before a wave passes (default 60s)')
      .option('--gate <expr>', 'a gate in the check DSL over per-node fleet fields, e.g. "agent_cpu <= baseline(agent_cpu) * 1.5"; repeat for more (replaces the defaults)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
      .option('--failure-limit <n>', 'failing readings in a row that roll back every node touched (default 2)')
      .option('--max-incompatible <share>', 'incompatible nodes a wave may have before that fails its gate (default 50%)'),
  ).action(async (bundle: string | undefined, o: RolloutOptions) => {
    if (!bundle) throw new PatrolError('E_USAGE', 'give a bundle id (patrol fleet rollout BUNDLE), or status|pause|resume|abort');
    const limit = o.failureLimit === undefined ? undefined : Number(o.failureLimit);
    if (limit !== undefined && !Number.isInteger(limit)) throw new PatrolError('E_USAGE', `--failure-limit: "${o.failureLimit}" is not a whole number`);
    let r: CreatedRollout;
    if (o.endpoints) {
      r = await direct(o, (m, c, k) =>
        m.createRollout(c, k, m.rolloutSpec({
          bundle,
          selector: o.selector !== undefined ? m.parseSelector(o.selector) : null,
          ...(o.waves !== undefined ? { waves: o.waves.split(',') } : {}),
          ...(o.bake !== undefined ? { bake: o.bake } : {}),
          ...(o.gate !== undefined ? { gates: o.gate } : {}),
          ...(limit !== undefined ? { failureLimit: limit } : {}),
          ...(o.maxIncompatible !== undefined ? { maxIncompatible: m.parseShare(o.maxIncompatible, '--max-incompatible') } : {}),
        })),
      );
    } else {
      r = await new ApiClient(o.socket).post<CreatedRollout>('/fleet/rollouts', {
        bundle,
        ...(o.selector !== undefined ? { selector: o.selector } : {}),
        ...(o.waves !== undefined ? { waves: o.waves } : {}),
        ...(o.bake !== undefined ? { bake: o.bake } : {}),
        ...(o.gate !== undefined ? { gates: o.gate } : {}),
        ...(limit !== undefined ? { failure_limit: limit } : {}),
        ...(o.maxIncompatible !== undefined ? { max_incompatible: o.maxIncompatible } : {}),
      });
    }
    out(o, r, () => {
      const v = r.rollout;
      let t = `rollout ${term(v.id)}: ${term(short(v.bundle))} to ${v.selector ? term(Object.entries(v.selector).map(([k, x]) => `${k}=${x}`).join(',')) : 'every node'}\n`;
      t += `  waves ${v.waves.join(',')} · bake ${v.bake_ms / 1000}s · failure limit ${v.failure_limit} · at most ${Math.round(v.max_incompatible * 100)}% incompatible per wave\n`;
      for (const g of v.gates) t += `  gate ${term(g)}\n`;
      t += r.queued_behind ? `  queued behind ${term(r.queued_behind)}\n` : '  the leader starts it now: patrol fleet rollout status\n';
      return t;
    });
  });

  addFleetOptions(rollout.command('status').description('the active rollout (or ID): waves, nodes, the last gate reading').argument('[id]', 'a rollout id').option('--watch', 'print it again every 2 s until the rollout ends')).action(async (id: string | undefined, _o: unknown, cmd: Command) => {
    // options given after the subcommand may land on `rollout` itself, which has them too
    const o = cmd.optsWithGlobals<FleetOptions & { watch?: boolean }>();
    const read = () => (o.endpoints ? direct(o, (m, c, k) => m.rolloutStatus(c, k, id)) : new ApiClient(o.socket).get<RolloutStatusJson>('/fleet/rollouts', id ? { id } : {}));
    for (;;) {
      const s = await read();
      out(o, s, () => humanRollout(s));
      const st = s.rollout?.state;
      if (!o.watch || !st || !['pending', 'running', 'paused', 'rolling_back'].includes(st)) return;
      await new Promise((r) => setTimeout(r, 2000));
      if (!o.json) process.stdout.write('\n');
    }
  });
  for (const action of ['pause', 'resume', 'abort'] as const) {
    const what = action === 'abort' ? 'stop the rollout and roll back every node it touched' : action === 'pause' ? 'hold the rollout where it is (no wave passes)' : 'go on after a pause (the bake starts over)';
    addFleetOptions(rollout.command(action).description(what).argument('[id]', 'a rollout id (default: the active one)')).action(async (id: string | undefined, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<FleetOptions>();
      const v = o.endpoints ? await direct(o, (m, c, k) => m.requestRollout(c, k, action, id)) : await new ApiClient(o.socket).post<RolloutValue>('/fleet/rollouts/request', { action, ...(id ? { id } : {}) });
      out(o, v, () => `rollout ${term(v.id)}: asked to ${action}; the leader carries it out at its next tick\n`);
    });
  }

  addFleetOptions(
    fleet.command('history').description('every wave, gate reading and decision of a rollout (default: the newest), with evidence, from etcd').argument('[id]', 'a rollout id').option('--limit <n>', 'the last N entries', '1000').option('--evidence', 'print each entry\'s evidence too'),
  ).action(async (id: string | undefined, o: FleetOptions & { limit: string; evidence?: boolean }) => {
    const limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new PatrolError('E_USAGE', `--limit: "${o.limit}" is not a positive whole number`);
    const h = o.endpoints ? await direct(o, (m, c, k) => m.readHistory(c, k, id, limit)) : await new ApiClient(o.socket).get<HistoryJson>('/fleet/history', { ...(id ? { id } : {}), limit });
    out(o, h, () => humanHistory(h, o.evidence === true));
  });
}

export function humanRollout(s: RolloutStatusJson): string {
  const v = s.rollout;
  if (!v) return 'no rollout\n';
  const state = v.state === 'paused' && v.pause ? `paused (${v.pause.by === 'operator' ? v.pause.reason : `missing data: ${v.pause.reason}`})` : v.state.replace('_', ' ');
  let t = `rollout ${term(v.id)} · ${term(short(v.bundle))} · ${v.selector ? term(Object.entries(v.selector).map(([k, x]) => `${k}=${x}`).join(',')) : 'every node'} · ${state}\n`;
  if (v.targets.length) {
    const sizes = v.targets.map((x, i) => x - (v.targets[i - 1] ?? 0));
    t += `  wave ${Math.max(0, v.wave) + 1}/${v.targets.length} (sizes ${sizes.join(', ')}) · ${v.told}/${v.order.length} nodes told · ${v.incompatible} incompatible · failures ${v.failures}/${v.failure_limit}`;
    if (v.bake_since && ['running'].includes(v.state)) t += ` · baking ${Math.min(v.bake_ms, Date.now() - Date.parse(v.bake_since)) / 1000 | 0}/${v.bake_ms / 1000}s`;
    t += '\n';
  }
  if (v.controller) t += `  controller ${term(v.controller.node)} (term ${v.controller.term})\n`;
  if (v.result) t += `  ${term(v.result)}\n`;
  if (v.last_reading) {
    const r = v.last_reading;
    t += `  last reading ${ago(r.at)}: ${r.verdict} over ${r.nodes} node(s)${r.incompatible ? `; incompatible share ${Math.round(r.incompatible.share * 100)}% > ${Math.round(r.incompatible.max * 100)}%` : ''}\n`;
    for (const g of r.gates) {
      const mark = g.fail ? 'FAIL' : g.unknown ? '?' : 'ok';
      t += `    ${mark.padEnd(4)} ${term(g.gate)}  (${g.pass} pass, ${g.fail} fail, ${g.unknown} unknown)\n`;
      for (const f of g.failing.slice(0, 3)) t += `         ${term(f.node)}: ${Object.entries(f.values).map(([k, x]) => `${term(k)}=${term(x)}`).join(' ')}\n`;
      for (const m of g.missing.slice(0, 3)) t += `         ${term(m.node)}: ${term(m.why)}\n`;
    }
  }
  if (s.nodes.length) {
    const rows = [['NODE', 'WAVE', 'TOLD', 'UP', 'RUNS', 'RESULT', 'NOTE']];
    for (const n of s.nodes) {
      rows.push([term(n.node), String(n.wave + 1), ago(n.told_at), n.up ? 'up' : 'DOWN', term(short(n.bundle)), term(n.result ?? '-'), n.incompatible ? `incompatible (${term(n.incompatible.code)})` : n.restored_at ? `restored ${ago(n.restored_at)}` : '']);
    }
    t += table(rows);
  }
  if (s.queued.length) t += `queued: ${s.queued.map(term).join(', ')}\n`;
  return t;
}

export function humanHistory(h: HistoryJson, evidence: boolean): string {
  if (h.rollouts.length === 0) return 'no rollout yet\n';
  let t = '';
  const id = h.events[0]?.rollout;
  const r = h.rollouts.find((x) => x.id === id);
  if (r) t += `rollout ${term(r.id)} · ${term(short(r.bundle))} · ${r.state.replace('_', ' ')}${r.result ? ` · ${term(r.result)}` : ''}\n`;
  for (const e of h.events) {
    t += `${e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}  ${String(e.seq).padStart(4)}  ${e.kind.padEnd(12)} ${e.wave >= 0 ? `w${e.wave + 1}` : '  '}  ${term(e.message)}${e.term !== null ? `  [${term(e.by)}, term ${e.term}]` : `  [${term(e.by)}]`}\n`;
    if (evidence && e.evidence !== undefined) t += `      ${term(JSON.stringify(e.evidence))}\n`;
  }
  const others = h.rollouts.filter((x) => x.id !== id);
  if (others.length) t += `other rollouts: ${others.slice(-10).map((x) => `${term(x.id)} (${x.state.replace('_', ' ')})`).join(', ')}\n`;
  return t;
}
