// Fleet-level checks, run by the leader over its mirror of nodes/, observed/ and members/:
//   node_down     a member (members/<node>) whose registration (nodes/<node>) is gone;
//   loss          a node whose observed lost_rate is above zero;
//   version_skew  a node running an older version of a part than the fleet's newest, when the
//                 newest has been out longer than the bound (fleet.skew_bound).
// "Newest": for the agent itself, the highest version number; for content-versioned parts
// (sensors, rules, checks, config), the version that appeared last in the fleet.
import type { Finding, MemberValue, NodeValue, ObservedValue } from './keys.js';

export interface FleetSnapshot {
  nodes: Map<string, NodeValue>;
  observed: Map<string, ObservedValue>;
  members: Map<string, MemberValue>;
  /** when the leader saw each registration disappear (ms), if it did */
  downSince: Map<string, number>;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  const pb = b.split(/[.+-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

export function fleetFindings(s: FleetSnapshot, skewBoundMs: number, now: number): Finding[] {
  const out: Finding[] = [];
  for (const [node, m] of s.members) {
    if (s.nodes.has(node)) continue;
    // a clean stop says when; a crash is dated by the leader seeing the registration go
    const seen = s.downSince.get(node);
    out.push({ kind: 'node_down', node, since: m.stopped_at ?? (seen !== undefined ? new Date(seen).toISOString() : null) });
  }
  for (const [node, o] of s.observed) {
    if (!s.nodes.has(node)) continue;
    if (o.lost_rate > 0) out.push({ kind: 'loss', node, lost_rate: o.lost_rate });
  }
  // part → version → {first seen (ms), nodes}
  const parts = new Map<string, Map<string, { first: number; nodes: string[] }>>();
  const add = (part: string, version: string | null, since: string | null, node: string) => {
    if (version === null) return;
    const t = since === null ? now : Date.parse(since);
    let vs = parts.get(part);
    if (!vs) parts.set(part, (vs = new Map()));
    const e = vs.get(version);
    if (e) {
      e.first = Math.min(e.first, Number.isFinite(t) ? t : now);
      e.nodes.push(node);
    } else vs.set(version, { first: Number.isFinite(t) ? t : now, nodes: [node] });
  };
  for (const [node, n] of s.nodes) {
    add('agent', n.version, n.started_at, node);
    const o = s.observed.get(node);
    if (o) for (const [part, pv] of Object.entries(o.parts)) if (part !== 'agent') add(part, pv.version, pv.since, node);
  }
  for (const [part, vs] of parts) {
    if (vs.size < 2) continue;
    let newest: [string, { first: number; nodes: string[] }] | null = null;
    for (const e of vs) {
      if (newest === null) newest = e;
      else if (part === 'agent' ? compareVersions(e[0], newest[0]) > 0 : e[1].first > newest[1].first) newest = e;
    }
    if (newest === null || now - newest[1].first < skewBoundMs) continue;
    for (const [version, e] of vs) {
      if (version === newest[0]) continue;
      for (const node of e.nodes) out.push({ kind: 'version_skew', node, part, version, newest: newest[0], newest_since: new Date(newest[1].first).toISOString() });
    }
  }
  const order = { node_down: 0, loss: 1, version_skew: 2 } as const;
  out.sort((a, b) => order[a.kind] - order[b.kind] || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0) || (a.kind === 'version_skew' && b.kind === 'version_skew' ? (a.part < b.part ? -1 : a.part > b.part ? 1 : 0) : 0));
  return out;
}

/** Findings compare equal when only their timestamps moved. */
export const findingsSignature = (f: Finding[]): string => JSON.stringify(f);
