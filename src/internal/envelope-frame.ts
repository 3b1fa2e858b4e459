import { type Envelope, KIND_PATTERN } from '../contracts/envelope.js';
import { isValidRegion } from './ids.js';

/**
 * How the broker transports (AMQP, NATS) carry an envelope in one message: a header line
 * `gs1 <id> <origin> <kind> <time>` then `\n` and the body as it is. One short line to write and read,
 * no JSON around a body that is often JSON itself. The Redis Streams transport uses stream fields
 * instead (src/internal/outbox-entry.ts).
 */

const MAGIC = 'gs1';
/** Envelope ids: no whitespace, at most 200 characters. */
const ID_PATTERN = /^[!-~]{1,200}$/;

/** The message body of `envelope`. */
export function encodeFrame(envelope: Envelope): string {
  return `${MAGIC} ${envelope.id} ${envelope.origin} ${envelope.kind} ${envelope.time}\n${envelope.body}`;
}

/** Why the parts of an envelope are not valid, or `undefined` when they are. */
export function envelopeProblem(id: string, origin: string, kind: string, time: number): string | undefined {
  if (!ID_PATTERN.test(id)) return 'invalid envelope id';
  if (!isValidRegion(origin)) return 'invalid origin region';
  if (!KIND_PATTERN.test(kind)) return 'invalid kind';
  if (!Number.isSafeInteger(time) || time < 0) return 'invalid time';
  return undefined;
}

/** An envelope from a message body, or the reason it is not one. */
export function decodeFrame(frame: string): Envelope | { problem: string } {
  const eol = frame.indexOf('\n');
  if (eol === -1) return { problem: 'no header line' };
  const parts = frame.slice(0, eol).split(' ');
  if (parts.length !== 5 || parts[0] !== MAGIC) return { problem: 'not a geosession frame' };
  const [, id = '', origin = '', kind = '', timeText = ''] = parts;
  const time = /^\d{1,16}$/.test(timeText) ? Number(timeText) : Number.NaN;
  const problem = envelopeProblem(id, origin, kind, time);
  if (problem) return { problem };
  return { id, origin, kind, time, body: frame.slice(eol + 1) };
}

/** The start of a frame or entry for a dead letter or an error message: at most `max` characters. */
export function preview(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}
