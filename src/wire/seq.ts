// Per-CPU sequence accounting. Every record the BPF side hands to the ring takes the next number
// of its CPU's counter, so records missing from what user space received show up as holes.
// Order does not matter (records of one CPU can reach the ring out of sequence order when a
// softirq hook interrupts a task hook), so only min, max and a count are kept:
//   gaps = (max - baseline + 1) - received
// The baseline is the first number the consumer could have seen: 0n when it was running before
// the programs were attached, otherwise unknown, and then the smallest number seen stands in
// (a loss before the first record received is invisible in that case).

export interface CpuSeqStats {
  cpu: number;
  min: bigint;
  max: bigint;
  received: number;
  /** explicit baseline, or min when none was given */
  baseline: bigint;
  /** numbers in [baseline, max] never received */
  gaps: bigint;
  /** records below an explicit baseline: not counted in received */
  belowBaseline: number;
}

interface CpuState {
  min: bigint;
  max: bigint;
  received: number;
  belowBaseline: number;
}

export class SeqTracker {
  private readonly cpus: (CpuState | undefined)[] = [];

  /** @param baseline first sequence number each CPU starts from, when known (0n if the consumer
   *  started before attach) */
  constructor(private readonly baseline: bigint | null = null) {}

  observe(cpu: number, seq: bigint): void {
    const s = this.cpus[cpu];
    if (this.baseline !== null && seq < this.baseline) {
      if (s) s.belowBaseline++;
      else this.cpus[cpu] = { min: seq, max: seq, received: 0, belowBaseline: 1 };
      return;
    }
    if (s === undefined) {
      this.cpus[cpu] = { min: seq, max: seq, received: 1, belowBaseline: 0 };
    } else if (s.received === 0) {
      s.min = seq;
      s.max = seq;
      s.received = 1;
    } else {
      if (seq > s.max) s.max = seq;
      else if (seq < s.min) s.min = seq;
      s.received++;
    }
  }

  /** Holes for one CPU; 0n for a CPU never seen. */
  gaps(cpu: number): bigint {
    const s = this.cpus[cpu];
    if (!s || s.received === 0) return 0n;
    const base = this.baseline ?? s.min;
    const g = s.max - base + 1n - BigInt(s.received);
    return g > 0n ? g : 0n; // duplicates would make it negative; never report negative loss
  }

  /** Holes for one CPU measured against the kernel's next sequence number for it (the per-CPU
   *  value of map pt_seq, read after detach and a final drain): also counts a lost tail. */
  gapsUpTo(cpu: number, next: bigint): bigint {
    const s = this.cpus[cpu];
    const received = s ? BigInt(s.received) : 0n;
    const base = this.baseline ?? (s && s.received > 0 ? s.min : next);
    const g = next - base - received;
    return g > 0n ? g : 0n;
  }

  totalGaps(): bigint {
    let t = 0n;
    for (let cpu = 0; cpu < this.cpus.length; cpu++) t += this.gaps(cpu);
    return t;
  }

  get received(): number {
    let n = 0;
    for (const s of this.cpus) if (s) n += s.received;
    return n;
  }

  stats(): CpuSeqStats[] {
    const out: CpuSeqStats[] = [];
    this.cpus.forEach((s, cpu) => {
      if (!s) return;
      out.push({ cpu, ...s, baseline: this.baseline ?? s.min, gaps: this.gaps(cpu) });
    });
    return out;
  }
}
