import type { GeoSessionStore } from '../../src/index.js';
import type { SessionData } from '../../src/types.js';

/** What a {@link startWriter} knows for sure, and how to stop it. */
export interface SessionWriter {
  /** Sessions it saved (acknowledged) and did not log out since. */
  readonly live: Set<string>;
  /** Sessions it logged out (acknowledged). */
  readonly dead: Set<string>;
  /** Rounds so far. */
  writes(): number;
  stop(): Promise<void>;
}

/**
 * Writes, touches and logs out sessions in one region until stopped (a set every round, a touch every
 * third, a logout every fifth), remembering only what was acknowledged: a call that failed (its Redis
 * away) leaves its id asserted on neither way.
 */
export function startWriter(
  store: GeoSessionStore,
  name: string,
  session: (user: string) => SessionData,
): SessionWriter {
  const live = new Set<string>();
  const dead = new Set<string>();
  let stopped = false;
  let n = 0;
  const pick = () => [...live][Math.floor(Math.random() * live.size)];
  const run = (async () => {
    while (!stopped) {
      n++;
      const sid = store.genid();
      try {
        await store.set(sid, session(`${name}${n}`));
        live.add(sid);
      } catch {
        // The outcome is unknown: this id is asserted on neither way.
      }
      const other = pick();
      if (other && n % 3 === 0) await store.touch(other, session('touched')).catch(() => {});
      const victim = pick();
      if (victim && n % 5 === 0) {
        live.delete(victim);
        await store.destroy(victim).then(
          () => dead.add(victim),
          () => {},
        );
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    live,
    dead,
    writes: () => n,
    async stop() {
      stopped = true;
      await run;
    },
  };
}
