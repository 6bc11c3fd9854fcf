// Numbers on the hot path.

/** Zero as a double: -0 is not a small integer, so a field that starts at it gets V8's double
 *  representation from the first object of its shape. Why: V8 gives an object field the
 *  representation of the first value stored in it, a small integer for 0. Counters in ns or bytes
 *  (CPU time, I/O) pass 2^30 (1.07 s, 1 GiB) at some exit, hours into a run; the field then turns
 *  double, V8 replaces the shape, and every optimized function that reads that shape is
 *  deoptimized and compiled again: ~100 ms of compiles at a random moment (bench/README.md,
 *  "Session 26"). -0 behaves as 0 in arithmetic, comparisons and JSON. */
export const DOUBLE_ZERO = -0;
