// Bundles in etcd: `patrol fleet bundle push` writes the file in chunks of at most 1 MiB
// (bundles/<id>/chunk/<n>; etcd refuses requests over 1.5 MiB by default), then
// bundles/<id>/meta, so a reader that finds the meta finds every chunk. Content-addressed: a
// second push of the same bundle writes nothing; the chunks of an id never change.
import { hostname, userInfo } from 'node:os';
import { z } from 'zod';
import { sha256Hex } from '../shared/canonical.js';
import type { EtcdClient } from './client.js';
import { SCHEMA, decode, encode, type Keys } from './keys.js';
import { BundleError, parseBundle, type Manifest } from './bundle.js';

export const CHUNK_BYTES = 1 << 20;

export const BundleMetaValue = z
  .object({
    schema: z.literal(SCHEMA),
    id: z.string(),
    size: z.number(),
    /** sha256 of the whole file */
    sha256: z.string(),
    chunks: z.number(),
    chunk_bytes: z.number(),
    name: z.string().nullable(),
    parts: z.array(z.string()),
    key_id: z.string(),
    pushed_at: z.string(),
    pushed_by: z.string(),
  })
  .passthrough();
export type BundleMetaValue = z.infer<typeof BundleMetaValue>;

export interface PushResult {
  id: string;
  size: number;
  chunks: number;
  /** already there: nothing was written */
  existed: boolean;
  revision: number;
  name: string | null;
  parts: Manifest['parts'];
}

function who(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return hostname();
  }
}

/** Stores a bundle file (checked whole first: a damaged file is refused here, not by every
 *  agent). The signature is judged by the agents, against their own trusted keys. */
export async function pushBundle(client: EtcdClient, keys: Keys, bytes: Buffer, pushedBy: string = who()): Promise<PushResult> {
  const b = parseBundle(bytes);
  const sha = sha256Hex(bytes);
  const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
  const base = { id: b.id, size: bytes.length, chunks, name: b.manifest.name, parts: b.manifest.parts };
  const cur = await client.get(keys.bundleMeta(b.id));
  const old = cur.kv ? decode(BundleMetaValue, cur.kv.value) : null;
  if (old && old.sha256 === sha) return { ...base, existed: true, revision: cur.kv!.modRevision };
  for (let i = 0; i < chunks; i++) await client.put(keys.bundleChunk(b.id, i), bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES), { deadlineMs: 10_000 });
  const meta: BundleMetaValue = {
    schema: SCHEMA, id: b.id, size: bytes.length, sha256: sha, chunks, chunk_bytes: CHUNK_BYTES, name: b.manifest.name, parts: b.manifest.parts, key_id: b.keyId,
    pushed_at: new Date().toISOString(), pushed_by: pushedBy,
  };
  // the same id with other bytes can only be another signature of the same content: the
  // newest push wins, and the chunks above already are its bytes
  const revision = await client.put(keys.bundleMeta(b.id), encode(meta));
  return { ...base, existed: false, revision };
}

export async function readBundleMeta(client: EtcdClient, keys: Keys, id: string): Promise<BundleMetaValue | null> {
  const r = await client.get(keys.bundleMeta(id));
  return r.kv ? decode(BundleMetaValue, r.kv.value) : null;
}

/** The bundle file as pushed; E_BUNDLE_MISSING when it is not there, E_BUNDLE_CORRUPT when the
 *  chunks do not add up to the meta's size and hash. */
export async function fetchBundle(client: EtcdClient, keys: Keys, id: string): Promise<Buffer> {
  const meta = await readBundleMeta(client, keys, id);
  if (meta === null) throw new BundleError('E_BUNDLE_MISSING', `bundle ${id} is not in etcd (patrol fleet bundle push FILE)`);
  const parts: Buffer[] = [];
  // one chunk per request: a response must stay under gRPC's 4 MiB
  for (let i = 0; i < meta.chunks; i++) {
    const r = await client.get(keys.bundleChunk(id, i), { deadlineMs: 10_000 });
    if (!r.kv) throw new BundleError('E_BUNDLE_CORRUPT', `bundle ${id}: chunk ${i} of ${meta.chunks} is missing in etcd`);
    parts.push(r.kv.value);
  }
  const bytes = Buffer.concat(parts);
  if (bytes.length !== meta.size || sha256Hex(bytes) !== meta.sha256) throw new BundleError('E_BUNDLE_CORRUPT', `bundle ${id}: the chunks in etcd do not add up to the pushed file (${bytes.length} of ${meta.size} bytes)`);
  return bytes;
}
