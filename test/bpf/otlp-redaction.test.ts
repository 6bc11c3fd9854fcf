// OTLP and argv redaction end to end (issue 17), as root, through the real agent:
//   - a local OTLP/HTTP receiver decoding protobuf with the SDK's own generated definitions
//     (@opentelemetry/otlp-transformer) gets log records (exec, exit, the alert) and metrics
//     (process.cpu.time, process.memory.usage, process.disk.io) whose attributes match a process
//     this test started;
//   - `--password=hunter2` in that process's argv never reaches a file (patrol trace --json, the
//     alerts file), the API (a process, the event stream), the store (the database bytes) or
//     OTLP (the request bytes); the records say they were redacted (the stored exit too:
//     process_exits.args_redacted);
//   - `patrol trace --no-redact` is refused unless root writes to a terminal.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, sleep } from './helpers.js';

const PATROL = fileURLToPath(new URL('../../bin/patrol', import.meta.url));
// The SDK's own protobuf definitions (protobufjs, generated from opentelemetry-proto)
const root = createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root') as any;
const LogsRequest = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;
const MetricsRequest = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
const SECRET = 'hunter2';

type Attr = Record<string, unknown>;
/** OTLP KeyValue[] → a plain object */
function attrs(kvs: Array<{ key: string; value: any }> | undefined): Attr {
  const out: Attr = {};
  const val = (v: any): unknown =>
    v == null ? null : v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? (v.arrayValue ? (v.arrayValue.values ?? []).map(val) : undefined);
  for (const kv of kvs ?? []) out[kv.key] = val(kv.value);
  return out;
}

interface Received {
  logs: Array<{ event: string; body: unknown; attributes: Attr; resource: Attr; severity: number }>;
  points: Array<{ name: string; unit: string; value: number; attributes: Attr }>;
  raw: Buffer[];
  contentTypes: Set<string>;
}

async function otlpReceiver(): Promise<{ port: number; got: Received; close(): Promise<void> }> {
  const got: Received = { logs: [], points: [], raw: [], contentTypes: new Set() };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      got.raw.push(body);
      got.contentTypes.add(String(req.headers['content-type']));
      const opts = { longs: String, defaults: false, arrays: true };
      if (req.url === '/v1/logs') {
        const msg = LogsRequest.toObject(LogsRequest.decode(body), opts);
        for (const rl of msg.resourceLogs ?? []) {
          for (const sl of rl.scopeLogs ?? []) {
            for (const lr of sl.logRecords ?? []) got.logs.push({ event: lr.eventName, body: lr.body?.stringValue, attributes: attrs(lr.attributes), resource: attrs(rl.resource?.attributes), severity: lr.severityNumber });
          }
        }
      } else if (req.url === '/v1/metrics') {
        const msg = MetricsRequest.toObject(MetricsRequest.decode(body), opts);
        for (const rm of msg.resourceMetrics ?? []) {
          for (const sm of rm.scopeMetrics ?? []) {
            for (const m of sm.metrics ?? []) {
              const dps = m.sum?.dataPoints ?? m.gauge?.dataPoints ?? [];
              for (const dp of dps) got.points.push({ name: m.name, unit: m.unit, value: dp.asDouble ?? Number(dp.asInt ?? 0), attributes: attrs(dp.attributes) });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, got, close: () => new Promise((r) => server.close(() => r())) };
}

function getJson(socket: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000, log = () => ''): Promise<T> {
  for (const end = Date.now() + ms; ; await sleep(100)) {
    try {
      const v = await f();
      if (v) return v;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${log()}`);
  }
}

describe.skipIf(!bpfEnabled)('OTLP and redaction through the agent (root)', () => {
  let dir: string;
  let agent: ChildProcess;
  let out = '';
  let otlp: Awaited<ReturnType<typeof otlpReceiver>>;
  let socket: string;
  let config: string;
  let child: ChildProcess;
  let childPid = 0;
  let childExecId = '';
  let bin: string;
  const comm = `potl${process.pid % 100000}`;
  const check = `otlp_${process.pid % 100000}`;
  let stream = '';
  let streamReq: ReturnType<typeof request> | null = null;
  let trace: ChildProcess;
  let traceFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patrol-otlp-'));
    chmodSync(dir, 0o755);
    otlp = await otlpReceiver();
    socket = join(dir, 'patrol.sock');
    mkdirSync(join(dir, 'checks'));
    writeFileSync(join(dir, 'checks', 'c.patrol'), `check ${check} { every 1s; critical process_running("${comm}"); }\n`);
    config = join(dir, 'patrol.yaml');
    writeFileSync(
      config,
      `store: { path: ${join(dir, 'state', 'patrol.db')}, flush_interval: 50ms }
api: { socket: ${socket} }
agent: { lock_file: ${join(dir, 'patrol.pid')}, pin_dir: /sys/fs/bpf/patrol-otlp-${process.pid} }
log: { level: warn, format: json }
metrics: { sweep_interval: 500ms, prometheus: { enabled: false, top_n: 1000 } }
alerts:
  outputs:
    - { type: file, path: ${join(dir, 'alerts.ndjson')}, group_wait: 0s }
export:
  redact: ['(?i)(--password[= ])\\S+']
  otlp: { endpoint: "http://127.0.0.1:${otlp.port}", protocol: http/protobuf, interval: 1s, queue_max: 200000 }
`,
    );
    agent = spawn(PATROL, ['agent', '--config', config, '--checks', join(dir, 'checks')], { stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d) => (out += d));
    agent.stderr!.on('data', (d) => (out += d));
    await until('the agent', async () => (await getJson(socket, '/v1/health')).status === 200, 30_000, () => out);
    // the API's event stream, recorded raw
    streamReq = request({ socketPath: socket, path: '/v1/events' }, (res) => res.on('data', (d) => (stream += d)));
    streamReq.on('error', () => {});
    streamReq.end();
    // an NDJSON file written by `patrol trace --json`, with the same config's patterns
    traceFile = join(dir, 'trace.ndjson');
    const fd = (await import('node:fs')).openSync(traceFile, 'w', 0o600);
    trace = spawn(PATROL, ['trace', '--json', '--config', config, '--no-states', '--comm', comm, '--duration', '12s'], { stdio: ['ignore', fd, 'pipe'] });
    let traceErr = '';
    trace.stderr!.on('data', (d) => (traceErr += d));
    await until('trace to start', () => readFileSync(traceFile, 'utf8').includes('"ready"'), 20_000, () => traceErr);
    bin = join(dir, comm);
    copyFileSync('/bin/sh', bin);
    chmodSync(bin, 0o755);
  }, 60_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    trace?.kill('SIGKILL');
    streamReq?.destroy();
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
    }
    await otlp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a process started with --password=hunter2 shows masked in the API, and OTLP gets its exec with matching attributes', async () => {
    // busy for ~3 s (so it ranks in the top processes), then exits 3
    child = spawn(bin, ['-c', 'i=0; end=$(( $(date +%s) + 3 )); while [ $(date +%s) -lt $end ]; do i=$((i+1)); done; exit 3', comm, `--password=${SECRET}`, '--user', 'bob'], { stdio: 'ignore' });
    childPid = child.pid!;
    const p = await until('the process in the API', async () => (await getJson(socket, `/v1/processes?pid=${childPid}`)).body.processes.find((x: any) => x.pid === childPid), 10_000);
    expect(p.args).toEqual([bin, '-c', expect.any(String), comm, '--password=****', '--user', 'bob']);
    expect(p.args_redacted).toBe(true);
    childExecId = p.exec_id;
    expect(p.cgroup).toEqual(expect.any(String));

    const exec = await until('the exec log record', () => otlp.got.logs.find((l) => l.event === 'process.exec' && l.attributes['process.pid'] === childPid), 15_000, () => out);
    expect(exec.attributes).toMatchObject({
      'process.pid': childPid,
      'process.parent_pid': process.pid,
      'process.executable.name': comm,
      'process.executable.path': bin,
      'process.command_args': [bin, '-c', expect.any(String), comm, '--password=****', '--user', 'bob'],
      'patrol.args_redacted': true,
      'patrol.exec_id': p.exec_id,
      'process.creation.time': expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(exec.resource).toMatchObject({ 'service.name': 'patrol', 'host.name': expect.any(String) });
  }, 30_000);

  it('metrics: process.cpu.time, process.memory.usage and process.disk.io of that process, under semconv names', async () => {
    // The exec's points: the child is forked from this test's Node process, and a sweep in the
    // moment before its exec sees that process too (same pid, its own exec_id, and the comm of
    // Node's main thread, "MainThread").
    const ofChild = (x: { attributes: Record<string, unknown> }) => x.attributes['process.pid'] === childPid && x.attributes['patrol.exec_id'] === childExecId;
    const cpu = await until('process.cpu.time of the process', () => otlp.got.points.find((x) => x.name === 'process.cpu.time' && ofChild(x) && x.value > 0), 15_000, () => out);
    expect(cpu.unit).toBe('s');
    expect(cpu.attributes).toMatchObject({ 'process.executable.name': comm, 'patrol.exec_id': expect.stringMatching(/^[0-9a-f]{16}$/) });
    const mem = otlp.got.points.find((x) => x.name === 'process.memory.usage' && ofChild(x))!;
    expect(mem.unit).toBe('By');
    expect(mem.value).toBeGreaterThan(0);
    const io = otlp.got.points.filter((x) => x.name === 'process.disk.io' && ofChild(x));
    expect(io.map((x) => x.attributes['disk.io.direction']).sort()).toEqual(expect.arrayContaining(['read', 'write']));
    // the rest of /metrics, as patrol.*
    expect(otlp.got.points.some((x) => x.name === 'patrol.events' && x.attributes.type === 'exec' && x.value > 0)).toBe(true);
    expect(otlp.got.points.some((x) => x.name === 'patrol.node.load')).toBe(true);
    expect([...otlp.got.contentTypes]).toEqual(['application/x-protobuf']);
  }, 30_000);

  it('its exit (code 3) and the alert it raised arrive as log records', async () => {
    const exit = await until('the exit log record', () => otlp.got.logs.find((l) => l.event === 'process.exit' && l.attributes['process.pid'] === childPid), 20_000, () => out);
    expect(exit.attributes).toMatchObject({ 'process.exit.code': 3, 'process.executable.name': comm });
    expect(exit.severity).toBe(13); // WARN: a non-zero exit
    const alert = await until('the alert log record', () => otlp.got.logs.find((l) => l.event === 'patrol.alert' && l.attributes['patrol.check.name'] === check), 20_000, () => out);
    expect(alert.attributes).toMatchObject({ 'patrol.alert.kind': 'firing', 'patrol.alert.state': 'critical', 'patrol.alert.id': expect.stringMatching(/^[0-9a-f]{16}$/) });
    const stats = (await getJson(socket, '/v1/stats')).body.export;
    // the machine's other execs count too: drops are possible on a busy machine, failures are not
    expect(stats.otlp).toMatchObject({ logs_dropped: expect.any(Number), logs_failed: 0 });
    expect(stats.otlp.logs_exported).toBeGreaterThan(0);
    expect(stats.redaction.redacted).toBeGreaterThan(0);
  }, 40_000);

  it(`${SECRET} never reached a file, the API, the store or OTLP (the bytes)`, async () => {
    await until('trace to end', () => trace.exitCode !== null, 25_000);
    const traced = readFileSync(traceFile, 'utf8');
    const execLine = traced.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.type === 'exec' && r.pid === childPid);
    expect(execLine).toMatchObject({ args_redacted: true });
    expect(execLine.args).toContain('--password=****');
    expect(traced).not.toContain(SECRET);

    expect(stream).toContain('--password=****');
    expect(stream).not.toContain(SECRET);
    expect(existsSync(join(dir, 'alerts.ndjson'))).toBe(true);
    expect(readFileSync(join(dir, 'alerts.ndjson'), 'utf8')).not.toContain(SECRET);
    const all = Buffer.concat(otlp.got.raw);
    expect(all.includes('--password=****')).toBe(true);
    expect(all.includes(SECRET)).toBe(false);

    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    const state = join(dir, 'state');
    const files = readdirSync(state);
    expect(files).toContain('patrol.db');
    const db = Buffer.concat(files.map((f) => readFileSync(join(state, f))));
    expect(db.includes('--password=****')).toBe(true);
    expect(db.includes(SECRET)).toBe(false);
    expect(out).not.toContain(SECRET);
    // the stored exit says it was redacted
    const { default: Database } = await import('better-sqlite3');
    const sql = new Database(join(state, 'patrol.db'), { readonly: true });
    try {
      const row = sql.prepare('SELECT args, args_redacted FROM process_exits WHERE pid = ? ORDER BY id DESC LIMIT 1').get(childPid);
      expect(row).toEqual({ args: expect.stringContaining('"--password=****"'), args_redacted: 1 });
    } finally {
      sql.close();
    }
  }, 40_000);

  it('patrol trace --no-redact is refused when the output is not a terminal', () => {
    const r = spawnSync(PATROL, ['trace', '--no-redact', '--duration', '1s'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--no-redact.*root, writing to a terminal/);
  });
});
