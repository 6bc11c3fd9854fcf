// The generated layout must be exactly what the compiled object's BTF says, and the wire
// structs must keep the rules of bpf/lifecycle.h (header first, 8-byte fields first, no implicit
// padding). BTF is read here independently of scripts/gen-wire.mjs.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LAYOUT } from '../../src/wire/generated/lifecycle.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OBJ = join(ROOT, 'bpf/.output/lifecycle.bpf.o');
const LAYOUT_JSON = join(ROOT, 'src/wire/generated/lifecycle.layout.json');
const RECORDS = ['pt_exec', 'pt_fork', 'pt_exit', 'pt_reap', 'pt_exec_failed'];

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  encoding?: string;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
}
interface Field {
  name: string;
  offset: number;
  size: number;
  kind: string;
  struct?: string;
  length?: number;
  count?: number;
}
interface Layout {
  structs: Record<string, { size: number; source: string; fields: Field[] }>;
  enums: Record<string, { source: string; values: Record<string, number> }>;
  rodata: { size: number; init: string; vars: Record<string, { offset: number; size: number; kind: string }> };
}

function btf(obj: string): Map<number, BtfType> {
  const json = execFileSync('bpftool', ['btf', 'dump', 'file', obj, '-j'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return new Map((JSON.parse(json) as { types: BtfType[] }).types.map((t) => [t.id, t]));
}

/** BTF of lifecycle.h alone, for types the object does not reference (see the generator). */
function headerBtf(names: string[]): Map<number, BtfType> {
  const dir = mkdtempSync(join(tmpdir(), 'wire-layout-'));
  try {
    const src = ['#include "vmlinux.h"', '#include "lifecycle.h"', ...names.map((n, i) => `${n} __anchor${i};`)].join('\n');
    writeFileSync(join(dir, 'p.c'), src);
    execFileSync('clang', ['-g', '-target', 'bpf', '-I', join(ROOT, 'bpf'), '-c', join(dir, 'p.c'), '-o', join(dir, 'p.o')]);
    return btf(join(dir, 'p.o'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const strip = (m: Map<number, BtfType>, id: number): BtfType => {
  let t = m.get(id)!;
  while (['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = m.get(t.type_id!)!;
  return t;
};
const named = (m: Map<number, BtfType>, kind: string, name: string) => [...m.values()].find((t) => t.kind === kind && t.name === name);

function sizeOf(m: Map<number, BtfType>, id: number): number {
  const t = strip(m, id);
  return t.kind === 'ARRAY' ? sizeOf(m, t.type_id!) * t.nr_elems! : t.size!;
}

function alignOf(layout: Layout, f: Field): number {
  if (f.kind === 'struct') return Math.max(...layout.structs[f.struct!]!.fields.map((x) => alignOf(layout, x)));
  if (f.kind === 'char[]') return 1;
  if (f.kind.endsWith('[]')) return f.size / f.count!;
  return f.size;
}

if (!existsSync(OBJ) || !existsSync(LAYOUT_JSON)) {
  throw new Error(`wire layout test needs ${OBJ} and ${LAYOUT_JSON}: run make -C bpf && node scripts/gen-wire.mjs`);
}

describe('wire layout vs BTF', () => {
  const layout = JSON.parse(readFileSync(LAYOUT_JSON, 'utf8')) as Layout;
  const objBtf = btf(OBJ);
  const fromHeader = [
    ...Object.entries(layout.structs).filter(([, s]) => s.source !== 'object').map(([n]) => `struct ${n}`),
    ...Object.entries(layout.enums).filter(([, e]) => e.source !== 'object').map(([n]) => `enum ${n}`),
  ];
  const probe = fromHeader.length ? headerBtf(fromHeader) : new Map<number, BtfType>();
  const source = (kind: string, name: string) => {
    const t = named(objBtf, kind, name);
    return t ? { m: objBtf, t } : { m: probe, t: named(probe, kind, name) };
  };

  it('the generated TypeScript carries the same layout as the JSON', () => {
    expect(JSON.parse(JSON.stringify(LAYOUT))).toEqual(layout);
  });

  it('records which types were missing from the object BTF', () => {
    // Non-empty until lifecycle.bpf.c references every wire type from a global (see report).
    if (fromHeader.length) console.warn(`wire types taken from a lifecycle.h BTF probe: ${fromHeader.join(', ')}`);
    for (const n of fromHeader) expect(named(objBtf, n.startsWith('enum') ? 'ENUM' : 'STRUCT', n.split(' ')[1]!)).toBeUndefined();
  });

  for (const name of ['pt_hdr', ...RECORDS, 'pt_counters', 'pt_ring_ctl', 'pt_task_snap']) {
    it(`${name}: size and every field offset/size match BTF`, () => {
      const { m, t } = source('STRUCT', name);
      expect(t, `${name} in BTF`).toBeDefined();
      const s = layout.structs[name]!;
      expect(s.size).toBe(t!.size);
      expect(s.fields.map((f) => f.name)).toEqual(t!.members!.map((x) => x.name));
      for (const [i, mem] of t!.members!.entries()) {
        const f = s.fields[i]!;
        expect(mem.bitfield_size ?? 0).toBe(0);
        expect(f.offset * 8, `${name}.${f.name} offset`).toBe(mem.bits_offset);
        expect(f.size, `${name}.${f.name} size`).toBe(sizeOf(m, mem.type_id));
        const mt = strip(m, mem.type_id);
        if (f.kind === 'struct') expect(mt.name).toBe(f.struct);
        if (f.kind === 'char[]') expect(mt.nr_elems).toBe(f.length);
        if (f.kind === 'u64[]') expect(mt.nr_elems).toBe(f.count);
      }
    });
  }

  it('enum constants match BTF', () => {
    for (const name of ['pt_op', 'pt_flag']) {
      const { t } = source('ENUM', name);
      expect(t, `enum ${name}`).toBeDefined();
      expect(layout.enums[name]!.values).toEqual(Object.fromEntries(t!.values!.map((v) => [v.name, v.val])));
    }
  });

  it('.rodata variables match the ELF symbol table and BTF sizes', () => {
    const sec = named(objBtf, 'DATASEC', '.rodata')!;
    const syms = new Map<string, { value: number; size: number }>();
    // llvm-readelf or binutils readelf: "Num: Value Size Type Bind Vis Ndx Name"
    const tool = ['llvm-readelf', 'readelf'].find((x) => {
      try {
        execFileSync(x, ['--version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    expect(tool, 'readelf or llvm-readelf').toBeDefined();
    const secIdx = execFileSync(tool!, ['-SW', OBJ], { encoding: 'utf8' }).match(/\[\s*(\d+)\]\s+\.rodata\s/)![1];
    for (const line of execFileSync(tool!, ['-sW', OBJ], { encoding: 'utf8' }).split('\n')) {
      const c = line.trim().split(/\s+/);
      if (c.length >= 8 && c[3] === 'OBJECT' && c[6] === secIdx) syms.set(c[7]!, { value: parseInt(c[1]!, 16), size: Number(c[2]) });
    }
    expect(Object.keys(layout.rodata.vars).sort()).toEqual(sec.vars!.map((v) => objBtf.get(v.type_id)!.name).sort());
    for (const v of sec.vars!) {
      const name = objBtf.get(v.type_id)!.name;
      const g = layout.rodata.vars[name]!;
      expect(g.size, name).toBe(v.size);
      expect(g.offset, name).toBe(syms.get(name)!.value);
      expect(g.offset + g.size).toBeLessThanOrEqual(layout.rodata.size);
    }
    for (const n of ['args_cap', 'filename_cap', 'emit_threads', 'wakeup_mode', 'page_kb', 'bench_burst']) expect(layout.rodata.vars[n], n).toBeDefined();
    expect(layout.rodata.init.length).toBe(layout.rodata.size * 2);
  });

  describe('wire rules of lifecycle.h', () => {
    it('every record starts with struct pt_hdr at offset 0; pt_hdr.op sits at the addon tagOffset 22', () => {
      for (const r of RECORDS) expect(layout.structs[r]!.fields[0]).toMatchObject({ name: 'hdr', offset: 0, kind: 'struct', struct: 'pt_hdr' });
      expect(layout.structs.pt_hdr!.fields.find((f) => f.name === 'op')).toMatchObject({ offset: 22, size: 1 });
    });

    for (const [name, s] of Object.entries(layout.structs)) {
      it(`${name}: 8-byte fields first, size a multiple of 8, no implicit padding`, () => {
        const aligns = s.fields.map((f) => alignOf(layout, f));
        const firstSmall = aligns.findIndex((a) => a < 8);
        if (firstSmall >= 0) expect(aligns.slice(firstSmall).every((a) => a < 8), `${name}: ${aligns.join(',')}`).toBe(true);
        expect(s.size % 8).toBe(0);
        expect(s.fields.reduce((n, f) => n + f.size, 0)).toBe(s.size);
        let at = 0;
        for (const f of s.fields) {
          expect(f.offset, `${name}.${f.name} follows the previous field`).toBe(at);
          at += f.size;
        }
      });
    }
  });
});
