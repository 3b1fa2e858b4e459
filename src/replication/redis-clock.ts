import type { Redis } from 'ioredis';

/**
 * The local Redis server's clock, read through the host's: the host clock plus an offset measured with
 * `TIME` (at start and then every few seconds). Lag is measured with it, so that a host whose clock is
 * off reports the lag that events really had, not the clock's error (every `time` an event carries
 * comes from its origin's Redis clock too).
 */
export class RedisClock {
  private offsetMs = 0;

  constructor(
    private readonly client: Redis,
    private readonly hostClock: () => number,
  ) {}

  now(): number {
    return this.hostClock() + this.offsetMs;
  }

  /** Measures the offset again (the midpoint of the call stands for the moment Redis answered). */
  async sync(): Promise<void> {
    const before = this.hostClock();
    const [seconds, micros] = await this.client.time();
    const after = this.hostClock();
    const redisMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    if (Number.isFinite(redisMs)) this.offsetMs = Math.round(redisMs - (before + after) / 2);
  }
}
