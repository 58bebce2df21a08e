/**
 * Cookie layout (64 bits), so that one masked delete removes everything an object owns:
 *   63..56  app id (1..255; 0 is never ours)
 *   55      ephemeral: reactive flows (learned, idle-timed) the reconciler leaves alone
 *   54..0   owner id: a stable hash of the owning object's key (port, subnet, rule…)
 */
export const APP_SHIFT = 56n;
export const EPHEMERAL_BIT = 1n << 55n;
const OWNER_MASK = (1n << 55n) - 1n;

export const APP_MASK = 0xffn << APP_SHIFT;
export const OWNER_COOKIE_MASK = APP_MASK | EPHEMERAL_BIT | OWNER_MASK;

/** FNV-1a 64-bit, truncated to 55 bits: stable across restarts and processes. */
export function ownerHash(key: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < key.length; i++) {
    h ^= BigInt(key.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h & OWNER_MASK;
}

export function makeCookie(appId: number, owner: string, ephemeral = false): bigint {
  if (!Number.isInteger(appId) || appId < 1 || appId > 255) throw new RangeError(`app id ${appId} outside 1..255`);
  return (BigInt(appId) << APP_SHIFT) | (ephemeral ? EPHEMERAL_BIT : 0n) | ownerHash(owner);
}

export function appOfCookie(cookie: bigint): number {
  return Number((cookie & APP_MASK) >> APP_SHIFT);
}

export function isEphemeral(cookie: bigint): boolean {
  return (cookie & EPHEMERAL_BIT) !== 0n;
}

/** cookie/mask pair selecting every flow of one app */
export function appCookieMatch(appId: number): { cookie: bigint; cookieMask: bigint } {
  return { cookie: BigInt(appId) << APP_SHIFT, cookieMask: APP_MASK };
}
