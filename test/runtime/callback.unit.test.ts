/**
 * src/runtime/callback.ts: a caller's callback runs once, and an exception it throws goes to the
 * store's reporter, never back into the callback and never up as an uncaught exception.
 */
import { describe, expect, it } from 'vitest';
import { type Callback, dual, once, settle } from '../../src/runtime/callback.js';

const tick = () => new Promise((r) => setImmediate(r));

/** Counts uncaught exceptions while `run` goes, with vitest's own listeners set aside. */
async function uncaughtDuring(run: () => Promise<void>): Promise<unknown[]> {
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const uncaught: unknown[] = [];
  process.on('uncaughtException', (error) => uncaught.push(error));
  try {
    await run();
    await tick();
    await tick();
  } finally {
    process.removeAllListeners('uncaughtException');
    for (const l of saved) process.on('uncaughtException', l);
  }
  return uncaught;
}

function throwing(calls: unknown[][], error: Error): Callback<unknown> {
  return (...args) => {
    calls.push(args);
    throw error;
  };
}

describe('callbacks that throw', () => {
  for (const outcome of ['success', 'failure'] as const) {
    it(`settle: called once, the exception reported, nothing uncaught (${outcome})`, async () => {
      const calls: unknown[][] = [];
      const reported: unknown[] = [];
      const boom = new Error('boom');
      const uncaught = await uncaughtDuring(async () => {
        const promise = outcome === 'success' ? Promise.resolve(42) : Promise.reject(new Error('redis'));
        expect(settle(promise, throwing(calls, boom), (e) => reported.push(e))).toBeUndefined();
      });
      expect(calls).toHaveLength(1);
      expect(reported).toEqual([boom]);
      expect(uncaught).toEqual([]);
    });

    it(`dual: called once, the exception reported, nothing uncaught (${outcome}, even synchronous)`, async () => {
      const calls: unknown[][] = [];
      const reported: unknown[] = [];
      const boom = new Error('boom');
      const uncaught = await uncaughtDuring(async () => {
        dual<number>(
          (done) => {
            if (outcome === 'success') done(null, 1);
            else done(new Error('redis'));
            done(null, 2); // a second completion is dropped
          },
          throwing(calls, boom),
          (e) => reported.push(e),
        );
      });
      expect(calls).toHaveLength(1);
      expect(reported).toEqual([boom]);
      expect(uncaught).toEqual([]);
    });
  }

  it('once: a reporter that throws too is ignored', async () => {
    const uncaught = await uncaughtDuring(async () => {
      const cb = once(throwing([], new Error('boom')), () => {
        throw new Error('reporter');
      });
      cb(null, 1);
    });
    expect(uncaught).toEqual([]);
  });

  it('without a callback, the promise settles and a dropped rejection is handled', async () => {
    const promise = dual<number>(
      (done) => done(new Error('redis')),
      undefined,
      () => {},
    );
    await expect(promise).rejects.toThrow('redis');
    expect(await settle(Promise.resolve(3), undefined, () => {})).toBe(3);
  });
});
