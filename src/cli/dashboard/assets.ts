// The dashboard's files: web/dist (built by scripts/build.sh with esbuild), read once at start
// into memory. Only these names are served, so no request path ever reaches the filesystem.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { PatrolError } from '../../shared/errors.js';
import { projectPath } from '../../shared/paths.js';

/** web/dist, with a trailing slash */
export const WEB_ROOT = projectPath('web', 'dist') + '/';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

export interface Asset {
  type: string;
  body: Buffer;
}

/** URL path ("/app.js") → file. "/" is index.html. */
export function loadAssets(root = WEB_ROOT): Map<string, Asset> {
  const out = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    throw new PatrolError('E_DASHBOARD_ASSETS', `the dashboard is not built (no ${root}); run: bash scripts/build.sh`);
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    const path = join(root, name);
    if (type === undefined || !statSync(path).isFile()) continue;
    out.set(`/${name}`, { type, body: readFileSync(path) });
  }
  const index = out.get('/index.html');
  if (index === undefined) throw new PatrolError('E_DASHBOARD_ASSETS', `the dashboard is not built (no index.html in ${root}); run: bash scripts/build.sh`);
  out.set('/', index);
  return out;
}
