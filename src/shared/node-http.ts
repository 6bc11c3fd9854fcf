// node:http, loaded the CommonJS way. An ESM import of a builtin builds its namespace by reading
// every export, and node:http's lazy WebSocket, CloseEvent and MessageEvent getters then load
// undici, the web streams and worker_threads: 2.9 MB of heap on Node 24 that neither the agent
// nor the CLI uses (bench/README.md, "Session 24"). require() hands back the module object and
// reads no export until it is used.
import { createRequire } from 'node:module';

export const nodeHttp = createRequire(import.meta.url)('node:http') as typeof import('node:http');
