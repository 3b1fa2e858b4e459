/**
 * The layers of src/ (DESIGN.md section 7), checked by `npm run lint`: imports point down only.
 *
 *   entry points (src/index.ts, src/redis-streams.ts, src/amqp.ts, src/nats.ts, src/paseto.ts, src/admin.ts,
 *   src/prometheus.ts)
 *   cli → admin, middleware, observability → session → replication, users, registry, invalidation
 *   → redis, security → runtime, failures, validation, wire, streams, keys, errors → contracts → types
 *
 * The base layer, shared by everything above it, is named for what it holds: runtime (backoff, lifecycle,
 * timeouts, callbacks, tracing), failures (classifying Redis replies, reporting), validation (ids,
 * options, byte sizes), wire (how envelopes travel: broker frames, stream entries, internal key names)
 * and streams (the Redis Streams consumer-group reader and trimming, shared by the Redis Streams
 * transport and the outbox relay).
 *
 * Transports are plugins beside the stack: they import only contracts, the base layer, errors and types,
 * and only the entry points import them.
 */
const BASE = '^src/(runtime/|failures/|validation/|wire/|streams/|keys\\.ts$|errors\\.ts$)';

const layers = [
  ['types', '^src/types\\.ts$'],
  ['contracts', '^src/contracts/'],
  ['base', BASE],
  ['redis-security', '^src/(redis|security)/'],
  ['domain', '^src/(replication|users|registry|invalidation)/'],
  ['session', '^src/session/'],
  ['edge', '^src/(admin|middleware|observability)/'],
  ['cli', '^src/cli/'],
];

const ENTRY = '^src/(index|redis-streams|amqp|nats|paseto|admin|prometheus)\\.ts$';

/** Layer i may not import any layer above it. */
const upward = layers.flatMap(([name, path], i) => {
  const above = layers.slice(i + 1).map(([, p]) => `(${p})`);
  if (above.length === 0) return [];
  return [
    {
      name: `no-upward-from-${name}`,
      comment: `${name} (${path}) imports a layer above it: imports must point down (DESIGN.md section 7)`,
      severity: 'error',
      from: { path },
      to: { path: above.join('|') },
    },
  ];
});

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-upward-to-entry-points',
      comment:
        'only applications import the entry points; src/ imports the modules themselves (the CLI, src/cli/, is an application: it reaches the transports through their entry points)',
      severity: 'error',
      from: { path: '^src/', pathNot: [ENTRY, '^src/cli/'] },
      to: { path: ENTRY },
    },
    {
      name: 'transports-import-only-contracts-and-base',
      comment: 'a transport knows envelopes only: it may import contracts, the base layer, errors and types',
      severity: 'error',
      from: { path: '^src/transports/' },
      to: {
        path: '^src/',
        pathNot: [
          '^src/transports/',
          '^src/contracts/',
          '^src/(runtime|failures|validation|wire|streams)/',
          '^src/errors\\.ts$',
          '^src/types\\.ts$',
        ],
      },
    },
    {
      name: 'only-entry-points-import-transports',
      comment: 'the store never imports a concrete transport: applications pass one in',
      severity: 'error',
      from: { path: '^src/', pathNot: [ENTRY, '^src/transports/'] },
      to: { path: '^src/transports/' },
    },
    {
      name: 'no-circular',
      comment: 'import cycles make the layers meaningless',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^src/redis/lua\\.generated\\.ts$' },
  },
};
