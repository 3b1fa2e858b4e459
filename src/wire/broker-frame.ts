import { type Envelope, KIND_PATTERN } from '../contracts/envelope.js';
import { isValidRegion } from '../validation/ids.js';
import { truncateUtf8, utf8Length } from '../validation/utf8.js';

/**
 * How the broker transports (AMQP, NATS) carry envelopes: several in one message, so that a relay's
 * batch costs one publish and one confirm rather than one per envelope. A message is a line
 * `gsb1 <count>` and then, for each envelope, a line `<id> <origin> <kind> <time> <body length>` and the
 * body as it is. The body length field counts UTF-16 code units, as JavaScript strings do (the wire
 * format since version 1: a reader decodes the message as UTF-8 and slices), but every size limit on
 * frames counts UTF-8 bytes, as brokers do. No JSON around bodies that are often JSON themselves:
 * nothing is escaped, a reader slices. The Redis Streams transport uses stream fields instead
 * (src/wire/stream-entry.ts).
 */

const MAGIC = 'gsb1';
/** Envelope ids: no whitespace, at most 200 characters. */
const ID_PATTERN = /^[!-~]{1,200}$/;
/**
 * Largest message the transports send, in UTF-8 bytes (NATS's default max_payload is 1 MiB); one
 * envelope may exceed it alone, in a message of its own.
 */
export const MAX_FRAME = 512 * 1024;

/** A message carrying `envelopes`, with the id brokers de-duplicate it by. */
export interface Frame {
  readonly id: string;
  readonly text: string;
  readonly count: number;
  /** UTF-8 bytes of `text`. */
  readonly bytes: number;
  /** The envelopes it carries. */
  readonly envelopes: readonly Envelope[];
}

/** Room for a frame's first line, `gsb1 <count>\n`. */
const HEAD_ROOM = 16;

/**
 * The messages that carry `envelopes`, in order, each at most `maxBytes` UTF-8 bytes (default
 * {@link MAX_FRAME}) unless it carries one envelope that is larger alone.
 */
export function encodeFrames(envelopes: readonly Envelope[], maxBytes = MAX_FRAME): Frame[] {
  const frames: Frame[] = [];
  let parts: string[] = [];
  let members: Envelope[] = [];
  let size = 0;
  const flush = () => {
    const first = members[0];
    if (!first) return;
    const head = `${MAGIC} ${parts.length}\n`;
    frames.push({
      id: `${first.id}+${parts.length}`.slice(0, 200),
      text: `${head}${parts.join('')}`,
      count: parts.length,
      bytes: head.length + size,
      envelopes: members,
    });
    parts = [];
    members = [];
    size = 0;
  };
  for (const envelope of envelopes) {
    const part = `${envelope.id} ${envelope.origin} ${envelope.kind} ${envelope.time} ${envelope.body.length}\n${envelope.body}`;
    const bytes = utf8Length(part);
    if (members.length > 0 && HEAD_ROOM + size + bytes > maxBytes) flush();
    parts.push(part);
    members.push(envelope);
    size += bytes;
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

/**
 * The start of a frame or entry for a dead letter or an error message: at most `max` UTF-8 bytes, and
 * when cut, a note of its full size after it.
 */
export function preview(text: string, max = 200): string {
  const start = truncateUtf8(text, max);
  return start.cut ? `${start.text}… (${utf8Length(text)} bytes)` : text;
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
