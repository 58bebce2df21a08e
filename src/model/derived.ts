/**
 * Values derived from the model that every switch must agree on: the tunnel key layout and the
 * per-VPC keys of ports and subnets. Pure functions of the model: every controller, worker and
 * replica computes the same keys, after every restart, with no state of its own.
 *
 * A packet between hypervisors carries, in its Geneve header (docs/pipeline.md):
 *   VNI (24 bits)            the VPC's vni, 1..16,777,215
 *   one option of 4 bytes    the egress key (tun_metadata0 on every bridge):
 *     0x00000001..0x7fffffff   the destination port within its VPC
 *     0x80000000..0xfffffffe   a subnet's flood domain
 *
 * A key is the object's pinned `tunnelKey`, else a hash of its name into its range. It depends on
 * nothing else, so adding or removing an object never changes another object's key. Two objects of
 * a VPC whose keys coincide make the model invalid (validation names both and a free key to pin);
 * resolving such a collision by probing would have to move one of them, or remember which came
 * first, which a model file cannot tell.
 */

export interface KeyRange {
  readonly min: number;
  readonly max: number;
}

export const VNI_MAX = 0xff_ffff;
export const PORT_KEYS: KeyRange = { min: 0x0000_0001, max: 0x7fff_ffff };
export const FLOOD_KEYS: KeyRange = { min: 0x8000_0000, max: 0xffff_fffe };
/** every hypervisor's tunnel port is pinned to this OpenFlow port number, so VM ports may not use it */
export const TUNNEL_OFPORT = 4000;
/** conntrack zones are 16 bits and zone 0 is everyone's default */
const CT_ZONES = 0xffff;

/**
 * A VPC's conntrack zone, 1..65535. VPCs whose zones coincide must not share a hypervisor, which
 * validation checks.
 */
export function conntrackZone(vni: number): number {
  return ((vni - 1) % CT_ZONES) + 1;
}

/** Two keyed objects with the same key; validation rejects such models first. */
export class TunnelKeyError extends Error {
  override readonly name = 'TunnelKeyError';
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface Keyed {
  readonly name: string;
  readonly tunnelKey?: number | undefined;
}

/** the key a name hashes to in a range */
export function derivedKey(name: string, range: KeyRange): number {
  return range.min + (fnv1a32(name) % (range.max - range.min + 1));
}

export function keyOf(item: Keyed, range: KeyRange): number {
  return item.tunnelKey ?? derivedKey(item.name, range);
}

/** Every object's key (pinned, else derived); objects of one VPC must not collide. */
export function assignKeys(items: readonly Keyed[], range: KeyRange): Map<string, number> {
  const keys = new Map<string, number>();
  const owners = new Map<number, string>();
  for (const item of items) {
    const key = keyOf(item, range);
    const other = owners.get(key);
    if (other !== undefined) throw new TunnelKeyError(`'${item.name}' and '${other}' have the same tunnel key ${key}`);
    owners.set(key, item.name);
    keys.set(item.name, key);
  }
  return keys;
}

export interface KeyCollision {
  /** index of the later object, and of the one that has the key first */
  readonly index: number;
  readonly first: number;
  readonly key: number;
  /** a key no object of the list has, to pin on one of the two */
  readonly free: number;
}

/** The objects whose key an earlier object of the list already has. */
export function keyCollisions(items: readonly Keyed[], range: KeyRange): KeyCollision[] {
  const owners = new Map<number, number>();
  const clashes: { index: number; first: number; key: number }[] = [];
  items.forEach((item, index) => {
    const key = keyOf(item, range);
    const first = owners.get(key);
    if (first === undefined) owners.set(key, index);
    else clashes.push({ index, first, key });
  });
  return clashes.map((c) => {
    let free = c.key;
    do free = free === range.max ? range.min : free + 1;
    while (owners.has(free));
    owners.set(free, c.index); // two suggestions never name the same key
    return { ...c, free };
  });
}
