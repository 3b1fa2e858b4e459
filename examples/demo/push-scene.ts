/**
 * The demo's last scene, "push and log out everywhere": examples/push-gateway's scene played on the
 * demo's two regions (a `ws` pod per region, a sender in kr reaching alice's three sockets with one call
 * per pod, then her logout everywhere in kr closing her sockets in hk at once).
 */
import type { Redis } from 'ioredis';
import type { GeoSessionStore, ReplicationTransport, Sealer } from '../../src/index.js';
import { runScene } from '../push-gateway/scene.js';
import type { Teardown } from './teardown.js';

/** One region as the demo holds it. */
interface DemoRegion {
  store: GeoSessionStore;
  client: Redis;
}

/** Plays the scene, printing it indented; returns whether it went as described. */
export async function pushScene(
  hk: DemoRegion,
  kr: DemoRegion,
  transport: ReplicationTransport,
  sealer: Sealer,
  teardown: Teardown,
): Promise<boolean> {
  console.log('\npush and log out everywhere (examples/push-gateway):');
  const result = await runScene({
    hk: { ...hk, transport, sealer },
    kr: { ...kr, transport, sealer },
    log: (line) => console.log(`  ${line}`),
    onClose: (what, close) => teardown.add(what, close),
  });
  console.log(
    result.ok
      ? 'every socket of alice was closed by her logout everywhere.'
      : 'UNEXPECTED: the push scene did not go as described.',
  );
  return result.ok;
}
