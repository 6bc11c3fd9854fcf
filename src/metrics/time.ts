// The windows run on CLOCK_BOOTTIME, the clock of every kernel record, in ms as a float:
// µs precision is kept even past 2^53 ns of uptime.
export const nsToMs = (ns: bigint): number => Number(ns / 1000n) / 1000;

/** ms from ns without bigint arithmetic (which allocates), for the exit path: exact below 2^53 ns
 *  (104 days of uptime), within a few ns after. */
export const nsNumberToMs = (ns: bigint): number => Number(ns) / 1e6;
