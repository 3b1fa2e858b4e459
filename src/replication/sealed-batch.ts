import type { Envelope } from '../contracts/envelope.js';
import type { Sealer } from '../contracts/sealer.js';
import { SealError } from '../errors.js';
import { utf8Length } from '../validation/utf8.js';
import { envelopeProblem } from '../wire/broker-frame.js';

/**
 * Sealed batches: several envelopes of one origin sealed as one token and carried by one envelope of
 * kind `sealed`. One signature or encryption per batch instead of one per envelope keeps sealing cheap
 * at tens of thousands of changes per second. The payload is JSON: `{"v":1,"e":[[id,kind,time,body],…]}`;
 * the inner envelopes' origin is the batch's, which the sealer binds.
 */

/** Bytes of a payload around its entries: `{"v":1,"e":[` and `]}`. */
const ENVELOPE_ROOM = 14;

/** The kind of envelope that carries a sealed batch. */
export const SEALED_KIND = 'sealed';

/**
 * Largest payload sealed as one token, in UTF-8 bytes (NATS's default max_payload is 1 MiB; a token is
 * base64url, a third larger than its payload).
 */
export const MAX_SEALED_PAYLOAD = 256 * 1024;

/**
 * Splits `envelopes` into payloads of at most {@link MAX_SEALED_PAYLOAD} UTF-8 bytes, in order (one
 * envelope may exceed it alone, in a payload of its own).
 */
export function packBatches(envelopes: readonly Envelope[]): { payload: string; envelopes: Envelope[] }[] {
  const out: { payload: string; envelopes: Envelope[] }[] = [];
  let parts: string[] = [];
  let members: Envelope[] = [];
  let size = ENVELOPE_ROOM;
  const flush = () => {
    if (parts.length === 0) return;
    out.push({ payload: `{"v":1,"e":[${parts.join(',')}]}`, envelopes: members });
    parts = [];
    members = [];
    size = ENVELOPE_ROOM;
  };
  for (const envelope of envelopes) {
    const part = JSON.stringify([envelope.id, envelope.kind, envelope.time, envelope.body]);
    const bytes = utf8Length(part);
    if (parts.length > 0 && size + bytes > MAX_SEALED_PAYLOAD) flush();
    parts.push(part);
    members.push(envelope);
    size += bytes + 1;
  }
  flush();
  return out;
}

/** The envelopes of an opened payload; throws a `malformed` {@link SealError} for anything else. */
export function unpackBatch(payload: string, origin: string): Envelope[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch (error) {
    throw new SealError('malformed', 'a sealed batch does not hold JSON', { cause: error });
  }
  const list = (parsed as { v?: unknown; e?: unknown } | null)?.e;
  if ((parsed as { v?: unknown } | null)?.v !== 1 || !Array.isArray(list)) {
    throw new SealError('malformed', 'a sealed batch is not a version 1 batch');
  }
  return list.map((item: unknown) => {
    if (!Array.isArray(item) || item.length !== 4)
      throw new SealError('malformed', 'a sealed batch holds a bad entry');
    const [id, kind, time, body] = item as [unknown, unknown, unknown, unknown];
    if (
      typeof id !== 'string' ||
      typeof kind !== 'string' ||
      typeof time !== 'number' ||
      typeof body !== 'string'
    ) {
      throw new SealError('malformed', 'a sealed batch holds a bad entry');
    }
    const problem = envelopeProblem(id, origin, kind, time);
    if (problem) throw new SealError('malformed', `a sealed batch holds an entry with ${problem}`);
    return { id, origin, kind, time, body };
  });
}

/** Seals `envelopes` (all of `origin`) into envelopes of kind `sealed`, one per payload. */
export async function sealEnvelopes(
  sealer: Sealer,
  envelopes: readonly Envelope[],
  origin: string,
  channel: string,
): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for (const batch of packBatches(envelopes)) {
    const first = batch.envelopes[0] as Envelope;
    const token = await sealer.seal(batch.payload, { origin, channel });
    out.push({
      id: `${first.id}+${batch.envelopes.length}`.slice(0, 200),
      origin,
      kind: SEALED_KIND,
      time: first.time,
      body: token,
    });
  }
  return out;
}
