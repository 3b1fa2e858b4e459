// Entry point of `geosession/nats`. Importing it loads nothing from @nats-io/* (optional peer
// dependencies) until a transport connects.

export type { NatsTransportOptions } from './transports/nats.js';
export { channelToken, createNatsTransport } from './transports/nats.js';
