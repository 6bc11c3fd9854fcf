// Load-time config: patches the const volatile globals of .rodata before load, at the offsets
// the generator read from the object, so the loader never hardcodes where a byte lives.
import { LAYOUT } from './generated/lifecycle.js';
import { WireError } from './errors.js';

export interface RodataValues {
  argsCap: number;
  filenameCap: number;
  emitThreads: boolean;
  wakeupMode: number;
  pageKb: number | bigint;
  benchBurst: number;
  /** the object's generation (sensor reload): it emits while the generation word holds this */
  generation: number;
}

const VAR_NAMES: Record<keyof RodataValues, string> = {
  argsCap: 'args_cap',
  filenameCap: 'filename_cap',
  emitThreads: 'emit_threads',
  wakeupMode: 'wakeup_mode',
  pageKb: 'page_kb',
  benchBurst: 'bench_burst',
  generation: 'generation',
};

interface VarLayout {
  offset: number;
  size: number;
  kind: string;
}

const VARS: Readonly<Record<string, VarLayout | undefined>> = LAYOUT.rodata.vars;

/** A copy of `base` (the object's .rodata image) with the given variables set. */
export function encodeRodata(base: Buffer, values: Partial<RodataValues>, vars: Readonly<Record<string, VarLayout | undefined>> = VARS): Buffer {
  const out = Buffer.from(base);
  for (const key of Object.keys(values) as (keyof RodataValues)[]) {
    const value = values[key];
    if (value === undefined) continue;
    const name = VAR_NAMES[key];
    if (!name) throw new WireError('E_WIRE_RODATA_MISSING', `unknown .rodata setting ${String(key)}`);
    const v = vars[name];
    if (!v) throw new WireError('E_WIRE_RODATA_MISSING', `.rodata has no variable ${name} (object and generated code out of sync?)`);
    if (v.offset + v.size > out.length) {
      throw new WireError('E_WIRE_RODATA_SHORT', `.rodata image of ${out.length} bytes has no room for ${name} at ${v.offset}`);
    }
    write(out, name, v, value);
  }
  return out;
}

function write(out: Buffer, name: string, v: VarLayout, value: number | bigint | boolean): void {
  if (v.kind === 'bool') {
    if (typeof value !== 'boolean') throw range(name, value, 'a boolean');
    out[v.offset] = value ? 1 : 0;
    return;
  }
  const bits = BigInt(v.size * 8);
  if (!/^u(8|16|32|64)$/.test(v.kind) || typeof value === 'boolean') throw range(name, value, v.kind);
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw range(name, value, `an integer (${v.kind})`);
  const n = BigInt(value);
  if (n < 0n || n >> bits !== 0n) throw range(name, value, `in range of ${v.kind}`);
  if (v.size === 8) out.writeBigUInt64LE(n, v.offset);
  else out.writeUIntLE(Number(n), v.offset, v.size);
}

function range(name: string, value: unknown, want: string): WireError {
  return new WireError('E_WIRE_RODATA_RANGE', `.rodata ${name}=${String(value)}: must be ${want}`);
}

/** A copy of `base` with .rodata variables set by their C names, at generated offsets: for
 *  sensors whose config has no camelCase mapping of its own. */
export function patchRodataVars(
  base: Buffer,
  values: Readonly<Record<string, number | bigint | boolean>>,
  vars: Readonly<Record<string, VarLayout | undefined>>,
): Buffer {
  const out = Buffer.from(base);
  for (const [name, value] of Object.entries(values)) {
    const v = vars[name];
    if (!v) throw new WireError('E_WIRE_RODATA_MISSING', `.rodata has no variable ${name} (object and generated code out of sync?)`);
    if (v.offset + v.size > out.length) throw new WireError('E_WIRE_RODATA_SHORT', `.rodata too short for ${name}`);
    write(out, name, v, value);
  }
  return out;
}
