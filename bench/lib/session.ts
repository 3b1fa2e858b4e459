import { randomBytes } from 'node:crypto';

/** One day, express-session's usual `cookie.maxAge`. */
export const MAX_AGE_MS = 86_400_000;

/** The session shape stores receive: plain data plus a cookie whose `expires` is a Date. */
export interface BenchSession {
  cookie: {
    originalMaxAge: number;
    expires: Date;
    secure: boolean;
    httpOnly: boolean;
    path: string;
    sameSite: string;
  };
  userId: string;
  email: string;
  roles: string[];
  csrfSecret: string;
  locale: string;
  cart: { sku: string; qty: number; priceCents: number }[];
  views: number;
  lastSeen: number;
  flash: Record<string, string[]>;
  [key: string]: unknown;
}

/**
 * A realistic logged-in express-session session of about 500 bytes once serialized: the cookie
 * express-session stores, a user id and e-mail, roles, a CSRF secret, a two-item cart, counters.
 */
export function makeSession(index: number, now = Date.now()): BenchSession {
  return {
    cookie: {
      originalMaxAge: MAX_AGE_MS,
      expires: new Date(now + MAX_AGE_MS),
      secure: true,
      httpOnly: true,
      path: '/',
      sameSite: 'lax',
    },
    userId: `usr_${String(index).padStart(10, '0')}`,
    email: `customer.${index}@shop.example.com`,
    roles: ['customer', 'newsletter', 'beta-checkout'],
    csrfSecret: randomBytes(18).toString('base64url'),
    locale: 'en-GB',
    cart: [
      { sku: 'SKU-000124-BLU-M', qty: 1, priceCents: 2999 },
      { sku: 'SKU-004410-BLK-42', qty: 2, priceCents: 8950 },
    ],
    views: 1,
    lastSeen: now,
    flash: { info: ['Welcome back!'] },
  };
}

/** Serialized size of {@link makeSession} in bytes (for the report). */
export function sessionBytes(): number {
  return Buffer.byteLength(JSON.stringify(makeSession(123_456)));
}

/** A store callback, as express-session and @fastify/session pass it. */
export type Done = (err?: unknown, value?: unknown) => void;

/** The callback API express-session and @fastify/session use; every store measured implements it. */
export interface CallbackStore {
  get(sid: string, cb: Done): unknown;
  set(sid: string, session: unknown, cb: Done): unknown;
  touch(sid: string, session: unknown, cb: Done): unknown;
  destroy(sid: string, cb: Done): unknown;
}
