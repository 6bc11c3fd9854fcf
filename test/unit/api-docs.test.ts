// docs/api.md against the route schemas: every documented parameter and field exists in the
// schema, and every schema parameter and field is documented (the docs drifted once already).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { healthRoute, processSchema, processesRoute, statsRoute } from '../../src/api/schemas.js';
import {
  CONFIG_PART_FIELDS, LAST_RELOAD_FIELDS, PART_FIELDS, SECTION_FIELDS, SENSORS_PART_FIELDS, SENSOR_OBJECT_FIELDS, reloadRoute, statusRoute,
} from '../../src/api/reload.js';
import { CONFIG_SECTIONS } from '../../src/app/config.js';

const DOC = readFileSync(fileURLToPath(new URL('../../docs/api.md', import.meta.url)), 'utf8');

/** The section of docs/api.md under `heading`, up to the next heading of any level. */
function section(heading: string): string {
  const i = DOC.indexOf(heading);
  if (i < 0) throw new Error(`docs/api.md has no "${heading}"`);
  const rest = DOC.slice(i + heading.length);
  const j = rest.search(/\n#{2,4} /);
  return j < 0 ? rest : rest.slice(0, j);
}

/** Names in the first column of the table after `marker` (a `| first |` header), `a`, `b` split. */
function tableNames(text: string, header: string): string[] {
  const i = text.indexOf(header);
  if (i < 0) throw new Error(`no table headed "${header}"`);
  const names: string[] = [];
  for (const line of text.slice(i).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const first = line.split('|')[1]!;
    for (const m of first.matchAll(/`([a-z_0-9]+)`/g)) names.push(m[1]!);
  }
  return names;
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

describe('docs/api.md matches the schemas', () => {
  it('GET /v1/processes: the query parameters', () => {
    const doc = tableNames(section('### `GET /v1/processes`'), '| parameter |');
    expect(sorted(doc)).toEqual(sorted(Object.keys(processesRoute.querystring.properties)));
  });

  it('the Process object: every field', () => {
    const doc = tableNames(section('**Process:**'), '| field |');
    expect(sorted(doc)).toEqual(sorted(Object.keys(processSchema.properties)));
  });

  it('the sort keys and state letters named in the docs are the schema\'s', () => {
    const s = section('### `GET /v1/processes`');
    const sortLine = s.split('\n').find((l) => l.startsWith('| `sort` |'))!;
    expect(sorted([...sortLine.matchAll(/`([a-z_0-9]+)`/g)].map((m) => m[1]!).filter((x) => x !== 'sort'))).toEqual(sorted(processesRoute.querystring.properties.sort.enum));
    const stateLine = s.split('\n').find((l) => l.startsWith('| `state` |'))!;
    expect(sorted([...stateLine.matchAll(/`([A-Z])`/g)].map((m) => m[1]!))).toEqual(sorted(processesRoute.querystring.properties.state.enum));
  });

  it('GET /v1/health: the fields of the example are the schema\'s', () => {
    const example = section('### `GET /v1/health`').match(/```json\n(\{.*\})\n/)![1]!;
    expect(sorted(Object.keys(JSON.parse(example) as object))).toEqual(sorted(Object.keys(healthRoute.response[200].properties)));
  });

  it('GET /v1/stats: every documented field is in the schema, and the reverse', () => {
    const doc = tableNames(section('### `GET /v1/stats`'), '| field |');
    expect(sorted(doc)).toEqual(sorted(Object.keys(statsRoute.response[200].properties)));
  });

  it('POST /v1/reload: the body parameter and every field of the reply, its parts and sections', () => {
    const sec = section('### `POST /v1/reload`');
    expect(sorted(tableNames(sec, '| parameter |'))).toEqual(sorted(Object.keys(reloadRoute.body.properties)));
    expect(sorted(tableNames(sec, '| field |'))).toEqual(sorted(Object.keys(reloadRoute.response[200].properties)));
    // the tables after the reply's: one part; what config adds; a section; what sensors add; a sensor
    const tables = sec.split('\n| field |').slice(2).map((t) => tableNames(`| field |${t}`, '| field |'));
    expect(sorted(tables[0]!)).toEqual(sorted(PART_FIELDS));
    expect(sorted(tables[1]!)).toEqual(sorted(CONFIG_PART_FIELDS));
    expect(sorted(tables[2]!)).toEqual(sorted(SENSORS_PART_FIELDS));
    expect(sorted(tableNames(sec, '| section field |'))).toEqual(sorted(SECTION_FIELDS));
    expect(sorted(tableNames(sec, '| sensor field |'))).toEqual(sorted(SENSOR_OBJECT_FIELDS));
    expect(sorted(Object.keys(reloadRoute.response[200].properties.parts.properties))).toEqual(['checks', 'config', 'rules', 'sensors']);
    for (const s of CONFIG_SECTIONS) expect(sec).toContain(`\`${s}\``);
  });

  it('GET /v1/status: every documented field is in the schema, and the reverse', () => {
    const sec = section('### `GET /v1/status`');
    expect(sorted(tableNames(sec, '| field |'))).toEqual(sorted(Object.keys(statusRoute.response[200].properties)));
    expect(sorted(tableNames(sec, '| last_reload field |'))).toEqual(sorted(LAST_RELOAD_FIELDS));
  });
});
