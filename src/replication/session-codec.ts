import type { Envelope } from '../contracts/envelope.js';
import { EventError } from '../errors.js';
import { VERSION_PATTERN } from '../redis/meta.js';
import { sessionIdProblem } from '../validation/ids.js';
import type { ChangeEvent, ChangeOp, DestroyEvent } from './events.js';

/**
 * The body of a `session` envelope, as the write scripts append it to the outbox (append_event in
 * src/redis/scripts/includes/common.lua): the header `op|version|expiry|lifetime|fingerprint|session id`
 * and, for a set, `\n` and the serialized session. The session id comes last in the header: no id
 * holds `|` or a line break (src/validation/ids.ts), so the header always splits into six parts.
 */

/** The kind of envelope that carries session changes. */
export const SESSION_KIND = 'session';

const OPS: Record<string, ChangeOp> = { s: 'set', t: 'touch', d: 'destroy', r: 'revoke' };
const CODES: Record<ChangeOp, string> = { set: 's', touch: 't', destroy: 'd', revoke: 'r' };

/** Epoch ms as the scripts write them: decimal digits only ('' or '0x10' would otherwise pass Number()). */
function parseMs(text: string): number {
  return /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
}

/** The region tag of a version (`<wall ms>.<counter>.<region>`). */
function versionRegion(version: string): string {
  return version.slice(version.lastIndexOf('.') + 1);
}

function fail(id: string, why: string): never {
  throw new EventError(`malformed session change ${id}: ${why}`);
}

/** The session change a `session` envelope carries; throws {@link EventError} for anything malformed. */
export function decodeSessionChange(envelope: Envelope): ChangeEvent {
  const { id, origin, time, body } = envelope;
  const eol = body.indexOf('\n');
  const header = eol === -1 ? body : body.slice(0, eol);
  const parts = header.split('|');
  if (parts.length !== 6) fail(id, `header has ${parts.length} parts, not 6`);
  const [code = '', version = '', expiry = '', lifetime = '', fingerprint = '', sid = ''] = parts;
  const op = OPS[code];
  if (!op) fail(id, `unknown op ${JSON.stringify(code.slice(0, 8))}`);
  const problem = sessionIdProblem(sid);
  if (problem) fail(id, `session id ${problem}`);
  if (!(op === 'touch' && version === '') && !VERSION_PATTERN.test(version)) {
    fail(id, `invalid version ${JSON.stringify(version.slice(0, 60))}`);
  }
  // A set or destroy is versioned by the region that made it, which is the envelope's origin. A touch
  // carries the data version its origin held, which may have come from another region.
  if (op !== 'touch' && versionRegion(version) !== origin) {
    fail(id, `version ${version} was not made by its origin ${JSON.stringify(String(origin).slice(0, 40))}`);
  }
  const expiresAt = parseMs(expiry);
  if (!Number.isSafeInteger(expiresAt)) fail(id, 'invalid expiry');
  if (op === 'revoke') {
    // A user's "revoked before" mark: the id field holds the user id, the fingerprint field the kept sid.
    if (eol !== -1) fail(id, 'a revoke carries data');
    if (lifetime !== '') fail(id, 'a revoke carries a lifetime');
    if (fingerprint !== '' && sessionIdProblem(fingerprint)) fail(id, 'invalid kept session id');
    return { id, origin, time, sid, op, version, expiresAt, except: fingerprint };
  }
  if (op === 'destroy') {
    if (eol !== -1) fail(id, 'a destroy carries data');
    if (fingerprint === '') return { id, origin, time, sid, op, version, expiresAt };
    const space = fingerprint.indexOf(' ');
    const reason = space === -1 ? fingerprint : fingerprint.slice(0, space);
    if (reason !== 'logout-everywhere' && reason !== 'revoked-before') {
      fail(id, `unknown destroy reason ${JSON.stringify(reason.slice(0, 40))}`);
    }
    if (space === -1) return { id, origin, time, sid, op, version, expiresAt, reason };
    const userId = fingerprint.slice(space + 1);
    const userProblem = sessionIdProblem(userId);
    if (userProblem) fail(id, `user id ${userProblem}`);
    return { id, origin, time, sid, op, version, expiresAt, reason, userId };
  }
  const lifetimeMs = parseMs(lifetime);
  if (!Number.isSafeInteger(lifetimeMs)) fail(id, 'invalid lifetime');
  if (op === 'touch') {
    if (eol !== -1) fail(id, 'a touch carries data');
    return { id, origin, time, sid, op, version, expiresAt, lifetimeMs };
  }
  if (eol === -1) fail(id, 'a set carries no data');
  if (fingerprint === '') fail(id, 'a set carries no fingerprint');
  return {
    id,
    origin,
    time,
    sid,
    op,
    version,
    expiresAt,
    lifetimeMs,
    fingerprint,
    data: body.slice(eol + 1),
  };
}

/** The body of a `session` envelope for `event` (the form the scripts write). */
/** What a destroy carries in its fingerprint field: its reason and user, "" for a plain logout. */
export function destroyReason(event: DestroyEvent): string {
  if (event.reason === undefined) return '';
  return event.userId === undefined ? event.reason : `${event.reason} ${event.userId}`;
}

export function encodeSessionChange(event: ChangeEvent): string {
  const lifetime = event.op === 'destroy' || event.op === 'revoke' ? '' : String(event.lifetimeMs);
  const fingerprint =
    event.op === 'set'
      ? event.fingerprint
      : event.op === 'revoke'
        ? event.except
        : event.op === 'destroy'
          ? destroyReason(event)
          : '';
  const header = `${CODES[event.op]}|${event.version}|${event.expiresAt}|${lifetime}|${fingerprint}|${event.sid}`;
  return event.op === 'set' ? `${header}\n${event.data}` : header;
}

/** The envelope carrying `event`. */
export function sessionEnvelope(event: ChangeEvent): Envelope {
  return {
    id: event.id,
    origin: event.origin,
    kind: SESSION_KIND,
    time: event.time,
    body: encodeSessionChange(event),
  };
}
