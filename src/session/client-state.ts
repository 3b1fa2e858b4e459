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
