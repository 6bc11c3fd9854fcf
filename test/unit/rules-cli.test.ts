// `patrol rules check`: exit code, diagnostics with a caret, --json.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runRulesCheck } from '../../src/cli/rules.js';

const PACK = fileURLToPath(new URL('../../rules', import.meta.url));
const sink = () => {
  let s = '';
  return { write: (x: string) => (s += x), get text() { return s; } };
};

describe('patrol rules check', () => {
  it('accepts the built-in pack', () => {
    const out = sink();
    expect(runRulesCheck([PACK], {}, out, sink())).toBe(0);
    expect(out.text).toMatch(/rules: ok, 13 rules\n$/);
  });

  it('rejects a bad file with positions, a caret and exit 1; --json gives the diagnostics', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'patrol-rc-')), 'bad.yaml');
    writeFileSync(f, "rules:\n  - id: x\n    source: kmsg\n    pattern: 'ok (?<=no)'\n    tree: { cause: c, confidence: 0.5, explanation: e }\n");
    const out = sink();
    const err = sink();
    expect(runRulesCheck([f], {}, out, err)).toBe(1);
    expect(err.text).toBe(
      `${f}:4:18: E_PATTERN_LOOKAROUND: lookbehind (?<= is not supported by RE2; match the text itself or test it in the decision tree\n` +
        `      pattern: 'ok (?<=no)'\n` +
        `  ${' '.repeat(17)}^\n` +
        `1 problem; nothing was loaded\n`,
    );
    const j = sink();
    expect(runRulesCheck([f], { json: true }, j, sink())).toBe(1);
    expect(JSON.parse(j.text)).toMatchObject({ ok: false, files: [{ file: f, ok: false, rules: 0, diagnostics: [{ code: 'E_PATTERN_LOOKAROUND', line: 4, col: 18 }] }] });
  });

  it('a missing file is a diagnostic, not a crash', () => {
    const err = sink();
    expect(runRulesCheck(['/nonexistent/rules.yaml'], {}, sink(), err)).toBe(1);
    expect(err.text).toMatch(/^\/nonexistent\/rules.yaml: E_RULE_FILE: cannot read: ENOENT/);
  });
});
