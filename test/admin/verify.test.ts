/**
 * verify and repair on two real private redis-servers whose stores replicate over Redis Streams: clean
 * after the same traffic replicated (touches below the touch step, sessions that expired, logouts),
 * every planted difference found (by digests and with `full`), and repair fixes exactly those without
 * reviving a logged-out id.
 */
import { describe, expect, it } from 'vitest';
import { repairRegions } from '../../src/admin/repair.js';
import { resyncRegion } from '../../src/admin/resync.js';
import { verifyRegions } from '../../src/admin/verify.js';
import { generateSessionId } from '../../src/index.js';
import { DAY_MS, metaOf, plantDifferences, replicatedTraffic, session } from '../helpers/diverged.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('verify and repair (two private redis-servers)', () => {
  const servers = usePrivateRedisPair();

  async function deployment(prefix: string) {
    const options = { readers: 1, blockMs: 100 };
    const hk = servers.streamsRegion('hk', prefix, options, {});
    const kr = servers.streamsRegion('kr', prefix, options, {});
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    const clients = { hk: servers.hk.client(), kr: servers.kr.client() };
    const regions = [
      { id: 'hk', client: clients.hk, prefix },
      { id: 'kr', client: clients.kr, prefix },
    ];
    return { stores: { hk: hk.store, kr: kr.store }, clients, regions };
  }

  it('is clean on regions that replicated the same traffic, by digests and key by key', async () => {
    const prefix = uniquePrefix('verify-clean');
    const { stores, clients, regions } = await deployment(prefix);
    const sids = await replicatedTraffic(stores, clients, prefix);
    // The touches below the step left the expiries apart (by design), within the tolerance.
    const touched = sids[1] as string;
    const [a, b] = [await metaOf(clients.hk, prefix, touched), await metaOf(clients.kr, prefix, touched)];
    expect(a?.expiresAt).not.toBe(b?.expiresAt);
    expect(a?.replicatedExpiry).toBe(b?.replicatedExpiry);

    const byDigests = await verifyRegions(regions, { settleMs: 0 });
    expect(byDigests).toMatchObject({ clean: true, mode: 'digests', buckets: 0, compared: 0 });
    expect(byDigests.windows).toBeGreaterThan(0);
    const full = await verifyRegions(regions, { full: true, settleMs: 0 });
    expect(full.differences).toEqual([]);
    expect(full).toMatchObject({ clean: true, mode: 'full' });
    expect(full.compared).toBeGreaterThanOrEqual(sids.length);
  });

  it('finds every planted difference, and repair fixes exactly those without reviving a logged-out id', async () => {
    const prefix = uniquePrefix('verify-planted');
    const { stores, clients, regions } = await deployment(prefix);
    const sids = await replicatedTraffic(stores, clients, prefix, 12);
    const drift = generateSessionId('kr');
    await stores.kr.set(drift, session({ drift: true }, DAY_MS / 2, DAY_MS));
    const roles = {
      older: sids[0] as string,
      drift,
      tombstone: sids[1] as string,
      deleted: sids[3] as string,
    };
    await eventually(async () => (await metaOf(clients.hk, prefix, drift))?.version !== undefined);
    await Promise.all([stores.hk.close(), stores.kr.close()]);
    expect((await verifyRegions(regions, { full: true, settleMs: 0 })).clean).toBe(true);

    const planted = await plantDifferences(clients, prefix, roles);
    const expected = [
      { sid: planted.missing, kind: 'missing', behind: ['kr'] },
      { sid: planted.older, kind: 'older-version', behind: ['kr'] },
      { sid: planted.drift, kind: 'expiry-drift', behind: ['hk'] },
      { sid: planted.tombstone, kind: 'tombstone-vs-live', behind: ['hk'] },
      { sid: planted.missingTombstone, kind: 'missing', behind: ['kr'] },
    ];
    const byKind = (list: readonly { sid: string; kind: string; behind: readonly string[] }[]) =>
      list
        .map(({ sid, kind, behind }) => ({ sid, kind, behind: [...behind] }))
        .sort((x, y) => (x.sid < y.sid ? -1 : 1));
    const sorted = (list: typeof expected) => [...list].sort((x, y) => (x.sid < y.sid ? -1 : 1));

    const byDigests = await verifyRegions(regions, { settleMs: 0 });
    expect(byDigests.mode).toBe('digests');
    expect(byDigests.buckets).toBeGreaterThan(0);
    // A key deleted behind the scripts' back changes no digest: only what the scripts did is certain to show.
    expect(byKind(byDigests.differences.filter((d) => d.sid !== planted.deleted))).toEqual(sorted(expected));

    const withDeleted = sorted([...expected, { sid: planted.deleted, kind: 'missing', behind: ['kr'] }]);
    const full = await verifyRegions(regions, { full: true, settleMs: 0 });
    expect(byKind(full.differences)).toEqual(withDeleted);

    const dry = await repairRegions(regions, { full: true, settleMs: 0, dryRun: true });
    expect(dry.actions.map((a) => `${a.sid} ${a.region} ${a.op}`).sort()).toEqual(
      [
        `${planted.missing} kr set`,
        `${planted.older} kr set`,
        `${planted.drift} hk touch`,
        `${planted.tombstone} hk destroy`,
        `${planted.missingTombstone} kr destroy`,
        `${planted.deleted} kr set`,
      ].sort(),
    );
    expect((await verifyRegions(regions, { full: true, settleMs: 0 })).differences).toHaveLength(6);

    const repaired = await repairRegions(regions, { differences: full.differences });
    expect(repaired.actions.every((a) => a.result === 0)).toBe(true);
    expect((await verifyRegions(regions, { full: true, settleMs: 0 })).clean).toBe(true);
    expect((await verifyRegions(regions, { settleMs: 0 })).clean).toBe(true);
    // Logged out stays logged out, in both regions; the newer version and the later expiry won.
    for (const client of [clients.hk, clients.kr]) {
      expect((await metaOf(client, prefix, planted.tombstone))?.tombstone).toBe(true);
      expect(await client.exists(`${prefix}${planted.tombstone}`)).toBe(0);
      expect((await metaOf(client, prefix, planted.missingTombstone))?.tombstone).toBe(true);
      expect(JSON.parse((await client.get(`${prefix}${planted.older}`)) ?? '{}').resaved).toBe(true);
    }
    const [hkDrift, krDrift] = [
      await metaOf(clients.hk, prefix, drift),
      await metaOf(clients.kr, prefix, drift),
    ];
    expect(hkDrift?.expiresAt).toBe(krDrift?.expiresAt);
    expect(krDrift?.expiresAt).toBeGreaterThan(Date.now() + DAY_MS - 60_000);
  });

  it('a region emptied and resynced from another verifies clean by digests alone (the copy keeps them)', async () => {
    const prefix = uniquePrefix('verify-resync');
    const { stores, clients, regions } = await deployment(prefix);
    await replicatedTraffic(stores, clients, prefix, 30);
    await Promise.all([stores.hk.close(), stores.kr.close()]);
    await clients.kr.flushall();
    expect((await verifyRegions(regions, { settleMs: 0 })).clean).toBe(false);
    await resyncRegion({
      target: { id: 'kr', client: clients.kr },
      source: { id: 'hk', client: clients.hk },
      prefix,
    });
    const byDigests = await verifyRegions(regions, { settleMs: 0 });
    expect(byDigests).toMatchObject({ clean: true, mode: 'digests', buckets: 0, compared: 0 });
    expect((await verifyRegions(regions, { full: true, settleMs: 0 })).clean).toBe(true);
  });

  it('rejects bad options with an error naming the option', async () => {
    const client = servers.hk.client();
    await expect(verifyRegions([{ id: 'hk', client }])).rejects.toThrow(/`regions`/);
    await expect(
      verifyRegions(
        [
          { id: 'hk', client },
          { id: 'kr', client },
        ],
        { toleranceMs: -1 },
      ),
    ).rejects.toThrow(/`toleranceMs`/);
    await expect(
      verifyRegions([
        { id: 'hk', client, prefix: 'a|b' },
        { id: 'kr', client },
      ]),
    ).rejects.toThrow(/`regions\[0\]\.prefix`/);
  });
});
