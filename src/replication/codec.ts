import { EventError } from '../errors.js';
import { isValidRegion } from '../session-id.js';
import type { ChangeEvent, ChangeOp } from './events.js';

const VERSION_PATTERN = /^\d{13}\.\d{4}\.[a-z0-9-]{1,32}$/;
const OPS: Record<string, ChangeOp> = { s: 'set', t: 'touch', d: 'destroy' };
const CODES: Record<ChangeOp, string> = { set: 's', touch: 't', destroy: 'd' };

/** The short field names of an event: its broker JSON body, and the parts of an outbox entry. */
export interface OutboxFields {
  o?: string;
  s?: string;
  v?: string;
  x?: string;
  e?: string;
  r?: string;
  f?: string;
  d?: string;
  /** Event id, when the entry re-publishes an event that already has one. */
  i?: string;
}

/** Epoch ms as written by the scripts: decimal digits only ('' or '0x10' would otherwise pass Number()). */
function parseMs(text: string | undefined): number {
  return text !== undefined && /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
}

function fail(id: string, why: string): never {
  throw new EventError(`malformed change event ${id}: ${why}`);
}

/** The parts of an outbox header before the session id, in order (the id comes last: it is the only free-form part). */
const HEADER_PARTS = ['o', 'r', 'v', 'x', 'e', 'f'] as const;

/**
 * Builds a {@link ChangeEvent} from an outbox stream entry (`XADD` field list) and checks it.
 * Throws {@link EventError} for anything malformed; the caller reports and skips it.
 *
 * An entry is `h`, the header `op|origin|version|expiry|cookie expiry|fingerprint|session id`; `d`, the
 * session, for a set; and `i`, the event id, only when an event is re-published (otherwise the id is
 * `<origin>:<entry id>`). Two small fields instead of one per part make an entry cheaper to append, to
 * read and to decode.
 */
export function eventFromOutbox(entryId: string, flat: readonly string[]): ChangeEvent {
  let header: string | undefined;
  let data: string | undefined;
  let id: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i];
    if (name === 'h') header = flat[i + 1];
    else if (name === 'd') data = flat[i + 1];
    else if (name === 'i') id = flat[i + 1];
  }
  if (header === undefined) fail(id ?? entryId, 'no header (field h)');
  const fields: OutboxFields = { d: data };
  let at = 0;
  for (const part of HEADER_PARTS) {
    const bar = header.indexOf('|', at);
    if (bar === -1) fail(id ?? entryId, `header ${JSON.stringify(header.slice(0, 80))} has too few parts`);
    fields[part] = header.slice(at, bar);
    at = bar + 1;
  }
  fields.s = header.slice(at);
  return checkedEvent(fields, id ?? `${fields.r}:${entryId}`);
}

/** The outbox header of an event (see {@link eventFromOutbox}). */
function headerOf(event: ChangeEvent): string {
  const cookie = event.op === 'destroy' || event.cookieExpires === undefined ? '' : event.cookieExpires;
  const fingerprint = event.op === 'set' ? event.fingerprint : '';
  return `${CODES[event.op]}|${event.origin}|${event.version}|${event.expiresAt}|${cookie}|${fingerprint}|${event.sid}`;
}

/** Checks the short-field form of an event and returns the event. */
export function checkedEvent(fields: OutboxFields, id: string): ChangeEvent {
  const op = OPS[fields.o ?? ''];
  if (!op) fail(id, `unknown op ${JSON.stringify(fields.o)}`);
  const origin = fields.r ?? '';
  if (!isValidRegion(origin)) fail(id, 'missing or invalid origin region');
  const sid = fields.s;
  if (typeof sid !== 'string' || sid.length === 0 || sid.length > 512)
    fail(id, 'missing or invalid session id');
  const version = fields.v ?? '';
  if (op !== 'touch' && !VERSION_PATTERN.test(version))
    fail(id, `invalid version ${JSON.stringify(version)}`);
  if (op === 'touch' && version !== '' && !VERSION_PATTERN.test(version)) fail(id, 'invalid version');
  const expiresAt = parseMs(fields.x);
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) fail(id, 'invalid expiry');
  // Each kind is built as one literal: this runs for every replicated event.
  if (op === 'destroy') return { id, origin, sid, op, version, expiresAt };
  const cookieExpires = fields.e === undefined || fields.e === '' ? undefined : parseMs(fields.e);
  if (cookieExpires !== undefined && !Number.isSafeInteger(cookieExpires)) fail(id, 'invalid cookie expiry');
  if (op === 'touch') {
    return cookieExpires === undefined
      ? { id, origin, sid, op, version, expiresAt }
      : { id, origin, sid, op, version, expiresAt, cookieExpires };
  }
  const data = fields.d;
  const fingerprint = fields.f;
  if (typeof data !== 'string') fail(id, 'a set event carries no data');
  if (typeof fingerprint !== 'string' || fingerprint === '') fail(id, 'a set event carries no fingerprint');
  return cookieExpires === undefined
    ? { id, origin, sid, op, version, expiresAt, fingerprint, data }
    : { id, origin, sid, op, version, expiresAt, cookieExpires, fingerprint, data };
}

/** The short-field form of an event, for brokers and the outbox. */
export function eventToFields(event: ChangeEvent): OutboxFields {
  const fields: OutboxFields = {
    o: CODES[event.op],
    s: event.sid,
    v: event.version,
    x: String(event.expiresAt),
    r: event.origin,
  };
  if (event.op !== 'destroy' && event.cookieExpires !== undefined) fields.e = String(event.cookieExpires);
  if (event.op === 'set') {
    fields.f = event.fingerprint;
    fields.d = event.data;
  }
  return fields;
}

/** The outbox field list (`XADD` arguments) of an event, as the write scripts append it; it keeps the event's id. */
export function eventToFlat(event: ChangeEvent): string[] {
  return event.op === 'set'
    ? ['h', headerOf(event), 'd', event.data, 'i', event.id]
    : ['h', headerOf(event), 'i', event.id];
}

/** Encodes an event as one broker message body (JSON of the short-field form plus the id). */
export function encodeEvent(event: ChangeEvent): Buffer {
  return Buffer.from(JSON.stringify({ ...eventToFields(event), i: event.id }));
}

/** Decodes a broker message body; throws {@link EventError} when it is not a valid event. */
export function decodeEvent(body: Uint8Array | string): ChangeEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
  } catch (error) {
    throw new EventError('a replication message is not JSON', { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new EventError('a replication message is not an object');
  const { i, ...fields } = parsed as OutboxFields & { i?: unknown };
  if (typeof i !== 'string' || i.length === 0) throw new EventError('a replication message has no event id');
  for (const value of Object.values(fields)) {
    if (typeof value !== 'string')
      throw new EventError(`malformed change event ${i}: a field is not a string`);
  }
  return checkedEvent(fields, i);
}
