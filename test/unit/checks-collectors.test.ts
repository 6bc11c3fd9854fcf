// The real collectors on real files and sockets (no root): port_listening, file_age, cert_expiry,
// log_matches (windows, rotation), disk_usage through statfs, and the /proc/net/tcp parser.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Executor, FakeClock, FsSystemSource, HostNodeSource, compileSource, parseListeningPorts, type CheckResult,
} from '../../src/checks/index.js';

/** the certificate test makes its certificate with the openssl CLI */
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-collectors-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function exec(src: string, clock = new FakeClock(Date.now())) {
  const r = compileSource(src, 'c.patrol');
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const ex = new Executor({ sources: { system: new FsSystemSource(), node: new HostNodeSource() }, clock });
  ex.setChecks(r.checks);
  return { ex, clock, run: async (): Promise<CheckResult[]> => ex.runAll() };
}

describe('collectors', () => {
  it('parses LISTEN sockets from /proc/net/tcp text', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
      '   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0',
      '   2: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 0 0',
    ].join('\n');
    expect([...parseListeningPorts(text)].sort((a, b) => a - b)).toEqual([22, 443]);
  });

  it('port_listening sees a socket this process listens on, and not a closed one', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { run } = exec(`check open { critical port_listening(${port}); }\ncheck closed { critical port_listening(${port === 1 ? 2 : 1}); }`);
      const rs = await run();
      expect(rs.map((r) => [r.name, r.state])).toEqual([
        ['open', 'critical'],
        ['closed', 'ok'],
      ]);
    } finally {
      server.close();
    }
  });

  it('file_age and file_exists', async () => {
    const f = join(dir, 'stamp');
    writeFileSync(f, 'x');
    const old = (Date.now() - 2 * 3600_000) / 1000;
    utimesSync(f, old, old);
    const { run } = exec(`check stale { warning file_age(${JSON.stringify(f)}) > 1h; critical file_age(${JSON.stringify(f)}) > 3h; }\ncheck gone { critical unless file_exists("${dir}/nope"); }\ncheck age_missing { critical file_age("${dir}/nope") > 1h; }`);
    const rs = await run();
    expect(rs.map((r) => [r.name, r.state])).toEqual([
      ['stale', 'warning'],
      ['gone', 'critical'],
      ['age_missing', 'unknown'],
    ]);
    expect(rs[0]!.evidence.values[0]!.text).toMatch(/^2(\.\d+)?h$/);
    expect(rs[2]!.message).toContain('no such file');
  });

  it.skipIf(!hasOpenssl)('cert_expiry: time left on the first PEM certificate', async () => {
    const key = join(dir, 'k.pem');
    const cert = join(dir, 'c.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '10', '-subj', '/CN=patrol-test'], { stdio: 'ignore' });
    const { run } = exec(
      `check soon { warning cert_expiry(${JSON.stringify(cert)}) < 30d; critical cert_expiry(${JSON.stringify(cert)}) < 7d; }\ncheck notpem { critical cert_expiry(${JSON.stringify(key)}) < 7d; }`,
    );
    const rs = await run();
    expect(rs[0]!.state).toBe('warning');
    const days = (rs[0]!.evidence.values[0]!.value as number) / 86400;
    expect(days).toBeGreaterThan(9.9);
    expect(days).toBeLessThanOrEqual(10);
    expect(rs[1]).toMatchObject({ state: 'unknown' });
    expect(rs[1]!.message).toContain('no PEM certificate');
  });

  it('log_matches counts new matching lines per window and follows rotation', async () => {
    const log = join(dir, 'app.log');
    writeFileSync(log, 'ERROR old\nok\n');
    const clock = new FakeClock(Date.now());
    const { run } = exec(`check errors { every 1m; critical log_matches(${JSON.stringify(log)}, "^ERROR", 5m) >= 3; }`, clock);
    let r = await run();
    // the first run reads the recent tail: the file changed within the window
    expect(r[0]!.evidence.values[0]!.value).toBe(1);
    appendFileSync(log, 'ERROR a\nERROR b\ninfo\nERROR partial');
    await clock.advance(60_000);
    r = await run();
    // complete lines only: the unterminated one waits for its newline
    expect(r[0]).toMatchObject({ state: 'critical', evidence: { values: [{ value: 3 }] } });
    appendFileSync(log, ' line\n');
    await clock.advance(60_000);
    expect((await run())[0]!.evidence.values[0]!.value).toBe(4);
    // rotation: a new file under the same name is read from its start
    renameSync(log, `${log}.1`);
    writeFileSync(log, 'ERROR fresh\n');
    await clock.advance(60_000);
    expect((await run())[0]!.evidence.values[0]!.value).toBe(5);
    // the early matches leave the 5-minute window
    await clock.advance(4 * 60_000);
    const last = (await run())[0]!;
    expect(last.evidence.values[0]).toMatchObject({ value: 1, window_s: 300 });
    expect(last.state).toBe('ok');
  });

  it('disk_usage and inode_usage through statfs; a missing mount is unknown', async () => {
    const { run } = exec(`check root { critical disk_usage("/") > 100%; warning inode_usage("/") < 0%; }\ncheck missing { critical disk_usage("${dir}/no/such") > 1%; }`);
    const rs = await run();
    expect(rs[0]!.state).toBe('ok');
    const u = rs[0]!.evidence.values[0]!.value as number;
    expect(u).toBeGreaterThan(0);
    expect(u).toBeLessThan(1);
    expect(rs[1]).toMatchObject({ state: 'unknown' });
    expect(rs[1]!.message).toContain('ENOENT');
  });
});
