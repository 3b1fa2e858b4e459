import type { GeoSessionStore } from '../../src/session/store.js';

/** Remembers Set-Cookie values and sends them back, like a browser for one host. */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  /** Set-Cookie lines of the last response. */
  lastSetCookie: string[] = [];

  absorb(res: globalThis.Response): void {
    this.lastSetCookie = res.headers.getSetCookie();
    for (const line of this.lastSetCookie) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [k = '', v = ''] = a.split('=');
        return k.trim().toLowerCase() === 'expires' && Date.parse(v) <= Date.now();
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  clone(): CookieJar {
    const copy = new CookieJar();
    for (const [k, v] of this.cookies) copy.cookies.set(k, v);
    return copy;
  }
}

/** Wraps store methods to record their names in `calls`. */
export function recordCalls(store: GeoSessionStore, calls: string[]): void {
  const target = store as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of ['get', 'set', 'touch', 'destroy']) {
    const original = target[name]?.bind(store);
    if (!original) continue;
    target[name] = (...args: unknown[]) => {
      calls.push(name);
      return original(...args);
    };
  }
}
