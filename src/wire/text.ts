// Kernel text to KText. Kernel strings are bytes, not UTF-8: comm, filenames and argv can hold
// anything, so text is always readable (U+FFFD for bad sequences) and `raw` keeps the exact
// bytes when, and only when, the text would lose them. Nearly all of it is ASCII: that path
// scans once and builds the string without UTF-8 decoding.
import { isUtf8 } from 'node:buffer';
import type { KText } from '../shared/events.js';

// Buffer's own range decoders: what toString() calls after its argument checks, which cost as
// much as the decoding for short strings. Present in every Node since 0.x; toString otherwise.
interface RangeDecoders {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}
const direct = typeof (Buffer.prototype as unknown as Partial<RangeDecoders>).latin1Slice === 'function' && typeof (Buffer.prototype as unknown as Partial<RangeDecoders>).utf8Slice === 'function';

function latin1(buf: Buffer, start: number, end: number): string {
  return direct ? (buf as unknown as RangeDecoders).latin1Slice(start, end) : buf.toString('latin1', start, end);
}

function utf8(buf: Buffer, start: number, end: number): string {
  return direct ? (buf as unknown as RangeDecoders).utf8Slice(start, end) : buf.toString('utf8', start, end);
}

/** Bytes [start, end) that are known to contain a byte >= 0x80. */
function nonAscii(buf: Buffer, start: number, end: number): KText {
  const text = utf8(buf, start, end);
  const view = buf.subarray(start, end);
  // Copy: the batch buffer belongs to the ring consumer and is not kept.
  return isUtf8(view) ? { text } : { text, raw: Buffer.from(view) };
}

/** Bytes [start, end) as KText. */
export function ktext(buf: Buffer, start: number, end: number): KText {
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) return nonAscii(buf, start, end);
  }
  return { text: latin1(buf, start, end) };
}

/** A little-endian u64 as a number: exact below 2^53, no bigint allocated (the generated
 *  readers use it for counters and sizes: scripts/gen-wire.mjs NUMBERS). */
export function u64n(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 4294967296;
}

// One DataView over the ArrayBuffer the last read came from: drained batches are views of one
// reused buffer, so it is made once. getBigUint64 allocates the one bigint it returns, where
// Buffer#readBigUInt64LE builds it from four (×4.4 faster here; bench/README.md, "Session 6").
let viewOf: ArrayBufferLike | null = null;
let view: DataView | null = null;

function dataView(buf: Buffer, off: number): DataView {
  // the same bounds as Buffer's own readers: a DataView only checks the whole ArrayBuffer
  if (!(off >= 0 && off + 8 <= buf.length)) throw new RangeError(`u64 read at ${off} outside a buffer of ${buf.length} bytes`);
  if (buf.buffer !== viewOf) {
    viewOf = buf.buffer;
    view = new DataView(buf.buffer);
  }
  return view!;
}

/** A little-endian u64 as a bigint (the generated readers' u64 fields). */
export function u64b(buf: Buffer, off: number): bigint {
  return dataView(buf, off).getBigUint64(buf.byteOffset + off, true);
}

/** A little-endian s64 as a bigint. */
export function s64b(buf: Buffer, off: number): bigint {
  return dataView(buf, off).getBigInt64(buf.byteOffset + off, true);
}

/** A NUL-terminated string in a fixed field of `max` bytes (all `max` bytes if no NUL). */
export function cstrText(buf: Buffer, start: number, max: number): KText {
  const limit = start + max;
  let high = false;
  let i = start;
  for (; i < limit; i++) {
    const b = buf[i]!;
    if (b === 0) break;
    if (b >= 0x80) high = true;
  }
  return high ? nonAscii(buf, start, i) : { text: latin1(buf, start, i) };
}

/** argv decoded as one string, to KText[]. A NUL byte is a NUL code point in both latin1 and
 *  UTF-8, and one decode + split is cheaper than a decode per arg. The NUL after the last arg
 *  ends it rather than starting another; without one, the last arg was cut by the copy cap. */
function argList(s: string): KText[] {
  if (s.length === 0) return [];
  const parts: (string | KText)[] = s.split('\0');
  if (s.charCodeAt(s.length - 1) === 0) parts.pop();
  for (let i = 0; i < parts.length; i++) parts[i] = { text: parts[i] as string };
  return parts as KText[];
}

/** The argv region [start, end) as the kernel lays it out: each arg followed by a NUL. */
export function splitArgs(buf: Buffer, start: number, end: number): KText[] {
  let or = 0;
  for (let i = start; i < end; i++) or |= buf[i]!; // branch-free ASCII test
  if (or < 0x80) return argList(latin1(buf, start, end));
  return isUtf8(buf.subarray(start, end)) ? argList(utf8(buf, start, end)) : splitBytes(buf, start, end);
}

/** An exec record's tail: argv in [start, argsEnd), then the filename up to `end`. ASCII
 *  tails (nearly all) are decoded with one call for both parts. */
export function execTail(buf: Buffer, start: number, argsEnd: number, end: number): { args: KText[]; filename: KText } {
  let or = 0;
  for (let i = start; i < end; i++) or |= buf[i]!;
  if (or >= 0x80) return { args: splitArgs(buf, start, argsEnd), filename: ktext(buf, argsEnd, end) };
  const s = latin1(buf, start, end);
  const n = argsEnd - start;
  return { args: argList(s.substring(0, n)), filename: { text: s.substring(n) } };
}

/** Per-arg split for regions that are not valid UTF-8 as a whole. */
function splitBytes(buf: Buffer, start: number, end: number): KText[] {
  const args: KText[] = [];
  let from = start;
  for (let i = start; i <= end; i++) {
    if (i === end ? from < end : buf[i] === 0) {
      args.push(ktext(buf, from, i));
      from = i + 1;
    }
  }
  return args;
}
