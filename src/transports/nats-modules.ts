// Loads the optional peer dependencies of the NATS transport (@nats-io/transport-node and
// @nats-io/jetstream) on first use, and says what to install when they are missing.
import { MissingDependencyError } from '../errors.js';

/** What the NATS transport uses of the NATS client packages. */
export interface NatsModules {
  connect: typeof import('@nats-io/transport-node').connect;
  jetstream: typeof import('@nats-io/jetstream').jetstream;
  jetstreamManager: typeof import('@nats-io/jetstream').jetstreamManager;
}

let natsModules: Promise<NatsModules> | undefined;

/** The NATS client packages, imported once (again after a failure); a `MissingDependencyError` without them. */
export function loadNats(): Promise<NatsModules> {
  natsModules ??= Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]).then(
    ([transport, js]) => ({
      connect: transport.connect,
      jetstream: js.jetstream,
      jetstreamManager: js.jetstreamManager,
    }),
    (error: unknown) => {
      natsModules = undefined;
      throw new MissingDependencyError(
        'the NATS transport (geosession/nats)',
        ['@nats-io/transport-node', '@nats-io/jetstream'],
        {
          cause: error,
        },
      );
    },
  );
  return natsModules;
}
