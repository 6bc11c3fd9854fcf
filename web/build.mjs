// Bundles the dashboard (web/src) into web/dist with esbuild: one script, one stylesheet (ours
// and uPlot's, from node_modules: never a CDN), and index.html. No inline script or style, so
// the server's Content-Security-Policy can forbid them.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = here('./dist/');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: here('./src/main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: false,
});
copyFileSync(here('./index.html'), `${out}/index.html`);
