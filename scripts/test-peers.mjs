#!/usr/bin/env node
// Runs express-session's and @fastify/session's own test suites with geosession as the store:
//
//   npm run test:peers -- <express-session checkout> <@fastify/session checkout>
//
// Each checkout is a clone (or an extracted archive) of github.com/expressjs/session or
// github.com/fastify/session with its dependencies installed (`npm install` in it). Nothing is copied
// into this repository and nothing in the checkouts is changed: scripts/peers/preload.cjs points each
// peer's memory store at a GeoSessionStore on the Redis at $GEOSESSION_PEERS_REDIS (default
// redis://127.0.0.1:6379), under a key prefix of its own that is deleted afterwards, and skips the tests
// listed in scripts/peers/skips.json (they read a memory store's internals; docs/peers.md says why).
// Pass `-` for a checkout to leave that suite out. Exits non-zero when a test failed. Not run in CI: it
// needs the checkouts.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PRELOAD = join(REPO, 'scripts', 'peers', 'preload.cjs');
const { Redis } = createRequire(join(REPO, 'package.json'))('ioredis');

const usage = 'usage: npm run test:peers -- <express-session checkout | -> <@fastify/session checkout | ->';
const [expressArg, fastifyArg] = process.argv.slice(2);
if (expressArg === undefined || fastifyArg === undefined) {
  console.error(usage);
  process.exit(2);
}

/** The checkout's absolute path, after checking it is the package named `name` with its dependencies. */
function checkout(arg, name, needs) {
  if (arg === '-') return undefined;
  const dir = resolve(arg);
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest) || JSON.parse(readFileSync(manifest, 'utf8')).name !== name) {
    throw new Error(`${dir} is not a checkout of ${name}`);
  }
  if (!existsSync(join(dir, 'node_modules', needs))) {
    throw new Error(`${dir} has no dependencies installed: run \`npm install\` there first`);
  }
  return dir;
}

const suites = [
  { suite: 'express', name: 'express-session', dir: checkout(expressArg, 'express-session', 'mocha') },
  { suite: 'fastify', name: '@fastify/session', dir: checkout(fastifyArg, '@fastify/session', 'fastify') },
].filter((s) => s.dir !== undefined);

const redisUrl = process.env.GEOSESSION_PEERS_REDIS || 'redis://127.0.0.1:6379';
const prefix = `geosession-peers:${Date.now().toString(36)}:${process.pid}:`;

/** Runs a command with the output shown as it comes, and resolves with all of it. */
function run(command, args, options) {
  return new Promise((done) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8').on('data', (chunk) => {
        output += chunk;
        process.stdout.write(chunk);
      });
    }
    child.on('close', (code) => done({ code, output }));
  });
}

function environment(suite, dir) {
  return {
    ...process.env,
    NO_DEPRECATION: 'express-session',
    GEOSESSION_PEERS_SUITE: suite,
    GEOSESSION_PEERS_CHECKOUT: dir,
    GEOSESSION_PEERS_PREFIX: prefix,
    GEOSESSION_PEERS_REDIS: redisUrl,
  };
}

/** express-session: mocha, as its `npm test` runs it, with the preload as one more `--require`. */
async function runExpress(dir) {
  if (!existsSync(join(dir, 'test', 'fixtures', 'server.crt'))) {
    spawnSync('sh', ['test/support/gencert.sh'], { cwd: dir, stdio: 'ignore' });
  }
  const mocha = join(dir, 'node_modules', 'mocha', 'bin', 'mocha.js');
  const args = [mocha, '--require', 'test/support/env', '--require', PRELOAD, '--check-leaks'];
  const { output } = await run(process.execPath, [...args, '--exit', '--reporter', 'spec', 'test/'], {
    cwd: dir,
    env: environment('express', dir),
  });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes
  const text = output.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (word) => Number(text.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
  return { passed: count('passing'), failed: count('failing'), skipped: count('pending') };
}

/** @fastify/session: node:test over its test files, the preload in NODE_OPTIONS of every test process. */
async function runFastify(dir) {
  const files = readdir(join(dir, 'test')).filter((f) => f.endsWith('.test.js'));
  const env = environment('fastify', dir);
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require ${PRELOAD}`.trim();
  const args = ['--test', '--test-reporter=spec', ...files.map((f) => join('test', f))];
  const { output } = await run(process.execPath, args, { cwd: dir, env });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes
  const text = output.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (word) => Number(text.match(new RegExp(`ℹ ${word} (\\d+)`))?.[1] ?? 0);
  return { passed: count('pass'), failed: count('fail') + count('cancelled'), skipped: count('skipped') };
}

function readdir(dir) {
  return spawnSync('ls', [dir], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort();
}

/** Deletes every key this run wrote (session values, and the hash-tagged internal keys). */
async function cleanUp() {
  const client = new Redis(redisUrl);
  let removed = 0;
  try {
    for (const pattern of [`${prefix}*`, `{${prefix}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) removed += await client.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
  return removed;
}

const results = [];
try {
  for (const { suite, name, dir } of suites) {
    console.log(`\n=== ${name} (${dir}) with GeoSessionStore, key prefix ${prefix}\n`);
    results.push({ name, ...(suite === 'express' ? await runExpress(dir) : await runFastify(dir)) });
  }
} finally {
  const removed = await cleanUp();
  console.log(`\nremoved ${removed} keys under ${prefix}`);
}
console.log('\nsuite              passed  failed  skipped');
for (const r of results) {
  console.log(
    `${r.name.padEnd(18)} ${String(r.passed).padStart(6)}  ${String(r.failed).padStart(6)}  ${String(r.skipped).padStart(7)}`,
  );
}
process.exitCode = results.some((r) => r.failed > 0) ? 1 : 0;
