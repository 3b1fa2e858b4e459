/**
 * The NATS transport connects only once a server answered a probe of its own (nats.js cannot abandon a
 * connection attempt: against a server that accepts and never answers, its socket outlives the attempt
 * and keeps the process alive). The probe answers true for a NATS server, false for a silent one or a
 * closed port, and gives up at once when aborted, closing its socket.
 */
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { natsAnswers } from '../../src/transports/nats-probe.js';
import { freePort, portAnswers } from '../helpers/servers.js';

const hasNats = await portAnswers(4222);

async function silentServer() {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.resume();
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('natsAnswers', () => {
  it.skipIf(!hasNats)('a NATS server answers', async () => {
    const signal = new AbortController().signal;
    expect(await natsAnswers(['nats://127.0.0.1:4222'], 2000, signal)).toBe(true);
    expect(await natsAnswers(['127.0.0.1:4222'], 2000, signal)).toBe(true);
  });

  it('a server that never answers, or a closed port, does not; an abort gives up at once', async () => {
    const silent = await silentServer();
    try {
      const signal = new AbortController().signal;
      expect(await natsAnswers([`nats://127.0.0.1:${silent.port}`], 300, signal)).toBe(false);
      expect(await natsAnswers([`nats://127.0.0.1:${await freePort()}`], 300, signal)).toBe(false);
      const abort = new AbortController();
      const probing = natsAnswers([`nats://127.0.0.1:${silent.port}`], 60_000, abort.signal);
      await new Promise((resolve) => setTimeout(resolve, 100));
      abort.abort();
      expect(await probing).toBe(false);
      // The probe's socket is gone: the server sees its connection close.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect([...silent.sockets].filter((s) => !s.destroyed && !s.readableEnded)).toEqual([]);
    } finally {
      await silent.close();
    }
  });
});
