import type { Command } from 'commander';
import { decodeSessionChange, SESSION_KIND } from '../../replication/session-codec.js';
import { compareIds, envelopeOfEntry, isPoison } from '../../wire/stream-entry.js';
import { action, examples, positiveInt } from '../command.js';
import type { CliContext, RegionHandle } from '../context.js';
import { regionError } from '../context.js';
import { ExitCode } from '../errors.js';

/**
 * `geosession tail`: replication events as they happen, from every region's outbox stream. Read-only:
 * plain `XREAD BLOCK` from the stream's newest entry at start, no consumer group, nothing acknowledged,
 * so it never disturbs replication.
 */

/** One event as `tail` prints it (`--json`: one such object per line). */
export interface TailEvent {
  /** When the origin's Redis added it, ISO time. */
  readonly time: string;
  /** The region whose outbox holds it (its origin). */
  readonly region: string;
  /** Envelope kind: `session`, `heartbeat`…, or `poison` for an entry that does not decode. */
  readonly kind: string;
  /** `set`, `touch`, `destroy` for a session change, `heartbeat` for a heartbeat, else `-`. */
  readonly op: string;
  /** The session id, masked unless `--show-ids` (`null` when the event has none). */
  readonly sid: string | null;
  /** The region's Redis clock now minus the entry's time, ms. */
  readonly lagMs: number;
  /** The stream entry id. */
  readonly entry: string;
  /** For `poison`: why it does not decode. */
  readonly problem?: string;
}

interface TailOptions {
  count?: number;
}

/** Registers `tail` on `program`. */
export function register(program: Command): void {
  program
    .command('tail')
    .description("print replication events as they happen, from every region's outbox (read-only)")
    .option('-n, --count <n>', 'stop after n events', positiveInt('--count'))
    .addHelpText(
      'after',
      examples([
        'tail',
        'tail --json --count 100 > events.jsonl',
        '--region hk=redis://10.0.0.1:6379 tail --show-ids',
      ]),
    )
    .action(action<TailOptions>(tail));
}

async function tail(context: CliContext, _args: string[], options: TailOptions): Promise<0> {
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  let printed = 0;
  let stopped = false;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = () => {
      stopped = true;
      resolve();
    };
  });
  if (context.signal.aborted) finish();
  context.signal.addEventListener('abort', finish, { once: true });

  const print = (event: TailEvent) => {
    if (stopped) return;
    if (context.out.json) context.out.data(event);
    else context.out.line(textLine(event));
    printed++;
    if (printed >= limit) finish();
  };

  // Start ids first, so that nothing added after the "tailing" line is missed.
  const starts = await Promise.all(context.regions.map((region) => startId(context, region)));
  const readers = context.regions.map(async (region, i) => {
    const blocking = await context.blockingClient(region.id);
    const outboxes = outboxesOf(region);
    const streams = outboxes.map((outbox) => outbox.key);
    const last = starts[i] ?? streams.map(() => '0-0');
    while (!stopped) {
      let reply: [string, [string, string[] | null][]][] | null;
      try {
        reply = (await blocking.xread(
          'COUNT',
          200,
          'BLOCK',
          1000,
          'STREAMS',
          ...streams,
          ...last,
        )) as typeof reply;
      } catch (error) {
        if (stopped) return;
        throw regionError(region.id, error);
      }
      if (!reply || stopped) continue;
      const now = await context.inRegion(region.id, () => redisNow(region));
      // Each outbox in order; across the shards of one region, by entry time (ids from one clock).
      const read: { id: string; fields: string[]; stream: string }[] = [];
      for (const [key, entries] of reply) {
        const s = streams.indexOf(key);
        const stream = outboxes[s]?.stream ?? region.id;
        for (const [id, fields] of entries) {
          if (s >= 0) last[s] = id;
          if (fields) read.push({ id, fields, stream });
        }
      }
      read.sort((a, b) => compareIds(a.id, b.id));
      for (const e of read) print(describe(context, region.id, e.id, e.fields, now, e.stream));
    }
  });
  context.out.note(
    `tailing ${context.regions.map((r) => r.id).join(', ')}${Number.isFinite(limit) ? ` for ${limit} events` : ' (Ctrl-C to stop)'}`,
  );
  const failed = Promise.all(readers).then(() => {});
  await Promise.race([done, failed]);
  stopped = true;
  return ExitCode.ok;
}

/**
 * Every outbox of the region: the one other kinds of change use and, with the sharded layout
 * (`--outbox-shards`), each shard's, where session changes go.
 */
function outboxesOf(region: RegionHandle): { key: string; stream: string }[] {
  const main = { key: region.keys.internal('outbox', region.id), stream: region.id };
  const sessions = region.keys.sessionOutboxes(region.id).filter((outbox) => outbox.key !== main.key);
  return [main, ...sessions.map(({ key, stream }) => ({ key, stream }))];
}

/** The id of the newest entry of each of the region's outboxes, `0-0` for an empty one. */
async function startId(context: CliContext, region: RegionHandle): Promise<string[]> {
  return Promise.all(
    outboxesOf(region).map(async ({ key: stream }) => {
      const newest = await context.inRegion(region.id, () =>
        region.client.xrevrange(stream, '+', '-', 'COUNT', 1),
      );
      return newest[0]?.[0] ?? '0-0';
    }),
  );
}

/** The region's Redis clock, epoch ms. */
async function redisNow(region: RegionHandle): Promise<number> {
  const [seconds = '0', micros = '0'] = await region.client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

function describe(
  context: CliContext,
  region: string,
  entry: string,
  fields: string[],
  now: number,
  stream: string,
): TailEvent {
  const decoded = envelopeOfEntry(region, entry, fields, stream);
  const entryTime = Number(entry.slice(0, entry.indexOf('-')));
  if (isPoison(decoded)) {
    return {
      time: new Date(entryTime).toISOString(),
      region,
      kind: 'poison',
      op: '-',
      sid: null,
      lagMs: Math.max(0, now - entryTime),
      entry,
      problem: decoded.reason,
    };
  }
  const base = {
    time: new Date(decoded.time).toISOString(),
    region,
    kind: decoded.kind,
    lagMs: Math.max(0, now - decoded.time),
    entry,
  };
  if (decoded.kind === SESSION_KIND) {
    try {
      const change = decodeSessionChange(decoded);
      return { ...base, op: change.op, sid: context.out.id(change.sid) };
    } catch (error) {
      return { ...base, kind: 'poison', op: '-', sid: null, problem: (error as Error).message };
    }
  }
  return { ...base, op: decoded.kind === 'heartbeat' ? 'heartbeat' : '-', sid: null };
}

function textLine(event: TailEvent): string {
  const parts = [event.time, event.region.padEnd(6), event.kind.padEnd(9), event.op.padEnd(9)];
  parts.push((event.sid ?? '-').padEnd(12), `lag ${event.lagMs} ms`);
  if (event.problem) parts.push(`(${event.problem})`);
  return parts.join(' ');
}
