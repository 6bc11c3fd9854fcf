// The file output: one NDJSON line per alert (the webhook's alert object), appended and synced
// before the delivery counts; rotated by size (path → path.1 → … → path.N, the oldest removed).
// Owner-only (0600): alerts quote processes and their (redacted) arguments.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DeliveryError, type AlertSender, type FileOutputConfig, type OutboundAlert } from './types.js';

export class FileSender implements AlertSender {
  rotations = 0;

  constructor(readonly config: FileOutputConfig) {}

  async send(alerts: readonly OutboundAlert[]): Promise<void> {
    const text = alerts.map((a) => JSON.stringify({ ...a, at: new Date(a.at).toISOString() }) + '\n').join('');
    try {
      mkdirSync(dirname(this.config.path), { recursive: true, mode: 0o750 });
      let size = 0;
      try {
        size = statSync(this.config.path).size;
      } catch {
        /* a new file */
      }
      if (size > 0 && size + Buffer.byteLength(text) > this.config.maxBytes) this.rotate();
      const fd = openSync(this.config.path, 'a', 0o600);
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw new DeliveryError(`${this.config.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, true);
    }
  }

  private rotate(): void {
    const p = this.config.path;
    const n = this.config.maxFiles;
    if (n <= 0) {
      rmSync(p, { force: true });
    } else {
      rmSync(`${p}.${n}`, { force: true });
      for (let i = n - 1; i >= 1; i--) {
        try {
          renameSync(`${p}.${i}`, `${p}.${i + 1}`);
        } catch {
          /* not there yet */
        }
      }
      renameSync(p, `${p}.1`);
    }
    this.rotations++;
  }
}
