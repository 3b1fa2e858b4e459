/**
 * The Grafana dashboard (docs/grafana/geosession.json) queries only metrics and labels the library
 * exports: every metric name in its queries is one registered on a real store's registry (a histogram's
 * `_bucket`, `_sum` and `_count` included), and every label it groups or filters by is one those metrics carry.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryTransport, GeoSessionStore } from '../../src/index.js';
import { METRICS, registerMetrics } from '../../src/prometheus.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

/** Every query text of the dashboard: panel targets (rows' panels too) and template variables. */
function queriesOf(dashboard: Record<string, unknown>): string[] {
  const out: string[] = [];
  const walk = (panels: unknown) => {
    for (const panel of (panels as { targets?: { expr?: string }[]; panels?: unknown[] }[]) ?? []) {
      for (const target of panel.targets ?? []) if (target.expr) out.push(target.expr);
      if (panel.panels) walk(panel.panels);
    }
  };
  walk(dashboard['panels']);
  const templating = dashboard['templating'] as { list: { query?: unknown; definition?: string }[] };
  for (const variable of templating.list) {
    const query =
      typeof variable.query === 'object' ? (variable.query as { query?: string }).query : undefined;
    if (query) out.push(query);
    if (variable.definition) out.push(variable.definition);
  }
  return out;
}

describe.skipIf(!hasRedis)('the Grafana dashboard', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('grafana');
  const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
  const store = new GeoSessionStore({ region: 'hk', client, prefix, transport, sealer: 'none' });
  afterAll(async () => {
    await store.close();
    await transport.close();
    await dropKeys(client, prefix);
    client.disconnect();
  });

  it('queries only metric names and labels a real store registers', async () => {
    await store.ready();
    const registry = new Registry();
    registerMetrics(store, { registry });
    await store.set(store.genid(), { cookie: { originalMaxAge: 60_000 } });
    const registered = await registry.getMetricsAsJSON();
    const exported = new Set<string>();
    for (const metric of registered) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram')
        for (const s of ['_bucket', '_sum', '_count']) exported.add(metric.name + s);
    }
    expect(registered.length).toBe(METRICS.length);

    const dashboard = JSON.parse(
      await readFile(join(process.cwd(), 'docs', 'grafana', 'geosession.json'), 'utf8'),
    ) as Record<string, unknown>;
    const queries = queriesOf(dashboard);
    expect(queries.length).toBeGreaterThan(10);
    const used = new Set(
      queries.flatMap((q) => [...q.matchAll(/\bgeosession_[a-zA-Z0-9_]+/g)].map((m) => m[0])),
    );
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(exported, `the dashboard queries ${name}`).toContain(name);

    // Labels in by (...) clauses and {label=...} selectors are labels the metrics carry (le: histograms).
    const labels = new Set(['region', 'keyspace', 'le', ...METRICS.flatMap((m) => [...m.labels])]);
    for (const query of queries) {
      for (const by of query.matchAll(/\bby \(([^)]*)\)/g)) {
        for (const label of (by[1] ?? '').split(',').map((l) => l.trim())) expect(labels).toContain(label);
      }
      for (const selector of query.matchAll(/\{([^}]*)\}/g)) {
        for (const matcher of (selector[1] ?? '').matchAll(/([a-zA-Z_]+)\s*(=~|!=|!~|=)/g)) {
          expect(labels).toContain(matcher[1]);
        }
      }
    }
    // The panels the issue asks for are there.
    const text = queries.join('\n');
    for (const name of [
      'geosession_replication_lag_seconds_bucket',
      'geosession_replication_backlog_entries',
      'geosession_replication_events_total',
      'geosession_replication_dead_lettered_total',
      'geosession_store_operations_total',
      'geosession_store_operation_duration_seconds_bucket',
      'geosession_replication_transport_state',
    ]) {
      expect(text).toContain(name);
    }
  });
});
