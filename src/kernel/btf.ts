// A reader of raw BTF (the kernel's /sys/kernel/btf/vmlinux, an object's .BTF as inspect()
// returns it): enough to tell whether the kernel has the types an object needs, and whether two
// objects lay out a type the same way. Format: include/uapi/linux/btf.h.
import { readFileSync } from 'node:fs';

export const BTF_KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10, RESTRICT: 11,
  FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

const MAGIC = 0xeb9f;
const INT_SIGNED = 1;
const INT_BOOL = 4;

export interface BtfMember {
  name: string;
  type: number;
  /** bit offset */
  bitOffset: number;
  bitSize: number;
}

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** size in bytes (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or the referenced type id */
  sizeOrType: number;
  vlen: number;
  kindFlag: boolean;
  /** INT: the encoding word */
  intInfo?: number;
  /** ARRAY */
  array?: { type: number; nelems: number };
  /** STRUCT, UNION */
  members?: BtfMember[];
  /** DATASEC */
  vars?: Array<{ type: number; offset: number; size: number }>;
}

export class BtfError extends Error {
  readonly code = 'E_BTF';
}

/** Bytes of kind-specific data after a btf_type, which the walk must step over. */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case BTF_KIND.INT:
    case BTF_KIND.VAR:
    case BTF_KIND.DECL_TAG:
      return 4;
    case BTF_KIND.ARRAY:
      return 12;
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION:
    case BTF_KIND.DATASEC:
    case BTF_KIND.ENUM64:
      return 12 * vlen;
    case BTF_KIND.ENUM:
    case BTF_KIND.FUNC_PROTO:
      return 8 * vlen;
    default:
      return 0;
  }
}

export class Btf {
  readonly types: BtfType[] = [];
  private byName: Map<string, BtfType[]> | null = null;

  private constructor(
    private readonly strings: Buffer,
  ) {}

  /** Parses every type. Throws BtfError on a malformed image. */
  static parse(buf: Buffer): Btf {
    const h = header(buf);
    const b = new Btf(buf.subarray(h.strStart, h.strStart + h.strLen));
    b.types.push({ id: 0, kind: 0, name: '', sizeOrType: 0, vlen: 0, kindFlag: false }); // void
    for (let off = h.typeStart, id = 1; off < h.typeEnd; id++) {
      if (off + 12 > h.typeEnd) throw new BtfError('BTF: truncated type section');
      const nameOff = buf.readUInt32LE(off);
      const info = buf.readUInt32LE(off + 4);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const t: BtfType = { id, kind, name: b.str(nameOff), sizeOrType: buf.readUInt32LE(off + 8), vlen, kindFlag: (info & 0x80000000) !== 0 };
      let p = off + 12;
      if (kind === BTF_KIND.INT) t.intInfo = buf.readUInt32LE(p);
      else if (kind === BTF_KIND.ARRAY) t.array = { type: buf.readUInt32LE(p), nelems: buf.readUInt32LE(p + 8) };
      else if (kind === BTF_KIND.STRUCT || kind === BTF_KIND.UNION) {
        t.members = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const o = buf.readUInt32LE(p + 8);
          t.members.push({ name: b.str(buf.readUInt32LE(p)), type: buf.readUInt32LE(p + 4), bitOffset: t.kindFlag ? o & 0xffffff : o, bitSize: t.kindFlag ? o >>> 24 : 0 });
        }
      } else if (kind === BTF_KIND.DATASEC) {
        t.vars = [];
        for (let i = 0; i < vlen; i++, p += 12) t.vars.push({ type: buf.readUInt32LE(p), offset: buf.readUInt32LE(p + 4), size: buf.readUInt32LE(p + 8) });
      }
      b.types.push(t);
      off += 12 + extraBytes(kind, vlen);
      if (off > h.typeEnd) throw new BtfError('BTF: truncated type section');
    }
    return b;
  }

  str(off: number): string {
    if (off === 0) return '';
    if (off >= this.strings.length) throw new BtfError(`BTF: string offset ${off} out of range`);
    const end = this.strings.indexOf(0, off);
    return this.strings.toString('latin1', off, end < 0 ? this.strings.length : end);
  }

  find(name: string, kind?: number): BtfType | undefined {
    if (!this.byName) {
      this.byName = new Map();
      for (const t of this.types) {
        if (!t.name) continue;
        const l = this.byName.get(t.name);
        if (l) l.push(t);
        else this.byName.set(t.name, [t]);
      }
    }
    return this.byName.get(name)?.find((t) => kind === undefined || t.kind === kind);
  }

  /** The type behind typedefs and qualifiers. */
  resolve(id: number): BtfType {
    let t = this.types[id];
    for (let n = 0; t && n < 32; n++) {
      if (t.kind !== BTF_KIND.TYPEDEF && t.kind !== BTF_KIND.VOLATILE && t.kind !== BTF_KIND.CONST && t.kind !== BTF_KIND.RESTRICT && t.kind !== BTF_KIND.TYPE_TAG) return t;
      t = this.types[t.sizeOrType];
    }
    throw new BtfError(`BTF: type ${id} does not resolve`);
  }

  /** A canonical description of how type `id` lies in memory: scalar widths, array lengths,
   *  member names and bit offsets, recursively. Two objects agree on a layout when these are
   *  equal (type names and typedefs do not matter; field names do). */
  layout(id: number, depth = 0): string {
    if (id === 0) return 'void';
    const t = this.resolve(id);
    switch (t.kind) {
      case BTF_KIND.INT: {
        const enc = (t.intInfo! >>> 24) & 0xf;
        const bits = t.intInfo! & 0xff;
        return enc & INT_BOOL ? 'bool' : `${enc & INT_SIGNED ? 's' : 'u'}${bits}`;
      }
      case BTF_KIND.PTR:
        return 'ptr';
      case BTF_KIND.ARRAY:
        return `${this.layout(t.array!.type, depth)}[${t.array!.nelems}]`;
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64:
        return `enum${t.sizeOrType * 8}`;
      case BTF_KIND.FLOAT:
        return `f${t.sizeOrType * 8}`;
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION: {
        const tag = t.kind === BTF_KIND.STRUCT ? 'struct' : 'union';
        if (depth >= 8) return `${tag}${t.sizeOrType}`;
        const ms = t.members!.map((m) => `${m.name}@${m.bitOffset}${m.bitSize ? `:${m.bitSize}b` : ''}:${this.layout(m.type, depth + 1)}`);
        return `${tag}${t.sizeOrType}{${ms.join(';')}}`;
      }
      case BTF_KIND.FWD:
        return 'fwd';
      case BTF_KIND.FUNC_PROTO:
        return 'fn';
      default:
        return `kind${t.kind}`;
    }
  }

  /** Variables of a data section (.rodata): name, byte offset and size, and their scalar kind as
   *  the wire layer names it (u8..u64, bool, opaque). */
  sectionVars(section: string): Array<{ name: string; offset: number; size: number; kind: string }> {
    const sec = this.find(section, BTF_KIND.DATASEC);
    if (!sec) return [];
    return sec.vars!.map((v) => {
      const variable = this.types[v.type]!;
      const t = this.resolve(variable.sizeOrType);
      let kind = 'opaque';
      if (t.kind === BTF_KIND.INT) {
        const enc = (t.intInfo! >>> 24) & 0xf;
        kind = enc & INT_BOOL ? 'bool' : enc & INT_SIGNED ? `s${t.sizeOrType * 8}` : `u${t.sizeOrType * 8}`;
      } else if (t.kind === BTF_KIND.ENUM) kind = `u${t.sizeOrType * 8}`;
      return { name: variable.name, offset: v.offset, size: v.size, kind };
    });
  }
}

function header(buf: Buffer): { typeStart: number; typeEnd: number; strStart: number; strLen: number } {
  if (buf.length < 24 || buf.readUInt16LE(0) !== MAGIC) throw new BtfError('BTF: bad magic (not a little-endian BTF image)');
  const hdrLen = buf.readUInt32LE(4);
  const typeOff = buf.readUInt32LE(8);
  const typeLen = buf.readUInt32LE(12);
  const strOff = buf.readUInt32LE(16);
  const strLen = buf.readUInt32LE(20);
  const typeStart = hdrLen + typeOff;
  const strStart = hdrLen + strOff;
  if (typeStart + typeLen > buf.length || strStart + strLen > buf.length) throw new BtfError('BTF: sections past the end of the image');
  return { typeStart, typeEnd: typeStart + typeLen, strStart, strLen };
}

/** Names of the kernel's typedefs `btf_trace_<tracepoint>`: the BTF tracepoints (tp_btf) this
 *  kernel has. Read once per process from /sys/kernel/btf/vmlinux (a few MB, ~50 ms); only the
 *  names are kept. */
let tracepoints: Set<string> | null = null;

export function kernelBtfTracepoints(path = '/sys/kernel/btf/vmlinux'): Set<string> {
  if (tracepoints && path === '/sys/kernel/btf/vmlinux') return tracepoints;
  const buf = readFileSync(path);
  const h = header(buf);
  const out = new Set<string>();
  const prefix = Buffer.from('btf_trace_', 'latin1');
  for (let off = h.typeStart; off + 12 <= h.typeEnd; ) {
    const info = buf.readUInt32LE(off + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind === BTF_KIND.TYPEDEF) {
      const s = h.strStart + buf.readUInt32LE(off);
      if (buf.compare(prefix, 0, prefix.length, s, s + prefix.length) === 0) {
        const end = buf.indexOf(0, s);
        out.add(buf.toString('latin1', s + prefix.length, end));
      }
    }
    off += 12 + extraBytes(kind, info & 0xffff);
  }
  if (path === '/sys/kernel/btf/vmlinux') tracepoints = out;
  return out;
}
