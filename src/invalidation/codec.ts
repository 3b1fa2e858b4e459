import type { Envelope } from '../contracts/envelope.js';
import { EventError } from '../errors.js';

/** The envelope kind of a cache invalidation. */
export const INVALIDATE_KIND = 'invalidate';

/** Longest key or tag name accepted, in UTF-16 units. */
export const MAX_NAME_LENGTH = 4096;

/** Most keys plus tags one invalidation event may carry (larger calls are split before they are sent). */
export const MAX_NAMES_PER_EVENT = 10_000;

/** One invalidation as it travels: the keys and tags the app named. */
export interface Invalidation {
  readonly keys: readonly string[];
  readonly tags: readonly string[];
}

/** Why `name` cannot be a key or tag name, or `undefined` when it can. */
export function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `is a ${name === null ? 'null' : typeof name}, not a string`;
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  return undefined;
}

/** The body of an invalidation envelope: JSON `{"k":[keys],"t":[tags]}`. */
export function encodeInvalidation(invalidation: Invalidation): string {
  return JSON.stringify({ k: invalidation.keys, t: invalidation.tags });
}

/** Reads a body written by {@link encodeInvalidation}; throws an `EventError` for anything else. */
export function decodeBody(body: string): Invalidation {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new EventError('an invalidation body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new EventError('an invalidation body is not an object');
  }
  const { k, t } = parsed as { k?: unknown; t?: unknown };
  const keys = names(k, 'keys');
  const tags = names(t, 'tags');
  if (keys.length + tags.length === 0) throw new EventError('an invalidation names no key and no tag');
  if (keys.length + tags.length > MAX_NAMES_PER_EVENT) {
    throw new EventError(`an invalidation names more than ${MAX_NAMES_PER_EVENT} keys and tags`);
  }
  return { keys, tags };
}

/** Decodes an envelope of kind {@link INVALIDATE_KIND}. */
export function decodeInvalidation(envelope: Envelope): Invalidation {
  return decodeBody(envelope.body);
}

function names(value: unknown, what: string): string[] {
  if (!Array.isArray(value)) throw new EventError(`an invalidation's ${what} are not a list`);
  for (const name of value) {
    const problem = nameProblem(name);
    if (problem) throw new EventError(`an invalidation names one of its ${what} that ${problem}`);
  }
  return value as string[];
}
