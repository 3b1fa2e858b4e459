import { type Envelope, KIND_PATTERN } from '../contracts/envelope.js';
import { isValidRegion } from './ids.js';

/**
 * How the broker transports (AMQP, NATS) carry envelopes: several in one message, so that a relay's
 * batch costs one publish and one confirm rather than one per envelope. A message is a line
 * `gsb1 <count>` and then, for each envelope, a line `<id> <origin> <kind> <time> <body length>` and the
 * body as it is (its length counted in UTF-16 code units, as JavaScript strings are). No JSON around
 * bodies that are often JSON themselves: nothing is escaped, a reader slices. The Redis Streams
 * transport uses stream fields instead (src/internal/outbox-entry.ts).
 */

const MAGIC = 'gsb1';
/** Envelope ids: no whitespace, at most 200 characters. */
const ID_PATTERN = /^[!-~]{1,200}$/;
/** Largest message the transports send (NATS's default max_payload is 1 MiB); one envelope may exceed it alone. */
export const MAX_FRAME = 512 * 1024;

/** A message carrying `envelopes`, with the id brokers de-duplicate it by. */
export interface Frame {
  readonly id: string;
  readonly text: string;
  readonly count: number;
}

/** The messages that carry `envelopes`, each at most about {@link MAX_FRAME} characters. */
export function encodeFrames(envelopes: readonly Envelope[]): Frame[] {
  const frames: Frame[] = [];
  let parts: string[] = [];
  let first: Envelope | undefined;
  let size = 0;
  const flush = () => {
    if (!first) return;
    frames.push({
      id: `${first.id}+${parts.length}`.slice(0, 200),
      text: `${MAGIC} ${parts.length}\n${parts.join('')}`,
      count: parts.length,
    });
    parts = [];
    first = undefined;
    size = 0;
  };
  for (const envelope of envelopes) {
    const part = `${envelope.id} ${envelope.origin} ${envelope.kind} ${envelope.time} ${envelope.body.length}\n${envelope.body}`;
    if (size + part.length > MAX_FRAME) flush();
    first ??= envelope;
    parts.push(part);
    size += part.length;
  }
  flush();
  return frames;
}

/** Why the parts of an envelope are not valid, or `undefined` when they are. */
export function envelopeProblem(id: string, origin: string, kind: string, time: number): string | undefined {
  if (!ID_PATTERN.test(id)) return 'invalid envelope id';
  if (!isValidRegion(origin)) return 'invalid origin region';
  if (!KIND_PATTERN.test(kind)) return 'invalid kind';
  if (!Number.isSafeInteger(time) || time < 0) return 'invalid time';
  return undefined;
}

const DIGITS = /^\d{1,16}$/;

/** The envelopes of a message, or the reason it is not a geosession message (then none is taken). */
export function decodeFrames(text: string): Envelope[] | { problem: string } {
  let eol = text.indexOf('\n');
  if (eol === -1) return { problem: 'no header line' };
  const head = text.slice(0, eol).split(' ');
  if (head.length !== 2 || head[0] !== MAGIC || !DIGITS.test(head[1] ?? '')) {
    return { problem: 'not a geosession message' };
  }
  const count = Number(head[1]);
  const out: Envelope[] = [];
  let at = eol + 1;
  for (let n = 0; n < count; n++) {
    eol = text.indexOf('\n', at);
    if (eol === -1) return { problem: `envelope ${n + 1} of ${count} has no header` };
    const parts = text.slice(at, eol).split(' ');
    if (parts.length !== 5) return { problem: `envelope ${n + 1} of ${count} has a bad header` };
    const [id = '', origin = '', kind = '', timeText = '', lengthText = ''] = parts;
    const time = DIGITS.test(timeText) ? Number(timeText) : Number.NaN;
    const problem = envelopeProblem(id, origin, kind, time);
    if (problem) return { problem: `envelope ${n + 1} of ${count}: ${problem}` };
    const length = DIGITS.test(lengthText) ? Number(lengthText) : Number.NaN;
    if (!Number.isSafeInteger(length) || eol + 1 + length > text.length) {
      return { problem: `envelope ${n + 1} of ${count} is cut short` };
    }
    out.push({ id, origin, kind, time, body: text.slice(eol + 1, eol + 1 + length) });
    at = eol + 1 + length;
  }
  if (at !== text.length) return { problem: 'trailing bytes after the last envelope' };
  return out;
}

/** The start of a frame or entry for a dead letter or an error message: at most `max` characters. */
export function preview(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/**
 * How many envelopes a message says it carries (its first line), without decoding it: consumers fill
 * a batch up to `maxBatch` envelopes by it. 1 for anything that is not a geosession message.
 */
export function envelopeCount(message: Uint8Array | string): number {
  const head =
    typeof message === 'string'
      ? message.slice(0, 24)
      : Buffer.from(message.subarray(0, 24)).toString('latin1');
  const match = /^gsb1 (\d{1,9})\n/.exec(head);
  return match ? Math.max(1, Number(match[1])) : 1;
}

/**
 * Takes from the front of `queue` as many messages as fit in `maxEnvelopes` envelopes (at least one),
 * counting each with `count`.
 */
export function takeBatch<T>(queue: T[], maxEnvelopes: number, count: (item: T) => number): T[] {
  let total = 0;
  let n = 0;
  while (n < queue.length) {
    const next = count(queue[n] as T);
    if (n > 0 && total + next > maxEnvelopes) break;
    total += next;
    n++;
  }
  return queue.splice(0, n);
}
