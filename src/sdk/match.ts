import type { Match, OxmFieldName, OxmTlv, OxmValueTypes } from '../openflow';
import { allFieldSpecs, fieldSpec, formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6, parseMac } from '../openflow';
import { FlowBuildError } from './errors';
import { exactTlv, sharedMatch } from './intern';

export type Masked<V> = { value: V; mask: V };
/** Ergonomic match input: `{ eth_type: 0x0800, ipv4_dst: cidr('10.0.1.0/24') }` */
export type MatchSpec = { [F in OxmFieldName]?: OxmValueTypes[F] | Masked<OxmValueTypes[F]> };

export function cidr(text: string): Masked<string> {
  const [addr, lenText] = text.split('/');
  const v6 = addr!.includes(':');
  const bits = v6 ? 128 : 32;
  const len = lenText === undefined ? bits : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > bits) throw new FlowBuildError(`bad prefix length in '${text}'`);
  const mask = Buffer.alloc(bits / 8);
  for (let i = 0; i < len; i++) mask[i >> 3]! |= 0x80 >> (i & 7);
  return { value: addr!, mask: v6 ? formatIpv6(mask) : formatIpv4(mask) };
}

/** Which address form a string value has, so masks can be applied bytewise. */
function addrCodec(v: string): { parse(s: string): Buffer; format(b: Buffer): string } {
  if (v.includes(':') && v.length === 17 && !v.includes('::')) return { parse: parseMac, format: (b) => formatMac(b) };
  if (v.includes(':')) return { parse: parseIpv6, format: (b) => formatIpv6(b) };
  return { parse: parseIpv4, format: (b) => formatIpv4(b) };
}

type Scalar = number | bigint | string;

/**
 * Put a value/mask pair in the form OVS reports it back: value bits outside the mask zeroed,
 * an all-ones mask dropped, and an all-zero mask meaning "no match on this field" (null).
 */
function canonicalPair(field: string, value: Scalar, mask: Scalar | undefined): { value: Scalar; mask?: Scalar } | null {
  if (mask === undefined) return { value };
  if (typeof value === 'string' && typeof mask === 'string') {
    const codec = addrCodec(value);
    const v = codec.parse(value);
    const m = codec.parse(mask);
    if (m.every((b) => b === 0)) return null;
    for (let i = 0; i < v.length; i++) v[i]! &= m[i]!;
    return m.every((b) => b === 0xff) ? { value: codec.format(v) } : { value: codec.format(v), mask: codec.format(m) };
  }
  // all ones over the field's width (its meaningful bits or its whole bytes): OVS reports an exact match
  const spec = fieldSpec(field);
  if (typeof value === 'bigint' && typeof mask === 'bigint') {
    if (mask === 0n) return null;
    const full = spec && ((1n << BigInt(spec.bits)) - 1n === mask || (1n << BigInt(spec.bytes * 8)) - 1n === mask);
    return full ? { value } : { value: value & mask, mask };
  }
  if (typeof value === 'number' && typeof mask === 'number') {
    if (mask === 0) return null;
    const full = spec && (spec.maxNumber === mask || 2 ** (spec.bytes * 8) - 1 === mask);
    return full ? { value } : { value: (value & mask) >>> 0, mask };
  }
  throw new FlowBuildError(`value and mask of ${field} have different types`, { field });
}

/** Registry order is OXM field-number order, which puts every prerequisite (eth_type, ip_proto) first. */
const FIELD_ORDER = new Map(allFieldSpecs().map((s, i) => [s.name as string, i]));
/**
 * Scratch space of matchFromSpec (it calls nothing that builds a match): a spec's fields, their
 * ranks and TLVs. A flow is built per port and per packet-in; what it leaves behind besides
 * itself makes the young generation's pages sparse, and sparse pages are copied object by object,
 * not promoted whole.
 */
const fields: string[] = [];
const ranks: number[] = [];
const tlvs: OxmTlv[] = [];

/** `fields[0..n)` in registry order: an insertion sort, as specs are short and most nearly in order */
function sortInFieldOrder(n: number): void {
  for (let i = 0; i < n; i++) ranks[i] = FIELD_ORDER.get(fields[i]!) ?? Number.MAX_SAFE_INTEGER;
  for (let i = 1; i < n; i++) {
    const field = fields[i]!;
    const rank = ranks[i]!;
    let j = i - 1;
    for (; j >= 0 && ranks[j]! > rank; j--) {
      fields[j + 1] = fields[j]!;
      ranks[j + 1] = ranks[j]!;
    }
    fields[j + 1] = field;
    ranks[j + 1] = rank;
  }
}

/** whether `items` are already in order: most are, and a sort allocates even then */
function sorted<T>(items: readonly T[], order: (a: T, b: T) => number): boolean {
  for (let i = 1; i < items.length; i++) if (order(items[i - 1]!, items[i]!) > 0) return false;
  return true;
}
const inTextOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Match TLVs from a spec, canonical as above, in registry order: OVS checks prerequisites while it
 * parses a match, so `arp_op` before `eth_type` is refused (OFPBMC_BAD_PREREQ).
 */
export function matchFromSpec(spec: MatchSpec): Match {
  let n = 0;
  // for-in reads V8's enum cache; Object.keys would copy it into a new array
  for (const field in spec) fields[n++] = field;
  sortInFieldOrder(n);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const field = fields[i] as OxmFieldName;
    const raw = spec[field];
    // a field given as undefined (an absent address, say) would silently match everything
    if (raw === undefined) throw new FlowBuildError(`match field ${field} is undefined: leave the field out to wildcard it`, { field });
    if (!(typeof raw === 'object' && raw !== null && 'mask' in raw)) tlvs[kept++] = exactTlv(field, raw);
    else {
      const pair = canonicalPair(field, raw.value, raw.mask);
      // an all-zero mask matches everything: no TLV
      if (pair) tlvs[kept++] = { field, ...pair } as OxmTlv;
    }
  }
  // a copy exactly as long as the match, of V8's packed kind (push leaves spare slots, and a
  // region keeps 100,000s of matches), or a shared one
  return sharedMatch(tlvs, kept);
}

function scalarText(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return String(v);
}

/** A key equal for two matches exactly when OVS treats them as the same match. */
export function matchKey(m: Match): string {
  const parts: string[] = [];
  for (const tlv of m) {
    if (tlv.field === 'unknown') {
      parts.push(`?${tlv.oxmClass}:${tlv.oxmField}:${tlv.experimenter ?? ''}=${tlv.payload.toString('hex')}`);
      continue;
    }
    const pair = canonicalPair(tlv.field, tlv.value as Scalar, tlv.mask as Scalar | undefined);
    if (!pair) continue;
    parts.push(pair.mask === undefined ? `${tlv.field}=${scalarText(pair.value)}` : `${tlv.field}=${scalarText(pair.value)}/${scalarText(pair.mask)}`);
  }
  return (sorted(parts, inTextOrder) ? parts : parts.sort()).join(',');
}

/** value of a field in a match, if matched exactly */
export function matchValue<F extends OxmFieldName>(m: Match, field: F): OxmValueTypes[F] | undefined {
  for (const tlv of m) if (tlv.field === field && tlv.mask === undefined) return tlv.value as OxmValueTypes[F];
  return undefined;
}

/** NXM aliases address the same packet field as their standard twin. */
const ALIASES: Record<string, string> = {
  nxm_of_ip_src: 'ipv4_src',
  nxm_of_ip_dst: 'ipv4_dst',
  nxm_of_icmp_type: 'icmpv4_type',
  nxm_of_icmp_code: 'icmpv4_code',
  nxm_nx_tun_id: 'tunnel_id',
};

export function canonicalField(name: string): string {
  return ALIASES[name] ?? name.replace(/^nxm_(of|nx)_/, '');
}
