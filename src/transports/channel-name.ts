import { createHash } from 'node:crypto';

/**
 * The one channel-name encoder: a channel (a store's key prefix: any string, often with ':' or empty)
 * as a broker name part. Characters in `keep` stay, every other byte becomes `_xx` (hex), the empty
 * channel becomes `empty`. Injective, so distinct prefixes never share an exchange, queue, stream or
 * subject; a result longer than `maxLength` keeps a readable head and a SHA-1 digest of the channel.
 */
export function encodeChannel(channel: string, keep: RegExp, empty: string, maxLength: number): string {
  if (channel === '') return empty;
  let out = '';
  for (const byte of Buffer.from(channel, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += keep.test(ch) ? ch : `_${byte.toString(16).padStart(2, '0')}`;
  }
  if (out.length <= maxLength) return out;
  const digest = createHash('sha1').update(channel).digest('hex');
  const head = Math.max(0, maxLength - digest.length - 2);
  return `${out.slice(0, head)}_h${digest}`.slice(0, maxLength);
}
