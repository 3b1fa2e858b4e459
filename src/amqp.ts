// Entry point of `geosession/amqp`. Importing it loads nothing from amqplib until a transport connects.

export type { AmqpTopology, AmqpTransportOptions } from './transports/amqp.js';
export { amqpTopology, createAmqpTransport } from './transports/amqp.js';
