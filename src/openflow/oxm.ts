// OXM TLVs and ofp_match (OpenFlow 1.3 §7.2.2), with the Nicira NXM classes and ONF experimenter fields
// that Open vSwitch speaks. One registry table drives decoding, encoding, field references and names.
import { formatIpv4, formatIpv6, formatMac, ipv4ToNumber, parseIpv6, writeMac } from './addr';
import { ONF_VENDOR_ID } from './constants';
import { OfDecodeError, OfEncodeError } from './errors';
import { type Reader, Writer } from './wire';

/** 'aa:bb:cc:dd:ee:ff', lower case */
export type MacAddr = string;
/** dotted quad */
export type Ipv4Addr = string;
/** compressed RFC 5952 text */
export type Ipv6Addr = string;

/** OXM classes */
export const OFPXMC_NXM_0 = 0x0000;
export const OFPXMC_NXM_1 = 0x0001;
export const OFPXMC_OPENFLOW_BASIC = 0x8000;
export const OFPXMC_PACKET_REGS = 0x8001;
/** OVS's ERICOXM_OF class: Ericsson's ND fields, with no experimenter id on the wire (OVS 2.11+) */
export const OFPXMC_ERICOXM_OF = 0x1000;
export const OFPXMC_EXPERIMENTER = 0xffff;

/** ofp_match type for OXM matches; the only one OF1.3 defines besides the deprecated standard match */
export const OFPMT_OXM = 1;
/** the vlan_vid bit that says "a VLAN tag is present" */
export const OFPVID_PRESENT = 0x1000;

/** How a field's value sits on the wire, and so which TypeScript type carries it (see KindValue). */
export const enum ValueKind {
  U8,
  U16,
  U24,
  U32,
  U64,
  U128,
  Mac,
  Ipv4,
  Ipv6,
}

interface KindValue {
  [ValueKind.U8]: number;
  [ValueKind.U16]: number;
  [ValueKind.U24]: number;
  [ValueKind.U32]: number;
  [ValueKind.U64]: bigint;
  [ValueKind.U128]: bigint;
  [ValueKind.Mac]: MacAddr;
  [ValueKind.Ipv4]: Ipv4Addr;
  [ValueKind.Ipv6]: Ipv6Addr;
}

/** bytes of one value, indexed by ValueKind */
const KIND_BYTES = [1, 2, 3, 4, 8, 16, 6, 4, 16] as const;

interface FieldDef<N extends string = string, K extends ValueKind = ValueKind> {
  readonly name: N;
  readonly oxmClass: number;
  readonly oxmField: number;
  readonly kind: K;
  /** meaningful bits; values (and masks) wider than this are refused when encoding */
  readonly bits: number;
  /** the width OVS gives the field in bit ranges (move, load, learn, stack), where it differs from `bits` */
  readonly refBits?: number;
  readonly maskable: boolean;
  /** class 0xffff only */
  readonly experimenter?: number;
  /** the pre-standard ONF encoding (EXT-256) puts a 2-byte type between the experimenter id and the value */
  readonly expType?: number;
  /**
   * The field's width on the wire varies (OVS's tun_metadataN). OVS writes it at its TLV mapping's
   * length in matches and with leading zero bytes dropped in set_field; we know it at `kind`'s
   * width and, in set_field, at that shortest width. Any other width decodes raw (UnknownOxm).
   */
  readonly variableLength?: boolean;
}

type Options = Partial<Pick<FieldDef, 'bits' | 'refBits' | 'maskable' | 'experimenter' | 'expType' | 'variableLength'>>;

function def<N extends string, K extends ValueKind>(
  oxmClass: number,
  oxmField: number,
  name: N,
  kind: K,
  opts: Options = {},
): FieldDef<N, K> {
  return { name, oxmClass, oxmField, kind, bits: KIND_BYTES[kind] * 8, maskable: false, ...opts };
}

const U8 = ValueKind.U8,
  U16 = ValueKind.U16,
  U24 = ValueKind.U24,
  U32 = ValueKind.U32,
  U64 = ValueKind.U64,
  U128 = ValueKind.U128,
  Mac = ValueKind.Mac,
  Ipv4 = ValueKind.Ipv4,
  Ipv6 = ValueKind.Ipv6;
const M = { maskable: true } as const;
const basic = <N extends string, K extends ValueKind>(f: number, n: N, k: K, o?: Options) => def(OFPXMC_OPENFLOW_BASIC, f, n, k, o);
const nxm0 = <N extends string, K extends ValueKind>(f: number, n: N, k: K, o?: Options) => def(OFPXMC_NXM_0, f, n, k, o);
const nxm1 = <N extends string, K extends ValueKind>(f: number, n: N, k: K, o?: Options) => def(OFPXMC_NXM_1, f, n, k, o);
const eric = <N extends string, K extends ValueKind>(f: number, n: N, k: K) => def(OFPXMC_ERICOXM_OF, f, n, k);
const xreg = <N extends string>(f: number, n: N) => def(OFPXMC_PACKET_REGS, f, n, U64, M);
const onf = <N extends string, K extends ValueKind>(f: number, n: N, k: K, o: Options = {}) =>
  def(OFPXMC_EXPERIMENTER, f, n, k, { experimenter: ONF_VENDOR_ID, ...o });

/**
 * Every field we know by name. Widths and maskability follow the OF1.3 spec and OVS's
 * meta-flow (ovs-fields(7)); where OVS accepts a mask the spec does not (transport ports,
 * ND fields) we accept it too, since OVS is the switch we drive. Names: the spec's (as Ryu
 * spells them) for class 0x8000, OVS's for Nicira-only fields, and 'nxm_of_*' / 'nxm_nx_*'
 * for NXM headers that duplicate a standard field, so every header has exactly one name.
 */
const FIELD_DEFS = [
  basic(0, 'in_port', U32),
  basic(1, 'in_phy_port', U32),
  basic(2, 'metadata', U64, M),
  basic(3, 'eth_dst', Mac, M),
  basic(4, 'eth_src', Mac, M),
  basic(5, 'eth_type', U16),
  // OFPVID_PRESENT rides in bit 12 of the value; OVS's field is the 12-bit VID ('OXM_OF_VLAN_VID[]' is 12 bits)
  basic(6, 'vlan_vid', U16, { bits: 13, refBits: 12, maskable: true }),
  basic(7, 'vlan_pcp', U8, { bits: 3 }),
  basic(8, 'ip_dscp', U8, { bits: 6 }),
  basic(9, 'ip_ecn', U8, { bits: 2 }),
  basic(10, 'ip_proto', U8),
  basic(11, 'ipv4_src', Ipv4, M),
  basic(12, 'ipv4_dst', Ipv4, M),
  basic(13, 'tcp_src', U16, M),
  basic(14, 'tcp_dst', U16, M),
  basic(15, 'udp_src', U16, M),
  basic(16, 'udp_dst', U16, M),
  basic(17, 'sctp_src', U16, M),
  basic(18, 'sctp_dst', U16, M),
  basic(19, 'icmpv4_type', U8),
  basic(20, 'icmpv4_code', U8),
  basic(21, 'arp_op', U16),
  basic(22, 'arp_spa', Ipv4, M),
  basic(23, 'arp_tpa', Ipv4, M),
  basic(24, 'arp_sha', Mac, M),
  basic(25, 'arp_tha', Mac, M),
  basic(26, 'ipv6_src', Ipv6, M),
  basic(27, 'ipv6_dst', Ipv6, M),
  basic(28, 'ipv6_flabel', U32, { bits: 20, maskable: true }),
  basic(29, 'icmpv6_type', U8),
  basic(30, 'icmpv6_code', U8),
  basic(31, 'ipv6_nd_target', Ipv6, M),
  basic(32, 'ipv6_nd_sll', Mac, M),
  basic(33, 'ipv6_nd_tll', Mac, M),
  basic(34, 'mpls_label', U32, { bits: 20 }),
  basic(35, 'mpls_tc', U8, { bits: 3 }),
  basic(36, 'mpls_bos', U8, { bits: 1 }),
  basic(37, 'pbb_isid', U24, M),
  basic(38, 'tunnel_id', U64, M),
  basic(39, 'ipv6_exthdr', U16, { bits: 9, maskable: true }),

  // an NA built in place from an NS: its R/S/O flags, and the SLL option retyped as TLL (OVS accepts set_field on nd_tll only when the match says NA)
  eric(1, 'nd_reserved', U32),
  eric(2, 'nd_options_type', U8),

  xreg(0, 'xreg0'),
  xreg(1, 'xreg1'),
  xreg(2, 'xreg2'),
  xreg(3, 'xreg3'),
  xreg(4, 'xreg4'),
  xreg(5, 'xreg5'),
  xreg(6, 'xreg6'),
  xreg(7, 'xreg7'),

  onf(0, 'pbb_uca', U8, { bits: 1, expType: 0x0a00 }),
  onf(42, 'tcp_flags', U16, { bits: 12, maskable: true }),
  onf(43, 'actset_output', U32),

  nxm0(0, 'nxm_of_in_port', U16),
  nxm0(1, 'nxm_of_eth_dst', Mac, M),
  nxm0(2, 'nxm_of_eth_src', Mac, M),
  nxm0(3, 'nxm_of_eth_type', U16),
  nxm0(4, 'vlan_tci', U16, M),
  nxm0(5, 'nw_tos', U8),
  nxm0(6, 'nxm_of_ip_proto', U8),
  nxm0(7, 'nxm_of_ip_src', Ipv4, M),
  nxm0(8, 'nxm_of_ip_dst', Ipv4, M),
  nxm0(9, 'nxm_of_tcp_src', U16, M),
  nxm0(10, 'nxm_of_tcp_dst', U16, M),
  nxm0(11, 'nxm_of_udp_src', U16, M),
  nxm0(12, 'nxm_of_udp_dst', U16, M),
  nxm0(13, 'nxm_of_icmp_type', U8),
  nxm0(14, 'nxm_of_icmp_code', U8),
  nxm0(15, 'nxm_of_arp_op', U16),
  nxm0(16, 'nxm_of_arp_spa', Ipv4, M),
  nxm0(17, 'nxm_of_arp_tpa', Ipv4, M),

  nxm1(0, 'reg0', U32, M),
  nxm1(1, 'reg1', U32, M),
  nxm1(2, 'reg2', U32, M),
  nxm1(3, 'reg3', U32, M),
  nxm1(4, 'reg4', U32, M),
  nxm1(5, 'reg5', U32, M),
  nxm1(6, 'reg6', U32, M),
  nxm1(7, 'reg7', U32, M),
  nxm1(8, 'reg8', U32, M),
  nxm1(9, 'reg9', U32, M),
  nxm1(10, 'reg10', U32, M),
  nxm1(11, 'reg11', U32, M),
  nxm1(12, 'reg12', U32, M),
  nxm1(13, 'reg13', U32, M),
  nxm1(14, 'reg14', U32, M),
  nxm1(15, 'reg15', U32, M),
  nxm1(16, 'nxm_nx_tun_id', U64, M),
  nxm1(17, 'nxm_nx_arp_sha', Mac, M),
  nxm1(18, 'nxm_nx_arp_tha', Mac, M),
  // OVS reports a move of ipv6_src/ipv6_dst with these headers, whichever we sent
  nxm1(19, 'nxm_nx_ipv6_src', Ipv6, M),
  nxm1(20, 'nxm_nx_ipv6_dst', Ipv6, M),
  nxm1(26, 'ip_frag', U8, { bits: 2, maskable: true }),
  nxm1(29, 'nw_ttl', U8),
  nxm1(31, 'tun_ipv4_src', Ipv4, M),
  nxm1(32, 'tun_ipv4_dst', Ipv4, M),
  nxm1(33, 'pkt_mark', U32, M),
  nxm1(37, 'conj_id', U32),
  // NXM_NX_TUN_METADATA0: a Geneve option, through the bridge's TLV map (messages/tlv-table.ts); 4 bytes here
  nxm1(40, 'tun_metadata0', U32, { maskable: true, variableLength: true }),
  nxm1(105, 'ct_state', U32, M),
  nxm1(106, 'ct_zone', U16),
  nxm1(107, 'ct_mark', U32, M),
  nxm1(108, 'ct_label', U128, M),
  nxm1(109, 'tun_ipv6_src', Ipv6, M),
  nxm1(110, 'tun_ipv6_dst', Ipv6, M),
  nxm1(111, 'xxreg0', U128, M),
  nxm1(112, 'xxreg1', U128, M),
  nxm1(113, 'xxreg2', U128, M),
  nxm1(114, 'xxreg3', U128, M),
  nxm1(119, 'ct_nw_proto', U8),
  nxm1(120, 'ct_nw_src', Ipv4, M),
  nxm1(121, 'ct_nw_dst', Ipv4, M),
  nxm1(122, 'ct_ipv6_src', Ipv6, M),
  nxm1(123, 'ct_ipv6_dst', Ipv6, M),
  nxm1(124, 'ct_tp_src', U16, M),
  nxm1(125, 'ct_tp_dst', U16, M),
] as const;

type FieldDefs = (typeof FIELD_DEFS)[number];

/** Value type of every named OXM field (standard, Nicira NXM_NX / NXM_OF, ONF), derived from the registry. */
export type OxmValueTypes = { [D in FieldDefs as D['name']]: KindValue[D['kind']] };
export type OxmFieldName = keyof OxmValueTypes;

export type NamedOxm = { [F in OxmFieldName]: { field: F; value: OxmValueTypes[F]; mask?: OxmValueTypes[F] } }[OxmFieldName];

/** An OXM we do not know by name: kept raw so it round-trips byte for byte. */
export interface UnknownOxm {
  field: 'unknown';
  oxmClass: number;
  oxmField: number;
  hasMask: boolean;
  /** present for class 0xffff */
  experimenter?: number;
  /** value and mask bytes as on the wire (after the experimenter id, if any) */
  payload: Buffer;
}

export type OxmTlv = NamedOxm | UnknownOxm;
/** An OF1.3 match (OFPMT_OXM): TLVs in wire order. */
export type Match = OxmTlv[];

/** Registry entry with the numbers the codec needs precomputed. */
export interface FieldSpec extends FieldDef<OxmFieldName> {
  /** bytes of one value (the mask has as many) */
  readonly bytes: number;
  /** bytes before the value: the experimenter id and any experimenter type */
  readonly prefixBytes: number;
  /** largest value (and mask) that fits `bits`, for the number-valued kinds */
  readonly maxNumber: number;
  /** the same for the bigint-valued kinds (u64, u128) */
  readonly maxBigint: bigint;
  /** the 32-bit header with hasmask=0 */
  readonly header: number;
}

function makeSpec(d: FieldDef): FieldSpec {
  const bytes = KIND_BYTES[d.kind];
  const prefixBytes = d.experimenter === undefined ? 0 : d.expType === undefined ? 4 : 6;
  const header = oxmHeader(d.oxmClass, d.oxmField, false, prefixBytes + bytes);
  const maxBigint = (1n << BigInt(d.bits)) - 1n;
  return { ...d, name: d.name as OxmFieldName, bytes, prefixBytes, maxNumber: 2 ** d.bits - 1, maxBigint, header };
}

export function oxmHeader(oxmClass: number, oxmField: number, hasMask: boolean, length: number): number {
  return ((oxmClass << 16) | (oxmField << 9) | (hasMask ? 0x100 : 0) | length) >>> 0;
}

/** index into the dense lookup table for the non-experimenter classes, -1 if the class has none */
function classSlot(oxmClass: number): number {
  switch (oxmClass) {
    case OFPXMC_OPENFLOW_BASIC:
      return 0;
    case OFPXMC_NXM_1:
      return 1;
    case OFPXMC_NXM_0:
      return 2;
    case OFPXMC_PACKET_REGS:
      return 3;
    case OFPXMC_ERICOXM_OF:
      return 4;
    default:
      return -1;
  }
}

const SPECS: readonly FieldSpec[] = FIELD_DEFS.map(makeSpec);
/** (slot << 7 | field) → spec */
const byClassField: (FieldSpec | undefined)[] = new Array(5 << 7).fill(undefined);
/** experimenter fields, few enough to scan */
const experimenterSpecs: FieldSpec[] = [];
const byName = new Map<string, FieldSpec>();
for (const s of SPECS) {
  if (byName.has(s.name)) throw new Error(`duplicate OXM field name ${s.name}`);
  byName.set(s.name, s);
  if (s.experimenter !== undefined) experimenterSpecs.push(s);
  else byClassField[(classSlot(s.oxmClass) << 7) | s.oxmField] = s;
}

/** The registry entry for a field name, or undefined. */
export function fieldSpec(name: string): FieldSpec | undefined {
  return byName.get(name);
}

/** All named fields, in registry order. */
export function allFieldSpecs(): readonly FieldSpec[] {
  return SPECS;
}

function lookup(oxmClass: number, oxmField: number): FieldSpec | undefined {
  const slot = classSlot(oxmClass);
  return slot < 0 ? undefined : byClassField[(slot << 7) | oxmField];
}

function lookupExperimenter(buf: Buffer, at: number, end: number, oxmField: number): FieldSpec | undefined {
  if (end - at < 4) return undefined;
  const experimenter = buf.readUInt32BE(at);
  for (const s of experimenterSpecs) {
    if (s.oxmField !== oxmField || s.experimenter !== experimenter) continue;
    if (s.expType === undefined) return s;
    if (end - at >= 6 && buf.readUInt16BE(at + 4) === s.expType) return s;
  }
  return undefined;
}

/**
 * A reference to a field by its 32-bit OXM/NXM header (class, field, hasmask=0, length),
 * as reg_move, reg_load, learn and stack actions carry it. `name` is derived from the header;
 * NXM (class 0x0000/0x0001) and OXM (0x8000) headers for the same field get distinct names
 * (e.g. 'eth_dst' for 0x80000606, 'nxm_of_eth_dst' for 0x00000206) so re-encoding is exact.
 */
export interface FieldRef {
  name: string;
  header: number;
}

/** The header for a field name; throws OfEncodeError if unknown or not addressable by a 32-bit header. */
export function fieldRef(name: string): FieldRef {
  const spec = byName.get(name);
  if (!spec) throw new OfEncodeError(`unknown field '${name}'`, { field: name });
  if (spec.experimenter !== undefined) {
    throw new OfEncodeError(`${name}: experimenter fields cannot be referenced by a 32-bit header`, { field: name });
  }
  return { name, header: spec.header };
}

/** The FieldRef for a header read off the wire; unknown headers get a name like 'oxm_0x12345678'. */
export function fieldRefFromHeader(header: number): FieldRef {
  header >>>= 0;
  const spec = lookup(header >>> 16, (header >>> 9) & 0x7f);
  if (spec && spec.header === header) return { name: spec.name, header };
  return { name: `oxm_0x${header.toString(16).padStart(8, '0')}`, header };
}

/** width of a field in bits as bit ranges address it: the known field's width, else 8 × the header's value length */
export function fieldBits(header: number): number {
  header >>>= 0;
  const spec = lookup(header >>> 16, (header >>> 9) & 0x7f);
  if (spec && spec.header === header) return spec.refBits ?? spec.bits;
  const length = header & 0xff;
  const valueBytes = (header & 0x100) !== 0 ? length >>> 1 : length;
  return valueBytes * 8;
}

const HEADER_BYTES = 4;

/**
 * How a variable-length field is written: at its full width (matches) or in the fewest bytes that
 * hold its value and mask (set_field and reg_load2, as OVS writes them).
 */
export type OxmWidth = 'full' | 'shortest';

/** bytes from the first non-zero one of `bytes` bytes at `at` to the end (OVS writes a set_field of 0 in none) */
function significantBytes(b: Buffer, at: number, bytes: number): number {
  let i = 0;
  while (i < bytes && b[at + i] === 0) i++;
  return bytes - i;
}

/** One OXM TLV. Any structural problem is a 'bad_oxm', a value wider than its field a 'bad_value', at the TLV's offset. */
export function decodeOxm(r: Reader, width: OxmWidth = 'full'): OxmTlv {
  const start = r.offset;
  if (r.remaining < HEADER_BYTES) {
    throw new OfDecodeError('bad_oxm', `OXM header needs 4 bytes, ${r.remaining} left`, { offset: start });
  }
  const header = r.u32();
  const oxmClass = header >>> 16;
  const oxmField = (header >>> 9) & 0x7f;
  const hasMask = (header & 0x100) !== 0;
  const length = header & 0xff;
  if (length > r.remaining) {
    throw new OfDecodeError('bad_oxm', `OXM 0x${header.toString(16)} length ${length} overruns its container (${r.remaining} left)`, {
      offset: start,
    });
  }
  const buf = r.buf;
  const at = r.pos;
  const spec = oxmClass === OFPXMC_EXPERIMENTER ? lookupExperimenter(buf, at, at + length, oxmField) : lookup(oxmClass, oxmField);
  if (!spec) return decodeUnknown(r, oxmClass, oxmField, hasMask, length, start);

  if (spec.variableLength && width === 'shortest') return decodeShortest(r, spec, hasMask, length, start);
  const bytes = spec.bytes;
  if (length !== spec.prefixBytes + (hasMask ? 2 * bytes : bytes)) {
    if (spec.variableLength) return decodeUnknown(r, oxmClass, oxmField, hasMask, length, start);
    throw new OfDecodeError('bad_oxm', `${spec.name}: length ${length}, expected ${spec.prefixBytes + (hasMask ? 2 * bytes : bytes)}`, {
      offset: start,
    });
  }
  if (hasMask && !spec.maskable) {
    throw new OfDecodeError('bad_oxm', `${spec.name} cannot be masked`, { offset: start });
  }
  r.pos = at + length;
  const valueAt = at + spec.prefixBytes;
  const value = readValue(spec.kind, buf, valueAt);
  // bigints always fill their bytes; numbers may have fewer meaningful bits (vlan_pcp, ip_dscp, mpls_label…)
  if (typeof value === 'number' && value > spec.maxNumber) throw tooWide(spec, 'value', value, start);
  if (!hasMask) return { field: spec.name, value } as NamedOxm;
  if (hasBitsOutsideMask(buf, valueAt, bytes)) {
    throw new OfDecodeError('bad_oxm', `${spec.name}: value has bits set outside its mask`, { offset: start });
  }
  const mask = readValue(spec.kind, buf, valueAt + bytes);
  if (typeof mask === 'number' && mask > spec.maxNumber) throw tooWide(spec, 'mask', mask, start);
  return { field: spec.name, value, mask } as NamedOxm;
}

/** A variable-length number field written in its shortest width; any other width stays raw so it re-encodes exactly. */
function decodeShortest(r: Reader, spec: FieldSpec, hasMask: boolean, length: number, start: number): OxmTlv {
  const n = hasMask ? length / 2 : length;
  const at = r.pos;
  const padded = Buffer.alloc(hasMask ? 2 * spec.bytes : spec.bytes);
  if (Number.isInteger(n) && n <= spec.bytes) {
    r.buf.copy(padded, spec.bytes - n, at, at + n);
    if (hasMask) r.buf.copy(padded, 2 * spec.bytes - n, at + n, at + 2 * n);
  }
  const shortest = Math.max(significantBytes(padded, 0, spec.bytes), hasMask ? significantBytes(padded, spec.bytes, spec.bytes) : 0);
  const valid = Number.isInteger(n) && n === shortest && (!hasMask || spec.maskable) && !(hasMask && hasBitsOutsideMask(padded, 0, spec.bytes));
  if (!valid) return decodeUnknown(r, spec.oxmClass, spec.oxmField, hasMask, length, start);
  r.pos = at + length;
  const value = readValue(spec.kind, padded, 0);
  return (hasMask ? { field: spec.name, value, mask: readValue(spec.kind, padded, spec.bytes) } : { field: spec.name, value }) as NamedOxm;
}

function tooWide(spec: FieldSpec, what: 'value' | 'mask', v: number, offset: number): OfDecodeError {
  return new OfDecodeError('bad_value', `${spec.name}: ${what} ${v} is wider than ${spec.bits} bits`, { offset });
}

function decodeUnknown(r: Reader, oxmClass: number, oxmField: number, hasMask: boolean, length: number, start: number): UnknownOxm {
  if (oxmClass !== OFPXMC_EXPERIMENTER) return { field: 'unknown', oxmClass, oxmField, hasMask, payload: r.copy(length) };
  if (length < 4) {
    throw new OfDecodeError('bad_oxm', `experimenter OXM length ${length} is shorter than its experimenter id`, { offset: start });
  }
  const experimenter = r.u32();
  return { field: 'unknown', oxmClass, oxmField, hasMask, experimenter, payload: r.copy(length - 4) };
}

function readValue(kind: ValueKind, b: Buffer, at: number): number | bigint | string {
  switch (kind) {
    case ValueKind.U8:
      return b[at]!;
    case ValueKind.U16:
      return (b[at]! << 8) | b[at + 1]!;
    case ValueKind.U24:
      return (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
    case ValueKind.U32:
      return b.readUInt32BE(at);
    case ValueKind.U64:
      return b.readBigUInt64BE(at);
    case ValueKind.U128:
      return (b.readBigUInt64BE(at) << 64n) | b.readBigUInt64BE(at + 8);
    case ValueKind.Mac:
      return formatMac(b, at);
    case ValueKind.Ipv4:
      return formatIpv4(b, at);
    case ValueKind.Ipv6:
      return formatIpv6(b, at);
  }
}

export function encodeOxm(w: Writer, tlv: OxmTlv, width: OxmWidth = 'full'): void {
  if (tlv.field === 'unknown') return encodeUnknown(w, tlv);
  const spec = byName.get(tlv.field);
  if (!spec) throw new OfEncodeError(`unknown OXM field '${tlv.field as string}'`, { field: tlv.field });
  const hasMask = tlv.mask !== undefined;
  if (hasMask && !spec.maskable) throw new OfEncodeError(`${spec.name} cannot be masked`, { field: spec.name });
  if (spec.variableLength && width === 'shortest') return encodeShortest(w, spec, tlv);
  const length = spec.prefixBytes + (hasMask ? 2 * spec.bytes : spec.bytes);
  // header (with any experimenter prefix) from the spec's precomputed one: no per-field checks
  const at = w.claim(HEADER_BYTES);
  const header = hasMask ? oxmHeader(spec.oxmClass, spec.oxmField, true, length) : spec.header;
  const b = w.buf;
  b[at] = header >>> 24;
  b[at + 1] = (header >>> 16) & 0xff;
  b[at + 2] = (header >>> 8) & 0xff;
  b[at + 3] = header & 0xff;
  if (spec.experimenter !== undefined) w.u32(spec.experimenter);
  if (spec.expType !== undefined) w.u16(spec.expType);
  const valueAt = w.pos;
  writeValue(w, spec, tlv.value, 'value');
  if (!hasMask) return;
  writeValue(w, spec, tlv.mask, 'mask');
  // OF1.3 requires value bits under a 0 mask bit to be 0 and switches reject the TLV otherwise
  // (OFPBMC_BAD_WILDCARDS); refusing it here tells the caller which field is wrong.
  if (hasBitsOutsideMask(w.buf, valueAt, spec.bytes)) {
    const why = `value ${describe(tlv.value)} has bits set outside mask ${describe(tlv.mask)}`;
    throw new OfEncodeError(`${spec.name}: ${why}`, { field: spec.name });
  }
}

/** A variable-length field in the fewest bytes that hold its value and mask (the full-width encoding, trimmed). */
function encodeShortest(w: Writer, spec: FieldSpec, tlv: NamedOxm): void {
  const full = new Writer(4 + 2 * spec.bytes);
  encodeOxm(full, tlv);
  const b = full.finish();
  const hasMask = tlv.mask !== undefined;
  const n = Math.max(significantBytes(b, 4, spec.bytes), hasMask ? significantBytes(b, 4 + spec.bytes, spec.bytes) : 0);
  w.u32(oxmHeader(spec.oxmClass, spec.oxmField, hasMask, hasMask ? 2 * n : n));
  w.bytes(b.subarray(4 + spec.bytes - n, 4 + spec.bytes));
  if (hasMask) w.bytes(b.subarray(4 + 2 * spec.bytes - n));
}

/** value bytes at `at`, mask bytes right after them */
function hasBitsOutsideMask(b: Buffer, at: number, bytes: number): boolean {
  for (let i = 0; i < bytes; i++) if ((b[at + i]! & ~b[at + bytes + i]!) !== 0) return true;
  return false;
}

function encodeUnknown(w: Writer, tlv: UnknownOxm): void {
  const isExperimenter = tlv.oxmClass === OFPXMC_EXPERIMENTER;
  const length = (isExperimenter ? 4 : 0) + tlv.payload.length;
  const what = `OXM class 0x${tlv.oxmClass.toString(16)} field ${tlv.oxmField}`;
  if (!isUint(tlv.oxmClass, 0xffff) || !isUint(tlv.oxmField, 0x7f)) {
    throw new OfEncodeError(`${what}: class or field out of range`, { field: 'unknown' });
  }
  if (length > 0xff) throw new OfEncodeError(`${what}: payload of ${length} bytes exceeds 255`, { field: 'unknown' });
  if (isExperimenter !== (tlv.experimenter !== undefined)) {
    throw new OfEncodeError(`${what}: an experimenter id goes with class 0xffff and only with it`, { field: 'unknown' });
  }
  w.u32(oxmHeader(tlv.oxmClass, tlv.oxmField, tlv.hasMask, length));
  if (tlv.experimenter !== undefined) {
    if (!isUint(tlv.experimenter, 0xffffffff)) {
      throw new OfEncodeError(`${what}: bad experimenter id ${tlv.experimenter}`, { field: 'unknown' });
    }
    w.u32(tlv.experimenter);
  }
  w.bytes(tlv.payload);
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function writeValue(w: Writer, spec: FieldSpec, v: unknown, what: 'value' | 'mask'): void {
  switch (spec.kind) {
    case ValueKind.U8:
    case ValueKind.U16:
    case ValueKind.U24:
    case ValueKind.U32:
      if (!isUint(v, spec.maxNumber)) throw badValue(spec, what, v, `is not an integer of ${spec.bits} bits`);
      if (spec.kind === ValueKind.U8) w.u8(v);
      else if (spec.kind === ValueKind.U16) w.u16(v);
      else if (spec.kind === ValueKind.U24) w.u8(v >>> 16).u16(v & 0xffff);
      else w.u32(v);
      return;
    case ValueKind.U64:
    case ValueKind.U128:
      if (typeof v !== 'bigint' || v < 0n || v > spec.maxBigint) {
        throw badValue(spec, what, v, `is not a bigint of ${spec.bits} bits`);
      }
      if (spec.kind === ValueKind.U128) w.u64(v >> 64n).u64(v & 0xffffffffffffffffn);
      else w.u64(v);
      return;
    case ValueKind.Mac: {
      if (typeof v !== 'string') throw badValue(spec, what, v, 'is not a MAC address');
      // parsed straight into the writer: reactive flows match on MACs
      const at = w.claim(6);
      if (!writeMac(v, w.buf, at)) throw badValue(spec, what, v, 'is not a MAC address');
      return;
    }
    case ValueKind.Ipv4:
      w.u32(parseAddress(spec, what, v, ipv4ToNumber));
      return;
    case ValueKind.Ipv6:
      w.bytes(parseAddress(spec, what, v, parseIpv6));
      return;
  }
}

function parseAddress<T>(spec: FieldSpec, what: 'value' | 'mask', v: unknown, parse: (s: string) => T): T {
  try {
    if (typeof v === 'string') return parse(v);
  } catch (e) {
    if (!(e instanceof OfEncodeError)) throw e;
  }
  throw badValue(spec, what, v, `is not ${spec.kind === ValueKind.Ipv4 ? 'an IPv4' : 'an IPv6'} address`);
}

function badValue(spec: FieldSpec, what: 'value' | 'mask', v: unknown, why: string): OfEncodeError {
  return new OfEncodeError(`${spec.name}: ${what} ${describe(v)} ${why}`, { field: spec.name });
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

const MATCH_HEADER_BYTES = 4;

/** ofp_match including its padding to 8 bytes */
export function decodeMatch(r: Reader): Match {
  const start = r.offset;
  r.need(MATCH_HEADER_BYTES, 'ofp_match header');
  const type = r.u16();
  if (type !== OFPMT_OXM) throw new OfDecodeError('bad_oxm', `match type ${type} is not OFPMT_OXM`, { offset: start });
  const length = r.u16();
  if (length < MATCH_HEADER_BYTES) {
    throw new OfDecodeError('bad_length', `match length ${length} is shorter than its header`, { offset: start + 2 });
  }
  const body = r.sub(length - MATCH_HEADER_BYTES, 'ofp_match');
  const fields: Match = [];
  while (body.remaining > 0) fields.push(decodeOxm(body));
  r.skip(paddingAfter(length));
  return fields;
}

export function encodeMatch(w: Writer, m: Match): void {
  const start = w.claim(MATCH_HEADER_BYTES);
  w.buf[start] = OFPMT_OXM >>> 8;
  w.buf[start + 1] = OFPMT_OXM & 0xff;
  for (let i = 0; i < m.length; i++) encodeOxm(w, m[i]!);
  const length = w.pos - start;
  w.patchU16(start + 2, length);
  w.zeros(paddingAfter(length));
}

function paddingAfter(length: number): number {
  return (8 - (length & 7)) & 7;
}
