/**
 * What holds without a sealer, over Redis Streams, AMQP and NATS, when an attacker writes session
 * changes where the other regions read them (a raw XADD to the outbox, a raw publish on the broker):
 * - a forged version far ahead (`999999999999999.9999.hk`) is refused as skewed, and later genuine
 *   writes still win;
 * - an "immortal touch" (expiry 0, or far beyond the session's lifetime rule) is refused as invalid,
 *   also when it arrives before the session does;
 * - with `prefix: ''`, the id `{outbox}:kr` (or any id that could reach an internal key) is refused
 *   with an InvalidSessionIdError, and every later write in that region still works and replicates.
 * The deployment uses the empty prefix throughout, the case where ids and internal keys are closest.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSessionIdError } from '../../src/errors.js';
import {
  createDeployment,
  type Deployment,
  TRANSPORT_KINDS,
  transportAvailable,
} from '../helpers/deployment.js';
import { forgedSet, forgedTouch, HOUR, session } from '../helpers/forgery.js';
import { sessionState } from '../helpers/meta.js';
import { eventually } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr', 'us'] as const;
const RECEIVERS = ['kr', 'us'] as const;
const WAIT = 20_000;
const YEAR = 365 * 24 * HOUR;

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`forged changes without a sealer over ${kind} (prefix '')`, () => {
    let d: Deployment;
    const client = (r: string) => d.clients[r] as Redis;
    const received = (r: string) => d.store(r).replicationStats()?.received;

    /** A session made in hk and replicated to every region, and its state in each receiver. */
    async function victim(data: Record<string, unknown> = { user: 'victim', role: 'user' }) {
      const sid = d.store('hk').genid();
      await d.store('hk').set(sid, session(data));
      await eventually(async () => {
        for (const r of RECEIVERS) if ((await client(r).get(sid)) === null) return false;
        return true;
      }, WAIT);
      const before: Record<string, Awaited<ReturnType<typeof sessionState>>> = {};
      for (const r of RECEIVERS) before[r] = await sessionState(client(r), d.keys, sid);
      return { sid, before };
    }

    beforeAll(async () => {
      d = await createDeployment(kind, REGIONS, { prefix: '' });
      for (const region of REGIONS) await d.start(region);
    });
    afterAll(async () => {
      await d?.close();
    });

    it('a forged version far ahead is refused as skewed, and later genuine writes still win', async () => {
      const { sid, before } = await victim();
      const skewed = Object.fromEntries(RECEIVERS.map((r) => [r, received(r)?.skewed ?? 0]));
      await d.inject(
        [forgedSet('hk', sid, { user: 'victim', role: 'admin' }, { version: '999999999999999.9999.hk' })],
        'outbox',
      );
      await eventually(() => RECEIVERS.every((r) => (received(r)?.skewed ?? 0) > (skewed[r] ?? 0)), WAIT);
      for (const r of RECEIVERS) {
        expect(received(r)?.skewed).toBe((skewed[r] ?? 0) + 1);
        expect(await sessionState(client(r), d.keys, sid)).toEqual(before[r]);
      }
      // The next genuine write, in any region, wins everywhere, with a version of the normal width.
      await d.store('kr').set(sid, session({ user: 'victim', role: 'user', step: 2 }));
      await eventually(async () => {
        for (const r of REGIONS) if (JSON.parse((await client(r).get(sid)) ?? '{}').step !== 2) return false;
        return true;
      }, WAIT);
      for (const r of REGIONS) {
        expect((await sessionState(client(r), d.keys, sid)).meta.v).toMatch(/^\d{15}\.\d{4}\.kr$/);
      }
    });

    it('an immortal touch (expiry 0, or far past the lifetime rule) is refused as invalid', async () => {
      const { sid, before } = await victim();
      const invalid = Object.fromEntries(RECEIVERS.map((r) => [r, received(r)?.invalid ?? 0]));
      // One at a time: two touches of a session in one batch are merged into one (the later expiry).
      for (const [n, touch] of [
        [1, forgedTouch('hk', sid, 0, 0)],
        [2, forgedTouch('hk', sid, Date.now() + 10 * YEAR, 10 * YEAR)],
      ] as const) {
        await d.inject([touch], 'outbox');
        await eventually(
          () => RECEIVERS.every((r) => (received(r)?.invalid ?? 0) >= (invalid[r] ?? 0) + n),
          WAIT,
        );
      }
      for (const r of RECEIVERS) {
        expect(received(r)?.invalid).toBe((invalid[r] ?? 0) + 2);
        const state = await sessionState(client(r), d.keys, sid);
        expect(state).toEqual(before[r]);
        expect(state.valueAt).toBeGreaterThan(Date.now());
        expect(state.valueAt).toBeLessThanOrEqual(Date.now() + HOUR);
      }
    });

    it('an immortal touch that arrives before its session cannot make it immortal either', async () => {
      // The attacker guesses (or saw) an id hk is about to write and sends "never expires" first.
      const sid = `hk.${'A'.repeat(20)}${Math.random().toString(36).slice(2, 6)}`;
      const applied = Object.fromEntries(RECEIVERS.map((r) => [r, received(r)?.applied ?? 0]));
      await d.inject([forgedTouch('hk', sid, 0, 0)], 'outbox');
      await eventually(() => RECEIVERS.every((r) => (received(r)?.applied ?? 0) > (applied[r] ?? 0)), WAIT);
      await d.store('hk').set(sid, session({ user: 'late' }));
      const expiry = (await sessionState(client('hk'), d.keys, sid)).valueAt;
      await eventually(async () => {
        for (const r of RECEIVERS) if ((await client(r).get(sid)) === null) return false;
        return true;
      }, WAIT);
      for (const r of RECEIVERS) {
        const state = await sessionState(client(r), d.keys, sid);
        expect(state.valueAt).toBe(expiry);
        expect(state.meta.x).toBe(String(expiry));
      }
    });

    it("refuses ids that reach internal keys (prefix '', {outbox}:kr), and every later write still works", async () => {
      const kr = d.store('kr');
      const outbox = d.keys.internal('outbox', 'kr');
      for (const sid of ['{outbox}:kr', outbox, '{|outbox}:kr', `${outbox}x`, '{x}:m', '']) {
        await expect(kr.set(sid, session({ clobber: true })), sid).rejects.toBeInstanceOf(
          InvalidSessionIdError,
        );
        await expect(kr.touch(sid, session({})), sid).rejects.toBeInstanceOf(InvalidSessionIdError);
        await expect(kr.destroy(sid), sid).rejects.toBeInstanceOf(InvalidSessionIdError);
      }
      expect(await client('kr').type(outbox)).toBe('stream');
      expect(await client('kr').exists('{outbox}:kr')).toBe(0);
      // Every later write in kr works and replicates.
      for (let i = 0; i < 5; i++) {
        const sid = kr.genid();
        await kr.set(sid, session({ n: i }));
        await eventually(async () => JSON.parse((await client('us').get(sid)) ?? '{}').n === i, WAIT);
      }
      const sid = kr.genid();
      await kr.set(sid, session({ n: 1 }));
      await kr.destroy(sid);
      await eventually(async () => d.store('hk').isDestroyed(sid), WAIT);
    });
  });
}
