/**
 * pasetoSessionPlugin with a real fastify 5 app over HTTP on the machine's Redis (a unique prefix).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/index.js';
import { type PasetoSessionOptions, pasetoSessionOf, pasetoSessionPlugin } from '../../src/paseto.js';
import { AUDIENCE, createIssuer, ISSUER, type Issuer } from '../helpers/paseto-issuer.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const PREFIX = uniquePrefix('paseto-fastify');
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  if (redis?.status === 'ready') await dropKeys(redis, PREFIX);
  await redis?.quit();
});

async function startApp(options: Partial<PasetoSessionOptions> = {}) {
  const store = new GeoSessionStore({ region: 'kr', client: redis as Redis, prefix: PREFIX });
  const issuer: Issuer = createIssuer();
  const app: FastifyInstance = Fastify();
  await app.register(pasetoSessionPlugin, {
    store,
    publicKeys: [issuer.publicKey],
    issuer: ISSUER,
    audience: AUDIENCE,
    ...options,
  });
  app.get('/me', async (request) => {
    const session = pasetoSessionOf(request);
    return { id: session.id, fields: { ...session } };
  });
  app.post('/count', async (request) => {
    const session = pasetoSessionOf(request);
    session['count'] = ((session['count'] as number | undefined) ?? 0) + 1;
    return { count: session['count'] };
  });
  app.post('/logout', async (request) => {
    await pasetoSessionOf(request).destroy();
    return { ok: true };
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    await app.close();
    await store.close();
  });
  const call = async (token: string | undefined, method = 'GET', path = '/me') => {
    const res = await fetch(address + path, {
      method,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
      authenticate: res.headers.get('www-authenticate'),
    };
  };
  return { store, issuer, call };
}

describe.skipIf(!hasRedis)('pasetoSessionPlugin (fastify)', () => {
  it('creates the session from the token and serves it again for the same token', async () => {
    const app = await startApp();
    const { token, jti, exp } = await app.issuer.issue();
    const first = await app.call(token);
    expect(first.body).toEqual({
      id: `token-${jti}`,
      fields: { userId: 'alice', scope: ['buyer', 'report'] },
    });
    expect(await app.store.get(`token-${jti}`)).toMatchObject({ userId: 'alice', cookie: { expires: exp } });
    expect((await app.call(token, 'POST', '/count')).body).toEqual({ count: 1 });
    expect((await app.call(token, 'POST', '/count')).body).toEqual({ count: 2 });
    expect((await app.call(token)).body['fields']).toMatchObject({ count: 2 });
  });

  it('refuses bad tokens with 401, a reason and WWW-Authenticate', async () => {
    const app = await startApp();
    const cases: Array<[string, string | undefined]> = [
      ['missing', undefined],
      ['malformed', 'v4.public.garbage'],
      ['unknown-key', (await createIssuer().issue()).token],
      ['expired', (await app.issuer.issue({ expiresIn: -1 })).token],
      ['wrong-issuer', (await app.issuer.issue({ claims: { iss: 'other' } })).token],
      ['wrong-audience', (await app.issuer.issue({ claims: { aud: 'other' } })).token],
    ];
    for (const [reason, token] of cases) {
      const reply = await app.call(token);
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ error: 'invalid_token', reason });
      expect(reply.authenticate).toBe('Bearer error="invalid_token"');
    }
  });

  it('logs out everywhere: the token is then refused as revoked', async () => {
    const app = await startApp();
    const { token, jti } = await app.issuer.issue();
    expect((await app.call(token, 'POST', '/logout')).body).toEqual({ ok: true });
    expect(await app.store.isDestroyed(`token-${jti}`)).toBe(true);
    const again = await app.call(token);
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: 'invalid_token', reason: 'revoked' });
  });

  it('fails the registration with a ConfigError naming the option', async () => {
    const app = Fastify();
    const store = new GeoSessionStore({ region: 'kr', client: redis as Redis, prefix: PREFIX });
    app.register(pasetoSessionPlugin, { store, publicKeys: ['nope'], issuer: ISSUER, audience: AUDIENCE });
    const failure = await app.ready().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).option).toBe('publicKeys[0]');
    await app.close().catch(() => undefined);
    await store.close();
  });
});
