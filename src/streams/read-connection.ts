// The connection a stream reader's blocking reads run on: a duplicate of the stream's client (a
// Cluster of its own on a Redis Cluster) that never resends a read and never pipelines one.
import type { Redis } from 'ioredis';

/**
 * Opens the dedicated connection of a reader's blocking reads, from the client of the Redis holding the
 * stream (which stays the caller's; the connection returned is the reader's to close).
 */
export function openReadConnection(source: Redis): Redis {
  // A blocking read must not retry forever through the offline queue, nor share the user's connection.
  // Nor may it be sent again silently after a reconnect: Redis may have handed entries to the lost
  // read (they are pending under this consumer), and only a failed read makes the loop read its
  // pending list first; a resent `>` read would leave them there until claimIdleMs. Nor be
  // auto-pipelined (a duplicate inherits `enableAutoPipelining`): each read goes out on its own,
  // at once, and the watchdog's disconnect can only ever cut that one read.
  const settings = {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: false,
  };
  const client = source as Redis & { isCluster?: boolean };
  // On a Redis Cluster the reads get a Cluster of their own (its duplicate takes its startup nodes
  // first): one stream is one slot, so its reads go to that slot's master on a connection no other
  // command and no other reader uses, and the Cluster follows MOVED and failovers by itself (a slot's
  // new master is found by the slot map it refreshes on a redirection or a lost connection).
  const conn = (
    client.isCluster
      ? (client.duplicate as unknown as (nodes: unknown[], options: object) => Redis)([], {
          enableAutoPipelining: false,
          redisOptions: { ...(client.options as { redisOptions?: object }).redisOptions, ...settings },
        })
      : client.duplicate({ ...settings, enableAutoPipelining: false })
  ) as Redis;
  conn.on('error', () => {
    // Connection errors surface through the commands that fail; ioredis reconnects by itself.
  });
  return conn;
}
