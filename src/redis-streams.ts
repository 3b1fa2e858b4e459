// Entry point of `geosession/redis-streams`.

export type { RedisStreamsTransportOptions } from './transports/redis-streams.js';
export { createRedisStreamsTransport } from './transports/redis-streams.js';
