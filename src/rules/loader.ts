// Rule sets: read → compile everything → hand back a complete set or diagnostics, never a half
// set and never an exception other than a typed diagnostic list. Positions come from the YAML
// node ranges, so every diagnostic points at file:line:col.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import RE2 from 're2';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { EVIDENCE_KINDS, SOURCES, resolveField, type EvidenceKind, type FieldRef, type SourceKind } from './catalogue.js';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import { MAX_PATTERN_LENGTH, compilePattern } from './pattern.js';
import { OPS, compareTest, type CompiledRule, type Cond, type Leaf, type Op, type Template, type Test, type TreeNode } from './tree.js';
import { FIELD_TYPES, literal, type FieldType, type Value } from './units.js';
import { canonicalJson, versionOf } from '../shared/canonical.js';

export interface RuleLimits {
  maxRules: number;
  maxPatternLength: number;
  maxFileBytes: number;
  maxTreeDepth: number;
}

export const DEFAULT_LIMITS: RuleLimits = { maxRules: 10_000, maxPatternLength: MAX_PATTERN_LENGTH, maxFileBytes: 4 << 20, maxTreeDepth: 32 };

export interface RuleSource {
  file: string;
  text: string;
}

export interface RuleSet {
  rules: readonly CompiledRule[];
  files: readonly string[];
  /** Date.now() at compile */
  loadedAt: number;
  /** sha256 of the canonical content: each file's YAML as canonical JSON, by base name. A
   *  comment, key order or formatting change keeps it; any rule change moves it. */
  version: string;
}

export type LoadResult = { ok: true; set: RuleSet; diagnostics: [] } | { ok: false; diagnostics: Diagnostic[] };

const RULE_KEYS = ['id', 'description', 'source', 'path', 'check', 'pattern', 'fields', 'process', 'explains', 'tree'];
const LEAF_KEYS = ['cause', 'confidence', 'explanation', 'evidence', 'key'];
const ID_RE = /^[a-z0-9][a-z0-9_.-]{0,99}$/;
const CAUSE_RE = /^[a-z0-9][a-z0-9_.-]{0,99}$/;

class FileCompiler {
  readonly diags: Diagnostic[] = [];
  private readonly lc = new LineCounter();

  constructor(
    readonly file: string,
    private readonly limits: RuleLimits,
  ) {}

  err(code: DiagnosticCode, message: string, node?: Node | null, offset = 0): void {
    let line = 0;
    let col = 0;
    const start = node?.range?.[0];
    if (start !== undefined) {
      const p = this.lc.linePos(start + offset);
      line = p.line;
      col = p.col;
    }
    this.diags.push({ code, message, file: this.file, line, col });
  }

  compile(text: string): CompiledRule[] {
    const doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length) {
      for (const e of doc.errors.slice(0, 20)) {
        const p = this.lc.linePos(e.pos[0]);
        this.diags.push({ code: 'E_RULE_YAML', message: e.message.split('\n')[0]!, file: this.file, line: p.line, col: p.col });
      }
      return [];
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return []; // empty file
    if (!isMap(root)) {
      this.err('E_RULE_SHAPE', 'a rule file is a mapping with a `rules:` list', root);
      return [];
    }
    this.unknownKeys(root, ['rules']);
    const list = root.get('rules', true) as Node | undefined;
    if (list === undefined) {
      this.err('E_RULE_SHAPE', 'missing `rules:` (a list of rules)', root);
      return [];
    }
    if (!isSeq(list)) {
      this.err('E_RULE_SHAPE', '`rules:` must be a list', list);
      return [];
    }
    const out: CompiledRule[] = [];
    for (const item of list.items as Node[]) {
      const r = this.rule(item);
      if (r) out.push(r);
    }
    return out;
  }

  private pairs(m: YAMLMap): Pair<Node, Node>[] {
    return m.items as Pair<Node, Node>[];
  }

  private keyName(p: Pair<Node, Node>): string {
    return isScalar(p.key) ? String(p.key.value) : '?';
  }

  private unknownKeys(m: YAMLMap, known: readonly string[], what = ''): void {
    for (const p of this.pairs(m)) {
      const k = this.keyName(p);
      if (!known.includes(k)) this.err('E_RULE_SHAPE', `unknown key '${k}'${what}; expected one of: ${known.join(', ')}`, p.key);
    }
  }

  private str(m: YAMLMap, key: string, required: boolean): { v: string; node: Node } | null {
    const n = m.get(key, true) as Node | undefined;
    if (n === undefined) {
      if (required) this.err('E_RULE_SHAPE', `missing '${key}'`, m);
      return null;
    }
    if (!isScalar(n) || typeof n.value !== 'string') {
      this.err('E_RULE_SHAPE', `'${key}' must be a string`, n);
      return null;
    }
    return { v: n.value, node: n };
  }

  /** Offset of character `i` of a scalar's value from the node start, when that is exact
   *  (a one-line plain or single-quoted scalar without escapes); else 0 (the scalar start). */
  private offsetInScalar(node: Node, value: string, i: number): number {
    if (!isScalar(node) || value.includes('\n')) return 0;
    if (node.type === 'PLAIN') return i;
    if (node.type === 'QUOTE_SINGLE' && !value.includes("'")) return i + 1;
    if (node.type === 'QUOTE_DOUBLE' && !/["\\]/.test(value)) return i + 1;
    return 0;
  }

  private regex(src: string, node: Node): { re: RE2; names: string[] } | null {
    const c = compilePattern(src, this.limits.maxPatternLength);
    if (!c.ok) {
      for (const p of c.problems) this.err(p.code, p.message, node, this.offsetInScalar(node, src, p.offset));
      return null;
    }
    return c;
  }

  private rule(item: Node): CompiledRule | null {
    if (!isMap(item)) {
      this.err('E_RULE_SHAPE', 'a rule is a mapping (id, source, pattern, tree, …)', item);
      return null;
    }
    const before = this.diags.length;
    this.unknownKeys(item, RULE_KEYS, ' in rule');
    const id = this.str(item, 'id', true);
    if (id && !ID_RE.test(id.v)) this.err('E_RULE_SHAPE', `rule id '${id.v}' must be lowercase letters, digits, '.', '_' or '-' (up to 100)`, id.node);
    const description = this.str(item, 'description', false)?.v ?? '';
    const src = this.str(item, 'source', true);
    let source: SourceKind = 'kmsg';
    let sourceOk = false;
    if (src) {
      if ((SOURCES as readonly string[]).includes(src.v)) {
        source = src.v as SourceKind;
        sourceOk = true;
      } else this.err('E_RULE_SHAPE', `unknown source '${src.v}'; one of: ${SOURCES.join(', ')}`, src.node);
    }
    const path = this.str(item, 'path', sourceOk && source === 'log');
    if (path && source !== 'log') this.err('E_RULE_SHAPE', "'path' applies to source: log only", path.node);
    const check = this.str(item, 'check', false);
    if (check && source !== 'check') this.err('E_RULE_SHAPE', "'check' applies to source: check only", check.node);
    const checkRe = check ? this.regex(check.v, check.node)?.re ?? null : null;
    const pat = this.str(item, 'pattern', sourceOk && (source === 'kmsg' || source === 'log'));
    let pattern: RE2 | null = null;
    const captures = new Map<string, FieldType>();
    if (pat && sourceOk && source !== 'kmsg' && source !== 'log' && source !== 'check') {
      this.err('E_RULE_SHAPE', `'pattern' applies to sources kmsg, log and check (a ${source} event has no line); test its fields in the tree`, pat.node);
    } else if (pat) {
      const c = this.regex(pat.v, pat.node);
      if (c) {
        pattern = c.re;
        for (const n of c.names) captures.set(n, 'string');
      }
    }
    const fields = item.get('fields', true) as Node | undefined;
    if (fields !== undefined) {
      if (!isMap(fields)) this.err('E_RULE_SHAPE', "'fields' maps capture names to types", fields);
      else
        for (const p of this.pairs(fields)) {
          const name = this.keyName(p);
          const t = isScalar(p.value) ? String(p.value.value) : '';
          if (!(FIELD_TYPES as readonly string[]).includes(t)) this.err('E_FIELD_TYPE', `field '${name}': unknown type '${t}'; one of: ${FIELD_TYPES.join(', ')}`, p.value ?? p.key);
          else if (!captures.has(name)) {
            if (pattern) this.err('E_FIELD_UNKNOWN', `field '${name}' is not a named capture of the pattern (${[...captures.keys()].join(', ') || 'none'})`, p.key);
          } else captures.set(name, t as FieldType);
        }
    }
    const proc = this.str(item, 'process', false);
    if (proc && !captures.has(proc.v)) this.err('E_FIELD_UNKNOWN', `'process: ${proc.v}' must name a capture holding a pid`, proc.node);
    const explains: RE2[] = [];
    const ex = item.get('explains', true) as Node | undefined;
    if (ex !== undefined) {
      if (!isSeq(ex)) this.err('E_RULE_SHAPE', "'explains' is a list of check-name patterns", ex);
      else
        for (const e of ex.items as Node[]) {
          if (!isScalar(e) || typeof e.value !== 'string') this.err('E_RULE_SHAPE', 'check-name patterns are strings', e);
          else {
            const c = this.regex(e.value, e);
            if (c) explains.push(c.re);
          }
        }
    }
    const treeNode = item.get('tree', true) as Node | undefined;
    let tree: TreeNode | null = null;
    if (treeNode === undefined) this.err('E_RULE_SHAPE', "missing 'tree' (a leaf or an if/then/else node)", item);
    else tree = this.node(treeNode, { source, captures }, 0);
    if (this.diags.length > before || !id || !tree) return null;
    return {
      id: id.v,
      description,
      source,
      file: this.file,
      line: this.lc.linePos(item.range?.[0] ?? 0).line,
      path: path?.v ?? null,
      checkRe,
      pattern,
      captures,
      processField: proc?.v ?? null,
      explains,
      tree,
    };
  }

  private field(name: string, node: Node, ctx: Ctx): FieldRef | null {
    const r = resolveField(name, ctx.source, ctx.captures);
    if (typeof r === 'string') {
      this.err(name.includes('(') ? 'E_FACT_UNKNOWN' : 'E_FIELD_UNKNOWN', r, node);
      return null;
    }
    return r;
  }

  private node(n: Node, ctx: Ctx, depth: number): TreeNode | null {
    if (depth > this.limits.maxTreeDepth) {
      this.err('E_TREE_DEPTH', `tree nested deeper than ${this.limits.maxTreeDepth}`, n);
      return null;
    }
    if (!isMap(n)) {
      this.err('E_RULE_SHAPE', 'a tree node is a leaf (cause, confidence, explanation) or a branch (if, then, else)', n);
      return null;
    }
    if (n.has('if')) {
      this.unknownKeys(n, ['if', 'then', 'else'], ' in a branch');
      const cond = this.cond(n.get('if', true) as Node, ctx, depth);
      const thenN = n.get('then', true) as Node | undefined;
      if (thenN === undefined) this.err('E_RULE_SHAPE', "a branch needs 'then'", n);
      const t = thenN === undefined ? null : this.node(thenN, ctx, depth + 1);
      const elseN = n.get('else', true) as Node | undefined;
      const e = elseN === undefined ? null : this.node(elseN, ctx, depth + 1);
      if (!cond || !t || (elseN !== undefined && !e)) return null;
      return { kind: 'if', test: cond.test, cond, then: t, else: e };
    }
    return this.leaf(n, ctx);
  }

  private template(s: { v: string; node: Node }, ctx: Ctx): Template | null {
    const parts: Array<string | FieldRef> = [];
    let ok = true;
    const re = /\{([^{}]+)\}/g;
    let last = 0;
    for (let m = re.exec(s.v); m; m = re.exec(s.v)) {
      parts.push(s.v.slice(last, m.index));
      const r = resolveField(m[1]!.trim(), ctx.source, ctx.captures);
      if (typeof r === 'string') {
        this.err('E_TEMPLATE', `{${m[1]}}: ${r}`, s.node, this.offsetInScalar(s.node, s.v, m.index));
        ok = false;
      } else parts.push(r);
      last = m.index + m[0].length;
    }
    parts.push(s.v.slice(last));
    return ok ? { source: s.v, parts: parts.filter((p) => p !== '') } : null;
  }

  private leaf(n: YAMLMap, ctx: Ctx): Leaf | null {
    const before = this.diags.length;
    this.unknownKeys(n, LEAF_KEYS, ' in a leaf (a branch starts with if)');
    const cause = this.str(n, 'cause', true);
    if (cause && !CAUSE_RE.test(cause.v)) this.err('E_RULE_SHAPE', `cause '${cause.v}' must be lowercase letters, digits, '.', '_' or '-'`, cause.node);
    const cn = n.get('confidence', true) as Node | undefined;
    let confidence = 0;
    if (cn === undefined) this.err('E_RULE_SHAPE', "missing 'confidence' (0..1)", n);
    else if (!isScalar(cn) || typeof cn.value !== 'number' || !(cn.value >= 0 && cn.value <= 1)) this.err('E_VALUE', "'confidence' is a number from 0 to 1", cn);
    else confidence = cn.value;
    const ex = this.str(n, 'explanation', true);
    const explanation = ex ? this.template(ex, ctx) : null;
    const k = this.str(n, 'key', false);
    const key = k ? this.template(k, ctx) : null;
    const evidence: EvidenceKind[] = [];
    const ev = n.get('evidence', true) as Node | undefined;
    if (ev !== undefined) {
      if (!isSeq(ev)) this.err('E_RULE_SHAPE', "'evidence' is a list", ev);
      else
        for (const e of ev.items as Node[]) {
          const v = isScalar(e) ? String(e.value) : '';
          if ((EVIDENCE_KINDS as readonly string[]).includes(v)) evidence.push(v as EvidenceKind);
          else this.err('E_EVIDENCE', `unknown evidence '${v}'; one of: ${EVIDENCE_KINDS.join(', ')}`, e);
        }
    }
    if (this.diags.length > before || !cause || !explanation) return null;
    return { kind: 'leaf', cause: cause.v, confidence, explanation, evidence, key };
  }

  private cond(n: Node | undefined, ctx: Ctx, depth: number): Cond | null {
    if (n === undefined || !isMap(n)) {
      this.err('E_CONDITION', 'a condition is a mapping: {field: F, OP: V}, {all: [...]}, {any: [...]} or {not: C}', n ?? null);
      return null;
    }
    if (depth > this.limits.maxTreeDepth) {
      this.err('E_TREE_DEPTH', `condition nested deeper than ${this.limits.maxTreeDepth}`, n);
      return null;
    }
    for (const combinator of ['all', 'any'] as const) {
      if (!n.has(combinator)) continue;
      this.unknownKeys(n, [combinator], ` next to '${combinator}'`);
      const list = n.get(combinator, true) as Node;
      if (!isSeq(list) || list.items.length === 0) {
        this.err('E_CONDITION', `'${combinator}' takes a non-empty list of conditions`, list);
        return null;
      }
      const conds = (list.items as Node[]).map((c) => this.cond(c, ctx, depth + 1));
      if (conds.some((c) => c === null)) return null;
      const items = conds as Cond[];
      const ts: Test[] = items.map((c) => c.test);
      const test: Test = combinator === 'all' ? (s) => ts.every((t) => t(s)) : (s) => ts.some((t) => t(s));
      return { kind: combinator, items, test };
    }
    if (n.has('not')) {
      this.unknownKeys(n, ['not'], " next to 'not'");
      const c = this.cond(n.get('not', true) as Node, ctx, depth + 1);
      if (!c) return null;
      const t = c.test;
      return { kind: 'not', item: c, test: (s) => !t(s) };
    }
    const f = this.str(n, 'field', true);
    if (!f) return null;
    const ref = this.field(f.v, f.node, ctx);
    const ops = this.pairs(n).filter((p) => this.keyName(p) !== 'field');
    if (ops.length !== 1) {
      this.err('E_CONDITION', `a test has one operator besides 'field': ${OPS.join(', ')}`, n);
      return null;
    }
    const opPair = ops[0]!;
    const op = this.keyName(opPair) as Op;
    if (!OPS.includes(op)) {
      this.err('E_CONDITION', `unknown operator '${op}'; one of: ${OPS.join(', ')}`, opPair.key);
      return null;
    }
    if (!ref) return null;
    const vn = opPair.value as Node | null;
    const raw = vn && isScalar(vn) ? vn.value : vn && isSeq(vn) ? (vn.items as Node[]).map((i) => (isScalar(i) ? i.value : undefined)) : undefined;
    const bad = (why: string) => {
      this.err('E_VALUE', `${f.v} ${op}: ${why}`, vn ?? opPair.key);
      return null;
    };
    const t = this.test(ref, op, raw, vn, bad);
    return t ? { kind: 'cmp', ref, op, test: t } : null;
  }

  private test(ref: FieldRef, op: Op, raw: unknown, vn: Node | null, bad: (why: string) => null): Test | null {
    const name = ref.name;
    switch (op) {
      case 'exists':
        return typeof raw === 'boolean' ? compareTest(ref, op, raw) : bad('takes true or false');
      case 'matches': {
        if (typeof raw !== 'string') return bad('takes an RE2 pattern string');
        const c = this.regex(raw, vn!);
        return c ? compareTest(ref, op, c.re) : null;
      }
      case 'contains':
        return typeof raw === 'string' ? compareTest(ref, op, raw) : bad('takes a string');
      case 'in': {
        if (!Array.isArray(raw)) return bad('takes a list');
        const vals = raw.map((x) => literal(x, ref.type));
        if (vals.some((x) => x === undefined)) return bad(`every value must be a ${ref.type}`);
        return compareTest(ref, op, vals as Value[]);
      }
      default: {
        if (['gt', 'gte', 'lt', 'lte'].includes(op) && (ref.type === 'string' || ref.type === 'bool')) {
          return bad(`'${name}' is a ${ref.type}; order comparisons need a number`);
        }
        const v = literal(raw, ref.type);
        if (v === undefined) return bad(`${JSON.stringify(raw)} is not a ${ref.type}${ref.type === 'bytes' ? ' (e.g. 64M)' : ref.type === 'duration' ? ' (e.g. 5m)' : ''}`);
        return compareTest(ref, op, v);
      }
    }
  }
}

interface Ctx {
  source: SourceKind;
  captures: ReadonlyMap<string, FieldType>;
}

/** Compiles every source; all or nothing. Never throws: any surprise becomes a diagnostic. */
export function compileRuleSet(sources: readonly RuleSource[], limits: RuleLimits = DEFAULT_LIMITS): LoadResult {
  const diags: Diagnostic[] = [];
  const rules: CompiledRule[] = [];
  for (const s of sources) {
    if (Buffer.byteLength(s.text) > limits.maxFileBytes) {
      diags.push({ code: 'E_RULE_FILE_SIZE', message: `file is ${Buffer.byteLength(s.text)} bytes; the bound is ${limits.maxFileBytes}`, file: s.file, line: 0, col: 0 });
      continue;
    }
    const fc = new FileCompiler(s.file, limits);
    try {
      rules.push(...fc.compile(s.text));
    } catch (e) {
      fc.diags.push({ code: 'E_RULE_SHAPE', message: `unexpected: ${(e as Error)?.message ?? String(e)}`, file: s.file, line: 0, col: 0 });
    }
    diags.push(...fc.diags);
  }
  const seen = new Map<string, CompiledRule>();
  for (const r of rules) {
    const prev = seen.get(r.id);
    if (prev) diags.push({ code: 'E_RULE_DUPLICATE', message: `rule id '${r.id}' is already defined at ${prev.file}:${prev.line}`, file: r.file, line: r.line, col: 1 });
    else seen.set(r.id, r);
  }
  if (rules.length > limits.maxRules) {
    diags.push({ code: 'E_RULE_COUNT', message: `${rules.length} rules; the bound is ${limits.maxRules}`, file: sources[0]?.file ?? '(none)', line: 0, col: 0 });
  }
  if (diags.length) return { ok: false, diagnostics: diags };
  return { ok: true, set: { rules, files: sources.map((s) => s.file), loadedAt: Date.now(), version: ruleSetVersion(sources) }, diagnostics: [] };
}

/** The version of a set of (valid) rule sources; see RuleSet.version. */
export function ruleSetVersion(sources: readonly RuleSource[]): string {
  return versionOf(sources.map((s) => [basename(s.file), canonicalJson(parseDocument(s.text).toJS({ maxAliasCount: 100 }))] as const));
}

/** Reads a file or every *.yaml/*.yml in a directory (sorted), then compiles. */
export function loadRuleFiles(path: string, limits: RuleLimits = DEFAULT_LIMITS): LoadResult {
  const sources: RuleSource[] = [];
  const diags: Diagnostic[] = [];
  const read = (file: string) => {
    try {
      const size = statSync(file).size;
      if (size > limits.maxFileBytes) {
        diags.push({ code: 'E_RULE_FILE_SIZE', message: `file is ${size} bytes; the bound is ${limits.maxFileBytes}`, file, line: 0, col: 0 });
        return;
      }
      sources.push({ file, text: readFileSync(file, 'utf8') });
    } catch (e) {
      diags.push({ code: 'E_RULE_FILE', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file, line: 0, col: 0 });
    }
  };
  try {
    if (statSync(path).isDirectory()) {
      for (const f of readdirSync(path).filter((f) => /\.ya?ml$/.test(f)).sort()) read(join(path, f));
    } else read(path);
  } catch (e) {
    diags.push({ code: 'E_RULE_FILE', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file: path, line: 0, col: 0 });
  }
  if (diags.length) return { ok: false, diagnostics: diags };
  return compileRuleSet(sources, limits);
}

/** Holds the active set. A reload that fails leaves it untouched. */
export class RuleRegistry {
  private current: RuleSet;
  private listeners = new Set<(s: RuleSet) => void>();

  constructor(initial: RuleSet = { rules: [], files: [], loadedAt: Date.now(), version: versionOf([]) }) {
    this.current = initial;
  }

  get set(): RuleSet {
    return this.current;
  }

  /** Compiles `path`; on success swaps the set in one assignment, else keeps the old one. */
  reload(path: string, limits?: RuleLimits): LoadResult {
    const r = loadRuleFiles(path, limits);
    if (r.ok) {
      this.current = r.set;
      for (const l of this.listeners) l(r.set);
    }
    return r;
  }

  onSwap(l: (s: RuleSet) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
