// Field offsets taken from the generated layout (BTF of the built object), for the few decoders
// that read only some fields of a record: the sweeps, which see every thread on the machine
// each interval and must not allocate what nobody reads. Never a hand-written offset.
interface LayoutField {
  readonly name: string;
  readonly offset: number;
  readonly kind: string;
  readonly struct?: string;
  readonly length?: number;
}
interface Layout {
  readonly structs: { readonly [name: string]: { readonly fields: readonly LayoutField[] } };
}

/** Offset of `path` ("acct.nvcsw": through nested structs) in struct `name`. */
export function fieldOffset(layout: Layout, name: string, path: string): number {
  let struct = name;
  let at = 0;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    const f = layout.structs[struct]?.fields.find((x) => x.name === parts[i]);
    if (!f) throw new Error(`layout: ${name}.${path}: no such field`);
    at += f.offset;
    if (i < parts.length - 1) {
      if (f.kind !== 'struct' || !f.struct) throw new Error(`layout: ${name}.${path}: ${parts[i]} is not a struct`);
      struct = f.struct;
    }
  }
  return at;
}

/** Length of a fixed char array field (comm). */
export function fieldLength(layout: Layout, name: string, field: string): number {
  const f = layout.structs[name]?.fields.find((x) => x.name === field);
  if (!f || f.length === undefined) throw new Error(`layout: ${name}.${field}: not an array field`);
  return f.length;
}
