#!/usr/bin/env node
// Generates the TypeScript wire layer from the BTF of the compiled BPF object, so no field offset
// is ever written by hand (the bpf2go habit). Emits:
//   <out>.ts           layout facts + one specialized reader per struct (offsets inlined)
//   <out>.layout.json  the same layout facts, for the layout test
// Usage: node scripts/gen-wire.mjs [object.o] [out.ts] [--header lifecycle.h] [--strict]
//        [--structs a,b,...] [--enums x,y,...]   (default: the lifecycle sensor's)
//        [--numbers struct.field,...]            u64 fields read as numbers (default: the lifecycle sensor's)
// Types clang left out of the object's BTF (it emits only types a global references) are taken
// from a BTF probe: lifecycle.h compiled alone with the same clang. --strict forbids that.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

let STRUCTS = ['pt_hdr', 'pt_exec', 'pt_fork', 'pt_exit', 'pt_reap', 'pt_exec_failed', 'pt_counters', 'pt_ring_ctl', 'pt_task_snap', 'pt_task_usage'];
let ENUMS = ['pt_op', 'pt_flag', 'pt_usage_flag'];
// u64 fields read as a JS number instead of a bigint: a bigint is a heap allocation per field
// per record, and these are counters and sizes that stay below 2^53 (9 PB, 104 days of CPU in
// ns; past that a double is still within a few ns). Identity and clock fields (ktime, seq,
// start times, cgroup ids) stay bigints: they are compared and used as keys.
let NUMBERS = new Set([
  'pt_exit.cpu_ns', 'pt_exit.utime_ns', 'pt_exit.stime_ns', 'pt_exit.maxrss_kb', 'pt_exit.read_bytes', 'pt_exit.write_bytes',
  'pt_exit.rchar', 'pt_exit.wchar', 'pt_exit.minflt', 'pt_exit.majflt', 'pt_exit.nvcsw', 'pt_exit.nivcsw',
]);
const DATASEC = '.rodata';

function die(msg) {
  process.stderr.write(`gen-wire: error: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const pos = [];
  const opt = { header: null, strict: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--strict') opt.strict = true;
    else if (argv[i] === '--header') opt.header = argv[++i];
    else if (argv[i] === '--structs') STRUCTS = argv[++i].split(',');
    else if (argv[i] === '--enums') ENUMS = argv[++i].split(',');
    else if (argv[i] === '--numbers') NUMBERS = new Set(argv[++i].split(',').filter(Boolean));
    else if (argv[i].startsWith('--')) die(`unknown option ${argv[i]}`);
    else pos.push(argv[i]);
  }
  const obj = pos[0] ?? 'bpf/.output/lifecycle.bpf.o';
  const out = pos[1] ?? 'src/wire/generated/lifecycle.ts';
  return { obj, out, header: opt.header ?? join(dirname(dirname(resolve(obj))), 'lifecycle.h'), strict: opt.strict };
}

// ---- BTF ---------------------------------------------------------------------------------

/** bpftool's JSON BTF: { types: [{ id, kind, name, ... }] }, ids dense from 1. */
function dumpBtf(objPath) {
  if (!existsSync(objPath)) die(`BPF object ${objPath} not found; build it first: make -C bpf`);
  let json;
  try {
    json = execFileSync(process.env.BPFTOOL ?? 'bpftool', ['btf', 'dump', 'file', objPath, '-j'], {
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    if (e.code === 'ENOENT') die('bpftool not found in PATH (apt-get install bpftool, or set BPFTOOL)');
    die(`bpftool btf dump of ${objPath} failed: ${(e.stderr || e.message).toString().trim()}`);
  }
  const types = JSON.parse(json).types;
  if (!Array.isArray(types)) die(`unexpected bpftool JSON shape (no types array) for ${objPath}`);
  return new Map(types.map((t) => [t.id, t]));
}

const MODIFIERS = new Set(['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG']);

function resolveType(btf, id) {
  let t = btf.get(id);
  while (t && MODIFIERS.has(t.kind)) t = btf.get(t.type_id);
  if (!t) die(`dangling BTF type id ${id}`);
  return t;
}

function findNamed(btf, kind, name) {
  for (const t of btf.values()) if (t.kind === kind && t.name === name) return t;
  return null;
}

function intKind(t) {
  if (t.encoding === 'BOOL') return 'bool';
  if (t.name === 'char' && t.size === 1) return 'char';
  return `${t.encoding === 'SIGNED' ? 's' : 'u'}${t.size * 8}`;
}

/** A field's wire shape: scalar kind, char[] text, array of scalars, or nested struct. */
function fieldShape(btf, typeId, where) {
  const t = resolveType(btf, typeId);
  if (t.kind === 'INT') return { kind: intKind(t), size: t.size, align: t.size };
  if (t.kind === 'ENUM') return { kind: `u${t.size * 8}`, size: t.size, align: t.size };
  if (t.kind === 'STRUCT') {
    const s = structLayout(btf, t);
    return { kind: 'struct', struct: t.name, size: s.size, align: s.align };
  }
  if (t.kind === 'ARRAY') {
    const el = fieldShape(btf, t.type_id, where);
    if (el.kind === 'char') return { kind: 'char[]', length: t.nr_elems, size: t.nr_elems, align: 1 };
    if (el.kind === 'struct' || el.kind.endsWith('[]')) die(`${where}: arrays of ${el.kind} are not supported`);
    return { kind: `${el.kind}[]`, count: t.nr_elems, size: el.size * t.nr_elems, align: el.align };
  }
  die(`${where}: unsupported BTF kind ${t.kind} (wire structs hold fixed-width scalars only)`);
}

function structLayout(btf, t) {
  let align = 1;
  const fields = t.members.map((m) => {
    const where = `${t.name}.${m.name}`;
    if (m.bitfield_size) die(`${where}: bitfields are not allowed on the wire`);
    if (m.bits_offset % 8) die(`${where}: not byte aligned`);
    const { align: a, ...shape } = fieldShape(btf, m.type_id, where);
    align = Math.max(align, a);
    return { name: m.name, offset: m.bits_offset / 8, ...shape };
  });
  return { size: t.size, align, fields };
}

function enumValues(t) {
  return Object.fromEntries(t.values.map((v) => [v.name, v.val]));
}

// ---- BTF probe for types the object left out -----------------------------------------------

function probeBtf(header, names) {
  if (!existsSync(header)) die(`header ${header} not found (needed for the BTF probe; pass --header)`);
  const dir = mkdtempSync(join(tmpdir(), 'gen-wire-'));
  try {
    const inc = dirname(resolve(header));
    const vmlinux = existsSync(join(inc, 'vmlinux.h'));
    const anchors = [
      ...names.structs.map((n) => `struct ${n} __probe_${n};`),
      ...names.enums.map((n) => `enum ${n} __probe_${n};`),
    ];
    // Same include order as lifecycle.bpf.c, so the typedefs are the ones the object sees.
    const src = [vmlinux ? '#include "vmlinux.h"' : '#include <linux/types.h>', `#include "${basename(header)}"`, ...anchors, ''];
    writeFileSync(join(dir, 'probe.c'), src.join('\n'));
    const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
    try {
      execFileSync(process.env.CLANG ?? 'clang', ['-g', '-O2', '-target', 'bpf', '-I', inc, '-I', `/usr/include/${arch}-linux-gnu`, '-c', join(dir, 'probe.c'), '-o', join(dir, 'probe.o')], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      die(`BTF probe compile failed: ${(e.stderr || e.message).toString().trim()}`);
    }
    return dumpBtf(join(dir, 'probe.o'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- ELF: .rodata variable offsets ----------------------------------------------------------

// The object's DATASEC offsets are placeholders (libbpf fixes them up from the ELF symbol table
// at open), so the symbol table is the source of truth for where each config byte lives.
function elfSection(buf, want) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) die('not a 64-bit little-endian ELF object');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const sec = (i) => {
    const o = shoff + i * shentsize;
    return {
      name: buf.readUInt32LE(o),
      type: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 0x18)),
      size: Number(buf.readBigUInt64LE(o + 0x20)),
      link: buf.readUInt32LE(o + 0x28),
      entsize: Number(buf.readBigUInt64LE(o + 0x38)),
    };
  };
  const cstr = (off) => buf.toString('latin1', off, buf.indexOf(0, off));
  const shstr = sec(shstrndx);
  const sections = Array.from({ length: shnum }, (_, i) => ({ ...sec(i), index: i }));
  for (const s of sections) s.nameStr = cstr(shstr.offset + s.name);
  const target = sections.find((s) => s.nameStr === want);
  if (!target) return null;
  const symtab = sections.find((s) => s.type === 2 /* SHT_SYMTAB */);
  if (!symtab) die('object has no symbol table');
  const strtab = sections[symtab.link];
  const symbols = new Map();
  for (let o = symtab.offset; o < symtab.offset + symtab.size; o += symtab.entsize) {
    const info = buf[o + 4];
    if (buf.readUInt16LE(o + 6) !== target.index || (info & 0xf) !== 1 /* STT_OBJECT */) continue;
    symbols.set(cstr(strtab.offset + buf.readUInt32LE(o)), {
      offset: Number(buf.readBigUInt64LE(o + 8)),
      size: Number(buf.readBigUInt64LE(o + 16)),
    });
  }
  return { size: target.size, bytes: buf.subarray(target.offset, target.offset + target.size), symbols };
}

function rodataLayout(btf, objPath) {
  const sec = findNamed(btf, 'DATASEC', DATASEC);
  const elf = elfSection(readFileSync(objPath), DATASEC);
  if (!sec || !elf) die(`${objPath} has no ${DATASEC} section`);
  const vars = {};
  for (const v of sec.vars) {
    const bv = btf.get(v.type_id);
    const sym = elf.symbols.get(bv.name);
    if (!sym) die(`${DATASEC} variable ${bv.name} has no ELF symbol`);
    if (sym.size !== v.size || (v.offset !== 0 && v.offset !== sym.offset)) {
      die(`${DATASEC} variable ${bv.name}: BTF says ${v.size}@${v.offset}, ELF says ${sym.size}@${sym.offset}`);
    }
    // Config is scalars; anything else (e.g. a BTF anchor pointer) is listed but not patchable.
    const kind = resolveType(btf, bv.type_id).kind;
    const { align: _a, ...shape } = ['INT', 'ENUM'].includes(kind) ? fieldShape(btf, bv.type_id, `${DATASEC}.${bv.name}`) : { kind: 'opaque', size: v.size };
    vars[bv.name] = { offset: sym.offset, ...shape, linkage: bv.linkage };
  }
  return { size: elf.size, init: elf.bytes.toString('hex'), vars };
}

// ---- layout ----------------------------------------------------------------------------------

function buildLayout(args) {
  const btf = dumpBtf(args.obj);
  const missing = {
    structs: STRUCTS.filter((n) => !findNamed(btf, 'STRUCT', n)),
    enums: ENUMS.filter((n) => !findNamed(btf, 'ENUM', n) && !findNamed(btf, 'ENUM64', n)),
  };
  let probe = null;
  if (missing.structs.length + missing.enums.length > 0) {
    const list = [...missing.structs.map((n) => `struct ${n}`), ...missing.enums.map((n) => `enum ${n}`)].join(', ');
    const hint = 'reference them from a global in the .bpf.c (e.g. a const pointer to a struct holding them) so clang emits their BTF';
    if (args.strict) die(`${args.obj} BTF lacks ${list}; ${hint}`);
    process.stderr.write(`gen-wire: warning: ${args.obj} BTF lacks ${list}; taking them from a BTF probe of ${args.header}. Fix: ${hint}\n`);
    probe = probeBtf(args.header, missing);
  }
  const pick = (kind, name) => {
    const t = findNamed(btf, kind, name);
    if (t) return { src: btf, t, source: 'object' };
    const p = probe && (findNamed(probe, kind, name) ?? (kind === 'ENUM' ? findNamed(probe, 'ENUM64', name) : null));
    if (!p) die(`${kind.toLowerCase()} ${name} not found in BTF`);
    return { src: probe, t: p, source: 'header-probe' };
  };
  const structs = {};
  for (const name of STRUCTS) {
    const { src, t, source } = pick('STRUCT', name);
    const { size, align, fields } = structLayout(src, t);
    structs[name] = { size, align, source, fields };
  }
  const enums = {};
  for (const name of ENUMS) {
    const { t, source } = pick('ENUM', name);
    enums[name] = { source, values: enumValues(t) };
  }
  return { generator: 'scripts/gen-wire.mjs', object: args.obj, structs, enums, rodata: rodataLayout(btf, args.obj) };
}

// ---- emission --------------------------------------------------------------------------------

/** JSON with one line per leaf object (a field, a variable): readable diffs, short files. */
function pretty(v, indent = '') {
  const leaf = (x) => x === null || typeof x !== 'object';
  if (leaf(v)) return JSON.stringify(v);
  const entries = Array.isArray(v) ? v.map((x) => [null, x]) : Object.entries(v);
  const key = (k) => (k === null ? '' : `${JSON.stringify(k)}: `);
  if (entries.every(([, x]) => leaf(x))) return Array.isArray(v) ? JSON.stringify(v) : `{ ${entries.map(([k, x]) => key(k) + JSON.stringify(x)).join(', ')} }`;
  const inner = indent + '  ';
  const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  return `${open}\n${entries.map(([k, x]) => inner + key(k) + pretty(x, inner)).join(',\n')}\n${indent}${close}`;
}

// ---- TypeScript ---------------------------------------------------------------------

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const pascal = (s) => camel(s).replace(/^[a-z]/, (c) => c.toUpperCase());
const isPad = (f) => /^pad\d*$/.test(f.name);
const at = (off) => (off === 0 ? 'base' : `base + ${off}`);

const SCALAR = {
  u8: { ts: 'number', read: (o) => `buf[${at(o)}]` },
  s8: { ts: 'number', read: (o) => `buf.readInt8(${at(o)})` },
  bool: { ts: 'boolean', read: (o) => `buf[${at(o)}] !== 0` },
  u16: { ts: 'number', read: (o) => `buf.readUInt16LE(${at(o)})` },
  s16: { ts: 'number', read: (o) => `buf.readInt16LE(${at(o)})` },
  u32: { ts: 'number', read: (o) => `buf.readUInt32LE(${at(o)})` },
  s32: { ts: 'number', read: (o) => `buf.readInt32LE(${at(o)})` },
  // src/wire/text.ts: one bigint per read, not Buffer#readBigUInt64LE's four
  u64: { ts: 'bigint', read: (o) => `u64b(buf, ${at(o)})` },
  s64: { ts: 'bigint', read: (o) => `s64b(buf, ${at(o)})` },
};
const U64_NUMBER = { ts: 'number', read: (o) => `u64n(buf, ${at(o)})` };

function fieldCode(f, struct) {
  if (f.kind === 'u64' && NUMBERS.has(`${struct}.${f.name}`)) return { ts: U64_NUMBER.ts, read: U64_NUMBER.read(f.offset) };
  if (f.kind === 'struct') return { ts: pascal(f.struct), read: `read${pascal(f.struct)}(buf, ${at(f.offset)})` };
  if (f.kind === 'char[]') return { ts: 'KText', read: `cstrText(buf, ${at(f.offset)}, ${f.length})` };
  if (f.kind.endsWith('[]')) {
    const el = SCALAR[f.kind.slice(0, -2)];
    const size = f.size / f.count;
    const items = Array.from({ length: f.count }, (_, i) => el.read(f.offset + i * size));
    return { ts: `${el.ts}[]`, read: `[${items.join(', ')}]` };
  }
  const s = SCALAR[f.kind];
  if (!s) die(`no reader for kind ${f.kind}`);
  return { ts: s.ts, read: s.read(f.offset) };
}

function emitStruct(name, s) {
  const T = pascal(name);
  const fields = s.fields.filter((f) => !isPad(f));
  const lines = [`/** struct ${name}: ${s.size} bytes (pad fields omitted) */`, `export interface ${T} {`];
  for (const f of fields) lines.push(`  ${camel(f.name)}: ${fieldCode(f, name).ts};`);
  lines.push('}', '');
  const reader = (fn, ret, list) => [
    `export function ${fn}(buf: Buffer, base: number): ${ret} {`,
    '  return {',
    ...list.map((f) => `    ${camel(f.name)}: ${fieldCode(f, name).read},`),
    '  };',
    '}',
    '',
  ];
  lines.push(...reader(`read${T}`, T, fields));
  // Records start with their header; the decoder reads it once to dispatch, then the body.
  if (fields[0]?.kind === 'struct' && fields[0].offset === 0) {
    lines.push(`export type ${T}Body = Omit<${T}, '${camel(fields[0].name)}'>;`, '');
    lines.push(...reader(`read${T}Body`, `${T}Body`, fields.slice(1)));
  }
  return lines;
}

function checkNumbers(layout) {
  for (const key of NUMBERS) {
    const [struct, field] = key.split('.');
    const s = layout.structs[struct];
    if (!s) continue; // another object's struct
    const f = s.fields.find((x) => x.name === field);
    if (!f) die(`--numbers: ${key}: no such field`);
    if (f.kind !== 'u64') die(`--numbers: ${key} is ${f.kind}, not u64`);
  }
}

function emitTs(layout) {
  checkNumbers(layout);
  const out = [
    '// generated by scripts/gen-wire.mjs from BTF — do not edit',
    `// source: ${layout.object}`,
    "import type { KText } from '../../shared/events.js';",
    null, // the readers the code below calls (an unused import fails the type check)
    '',
    `export const LAYOUT = ${pretty(layout)} as const;`,
    '',
  ];
  for (const [name, s] of Object.entries(layout.structs)) out.push(`export const ${name.toUpperCase()}_SIZE = ${s.size};`);
  out.push(`export const RODATA_SIZE = ${layout.rodata.size};`, '');
  for (const e of Object.values(layout.enums)) {
    for (const [k, v] of Object.entries(e.values)) out.push(`export const ${k} = ${v};`);
    out.push('');
  }
  for (const [name, s] of Object.entries(layout.structs)) out.push(...emitStruct(name, s));
  const body = out.join('\n');
  const readers = ['cstrText', 'u64n', 'u64b', 's64b'].filter((r) => body.includes(`${r}(`));
  out[out.indexOf(null)] = `import { ${readers.join(', ')} } from '../text.js';`;
  return out.join('\n');
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const layout = buildLayout(args);
  const jsonPath = args.out.replace(/\.ts$/, '') + '.layout.json';
  mkdirSync(dirname(resolve(args.out)), { recursive: true });
  writeFileSync(args.out, emitTs(layout));
  writeFileSync(jsonPath, pretty(layout) + '\n');
  process.stdout.write(`gen-wire: wrote ${args.out} and ${jsonPath}\n`);
}

main();
