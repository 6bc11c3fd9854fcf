// docs/api.md against the route schemas: every documented parameter and field exists in the
// schema, and every schema parameter and field is documented (the docs drifted once already).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { healthRoute, processSchema, processRoute, processesRoute, statsRoute } from '../../src/api/schemas.js';
import { historyRoute, nodeRoute } from '../../src/api/history.js';
import { TOP_ROW_FIELDS, topRoute } from '../../src/api/top.js';

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

  it('GET /v1/node: the parameters and every field, both ways', () => {
    const s = section('### `GET /v1/node`');
    expect(sorted(tableNames(s, '| parameter |'))).toEqual(sorted(Object.keys(nodeRoute.querystring.properties)));
    expect(sorted(tableNames(s, '| field |'))).toEqual(sorted(Object.keys(nodeRoute.response[200].properties)));
    const seriesLine = s.split('\n').find((l) => l.startsWith('| `series` |'))!;
    expect(sorted([...seriesLine.matchAll(/`([a-z_0-9]+)`/g)].map((m) => m[1]!).filter((x) => x !== 'series'))).toEqual(sorted(Object.keys(nodeRoute.response[200].properties.series.properties)));
  });

  it('GET /v1/history: the parameters and the example, both ways', () => {
    const s = section('### `GET /v1/history`');
    expect(sorted(tableNames(s, '| parameter |'))).toEqual(sorted(Object.keys(historyRoute.querystring.properties)));
    const example = JSON.parse(s.match(/```json\n([\s\S]*?)\n```/)![1]!.replace(/"…"/g, '"x"').replace(/, …/g, '').replace(/…/g, ''));
    expect(sorted(Object.keys(example))).toEqual(sorted(Object.keys(historyRoute.response[200].properties)));
    expect(sorted(Object.keys(example.processes[0]))).toEqual(sorted(Object.keys(historyRoute.response[200].properties.processes.items.properties)));
  });

  it('GET /v1/processes/:exec_id: the example names the schema\'s fields; /v1/top documents `fields`', () => {
    const s = section('### `GET /v1/processes/:exec_id`');
    for (const k of Object.keys(processRoute.response[200].properties)) expect(s).toContain(`"${k}"`);
    expect(sorted(tableNames(section('### `GET /v1/top`'), '| parameter |'))).toEqual(sorted(Object.keys(topRoute.querystring.properties)));
    // the TopRow fields `fields=` accepts are the ones docs/metrics.md documents
    const metrics = readFileSync(fileURLToPath(new URL('../../docs/metrics.md', import.meta.url)), 'utf8');
    const i = metrics.indexOf('`--json` prints an array of rows:');
    expect(sorted(tableNames(metrics.slice(i), '| field |'))).toEqual(sorted(TOP_ROW_FIELDS));
  });

  it('GET /v1/stats: every documented field is in the schema, and the reverse', () => {
    const doc = tableNames(section('### `GET /v1/stats`'), '| field |');
    expect(sorted(doc)).toEqual(sorted(Object.keys(statsRoute.response[200].properties)));
  });
});
