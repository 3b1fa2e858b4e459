import { defineConfig } from 'tsup';

// One build per public entry; each gets ESM (.js + .d.ts) and CJS (.cjs + .d.cts).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'redis-streams': 'src/redis-streams.ts',
    nats: 'src/nats.ts',
    amqp: 'src/amqp.ts',
    paseto: 'src/paseto.ts',
    admin: 'src/admin.ts',
    // the `geosession` bin (package.json "bin"); tsup keeps its shebang and makes it executable
    cli: 'src/cli/main.ts',
    prometheus: 'src/prometheus.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
  // Shared code goes into chunks so that every entry sees the same classes (instanceof across entries).
  splitting: true,
});
