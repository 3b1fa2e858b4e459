// Preloaded into a peer's test processes by scripts/test-peers.mjs (mocha `--require` for
// express-session, NODE_OPTIONS `--require` for @fastify/session's node:test files). It changes nothing on
// disk: it points the peer's memory store module (and @fastify/session's TestStore) at a GeoSessionStore
// through Node's module resolution, and skips the tests listed in skips.json, which read a memory store's
// internals or rely on its synchronous callbacks (docs/peers.md).
'use strict';

const Module = require('node:module');
const path = require('node:path');
const skips = require('./skips.json');

const suite = process.env.GEOSESSION_PEERS_SUITE;
const checkout = process.env.GEOSESSION_PEERS_CHECKOUT;
if (suite !== 'express' && suite !== 'fastify')
  throw new Error('GEOSESSION_PEERS_SUITE must be express or fastify');
if (!checkout) throw new Error('GEOSESSION_PEERS_CHECKOUT is not set');

const aliases = new Map(
  suite === 'express'
    ? [[path.join(checkout, 'session', 'memory.js'), path.join(__dirname, 'express-memory-store.cjs')]]
    : [
        [path.join(checkout, 'lib', 'store.js'), path.join(__dirname, 'fastify-store.cjs')],
        [path.join(checkout, 'test', 'TestStore.js'), path.join(__dirname, 'fastify-store.cjs')],
      ],
);

const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveWithAliases(request, parent, ...rest) {
  const found = resolve.call(this, request, parent, ...rest);
  return aliases.get(found) ?? found;
};

/** Closes the shared Redis client, if a store was made in this process, so that the process can end. */
function closeClient() {
  const geo = require.cache[path.join(__dirname, 'geo.cjs')];
  if (geo !== undefined) geo.exports.closeClient();
}

/** Why `name` is skipped, or undefined. */
function skipReason(name) {
  const entry = skips.find((s) => s.suite === suite && s.test === name);
  return entry === undefined
    ? undefined
    : `cannot apply to a store other than the memory store: ${entry.why}`;
}

if (suite === 'fastify') {
  // Each test file does `const test = require('node:test')`: hand it a `test` that skips the listed ones.
  const load = Module._load;
  let wrapped;
  Module._load = function loadWithSkips(request, ...rest) {
    const loaded = load.call(this, request, ...rest);
    if (request !== 'node:test') return loaded;
    if (wrapped === undefined) {
      wrapped = function test(name, ...args) {
        const why = typeof name === 'string' ? skipReason(name) : undefined;
        if (why === undefined) return loaded(name, ...args);
        return loaded(name, { skip: why }, () => {});
      };
      Object.assign(wrapped, loaded);
      wrapped.test = wrapped;
      loaded.after(closeClient); // after the file's last test
    }
    return wrapped;
  };
}

// mocha root hooks (express-session): skip the listed tests, reported as pending.
exports.mochaHooks = {
  afterAll: closeClient,
  beforeEach() {
    if (skipReason(this.currentTest.fullTitle()) !== undefined) this.skip();
  },
};
