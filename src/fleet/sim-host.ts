// A simulated member's bundle host, for the tests and the benchmark: members that run the same
// fleet module as an agent (registration, observed state, desired watch, bundle keeper, the
// rollout controller when they lead) but no sensors. It applies a bundle as far as that can go
// without them: every rule and check compiled, each object's tp_btf programs checked against a
// kernel's BTF tracepoints (this kernel's, or a set given to simulate another). Not used by the
// agent (src/app/bundle-host.ts applies bundles there, through hot reload).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkFilesIn, compileFiles } from '../checks/index.js';
import { loadRuleFiles } from '../rules/index.js';
import { kernelBtfTracepoints, missingTracepoints, native } from '../kernel/index.js';
import { BPF_OBJECTS } from './bundle.js';
import type { BundleApplyOutcome, BundleHost, StagedBundle } from './bundle-keeper.js';

export interface SimulatedHostOptions {
  /** the simulated kernel's BTF tracepoints (default: this kernel's) */
  tracepoints?: ReadonlySet<string>;
  /** how long an apply takes, ms (default 0) */
  applyMs?: number;
}

export class SimulatedHost implements BundleHost {
  /** bundles applied, in order (null: back to no bundle) */
  readonly applied: Array<string | null> = [];

  constructor(private readonly o: SimulatedHostOptions = {}) {}

  async apply(next: StagedBundle | null): Promise<BundleApplyOutcome> {
    if (this.o.applyMs) await new Promise((r) => setTimeout(r, this.o.applyMs));
    if (next) {
      const parts = new Set(next.manifest.parts);
      if (parts.has('rules')) {
        const r = loadRuleFiles(join(next.dir, 'rules'));
        if (!r.ok) return { result: 'rejected', code: r.diagnostics[0]?.code ?? 'E_RULES', reason: r.diagnostics[0]?.message ?? 'rules' };
      }
      if (parts.has('checks')) {
        const errs = compileFiles(checkFilesIn(join(next.dir, 'checks'))).diagnostics.filter((d) => d.severity === 'error');
        if (errs.length) return { result: 'rejected', code: errs[0]!.code, reason: errs[0]!.message };
      }
      if (parts.has('bpf')) {
        const have = this.o.tracepoints ?? kernelBtfTracepoints();
        for (const f of BPF_OBJECTS) {
          const p = join(next.dir, 'bpf', f);
          if (!existsSync(p)) continue;
          const n = native();
          const obj = n.open(p, {});
          try {
            const missing = missingTracepoints(n.inspect(obj), have);
            if (missing.length) return { result: 'rejected', code: 'E_SENSOR_BTF', reason: `${f}: this kernel's BTF lacks ${missing.map((m) => `btf_trace_${m.tracepoint}`).join(', ')}`, incompatible: true };
          } finally {
            n.close(obj);
          }
        }
      }
    }
    this.applied.push(next?.id ?? null);
    return { result: 'applied' };
  }
}
