// Deployment files (issue 17): the hardened systemd unit passes `systemd-analyze verify` and its
// `systemd-analyze security` score is the one docs/systemd.md states; the Kubernetes manifests
// validate offline against the Kubernetes and Prometheus Operator schemas (kubernetes-models,
// generated from their OpenAPI/CRD schemas) and carry what the agent needs; the shell
// completions and the man page are generated from the CLI's own definitions.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PATROL = join(ROOT, 'bin/patrol');
const which = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim() || null;
const patrol = (...args: string[]) => execFileSync(PATROL, args, { encoding: 'utf8' });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'patrol-packaging-'));
  mkdirSync(join(dir, 'man', 'man1'), { recursive: true });
  writeFileSync(join(dir, 'man', 'man1', 'patrol.1'), patrol('man'));
  // the unit as installed, with ExecStart pointing at this tree
  writeFileSync(join(dir, 'patrol.service'), readFileSync(join(ROOT, 'packaging/patrol.service'), 'utf8').replaceAll('/opt/patrol/bin/patrol', PATROL));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(which('systemd-analyze') === null)('systemd unit', () => {
  const unit = () => readFileSync(join(ROOT, 'packaging/patrol.service'), 'utf8');

  it('passes systemd-analyze verify (its man page found through MANPATH)', () => {
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'patrol.service')], { encoding: 'utf8', env: { ...process.env, MANPATH: join(dir, 'man') } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is hardened as the issue asks, and docs/systemd.md states its security score', () => {
    for (const line of ['ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'NoNewPrivileges=yes', 'SystemCallArchitectures=native', 'UMask=0077', 'DeviceAllow=/dev/kmsg r', 'StateDirectory=patrol']) {
      expect(unit()).toContain(`\n${line}\n`);
    }
    expect(unit()).toMatch(/\nCapabilityBoundingSet=CAP_BPF CAP_PERFMON /);
    expect(unit()).toMatch(/\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n/);
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', join(dir, 'patrol.service')], { encoding: 'utf8' });
    const score = /Overall exposure level for patrol\.service: ([\d.]+) (\w+)/.exec(r.stdout)?.[1];
    expect(score, r.stdout + r.stderr).toBeDefined();
    expect(Number(score)).toBeLessThanOrEqual(4);
    expect(readFileSync(join(ROOT, 'docs/systemd.md'), 'utf8')).toContain(`exposure level ${score}`);
  });
});

describe('Kubernetes manifests (validated offline against their schemas)', () => {
  const docs = () =>
    readdirSync(join(ROOT, 'packaging/kubernetes'))
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseAllDocuments(readFileSync(join(ROOT, 'packaging/kubernetes', f), 'utf8')).map((d) => ({ file: f, obj: d.toJS() as any, errors: d.errors })));

  it('every document parses and validates against the schema of its kind', async () => {
    const models: Record<string, () => Promise<any>> = {
      'v1/Namespace': async () => (await import('kubernetes-models/v1/Namespace')).Namespace,
      'v1/ConfigMap': async () => (await import('kubernetes-models/v1/ConfigMap')).ConfigMap,
      'v1/Service': async () => (await import('kubernetes-models/v1/Service')).Service,
      'apps/v1/DaemonSet': async () => (await import('kubernetes-models/apps/v1/DaemonSet')).DaemonSet,
      'monitoring.coreos.com/v1/ServiceMonitor': async () => (await import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor')).ServiceMonitor,
    };
    const seen: string[] = [];
    for (const { file, obj, errors } of docs()) {
      expect(errors, file).toEqual([]);
      const key = `${obj.apiVersion}/${obj.kind}`;
      expect(Object.keys(models), `${file}: ${key} has no schema here`).toContain(key);
      const Model = await models[key]!();
      expect(() => new Model(obj).validate(), `${file}: ${key}`).not.toThrow();
      seen.push(key);
    }
    expect(seen.sort()).toEqual(Object.keys(models).sort());
  });

  it('a broken manifest is refused (the validation is real)', async () => {
    const { DaemonSet } = await import('kubernetes-models/apps/v1/DaemonSet');
    const ds = docs().find((d) => d.obj.kind === 'DaemonSet')!.obj;
    const bad = structuredClone(ds);
    bad.spec.template.spec.hostPID = 'yes';
    expect(() => new DaemonSet(bad).validate()).toThrow(/hostPID/);
    const bad2 = structuredClone(ds);
    bad2.spec.template.spec.containers[0].resources.limits.memory = { gi: 1 };
    expect(() => new DaemonSet(bad2).validate()).toThrow();
  });

  it('the DaemonSet: hostPID, the host mounts, the least capabilities, resources, the node name', () => {
    const ds = docs().find((d) => d.obj.kind === 'DaemonSet')!.obj;
    const pod = ds.spec.template.spec;
    const c = pod.containers[0];
    expect(pod.hostPID).toBe(true);
    const hostPaths = Object.fromEntries(pod.volumes.filter((v: any) => v.hostPath).map((v: any) => [v.name, v.hostPath.path]));
    const mounts = Object.fromEntries(c.volumeMounts.map((m: any) => [m.name, m.mountPath]));
    for (const p of ['/sys/kernel/btf', '/sys/fs/cgroup', '/sys/kernel/tracing', '/dev/kmsg', '/var/lib/patrol', '/sys/fs/bpf']) {
      const vol = Object.keys(hostPaths).find((k) => hostPaths[k] === p);
      expect(vol, p).toBeDefined();
      expect(mounts[vol!], p).toBe(p);
    }
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(c.securityContext.capabilities.add.sort()).toEqual(['BPF', 'PERFMON', 'SYSLOG', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_RESOURCE']);
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toBeDefined();
    expect(c.env.find((e: any) => e.name === 'PATROL_NODE').valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
    const cm = docs().find((d) => d.obj.kind === 'ConfigMap')!.obj;
    // the config the DaemonSet mounts loads
    const cfg = join(dir, 'patrol.yaml');
    writeFileSync(cfg, cm.data['patrol.yaml']);
    expect(() => patrol('agent', '--config', cfg, '--print-config')).not.toThrow();
  });
});

describe('completions and the man page, from the CLI definitions', () => {
  const commands = ['agent', 'trace', 'status', 'ps', 'events', 'zombies', 'rules', 'explain', 'check', 'record', 'results', 'alerts', 'top', 'completion', 'man'];

  it.skipIf(which('bash') === null)('bash: valid syntax, completes commands, options and option choices', () => {
    const file = join(dir, 'patrol.bash');
    writeFileSync(file, patrol('completion', 'bash'));
    expect(spawnSync('bash', ['-n', file]).status).toBe(0);
    const complete = (words: string[]) =>
      spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _patrol; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(complete(['patrol', 'tr'])).toEqual(['trace']);
    expect(complete(['patrol', ''])).toEqual(expect.arrayContaining(commands));
    expect(complete(['patrol', 'trace', '--no-'])).toEqual(['--no-states', '--no-redact']);
    expect(complete(['patrol', 'ps', '--co'])).toEqual(['--container', '--comm']);
    expect(complete(['patrol', 'ps', '--sort', 'st'])).toEqual(['start', 'state', 'state_ms']);
    expect(complete(['patrol', 'rules', ''])).toEqual(expect.arrayContaining(['check', 'profile']));
    expect(complete(['patrol', 'completion', ''])).toEqual(expect.arrayContaining(['bash', 'zsh', 'fish']));
  });

  it('zsh and fish: every command and long option is there', () => {
    const zsh = patrol('completion', 'zsh');
    const fish = patrol('completion', 'fish');
    expect(zsh.startsWith('#compdef patrol\n')).toBe(true);
    for (const c of commands) {
      expect(zsh).toContain(`'${c}:`);
      expect(fish).toContain(`-a ${c} `);
    }
    expect(zsh).toContain("'--container[only processes of this container");
    expect(zsh).toContain(':value:(pid start comm state state_ms rq_p95)');
    expect(fish).toContain("-l no-redact -d 'show argv unmasked");
    expect(fish).toContain("-l sort -x -a 'pid start comm state state_ms rq_p95'");
    if (which('zsh')) expect(spawnSync('zsh', ['-n', '-c', zsh]).status).toBe(0);
    if (which('fish')) expect(spawnSync('fish', ['--no-execute', '-c', fish]).status).toBe(0);
  });

  it.skipIf(which('groff') === null)('man: renders without a warning and documents every command and option', () => {
    const page = readFileSync(join(dir, 'man', 'man1', 'patrol.1'), 'utf8');
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', join(dir, 'man', 'man1', 'patrol.1')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const text = spawnSync('groff', ['-man', '-Tascii', '-P', '-cbou', join(dir, 'man', 'man1', 'patrol.1')], { encoding: 'utf8' }).stdout;
    for (const c of commands) expect(text).toContain(`patrol ${c}`);
    for (const flag of ['--no-redact', '--unit', '--container', '--pod', '--print-config', '--replay']) expect(text).toContain(flag);
    expect(page).toMatch(/^\.TH PATROL 1 /);
  });

  it('packaging/Containerfile builds from the repository and installs the completion and the man page', () => {
    const cf = readFileSync(join(ROOT, 'packaging/Containerfile'), 'utf8');
    expect(cf).toMatch(/bash scripts\/setup\.sh/);
    expect(cf).toContain('patrol completion bash');
    expect(cf).toContain('patrol man');
    expect(existsSync(join(ROOT, 'packaging/kubernetes/daemonset.yaml'))).toBe(true);
  });
});
