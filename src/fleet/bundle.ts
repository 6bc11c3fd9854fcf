// Bundles (docs/fleet.md, "Bundles"): what a rollout ships. A bundle is a directory with any of
// rules/, checks/, bpf/ (the sensors' objects) and a config overlay (config.yaml), plus an
// optional manifest.yaml (name, description, min_kernel). `patrol fleet bundle create` packs it
// into one file:
//
//   PATROL-BUNDLE 1\n <header length>\n <header JSON> <file bytes, in the manifest's order>
//
// The header holds the manifest (every file's path, size and sha256), the bundle id and an
// ed25519 signature. The id is content-addressed: "sha256:" + the sha256 of the manifest's
// canonical JSON, which names every file's hash, so any change of any byte changes the id. The
// signature is over "patrol-bundle:" + id. Agents trust a bundle only when a key of their
// fleet.trusted_keys verifies it; the public key in the header only says which key signed it.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PatrolError } from '../shared/errors.js';
import { canonicalJson, sha256Hex } from '../shared/canonical.js';

export type BundleErrorCode =
  /** bad input to `bundle create` (a file that cannot be in a bundle, an unreadable key) */
  | 'E_BUNDLE_USAGE'
  /** not a bundle file, or a header that is not the documented one */
  | 'E_BUNDLE_FORMAT'
  /** a file's bytes do not match the manifest, or the id does not match the manifest */
  | 'E_BUNDLE_CORRUPT'
  /** signed by no key in fleet.trusted_keys (or none is configured) */
  | 'E_BUNDLE_UNTRUSTED'
  /** a trusted key's signature that does not verify */
  | 'E_BUNDLE_SIGNATURE'
  /** not in etcd (never pushed, or removed) */
  | 'E_BUNDLE_MISSING'
  /** the manifest's min_kernel is above this kernel */
  | 'E_BUNDLE_KERNEL';

export class BundleError extends PatrolError {
  constructor(
    override readonly code: BundleErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export const BUNDLE_MAGIC = 'PATROL-BUNDLE 1\n';
export const BUNDLE_MAX_BYTES = 64 << 20;
const MAX_FILES = 1000;

export type BundlePart = 'rules' | 'checks' | 'bpf' | 'config';
export const BPF_OBJECTS = ['lifecycle.bpf.o', 'state.bpf.o'] as const;

/** Where a file may be in a bundle, and the part it belongs to. Nothing else is accepted (and
 *  no path can leave the directory it is unpacked into). */
export function partOf(path: string): BundlePart | null {
  if (path === 'config.yaml') return 'config';
  if (/^rules\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.ya?ml$/.test(path)) return 'rules';
  if (/^checks\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(patrol|check)$/.test(path)) return 'checks';
  if (/^bpf\/(lifecycle|state)\.bpf\.o$/.test(path)) return 'bpf';
  return null;
}

const FileEntry = z.object({ path: z.string(), size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict();
export const Manifest = z
  .object({
    schema: z.literal(1),
    name: z.string().max(128).nullable(),
    description: z.string().max(1024).nullable(),
    /** the oldest kernel the bundle runs on ("5.15"), or null */
    min_kernel: z.string().regex(/^\d+(\.\d+){0,2}$/).nullable(),
    parts: z.array(z.enum(['rules', 'checks', 'bpf', 'config'])),
    files: z.array(FileEntry).max(MAX_FILES),
  })
  .strict();
export type Manifest = z.infer<typeof Manifest>;

const Header = z
  .object({
    id: z.string(),
    manifest: Manifest,
    signature: z.object({ alg: z.literal('ed25519'), key_id: z.string(), public_key: z.string(), value: z.string() }).strict(),
  })
  .strict();
type Header = z.infer<typeof Header>;

export interface Bundle {
  id: string;
  manifest: Manifest;
  /** who signed it: the key id (16 hex digits of the sha256 of the public key's SPKI DER) */
  keyId: string;
  publicKey: string;
  signature: Buffer;
  files: Map<string, Buffer>;
  size: number;
}

export interface TrustedKey {
  id: string;
  path: string;
  key: KeyObject;
}

export const keyIdOf = (k: KeyObject): string => sha256Hex(k.export({ type: 'spki', format: 'der' })).slice(0, 16);
export const bundleIdOf = (m: Manifest): string => `sha256:${sha256Hex(canonicalJson(m))}`;
const signedText = (id: string) => Buffer.from(`patrol-bundle:${id}`);

/** A short form for tables: "sha256:1a2b3c4d5e6f". */
export const shortId = (id: string | null): string => (id === null ? '-' : id.startsWith('sha256:') ? id.slice(0, 19) : id);

// ------------------------------------------------------------------ create

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(join(dir, r));
      if (st.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}

/** Reads an ed25519 private key (PEM). */
export function readPrivateKey(path: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    throw new BundleError('E_BUNDLE_USAGE', `--key: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let k: KeyObject;
  try {
    k = createPrivateKey(pem);
  } catch (e) {
    throw new BundleError('E_BUNDLE_USAGE', `--key: ${path} is not a PEM private key: ${(e as Error).message}`);
  }
  if (k.asymmetricKeyType !== 'ed25519') throw new BundleError('E_BUNDLE_USAGE', `--key: ${path} is a ${k.asymmetricKeyType ?? 'symmetric'} key; bundles are signed with ed25519 (openssl genpkey -algorithm ed25519)`);
  return k;
}

/** Packs `dir` into a signed bundle file. Throws BundleError('E_BUNDLE_USAGE') naming what
 *  cannot be in a bundle. */
export function createBundle(dir: string, key: KeyObject): { bytes: Buffer; id: string; manifest: Manifest } {
  let paths: string[];
  try {
    paths = listFiles(dir);
  } catch (e) {
    throw new BundleError('E_BUNDLE_USAGE', `cannot read ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let meta: { name?: unknown; description?: unknown; min_kernel?: unknown } = {};
  const bad: string[] = [];
  const files: Array<{ path: string; data: Buffer }> = [];
  for (const p of paths) {
    if (p === 'manifest.yaml') {
      const m: unknown = parseYaml(readFileSync(join(dir, p), 'utf8'));
      if (m !== null && (typeof m !== 'object' || Array.isArray(m))) throw new BundleError('E_BUNDLE_USAGE', `${p}: expected a mapping (name, description, min_kernel)`);
      meta = (m ?? {}) as typeof meta;
      const unknown = Object.keys(meta).filter((k) => !['name', 'description', 'min_kernel'].includes(k));
      if (unknown.length) throw new BundleError('E_BUNDLE_USAGE', `${p}: unknown key ${unknown.join(', ')} (name, description, min_kernel)`);
      continue;
    }
    if (partOf(p) === null) bad.push(p);
    else files.push({ path: p, data: readFileSync(join(dir, p)) });
  }
  if (bad.length) {
    throw new BundleError('E_BUNDLE_USAGE', `${dir}: not part of a bundle: ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', …' : ''} (a bundle holds rules/*.yaml, checks/*.patrol, bpf/lifecycle.bpf.o, bpf/state.bpf.o, config.yaml and manifest.yaml)`);
  }
  if (files.length === 0) throw new BundleError('E_BUNDLE_USAGE', `${dir}: nothing to bundle (rules/, checks/, bpf/ or config.yaml)`);
  const cfg = files.find((f) => f.path === 'config.yaml');
  if (cfg) checkOverlayText(cfg.data.toString('utf8'), 'E_BUNDLE_USAGE');
  const str = (v: unknown, what: string): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' && typeof v !== 'number') throw new BundleError('E_BUNDLE_USAGE', `manifest.yaml: ${what} must be text`);
    return String(v);
  };
  const minKernel = str(meta.min_kernel, 'min_kernel');
  if (minKernel !== null && !/^\d+(\.\d+){0,2}$/.test(minKernel)) throw new BundleError('E_BUNDLE_USAGE', `manifest.yaml: min_kernel "${minKernel}" is not a version like 5.15`);
  const manifest: Manifest = {
    schema: 1,
    name: str(meta.name, 'name'),
    description: str(meta.description, 'description'),
    min_kernel: minKernel,
    parts: (['rules', 'checks', 'bpf', 'config'] as const).filter((p) => files.some((f) => partOf(f.path) === p)),
    files: files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256Hex(f.data) })),
  };
  const id = bundleIdOf(manifest);
  const pub = createPublicKey(key);
  const header: Header = {
    id,
    manifest,
    signature: { alg: 'ed25519', key_id: keyIdOf(pub), public_key: pub.export({ type: 'spki', format: 'der' }).toString('base64'), value: sign(null, signedText(id), key).toString('base64') },
  };
  const h = Buffer.from(JSON.stringify(header));
  const bytes = Buffer.concat([Buffer.from(`${BUNDLE_MAGIC}${h.length}\n`), h, ...files.map((f) => f.data)]);
  if (bytes.length > BUNDLE_MAX_BYTES) throw new BundleError('E_BUNDLE_USAGE', `the bundle is ${bytes.length} bytes; the bound is ${BUNDLE_MAX_BYTES}`);
  return { bytes, id, manifest };
}

/** The config overlay: a YAML mapping that does not name what the bundle's own parts set. */
export function checkOverlayText(text: string, code: BundleErrorCode): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new BundleError(code, `config.yaml: ${(e as Error).message.split('\n')[0]}`);
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new BundleError(code, 'config.yaml: expected a mapping of settings, as in the agent configuration');
  const o = v as Record<string, Record<string, unknown> | undefined>;
  const owned = [['rules', 'dir'], ['checks', 'dir'], ['agent', 'bpf_dir']].filter(([s, k]) => o[s!] && typeof o[s!] === 'object' && k! in o[s!]!);
  if (owned.length) throw new BundleError(code, `config.yaml sets ${owned.map(([s, k]) => `${s}.${k}`).join(', ')}: a bundle ships rules/, checks/ and bpf/ themselves, and the node decides where they are unpacked`);
  return o as Record<string, unknown>;
}

// ------------------------------------------------------------------ read and verify

/** Parses a bundle file and checks it is whole: every file's hash and the id. Does not judge
 *  the signature (verifyBundle does, against the trusted keys). */
export function parseBundle(bytes: Buffer): Bundle {
  if (bytes.length > BUNDLE_MAX_BYTES) throw new BundleError('E_BUNDLE_FORMAT', `${bytes.length} bytes: larger than a bundle can be (${BUNDLE_MAX_BYTES})`);
  if (bytes.subarray(0, BUNDLE_MAGIC.length).toString('latin1') !== BUNDLE_MAGIC) throw new BundleError('E_BUNDLE_FORMAT', 'not a patrol bundle (it does not start with "PATROL-BUNDLE 1")');
  const nl = bytes.indexOf(0x0a, BUNDLE_MAGIC.length);
  const len = nl < 0 ? NaN : Number(bytes.subarray(BUNDLE_MAGIC.length, nl).toString('latin1'));
  if (!Number.isInteger(len) || len <= 0 || nl + 1 + len > bytes.length) throw new BundleError('E_BUNDLE_FORMAT', 'a damaged bundle header');
  let header: Header;
  try {
    header = Header.parse(JSON.parse(bytes.subarray(nl + 1, nl + 1 + len).toString('utf8')));
  } catch (e) {
    throw new BundleError('E_BUNDLE_FORMAT', `the bundle header is not the documented one: ${(e as Error).message.split('\n')[0]}`);
  }
  const m = header.manifest;
  if (bundleIdOf(m) !== header.id) throw new BundleError('E_BUNDLE_CORRUPT', `the id ${header.id} is not the manifest's (${bundleIdOf(m)})`);
  const files = new Map<string, Buffer>();
  let off = nl + 1 + len;
  for (const f of m.files) {
    if (partOf(f.path) === null || files.has(f.path)) throw new BundleError('E_BUNDLE_FORMAT', `the manifest names ${JSON.stringify(f.path)}, which cannot be in a bundle`);
    const data = bytes.subarray(off, off + f.size);
    off += f.size;
    if (data.length !== f.size) throw new BundleError('E_BUNDLE_CORRUPT', `${f.path}: truncated`);
    if (sha256Hex(data) !== f.sha256) throw new BundleError('E_BUNDLE_CORRUPT', `${f.path}: its bytes do not match the manifest's sha256`);
    files.set(f.path, data);
  }
  if (off !== bytes.length) throw new BundleError('E_BUNDLE_CORRUPT', `${bytes.length - off} bytes after the last file`);
  return { id: header.id, manifest: m, keyId: header.signature.key_id, publicKey: header.signature.public_key, signature: Buffer.from(header.signature.value, 'base64'), files, size: bytes.length };
}

/** Verifies the signature with the trusted key it names; throws E_BUNDLE_UNTRUSTED (no such
 *  key) or E_BUNDLE_SIGNATURE (the key does not verify it). Returns the key's path. */
export function verifyBundle(b: Bundle, trusted: readonly TrustedKey[]): string {
  if (trusted.length === 0) throw new BundleError('E_BUNDLE_UNTRUSTED', 'no fleet.trusted_keys configured: this agent applies no bundle');
  const k = trusted.find((t) => t.id === b.keyId);
  if (!k) throw new BundleError('E_BUNDLE_UNTRUSTED', `signed by key ${b.keyId}, which is not among fleet.trusted_keys (${trusted.map((t) => t.id).join(', ')})`);
  let ok = false;
  try {
    ok = verify(null, signedText(b.id), k.key, b.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new BundleError('E_BUNDLE_SIGNATURE', `the signature of ${b.id} does not verify with trusted key ${k.id} (${k.path})`);
  return k.path;
}

/** fleet.trusted_keys: ed25519 public keys (PEM). Throws PatrolError('E_CONFIG'). */
export function loadTrustedKeys(paths: readonly string[]): TrustedKey[] {
  return paths.map((path) => {
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(path));
    } catch (e) {
      throw new PatrolError('E_CONFIG', `fleet.trusted_keys: ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message.split('\n')[0]}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new PatrolError('E_CONFIG', `fleet.trusted_keys: ${path} is a ${key.asymmetricKeyType} key, not ed25519`);
    return { id: keyIdOf(key), path, key };
  });
}

/** Whether this kernel (uname -r) is at least `min` ("5.15"). */
export function kernelAtLeast(release: string, min: string): boolean {
  const r = (/^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(release) ?? []).slice(1).map((x) => Number(x ?? 0));
  const m = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const a = r[i] ?? 0;
    const b = m[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** Unpacks a verified bundle into `dest` (replaced whole: written beside it, then renamed). */
export function unpackBundle(b: Bundle, dest: string): void {
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const [path, data] of b.files) {
    mkdirSync(dirname(join(tmp, path)), { recursive: true });
    writeFileSync(join(tmp, path), data, { mode: 0o644 });
  }
  writeFileSync(join(tmp, 'manifest.json'), JSON.stringify({ id: b.id, key_id: b.keyId, ...b.manifest }, null, 1));
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(tmp, dest);
}
