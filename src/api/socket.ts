// The unix socket's path: make its directory, tell a stale socket file (left by a crashed agent)
// from a live one, and create the socket owner-only from the first instant.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Server } from 'node:http';
import { PatrolError } from '../shared/errors.js';

export type SocketProbe = 'absent' | 'stale' | 'live';

/** Whether something answers on the unix socket at `path`. */
export function probeSocket(path: string, timeoutMs = 1000): Promise<SocketProbe> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve('absent');
    throw e;
  }
  if (!st.isSocket()) {
    throw new PatrolError('E_SOCKET_PATH', `${path} exists and is not a socket; remove it or choose another socket path`);
  }
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    const done = (r: SocketProbe | Error) => {
      clearTimeout(timer);
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    // a listener that does not accept within the timeout is still a listener: do not take its path
    const timer = setTimeout(() => done('live'), timeoutMs);
    s.once('connect', () => done('live'));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('stale');
      else if (e.code === 'ENOENT') done('absent');
      else if (e.code === 'EACCES' || e.code === 'EPERM') {
        done(new PatrolError('E_SOCKET_ACCESS', `cannot check the socket ${path}: permission denied`));
      } else done(new PatrolError('E_SOCKET', `cannot check the socket ${path}: ${e.message}`));
    });
  });
}

/** Makes the socket's directory (0755) if missing; removes a stale socket file; throws
 *  E_SOCKET_IN_USE when another process (another agent) answers on it. */
export async function prepareSocketPath(path: string): Promise<'fresh' | 'replaced-stale'> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const p = await probeSocket(path);
  if (p === 'live') {
    throw new PatrolError('E_SOCKET_IN_USE', `another patrol agent is answering on ${path}; stop it first`);
  }
  if (p === 'stale') {
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return 'replaced-stale';
  }
  return 'fresh';
}

/** Makes `server.listen()` create its unix socket with mode 0600: the process umask is 0177
 *  exactly while the socket is bound (bind happens synchronously inside net.Server.listen). */
export function ownerOnlyListen(server: Server): void {
  const listen = server.listen;
  server.listen = function (this: Server, ...args: unknown[]) {
    let old: number;
    try {
      old = process.umask(0o177);
    } catch (e) {
      // worker threads cannot change the umask; never bind a socket that others could reach
      throw new PatrolError('E_SOCKET', `cannot set the umask to create the API socket privately: ${(e as Error).message}`);
    }
    try {
      return (listen as (...a: unknown[]) => Server).apply(this, args);
    } finally {
      process.umask(old);
    }
  } as Server['listen'];
}

export function chmodOwnerOnly(path: string): void {
  chmodSync(path, 0o600);
}
