// docs/api.md against the route schemas: every route the server registers is documented and
// every documented route exists; every documented query parameter and field exists in the
// schema, and every schema parameter and field is documented (the docs drifted once already).
// The routes and their schemas are taken from the server itself as it registers them.
import { mkdtempSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiHandle } from '../../src/api/index.js';
import {
  alertFields, causeFields, checkFields, checkRunFields, evidenceFields, explainAlertFields, figFields, processSchema, processesRoute, reloadFields,
  ruleProfileFields, stuckDFields, topGroupFields, topRowFields, treeNodeSchema, zombieFields,
} from '../../src/api/schemas.js';
import { findingFields, fleetAlertFields, fleetNodeFields, rolloutEventFields, rolloutFields, rolloutNodeFields } from '../../src/api/fleet.js';
import { createLogger } from '../../src/shared/log.js';
import { CONFIG_PART_FIELDS, PART_FIELDS, SECTION_FIELDS, SENSORS_PART_FIELDS, SENSOR_OBJECT_FIELDS, lastReloadFields, reloadRoute } from '../../src/api/reload.js';
import { CONFIG_SECTIONS } from '../../src/app/config.js';
import { FakeAgent } from './api-fake.js';

const read = (f: string) => readFileSync(fileURLToPath(new URL(`../../docs/${f}`, import.meta.url)), 'utf8');
const DOCS: Record<string, string> = { 'api.md': read('api.md'), 'metrics.md': read('metrics.md') };
const API = DOCS['api.md']!;
const ENDPOINTS = API.slice(API.indexOf('## Endpoints'), API.indexOf('## CLI clients'));

type Schema = Record<string, any>;
type Props = Record<string, Schema>;

/** The section of a doc under `heading`, up to the next heading of any level. */
function section(heading: string, doc = API): string {
  const i = doc.indexOf(heading);
  if (i < 0) throw new Error(`no "${heading}" in the docs`);
  const rest = doc.slice(i + heading.length);
  const j = rest.search(/\n#{2,4} /);
  return j < 0 ? rest : rest.slice(0, j);
}

/** The table starting at the first line beginning with `header` after `from`: first-column
 *  names (`a`, `b` split) → the row's text. null when there is none. */
function table(text: string, header: string, from = 0): Map<string, string> | null {
  const lines = text.slice(from).split('\n');
  const start = lines.findIndex((l) => l.startsWith(header));
  if (start < 0) return null;
  const rows = new Map<string, string>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    for (const m of line.split('|')[1]!.matchAll(/`([a-z_0-9]+)`/g)) rows.set(m[1]!, line);
  }
  return rows;
}

/** The `| field |` table right after the line `**label:**`. */
function labelled(text: string, label: string): Map<string, string> {
  const i = text.indexOf(`**${label}:**`);
  if (i < 0) throw new Error(`no **${label}:** table`);
  const t = table(text, '| field |', i);
  if (!t) throw new Error(`no table after **${label}:**`);
  return t;
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

interface Route {
  url: string;
  schema: Schema;
}

/** Nested objects reached from a field's schema: object properties, array items, map values,
 *  and the shared process and tree-node schemas. */
function nested(s: Schema): Props | null {
  if (s.$ref === 'patrol.process#') return processSchema.properties as Props;
  if (s.$ref === 'patrol.treeNode#') return treeNodeSchema.properties as Props;
  if (s.properties && Object.keys(s.properties).length) return s.properties as Props;
  if (s.items) return nested(s.items as Schema);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') return nested(s.additionalProperties as Schema);
  return null;
}

/** Nested objects documented by a table of their own: [doc, section heading, label, fields]. */
const LABELLED: Array<[string, string, string, Props]> = [
  ['api.md', '### `GET /v1/processes`', 'Process', processSchema.properties],
  ['api.md', '### `GET /v1/tree`', 'Node', treeNodeSchema.properties],
  ['api.md', '### `GET /v1/checks`', 'Check', checkFields],
  ['api.md', '### `GET /v1/checks`', 'Reload', reloadFields],
  ['api.md', '### `GET /v1/checks/results`', 'Run', checkRunFields],
  ['api.md', '### `GET /v1/alerts`', 'Alert', alertFields],
  ['api.md', '### `GET /v1/zombies`', 'Zombie', zombieFields],
  ['api.md', '### `GET /v1/zombies`', 'Stuck in D', stuckDFields],
  ['api.md', '### `GET /v1/explain/:id`', 'Explained alert', explainAlertFields],
  ['api.md', '### `GET /v1/explain/:id`', 'Cause', causeFields],
  ['api.md', '### `GET /v1/explain/:id`', 'Evidence', evidenceFields],
  ['api.md', '### `GET /v1/rules`', 'Rule profile', ruleProfileFields],
  ['api.md', '### `GET /v1/node`', 'Figure', figFields],
  ['api.md', '### `GET /v1/status`', 'Last reload', lastReloadFields as Props],
  ['api.md', '### `GET /v1/fleet/status`', 'Fleet node', fleetNodeFields],
  ['api.md', '### `GET /v1/fleet/status`', 'Finding', findingFields],
  ['api.md', '### `GET /v1/fleet/alerts`', 'Fleet alert', fleetAlertFields],
  ['api.md', '### `GET /v1/fleet/rollouts`', 'Rollout', rolloutFields as Props],
  ['api.md', '### `GET /v1/fleet/rollouts`', 'Rollout node', rolloutNodeFields as Props],
  ['api.md', '### `GET /v1/fleet/history`', 'Rollout event', rolloutEventFields as Props],
];
const sameKeys = (a: Props, b: Props) => sorted(Object.keys(a)).join() === sorted(Object.keys(b)).join();
const labelledFor = (p: Props) => LABELLED.find(([, , , f]) => sameKeys(f, p));

/** A documented table against its schema: the same names both ways; each nested object has a
 *  table of its own, or its fields are named in the row that documents it. */
function checkTable(where: string, doc: Map<string, string>, props: Props, seen: Set<string>): void {
  expect(sorted(doc.keys()), where).toEqual(sorted(Object.keys(props)));
  for (const [name, s] of Object.entries(props)) {
    const inner = nested(s);
    if (!inner) continue;
    const own = labelledFor(inner);
    if (own) {
      const key = `${own[0]} ${own[1]} ${own[2]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      checkTable(`${where} → ${name} (**${own[2]}:**)`, labelled(section(own[1], DOCS[own[0]]), own[2]), own[3], seen);
    } else {
      const cell = doc.get(name)!;
      const missing = Object.keys(inner).filter((k) => !cell.includes(`\`${k}\``));
      expect(missing, `${where} → ${name}: fields not named in its row`).toEqual([]);
    }
  }
}

describe('docs/api.md matches the routes and their schemas', () => {
  const routes: Route[] = [];
  let api: ApiHandle;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patrol-api-docs-'));
    api = await startApi(new FakeAgent(), {
      socket: join(dir, 'api.sock'),
      log: createLogger({ level: 'silent' }),
      onRoute: (r) => {
        if (r.method === 'GET' || (Array.isArray(r.method) && r.method.includes('GET'))) routes.push({ url: r.url, schema: r.schema ?? {} });
      },
    });
  });

  afterAll(async () => {
    await api?.close();
  });

  it('every route the server serves is documented, and every documented route is served', () => {
    const documented = [...ENDPOINTS.matchAll(/^### `GET (\/v1\/[^`?]*)`/gm)].map((m) => m[1]!);
    expect(routes.length).toBeGreaterThanOrEqual(15);
    expect(sorted(documented)).toEqual(sorted(routes.map((r) => r.url)));
  });

  it('every route: its query parameters and path parameters, both ways', () => {
    for (const r of routes) {
      const s = section(`### \`GET ${r.url}\``);
      const doc = table(s, '| parameter |');
      const schema = Object.keys((r.schema.querystring?.properties ?? {}) as object);
      expect(sorted(doc?.keys() ?? []), `${r.url}: query parameters`).toEqual(sorted(schema));
      // a route without a parameter table rejects every parameter
      if (!doc) expect(r.schema.querystring?.additionalProperties, `${r.url}: no documented parameters, so unknown ones must be refused`).toBe(false);
      const pathParams = [...r.url.matchAll(/:([a-z_]+)/g)].map((m) => m[1]!);
      expect(sorted(pathParams), `${r.url}: path parameters`).toEqual(sorted(Object.keys((r.schema.params?.properties ?? {}) as object)));
      for (const p of pathParams) expect(s, `${r.url}: the path parameter is described`).toContain(`\`:${p}\``);
    }
  });

  it('every route with a JSON object answer: its fields and their nested objects, both ways', () => {
    const seen = new Set<string>();
    let checked = 0;
    for (const r of routes) {
      const ok = r.schema.response?.[200] as Schema | undefined;
      if (!ok?.properties) continue;
      checkTable(`${r.url} **Response:**`, labelled(section(`### \`GET ${r.url}\``), 'Response'), ok.properties as Props, seen);
      checked++;
    }
    // all but the two streams (/v1/events, /v1/metrics)
    expect(checked).toBe(routes.length - 2);
    // every labelled table of the endpoints is reached from a route (none documents a ghost)
    const tables = [...ENDPOINTS.matchAll(/^\*\*([^*]+):\*\*\n\n\| field \|/gm)].map((m) => m[1]!).filter((l) => l !== 'Response');
    expect(sorted(tables)).toEqual(sorted([...seen].filter((k) => k.startsWith('api.md')).map((k) => LABELLED.find(([d, h, l]) => `${d} ${h} ${l}` === k)![2])));
  });

  it('GET /v1/top rows (docs/metrics.md, patrol top): the row and the cgroup group, both ways', () => {
    const s = section('## `patrol top`', DOCS['metrics.md']);
    expect(sorted(table(s, '| field |')!.keys())).toEqual(sorted(Object.keys(topRowFields)));
    expect(sorted(table(s, '| field |', s.indexOf('the array holds groups'))!.keys())).toEqual(sorted(Object.keys(topGroupFields)));
  });

  it('GET /v1/health: the fields of the example are the schema\'s', () => {
    const r = routes.find((x) => x.url === '/v1/health')!;
    for (const m of section('### `GET /v1/health`').matchAll(/^(\{"status".*\})$/gm)) {
      expect(sorted(Object.keys(JSON.parse(m[1]!) as object))).toEqual(sorted(Object.keys(r.schema.response[200].properties as object)));
    }
  });

  it('the sort keys and state letters named in the docs are the schema\'s', () => {
    const s = section('### `GET /v1/processes`');
    const sortLine = s.split('\n').find((l) => l.startsWith('| `sort` |'))!;
    expect(sorted([...sortLine.matchAll(/`([a-z_0-9]+)`/g)].map((m) => m[1]!).filter((x) => x !== 'sort'))).toEqual(sorted(processesRoute.querystring.properties.sort.enum));
    const stateLine = s.split('\n').find((l) => l.startsWith('| `state` |'))!;
    expect(sorted([...stateLine.matchAll(/`([A-Z])`/g)].map((m) => m[1]!))).toEqual(sorted(processesRoute.querystring.properties.state.enum));
  });

  it('POST /v1/reload: the body parameter, the reply, a part, what config and sensors add, a section, a sensor', () => {
    const sec = section('### `POST /v1/reload`');
    const names = (header: string, from = 0) => sorted(table(sec, header, from)?.keys() ?? []);
    expect(names('| parameter |')).toEqual(sorted(Object.keys(reloadRoute.body.properties)));
    expect(names('| field |')).toEqual(sorted(Object.keys(reloadRoute.response[200].properties)));
    expect(sorted(Object.keys(reloadRoute.response[200].properties.parts.properties))).toEqual(['checks', 'config', 'rules', 'sensors']);
    expect(names('| field |', sec.indexOf('**Part**'))).toEqual(sorted(PART_FIELDS));
    expect(names('| field |', sec.indexOf('The config part adds'))).toEqual(sorted(CONFIG_PART_FIELDS));
    expect(names('| section field |')).toEqual(sorted(SECTION_FIELDS));
    expect(names('| field |', sec.indexOf('The sensors part adds'))).toEqual(sorted(SENSORS_PART_FIELDS));
    expect(names('| sensor field |')).toEqual(sorted(SENSOR_OBJECT_FIELDS));
    const sections = table(sec, '| field |', sec.indexOf('The config part adds'))!.get('sections')!;
    for (const s of CONFIG_SECTIONS) expect(sections, s).toContain(`\`${s}\``);
  });
});
