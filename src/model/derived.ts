/**
 * Values derived from the model that every switch must agree on: the tunnel key layout and the
 * per-VPC keys of ports and subnets. Deterministic: the same model gives the same keys on every
 * controller, after every restart.
 *
 * Tunnel key (24 bits, the Geneve VNI) = vni << 12 | egress key, where the egress key is
 *   1..0xeff      the destination port within its VPC (3839 ports per VPC)
 *   0xf00..0xffe  a subnet's flood domain (255 subnets per VPC)
 */

export interface KeyRange {
  readonly min: number;
  readonly max: number;
}

export const EGRESS_KEY_BITS = 12;
export const PORT_KEYS: KeyRange = { min: 0x001, max: 0xeff };
export const FLOOD_KEYS: KeyRange = { min: 0xf00, max: 0xffe };
/** every hypervisor's tunnel port is pinned to this OpenFlow port number, so VM ports may not use it */
export const TUNNEL_OFPORT = 4000;

export function tunnelKey(vni: number, egressKey: number): bigint {
  return BigInt((vni << EGRESS_KEY_BITS) | egressKey);
}

/** More keyed objects than a range holds; validation rejects such models first. */
export class TunnelKeyError extends Error {
  override readonly name = 'TunnelKeyError';
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Keys for named objects within one range: a pinned key is kept; every other name hashes to a slot
 * and probes linearly, names taken in sorted order so the result never depends on model order.
 * (A new name that collides and sorts first can move an unpinned neighbour: pin keys to prevent it.)
 */
export function assignKeys(items: readonly { name: string; pinned?: number }[], range: KeyRange): Map<string, number> {
  const size = range.max - range.min + 1;
  if (items.length > size) throw new TunnelKeyError(`${items.length} objects do not fit ${size} keys`);
  const taken = new Uint8Array(size);
  const keys = new Map<string, number>();
  const unpinned: string[] = [];
  for (const it of items) {
    if (it.pinned === undefined) {
      unpinned.push(it.name);
    } else {
      taken[it.pinned - range.min] = 1;
      keys.set(it.name, it.pinned);
    }
  }
  for (const name of unpinned.sort()) {
    let slot = fnv1a32(name) % size;
    while (taken[slot]) slot = (slot + 1) % size;
    taken[slot] = 1;
    keys.set(name, range.min + slot);
  }
  return keys;
}
