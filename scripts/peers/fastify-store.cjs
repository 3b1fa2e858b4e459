// Stands in for @fastify/session's `lib/store.js` (its default MemoryStore) and for its tests' TestStore
// (a MemoryStore that copies what it stores): a GeoSessionStore on the machine's Redis, empty when made.
// A Map passed to the constructor is ignored: the tests that read it are in skips.json.
'use strict';

const { GeoSessionStore, storeOptions } = require('./geo.cjs');

class Store extends GeoSessionStore {
  constructor() {
    super(storeOptions());
  }
}

module.exports = Store;
module.exports.default = Store;
module.exports.Store = Store;
module.exports.MemoryStore = Store;
