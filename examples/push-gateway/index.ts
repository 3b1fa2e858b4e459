/**
 * A push gateway over two regions, hk and kr, in one process on the demo's backends (a private
 * redis-server per region, or an in-memory Redis; see examples/demo/backends.ts): a `ws` WebSocket
 * server per region authenticates each upgrade from the express-session cookie and registers the
 * connection; a sender in kr pushes a message to a user with one call per pod holding her connections;
 * a logout everywhere in kr closes her sockets in hk at once. See README.md and scene.ts.
 *
 *   npx tsx examples/push-gateway/index.ts --for 2s    # the scene, then the pods serve for 2 s
 *   npx tsx examples/push-gateway/index.ts             # the scene, then the pods serve until Ctrl-C
 */
import type { Redis } from 'ioredis';
import { GeoSessionStore } from '../../src/index.js';
import { createPasetoSealer, generatePasetoKey } from '../../src/paseto.js';
import { openBackends } from '../demo/backends.js';
import { Teardown } from '../demo/teardown.js';
import { userOfSession } from './integrations.js';
import { runScene } from './scene.js';

const PREFIX = 'push-demo:';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `5s`, `2m`, `1500ms` or plain milliseconds; undefined when the option is absent. */
function duration(name: string): number | undefined {
  const text = option(name);
  if (text === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!match) throw new Error(`--${name} takes a duration such as 5s, 2m or 1500ms, not "${text}"`);
  const unit = match[2] === 's' ? 1000 : match[2] === 'm' ? 60_000 : 1;
  return Number(match[1]) * unit;
}

async function main(): Promise<void> {
  const forMs = duration('for');
  const teardown = new Teardown();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  process.once('SIGINT', () => stop());
  process.once('SIGTERM', () => stop());
  let ok = false;
  try {
    const backends = await openBackends({}, PREFIX, teardown);
    const sealer = createPasetoSealer({
      purpose: 'local',
      deployment: 'push-demo',
      keys: [generatePasetoKey().key],
    });
    const make = (region: string, client: Redis) => {
      const store = new GeoSessionStore({
        region,
        client,
        prefix: PREFIX,
        transport: backends.transport,
        sealer,
        // The per-user index that logoutEverywhere ends: the pods keep the user in session.user.
        userId: userOfSession,
      });
      store.on('error', (error) => console.error(`[${region}] ${error.message}`));
      teardown.add(`closing the ${region} store`, () => store.close());
      return { store, client, transport: backends.transport, sealer };
    };
    const hk = make('hk', backends.hk);
    const kr = make('kr', backends.kr);
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    console.log(`push-gateway: ${backends.description}`);
    const result = await runScene({
      hk,
      kr,
      log: (line) => console.log(line),
      onClose: (what, close) => teardown.add(what, close),
    });
    ok = result.ok;
    console.log(ok ? 'the scene went as described' : 'UNEXPECTED: the scene did not go as described');
    const ended =
      forMs === undefined ? stopped : Promise.race([stopped, new Promise((r) => setTimeout(r, forMs))]);
    await ended;
  } finally {
    await teardown.run();
  }
  console.log('bye');
  if (!ok) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
