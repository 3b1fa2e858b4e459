/**
 * Redis Cluster key slots (CRC16-XMODEM of the key, or of its hash tag, modulo 16384), written from the
 * Redis Cluster specification. Used to group the keys of one call by slot, so that each script call
 * or multi-key command stays in one slot.
 */
import { hashTagOf } from '../wire/internal-keys.js';

/** Number of slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The slot of `key` as Redis sees it (the client's `keyPrefix` included by the caller). */
export function clusterSlot(key: string): number {
  return crc16(Buffer.from(hashTagOf(key) ?? key, 'utf8')) % CLUSTER_SLOTS;
}

/** `items` grouped by the slot of `keyOf(item)`, in first-seen order. */
export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = clusterSlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}
