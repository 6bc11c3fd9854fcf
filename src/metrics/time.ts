// The windows run on CLOCK_BOOTTIME, the clock of every kernel record, in ms as a float:
// µs precision is kept even past 2^53 ns of uptime.
export const nsToMs = (ns: bigint): number => Number(ns / 1000n) / 1000;
