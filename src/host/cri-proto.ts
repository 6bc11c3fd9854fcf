// The part of the Kubernetes Container Runtime Interface (CRI, package runtime.v1) that identity
// needs: four read-only calls of RuntimeService and, of their messages, only the fields read
// here. Written for patrol; the package, service, method names and field numbers are those of
// the CRI API (a protobuf reader skips the fields a message has and this one does not name).
// Used by the client (cri.ts) and by the tests' stand-in runtime. protobufjs is loaded on first
// use: most agents and every `patrol trace` without pods never need it.

export const CRI_PROTO = `
syntax = "proto3";
package runtime.v1;

service RuntimeService {
  rpc Version(VersionRequest) returns (VersionResponse) {}
  rpc PodSandboxStatus(PodSandboxStatusRequest) returns (PodSandboxStatusResponse) {}
  rpc ListContainers(ListContainersRequest) returns (ListContainersResponse) {}
  rpc ContainerStatus(ContainerStatusRequest) returns (ContainerStatusResponse) {}
}

message VersionRequest { string version = 1; }
message VersionResponse {
  string version = 1;
  string runtime_name = 2;
  string runtime_version = 3;
  string runtime_api_version = 4;
}

message PodSandboxMetadata {
  string name = 1;
  string uid = 2;
  string namespace = 3;
}
message PodSandboxStatusRequest { string pod_sandbox_id = 1; }
message PodSandboxStatus {
  string id = 1;
  PodSandboxMetadata metadata = 2;
}
message PodSandboxStatusResponse { PodSandboxStatus status = 1; }

message ContainerMetadata { string name = 1; }
message ImageSpec {
  string image = 1;
  string user_specified_image = 18;
}

message ContainerFilter { string id = 1; }
message ListContainersRequest { ContainerFilter filter = 1; }
message Container {
  string id = 1;
  string pod_sandbox_id = 2;
  ContainerMetadata metadata = 3;
}
message ListContainersResponse { repeated Container containers = 1; }

message ContainerStatusRequest { string container_id = 1; }
message ContainerStatus {
  string id = 1;
  ContainerMetadata metadata = 2;
  ImageSpec image = 8;
}
message ContainerStatusResponse { ContainerStatus status = 1; }
`;

/** A unary method as @grpc/grpc-js takes it (client and server). */
export interface UnaryMethod {
  path: string;
  requestStream: false;
  responseStream: false;
  requestSerialize: (v: object) => Buffer;
  requestDeserialize: (b: Buffer) => Record<string, unknown>;
  responseSerialize: (v: object) => Buffer;
  responseDeserialize: (b: Buffer) => Record<string, unknown>;
  originalName: string;
}

export type CriMethod = 'Version' | 'PodSandboxStatus' | 'ListContainers' | 'ContainerStatus';

let service: Promise<Record<CriMethod, UnaryMethod>> | null = null;

/** RuntimeService's four methods, with their protobuf codecs (field names as in the .proto:
 *  snake_case; unset strings read as ''). */
export function runtimeService(): Promise<Record<CriMethod, UnaryMethod>> {
  service ??= build();
  return service;
}

async function build(): Promise<Record<CriMethod, UnaryMethod>> {
  const { default: protobuf } = await import('protobufjs');
  const root = protobuf.parse(CRI_PROTO, { keepCase: true }).root;
  const svc = root.lookupService('runtime.v1.RuntimeService');
  const codec = (name: string) => {
    const t = root.lookupType(name);
    return {
      encode: (v: object) => Buffer.from(t.encode(t.fromObject(v)).finish()),
      decode: (b: Buffer) => t.toObject(t.decode(b), { defaults: true, arrays: true, objects: true }) as Record<string, unknown>,
    };
  };
  const out = {} as Record<CriMethod, UnaryMethod>;
  for (const m of svc.methodsArray) {
    const req = codec(`runtime.v1.${m.requestType}`);
    const res = codec(`runtime.v1.${m.responseType}`);
    out[m.name as CriMethod] = {
      path: `/runtime.v1.RuntimeService/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: req.encode,
      requestDeserialize: req.decode,
      responseSerialize: res.encode,
      responseDeserialize: res.decode,
      originalName: m.name,
    };
  }
  return out;
}
