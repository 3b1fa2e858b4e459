import type { Envelope } from '../contracts/envelope.js';
import type { Poison } from '../contracts/transport.js';
import { envelopeProblem, preview } from './broker-frame.js';

/**
 * Envelopes as Redis stream entries, one field each (fields cost more to write, send and decode than
 * their bytes: eight strings an entry read at 0.68x the rate of two):
 * - `q`: a session change as the store's scripts append it to the outbox: its number `<epoch>.<n>`, `|`,
 *   then its body. Its kind is `session`, its time the entry id's (the Redis clock when it was added), its
 *   id `<origin>:<epoch>.<n>` (src/replication/sequence.ts reads the number back from the id).
 * - `b`: the same without a number, as scripts before numbering wrote it; its id `<origin>:<entry id>`.
 * - `e`: any envelope, as a relay or `publish` appends it: the line `<kind> <time> <id>`, then `\n` and
 *   the body as it is.
 * The origin is the region whose stream it is: an entry cannot claim another. A `q` entry of one of an
 * origin's outbox shards carries the shard's stream name in its id, `<origin>#<shard>:<epoch>.<n>`
 * (src/wire/outbox-shards.ts), so each shard's numbers are tracked on their own.
 */

/** The kind of a script's entry. */
const SESSION_KIND = 'session';

/** A sequence number as the scripts write it: a 16-digit epoch, `.`, a counter. */
const NUMBER = /^\d{16}\.\d{1,15}$/;

/** One stream entry: its id and its flat field list (`null` when it was trimmed after being claimed). */
export type StreamEntry = [id: string, fields: string[] | null];

/** The `XADD` field list of `envelope`. */
export function entryFields(envelope: Envelope): [field: 'e', value: string] {
  return ['e', `${envelope.kind} ${envelope.time} ${envelope.id}\n${envelope.body}`];
}

/**
 * The envelope of an entry of `origin`'s stream, or the {@link Poison} it is; `stream` names the outbox
 * a `q` entry's number belongs to (`origin` itself, or `<origin>#<shard>`).
 */
export function envelopeOfEntry(
  origin: string,
  entryId: string,
  flat: readonly string[],
  stream: string = origin,
): Envelope | Poison {
  const poison = (reason: string): Poison => ({ id: entryId, origin, reason, raw: preview(flat.join(' ')) });
  if (flat.length !== 2) return poison('malformed entry: expected one field, q, b or e');
  const [field = '', value = ''] = flat;
  if (field === 'q') {
    const bar = value.indexOf('|');
    const number = bar < 0 ? '' : value.slice(0, bar);
    if (!NUMBER.test(number)) return poison('malformed entry: no sequence number');
    const id = `${stream}:${number}`;
    const time = idTime(entryId);
    const problem = envelopeProblem(id, origin, SESSION_KIND, time);
    return problem ? poison(problem) : { id, origin, kind: SESSION_KIND, time, body: value.slice(bar + 1) };
  }
  if (field === 'b') {
    const id = `${origin}:${entryId}`;
    const time = idTime(entryId);
    const problem = envelopeProblem(id, origin, SESSION_KIND, time);
    return problem ? poison(problem) : { id, origin, kind: SESSION_KIND, time, body: value };
  }
  if (field !== 'e') return poison(`malformed entry: unknown field ${preview(field, 20)}`);
  const newline = value.indexOf('\n');
  const header = newline < 0 ? [] : value.slice(0, newline).split(' ');
  if (header.length !== 3) return poison('malformed entry: expected "<kind> <time> <id>" and a body');
  const [kind = '', time = '', id = ''] = header;
  const ms = /^\d{1,16}$/.test(time) ? Number(time) : Number.NaN;
  const problem = envelopeProblem(id, origin, kind, ms);
  return problem ? poison(problem) : { id, origin, kind, time: ms, body: value.slice(newline + 1) };
}

/** True when {@link envelopeOfEntry} gave a poison rather than an envelope. */
export function isPoison(value: Envelope | Poison): value is Poison {
  return (value as Poison).reason !== undefined;
}

/** Orders two stream ids. */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

/** Milliseconds part of a stream id (the Redis clock when the entry was added). */
export function idTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}
