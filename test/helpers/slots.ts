import { hashTagOf } from '../../src/wire/internal-keys.js';

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for key slots. Written from the spec. */
export function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of `key`, hash tags included, as the Redis Cluster specification defines it. */
export function slotOf(key: string): number {
  const tag = hashTagOf(key);
  return crc16(Buffer.from(tag ?? key, 'utf8')) % 16384;
}
