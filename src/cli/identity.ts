// --unit, --container, --pod: the cgroup identity filters of trace, events, ps and top
// (docs/identity.md).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { POD_FILTER_PATTERN } from '../api/schemas.js';

/** A pod uid or a prefix of it, or a pod's name, alone or after its namespace (DNS names). */
const POD = new RegExp(POD_FILTER_PATTERN);

export interface IdentityOptions {
  unit?: string;
  container?: string;
  pod?: string;
}

const check = (flag: string, re: RegExp, what: string) => (v: string) => {
  if (!re.test(v)) throw new InvalidArgumentError(`${flag} expects ${what}.`);
  return v.toLowerCase();
};

export function addIdentityOptions(cmd: Command): Command {
  return cmd
    .option('--unit <name>', 'only processes of this systemd unit, from their cgroup (nginx.service; nginx also matches nginx.service)', (v: string) => {
      if (v === '' || v.length > 256 || /[/\s]/.test(v)) throw new InvalidArgumentError('--unit expects a unit name like nginx.service.');
      return v;
    })
    .option('--container <id>', 'only processes of this container: its id or a prefix (hex)', check('--container', /^[0-9a-fA-F]{1,64}$/, 'a container id or a prefix of it (hex digits)'))
    .option('--pod <uid|name>', 'only processes of this Kubernetes pod: its uid or a prefix, or its name (name or namespace/name) once the CRI socket told it', check('--pod', POD, 'a pod uid or a prefix of it, or a pod name (name or namespace/name)'));
}

/** The query parameters (undefined ones are left out by the client). */
export function identityQuery(o: IdentityOptions): { unit?: string; container?: string; pod?: string } {
  return { unit: o.unit, container: o.container, pod: o.pod };
}
