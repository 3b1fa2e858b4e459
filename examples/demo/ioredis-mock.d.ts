// ioredis-mock ships no types of its own; the demo only constructs it and treats it as an ioredis client.
declare module 'ioredis-mock' {
  const RedisMock: unknown;
  export default RedisMock;
}
