// A stand-in container runtime for tests: a real gRPC server on a unix socket serving the four
// CRI calls patrol makes (src/host/cri-proto.ts), from a table of pods and containers the test
// fills. It answers NOT_FOUND for what it does not hold, as containerd and CRI-O do, and counts
// the calls it got.
import grpc from '@grpc/grpc-js';
import { runtimeService, type CriMethod } from '../../src/host/cri-proto.js';

export interface FakePod {
  sandboxId: string;
  name: string;
  namespace: string;
  uid: string;
}

export interface FakeContainer {
  id: string;
  sandboxId: string;
  name: string;
  /** ImageSpec.image (containerd: a repo tag, or an image id) */
  image: string;
  /** ImageSpec.user_specified_image (newer kubelets) */
  userImage?: string;
}

export class FakeCri {
  readonly pods = new Map<string, FakePod>();
  readonly containers = new Map<string, FakeContainer>();
  readonly calls: Record<CriMethod, number> = { Version: 0, PodSandboxStatus: 0, ListContainers: 0, ContainerStatus: 0 };
  /** ms each answer is held back (a slow runtime) */
  delayMs = 0;
  private server: grpc.Server | null = null;

  private constructor(readonly socket: string) {}

  static async start(socket: string): Promise<FakeCri> {
    const f = new FakeCri(socket);
    await f.listen();
    return f;
  }

  addPod(p: FakePod, ...containers: FakeContainer[]): void {
    this.pods.set(p.sandboxId, p);
    for (const c of containers) this.containers.set(c.id, c);
  }

  private async listen(): Promise<void> {
    const svc = await runtimeService();
    const server = new grpc.Server();
    const notFound = (what: string) => ({ code: grpc.status.NOT_FOUND, details: `${what} not found` });
    const answer = <T>(m: CriMethod, f: (req: Record<string, any>) => T | { code: number; details: string }) =>
      (call: grpc.ServerUnaryCall<Record<string, any>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.calls[m]++;
        const r = f(call.request);
        setTimeout(() => (r !== null && typeof r === 'object' && 'code' in r ? cb(r as grpc.ServiceError) : cb(null, r)), this.delayMs);
      };
    server.addService(svc as unknown as grpc.ServiceDefinition, {
      Version: answer('Version', () => ({ version: '0.1.0', runtime_name: 'fakecri', runtime_version: '1.0.0', runtime_api_version: 'v1' })),
      ContainerStatus: answer('ContainerStatus', (req) => {
        const c = this.containers.get(req.container_id);
        if (!c) return notFound(`container ${req.container_id}`);
        return { status: { id: c.id, metadata: { name: c.name }, image: { image: c.image, user_specified_image: c.userImage ?? '' } } };
      }),
      ListContainers: answer('ListContainers', (req) => ({
        containers: [...this.containers.values()].filter((c) => !req.filter?.id || c.id.startsWith(req.filter.id)).map((c) => ({ id: c.id, pod_sandbox_id: c.sandboxId, metadata: { name: c.name } })),
      })),
      PodSandboxStatus: answer('PodSandboxStatus', (req) => {
        const p = this.pods.get(req.pod_sandbox_id);
        if (!p) return notFound(`pod sandbox ${req.pod_sandbox_id}`);
        return { status: { id: p.sandboxId, metadata: { name: p.name, namespace: p.namespace, uid: p.uid } } };
      }),
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${this.socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    this.server = server;
  }

  /** Stops answering (the socket file goes away, like a stopped runtime's). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    s?.forceShutdown();
  }

  /** Serves again on the same socket. */
  async restart(): Promise<void> {
    if (!this.server) await this.listen();
  }
}
