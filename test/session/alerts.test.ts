/**
 * Each alert rule fires once and clears once, driven by real causes on a replicating pair over Redis
 * Streams between two private redis-servers: a region's Redis stalled (SIGSTOP) for lag and a transport
 * down, a peer that stops reading for backlog, a forged frame for rejected envelopes and dead letters, a
 * need planted in (and removed from) the state hash. A throwing hook becomes an `error` event.
 */
import { describe, expect, it } from 'vitest';
import { CallbackError, type GeoSessionError } from '../../src/errors.js';
import type { Alert, AlertRules } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { type StreamsRegion, usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

const OFF: AlertRules = {
  lag: false,
  backlog: false,
  transportDown: false,
  rejected: false,
  needsResync: false,
  deadLetters: false,
};

/** The alerts of `rule` delivered so far, as `state:peer` strings. */
function delivered(alerts: Alert[], rule: Alert['rule']): string[] {
  return alerts.filter((a) => a.rule === rule).map((a) => `${a.state}:${a.peer ?? '-'}`);
}

async function writeSessions(region: StreamsRegion, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await region.store.set(region.store.genid(), { cookie: { originalMaxAge: 600_000 }, n: i });
  }
}

describe.skipIf(!hasRedis)('alert rules', () => {
  const pair = usePrivateRedisPair();

  it('lag: fires when changes arrive late, clears when the p99 of the last minute is low again', async () => {
    const prefix = uniquePrefix('alert-lag');
    const alerts: Alert[] = [];
    const hk = pair.streamsRegion('hk', prefix, {}, { statusIntervalMs: 100 });
    const kr = pair.streamsRegion(
      'kr',
      prefix,
      {},
      {
        statusIntervalMs: 100,
        alerts: { ...OFF, lag: { thresholdMs: 1000, forMs: 0 } },
        onAlert: (alert) => alerts.push(alert),
      },
    );
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    pair.kr.pause();
    await writeSessions(hk, 3);
    await new Promise((r) => setTimeout(r, 2500));
    pair.kr.resume();
    await eventually(() => delivered(alerts, 'lag').length === 1, 15_000);
    const fired = alerts[0] as Alert;
    expect(fired).toMatchObject({ state: 'firing', rule: 'lag', region: 'kr', peer: 'hk', threshold: 1000 });
    expect(fired.value).toBeGreaterThan(1000);
    expect(fired.message).toMatch(/lag p99 of changes from hk to kr/);
    expect((await kr.store.status()).alerts).toEqual([fired]);

    // Traffic flows normally again: a few hundred prompt changes bring the minute's p99 down.
    await writeSessions(hk, 400);
    await eventually(() => delivered(alerts, 'lag').length === 2, 15_000);
    expect(delivered(alerts, 'lag')).toEqual(['firing:hk', 'resolved:hk']);
    expect(alerts[1]?.since).toBe(fired.since);
    expect((await kr.store.status()).alerts).toEqual([]);
  }, 60_000);

  it('backlog: fires while a peer does not read, clears once it caught up', async () => {
    const prefix = uniquePrefix('alert-backlog');
    const alerts: Alert[] = [];
    const hk = pair.streamsRegion(
      'hk',
      prefix,
      { trimIntervalMs: 200 },
      {
        statusIntervalMs: 100,
        alerts: { ...OFF, backlog: { entries: 5, forMs: 0 } },
        onAlert: (alert) => alerts.push(alert),
      },
    );
    const kr = pair.streamsRegion('kr', prefix, {}, {});
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    await kr.store.close();
    await kr.transport.close();
    await writeSessions(hk, 10);
    await eventually(() => delivered(alerts, 'backlog').length === 1, 20_000);
    expect(alerts[0]).toMatchObject({ state: 'firing', peer: 'kr', value: 10, threshold: 5 });
    const report = await hk.store.status();
    expect(report.peers.find((p) => p.region === 'kr')?.backlog?.entries).toBe(10);

    const again = pair.streamsRegion('kr', prefix, {}, {});
    await again.store.ready();
    await eventually(() => delivered(alerts, 'backlog').length === 2, 20_000);
    expect(delivered(alerts, 'backlog')).toEqual(['firing:kr', 'resolved:kr']);
  }, 60_000);

  it('transportDown: fires while a peer region’s Redis does not answer, clears when it does', async () => {
    const prefix = uniquePrefix('alert-down');
    const alerts: Alert[] = [];
    const hk = pair.streamsRegion(
      'hk',
      prefix,
      { blockMs: 200, watchdogMs: 300 },
      {
        statusIntervalMs: 100,
        alerts: { ...OFF, transportDown: { forMs: 300 } },
        onAlert: (alert) => alerts.push(alert),
      },
    );
    await hk.store.ready();
    await new Promise((r) => setTimeout(r, 500));
    expect(alerts).toEqual([]);
    pair.kr.pause();
    await eventually(() => delivered(alerts, 'transportDown').length === 1, 20_000);
    expect(alerts[0]).toMatchObject({ state: 'firing', peer: undefined, region: 'hk' });
    expect(alerts[0]?.message).toMatch(/transport of hk is degraded/);
    pair.kr.resume();
    await eventually(() => delivered(alerts, 'transportDown').length === 2, 20_000);
    expect(delivered(alerts, 'transportDown')).toEqual(['firing:-', 'resolved:-']);
  }, 60_000);

  it('rejected and deadLetters: a forged frame fires both once; they clear after their quiet time', async () => {
    const prefix = uniquePrefix('alert-rejected');
    const alerts: Alert[] = [];
    const hk = pair.streamsRegion('hk', prefix, {}, {});
    const kr = pair.streamsRegion(
      'kr',
      prefix,
      {},
      {
        statusIntervalMs: 100,
        alerts: { ...OFF, rejected: { quietMs: 1500 }, deadLetters: { growth: 1, quietMs: 1500 } },
        onAlert: (alert) => alerts.push(alert),
      },
    );
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    await new Promise((r) => setTimeout(r, 300)); // the dead-letter count's baseline is read
    // Someone with write access to hk's outbox adds a frame that is no envelope.
    await hk.clients.hk.xadd(createKeySpace(prefix).internal('outbox', 'hk'), '*', 'forged', '1');
    await eventually(() => alerts.filter((a) => a.state === 'firing').length === 2, 15_000);
    expect(alerts.find((a) => a.rule === 'rejected')).toMatchObject({ peer: 'hk', value: 1 });
    expect(alerts.find((a) => a.rule === 'deadLetters')).toMatchObject({ peer: undefined, value: 1 });
    const report = await kr.store.status();
    expect(report.peers.find((p) => p.region === 'hk')?.rejected).toEqual({ malformed: 1 });
    expect(report.deadLetters?.entries).toBe(1);
    await eventually(() => alerts.length === 4, 15_000);
    expect(delivered(alerts, 'rejected')).toEqual(['firing:hk', 'resolved:hk']);
    expect(delivered(alerts, 'deadLetters')).toEqual(['firing:-', 'resolved:-']);
  }, 60_000);

  it('needsResync: fires while the state hash records a need, clears when it is removed', async () => {
    const prefix = uniquePrefix('alert-resync');
    const alerts: Alert[] = [];
    const kr = pair.streamsRegion(
      'kr',
      prefix,
      {},
      {
        statusIntervalMs: 100,
        alerts: { ...OFF, needsResync: true },
        onAlert: (alert) => alerts.push(alert),
      },
    );
    await kr.store.ready();
    const state = createKeySpace(prefix).internal('state', 'kr');
    const need = { reason: 'planted by the test', cause: 'data-lost', since: Date.now() };
    await kr.clients.kr.hset(state, 'resync:hk', JSON.stringify(need));
    await eventually(() => alerts.length === 1, 10_000);
    expect(alerts[0]).toMatchObject({ state: 'firing', rule: 'needsResync', peer: 'hk' });
    expect(alerts[0]?.message).toMatch(/needs a resync with hk \(data-lost\): planted by the test/);
    expect((await kr.store.status()).peers.find((p) => p.region === 'hk')?.needsResync).toEqual(need);
    await kr.clients.kr.hdel(state, 'resync:hk');
    await eventually(() => alerts.length === 2, 10_000);
    expect(delivered(alerts, 'needsResync')).toEqual(['firing:hk', 'resolved:hk']);
  }, 30_000);

  it('a throwing onAlert hook is reported as an error event, and later alerts still come', async () => {
    const prefix = uniquePrefix('alert-throw');
    const calls: Alert[] = [];
    const errors: GeoSessionError[] = [];
    const kr = pair.streamsRegion(
      'kr',
      prefix,
      {},
      {
        statusIntervalMs: 100,
        alerts: { ...OFF, needsResync: true },
        onAlert: (alert) => {
          calls.push(alert);
          throw new Error('the pager is down');
        },
      },
    );
    kr.store.on('error', (error) => errors.push(error));
    await kr.store.ready();
    const state = createKeySpace(prefix).internal('state', 'kr');
    await kr.clients.kr.hset(state, 'resync:hk', JSON.stringify({ reason: 'planted', since: Date.now() }));
    await eventually(() => errors.some((e) => e instanceof CallbackError), 10_000);
    const error = errors.find((e) => e instanceof CallbackError) as CallbackError;
    expect(error.operation).toBe('onAlert');
    expect(error.message).toMatch(/the pager is down/);
    await kr.clients.kr.hdel(state, 'resync:hk');
    await eventually(() => calls.length === 2, 10_000);
    expect(calls.map((a) => a.state)).toEqual(['firing', 'resolved']);
    await kr.store.set(kr.store.genid(), { cookie: { originalMaxAge: 60_000 } }); // still serving
  }, 30_000);

  it('close() stops the checks: nothing is delivered after it', async () => {
    const prefix = uniquePrefix('alert-close');
    const alerts: Alert[] = [];
    const kr = pair.streamsRegion(
      'kr',
      prefix,
      {},
      { statusIntervalMs: 100, alerts: { ...OFF, needsResync: true }, onAlert: (a) => alerts.push(a) },
    );
    await kr.store.ready();
    await kr.store.close();
    const state = createKeySpace(prefix).internal('state', 'kr');
    await kr.clients.kr.hset(state, 'resync:hk', JSON.stringify({ reason: 'planted', since: Date.now() }));
    await new Promise((r) => setTimeout(r, 600));
    expect(alerts).toEqual([]);
  });
});
