// Kernel records carry CLOCK_BOOTTIME ns. Wall-clock time for display is boottime + offset, with
// the offset taken once (it only moves if the wall clock is stepped).
import { readFileSync } from 'node:fs';
import { native } from './native.js';

/** CLOCK_BOOTTIME now, in ns. */
export function boottimeNs(): bigint {
  const n = native();
  if (n.clockBoottimeNs) return n.clockBoottimeNs();
  // Fallback: monotonic (equals boottime unless the machine was suspended) aligned to /proc/uptime.
  return process.hrtime.bigint() + monoToBootNs();
}

let monoToBoot: bigint | undefined;
function monoToBootNs(): bigint {
  if (monoToBoot === undefined) {
    const up = readFileSync('/proc/uptime', 'utf8').split(' ')[0] ?? '0';
    const [s, frac = '0'] = up.split('.');
    const bootNs = BigInt(s ?? '0') * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
    const d = bootNs - process.hrtime.bigint();
    monoToBoot = d > -50_000_000n && d < 50_000_000n ? 0n : d; // /proc/uptime has 10 ms steps: same clock
  }
  return monoToBoot;
}

/** Converts kernel boottime ns to epoch ms. */
export class WallClock {
  private readonly offsetNs: bigint;
  constructor() {
    this.offsetNs = BigInt(Date.now()) * 1_000_000n - boottimeNs();
  }
  epochMs(ktimeNs: bigint): number {
    return Number((ktimeNs + this.offsetNs) / 1_000_000n);
  }
  private isoSecond = NaN;
  private isoPrefix = '';
  /** Same text as Date#toISOString. Called per event: the "YYYY-MM-DDTHH:MM:SS." prefix is
   *  formatted once per second, so most calls only append the milliseconds (no Date). */
  iso(ktimeNs: bigint): string {
    const ms = this.epochMs(ktimeNs);
    const sec = Math.floor(ms / 1000);
    if (sec !== this.isoSecond) {
      this.isoSecond = sec;
      this.isoPrefix = new Date(sec * 1000).toISOString().slice(0, -4);
    }
    const frac = ms - sec * 1000;
    return this.isoPrefix + (frac < 10 ? '00' : frac < 100 ? '0' : '') + frac + 'Z';
  }
}
