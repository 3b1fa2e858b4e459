import type { Redis } from 'ioredis';

/** How long an offset measured over a slow round trip is refused in favour of a faster one. */
const TRUST_MS = 60_000;

/**
 * The local Redis server's clock, read through the host's: the host clock plus an offset measured with
 * `TIME` (at start and then every few seconds). Lag is measured with it, so that a host whose clock is
 * off reports the lag that events really had, not the clock's error (every `time` an event carries
 * comes from its origin's Redis clock too).
 *
 * An offset is only as good as its round trip: the answer came back some time within it, so a call that
 * waited 50 ms on a busy event loop may be 25 ms off, and every lag measured with it too. So each
 * measure takes the fastest of up to five calls (the first within 1 ms ends it), and a measure over a round trip more than twice as slow
 * (and over 2 ms) as the one the offset came from is not used while that one is less than a minute old.
 */
export class RedisClock {
  private offsetMs = 0;
  /** Round trip of the call the offset came from, and when it was measured (host clock). */
  private basis: { rttMs: number; at: number } | undefined;

  constructor(
    private readonly client: Redis,
    private readonly hostClock: () => number,
    private readonly samples = 5,
  ) {}

  now(): number {
    return this.hostClock() + this.offsetMs;
  }

  /** Measures the offset again (the midpoint of the call stands for the moment Redis answered). */
  async sync(): Promise<void> {
    let best: { rttMs: number; offsetMs: number } | undefined;
    for (let i = 0; i < this.samples; i++) {
      const before = this.hostClock();
      const [seconds, micros] = await this.client.time();
      const after = this.hostClock();
      const redisMs = Number(seconds) * 1000 + Number(micros) / 1000;
      if (!Number.isFinite(redisMs)) continue;
      const rttMs = after - before;
      if (rttMs < 0) continue; // the host clock was set back during the call: no measure
      if (!best || rttMs < best.rttMs) best = { rttMs, offsetMs: Math.round(redisMs - (before + after) / 2) };
      if (best.rttMs <= 1) break; // as good as a measure gets
    }
    if (!best) return;
    const now = this.hostClock();
    const basis = this.basis;
    if (basis && now - basis.at < TRUST_MS && best.rttMs > Math.max(2, 2 * basis.rttMs)) return;
    this.offsetMs = best.offsetMs;
    this.basis = { rttMs: best.rttMs, at: now };
  }
}
