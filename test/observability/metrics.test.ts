/**
 * Metrics (issue 16 part 1): geosession/prometheus on a replicating pair of private redis-servers over
 * Redis Streams. The metrics move as real store operations and real replication happen; prom-client's
 * own rendering of the registry and `metricsText` agree; labels stay bounded; registering twice is
 * harmless.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConfigError, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { METRICS, metricsText, registerMetrics } from '../../src/prometheus.js';
import { eventually } from '../helpers/eventually.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { parseExposition, sampleKey, sampleValue } from '../helpers/prometheus-text.js';
import { hasRedis, uniquePrefix } from '../helpers/servers.js';

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  };
}

/** Every label a metric may carry: bounded by configuration, never a session or user id. */
const ALLOWED_LABELS = new Set([
  'region',
  'keyspace',
  'origin',
  'peer',
  'transport',
  'op',
  'result',
  'reason',
  'state',
  'le',
]);

describe.skipIf(!hasRedis)('geosession/prometheus (Redis Streams, private servers)', () => {
  const servers = usePrivateRedisPair();

  function pair(prefix: string, kr: Record<string, unknown> = {}) {
    const options = { readers: 1, blockMs: 200 };
    const hk = servers.streamsRegion('hk', prefix, options, { heartbeatMs: 0 });
    const krRegion = servers.streamsRegion('kr', prefix, options, { heartbeatMs: 0, ...kr });
    return { hk, kr: krRegion };
  }

  it('metrics move as store operations and replication happen, and prom-client agrees with metricsText', async () => {
    const prefix = uniquePrefix('metrics');
    const { hk, kr } = pair(prefix);
    const registry = new Registry();
    registerMetrics(hk.store, { registry });
    registerMetrics(kr.store, { registry });
    await Promise.all([hk.store.ready(), kr.store.ready()]);

    const sids = [hk.store.genid(), hk.store.genid(), hk.store.genid()];
    for (const sid of sids) await hk.store.set(sid, session({ user: 'ana' }));
    expect(await hk.store.get(sids[0] as string)).not.toBeNull();
    expect(await hk.store.get(hk.store.genid())).toBeNull();
    await hk.store.destroy(sids[2] as string);
    await eventually(async () => (await kr.store.get(sids[1] as string)) !== null);

    const hkText = parseExposition(metricsText(hk.store));
    const ops = (op: string, result: string) =>
      sampleValue(hkText, 'geosession_store_operations_total', {
        region: 'hk',
        keyspace: prefix,
        op,
        result,
      });
    expect(ops('set', 'ok')).toBe(3);
    expect(ops('get', 'hit')).toBe(1);
    expect(ops('get', 'miss')).toBe(1);
    expect(ops('destroy', 'ok')).toBe(1);
    expect(sampleValue(hkText, 'geosession_store_operation_duration_seconds_count', { op: 'set' })).toBe(3);
    expect(
      sampleValue(hkText, 'geosession_store_operation_duration_seconds_bucket', { op: 'set', le: '+Inf' }),
    ).toBe(3);
    expect(
      sampleValue(hkText, 'geosession_replication_transport_state', {
        transport: 'redis-streams',
        state: 'ready',
      }),
    ).toBe(1);
    expect(sampleValue(hkText, 'geosession_replication_transport_state', { state: 'failed' })).toBe(0);

    // kr applied hk's three sets and its destroy, and measured their lag.
    await eventually(() => {
      const krText = parseExposition(metricsText(kr.store));
      return (
        (sampleValue(krText, 'geosession_replication_events_total', { region: 'kr', result: 'applied' }) ??
          0) >= 4
      );
    });
    const krText = parseExposition(metricsText(kr.store));
    expect(
      sampleValue(krText, 'geosession_replication_lag_seconds_count', { region: 'kr', origin: 'hk' }),
    ).toBeGreaterThanOrEqual(4);
    expect(
      sampleValue(krText, 'geosession_replication_last_lag_seconds', { origin: 'hk' }),
    ).toBeGreaterThanOrEqual(0);
    expect(
      sampleValue(krText, 'geosession_replication_batches_total', {
        op: 'apply',
        result: 'ok',
        transport: 'redis-streams',
      }),
    ).toBeGreaterThan(0);
    expect(sampleValue(krText, 'geosession_store_operations_total', { op: 'get', result: 'hit' })).toBe(1);

    // The same registry through prom-client and metricsText of both stores: the same samples.
    const [hkNow, krNow, promNow] = [metricsText(hk.store), metricsText(kr.store), registry.metrics()];
    const prom = parseExposition(await promNow);
    const ours = [...parseExposition(hkNow).samples, ...parseExposition(krNow).samples];
    const asMap = (samples: typeof ours) => new Map(samples.map((s) => [sampleKey(s), s.value]));
    expect(asMap(prom.samples)).toEqual(asMap(ours));
    expect(prom.samples.length).toBe(ours.length);
    for (const metric of METRICS) expect(prom.types.get(`geosession_${metric.name}`)).toBe(metric.type);

    // Bounded labels: known names only, and no session id anywhere.
    const text = await registry.metrics();
    for (const sample of prom.samples) {
      for (const label of Object.keys(sample.labels)) expect(ALLOWED_LABELS).toContain(label);
    }
    for (const sid of sids) expect(text).not.toContain(sid);
  });

  it('counts read-through hits and misses, refused writes and dead letters by reason', async () => {
    const prefix = uniquePrefix('metrics-rt');
    const { hk, kr } = pair(prefix);
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    // A third store in kr's Redis reading through to hk, without replication of its own.
    const { GeoSessionStore } = await import('../../src/index.js');
    const reader = new GeoSessionStore({
      region: 'kr',
      client: kr.clients.kr,
      prefix: `${prefix}rt:`,
      remotes: { hk: hk.clients.hk },
    });
    servers.opened.push(reader);
    metricsText(reader);
    metricsText(kr.store);
    const writer = new GeoSessionStore({ region: 'hk', client: hk.clients.hk, prefix: `${prefix}rt:` });
    servers.opened.push(writer);
    const sid = writer.genid();
    await writer.set(sid, session({ user: 'bo' }));
    expect(await reader.get(sid)).toMatchObject({ user: 'bo' });
    expect(await reader.get(writer.genid())).toBeNull();
    let text = parseExposition(metricsText(reader));
    expect(sampleValue(text, 'geosession_read_through_total', { origin: 'hk', result: 'hit' })).toBe(1);
    expect(sampleValue(text, 'geosession_read_through_total', { origin: 'hk', result: 'miss' })).toBe(1);

    // A write of a destroyed session is refused.
    await reader.destroy(sid);
    await reader.set(sid, session({ user: 'bo' }));
    text = parseExposition(metricsText(reader));
    expect(sampleValue(text, 'geosession_store_refused_writes_total', { op: 'set' })).toBe(1);

    // A frame in hk's outbox that is no envelope is dead-lettered by kr as malformed.
    await hk.clients.hk.xadd(createKeySpace(prefix).internal('outbox', 'hk'), '*', 'garbage', 'x');
    await eventually(() => {
      const krText = parseExposition(metricsText(kr.store));
      return sampleValue(krText, 'geosession_replication_dead_lettered_total', { reason: 'malformed' }) === 1;
    });
  });

  it('shows the backlog a stopped region leaves, per peer', { timeout: 30_000 }, async () => {
    const prefix = uniquePrefix('metrics-backlog');
    const { hk, kr } = pair(prefix);
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    await kr.store.close();
    await kr.transport.close();
    for (let i = 0; i < 5; i++) await hk.store.set(hk.store.genid(), session({ i }));
    // The backlog is read every 5 s (the replicator's housekeeping).
    await eventually(() => {
      const text = parseExposition(metricsText(hk.store));
      return (
        (sampleValue(text, 'geosession_replication_backlog_entries', { region: 'hk', peer: 'kr' }) ?? 0) >= 5
      );
    }, 20_000);
    const text = parseExposition(metricsText(hk.store));
    const age = sampleValue(text, 'geosession_replication_backlog_oldest_age_seconds', { peer: 'kr' });
    expect(age).toBeGreaterThanOrEqual(0);
  });

  it('registering twice is harmless; stores share a registry; unregistering takes the metrics back', async () => {
    const prefix = uniquePrefix('metrics-reg');
    const { hk, kr } = pair(prefix);
    const registry = new Registry();
    const first = registerMetrics(hk.store, { registry });
    const again = registerMetrics(hk.store, { registry });
    const other = registerMetrics(kr.store, { registry });
    await hk.store.set(hk.store.genid(), session({}));
    let parsed = parseExposition(await registry.metrics());
    const setOk = parsed.samples.filter(
      (s) => s.name === 'geosession_store_operations_total' && s.labels['op'] === 'set',
    );
    expect(setOk).toHaveLength(1); // one series, counted once, though registered twice
    expect(setOk[0]?.value).toBe(1);
    expect(new Set(parsed.samples.map((s) => s.labels['region']))).toEqual(new Set(['hk', 'kr']));

    first();
    first(); // calling it again does nothing
    again();
    parsed = parseExposition(await registry.metrics());
    expect(new Set(parsed.samples.map((s) => s.labels['region']))).toEqual(new Set(['kr']));
    other();
    expect(registry.getMetricsAsArray()).toHaveLength(0);

    // With its last registration taken back a store's counting stopped: registered again, it starts at 0.
    await hk.store.set(hk.store.genid(), session({}));
    const fresh = registerMetrics(hk.store, { registry });
    parsed = parseExposition(await registry.metrics());
    expect(sampleValue(parsed, 'geosession_store_operations_total', { op: 'set' })).toBeUndefined();
    await hk.store.set(hk.store.genid(), session({}));
    parsed = parseExposition(await registry.metrics());
    expect(sampleValue(parsed, 'geosession_store_operations_total', { op: 'set' })).toBe(1);
    fresh();

    // Another prefix on the same registry is another set of names.
    const custom = registerMetrics(hk.store, { registry, prefix: 'app_sessions_' });
    expect(registry.getSingleMetric('app_sessions_store_operations_total')).toBeDefined();
    custom();

    // An OpenMetrics registry renders them too (counters named as OpenMetrics wants), and lets them go.
    const open = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
    open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const openUndo = registerMetrics(hk.store, { registry: open });
    expect(await open.metrics()).toContain('# TYPE geosession_store_operations counter');
    openUndo();
    expect(open.getMetricsAsArray()).toHaveLength(0);

    // A name the registry holds already, a bad registry or prefix: a ConfigError naming the option.
    const taken = new Registry();
    const { Counter } = await import('prom-client');
    new Counter({ name: 'geosession_store_operations_total', help: 'mine', registers: [taken] });
    expect(() => registerMetrics(hk.store, { registry: taken })).toThrow(ConfigError);
    expect(() => registerMetrics(hk.store, { registry: {} as Registry })).toThrow(/registry/);
    expect(() => registerMetrics(hk.store, { registry, prefix: '9bad' })).toThrow(/prefix/);
    expect(() => metricsText(hk.store, { prefix: 'a-b' })).toThrow(/prefix/);
  });
});
