import type { Redis } from 'ioredis';
import { preview } from '../internal/envelope-frame.js';

/** One refused envelope or frame, as the dead-letter stream keeps it. */
export interface DeadLetter {
  /** Why it was refused: a refusal reason (`tampered`, `unsealed` …), `malformed`, `unknown-kind` or `poison`. */
  readonly reason: string;
  readonly id: string;
  readonly origin: string | undefined;
  readonly kind: string | undefined;
  readonly time: number | undefined;
  /** The error's message, when there was one. */
  readonly error: string | undefined;
  /** The body or raw frame (shortened past 64 KiB). */
  readonly body: string;
}

/** Largest body kept per dead letter. */
const MAX_BODY = 64 * 1024;

/**
 * The bounded dead-letter stream of one region (`{<prefix>|dead}:<region>`): every envelope this region
 * refused or could not apply, newest kept, oldest trimmed past `maxEntries` (approximately, `MAXLEN ~`).
 * Writing never blocks the pipeline: a failed write is reported and the envelope is still skipped.
 */
export class DeadLetters {
  constructor(
    private readonly client: Redis,
    private readonly key: string,
    private readonly maxEntries: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The stream's key. */
  get streamKey(): string {
    return this.key;
  }

  add(letter: DeadLetter): void {
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
      letter.error ?? '',
      'body',
      letter.body.length > MAX_BODY ? preview(letter.body, MAX_BODY) : letter.body,
    ];
    this.client.xadd(this.key, 'MAXLEN', '~', this.maxEntries, '*', ...fields).catch(this.onError);
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
      };
    });
  }
}
