/**
 * A replication node's options: defaults filled in, and every bad value refused at construction with a
 * `ConfigError` naming the option. No server is contacted (the client never connects).
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createMemoryTransport } from '../../src/index.js';
import {
  NODE_DEFAULTS,
  type ReplicationNodeOptions,
  resolveNodeOptions,
} from '../../src/replication/node-options.js';
import { generatePasetoKey, localSealer } from '../helpers/forgery.js';

const client = new Redis({ lazyConnect: true });
const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
const base: ReplicationNodeOptions = { region: 'hk', channel: 'inv:', client, transport, onError: () => {} };

function optionAtFault(patch: Record<string, unknown>): string | undefined {
  try {
    resolveNodeOptions({ ...base, ...patch } as ReplicationNodeOptions);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
}

describe('replication node options', () => {
  afterAll(async () => {
    client.disconnect();
    await transport.close();
  });

  it('fills in the defaults, and the keys from the channel', () => {
    const o = resolveNodeOptions(base);
    expect(o.operationTimeoutMs).toBe(NODE_DEFAULTS.operationTimeoutMs);
    expect(o.gapGraceMs).toBe(NODE_DEFAULTS.gapGraceMs);
    expect(o.heartbeatMs).toBe(NODE_DEFAULTS.heartbeatMs);
    expect(o.outboxBound).toEqual(NODE_DEFAULTS.outboxBound);
    expect(o.sealer).toBeUndefined();
    expect(o.acceptUnsealed).toBe(false);
    expect(o.keys.internal('outbox', 'hk')).toBe('{inv:|outbox}:hk');
    expect(o.keys.sequence('hk')).toBe('{inv:|outbox}:hk:seq');
  });

  it.each([
    [{ region: 'HK!' }, 'region'],
    [{ channel: 'a|b' }, 'channel'],
    [{ channel: 3 }, 'channel'],
    [{ client: {} }, 'client'],
    [{ transport: undefined }, 'transport'],
    [{ onError: undefined }, 'onError'],
    [{ sealer: { seal: 1 } }, 'sealer'],
    [{ acceptUnsealed: true }, 'acceptUnsealed'],
    [{ sendUnsealed: true, sealer: localSealer([generatePasetoKey().key]) }, 'sendUnsealed'],
    [{ gapGraceMs: -1 }, 'gapGraceMs'],
    [{ heartbeatMs: 'often' }, 'heartbeatMs'],
    [{ relayInFlight: 0 }, 'relayInFlight'],
    [{ outboxBound: { warnAt: 2 } }, 'outboxBound.warnAt'],
    [{ operationTimeoutMs: 0 }, 'operationTimeoutMs'],
    [{ now: 5 }, 'now'],
  ])('refuses %j naming %s', (patch, option) => {
    expect(optionAtFault(patch)).toContain(option);
  });
});
