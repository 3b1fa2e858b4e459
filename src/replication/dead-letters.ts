import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { addDeadLetter } from '../redis/commands.js';
import { truncateUtf8, utf8Length } from '../validation/utf8.js';
import { preview } from '../wire/broker-frame.js';

/** One refused envelope or frame, as the dead-letter stream keeps it. */
export interface DeadLetter {
  /**
   * Why it was refused: a refusal reason (`tampered`, `unsealed` …), `malformed`, `unknown-kind`,
   * `poison`, or `too-large` (one of this region's own changes, which the broker refuses for its size).
   */
  readonly reason: string;
  readonly id: string;
  readonly origin: string | undefined;
  readonly kind: string | undefined;
  readonly time: number | undefined;
  /** The error's message, when there was one (shortened past 1 KiB). */
  readonly error: string | undefined;
  /**
   * The body or raw frame, shortened past {@link MAX_DEAD_LETTER_BODY} bytes; empty when it arrived
   * sealed and failed after it was opened (`sealed`): its clear body is never kept.
   */
  readonly body: string;
  /** SHA-256 (hex) of the whole body: what identifies it when the body is shortened or withheld. */
  readonly digest: string | undefined;
  /** UTF-8 bytes of the whole body. */
  readonly bytes: number | undefined;
  /** True when the envelope arrived sealed and failed after opening: only its digest is kept. */
  readonly sealed: boolean;
}

/** What the pipeline hands to {@link DeadLetters.add}: a dead letter before it is shortened and digested. */
export type DeadLetterInput = Omit<DeadLetter, 'body' | 'digest' | 'bytes' | 'sealed'> & {
  /** The body or raw frame as it is. */
  readonly body: string;
  /** It came out of an opened sealed batch: keep its digest, never its clear body. */
  readonly sealed?: boolean;
};

/** Largest body kept per dead letter, in UTF-8 bytes. */
export const MAX_DEAD_LETTER_BODY = 8 * 1024;
/** Largest error message kept per dead letter, in UTF-8 bytes. */
const MAX_ERROR = 1024;
/** Most bytes a region's dead-letter stream holds (the sum of its entries' fields). */
export const DEAD_LETTER_MAX_BYTES = 32 * 1024 * 1024;

/** Bounds of a dead-letter stream. */
export interface DeadLetterBounds {
  /** Most entries kept (oldest trimmed). */
  readonly maxEntries: number;
  /** Most bytes kept, field names and values in UTF-8 (oldest trimmed; the newest is always kept). */
  readonly maxBytes: number;
}

/**
 * The bounded dead-letter stream of one region (`{<prefix>|dead}:<region>`): every envelope this region
 * refused or could not apply, newest kept, oldest trimmed past `maxEntries` entries or `maxBytes` bytes
 * (exactly, by dead-letter.lua, which keeps the running total in `{<prefix>|dead}:<region>:bytes`).
 * Each body is shortened past {@link MAX_DEAD_LETTER_BODY} bytes and its SHA-256 kept; a body that
 * arrived sealed is never kept in clear. Writing never blocks the pipeline: a failed write is reported
 * and the envelope is still skipped.
 */
export class DeadLetters {
  private readonly bounds: DeadLetterBounds;

  constructor(
    private readonly client: Redis,
    private readonly key: string,
    bounds: number | DeadLetterBounds,
    private readonly onError: (error: unknown) => void,
  ) {
    this.bounds =
      typeof bounds === 'number' ? { maxEntries: bounds, maxBytes: DEAD_LETTER_MAX_BYTES } : bounds;
  }

  /** The stream's key. */
  get streamKey(): string {
    return this.key;
  }

  add(letter: DeadLetterInput): void {
    const error = letter.error === undefined ? '' : truncateUtf8(letter.error, MAX_ERROR).text;
    const fields = [
      'reason',
      letter.reason,
      'id',
      letter.id,
      'origin',
      letter.origin ?? '',
      'kind',
      letter.kind ?? '',
      'time',
      letter.time === undefined ? '' : String(letter.time),
      'error',
      error,
      'body',
      letter.sealed ? '' : preview(letter.body, MAX_DEAD_LETTER_BODY),
      'digest',
      createHash('sha256').update(letter.body, 'utf8').digest('hex'),
      'bytes',
      String(utf8Length(letter.body)),
    ];
    if (letter.sealed) fields.push('sealed', '1');
    addDeadLetter(this.client, { stream: this.key, bytes: `${this.key}:bytes` }, this.bounds, fields).catch(
      this.onError,
    );
  }

  /** The newest `count` dead letters, newest first (for status tools and tests). */
  async latest(count: number): Promise<(DeadLetter & { at: string })[]> {
    const entries = (await this.client.xrevrange(this.key, '+', '-', 'COUNT', count)) as [string, string[]][];
    return entries.map(([at, flat]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
      return {
        at,
        reason: f.reason ?? '',
        id: f.id ?? '',
        origin: f.origin || undefined,
        kind: f.kind || undefined,
        time: f.time ? Number(f.time) : undefined,
        error: f.error || undefined,
        body: f.body ?? '',
        digest: f.digest || undefined,
        bytes: f.bytes ? Number(f.bytes) : undefined,
        sealed: f.sealed === '1',
      };
    });
  }
}
