/** Longest user, connection or pod id the registry accepts. */
export const MAX_REGISTRY_ID_LENGTH = 256;

/**
 * User, connection and pod ids: 1 to {@link MAX_REGISTRY_ID_LENGTH} printable ASCII characters (`!` to
 * `~`) other than `{`, `}` and `|`, the same alphabet as session ids. Braces would let an id choose its
 * Redis Cluster slot; `|` separates the parts of a registry entry.
 */
const ID_PATTERN = /^[!-z~]+$/;

/** Why `value` cannot be a registry id, or `undefined` when it can. */
export function registryIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `is a ${value === null ? 'null' : typeof value}, not a string`;
  if (value.length === 0) return 'is empty';
  if (value.length > MAX_REGISTRY_ID_LENGTH) {
    return `is ${value.length} characters long (at most ${MAX_REGISTRY_ID_LENGTH})`;
  }
  if (!ID_PATTERN.test(value)) return 'holds a character outside printable ASCII, or one of "{", "}", "|"';
  return undefined;
}
