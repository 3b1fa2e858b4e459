// What a stream's consumer groups hold (XINFO GROUPS, parsed): read by the trimming of streams, the
// outbox relay and the checks of tests.
import type { Redis } from 'ioredis';

/** What one consumer group holds of a stream (XINFO GROUPS). */
export interface GroupInfo {
  readonly name: string;
  readonly lastDeliveredId: string;
  readonly pending: number;
  /** Entries not delivered to the group yet (Redis 7: `lag`), when Redis can tell. */
  readonly lag: number | undefined;
}

/** XINFO GROUPS, parsed. */
export async function groupsOf(client: Redis, key: string): Promise<GroupInfo[]> {
  const rows = (await client.xinfo('GROUPS', key)) as unknown[][];
  return rows.map((row) => {
    const f: Record<string, unknown> = {};
    for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1];
    return {
      name: String(f.name),
      lastDeliveredId: String(f['last-delivered-id']),
      pending: Number(f.pending ?? 0),
      lag: f.lag === null || f.lag === undefined ? undefined : Number(f.lag),
    };
  });
}
