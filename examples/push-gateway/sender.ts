/**
 * The sender service: pushes a message to every live connection of a user with one `podsOf` read of
 * its own region's Redis and one HTTP call per pod holding any of them (never one per connection, and
 * never a question to every pod). Each call is logged.
 */
import type { Connections } from './integrations.js';

/** What one push did. */
export interface PushResult {
  /** One entry per pod called. */
  calls: { region: string; pod: string; connections: number; delivered: number }[];
  /** Connections the registry listed. */
  connections: number;
  /** Connections the pods delivered to. */
  delivered: number;
}

/** Options of {@link createSender}. */
export interface SenderOptions {
  /** The sender's region (its registry reads that region's Redis). */
  region: string;
  connections: Connections;
  /** Base URL of a pod by name: service discovery in a real deployment. */
  podUrl: (pod: string) => string | undefined;
  log: (line: string) => void;
}

/** A sender: `push(userId, message)`. */
export function createSender(options: SenderOptions): {
  push(userId: string, message: string): Promise<PushResult>;
} {
  const log = (line: string) => options.log(`[sender ${options.region}] ${line}`);
  return {
    async push(userId, message) {
      // Sorted only so that the log reads the same on every run.
      const pods = (await options.connections.podsOf(userId)).sort((a, b) =>
        `${a.region}/${a.pod}`.localeCompare(`${b.region}/${b.pod}`),
      );
      const listed = pods.reduce((n, p) => n + p.connections.length, 0);
      log(
        `podsOf(${userId}): ${pods.map((p) => `${p.region}/${p.pod} (${p.connections.length})`).join(', ') || 'none'}`,
      );
      const calls = await Promise.all(
        pods.map(async (p) => {
          const url = options.podUrl(p.pod);
          let delivered = 0;
          if (!url) {
            log(`no address for pod ${p.pod}; skipped`);
          } else {
            try {
              const res = await fetch(`${url}/deliver`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ connections: p.connections, message }),
                signal: AbortSignal.timeout(5000),
              });
              const body = (await res.json()) as { delivered?: number };
              delivered = res.ok ? (body.delivered ?? 0) : 0;
            } catch (error) {
              log(`call to ${p.pod} failed: ${error instanceof Error ? error.message : error}`);
            }
          }
          log(`call ${p.region}/${p.pod}: ${delivered} of ${p.connections.length} delivered`);
          return { region: p.region, pod: p.pod, connections: p.connections.length, delivered };
        }),
      );
      const delivered = calls.reduce((n, c) => n + c.delivered, 0);
      log(`${calls.length} calls for ${listed} connections, ${delivered} delivered`);
      return { calls, connections: listed, delivered };
    },
  };
}
