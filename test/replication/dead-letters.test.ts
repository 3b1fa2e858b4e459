/**
 * Dead letters bounded by bytes as well as count, and never a sealed body in clear (issue 14 item 6).
 * Found: the stream was trimmed by count only (`MAXLEN ~ 10000`) with bodies of up to 64 Ki UTF-16
 * units each (up to 192 KiB), so a flood of large poison could hold gigabytes; and an envelope that
 * arrived sealed and failed after opening was kept with its opened body in clear.
 */
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { EventError } from '../../src/errors.js';
import { DeadLetters, MAX_DEAD_LETTER_BODY } from '../../src/replication/dead-letters.js';
import { Pipeline } from '../../src/replication/pipeline.js';
import { sealEnvelopes } from '../../src/replication/sealed-batch.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { eventually } from '../helpers/eventually.js';
import { generatePasetoKey, localSealer } from '../helpers/forgery.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

describe.skipIf(!hasRedis)('dead letters', () => {
  const redis = sharedRedis();
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await dropKeys(redis, prefix);
    redis.disconnect();
  });
  function streamKey(): string {
    const prefix = uniquePrefix('dead');
    prefixes.push(prefix);
    return `${prefix}|dead:hk`;
  }
  /** The entries of a stream with the UTF-8 bytes of their fields. */
  async function entries(key: string) {
    const list = (await redis.xrange(key, '-', '+')) as [string, string[]][];
    return list.map(([id, flat]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
      return { id, fields: f, size: flat.reduce((sum, part) => sum + bytes(part), 0) };
    });
  }

  it('a byte bound holds under many large poison envelopes', async () => {
    const key = streamKey();
    const maxBytes = 200 * 1024;
    const errors: unknown[] = [];
    const letters = new DeadLetters(redis, key, { maxEntries: 10_000, maxBytes }, (e) => errors.push(e));
    const big = '가'.repeat(400_000); // 1.2 MB each
    for (let n = 0; n < 300; n++) {
      letters.add({
        reason: 'poison',
        id: `hk:${n}-0`,
        origin: 'hk',
        kind: 'session',
        time: n,
        error: 'x'.repeat(100_000),
        body: `${n}|${big}`,
      });
    }
    await eventually(async () => (await letters.latest(1))[0]?.id === 'hk:299-0');
    expect(errors).toEqual([]);
    const held = await entries(key);
    const total = held.reduce((sum, e) => sum + e.size, 0);
    expect(total).toBeLessThanOrEqual(maxBytes);
    expect(Number(await redis.get(`${key}:bytes`))).toBe(total);
    expect(held.length).toBeGreaterThan(10); // the newest ones, each shortened
    for (const { fields } of held) {
      expect(bytes(fields.body ?? '')).toBeLessThanOrEqual(MAX_DEAD_LETTER_BODY + 32);
      expect(bytes(fields.error ?? '')).toBeLessThanOrEqual(1024);
    }
    const [newest] = await letters.latest(1);
    expect(newest?.digest).toBe(sha256(`299|${big}`));
    expect(newest?.bytes).toBe(bytes(`299|${big}`));
  });

  it('the count bound holds exactly, and a lost byte counter is rebuilt', async () => {
    const key = streamKey();
    const letters = new DeadLetters(redis, key, { maxEntries: 20, maxBytes: 1 << 30 }, () => {});
    const add = (n: number) =>
      letters.add({
        reason: 'poison',
        id: `hk:${n}-0`,
        origin: 'hk',
        kind: 'x',
        time: n,
        error: undefined,
        body: 'b',
      });
    for (let n = 0; n < 100; n++) add(n);
    await eventually(async () => (await letters.latest(1))[0]?.id === 'hk:99-0');
    expect(await redis.xlen(key)).toBe(20);
    await redis.del(`${key}:bytes`);
    add(100);
    await eventually(async () => (await letters.latest(1))[0]?.id === 'hk:100-0');
    const held = await entries(key);
    expect(held).toHaveLength(20);
    expect(Number(await redis.get(`${key}:bytes`))).toBe(held.reduce((sum, e) => sum + e.size, 0));
  });

  it('a stream written before the byte bound is cut down to it on the next letter', async () => {
    const key = streamKey();
    // What an earlier version left: MAXLEN by count only, bodies of up to 64 Ki units.
    for (let n = 0; n < 40; n++)
      await redis.xadd(key, '*', 'reason', 'poison', 'id', `old:${n}`, 'body', '가'.repeat(65_536));
    const letters = new DeadLetters(redis, key, { maxEntries: 10_000, maxBytes: 1024 * 1024 }, () => {});
    letters.add({
      reason: 'poison',
      id: 'new',
      origin: 'hk',
      kind: 'x',
      time: 1,
      error: undefined,
      body: 'b',
    });
    await eventually(async () => (await letters.latest(1))[0]?.id === 'new');
    const held = await entries(key);
    const total = held.reduce((sum, e) => sum + e.size, 0);
    expect(total).toBeLessThanOrEqual(1024 * 1024);
    expect(held.at(-1)?.fields.id).toBe('new');
    expect(held.at(-2)?.fields.id).toBe('old:39'); // the newest of the old ones that fit are kept
    expect(Number(await redis.get(`${key}:bytes`))).toBe(total);
  });

  it('an envelope that arrived sealed and failed after opening is kept by digest, never in clear', async () => {
    const key = streamKey();
    const letters = new DeadLetters(redis, key, 10_000, () => {});
    const sealer = localSealer([generatePasetoKey().key]);
    const channel = 'dead:';
    const pipeline = new Pipeline({
      region: 'kr',
      channel,
      transport: createMemoryTransport(),
      sealer,
      acceptUnsealed: true,
      deadLetters: letters,
      now: Date.now,
      onError: () => {},
    });
    pipeline.register<string>('note', {
      decode: (envelope) => {
        if (envelope.body.startsWith('bad')) throw new EventError('cannot decode');
        return envelope.body;
      },
      apply: async (items) => {
        if (items.some((item) => item.startsWith('poison'))) throw new EventError('cannot apply');
      },
    });
    const inner = (id: string, body: string): Envelope => ({ id, origin: 'hk', kind: 'note', time: 1, body });
    const secretDecode = 'bad: password=hunter2';
    const secretApply = 'poison: card=4111111111111111';
    const secretKind = 'secret of an unknown kind';
    const sealed = await sealEnvelopes(
      sealer,
      [
        inner('hk:1-0', secretDecode),
        inner('hk:2-0', secretApply),
        { ...inner('hk:3-0', secretKind), kind: 'unheard' },
        inner('hk:4-0', 'fine'),
      ],
      'hk',
      channel,
    );
    const unsealed = inner('hk:5-0', 'bad but sent unsealed');
    await pipeline.receive([...sealed, unsealed]);
    await eventually(async () => (await letters.latest(10)).length === 4);
    const stored = JSON.stringify(await redis.xrange(key, '-', '+'));
    for (const secret of [secretDecode, secretApply, secretKind]) expect(stored).not.toContain(secret);
    const byId = new Map((await letters.latest(10)).map((l) => [l.id, l]));
    expect(byId.get('hk:1-0')).toMatchObject({
      reason: 'malformed',
      sealed: true,
      body: '',
      digest: sha256(secretDecode),
    });
    expect(byId.get('hk:2-0')).toMatchObject({
      reason: 'poison',
      sealed: true,
      body: '',
      digest: sha256(secretApply),
    });
    expect(byId.get('hk:3-0')).toMatchObject({ reason: 'unknown-kind', sealed: true, body: '' });
    // What arrived unsealed was in clear on the wire anyway: kept as it came.
    expect(byId.get('hk:5-0')).toMatchObject({ reason: 'malformed', sealed: false, body: unsealed.body });
  });

  it('a sealed batch refused before opening keeps its token, which is sealed', async () => {
    const key = streamKey();
    const letters = new DeadLetters(redis, key, 10_000, () => {});
    const channel = 'dead:';
    const pipeline = new Pipeline({
      region: 'kr',
      channel,
      transport: createMemoryTransport(),
      sealer: localSealer([generatePasetoKey().key]),
      acceptUnsealed: false,
      deadLetters: letters,
      now: Date.now,
      onError: () => {},
    });
    const other = localSealer([generatePasetoKey().key]);
    const [batch] = await sealEnvelopes(
      other,
      [{ id: 'hk:1-0', origin: 'hk', kind: 'note', time: 1, body: 'clear text' }],
      'hk',
      channel,
    );
    await pipeline.receive([batch as Envelope]);
    await eventually(async () => (await letters.latest(1)).length === 1);
    const [letter] = await letters.latest(1);
    expect(letter).toMatchObject({ sealed: false, body: batch?.body, digest: sha256(batch?.body ?? '') });
    expect(letter?.body).not.toContain('clear text');
  });
});
