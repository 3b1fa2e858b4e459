/**
 * docs/operations.md, "Metrics", lists every metric the library exports with its type and labels, and
 * "Tracing" every channel: the tables are checked against the catalog, so that a metric added or renamed
 * without its line fails here.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { TRACING_CHANNELS } from '../../src/index.js';
import { METRICS } from '../../src/prometheus.js';

async function section(title: string): Promise<string> {
  const text = await readFile(join(process.cwd(), 'docs', 'operations.md'), 'utf8');
  const start = text.indexOf(`\n## ${title}\n`);
  expect(start, `docs/operations.md has a "${title}" section`).toBeGreaterThan(-1);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end === -1 ? undefined : end);
}

it('the Metrics section lists every metric with its type and labels, and no other', async () => {
  const text = await section('Metrics');
  const rows = [...text.matchAll(/^\| `(geosession_[a-z_]+)` \| (\w+) \|([^|]*)\|/gm)];
  const documented = new Map(rows.map((row) => [row[1] as string, { type: row[2], labels: row[3] ?? '' }]));
  expect([...documented.keys()].sort()).toEqual(METRICS.map((m) => `geosession_${m.name}`).sort());
  for (const metric of METRICS) {
    const row = documented.get(`geosession_${metric.name}`);
    expect(row?.type, metric.name).toBe(metric.type);
    const labels = [...(row?.labels ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
    expect(labels, metric.name).toEqual([...metric.labels]);
  }
});

it('the Tracing section names every channel', async () => {
  const text = await section('Tracing');
  for (const name of Object.values(TRACING_CHANNELS)) expect(text).toContain(`\`${name}\``);
});
