// What the agent keeps across restarts for the fleet: a random instance id (tells its own
// previous registration from another agent with the same node name), and the desired-state
// watch position with the history of what it applied, so a restart resumes from the last
// revision and applies nothing twice. One small JSON file, replaced atomically (write + rename):
// the applied entries and the revision they advance to land together or not at all.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../shared/log.js';

export interface AppliedEntry {
  /** the etcd revision applied (for a resync: the revision of the snapshot read) */
  revision: number;
  /** the bundle this node should run after it (null: none desired) */
  bundle: string | null;
  /** the desired key it comes from (null: none) */
  key: string | null;
  cause: 'watch' | 'resync';
  /** ms since the epoch */
  at: number;
}

export interface ResyncEntry {
  revision: number;
  reason: string;
  at: number;
}

export interface FleetStateData {
  schema: 1;
  instance: string;
  /** the etcd cluster the revisions belong to ('' before the first read) */
  cluster_id: string;
  /** every desired revision up to this one was seen */
  revision: number;
  /** the relevant desired keys at `revision`: key → {bundle, mod_revision} */
  entries: Record<string, { bundle: string | null; mod_revision: number }>;
  effective: { bundle: string | null; key: string | null; revision: number } | null;
  applied_total: number;
  /** the newest applied entries, oldest first */
  history: AppliedEntry[];
  resyncs: ResyncEntry[];
}

export const HISTORY_MAX = 256;
export const RESYNCS_MAX = 16;

export class FleetStateFile {
  data: FleetStateData;
  /** writes that failed (the agent goes on; a restart may then re-apply) */
  writeErrors = 0;

  constructor(
    readonly path: string | null,
    private readonly log: Logger,
  ) {
    this.data = this.load();
  }

  private fresh(): FleetStateData {
    return { schema: 1, instance: randomUUID(), cluster_id: '', revision: 0, entries: {}, effective: null, applied_total: 0, history: [], resyncs: [] };
  }

  private load(): FleetStateData {
    if (this.path === null) return this.fresh();
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ path: this.path, err: (e as Error).message }, 'fleet: cannot read the state file; starting afresh');
      return this.fresh();
    }
    try {
      const d = JSON.parse(text) as Partial<FleetStateData>;
      if (d.schema !== 1 || typeof d.instance !== 'string' || typeof d.revision !== 'number') throw new Error('not a fleet state file');
      return { ...this.fresh(), ...d } as FleetStateData;
    } catch (e) {
      this.log.warn({ path: this.path, err: (e as Error).message }, 'fleet: the state file is damaged; starting afresh (desired state is re-read)');
      return this.fresh();
    }
  }

  save(): void {
    if (this.path === null) return;
    const tmp = `${this.path}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
      writeFileSync(tmp, JSON.stringify(this.data), { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch (e) {
      this.writeErrors++;
      if (this.writeErrors === 1 || this.writeErrors % 100 === 0) this.log.warn({ path: this.path, err: (e as Error).message, errors: this.writeErrors }, 'fleet: cannot write the state file');
    }
  }
}
