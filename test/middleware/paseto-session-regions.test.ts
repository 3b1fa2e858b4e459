/**
 * Token sessions across two regions: hk (express) and kr (fastify), each on its own private redis-server,
 * replicating through Redis Streams. A session created in one region is served in the other, and a
 * logout in one refuses the token in the other.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { GeoSessionStore } from '../../src/index.js';
import { pasetoSession, pasetoSessionOf, pasetoSessionPlugin } from '../../src/paseto.js';
import { createRedisStreamsTransport } from '../../src/redis-streams.js';
import { AUDIENCE, createIssuer, ISSUER } from '../helpers/paseto-issuer.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('token sessions in two regions', () => {
  const issuer = createIssuer();
  const options = { publicKeys: [issuer.publicKey], issuer: ISSUER, audience: AUDIENCE };
  let hkRedis: PrivateRedis;
  let krRedis: PrivateRedis;
  let transport: ReplicationTransport;
  let hk: GeoSessionStore;
  let kr: GeoSessionStore;
  let express1: Server;
  let fastify1: FastifyInstance;
  const base: Record<'hk' | 'kr', string> = { hk: '', kr: '' };

  beforeAll(async () => {
    [hkRedis, krRedis] = await Promise.all([startRedis(), startRedis()]);
    const hkClient = hkRedis.client();
    const krClient = krRedis.client();
    transport = createRedisStreamsTransport({ regions: { hk: hkClient, kr: krClient }, blockMs: 100 });
    hk = new GeoSessionStore({ region: 'hk', client: hkClient, transport, sealer: 'none' });
    kr = new GeoSessionStore({ region: 'kr', client: krClient, transport, sealer: 'none' });
    await Promise.all([hk.ready(), kr.ready()]);

    const hkApp = express();
    hkApp.use(pasetoSession({ store: hk, ...options }));
    hkApp.get('/me', (req, res) => res.json({ region: 'hk', fields: { ...pasetoSessionOf(req) } }));
    hkApp.post('/cart/:item', (req, res) => {
      const session = pasetoSessionOf(req);
      session['cart'] = [...((session['cart'] as string[] | undefined) ?? []), req.params.item];
      res.json({ cart: session['cart'] });
    });
    hkApp.post('/logout', async (req, res) => {
      await pasetoSessionOf(req).destroy();
      res.json({ ok: true });
    });
    express1 = hkApp.listen(0, '127.0.0.1');
    await once(express1, 'listening');
    base.hk = `http://127.0.0.1:${(express1.address() as AddressInfo).port}`;

    fastify1 = Fastify();
    await fastify1.register(pasetoSessionPlugin, { store: kr, ...options });
    fastify1.get('/me', async (request) => ({ region: 'kr', fields: { ...pasetoSessionOf(request) } }));
    fastify1.post('/logout', async (request) => {
      await pasetoSessionOf(request).destroy();
      return { ok: true };
    });
    base.kr = await fastify1.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    express1?.closeAllConnections();
    await new Promise<void>((resolve) => (express1 ? express1.close(() => resolve()) : resolve()));
    await fastify1?.close();
    await Promise.all([hk?.close(), kr?.close()]);
    await transport?.close();
    await Promise.all([hkRedis?.stop(), krRedis?.stop()]);
  });

  async function call(region: 'hk' | 'kr', token: string, method = 'GET', path = '/me') {
    const res = await fetch(base[region] + path, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('serves in kr the session created (and changed) in hk', async () => {
    const { token, jti } = await issuer.issue();
    expect((await call('hk', token, 'POST', '/cart/tea')).body).toEqual({ cart: ['tea'] });
    await eventually(async () => (await kr.get(`token-${jti}`)) !== null);
    const there = await call('kr', token);
    expect(there.status).toBe(200);
    expect(there.body).toEqual({
      region: 'kr',
      fields: { userId: 'alice', scope: ['buyer', 'report'], cart: ['tea'] },
    });
    // Replicas expire when the origin does.
    const [hkTtl, krTtl] = await Promise.all([
      hkRedis.client().pttl(`sess:token-${jti}`),
      krRedis.client().pttl(`sess:token-${jti}`),
    ]);
    expect(Math.abs(hkTtl - krTtl)).toBeLessThan(1000);
  });

  it('refuses the token in hk once it logged out in kr, and the other way round', async () => {
    const first = await issuer.issue();
    expect((await call('hk', first.token)).status).toBe(200);
    await eventually(async () => (await kr.get(`token-${first.jti}`)) !== null);
    expect((await call('kr', first.token, 'POST', '/logout')).body).toEqual({ ok: true });
    await eventually(async () => hk.isDestroyed(`token-${first.jti}`));
    expect(await call('hk', first.token)).toEqual({
      status: 401,
      body: { error: 'invalid_token', reason: 'revoked' },
    });

    const second = await issuer.issue();
    expect((await call('kr', second.token)).status).toBe(200);
    expect((await call('hk', second.token, 'POST', '/logout')).status).toBe(200);
    await eventually(async () => kr.isDestroyed(`token-${second.jti}`));
    expect((await call('kr', second.token)).body).toEqual({ error: 'invalid_token', reason: 'revoked' });
  });
});
