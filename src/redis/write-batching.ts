import type { Socket } from 'node:net';
import type { RedisClient } from '../types.js';

/**
 * Coalesces the socket writes of the commands a store sends within one turn of the event loop into a
 * single write.
 *
 * ioredis writes every command to its socket as it is issued, one system call each; under load that is
 * most of a session read's cost. Before issuing a command the store calls the returned function: the
 * first call corks the client's socket and schedules an uncork with `setImmediate`, which runs once the
 * loop has handled every I/O callback that was ready (node-redis schedules its writes the same way). So
 * every command sent meanwhile, by all the requests whose data arrived together (the store's commands
 * and any other), leaves in one write. Ending the batch with the tick instead (`process.nextTick`) cost
 * one write per request under load: an HTTP request is an I/O callback of its own. Replies and ordering
 * are unchanged; a command waits at most until the loop's check phase. Single-node clients only; for a Cluster it does nothing. On a client made with
 * `enableAutoPipelining`, the store's commands go around the auto-pipeline (./send-command.ts) and are
 * batched here all the same; the client's other auto-pipelined commands leave later, in their own write.
 */
export function createWriteBatcher(client: RedisClient): () => void {
  if ((client as { isCluster?: boolean }).isCluster) return () => {};
  let corked: Socket | undefined;
  const uncork = () => {
    const socket = corked;
    corked = undefined;
    socket?.uncork();
  };
  return () => {
    if (corked !== undefined || client.status !== 'ready') return;
    const socket = (client as { stream?: Socket }).stream;
    if (socket === undefined || typeof socket.cork !== 'function' || socket.destroyed) return;
    socket.cork();
    corked = socket;
    setImmediate(uncork);
  };
}
