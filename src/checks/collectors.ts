// The real sources for a node: facts from src/host, processes from /proc (src/process's reader),
// system facts from the file system. The agent replaces `processes` with its process table and
// adds `windows`; a standalone `patrol check` uses these as they are.
import { readFile, stat, open, statfs } from 'node:fs/promises';
import { cpus } from 'node:os';
import {
  cpuUsage as hostCpuUsage, readCpuStat, readFileNr, readLoadavg, readMeminfo, readOptional, readPsi, readUptimeSeconds, type CpuTimes,
} from '../host/index.js';
import { RealProcFs } from '../process/index.js';
import type { FsFacts, NodeSource, ProcessInfo, ProcessSource, SystemSource } from './sources.js';
import { Unavailable } from './evaluator.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class HostNodeSource implements NodeSource {
  private prevCpu: CpuTimes | null = null;

  constructor(private readonly procRoot = '/proc') {}

  async cpuUsage(): Promise<number> {
    if (this.prevCpu === null) {
      this.prevCpu = readCpuStat(this.procRoot).total;
      await sleep(100);
    }
    const cur = readCpuStat(this.procRoot).total;
    const u = hostCpuUsage(this.prevCpu, cur);
    this.prevCpu = cur;
    return u.busyPct / 100;
  }

  memory() {
    const m = readMeminfo(this.procRoot);
    return { totalBytes: m.totalBytes, availableBytes: m.availableBytes, swapTotalBytes: m.swapTotalBytes, swapFreeBytes: m.swapFreeBytes };
  }

  loadavg(): [number, number, number] {
    const l = readLoadavg(this.procRoot);
    return [l.load1, l.load5, l.load15];
  }

  cpuCount(): number {
    return Math.max(1, cpus().length);
  }

  /** Asynchronous (libuv's thread pool), unlike src/host's fsUsage: statfs on a hung NFS mount
   *  blocks its thread, and the check then times out instead of freezing the agent. Same
   *  arithmetic as fsUsage (df's: used / (used + available)). */
  async fsUsage(path: string): Promise<FsFacts> {
    let s;
    try {
      s = await statfs(path);
    } catch (e) {
      throw new Unavailable(`cannot statfs ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const used = s.blocks - s.bfree;
    return {
      usage: used + s.bavail > 0 ? used / (used + s.bavail) : 0,
      availableBytes: s.bavail * s.bsize,
      inodeUsage: s.files > 0 ? (s.files - s.ffree) / s.files : 0,
    };
  }

  psi(resource: 'cpu' | 'memory' | 'io', kind: 'some' | 'full', windowS: 10 | 60 | 300): number {
    const p = readPsi(resource, this.procRoot);
    if (p === undefined) throw new Unavailable('this kernel has no pressure stall information (/proc/pressure)');
    const line = kind === 'some' ? p.some : p.full;
    if (line === undefined) throw new Unavailable(`this kernel reports no 'full' pressure for ${resource}`);
    return (windowS === 10 ? line.avg10 : windowS === 60 ? line.avg60 : line.avg300) / 100;
  }

  fileHandles() {
    const f = readFileNr(this.procRoot);
    return { allocated: f.allocated, max: f.max };
  }

  uptimeSeconds(): number {
    return readUptimeSeconds(this.procRoot);
  }

  oomKillCounter(): number | null {
    // one key of /proc/vmstat (src/host has no vmstat reader yet)
    const text = readOptional(`${this.procRoot}/vmstat`);
    const m = text === undefined ? null : /^oom_kill (\d+)$/m.exec(text);
    return m === null ? null : Number(m[1]);
  }
}

/** Processes from /proc: one stat read per process (~40 µs each). Checks that run together
 *  (zombie_count and d_state_count in the same round) share one scan: a list is reused for
 *  `maxAgeMs` (default 1 s). */
export class ProcFsProcessSource implements ProcessSource {
  private readonly fs: RealProcFs;
  private cached: { at: number; list: ProcessInfo[] } | null = null;

  constructor(
    procRoot = '/proc',
    private readonly maxAgeMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.fs = new RealProcFs(procRoot);
  }

  list(): ProcessInfo[] {
    const t = this.now();
    if (this.cached !== null && t - this.cached.at < this.maxAgeMs) return this.cached.list;
    const out: ProcessInfo[] = [];
    for (const pid of this.fs.listPids()) {
      const st = this.fs.readStat(pid);
      if (st !== null) out.push({ pid, comm: st.comm, state: st.state });
    }
    this.cached = { at: t, list: out };
    return out;
  }
}

/** Ports in LISTEN (state 0A) in the text of /proc/net/tcp or tcp6. */
export function parseListeningPorts(text: string, into: Set<number> = new Set()): Set<number> {
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    // "  0: 00000000:0016 00000000:0000 0A ..." → local address, remote address, state
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '0A') continue;
    const colon = f[1]!.lastIndexOf(':');
    const port = Number.parseInt(f[1]!.slice(colon + 1), 16);
    if (Number.isInteger(port)) into.add(port);
  }
  return into;
}

export class FsSystemSource implements SystemSource {
  constructor(private readonly procRoot = '/proc') {}

  async listeningPorts(): Promise<Set<number>> {
    const ports = new Set<number>();
    let any = false;
    for (const f of ['tcp', 'tcp6']) {
      try {
        parseListeningPorts(await readFile(`${this.procRoot}/net/${f}`, 'latin1'), ports);
        any = true;
      } catch {
        // tcp6 is absent without IPv6
      }
    }
    if (!any) throw new Unavailable(`cannot read ${this.procRoot}/net/tcp`);
    return ports;
  }

  async mtimeMs(path: string): Promise<number | null> {
    try {
      return (await stat(path)).mtimeMs;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw new Unavailable(`${path}: ${code ?? (e as Error).message}`);
    }
  }

  async readText(path: string, maxBytes: number): Promise<string> {
    const r = await this.readFrom(path, 0, maxBytes);
    return r.data.toString('utf8');
  }

  async readFrom(path: string, offset: number, maxBytes: number): Promise<{ data: Buffer; size: number; ino: number }> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      const len = Math.max(0, Math.min(maxBytes, st.size - offset));
      const data = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(data, got, len - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return { data: data.subarray(0, got), size: st.size, ino: st.ino };
    } finally {
      await fh.close();
    }
  }
}
