import * as os from 'node:os';
import { Redis } from 'ioredis';

/** Where a benchmark ran. */
export interface Environment {
  node: string;
  platform: string;
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  redisVersion: string;
  redisUrl: string;
  loadAverage: string;
}

/** Host of the Redis the benchmarks use. */
export const REDIS_HOST = process.env['BENCH_REDIS_HOST'] ?? '127.0.0.1';
/** Port of the Redis the benchmarks use. */
export const REDIS_PORT = Number(process.env['BENCH_REDIS_PORT'] ?? 6379);

/** Describes this machine and the Redis server at {@link REDIS_HOST}:{@link REDIS_PORT}. */
export async function describeEnvironment(): Promise<Environment> {
  const client = new Redis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  let redisVersion = 'unreachable';
  try {
    await client.connect();
    const info = await client.info('server');
    redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    // reported as unreachable; the suites fail with their own errors
  } finally {
    client.disconnect();
  }
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    redisVersion,
    redisUrl: `redis://${REDIS_HOST}:${REDIS_PORT}`,
    loadAverage: os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' '),
  };
}
