import type { Envelope } from '../contracts/envelope.js';
import type { Poison } from '../contracts/transport.js';
import { envelopeProblem, preview } from './envelope-frame.js';

/**
 * Envelopes as Redis stream entries: an outbox entry written by the store's scripts, or an entry a
 * relay or the Redis Streams transport appended. Fields: `b` body; `k` kind (`session` when absent);
 * `t` time, epoch ms (when absent, the entry id's: the Redis clock when the entry was added); and `i`
 * the envelope id when the entry re-publishes an envelope that has one (otherwise the id is
 * `<origin>:<entry id>`). The scripts write `b` only: one field to append, read and decode. The origin is
 * the region whose stream it is: an entry cannot claim another.
 */

/** The kind of an entry that names none: what the store's scripts append. */
const DEFAULT_KIND = 'session';

/** One stream entry: its id and its flat field list (`null` when it was trimmed after being claimed). */
export type StreamEntry = [id: string, fields: string[] | null];

/** The `XADD` field list of `envelope`. */
export function entryFields(envelope: Envelope): string[] {
  return ['k', envelope.kind, 't', String(envelope.time), 'b', envelope.body, 'i', envelope.id];
}

/** The envelope of an entry of `origin`'s stream, or the {@link Poison} it is. */
export function envelopeOfEntry(origin: string, entryId: string, flat: readonly string[]): Envelope | Poison {
  let kind: string | undefined;
  let time: string | undefined;
  let body: string | undefined;
  let id: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const value = flat[i + 1];
    switch (flat[i]) {
      case 'k':
        kind = value;
        break;
      case 't':
        time = value;
        break;
      case 'b':
        body = value;
        break;
      case 'i':
        id = value;
        break;
    }
  }
  const envelopeId = id ?? `${origin}:${entryId}`;
  const ms = time === undefined ? idTime(entryId) : /^\d{1,16}$/.test(time) ? Number(time) : Number.NaN;
  kind ??= DEFAULT_KIND;
  const problem = body === undefined ? 'missing body (b)' : envelopeProblem(envelopeId, origin, kind, ms);
  if (problem !== undefined || body === undefined) {
    return { id: entryId, origin, reason: problem ?? 'malformed entry', raw: preview(flat.join(' ')) };
  }
  return { id: envelopeId, origin, kind, time: ms, body };
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
