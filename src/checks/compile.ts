// Compiling check files: parse → check, per file, collecting every diagnostic. Never throws for
// problems in the input; an unreadable file is a diagnostic too (PD1000).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DiagnosticBag, formatDiagnostic, type Diagnostic } from './diagnostics.js';
import { parse } from './parser.js';
import { checkProgram, type CompiledCheck } from './checker.js';
import type { Program } from './ast.js';
import { printProgram } from './printer.js';
import { versionOf } from '../shared/canonical.js';

export interface CompileResult {
  checks: CompiledCheck[];
  diagnostics: Diagnostic[];
  /** file → source text, for caret snippets */
  sources: Map<string, string>;
  programs: Program[];
  /** sha256 of the canonical content: every file's program as the printer writes it, by base
   *  name (comments and layout do not move it; any check change does) */
  version: string;
}

export const errorsIn = (d: readonly Diagnostic[]) => d.filter((x) => x.severity === 'error').length;

export function compileSource(src: string, file: string): { checks: CompiledCheck[]; diagnostics: Diagnostic[]; program: Program } {
  const diags = new DiagnosticBag(file);
  let program: Program = { file, stmts: [] };
  try {
    program = parse(src, file, diags);
    const all = checkProgram(program, diags);
    diags.items.sort((a, b) => a.span.start - b.span.start);
    // a check whose statement has any error (syntax included) is not returned
    const bad = diags.items.filter((d) => d.severity === 'error');
    const checks = all.filter((c) => !bad.some((d) => d.span.start >= c.span.start && d.span.start <= c.span.end));
    return { checks, diagnostics: diags.items, program };
  } catch (e) {
    // a defect, not a user error: still a diagnostic, never an exception to the caller
    diags.error('PD1010', { start: 0, end: 0, line: 1, col: 1 }, `internal error while compiling: ${(e as Error).message}`);
    return { checks: [], diagnostics: diags.items, program };
  }
}

/** Files of a check directory: *.patrol and *.check, sorted, not recursive. */
export function checkFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.patrol') || f.endsWith('.check'))
    .sort()
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile());
}

export function compileFiles(paths: readonly string[]): CompileResult {
  const out: CompileResult = { checks: [], diagnostics: [], sources: new Map(), programs: [], version: '' };
  const ids = new Map<string, CompiledCheck>();
  for (const path of paths) {
    let src: string;
    try {
      src = readFileSync(path, 'utf8');
    } catch (e) {
      out.diagnostics.push({
        code: 'PD1000', severity: 'error', file: path, span: { start: 0, end: 0, line: 1, col: 1 },
        message: `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      });
      continue;
    }
    out.sources.set(path, src);
    const r = compileSource(src, path);
    out.diagnostics.push(...r.diagnostics);
    out.programs.push(r.program);
    for (const c of r.checks) {
      const dup = ids.get(c.id);
      if (dup !== undefined) {
        out.diagnostics.push({
          code: 'PD2007', severity: 'error', file: path, span: { start: 0, end: 0, line: c.line, col: 1 },
          message: `check '${c.name}' has the same id as the check at ${dup.file}:${dup.line} (same name in files with the same base name)`,
        });
        continue;
      }
      ids.set(c.id, c);
      out.checks.push(c);
    }
  }
  out.version = checkSetVersion(out.programs);
  return out;
}

/** The version of a set of check programs; see CompileResult.version. */
export function checkSetVersion(programs: readonly Program[]): string {
  return versionOf(programs.map((p) => [basename(p.file), printProgram(p)] as const));
}

export function formatAll(diags: readonly Diagnostic[], sources: ReadonlyMap<string, string>): string {
  return diags.map((d) => formatDiagnostic(d, sources.get(d.file) ?? null)).join('\n\n');
}
