/**
 * A big change never stalls the others (issue 14 item 3), over NATS JetStream (the machine's server on
 * 4222, whose max_payload is the default 1 MiB). Found: a session of 400,000 Hangul syllables (1.2 MB
 * in UTF-8) set in hk was refused by NATS on every retry, never reached kr, and held back the small
 * sets made after it, with no dead letter.
 *
 * (a) By default `maxSessionBytes` refuses it at `set()` with a coded error, before anything is
 *     written: no value, no outbox entry, nothing in kr.
 * (b) With `maxSessionBytes` raised past the broker's limit, the relay's publish is refused for its
 *     size: the batch is split until the big change is alone, which hk dead-letters as `too-large`
 *     (counted, emitted as `rejected`), and the 20 small sets made after it all reach kr.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sealer } from '../../src/contracts/sealer.js';
import { SessionTooLargeError } from '../../src/errors.js';
import type { SessionData } from '../../src/index.js';
import { createDeployment, type Deployment, transportAvailable } from '../helpers/deployment.js';
import { eventually } from '../helpers/eventually.js';
import { generatePasetoKey, localSealer } from '../helpers/forgery.js';

const hasNats = await transportAvailable('nats');
const WAIT = 30_000;

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  } as SessionData;
}

/** 400,000 Hangul syllables: 400,000 UTF-16 units, 1.2 MB of UTF-8. */
const HANGUL = '가'.repeat(400_000);

describe.skipIf(!hasNats)('a 1.2 MB session over NATS (max_payload 1 MiB)', () => {
  describe.each([
    ['sealed', true],
    ['unsealed', false],
  ] as const)('%s', (_name, sealed) => {
    let d: Deployment;
    let sealer: Sealer | undefined;
    beforeAll(async () => {
      d = await createDeployment('nats', ['hk', 'kr']);
      sealer = sealed ? localSealer([generatePasetoKey().key]) : undefined;
    });
    afterAll(async () => {
      await d?.close();
    });

    it('(a) by default, set() refuses it with a coded error and writes nothing', async () => {
      const hk = await d.start('hk', sealer ? { sealer } : {});
      const kr = await d.start('kr', sealer ? { sealer } : {});
      const sid = hk.genid();
      const error = await hk.set(sid, session({ text: HANGUL })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SessionTooLargeError);
      expect((error as SessionTooLargeError).code).toBe('ERR_GEOSESSION_SESSION_TOO_LARGE');
      expect((error as SessionTooLargeError).bytes).toBeGreaterThan(1_200_000);
      expect((error as SessionTooLargeError).message).toContain('maxSessionBytes');
      expect(await d.clients.hk?.get(d.keys.session(sid))).toBeNull();
      expect(await d.clients.hk?.get(d.keys.meta(sid))).toBeNull();
      expect(await d.clients.hk?.xlen(d.keys.internal('outbox', 'hk'))).toBe(0);

      // The store goes on: a small session made after it reaches kr.
      const small = hk.genid();
      await hk.set(small, session({ n: 1 }));
      await eventually(async () => (await kr.get(small))?.n === 1, WAIT);
      expect(await kr.get(sid)).toBeNull();
      expect(d.rejected.hk).toEqual([]);
      await d.stop('hk');
      await d.stop('kr');
    });

    it('the default fits: a session just under 128 KiB of the characters JSON escapes most replicates', async () => {
      for (const region of ['hk', 'kr']) await d.stop(region);
      const hk = await d.start('hk', sealer ? { sealer } : {});
      const kr = await d.start('kr', sealer ? { sealer } : {});
      // Serialized, `"\` is `\"\\`: four bytes, each escaped again in the sealed batch and again in
      // the token's claims, 16 bytes, then base64url: the worst case, 128 KiB × 16/3 ≈ 683 KiB.
      const worst = session({ text: '"\\'.repeat(32_600) });
      const bytes = Buffer.byteLength(JSON.stringify(worst));
      expect(bytes).toBeGreaterThan(127 * 1024);
      expect(bytes).toBeLessThanOrEqual(128 * 1024);
      const sid = hk.genid();
      await hk.set(sid, worst);
      await eventually(async () => (await kr.get(sid))?.text === worst.text, WAIT);
      expect(d.rejected.hk).toEqual([]);
    });

    it('(b) raised past max_payload: dead-lettered by hk as too-large, the 20 sets after it reach kr', async () => {
      for (const region of ['hk', 'kr']) await d.stop(region);
      const options = { ...(sealer ? { sealer } : {}) };
      const hk = await d.start('hk', { ...options, store: { maxSessionBytes: 4 * 1024 * 1024 } });
      const kr = await d.start('kr', options);
      const earlier = (d.rejected.hk ?? []).length;
      const big = hk.genid();
      await hk.set(big, session({ text: HANGUL }));
      const small = Array.from({ length: 20 }, () => hk.genid());
      for (const [n, sid] of small.entries()) await hk.set(sid, session({ n }));

      await eventually(async () => {
        for (const [n, sid] of small.entries()) if ((await kr.get(sid))?.n !== n) return false;
        return true;
      }, WAIT);
      await eventually(() => (d.rejected.hk ?? []).length > earlier, WAIT);

      const refused = (d.rejected.hk ?? []).slice(earlier);
      expect(refused).toHaveLength(1);
      expect(refused[0]?.error?.code).toBe('ERR_GEOSESSION_MESSAGE_TOO_LARGE');
      expect(hk.replicationStats()?.rejected['too-large']).toBe(1);
      const letters = await hk.deadLetters(10);
      expect(letters.map((l) => l.reason)).toEqual(['too-large']);
      expect(letters[0]?.body).toContain(big); // the change's header names the session
      expect(Buffer.byteLength(letters[0]?.body ?? '')).toBeLessThan(70 * 1024);
      // The big session stays in hk only.
      expect(((await hk.get(big)) as { text?: string } | null)?.text).toHaveLength(400_000);
      expect(await kr.get(big)).toBeNull();
      expect(d.rejected.kr).toEqual([]);
    });
  });
});
