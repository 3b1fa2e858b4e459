/**
 * examples/push-gateway's scene on two private redis-servers replicating over Redis Streams: alice's
 * sockets open in both regions, the sender in kr reaches all three with one call per pod, and her logout
 * everywhere in kr (store.logoutEverywhere, store.watch) closes the hk sockets (code 1008) and empties the
 * registry.
 */
import { describe, expect, it } from 'vitest';
import { userOfSession } from '../../examples/push-gateway/integrations.js';
import { runScene } from '../../examples/push-gateway/scene.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { hasRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('examples/push-gateway scene', () => {
  const pair = usePrivateRedisPair();

  it('pushes with one call per pod and closes every socket at a logout everywhere', {
    timeout: 60_000,
  }, async () => {
    const prefix = uniquePrefix('push');
    const storeOptions = { userId: userOfSession };
    const hk = pair.streamsRegion('hk', prefix, {}, storeOptions);
    const kr = pair.streamsRegion('kr', prefix, {}, storeOptions);
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    const lines: string[] = [];
    const result = await runScene({
      hk: { store: hk.store, client: hk.clients.hk, transport: hk.transport },
      kr: { store: kr.store, client: kr.clients.kr, transport: kr.transport },
      log: (line) => lines.push(line),
      onClose: (_what, close) => pair.opened.push({ close }),
      timeoutMs: 10_000,
    });
    const log = lines.join('\n');

    // No session cookie, no socket.
    expect(result.anonymous, log).toBe(401);
    // Sockets open in both regions.
    expect(result.opened, log).toEqual({ hk: 2, kr: 1 });
    // The sender in kr: one call per pod (2 pods, 3 connections), every connection reached.
    expect(result.push.calls.map((c) => `${c.region}/${c.pod}:${c.connections}`).sort(), log).toEqual([
      'hk/hk-a:2',
      'kr/kr-a:1',
    ]);
    expect(result.push.delivered, log).toBe(3);
    expect(result.received.sort(), log).toEqual(['laptop tab 1', 'laptop tab 2', 'phone']);
    // Logout everywhere in kr ends both sessions and closes the hk sockets as "logged out".
    expect(result.ended, log).toBe(2);
    expect(result.closed, log).toEqual({ 'laptop tab 1': 1008, 'laptop tab 2': 1008, phone: 1008 });
    // hk ends them by kr's replicated destroy or, when kr's "revoked before" mark arrives first, by the
    // mark: either way a logout everywhere asked in kr.
    expect(log).toMatch(/\[hk-a\] alice's session ended \(logout-everywhere in kr\): closing hk-a\./);
    expect(result.podsAfter, log).toBe(0);
    expect(result.ok, log).toBe(true);
  });
});
