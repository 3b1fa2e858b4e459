import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

/** The parts of express-session's module that the store uses. */
export interface ExpressSessionModule {
  Store: typeof EventEmitter & {
    prototype: { createSession(req: unknown, session: unknown): unknown };
  };
}

/**
 * express-session's module when the app has it installed, else `undefined`. It is an optional peer:
 * a fastify app does not need it, and then the store is a plain EventEmitter.
 */
export function loadExpressSession(): ExpressSessionModule | undefined {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('express-session') as Partial<ExpressSessionModule>;
    return typeof mod.Store === 'function' ? (mod as ExpressSessionModule) : undefined;
  } catch {
    return undefined;
  }
}
