// STUB (owner: OXM helper). Types are the agreed API; implementations to be filled in.
import { OfDecodeError } from './errors';
import type { Reader, Writer } from './wire';

/** 'aa:bb:cc:dd:ee:ff', lower case */
export type MacAddr = string;
/** dotted quad */
export type Ipv4Addr = string;
/** compressed RFC 5952 text */
export type Ipv6Addr = string;

/** Value type of every named OXM field (standard, Nicira NXM_NX / NXM_OF, ONF). */
export interface OxmValueTypes {
  in_port: number;
  eth_dst: MacAddr;
  eth_type: number;
  // … the helper completes this table
}
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

/**
 * A reference to a field by its 32-bit OXM/NXM header (class, field, hasmask=0, length),
 * as reg_move, reg_load, learn and stack actions carry it. `name` is derived from the header;
 * NXM (class 0x0000/0x0001) and OXM (0x8000) headers for the same field get distinct names
 * (e.g. 'eth_dst' for 0x80000606, 'nxm_of_eth_dst' for 0x00000406) so re-encoding is exact.
 */
export interface FieldRef {
  name: string;
  header: number;
}

/** The preferred header for a field name (the one OVS emits); throws OfEncodeError if unknown. */
export function fieldRef(_name: string): FieldRef {
  throw new Error('not implemented');
}
/** The FieldRef for a header read off the wire; unknown headers get a name like 'oxm_0x12345678'. */
export function fieldRefFromHeader(_header: number): FieldRef {
  throw new Error('not implemented');
}
/** width of a field in bits, from its header length (or the known field width) */
export function fieldBits(_header: number): number {
  throw new Error('not implemented');
}

export function decodeOxm(_r: Reader): OxmTlv {
  throw new OfDecodeError('bad_oxm', 'not implemented');
}
export function encodeOxm(_w: Writer, _tlv: OxmTlv): void {
  throw new Error('not implemented');
}
/** ofp_match including its padding to 8 bytes */
export function decodeMatch(_r: Reader): Match {
  throw new OfDecodeError('bad_oxm', 'not implemented');
}
export function encodeMatch(_w: Writer, _m: Match): void {
  throw new Error('not implemented');
}
