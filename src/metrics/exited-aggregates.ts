// Exited processes beyond metrics.max_exited, per sub-window of their exit time: the most
// expensive few are kept whole (top by CPU time and top by peak RSS of each sub-window, so the top
// of any window is among them), the others are summed by (comm, cgroup). Every structure here is
// bounded by count: sub-windows × (2 × KEPT_PER_SLOT records + MAX_CELLS_PER_SLOT cells).
import { NO_CGROUP, joinCgroupId, splitCgroupId } from './cgroup-id.js';
import type { ExitedRecord } from './exited.js';
import { DOUBLE_ZERO } from '../shared/numbers.js';

/** Records kept whole per sub-window, by CPU time and again by peak RSS. */
export const KEPT_PER_SLOT = 8;
/** (comm, cgroup) aggregates per sub-window; beyond, exits go to one OTHER_COMM row. */
export const MAX_CELLS_PER_SLOT = 256;
export const OTHER_COMM = '(other)';

/** Exited processes of one (comm, cgroup), summed. */
export interface AggregateCell {
  comm: string;
  cgroupId: bigint | null;
  count: number;
  /** Σ CPU time, ns: exact (each exit's own figure) */
  cpuNs: number;
  /** Σ seconds the processes' CPU figures cover (their lifetimes) */
  weightS: number;
  /** Σ and max of the processes' average CPU %, for `by comm` queries */
  cpuPctSum: number;
  cpuPctMax: number;
  /** exit time and CPU % of the newest */
  lastT: number;
  lastPct: number;
  rssMaxBytes: number;
  readBytes: number;
  writeBytes: number;
  /** Σ and max of the processes' IO rates, bytes/s, for `by comm` queries */
  readRateSum: number;
  writeRateSum: number;
  readRateMax: number;
  writeRateMax: number;
}

/** The columns ExitAggregates reads from the ring (ExitedProcesses). */
export interface ExitColumns {
  t1At(i: number): number;
  cpuNsAt(i: number): number;
  rssMaxAt(i: number): number;
  weightAt(i: number): number;
  readAt(i: number): number;
  writeAt(i: number): number;
  cgroupHiAt(i: number): number;
  cgroupLoAt(i: number): number;
  commAt(i: number): string;
  record(i: number): ExitedRecord;
}

interface Slot {
  index: number;
  /** sorted by CPU time, then by peak RSS, most first; at most KEPT_PER_SLOT each */
  byCpu: ExitedRecord[];
  byRss: ExitedRecord[];
  /** comm → its cells (one per cgroup, usually one) */
  cells: Map<string, AggregateCell[]>;
  cellCount: number;
}

const HALVES = new Float64Array(2);

export class ExitAggregates {
  private readonly slots: (Slot | undefined)[];
  /** exits summed into a cell instead of kept whole */
  aggregated = 0;
  /** of those, summed into the OTHER_COMM cell because a sub-window had MAX_CELLS_PER_SLOT cells */
  overflowed = 0;
  private lastExpiredIndex = -Infinity;

  constructor(private readonly maxWindowMs: number, private readonly slotMs: number) {
    this.slots = new Array(Math.ceil(maxWindowMs / slotMs) + 1);
  }

  /** Takes ring record i: kept whole if it is among the most expensive of its sub-window. */
  add(src: ExitColumns, i: number): void {
    const slot = this.slotFor(src.t1At(i));
    if (!slot) return; // older than any window
    const cpu = src.cpuNsAt(i), rss = src.rssMaxAt(i);
    const intoCpu = ranks(slot.byCpu, cpu, cpuOf);
    const intoRss = ranks(slot.byRss, rss, rssOf);
    if (!intoCpu && !intoRss) {
      this.fold(slot, src.commAt(i), src.cgroupHiAt(i), src.cgroupLoAt(i), src.t1At(i), src.weightAt(i), cpu, rss, src.readAt(i), src.writeAt(i));
      return;
    }
    const rec = src.record(i);
    if (intoCpu) this.displaced(slot, insert(slot.byCpu, rec, cpuOf), slot.byRss);
    if (intoRss) this.displaced(slot, insert(slot.byRss, rec, rssOf), slot.byCpu);
  }

  /** Kept records whose exit falls in (startMs, nowMs], appended to out. */
  keptIn(startMs: number, nowMs: number, out: ExitedRecord[]): void {
    for (const s of this.slotsIn(startMs, nowMs)) {
      for (const r of s.byCpu) if (r.t1Ms > startMs && r.t1Ms <= nowMs) out.push(r);
      for (const r of s.byRss) if (r.t1Ms > startMs && r.t1Ms <= nowMs && !s.byCpu.includes(r)) out.push(r);
    }
  }

  /** Cells of the sub-windows overlapping (startMs, nowMs], merged per (comm, cgroup). The edge
   *  sub-window counts whole: window edges are exact to one sub-window. */
  cells(startMs: number, nowMs: number): AggregateCell[] {
    const merged = new Map<string, AggregateCell>();
    for (const s of this.slotsIn(startMs, nowMs)) {
      for (const list of s.cells.values()) {
        for (const c of list) {
          const key = `${c.comm}\0${c.cgroupId ?? ''}`;
          const m = merged.get(key);
          if (m) mergeCell(m, c);
          else merged.set(key, { ...c });
        }
      }
    }
    return [...merged.values()];
  }

  findKept(execId: string): ExitedRecord | undefined {
    let best: ExitedRecord | undefined;
    for (const s of this.slots) {
      if (!s) continue;
      for (const r of [...s.byCpu, ...s.byRss]) if (r.execId === execId && (!best || r.t1Ms > best.t1Ms)) best = r;
    }
    return best;
  }

  /** Records kept whole, over all sub-windows. */
  get keptCount(): number {
    let n = 0;
    for (const s of this.slots) if (s) n += s.byCpu.length + s.byRss.filter((r) => !s.byCpu.includes(r)).length;
    return n;
  }

  /** Cells, over all sub-windows. */
  get cellCount(): number {
    let n = 0;
    for (const s of this.slots) if (s) n += s.cellCount;
    return n;
  }

  /** Empties the sub-windows no window can reach any more. */
  expire(nowMs: number): void {
    const oldest = Math.floor((nowMs - this.maxWindowMs) / this.slotMs);
    if (oldest === this.lastExpiredIndex) return;
    this.lastExpiredIndex = oldest;
    for (let k = 0; k < this.slots.length; k++) if (this.slots[k] && this.slots[k]!.index < oldest) this.slots[k] = undefined;
  }

  approxBytes(): number {
    let b = 64 + this.slots.length * 8;
    for (const s of this.slots) if (s) b += 200 + (s.byCpu.length + s.byRss.length) * 400 + s.cellCount * 260;
    return b;
  }

  private slotFor(t: number): Slot | undefined {
    const index = Math.floor(t / this.slotMs);
    const at = index % this.slots.length;
    let s = this.slots[at];
    if (s && s.index === index) return s;
    if (s && s.index > index) return undefined; // its sub-window was reused by a newer one
    if (s) {
      s.index = index;
      s.byCpu.length = 0;
      s.byRss.length = 0;
      s.cells.clear();
      s.cellCount = 0;
    } else {
      s = { index, byCpu: [], byRss: [], cells: new Map(), cellCount: 0 };
      this.slots[at] = s;
    }
    return s;
  }

  private *slotsIn(startMs: number, nowMs: number): Generator<Slot> {
    const from = Math.floor(startMs / this.slotMs), to = Math.floor(nowMs / this.slotMs);
    for (const s of this.slots) if (s && s.index >= from && s.index <= to) yield s;
  }

  // A record pushed out of one top list is summed into its cell, unless the other list keeps it.
  private displaced(slot: Slot, out: ExitedRecord | undefined, other: ExitedRecord[]): void {
    if (!out || other.includes(out)) return;
    splitCgroupId(out.cgroupId, HALVES);
    this.fold(slot, out.comm, HALVES[0]!, HALVES[1]!, out.t1Ms, out.weightS, out.cpuNs, out.rssMaxBytes, out.readBytes, out.writeBytes);
  }

  private fold(slot: Slot, comm: string, cgHi: number, cgLo: number, t1: number, weightS: number, cpuNs: number, rss: number, read: number, write: number): void {
    let cell = findCell(slot, comm, cgHi, cgLo);
    if (!cell) {
      if (slot.cellCount >= MAX_CELLS_PER_SLOT) {
        this.overflowed++;
        comm = OTHER_COMM;
        cgHi = NO_CGROUP;
        cgLo = 0;
        cell = findCell(slot, comm, cgHi, cgLo);
      }
      if (!cell) {
        cell = newCell(comm, joinCgroupId(cgHi, cgLo));
        const list = slot.cells.get(comm);
        if (list) list.push(cell);
        else slot.cells.set(comm, [cell]);
        slot.cellCount++;
      }
    }
    const pct = weightS > 0 ? cpuNs / 1e7 / weightS : 0;
    cell.count++;
    cell.cpuNs += cpuNs;
    cell.weightS += weightS;
    cell.cpuPctSum += pct;
    if (pct > cell.cpuPctMax) cell.cpuPctMax = pct;
    if (t1 >= cell.lastT) {
      cell.lastT = t1;
      cell.lastPct = pct;
    }
    if (rss > cell.rssMaxBytes) cell.rssMaxBytes = rss;
    cell.readBytes += read;
    cell.writeBytes += write;
    const rr = weightS > 0 ? read / weightS : 0, wr = weightS > 0 ? write / weightS : 0;
    cell.readRateSum += rr;
    cell.writeRateSum += wr;
    if (rr > cell.readRateMax) cell.readRateMax = rr;
    if (wr > cell.writeRateMax) cell.writeRateMax = wr;
    this.aggregated++;
  }
}

const cpuOf = (r: ExitedRecord) => r.cpuNs;
const rssOf = (r: ExitedRecord) => r.rssMaxBytes;

/** Whether a value enters a top list (sorted, most first). */
function ranks(list: ExitedRecord[], v: number, of: (r: ExitedRecord) => number): boolean {
  return list.length < KEPT_PER_SLOT || v > of(list[list.length - 1]!);
}

/** Inserts in order; returns the record pushed out past KEPT_PER_SLOT, if any. */
function insert(list: ExitedRecord[], rec: ExitedRecord, of: (r: ExitedRecord) => number): ExitedRecord | undefined {
  let at = list.length;
  while (at > 0 && of(list[at - 1]!) < of(rec)) at--;
  list.splice(at, 0, rec);
  return list.length > KEPT_PER_SLOT ? list.pop() : undefined;
}

function findCell(slot: Slot, comm: string, cgHi: number, cgLo: number): AggregateCell | undefined {
  const list = slot.cells.get(comm);
  if (!list) return undefined;
  for (const c of list) {
    splitCgroupId(c.cgroupId, HALVES);
    if (HALVES[0] === cgHi && HALVES[1] === cgLo) return c;
  }
  return undefined;
}

function newCell(comm: string, cgroupId: bigint | null): AggregateCell {
  // sums and maxima as doubles from the start (src/shared/numbers.ts)
  const z = DOUBLE_ZERO;
  return {
    comm, cgroupId, count: 0, cpuNs: z, weightS: z, cpuPctSum: z, cpuPctMax: z, lastT: -Infinity, lastPct: z, rssMaxBytes: z,
    readBytes: z, writeBytes: z, readRateSum: z, writeRateSum: z, readRateMax: z, writeRateMax: z,
  };
}

function mergeCell(m: AggregateCell, c: AggregateCell): void {
  m.count += c.count;
  m.cpuNs += c.cpuNs;
  m.weightS += c.weightS;
  m.cpuPctSum += c.cpuPctSum;
  m.cpuPctMax = Math.max(m.cpuPctMax, c.cpuPctMax);
  if (c.lastT >= m.lastT) {
    m.lastT = c.lastT;
    m.lastPct = c.lastPct;
  }
  m.rssMaxBytes = Math.max(m.rssMaxBytes, c.rssMaxBytes);
  m.readBytes += c.readBytes;
  m.writeBytes += c.writeBytes;
  m.readRateSum += c.readRateSum;
  m.writeRateSum += c.writeRateSum;
  m.readRateMax = Math.max(m.readRateMax, c.readRateMax);
  m.writeRateMax = Math.max(m.writeRateMax, c.writeRateMax);
}
