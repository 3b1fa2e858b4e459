/**
 * What the revocation subscriber accepts from its channel (parseRevocation), and how a destroy carries
 * its reason and user between regions (the session codec).
 */
import { describe, expect, it } from 'vitest';
import { decodeSessionChange, sessionEnvelope } from '../../src/replication/session-codec.js';
import { parseRevocation } from '../../src/session/revocations.js';
import { version } from '../helpers/meta.js';

describe('parseRevocation', () => {
  const prefix = 'app:sess:';
  it('reads what the scripts publish', () => {
    const message = JSON.stringify({ k: `${prefix}hk.abc`, o: 'kr', r: 'logout-everywhere', u: 'alice' });
    expect(parseRevocation(message, prefix)).toEqual({
      sid: 'hk.abc',
      userId: 'alice',
      origin: 'kr',
      reason: 'logout-everywhere',
    });
    expect(parseRevocation(JSON.stringify({ k: `${prefix}x`, o: 'hk', r: 'logout' }), prefix)).toEqual({
      sid: 'x',
      userId: undefined,
      origin: 'hk',
      reason: 'logout',
    });
  });
  it('ignores anything else published on the channel', () => {
    for (const message of [
      'not json',
      'null',
      '42',
      JSON.stringify({ k: 'other:x', o: 'hk', r: 'logout' }),
      JSON.stringify({ k: `${prefix}x`, o: 'hk', r: 'expired' }),
      JSON.stringify({ k: `${prefix}x|y`, o: 'hk', r: 'logout' }),
      JSON.stringify({ k: `${prefix}`, o: 'hk', r: 'logout' }),
      JSON.stringify({ k: `${prefix}x`, r: 'logout' }),
      JSON.stringify({ k: `${prefix}x`, o: 'hk', r: 'logout', u: 5 }),
    ]) {
      expect(parseRevocation(message, prefix)).toBeUndefined();
    }
  });
});

describe('a destroy carries its reason and user', () => {
  const base = { id: 'e1', origin: 'hk', time: 1, sid: 'hk.s', op: 'destroy' as const, expiresAt: 5 };
  const v = version(1_700_000_000_000, 0, 'hk');
  it('round trips', () => {
    for (const extra of [
      {},
      { reason: 'logout-everywhere' as const },
      { reason: 'revoked-before' as const, userId: 'alice@example.com' },
    ]) {
      const event = { ...base, version: v, ...extra };
      expect(decodeSessionChange(sessionEnvelope(event))).toEqual(event);
    }
  });
  it('refuses an unknown reason or an invalid user id', () => {
    const envelope = sessionEnvelope({ ...base, version: v });
    for (const field of ['expired', 'logout-everywhere a{b', 'revoked-before ']) {
      const forged = { ...envelope, body: `d|${v}|5||${field}|hk.s` };
      expect(() => decodeSessionChange(forged)).toThrow(/malformed session change/);
    }
  });
});
