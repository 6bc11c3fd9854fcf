// The DSL front end: both source forms, every construct, positions, golden diagnostics,
// recovery, units and arity.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CODES, FIELDS, compileSource, formatAll, parse, printProgram, stripSpans, type Diagnostic, type Expr, type Program,
} from '../../src/checks/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIX = join(ROOT, 'test/fixtures/checks');

const errs = (src: string): Diagnostic[] => compileSource(src, 't.patrol').diagnostics.filter((d) => d.severity === 'error');
const codes = (src: string) => compileSource(src, 't.patrol').diagnostics.map((d) => d.code);
const ok = (src: string) => {
  const r = compileSource(src, 't.patrol');
  expect(r.diagnostics.filter((d) => d.severity === 'error'), formatAll(r.diagnostics, new Map([['t.patrol', src]]))).toEqual([]);
  return r;
};

describe('source forms', () => {
  it('parses the one-liners of the source document', () => {
    const r = ok('// high disk watermark\ncheck disk_usage > 90%;\nalert on timeout;\n');
    expect(r.checks).toHaveLength(1);
    const c = r.checks[0]!;
    expect(c.name).toBe('disk_usage > 90%');
    expect(c.everyMs).toBe(30_000);
    expect([...c.alertOn].sort()).toEqual(['critical', 'timeout', 'unknown', 'warning']);
    expect(c.conditions[0]!.severity).toBe('critical');
  });

  it('parses a named check with every clause', () => {
    const src = `check "root disk" {
      every 30s; timeout 5s;
      warning disk_usage("/") > 80%;
      critical disk_usage("/") > 90% for 5m;
      labels team = "sre", "tier name" = "node";
      on timeout critical;
      alert on timeout;
    }`;
    const c = ok(src).checks[0]!;
    expect(c).toMatchObject({ name: 'root disk', everyMs: 30_000, timeoutMs: 5_000, onTimeout: 'critical', labels: { team: 'sre', 'tier name': 'node' } });
    expect(c.conditions.map((x) => [x.severity, x.forMs, x.text])).toEqual([
      ['warning', 0, 'disk_usage("/") > 80%'],
      ['critical', 300_000, 'disk_usage("/") > 90%'],
    ]);
    expect(c.alertOn.has('timeout')).toBe(true);
  });

  it('parses windowed aggregates and event predicates', () => {
    const r = ok(`
      check cpu { critical p95(cpu, 1m) by exec_id > 80%; }
      check rss { warning max(rss, 5m) by cgroup > 2GB; }
      check workers { critical count(exit where exit_code != 0 and comm == "worker", 10m) >= 5; }
      check unless zombie_count() == 0 for 1m;
      check io { warning avg(io_write, 5m) by comm > 50MB/s; }
      check execs { warning exec_rate(1m) > 100/s; }
      check rate(exec_failed where errno == 13, 5m) > 1/s;`);
    expect(r.checks.map((c) => c.usesEvents)).toEqual([false, false, true, false, false, true, true]);
    expect(r.checks[3]!.conditions[0]).toMatchObject({ negate: true, forMs: 60_000 });
  });

  it('keeps comments out and positions on every node', () => {
    const src = '// c1\ncheck   disk_usage("/") > 90%  ; // trailing\n\ncheck x { critical load1 > 2 and not (load5 > 3); }\n';
    const prog = parse(src, 't');
    const seen: string[] = [];
    const walk = (n: unknown) => {
      if (n === null || typeof n !== 'object') return;
      if (Array.isArray(n)) return n.forEach(walk);
      const o = n as Record<string, unknown>;
      if ('kind' in o || 'severity' in o) {
        const sp = o.span as { start: number; end: number; line: number; col: number };
        expect(sp, JSON.stringify(o)).toBeDefined();
        // line/col agree with the offset
        const before = src.slice(0, sp.start);
        expect(sp.line).toBe(before.split('\n').length);
        expect(sp.col).toBe(sp.start - before.lastIndexOf('\n'));
        expect(sp.end).toBeGreaterThan(sp.start);
        seen.push(String(o.kind ?? 'condition'));
      }
      for (const v of Object.values(o)) walk(v);
    };
    walk(prog.stmts);
    expect(seen).toEqual(expect.arrayContaining(['check', 'binary', 'call', 'string', 'number', 'ident', 'unary', 'condition']));
    const call = (prog.stmts[0] as { conditions: { expr: Extract<Expr, { kind: 'binary' }> }[] }).conditions[0]!.expr.left;
    expect(src.slice(call.span.start, call.span.end)).toBe('disk_usage("/")');
  });

  it('prints canonical source that parses back to the same tree', () => {
    const src = readFileSync(join(ROOT, 'checks/node.patrol'), 'utf8') + readFileSync(join(ROOT, 'checks/processes.patrol'), 'utf8');
    const p1 = parse(src, 't');
    const p2 = parse(printProgram(p1), 't');
    expect(stripSpans(p2)).toEqual(stripSpans(p1));
  });
});

describe('diagnostics', () => {
  it('match the golden output (every problem in the file, with carets)', () => {
    const src = readFileSync(join(FIX, 'errors.patrol'), 'utf8');
    const r = compileSource(src, 'test/fixtures/checks/errors.patrol');
    const text = formatAll(r.diagnostics, new Map([['test/fixtures/checks/errors.patrol', src]])) + '\n';
    const golden = join(FIX, 'errors.golden');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
    expect(text).toBe(readFileSync(golden, 'utf8'));
    // one bad check never hides the others: the valid checks still compile
    expect(r.checks.map((c) => c.name)).toEqual(['zombie_count() == 0', 'fine']);
  });

  it('docs/dsl.md: the opening example and every `check …;` snippet compile', () => {
    const doc = readFileSync(join(ROOT, 'docs/dsl.md'), 'utf8');
    const first = /```\n([\s\S]*?)```/.exec(doc)![1]!;
    expect(compileSource(first, 'doc').checks).toHaveLength(4);
    ok(first);
    // the example column of the constructs table, each made into a whole check
    const table = doc.slice(doc.indexOf('## Constructs'), doc.indexOf('### Units and types'));
    const examples = table
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| construct'))
      .flatMap((l) => [...l.split(' | ')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!))
      .filter((x) => !x.includes('…') && !x.includes('...') && !x.startsWith('alert on timeout;'));
    expect(examples.length).toBeGreaterThan(15);
    for (const x of examples) {
      const src = x.startsWith('check ')
        ? x.endsWith('}') || x.endsWith(';') ? x : `${x} { critical load1 > 1; }`
        : /^(every|timeout|warning|critical|labels|on|alert)\b/.test(x)
          ? `check example { critical load1 > 100; ${x} }`
          : `check ${x};`;
      expect(errs(src), src).toEqual([]);
    }
  });

  it('have stable, documented codes', () => {
    const doc = readFileSync(join(ROOT, 'docs/dsl.md'), 'utf8');
    for (const code of Object.keys(CODES)) expect(doc, code).toContain(code);
    // and every field of the catalogue, with its signature
    for (const f of FIELDS) expect(doc, f.name).toContain(`| \`${f.name}\` |`);
  });

  it('suggest the field meant', () => {
    const [d] = errs('check disk_usge > 90%;');
    expect(d).toMatchObject({ code: 'PD2001', span: { line: 1, col: 7 } });
    expect(d!.message).toContain("did you mean 'disk_usage'");
    expect(errs('check mem_usage > 90%;')[0]!.message).toContain("'memory_usage'");
    expect(errs('check frobnicate > 90%;')[0]!.message).not.toContain('did you mean');
  });

  it('reject unit mismatches and accept matching units', () => {
    expect(codes('check memory_usage > 0.9;')).toEqual(['PD2004']);
    expect(codes('check memory_available > 90%;')).toEqual(['PD2004']);
    expect(codes('check cert_expiry("/x.pem") < 14;')).toEqual(['PD2004']);
    expect(codes('check exec_rate(1m) > 5;')).toEqual(['PD2004']);
    expect(codes('check memory_available + 1 > 1GB;')).toEqual(['PD2004']);
    ok('check memory_available < 512MB + 1.5GB;');
    ok('check cert_expiry("/x.pem") < 14d;');
    ok('check exec_rate(1m) > 5/s;');
    ok('check disk_free("/") / 1h > 1MB/s;');
    ok('check memory_usage * 2 > 150%;');
    ok('check disk_usage > 0;');
    ok('check uptime < 10m;');
  });

  it('check arity and argument types', () => {
    expect(codes('check disk_usage("/", "/x") > 1%;')).toEqual(['PD2002']);
    expect(codes('check process_running();')).toEqual(['PD2002']);
    expect(codes('check process_running(nginx);')).toEqual(['PD2003']);
    expect(codes('check port_listening(70000);')).toEqual(['PD2003']);
    expect(codes('check file_age("relative") > 1h;')).toEqual(['PD2014']);
    expect(codes('check psi_some("disk") > 1%;')).toEqual(['PD2014']);
    expect(codes('check psi_some("io", 30s) > 1%;')).toEqual(['PD2014']);
    expect(codes('check count(exit, 10) > 1;')).toEqual(['PD2006']);
    expect(codes('check load1;')).toEqual(['PD2005']);
    expect(codes('check count(exit where disk_usage() > 1%, 1m) > 0;')).toEqual(['PD2010']);
    expect(codes('check count(exit where p95(cpu, 1m) by comm > 1%, 1m) > 0;')).toEqual(['PD2010']);
    expect(codes('check load1 > 1 where x;')).toEqual(['PD1010']);
    ok('check psi_some("io", 10s) > 10%;');
    ok('check process_count("/^nginx/") < 2;');
    expect(codes('check process_count("/(x/") < 2;')).toEqual(['PD2011']);
  });

  it('recover after a syntax error and report the next statement too', () => {
    const ds = errs('check load1 > ;\ncheck load5 >> 2;\ncheck disk_usge > 1%;\n');
    expect(ds.map((d) => [d.code, d.span.line])).toEqual([
      ['PD1010', 1],
      ['PD1010', 2],
      ['PD2001', 3],
    ]);
  });

  it('reject deep nesting with a diagnostic, not a stack overflow', () => {
    const src = `check ${'('.repeat(5000)}1${')'.repeat(5000)} > 0;`;
    expect(codes(src)).toContain('PD1014');
    expect(codes(`check ${'not '.repeat(5000)}true;`)).toContain('PD1014');
    expect(codes(`check ${'-'.repeat(5000)}1 > 0;`)).toContain('PD1014');
  });

  it('warn when a condition fires in the healthy state', () => {
    const r = compileSource('check zombie_count() == 0;', 't');
    expect(r.diagnostics.map((d) => [d.code, d.severity])).toEqual([['PD3003', 'warning']]);
    expect(r.checks).toHaveLength(1);
    expect(codes('check unless zombie_count() == 0;')).toEqual([]);
  });
});

export type { Program };
