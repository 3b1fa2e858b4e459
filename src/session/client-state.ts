import type { RedisClient } from '../types.js';

/**
 * Calls `onChange(true)` when the client becomes ready and `onChange(false)` when its connection closes
 * or ends, following the client's real state. Returns a function that stops following.
 */
export function followClientState(client: RedisClient, onChange: (connected: boolean) => void): () => void {
  const up = () => onChange(true);
  const down = () => onChange(false);
  client.on('ready', up);
  client.on('close', down);
  client.on('end', down);
  return () => {
    client.off('ready', up);
    client.off('close', down);
    client.off('end', down);
  };
}

/** Whether the client is connected (ready), with `onChange` told once per change (the store's events). */
export class ClientConnection {
  private isConnected: boolean;
  private readonly detach: () => void;

  constructor(client: RedisClient, onChange: (connected: boolean) => void) {
    this.isConnected = client.status === 'ready';
    this.detach = followClientState(client, (connected) => {
      if (connected === this.isConnected) return;
      this.isConnected = connected;
      onChange(connected);
    });
  }

  /** True while the client is ready. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Stops following the client. */
  close(): void {
    this.detach();
  }
}
