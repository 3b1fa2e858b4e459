/**
 * Forged "revoked before" marks (issue 17 part 8): a mark rides the session pipeline (op "r"), so it is
 * sealed like a session change, and a forged one is refused and counted like a forged session change:
 * unsealed into a sealed deployment, with a version far ahead, or malformed. The victim's sessions live on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { SessionData } from '../../src/index.js';
import { sessionEnvelope } from '../../src/replication/session-codec.js';
import { createDeployment, type Deployment, transportAvailable } from '../helpers/deployment.js';
import { generatePasetoKey, HOUR, localSealer, session } from '../helpers/forgery.js';
import { version } from '../helpers/meta.js';
import { eventually } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr'] as const;
const WAIT = 20_000;
const userId = (s: SessionData) => (s as { user?: string }).user;
let forged = 0;

function forgedMark(origin: string, user: string, overrides: { version?: string } = {}): Envelope {
  const now = Date.now();
  return sessionEnvelope({
    id: `${origin}:forged-mark-${++forged}`,
    origin,
    time: now,
    sid: user,
    op: 'revoke',
    version: overrides.version ?? version(now + 1000, 0, origin),
    expiresAt: now + HOUR,
    except: '',
  });
}

const available = await transportAvailable('redis-streams');

for (const sealed of [false, true]) {
  describe.skipIf(!available)(`forged marks, ${sealed ? 'sealed' : 'unsealed'} deployment`, () => {
    let d: Deployment;
    beforeAll(async () => {
      d = await createDeployment('redis-streams', REGIONS, { store: { userId } });
      const key = generatePasetoKey().key;
      for (const r of REGIONS)
        await d.start(r, sealed ? { sealer: localSealer([key]) } : { sealer: 'none' as never });
    });
    afterAll(async () => {
      await d?.close();
    });

    it('refuses and counts a forged mark; the victim keeps every session', async () => {
      const hk = d.store('hk');
      const kr = d.store('kr');
      const sid = hk.genid();
      await hk.set(sid, session({ user: 'victim' }));
      await eventually(async () => (await kr.sessionsOf('victim')).length === 1, WAIT);
      if (sealed) {
        // An unsealed mark into a sealed deployment: refused as unsealed.
        await d.inject([forgedMark('hk', 'victim')]);
        await eventually(() => (d.rejected.kr ?? []).some((e) => e.reason === 'unsealed'), WAIT);
      } else {
        // Without a sealer, a mark whose version is far ahead is refused as skewed, and a malformed
        // one (a user id that could reach other keys) is rejected.
        await d.inject([forgedMark('hk', 'victim', { version: '999999999999999.9999.hk' })], 'outbox');
        await d.inject([forgedMark('hk', 'a{b}')], 'outbox');
        await eventually(() => (kr.replicationStats()?.received.skewed ?? 0) >= 1, WAIT);
        await eventually(() => (d.rejected.kr ?? []).some((e) => e.reason === 'malformed'), WAIT);
      }
      // A genuine write after the forgeries arrives, and the session was never ended.
      await hk.set(sid, session({ user: 'victim', step: 2 }));
      await eventually(async () => (await kr.get(sid))?.step === 2, WAIT);
      expect((await kr.sessionsOf('victim')).map((s) => s.sid)).toEqual([sid]);
      expect(await kr.isDestroyed(sid)).toBe(false);
      // A genuine logout everywhere still works.
      expect(await hk.logoutEverywhere('victim')).toBe(1);
      await eventually(async () => (await kr.get(sid)) === null, WAIT);
    });
  });
}
