// Stands in for express-session's `session/memory.js` (its MemoryStore, also its default store): a
// GeoSessionStore on the machine's Redis, empty when made.
'use strict';

const { GeoSessionStore, storeOptions } = require('./geo.cjs');

class MemoryStore extends GeoSessionStore {
  constructor() {
    super(storeOptions());
  }
}

module.exports = MemoryStore;
