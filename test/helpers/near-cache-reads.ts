/**
 * Reads shared by the near-cache tests (single Redis, sharded layout, Cluster): waiting for a read that
 * is served from memory, and checking that a change another region makes is never served once applied.
 */
import { once } from 'node:events';
import { expect } from 'vitest';
import type { GeoSessionStore, SessionData } from '../../src/index.js';
import { eventually } from './eventually.js';

/** One turn of the event loop: lets invalidations that arrived meanwhile be handled. */
export const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Reads `sid` until a read is served from memory (a read answered after an invalidation of the id, such
 * as the echo of this process's own last write, fills nothing), and returns that read.
 */
export async function cached(
  store: GeoSessionStore,
  sid: string,
  timeoutMs = 5000,
): Promise<SessionData | null> {
  let value: SessionData | null = null;
  await eventually(async () => {
    const before = store.nearCacheStats()?.hits ?? 0;
    value = await store.get(sid);
    return (store.nearCacheStats()?.hits ?? 0) > before;
  }, timeoutMs);
  return value;
}

/**
 * Region `far` writes `sid` twice and then destroys it; after each change is applied in `here` (its
 * `replicated` event), `here` serves the change, never the cached session before it.
 */
export async function expectFarChangesServed(
  here: GeoSessionStore,
  far: GeoSessionStore,
  sid: string,
  session: (n: number) => SessionData,
  timeoutMs?: number,
): Promise<void> {
  const applied = () => once(here, 'replicated').then(turn);
  let done = applied();
  await far.set(sid, session(1));
  await done;
  expect((await cached(here, sid, timeoutMs))?.n).toBe(1);

  done = applied();
  await far.set(sid, session(2));
  await done;
  expect((await here.get(sid))?.n).toBe(2);

  await cached(here, sid, timeoutMs);
  done = applied();
  await far.destroy(sid);
  await done;
  expect(await here.get(sid)).toBeNull();
}
