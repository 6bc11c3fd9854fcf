// Single-instance lock: a pid file created with O_EXCL. A file left by a dead agent (kill -9,
// power loss) is recognised by its pid no longer running patrol, and taken over.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { PatrolError } from '../shared/errors.js';

export class AlreadyRunningError extends PatrolError {
  constructor(
    readonly pid: number,
    lockFile: string,
  ) {
    super('E_ALREADY_RUNNING', `another patrol agent is running (pid ${pid}, lock ${lockFile}); stop it first (kill ${pid})`);
  }
}

function isPatrolProcess(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /patrol/.test(cmd);
  } catch {
    return false;
  }
}

export class PidLock {
  private held = false;

  constructor(readonly path: string) {}

  /** Takes the lock or throws AlreadyRunningError naming the running agent. */
  acquire(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.path, 'wx', 0o644);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        this.held = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = Number.parseInt(readFileSync(this.path, 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0 && isPatrolProcess(pid)) throw new AlreadyRunningError(pid, this.path);
      // Stale: move it aside atomically so two starting agents cannot both delete a fresh lock.
      try {
        renameSync(this.path, `${this.path}.stale.${process.pid}`);
        unlinkSync(`${this.path}.stale.${process.pid}`);
      } catch {
        /* another agent took it over first; retry */
      }
    }
    throw new PatrolError('E_LOCK', `could not take the lock ${this.path}`);
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if (Number.parseInt(readFileSync(this.path, 'utf8'), 10) === process.pid) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}
