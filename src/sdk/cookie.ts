/**
 * Cookie layout (64 bits), so that one masked delete removes everything an object owns:
 *   63..56  app id (1..255; 0 is never ours)
 *   55      ephemeral: reactive flows (learned, idle-timed) the reconciler leaves alone
 *   54..0   owner id: a stable hash of the owning object's key (port, subnet, rule…)
 */
export const APP_SHIFT = 56n;
export const EPHEMERAL_BIT = 1n << 55n;

export const APP_MASK = 0xffn << APP_SHIFT;
/** the app id of flows the pipeline itself owns (table-miss flows) */
export const PIPELINE_APP_ID = 1;

/**
 * The cookie's 8 bytes, big-endian. Hash and cookie are assembled here and become a bigint in one
 * step: BigInt shifts and ors allocate, and the runtime makes a cookie for every flow it builds.
 */
const cookieBytes = new DataView(new ArrayBuffer(8));

/**
 * FNV-1a 64-bit, truncated to 55 bits, into cookieBytes: stable across restarts and processes.
 * Computed in four 16-bit limbs (every product stays exact in a double).
 */
function hashIntoCookieBytes(key: string): void {
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < key.length; i++) {
    h0 ^= key.charCodeAt(i);
    // × 0x100000001b3 = × 0x1b3 + (× 0x100 << 32), mod 2^64
    const r0 = h0 * 0x1b3;
    const r1 = h1 * 0x1b3 + (r0 >>> 16);
    const r2 = h2 * 0x1b3 + h0 * 0x100 + (r1 >>> 16);
    const r3 = h3 * 0x1b3 + h1 * 0x100 + Math.floor(r2 / 0x10000);
    h0 = r0 & 0xffff;
    h1 = r1 & 0xffff;
    h2 = r2 & 0xffff;
    h3 = r3 & 0xffff;
  }
  cookieBytes.setUint16(0, h3 & 0x7f);
  cookieBytes.setUint16(2, h2);
  cookieBytes.setUint16(4, h1);
  cookieBytes.setUint16(6, h0);
}

/** The owner id of `key`: FNV-1a 64-bit truncated to 55 bits. */
export function ownerHash(key: string): bigint {
  hashIntoCookieBytes(key);
  return cookieBytes.getBigUint64(0);
}

export function makeCookie(appId: number, owner: string, ephemeral = false): bigint {
  if (!Number.isInteger(appId) || appId < 1 || appId > 255) throw new RangeError(`app id ${appId} outside 1..255`);
  hashIntoCookieBytes(owner);
  // the app id is byte 0 (bits 63..56), the ephemeral bit the top bit of byte 1 (bit 55)
  cookieBytes.setUint8(0, appId);
  if (ephemeral) cookieBytes.setUint8(1, cookieBytes.getUint8(1) | 0x80);
  return cookieBytes.getBigUint64(0);
}

export function appOfCookie(cookie: bigint): number {
  return Number((cookie & APP_MASK) >> APP_SHIFT);
}

export function isEphemeral(cookie: bigint): boolean {
  return (cookie & EPHEMERAL_BIT) !== 0n;
}

