// A read-only client of the container runtime's CRI socket (containerd, CRI-O, cri-dockerd):
// what the runtime says of a container of a pod — its name and image, and its pod's name,
// namespace and uid. Three unary calls per container (ContainerStatus, ListContainers for the
// sandbox id, PodSandboxStatus), each with a deadline. No cache and no queue here: the caller
// (src/process/cri-identity.ts) asks once per container, off the event path.
//
// `auto` looks for the usual sockets each time it has none (a runtime may start after patrol).
// @grpc/grpc-js is loaded at the first lookup (~0.2 s of module loading nobody without pods
// should pay at start).
import { existsSync } from 'node:fs';
import type * as Grpc from '@grpc/grpc-js';
import { PatrolError } from '../shared/errors.js';
import { runtimeService, type CriMethod, type UnaryMethod } from './cri-proto.js';

type GrpcModule = typeof Grpc;
let grpcLoad: Promise<GrpcModule> | null = null;
// a CommonJS module: its exports are the namespace's default
const loadGrpc = (): Promise<GrpcModule> => (grpcLoad ??= import('@grpc/grpc-js').then((m) => (m as unknown as { default: GrpcModule }).default));
// gRPC status codes (fixed by the gRPC protocol)
const NOT_FOUND = 5;
const DEADLINE_EXCEEDED = 4;
const UNIMPLEMENTED = 12;
const UNAVAILABLE = 14;

/** Where runtimes put their CRI socket, in the order `auto` tries them. */
export const CRI_SOCKETS: readonly string[] = [
  '/run/containerd/containerd.sock',
  '/run/crio/crio.sock',
  '/run/k3s/containerd/containerd.sock',
  '/run/cri-dockerd.sock',
];

export type CriErrorCode = 'E_CRI_ABSENT' | 'E_CRI_UNAVAILABLE' | 'E_CRI_TIMEOUT' | 'E_CRI_UNIMPLEMENTED' | 'E_CRI';

export class CriError extends PatrolError {
  constructor(
    code: CriErrorCode,
    message: string,
    /** the gRPC status code, when the runtime answered one */
    readonly grpcCode?: number,
  ) {
    super(code, message);
  }
}

/** What the runtime said of one container. Strings the runtime left empty are absent. */
export interface CriContainerFacts {
  /** the id asked about is a pod sandbox (the pause container), not a container */
  sandbox: boolean;
  /** the container's name in the pod spec */
  containerName?: string;
  /** the image as the user named it (`nginx:1.25`), else the runtime's name for it */
  image?: string;
  podName?: string;
  podNamespace?: string;
  podUid?: string;
}

export interface CriRuntimeInfo {
  /** `containerd`, `cri-o`, … */
  name: string;
  version: string;
}

export interface CriClientOptions {
  /** a socket path, or `auto`: the first of CRI_SOCKETS that exists */
  socket: string;
  /** deadline of each call */
  timeoutMs: number;
}

type Row = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Row => (typeof v === 'object' && v !== null ? (v as Row) : {});
/** An image id (`sha256:<hex>` or bare hex) is not a name. */
const IMAGE_ID = /^(?:sha256:)?[0-9a-f]{64}$/;

export class CriClient {
  private client: Grpc.Client | null = null;
  private methods: Record<CriMethod, UnaryMethod> | null = null;
  private grpc: GrpcModule | null = null;
  private path: string | null = null;
  private info: CriRuntimeInfo | null = null;

  constructor(private readonly opts: CriClientOptions) {}

  /** The socket in use (null: none found yet under `auto`). */
  get socket(): string | null {
    return this.path;
  }

  /** The runtime's name and version, once it answered. */
  get runtime(): CriRuntimeInfo | null {
    return this.info;
  }

  /** What the runtime says of container `id`; null when it knows no such container or sandbox.
   *  Rejects with a CriError when the runtime cannot be asked. */
  async describe(id: string): Promise<CriContainerFacts | null> {
    this.grpc ??= await loadGrpc();
    this.methods ??= await runtimeService();
    this.connect(this.grpc);
    if (this.info === null) {
      const v = await this.call('Version', { version: 'v1' });
      this.info = { name: str(v.runtime_name) ?? 'unknown', version: str(v.runtime_version) ?? '' };
    }
    const st = await this.callOrNull('ContainerStatus', { container_id: id });
    if (st === null) {
      // the pause container of a pod: its cgroup is shaped like a container's
      const pod = await this.callOrNull('PodSandboxStatus', { pod_sandbox_id: id });
      return pod === null ? null : { sandbox: true, ...podFacts(pod) };
    }
    const status = obj(st.status);
    const spec = obj(status.image);
    const named = str(spec.user_specified_image) ?? str(spec.image);
    const out: CriContainerFacts = { sandbox: false };
    const name = str(obj(status.metadata).name);
    if (name !== undefined) out.containerName = name;
    if (named !== undefined && !IMAGE_ID.test(named)) out.image = named;
    const list = await this.call('ListContainers', { filter: { id } });
    const mine = (Array.isArray(list.containers) ? (list.containers as Row[]) : []).find((c) => c.id === id);
    const sandboxId = str(mine?.pod_sandbox_id);
    if (sandboxId !== undefined) {
      const pod = await this.callOrNull('PodSandboxStatus', { pod_sandbox_id: sandboxId });
      if (pod !== null) Object.assign(out, podFacts(pod));
    }
    return out;
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }

  private connect(grpc: GrpcModule): void {
    if (this.client !== null) return;
    let path = this.opts.socket;
    if (path === 'auto') {
      const found = CRI_SOCKETS.find((p) => existsSync(p));
      if (found === undefined) throw new CriError('E_CRI_ABSENT', `no CRI socket found (tried ${CRI_SOCKETS.join(', ')})`);
      path = found;
    }
    this.path = path;
    this.info = null;
    this.client = new grpc.Client(`unix://${path}`, grpc.credentials.createInsecure(), {
      'grpc.enable_retries': 0,
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 10_000,
      'grpc.max_receive_message_length': 4 << 20,
    });
  }

  private async callOrNull(method: CriMethod, req: object): Promise<Row | null> {
    try {
      return await this.call(method, req);
    } catch (e) {
      if (e instanceof CriError && e.grpcCode === NOT_FOUND) return null;
      throw e;
    }
  }

  private call(method: CriMethod, req: object): Promise<Row> {
    const m = this.methods![method];
    const client = this.client!;
    const path = this.path!;
    const grpc = this.grpc!;
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, new grpc.Metadata(), { deadline: Date.now() + this.opts.timeoutMs }, (err, res) => {
        if (err === null && res !== undefined) return resolve(res);
        reject(toCriError(err, path, method, this.opts.timeoutMs));
      });
    }).catch((e: unknown) => {
      // a socket that vanished (the runtime stopped, or `auto` may find another): look again next time
      if (e instanceof CriError && e.code === 'E_CRI_UNAVAILABLE' && this.client === client) this.close();
      throw e;
    }) as Promise<Row>;
  }
}

function podFacts(res: Row): Pick<CriContainerFacts, 'podName' | 'podNamespace' | 'podUid'> {
  const md = obj(obj(res.status).metadata);
  const out: Pick<CriContainerFacts, 'podName' | 'podNamespace' | 'podUid'> = {};
  const name = str(md.name);
  const ns = str(md.namespace);
  const uid = str(md.uid);
  if (name !== undefined) out.podName = name;
  if (ns !== undefined) out.podNamespace = ns;
  if (uid !== undefined) out.podUid = uid;
  return out;
}

function toCriError(err: Grpc.ServiceError | null, path: string, method: string, timeoutMs: number): CriError {
  const code = err?.code;
  const detail = err?.details || err?.message || 'no answer';
  switch (code) {
    case UNAVAILABLE:
      return new CriError('E_CRI_UNAVAILABLE', `CRI socket ${path}: unavailable (${detail})`, code);
    case DEADLINE_EXCEEDED:
      return new CriError('E_CRI_TIMEOUT', `CRI socket ${path}: ${method} took longer than ${timeoutMs} ms`, code);
    case UNIMPLEMENTED:
      return new CriError('E_CRI_UNIMPLEMENTED', `CRI socket ${path}: ${method} is not implemented (not a CRI runtime.v1 endpoint, or its CRI plugin is off)`, code);
    default:
      return new CriError('E_CRI', `CRI socket ${path}: ${method}: ${detail}`, code);
  }
}
