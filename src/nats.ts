// Entry point of `geosession/nats`. The only module that loads @nats-io/* (optional peer dependencies).

export type { NatsTransportOptions } from './transports/nats.js';
export { createNatsTransport } from './transports/nats.js';
