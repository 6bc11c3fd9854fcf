// The store's unwritten rows, kept as their INSERT parameters: `width` values a row, in one flat
// array that is reused flush after flush.
//
// Why not an object a row. At 200 exits/s the agent's exit batch made, every second, 200
// summaries and 200 buffer entries that lived until the flush at the end of the same tick. A
// scavenge landing in that tick (most do: nearly all of the agent's allocation is in it) found
// them alive, and they were ~1/3 of what grew V8's old generation. Those promoted rows set the
// pace of the major GCs (bench/README.md, "Session 24"). Bound here at once, a summary is garbage
// as soon as recordExit returns, and the caller may even reuse it.
//
// Rows are numbered from 0 (the oldest still waiting); a row's values start at at(i).

/** Past this many values (a burst or a failing store), a cleared buffer is let go, not kept. */
const KEEP_VALUES = 1 << 16;

export class PendingRows {
  private values: unknown[] = [];
  private head = 0;
  private end = 0;
  /** exec_id → absolute row index of the rows still to reap: a reap finds its buffered row. The
   *  agent's rows mostly come with their reap already (ExitBatch.pairReaps), and then this map
   *  stays empty instead of being refilled and cleared every flush. */
  private readonly byExec = new Map<string, number>();

  constructor(
    readonly width: number,
    /** the column a reap fills */
    private readonly zombieColumn: number,
    /** the column holding the row's exec_id */
    private readonly execIdColumn: number,
  ) {}

  /** rows waiting */
  get size(): number {
    return this.end - this.head;
  }

  /** The array the next row is bound into, at nextAt; call added() once it is whole. */
  get buffer(): unknown[] {
    return this.values;
  }

  get nextAt(): number {
    return this.end * this.width;
  }

  /** A bind at nextAt failed half-way: what it wrote keeps no strings alive. */
  abandon(): void {
    const at = this.nextAt;
    this.values.fill(null, at, at + this.width);
  }

  /** The row bound at nextAt is whole: it waits from now on. `reapable`: a reap may still come
   *  for it (its zombie time is not known yet), so it is indexed by its exec_id. */
  added(execId: string, reapable: boolean): void {
    if (reapable) this.byExec.set(execId, this.end);
    this.end++;
  }

  /** Sets the zombie column of execId's waiting row; false when none waits to be reaped. The
   *  kernel reaps once: a second reap finds nothing here, as for a stored row (first wins). */
  reap(execId: string, zombie: unknown): boolean {
    const row = this.byExec.get(execId);
    if (row === undefined) return false;
    this.values[row * this.width + this.zombieColumn] = zombie;
    this.byExec.delete(execId);
    return true;
  }

  /** Where row i (0 = the oldest waiting) starts in buffer. */
  at(i: number): number {
    return (this.head + i) * this.width;
  }

  /** Forgets the oldest waiting row (a full buffer). */
  dropOldest(): void {
    if (this.end === this.head) return;
    const at = this.head * this.width;
    const execId = this.values[at + this.execIdColumn] as string;
    if (this.byExec.get(execId) === this.head) this.byExec.delete(execId);
    this.values.fill(null, at, at + this.width);
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.end) this.compact();
  }

  /** Moves the waiting rows to the front (after many drops). */
  private compact(): void {
    const shift = this.head;
    this.values.copyWithin(0, shift * this.width, this.end * this.width);
    this.values.length = (this.end - shift) * this.width;
    for (const [execId, row] of this.byExec) this.byExec.set(execId, row - shift);
    this.end -= shift;
    this.head = 0;
  }

  /** Every row was written: forget them all. The values are cleared, so no row's strings (argv,
   *  names) outlive the flush that wrote them. */
  clear(): void {
    if (this.values.length > KEEP_VALUES) this.values = [];
    else this.values.fill(null, 0, this.end * this.width);
    this.head = 0;
    this.end = 0;
    if (this.byExec.size > 0) this.byExec.clear();
  }
}
