// `patrol rules check FILE...`: validate rule files without an agent (diagnostics with a caret
// under the column, exit 1 when any file is bad); `patrol rules profile`: the agent's active
// set and what each rule costs.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { loadRuleFiles, type Diagnostic } from '../rules/index.js';
import type { RulesJson } from '../api/index.js';
import { ApiClient, addClientOptions, type ClientOptions } from './client.js';

type Out = { write(s: string): unknown };

function snippet(d: Diagnostic, cache: Map<string, string[] | null>): string {
  if (d.line <= 0) return '';
  let lines = cache.get(d.file);
  if (lines === undefined) {
    try {
      lines = readFileSync(d.file, 'utf8').split('\n');
    } catch {
      lines = null;
    }
    cache.set(d.file, lines);
  }
  const src = lines?.[d.line - 1];
  if (src === undefined) return '';
  const shown = src.length > 160 ? src.slice(0, 160) + '…' : src;
  return `  ${shown}\n  ${' '.repeat(Math.max(0, Math.min(d.col - 1, 160)))}^\n`;
}

/** Returns the exit code: 0 when every file is valid, 1 otherwise. */
export function runRulesCheck(files: string[], opts: { json?: boolean }, out: Out = process.stdout, err: Out = process.stderr): number {
  const results = files.map((f) => ({ file: f, r: loadRuleFiles(f) }));
  const bad = results.some((x) => !x.r.ok);
  if (opts.json) {
    out.write(
      JSON.stringify(
        { ok: !bad, files: results.map(({ file, r }) => ({ file, ok: r.ok, rules: r.ok ? r.set.rules.length : 0, diagnostics: r.diagnostics })) },
        null,
        2,
      ) + '\n',
    );
    return bad ? 1 : 0;
  }
  const cache = new Map<string, string[] | null>();
  for (const { file, r } of results) {
    if (r.ok) {
      out.write(`${file}: ok, ${r.set.rules.length} rule${r.set.rules.length === 1 ? '' : 's'}\n`);
      continue;
    }
    for (const d of r.diagnostics) {
      const at = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
      err.write(`${at}: ${d.code}: ${d.message}\n${snippet(d, cache)}`);
    }
  }
  if (bad) {
    const n = results.reduce((s, x) => s + x.r.diagnostics.length, 0);
    err.write(`${n} problem${n === 1 ? '' : 's'}; nothing was loaded\n`);
  }
  return bad ? 1 : 0;
}

export async function runRulesProfile(opts: ClientOptions, out: Out = process.stdout): Promise<void> {
  const r = await new ApiClient(opts.socket).get<RulesJson>('/rules');
  if (opts.json) {
    out.write(JSON.stringify(r, null, 2) + '\n');
    return;
  }
  out.write(`${r.rules} rules from ${r.dir}\n`);
  for (const d of r.diagnostics) out.write(`last reload rejected: ${d}\n`);
  out.write(`${'RULE'.padEnd(24)} ${'SOURCE'.padEnd(11)} ${'EVALS'.padStart(10)} ${'TREES'.padStart(10)} ${'MATCHES'.padStart(8)} ${'TIME'.padStart(10)} ${'MAX'.padStart(9)}\n`);
  for (const p of r.profile) {
    out.write(`${p.rule.padEnd(24)} ${p.source.padEnd(11)} ${String(p.evaluations).padStart(10)} ${String(p.tree_runs ?? '-').padStart(10)} ${String(p.matches).padStart(8)} ${`${p.time_ms.toFixed(1)} ms`.padStart(10)} ${`${Math.round(p.max_us)} µs`.padStart(9)}\n`);
  }
  const st = r.stats as { treeRuns?: number; gateSkips?: number; evidenceBuilds?: number };
  if (typeof st.treeRuns === 'number') out.write(`tree runs ${st.treeRuns}, turned away by the index's gates ${st.gateSkips ?? 0}, evidence chains built ${st.evidenceBuilds ?? 0}\n`);
  const pr = (r.stats as { predictions?: { pending: number; came_true: number; false_alarms: number; precision: number | null; median_lead_s: number | null } }).predictions;
  if (pr) {
    const lead = pr.median_lead_s === null ? '' : `, median lead ${Math.round(pr.median_lead_s)} s`;
    const rate = pr.precision === null ? '' : ` (${Math.round((1 - pr.precision) * 100)}% false alarms)`;
    out.write(`predictions: ${pr.came_true} came true${lead}, ${pr.false_alarms} false alarm${pr.false_alarms === 1 ? '' : 's'}${rate}, ${pr.pending} pending\n`);
  }
}

export function registerRules(program: Command): void {
  const rules = program.command('rules').description('attribution rules: validate files, see what the agent runs');
  rules
    .command('check')
    .description('validate rule files or directories (exit 1 with diagnostics when any is bad)')
    .argument('<file...>', 'rule files (.yaml) or directories of them')
    .option('--json', 'machine-readable output')
    .action((files: string[], opts: { json?: boolean }) => {
      const code = runRulesCheck(files, opts);
      if (code !== 0) process.exitCode = code;
    });
  addClientOptions(rules.command('profile').description("the agent's rules with evaluations, matches and time spent, costliest first")).action(
    async (opts: ClientOptions) => {
      await runRulesProfile(opts);
    },
  );
  rules.action(() => {
    throw new PatrolError('E_USAGE', 'rules: use `patrol rules check FILE...` or `patrol rules profile`');
  });
}
