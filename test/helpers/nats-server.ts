import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startServerProcess } from './servers.js';

/** A private nats-server with JetStream (file storage in a temp dir) that a test may kill and restart. */
export interface PrivateNats {
  readonly port: number;
  readonly url: string;
  /** SIGKILLs the server (a crash). The store dir is kept. */
  kill(): Promise<void>;
  /** SIGSTOPs / SIGCONTs the server (a stall: connections stay open, nothing answers). */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port with the same store dir (streams and consumers survive). */
  restart(): Promise<void>;
  /** Stops the server and deletes its store dir. */
  stop(): Promise<void>;
}

/** Starts `nats-server -a 127.0.0.1 -p <free port> -js -sd <tmpdir>`. */
export async function startNats(): Promise<PrivateNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'geosession-nats-'));
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];
  const server = await startServerProcess('nats-server', args, port);
  return {
    ...server,
    port,
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
