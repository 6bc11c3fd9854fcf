// A cgroup id (u64) stored as two exact 32-bit numbers, so typed-array records and aggregate keys
// hold it without a bigint per exit.
const U64 = new BigUint64Array(1);
const U32 = new Uint32Array(U64.buffer);

/** hi half of a cgroup id stored as two numbers; NO_CGROUP when absent. */
export const NO_CGROUP = -1;

/** Sets halves[0] = hi, halves[1] = lo of id (hi = NO_CGROUP for null). No allocation. */
export function splitCgroupId(id: bigint | null, halves: Float64Array, at = 0): void {
  if (id === null) {
    halves[at] = NO_CGROUP;
    halves[at + 1] = 0;
    return;
  }
  U64[0] = id;
  halves[at] = U32[1]!;
  halves[at + 1] = U32[0]!;
}

/** The cgroup id from its halves; null when absent. */
export function joinCgroupId(hi: number, lo: number): bigint | null {
  if (hi === NO_CGROUP) return null;
  U32[1] = hi;
  U32[0] = lo;
  return U64[0]!;
}
