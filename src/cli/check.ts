// `patrol check FILE...`: validate, then run every check once, standalone (no agent). Exit code
// as monitoring plugins: 0 ok, 1 warning, 2 critical, 3 unknown or timeout (and 3 when the files
// do not compile, since nothing could be checked). The worst state wins, in the order
// critical > warning > unknown/timeout > ok.
// `--validate`: diagnostics only (exit 0 when there is no error, 1 otherwise).
// `--replay FILE`: evaluate the event-based checks against a recording (patrol record), no root.
import type { Command } from 'commander';
import { PatrolError } from '../shared/errors.js';
import type { CheckResult, CheckState, Diagnostic } from '../checks/index.js';
import { parseIntArg } from './parse.js';

export interface CheckOptions {
  validate?: boolean;
  json?: boolean;
  replay?: string;
  concurrency?: number;
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate check files and run them once (exit 0 ok, 1 warning, 2 critical, 3 unknown); see docs/dsl.md')
    .argument('[files...]', 'check files or directories of *.patrol files (default: checks.dir of the agent config)')
    .option('--validate', 'report diagnostics only; do not run')
    .option('--json', 'machine-readable output: results with name, state and evidence (or diagnostics)')
    .option('--replay <recording>', 'evaluate the event-based checks against a recording made by patrol record')
    .option('--concurrency <n>', 'checks run at the same time (default 4)', parseIntArg('--concurrency', 1, 64))
    .action(async (files: string[], opts: CheckOptions) => {
      // `patrol check … | head`: a closed pipe must not turn the check's exit code into a crash
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EPIPE') throw e;
      });
      try {
        process.exitCode = await runCheck(files, opts);
      } catch (e) {
        // monitoring-plugin convention: a check that could not run at all is UNKNOWN (3), never
        // 1 or 2, which a scheduler would read as warning or critical
        if (!(e instanceof PatrolError)) throw e;
        process.stderr.write(`patrol: ${e.message}\n`);
        process.exitCode = 3;
      }
    });
}

const WORST: CheckState[] = ['critical', 'warning', 'unknown', 'timeout'];

export function exitCodeOf(results: readonly CheckResult[]): number {
  for (const s of WORST) if (results.some((r) => r.state === s)) return s === 'critical' ? 2 : s === 'warning' ? 1 : 3;
  return 0;
}

function diagJson(d: Diagnostic) {
  return { file: d.file, line: d.span.line, col: d.span.col, code: d.code, severity: d.severity, message: d.message, ...(d.hint ? { hint: d.hint } : {}) };
}

export async function runCheck(paths: string[], opts: CheckOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const { compileFiles, formatAll, checkFilesIn, Executor } = await import('../checks/index.js');
  const { statSync } = await import('node:fs');
  const files: string[] = [];
  for (const p of paths) {
    let dir = false;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      // compileFiles reports the unreadable file
    }
    if (dir) files.push(...checkFilesIn(p));
    else files.push(p);
  }
  if (paths.length === 0) {
    // no files: the agent's check directory, as configured
    const { loadConfig } = await import('../app/config.js');
    const dir = loadConfig({}).checks.dir;
    if (dir !== null) files.push(...checkFilesIn(dir));
  }
  if (files.length === 0) throw new PatrolError('E_USAGE', 'no check files given, and checks.dir is not set in /etc/patrol/patrol.yaml (directories are searched for *.patrol and *.check)');
  const c = compileFiles(files);
  const errors = c.diagnostics.filter((d) => d.severity === 'error').length;
  if (opts.validate) {
    if (opts.json) out.write(JSON.stringify({ ok: errors === 0, checks: c.checks.length, diagnostics: c.diagnostics.map(diagJson) }, null, 2) + '\n');
    else {
      if (c.diagnostics.length) err.write(formatAll(c.diagnostics, c.sources) + '\n\n');
      out.write(errors === 0 ? `${c.checks.length} checks in ${files.length} file(s): valid\n` : `${errors} error(s); the checks are not valid\n`);
    }
    return errors === 0 ? 0 : 1;
  }
  if (c.diagnostics.length) err.write(formatAll(c.diagnostics, c.sources) + '\n\n');
  if (errors > 0) {
    // stdout keeps its shape (an array of results, here empty); the diagnostics went to stderr
    if (opts.json) out.write('[]\n');
    err.write(`patrol: ${errors} error(s) in the checks; nothing was run\n`);
    return 3;
  }
  let results: CheckResult[];
  if (opts.replay !== undefined) {
    const { replayRecording } = await import('../app/checks.js');
    const r = await replayRecording(c.checks, opts.replay);
    if (r.skipped.length === c.checks.length) {
      // nothing ran: that is not a success (docs/dsl.md: exit 3 when nothing could be run)
      if (opts.json) out.write(JSON.stringify({ results: [], alerts: [], events: r.events, runs: 0 }, null, 2) + '\n');
      err.write(`patrol: no check in these files reads events, so the recording was not replayed (replay evaluates event-based checks only)\n`);
      return 3;
    }
    if (r.skipped.length) err.write(`patrol: replay evaluates event-based checks only; skipped: ${r.skipped.map((x) => x.name).join(', ')}\n`);
    if (!opts.json) {
      for (const a of r.alerts) out.write(`${new Date(a.at).toISOString()}  ${a.kind.padEnd(12)} ${a.name}: ${a.message}\n`);
      out.write(`-- ${r.events} events replayed, ${r.runs.length} runs, ${r.alerts.length} alerts; final states:\n`);
    } else {
      out.write(JSON.stringify({ results: r.final, alerts: r.alerts, events: r.events, runs: r.runs.length }, null, 2) + '\n');
      return exitCodeOf(r.final);
    }
    results = r.final;
  } else {
    const { localSources } = await import('../app/checks.js');
    // checks of the agent's own figures (events_lost) mean nothing without an agent: named, not run
    const agentOnly = c.checks.filter((x) => x.usesAgent);
    const runnable = c.checks.filter((x) => !x.usesAgent);
    if (agentOnly.length) err.write(`patrol: ${agentOnly.map((x) => x.name).join(', ')}: read${agentOnly.length === 1 ? 's' : ''} the agent's own figures; run by patrol agent --checks, skipped here\n`);
    if (runnable.length === 0) {
      if (opts.json) out.write('[]\n');
      err.write('patrol: nothing to run standalone\n');
      return 3;
    }
    const exec = new Executor({ sources: localSources(), concurrency: opts.concurrency ?? 4 });
    exec.setChecks(runnable);
    results = await exec.runAll();
    if (opts.json) {
      out.write(JSON.stringify(results, null, 2) + '\n');
      return exitCodeOf(results);
    }
  }
  for (const r of results) out.write(humanResult(r) + '\n');
  const code = exitCodeOf(results);
  return code;
}

export function humanResult(r: CheckResult): string {
  const tag = r.state.toUpperCase().padEnd(8);
  return `${tag} ${r.name} — ${r.message}`;
}
