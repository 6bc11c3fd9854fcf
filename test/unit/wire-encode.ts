// Test-only encoder: builds records and batches the way the BPF side and the native addon do,
// at the offsets of the generated layout (never hand-written ones).
import { LAYOUT } from '../../src/wire/generated/lifecycle.js';

type StructName = keyof typeof LAYOUT.structs;
/** Field values by wire name; fields the struct does not have are ignored. */
export type Values = Record<string, unknown>;
interface Field {
  name: string;
  offset: number;
  size: number;
  kind: string;
  struct?: string;
}

export function structSize(name: StructName): number {
  return LAYOUT.structs[name].size;
}

export function fieldOffset(name: StructName, field: string): number {
  const f = LAYOUT.structs[name].fields.find((x) => x.name === field);
  if (!f) throw new Error(`no field ${name}.${field}`);
  return f.offset;
}

/** Writes `values` (wire field names) into `buf` at `base`; unnamed fields stay as they are. */
export function writeStruct(buf: Buffer, name: StructName, base: number, values: Values): void {
  for (const f of LAYOUT.structs[name].fields as readonly Field[]) {
    const v = values[f.name];
    if (v === undefined) continue;
    const at = base + f.offset;
    switch (f.kind) {
      case 'struct':
        writeStruct(buf, f.struct as StructName, at, v as Values);
        break;
      case 'char[]':
        (v as Buffer).copy(buf, at, 0, Math.min((v as Buffer).length, f.size));
        break;
      case 'u64[]':
        (v as readonly bigint[]).forEach((x, i) => buf.writeBigUInt64LE(x, at + i * 8));
        break;
      case 'u64':
        buf.writeBigUInt64LE(BigInt(v as number | bigint), at);
        break;
      case 'u32':
        buf.writeUInt32LE(Number(v), at);
        break;
      case 's32':
        buf.writeInt32LE(Number(v), at);
        break;
      case 'u16':
        buf.writeUInt16LE(Number(v), at);
        break;
      case 'u8':
        buf.writeUInt8(Number(v), at);
        break;
      default:
        throw new Error(`encoder: kind ${f.kind} of ${name}.${f.name}`);
    }
  }
}

/** A record: fixed struct (hdr.size filled in) followed by `tail`. */
export function record(name: StructName, values: Values, tail: Buffer = Buffer.alloc(0)): Buffer {
  const size = structSize(name) + tail.length;
  const buf = Buffer.alloc(size);
  writeStruct(buf, name, 0, { ...values, hdr: { size, ...(values.hdr as Values | undefined) } });
  tail.copy(buf, structSize(name));
  return buf;
}

/** The addon's framing: [u32 len][u32 0][record][zeros to a multiple of 8], concatenated. */
export function frame(records: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(r.length, 0);
    parts.push(h, r, Buffer.alloc((8 - (r.length & 7)) & 7));
  }
  return Buffer.concat(parts);
}

/** argv region: each arg then a NUL; `cut` drops the final NUL (an arg cut by the copy cap). */
export function argvRegion(args: readonly Buffer[], cut = false): Buffer {
  const parts = args.flatMap((a) => [a, Buffer.from([0])]);
  if (cut && parts.length) parts.pop();
  return Buffer.concat(parts);
}
