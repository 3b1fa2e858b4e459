import { defineConfig } from 'tsup';

// One build per public entry; each gets ESM (.js + .d.ts) and CJS (.cjs + .d.cts).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
  splitting: false,
});
