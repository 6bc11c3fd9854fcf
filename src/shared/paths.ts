// Where the files patrol ships beside its code are: the BPF objects, the built-in rules, the
// native addon, the dashboard's assets, package.json. Every such path starts from this one anchor,
// not from each module's own URL, because the same module runs from two places: tsc's output
// (dist/<stage>/x.js) and the bundle bin/patrol runs (dist/pack/<chunk>.js, scripts/bundle.mjs).
// Both sit two levels below the project's root, as does this file's source (src/shared/).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root directory (a checkout, or an installed package's directory). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A path below the project's root: projectPath('bpf', '.output') */
export function projectPath(...parts: string[]): string {
  return join(PROJECT_ROOT, ...parts);
}
