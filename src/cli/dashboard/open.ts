// `patrol dashboard --open`: start a browser where one exists (a graphical session and one of
// the usual openers). Under sudo the browser runs as the user who called sudo, not as root
// (browsers refuse root or run unsandboxed).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const OPENERS = ['xdg-open', 'sensible-browser', 'x-www-browser', 'chromium', 'google-chrome', 'firefox'];

function which(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Starts a browser on `url`; resolves with what was started, or why nothing was. */
export function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): { opened: true; with: string } | { opened: false; why: string } {
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return { opened: false, why: 'no graphical session here (DISPLAY and WAYLAND_DISPLAY are unset)' };
  const opener = OPENERS.map((n) => which(n, env.PATH)).find((p) => p !== null);
  if (opener === undefined || opener === null) return { opened: false, why: `no browser opener found (${OPENERS.join(', ')})` };
  const sudoUser = env.SUDO_USER;
  const runuser = process.getuid?.() === 0 && sudoUser && sudoUser !== 'root' ? which('runuser', env.PATH) : null;
  const [cmd, args] = runuser ? [runuser, ['-u', sudoUser!, '--', opener, url]] : [opener, [url]];
  try {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true, env });
    child.on('error', () => {});
    child.unref();
  } catch (e) {
    return { opened: false, why: (e as Error).message };
  }
  return { opened: true, with: opener };
}
