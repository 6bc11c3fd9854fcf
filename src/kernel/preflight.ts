// Pre-flight of a sensor's successor (make-before-break reload): before anything is attached,
// the new object must be able to run here and share the running object's state. Each failure
// is a SensorReloadError whose code and message name what is missing or different; the running
// sensor is never touched by a failed pre-flight.
import { PatrolError } from '../shared/errors.js';
import { Btf, kernelBtfTracepoints } from './btf.js';
import type { InspectMap, ObjectFacts } from './native.js';

export type SensorReloadCode =
  | 'E_SENSOR_OBJECT' // the object file cannot be read or opened
  | 'E_SENSOR_PROGRAM' // a program the sensor needs is not in the object
  | 'E_SENSOR_BTF' // a BTF type the object needs is not in this kernel (tracepoint, CO-RE field)
  | 'E_SENSOR_MAP_LAYOUT' // a map it shares with the running object has another layout
  | 'E_SENSOR_WIRE_LAYOUT' // a record type is laid out differently (the decoders would misread it)
  | 'E_SENSOR_GENERATION' // no generation word or variable: it cannot take turns with the running one
  | 'E_SENSOR_VERIFIER' // the verifier rejected a program
  | 'E_SENSOR_LOAD' // another load failure
  | 'E_SENSOR_ATTACH'; // a program could not be attached

export class SensorReloadError extends PatrolError {
  constructor(
    code: SensorReloadCode,
    message: string,
    /** the verifier or libbpf log lines, when the kernel refused */
    readonly log: string[] = [],
  ) {
    super(code, message);
  }
}

/** libbpf's map type numbers, for messages. */
const MAP_TYPES: Record<number, string> = { 1: 'hash', 2: 'array', 5: 'percpu_hash', 6: 'percpu_array', 9: 'lru_hash', 27: 'ringbuf', 29: 'task_storage' };
const mapType = (t: number) => MAP_TYPES[t] ?? `type ${t}`;

/** Sections whose target is a kernel BTF tracepoint: the kernel needs `btf_trace_<name>`. */
export function btfTracepointOf(section: string): string | null {
  const m = /^tp_btf\/(.+)$/.exec(section);
  return m ? m[1]! : null;
}

/** Tracepoints the object's autoloaded tp_btf programs need and this kernel lacks. */
export function missingTracepoints(facts: ObjectFacts, have: ReadonlySet<string> = kernelBtfTracepoints()): Array<{ program: string; tracepoint: string }> {
  const out: Array<{ program: string; tracepoint: string }> = [];
  for (const p of facts.programs) {
    if (!p.autoload) continue;
    const tp = btfTracepointOf(p.section);
    if (tp !== null && !have.has(tp)) out.push({ program: p.name, tracepoint: tp });
  }
  return out;
}

function btfOf(facts: ObjectFacts): Btf | null {
  return facts.btf ? Btf.parse(facts.btf) : null;
}

/** Why map `a` (running) and `b` (new) cannot be one map, or null when they can. */
export function mapMismatch(a: InspectMap, ba: Btf | null, b: InspectMap, bb: Btf | null): string | null {
  const diffs: string[] = [];
  if (a.type !== b.type) diffs.push(`type ${mapType(a.type)} → ${mapType(b.type)}`);
  if (a.keySize !== b.keySize) diffs.push(`key ${a.keySize} → ${b.keySize} bytes`);
  if (a.valueSize !== b.valueSize) diffs.push(`value ${a.valueSize} → ${b.valueSize} bytes`);
  if (a.maxEntries !== b.maxEntries) diffs.push(`max_entries ${a.maxEntries} → ${b.maxEntries}`);
  if (a.flags !== b.flags) diffs.push(`flags 0x${a.flags.toString(16)} → 0x${b.flags.toString(16)}`);
  if (diffs.length === 0 && ba && bb) {
    // same sizes, another layout (fields moved or renamed): each side would misread the other
    for (const [what, ia, ib] of [['key', a.btfKeyTypeId, b.btfKeyTypeId], ['value', a.btfValueTypeId, b.btfValueTypeId]] as const) {
      if (ia === 0 || ib === 0) continue;
      const la = ba.layout(ia);
      const lb = bb.layout(ib);
      if (la !== lb) diffs.push(`${what} layout ${la} → ${lb}`);
    }
  }
  return diffs.length ? diffs.join(', ') : null;
}

export interface PreflightInput {
  sensor: string;
  running: ObjectFacts;
  next: ObjectFacts;
  /** programs that must be in the new object */
  programs: readonly string[];
  /** structs that must keep their layout (the records the decoders read) */
  wireTypes?: readonly string[];
  /** the generation word's map and the .rodata variable naming the object's generation */
  generation?: { map: string; variable: string };
  /** BTF tracepoints of this kernel (default: read from /sys/kernel/btf/vmlinux) */
  tracepoints?: ReadonlySet<string>;
}

export interface PreflightResult {
  /** maps of the running object the new one takes over */
  reuse: string[];
  /** .rodata variables of the new object (its own layout: a new build may move them) */
  rodataVars: Record<string, { offset: number; size: number; kind: string }>;
}

/** Checks everything that can be checked before load. Throws SensorReloadError. */
export function preflight(p: PreflightInput): PreflightResult {
  const names = new Set(p.next.programs.map((x) => x.name));
  const lacking = p.programs.filter((x) => !names.has(x));
  if (lacking.length) throw new SensorReloadError('E_SENSOR_PROGRAM', `${p.sensor}: the new object has no program ${lacking.join(', ')}`);

  const missing = missingTracepoints(p.next, p.tracepoints);
  if (missing.length) {
    const list = missing.map((m) => `btf_trace_${m.tracepoint} (program ${m.program}, tp_btf/${m.tracepoint})`).join(', ');
    throw new SensorReloadError('E_SENSOR_BTF', `${p.sensor}: this kernel's BTF lacks ${list}: the tracepoint does not exist here`);
  }

  let ba: Btf | null;
  let bb: Btf | null;
  try {
    ba = btfOf(p.running);
    bb = btfOf(p.next);
  } catch (e) {
    throw new SensorReloadError('E_SENSOR_OBJECT', `${p.sensor}: unreadable BTF in the object: ${(e as Error).message}`);
  }

  const running = new Map(p.running.maps.filter((m) => !m.internal).map((m) => [m.name, m]));
  const reuse: string[] = [];
  const bad: string[] = [];
  for (const m of p.next.maps) {
    if (m.internal) continue;
    const old = running.get(m.name);
    if (!old) continue; // a map only the new object has starts empty
    const why = mapMismatch(old, ba, m, bb);
    if (why) bad.push(`${m.name} (${why})`);
    else reuse.push(m.name);
  }
  if (bad.length) {
    throw new SensorReloadError('E_SENSOR_MAP_LAYOUT', `${p.sensor}: maps shared with the running object have another layout, so their state cannot be carried over: ${bad.join('; ')}. Restart the agent to load this object`);
  }

  if (p.wireTypes?.length) {
    if (!ba || !bb) throw new SensorReloadError('E_SENSOR_WIRE_LAYOUT', `${p.sensor}: an object without BTF: its record layouts cannot be checked`);
    const diffs: string[] = [];
    for (const name of p.wireTypes) {
      const ta = ba.find(name, 4);
      const tb = bb.find(name, 4);
      if (!tb) diffs.push(`${name} is missing`);
      else if (!ta || ba.layout(ta.id) !== bb.layout(tb.id)) diffs.push(`struct ${name} changed`);
    }
    if (diffs.length) throw new SensorReloadError('E_SENSOR_WIRE_LAYOUT', `${p.sensor}: the new object's records are laid out differently (${diffs.join(', ')}); this patrol's decoders read the running layout. Restart the agent with the matching patrol`);
  }

  const vars = bb ? bb.sectionVars('.rodata') : [];
  if (p.generation) {
    const g = p.generation;
    if (!p.next.maps.some((m) => m.name === g.map) || !reuse.includes(g.map)) {
      throw new SensorReloadError('E_SENSOR_GENERATION', `${p.sensor}: the new object does not share the generation word (map ${g.map}) with the running one`);
    }
    if (!vars.some((v) => v.name === g.variable)) throw new SensorReloadError('E_SENSOR_GENERATION', `${p.sensor}: the new object has no .rodata variable ${g.variable}`);
  }
  return { reuse, rodataVars: Object.fromEntries(vars.map((v) => [v.name, { offset: v.offset, size: v.size, kind: v.kind }])) };
}

/** A load failure as a reload reports it: a CO-RE relocation libbpf could not resolve names the
 *  type and field this kernel lacks; a verifier rejection names the program. */
export function loadFailure(sensor: string, err: { message: string; log?: string[]; program?: string }): SensorReloadError {
  const log = err.log ?? [];
  const core = log.map((l) => /failed to resolve CO-RE relocation (.*)$/.exec(l)?.[1]).find((x) => x !== undefined);
  if (core) {
    // "<byte_off> [12] struct task_struct___x.field (0:1 @ offset 8)": keep the type.field part
    const what = /\] (.+?) \(/.exec(core)?.[1] ?? core;
    return new SensorReloadError('E_SENSOR_BTF', `${sensor}: this kernel's BTF lacks ${what} (a CO-RE relocation of the new object cannot be resolved)`, log);
  }
  if (err.program) return new SensorReloadError('E_SENSOR_VERIFIER', `${sensor}: the verifier rejected the new object: ${err.message}`, log);
  return new SensorReloadError('E_SENSOR_LOAD', `${sensor}: the new object failed to load: ${err.message}`, log);
}
