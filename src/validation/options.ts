import { ConfigError } from '../errors.js';

/**
 * The one option validator: every constructor and factory checks its options through these, so each
 * bad option throws a {@link ConfigError} that names it, the same way everywhere.
 */

/** Throws unless `input` is a plain object; `required` names what it must hold, for the message. */
export function requireObject(input: unknown, option: string, required: string): asserts input is object {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(option, `must be an object with ${required}`);
  }
}

/** Throws a {@link ConfigError} naming the first key of `input` that is not in `known`. */
export function rejectUnknown(input: object, known: readonly string[], owner: string, path = ''): void {
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) {
      throw new ConfigError(`${path}${key}`, `is not an option of ${owner} (known: ${known.join(', ')})`);
    }
  }
}

/** Bounds of a numeric option. */
export interface NumberBounds {
  /** Smallest value allowed. @default 0 */
  min?: number;
  /** True when `min` itself is not allowed (a positive number). @default true when min is 0 */
  minExclusive?: boolean;
  /** Largest value allowed. */
  max?: number;
  /** Whole numbers only. */
  integer?: boolean;
}

/** A numeric option: `fallback` when undefined, else checked against `bounds`. */
export function numberOption(
  name: string,
  value: unknown,
  fallback: number,
  bounds: NumberBounds = {},
): number {
  if (value === undefined) return fallback;
  const min = bounds.min ?? 0;
  const exclusive = bounds.minExclusive ?? min === 0;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (exclusive ? value > min : value >= min) &&
    (bounds.max === undefined || value <= bounds.max) &&
    (!bounds.integer || Number.isInteger(value));
  if (!ok) {
    const kind = bounds.integer ? 'an integer' : 'a number';
    const range =
      min === 0 && exclusive
        ? `${bounds.integer ? 'a positive integer' : 'a positive number'}`
        : `${kind} ${exclusive ? '>' : '>='} ${min}`;
    const upper = bounds.max === undefined ? '' : ` and <= ${bounds.max}`;
    throw new ConfigError(name, `must be ${range}${upper}, got ${describe(value)}`);
  }
  return value as number;
}

/** A boolean option. */
export function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(name, `must be a boolean, got ${describe(value)}`);
  return value;
}

/** An option that must be one of `values`. */
export function oneOfOption<T extends string>(
  name: string,
  value: unknown,
  values: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !values.includes(value as T)) {
    throw new ConfigError(
      name,
      `must be one of ${values.map((v) => `'${v}'`).join(', ')}, got ${describe(value)}`,
    );
  }
  return value as T;
}

/** A string option matching `pattern` (described by `what` in the message). */
export function stringOption(
  name: string,
  value: unknown,
  fallback: string,
  pattern: RegExp,
  what: string,
): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new ConfigError(name, `must be ${what}, got ${describe(value)}`);
  }
  return value;
}

/** A short, safe description of a value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}

/** A list of at least two distinct region ids (a transport's `regions`), de-duplicated. */
export function regionListOption(name: string, value: unknown, isRegion: (r: unknown) => boolean): string[] {
  if (!Array.isArray(value)) throw new ConfigError(name, 'is required: an array of region ids');
  for (const region of value) {
    if (!isRegion(region)) throw new ConfigError(name, `contains an invalid region id: ${describe(region)}`);
  }
  const regions = [...new Set(value as string[])];
  if (regions.length < 2) throw new ConfigError(name, 'must name at least two distinct regions');
  return regions;
}
