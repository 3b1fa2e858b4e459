#!/usr/bin/env node
// The `geosession` bin (dist/cli.js). Everything is in run.ts; this only runs it and exits once the
// output is flushed.
import { runCli } from './run.js';

void runCli(process.argv.slice(2)).then((code) => {
  process.stdout.write('', () => {
    process.stderr.write('', () => process.exit(code));
  });
});
