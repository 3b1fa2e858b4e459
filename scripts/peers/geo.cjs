// Loaded inside a peer's test process (see preload.cjs): geosession from this repository's sources
// (through tsx), one ioredis client shared by every store, and a fresh key prefix for each store made,
// so that each `new MemoryStore()` of a peer's test starts empty, as a memory store does.
'use strict';

const { createRequire } = require('node:module');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const fromRepo = createRequire(path.join(REPO, 'package.json'));
fromRepo('tsx/cjs/api').register();
const { GeoSessionStore } = fromRepo(path.join(REPO, 'src', 'index.ts'));
const { Redis } = fromRepo('ioredis');

const url = process.env.GEOSESSION_PEERS_REDIS || 'redis://127.0.0.1:6379';
const base = process.env.GEOSESSION_PEERS_PREFIX;
if (!base)
  throw new Error('GEOSESSION_PEERS_PREFIX is not set: run the peers through scripts/test-peers.mjs');

const client = new Redis(url);
client.setMaxListeners(0);

let made = 0;

/** A new store on its own key prefix (test processes may run in parallel: the pid keeps them apart). */
function storeOptions() {
  made += 1;
  return { region: 'hk', client, prefix: `${base}${process.pid}:${made}:` };
}

/** Lets the test process end (preload.cjs calls it after the last test); the runner deletes the keys. */
function closeClient() {
  client.disconnect();
}

module.exports = { GeoSessionStore, storeOptions, closeClient };
