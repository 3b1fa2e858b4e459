/**
 * The store's events are typed: a misspelled event name or a wrong payload field fails to compile
 * (`npm run typecheck` compiles this file; each `@ts-expect-error` must meet an error), and the payloads
 * arrive as typed.
 */
import { Redis } from 'ioredis';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type AppliedBatch,
  GeoSessionError,
  type GeoSessionStoreEvents,
  type RefusedWrite,
  type RejectedEnvelope,
} from '../../src/index.js';
import { GeoSessionStore } from '../../src/session/store.js';

describe('typed store events', () => {
  const store = new GeoSessionStore({ region: 'hk', client: new Redis({ lazyConnect: true }) });

  it('types each listener from GeoSessionStoreEvents', () => {
    store.on('refused', (write) => expectTypeOf(write).toEqualTypeOf<RefusedWrite>());
    store.on('replicated', (batch) => expectTypeOf(batch).toEqualTypeOf<AppliedBatch>());
    store.on('rejected', (envelope) => expectTypeOf(envelope).toEqualTypeOf<RejectedEnvelope>());
    store.on('error', (error) => expectTypeOf(error).toEqualTypeOf<GeoSessionError>());
    store.once('connect', () => {});
    store.off('disconnect', () => {});
    expectTypeOf<GeoSessionStoreEvents['refused']>().toEqualTypeOf<[write: RefusedWrite]>();
  });

  it('refuses misspelled events and wrong payload fields at compile time', () => {
    // @ts-expect-error: no such event
    store.on('refuse', () => {});
    // @ts-expect-error: no such field on RefusedWrite
    store.on('refused', (write) => write.session);
    // @ts-expect-error: the error payload is a GeoSessionError, whose code is a known string
    store.on('error', (error) => error.code === 42);
    // @ts-expect-error: emit checks its arguments too
    store.emit('refused', { op: 'get', sid: 'x', reason: 'destroyed' });
    expect(true).toBe(true);
  });

  it('delivers the payload as typed', async () => {
    const got: RefusedWrite[] = [];
    store.on('refused', (write) => got.push(write));
    store.emit('refused', { op: 'set', sid: 's', reason: 'destroyed' });
    expect(got).toEqual([{ op: 'set', sid: 's', reason: 'destroyed' }]);
    const errors: GeoSessionError[] = [];
    store.on('error', (e) => errors.push(e));
    store.emit('error', new GeoSessionError('ERR_GEOSESSION_EVENT', 'x'));
    expect(errors[0]?.code).toBe('ERR_GEOSESSION_EVENT');
    await store.close();
  });
});
