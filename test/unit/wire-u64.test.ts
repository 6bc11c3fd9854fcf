// The decoders' u64/s64 readers (one DataView per ArrayBuffer) against Buffer's own: the same
// value at any offset of any view (a drained batch is a subarray of a reused buffer, pooled
// Buffers share an ArrayBuffer at an offset), and the same refusal past the view's end.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { s64b, u64b } from '../../src/wire/text.js';

describe('u64b / s64b', () => {
  it('read what Buffer#readBigUInt64LE and #readBigInt64LE read, in any view of any buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 96 }), fc.nat(40), fc.nat(96), (bytes, start, at) => {
        const whole = Buffer.alloc(bytes.length + 48);
        whole.set(bytes, 7);
        const view = whole.subarray(Math.min(start, whole.length - 8));
        const off = at % (view.length - 7);
        expect(u64b(view, off)).toBe(view.readBigUInt64LE(off));
        expect(s64b(view, off)).toBe(view.readBigInt64LE(off));
        // another buffer in between: the cached view follows the ArrayBuffer
        const other = Buffer.from(bytes);
        expect(u64b(other, 0)).toBe(other.readBigUInt64LE(0));
        expect(u64b(view, off)).toBe(view.readBigUInt64LE(off));
      }),
    );
  });

  it('refuses a read that runs past the view, though the ArrayBuffer goes on', () => {
    const whole = Buffer.alloc(64, 0xff);
    const view = whole.subarray(8, 20);
    expect(() => u64b(view, 5)).toThrow(RangeError);
    expect(() => s64b(view, -1)).toThrow(RangeError);
    expect(u64b(view, 4)).toBe(0xffffffffffffffffn);
    expect(s64b(view, 4)).toBe(-1n);
  });
});
