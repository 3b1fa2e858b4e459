/**
 * Reading one cookie out of a `Cookie` request header, the way express-session and @fastify/cookie read it
 * (both through the `cookie` package), so that a service outside those frameworks picks the same value
 * the app would.
 */

/** A `Cookie` header as Node hands it over: a string over HTTP/1.1, possibly several over HTTP/2. */
export type CookieHeader = string | readonly string[] | null | undefined;

/** Space and horizontal tab, the only characters trimmed around names and values. */
function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** `text.slice(start, end)` without the spaces and tabs at either end. */
function trimmedSlice(text: string, start: number, end: number): string {
  let from = start;
  let to = end;
  while (from < to && isBlank(text.charCodeAt(from))) from++;
  while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}

/** Joins HTTP/2 cookie crumbs (RFC 9113 8.2.3) into one header; anything that is not text counts as none. */
function headerText(header: unknown): string | undefined {
  if (typeof header === 'string') return header;
  if (!Array.isArray(header)) return undefined;
  const crumbs = header.filter((crumb): crumb is string => typeof crumb === 'string');
  return crumbs.length > 0 ? crumbs.join('; ') : undefined;
}

/**
 * The raw value of the first cookie called `name` in `header`, or `undefined` when there is none.
 *
 * Pairs are separated by `;`; a piece without `=` is skipped; spaces and tabs around names and values are
 * ignored; names match exactly (case-sensitive, never percent-decoded); one pair of surrounding double
 * quotes is removed from the value (RFC 6265 allows a quoted cookie value). When a name appears more than
 * once the first wins, as in the `cookie` package, so a service and the app agree on which one counts.
 * The value is returned as it is on the wire: percent-decoding is the caller's choice.
 */
export function readCookie(header: unknown, name: string): string | undefined {
  const text = headerText(header);
  if (text === undefined) return undefined;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf(';', start);
    if (end === -1) end = text.length;
    const eq = text.indexOf('=', start);
    if (eq !== -1 && eq < end && trimmedSlice(text, start, eq) === name) {
      const value = trimmedSlice(text, eq + 1, end);
      const quoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"');
      return quoted ? value.slice(1, -1) : value;
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * Percent-decodes a cookie value as the `cookie` package does (only when it holds a `%`), but answers
 * `undefined` for a malformed escape instead of passing the raw text on: a value that does not decode was
 * not written by express-session or @fastify/session, and must not be verified in some other spelling.
 */
export function decodeCookieValue(value: string): string | undefined {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
