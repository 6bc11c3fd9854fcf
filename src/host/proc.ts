// Readers of node facts from procfs, sysfs and cgroupfs. Every reader takes the filesystem root
// as an optional argument so tests can point it at a recorded tree.
import { existsSync, readFileSync } from 'node:fs';
import { PatrolError } from '../shared/errors.js';

export class HostReadError extends PatrolError {}

export interface HostRoots {
  proc: string;
  sys: string;
}

export const DEFAULT_ROOTS: HostRoots = { proc: '/proc', sys: '/sys' };

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new HostReadError('E_HOST_READ', `cannot read ${path}: ${err.code ?? err.message}`);
  }
}

/** Like readText, but undefined when the file does not exist (optional kernel features). */
export function readOptional(path: string): string | undefined {
  // Ask first: a missing file is the common case for optional interfaces (cgroup files of
  // controllers not enabled), and a thrown ENOENT costs an Error with a stack, every sweep.
  if (!existsSync(path)) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
