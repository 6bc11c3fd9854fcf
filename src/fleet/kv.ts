// A key-value pair as the fleet module sees it (numbers, not the package's decimal strings).
import type { IKeyValue } from 'etcd3';

export interface KV {
  key: string;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease id (decimal), '0' for none */
  lease: string;
}

export function kvOf(kv: IKeyValue): KV {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value,
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
    lease: String(kv.lease ?? '0'),
  };
}

export const keyBuf = (k: string) => Buffer.from(k, 'utf8');
