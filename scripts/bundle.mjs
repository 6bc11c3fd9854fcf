// Bundles the CLI and the agent (tsc's output, dist/) into dist/pack/ with esbuild: what
// bin/patrol runs. Why: tsc's output is ~200 ES modules of ours and as many again of small
// packages, each resolved, read, linked and kept (a module record, its URL, its source) on its
// own. Bundled, with split chunks so that a command loads only what it imports, `patrol status`
// starts in two thirds of the time with 11 MB less, and the agent holds 2-4 MB less
// (bench/README.md, "Session 26").
//
// Identifiers are kept (error classes name themselves from `new.target.name`, and stack traces
// stay readable); whitespace and syntax are minified. Source maps chain back to src/*.ts through
// tsc's maps: `NODE_OPTIONS=--enable-source-maps patrol ...` prints TypeScript positions.
//
//   node scripts/bundle.mjs        (scripts/build.sh runs it after tsc)
import { build } from 'esbuild';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = join(root, 'dist', 'cli', 'main.js');
// the agent is also an entry of its own (dist/pack/agent.js), so tests can load what it loads
const agentEntry = join(root, 'dist', 'app', 'agent.js');
const out = join(root, 'dist', 'pack');
const staging = `${out}.tmp`;
if (!existsSync(entry)) {
  console.error(`bundle: ${entry} missing: run tsc first (bash scripts/build.sh)`);
  process.exit(1);
}

// Kept as packages in node_modules, loaded at run time: each finds files beside its own code.
const EXTERNAL = [
  'better-sqlite3', 're2', // native addons, found through their package directories
  'hdr-histogram-js', // loaded through createRequire (src/metrics/hdr.ts)
  'etcd3', '@grpc/*', 'protobufjs', 'protobufjs/*', // read their .proto files from __dirname
  '@opentelemetry/*', // the OTLP exporters reach protobufjs and grpc
  'pino', 'thread-stream', // pino's transports start worker threads from file paths
];

rmSync(staging, { recursive: true, force: true });
await build({
  entryPoints: { main: entry, agent: agentEntry },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  outdir: staging,
  chunkNames: '[name]-[hash]',
  external: EXTERNAL,
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  sourcesContent: false,
  // CommonJS packages inside the bundle call require(); an ES module has none of its own
  banner: { js: "import{createRequire as __patrolCreateRequire}from'node:module';const require=__patrolCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// A bundled package that looks for files beside its own code would fail only when that code
// runs: refuse the bundle instead (add the package to EXTERNAL).
const stray = readdirSync(staging)
  .filter((f) => f.endsWith('.js'))
  .filter((f) => /\b__dirname\b|\b__filename\b/.test(readFileSync(join(staging, f), 'utf8')));
if (stray.length > 0) {
  console.error(`bundle: ${stray.join(', ')} use __dirname/__filename: mark the package that does as external in scripts/bundle.mjs`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
