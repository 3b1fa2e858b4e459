/**
 * A missing optional peer dependency (amqplib, @nats-io/*) fails with a message that names the package
 * and the install command, and the transport reaches its terminal state `failed` instead of connecting
 * forever. The packages are made unresolvable here with vi.mock.
 */
import { describe, expect, it, vi } from 'vitest';
import { MissingDependencyError } from '../../src/errors.js';
import { createAmqpTransport } from '../../src/transports/amqp.js';
import { createNatsTransport } from '../../src/transports/nats.js';
import { eventually } from '../helpers/eventually.js';

vi.mock('amqplib', () => {
  throw new Error("Cannot find package 'amqplib' imported from geosession");
});
vi.mock('@nats-io/transport-node', () => {
  throw new Error("Cannot find package '@nats-io/transport-node' imported from geosession");
});

async function failsForGood(
  make: () => ReturnType<typeof createAmqpTransport>,
  packages: RegExp,
  install: string,
): Promise<void> {
  const transport = make();
  const errors: Error[] = [];
  transport.on('error', (e) => errors.push(e));
  await eventually(() => transport.state === 'failed', 5000);
  expect(errors).toHaveLength(1);
  const error = errors[0] as MissingDependencyError;
  expect(error).toBeInstanceOf(MissingDependencyError);
  expect(error.code).toBe('ERR_GEOSESSION_DEPENDENCY');
  expect(error.message).toMatch(packages);
  expect(error.message).toContain(install);
  await expect(
    transport.publish('sess:', [{ id: 'a:1', origin: 'hk', kind: 'x', time: 1, body: '' }]),
  ).rejects.toBe(error);
  await expect(transport.subscribe({ channel: 'sess:', region: 'hk', handler: async () => {} })).rejects.toBe(
    error,
  );
  await transport.close();
  expect(transport.state).toBe('closed');
}

describe('a missing optional peer', () => {
  it('amqplib: the AMQP transport fails at once and says what to install', async () => {
    await failsForGood(
      () => createAmqpTransport({ url: 'amqp://127.0.0.1:1', regions: ['hk', 'kr'] }),
      /`amqplib`/,
      'npm install amqplib',
    );
  });

  it('@nats-io/*: the NATS transport fails at once and says what to install', async () => {
    await failsForGood(
      () => createNatsTransport({ servers: 'nats://127.0.0.1:1', regions: ['hk', 'kr'] }),
      /`@nats-io\/transport-node` and `@nats-io\/jetstream`/,
      'npm install @nats-io/transport-node @nats-io/jetstream',
    );
  });
});
