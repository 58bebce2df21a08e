/**
 * Nicira (Open vSwitch) extension actions: experimenter 0x00002320 with a u16 subtype.
 * Layouts follow OVS lib/ofp-actions.c; each decoded action re-encodes to the same bytes.
 */
import type { Action } from './actions';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from './addr';
import { NX_VENDOR_ID } from './constants';
import { OfDecodeError, OfEncodeError } from './errors';
import { decodeOxm, encodeOxm, fieldRefFromHeader, type FieldRef, type OxmTlv } from './oxm';
import { Reader, type Writer } from './wire';

export enum NXAST {
  RESUBMIT = 1,
  SET_TUNNEL = 2,
  POP_QUEUE = 5,
  REG_MOVE = 6,
  REG_LOAD = 7,
  NOTE = 8,
  SET_TUNNEL64 = 9,
  RESUBMIT_TABLE = 14,
  OUTPUT_REG = 15,
  LEARN = 16,
  EXIT = 17,
  DEC_TTL = 18,
  FIN_TIMEOUT = 19,
  CONTROLLER = 20,
  DEC_TTL_CNT_IDS = 21,
  STACK_PUSH = 27,
  STACK_POP = 28,
  SAMPLE = 29,
  OUTPUT_REG2 = 32,
  REG_LOAD2 = 33,
  CONJUNCTION = 34,
  CT = 35,
  NAT = 36,
  CONTROLLER2 = 37,
  SAMPLE2 = 38,
  OUTPUT_TRUNC = 39,
  SAMPLE3 = 41,
  CLONE = 42,
  CT_CLEAR = 43,
  RESUBMIT_TABLE_CT = 44,
}

/** ct flags */
/** IN_PORT in a Nicira action's 16-bit OpenFlow 1.0 port field (resubmit keeps the packet's in_port) */
export const NX_PORT_IN_PORT = 0xfff8;
export const NX_CT_F_COMMIT = 1 << 0;
export const NX_CT_F_FORCE = 1 << 1;
/** ct recircTable meaning "do not recirculate" */
export const NX_CT_RECIRC_NONE = 0xff;

/** nat flags */
export const NX_NAT_F_SRC = 1 << 0;
export const NX_NAT_F_DST = 1 << 1;
export const NX_NAT_F_PERSISTENT = 1 << 2;
export const NX_NAT_F_PROTO_HASH = 1 << 3;
export const NX_NAT_F_PROTO_RANDOM = 1 << 4;

/** learn flags */
export const NX_LEARN_F_SEND_FLOW_REM = 1 << 0;
export const NX_LEARN_F_DELETE_LEARNED = 1 << 1;

/** sample3 direction */
export const NX_ACTION_SAMPLE_DEFAULT = 0;
export const NX_ACTION_SAMPLE_INGRESS = 1;
export const NX_ACTION_SAMPLE_EGRESS = 2;

/** Where a learn spec takes its bits from: a subfield of the packet's flow, or a constant. */
export type LearnSource = { field: FieldRef; ofs: number } | { value: bigint };

/** One flow_mod_spec of a learn action. */
export type LearnSpec =
  /** the learned flow matches dst[dstOfs..] against the source bits */
  | { type: 'match'; nBits: number; src: LearnSource; dst: FieldRef; dstOfs: number }
  /** the learned flow loads the source bits into dst[dstOfs..] */
  | { type: 'load'; nBits: number; src: LearnSource; dst: FieldRef; dstOfs: number }
  /** the learned flow outputs to the port held in the source bits */
  | { type: 'output'; nBits: number; src: LearnSource };

/** Port fields of Nicira actions are 16-bit OpenFlow 1.0 ports (IN_PORT is 0xfff8, LOCAL 0xfffe, NONE 0xffff). */
export type NiciraAction =
  /** subtype 1: resubmit to the current table with a new in_port */
  | { type: 'resubmit'; inPort: number }
  /** subtype 14; tableId 255 means the current table, inPort OFPP_IN_PORT keeps it */
  | { type: 'resubmit_table'; inPort: number; tableId: number }
  /** subtype 44: resubmit_table looking up the conntrack original-direction tuple */
  | { type: 'resubmit_table_ct'; inPort: number; tableId: number }
  | { type: 'set_tunnel'; tunId: number }
  | { type: 'set_tunnel64'; tunId: bigint }
  | { type: 'pop_queue' }
  | { type: 'reg_move'; src: FieldRef; dst: FieldRef; nBits: number; srcOfs: number; dstOfs: number }
  | { type: 'reg_load'; dst: FieldRef; ofs: number; nBits: number; value: bigint }
  /** subtype 33: load a (possibly masked) OXM value */
  | { type: 'reg_load2'; field: OxmTlv }
  /** opaque bytes, including the zero padding to the 8-byte boundary */
  | { type: 'note'; note: Buffer }
  | { type: 'output_reg'; src: FieldRef; ofs: number; nBits: number; maxLen: number }
  | { type: 'output_reg2'; src: FieldRef; ofs: number; nBits: number; maxLen: number }
  | {
      type: 'learn';
      idleTimeout: number;
      hardTimeout: number;
      priority: number;
      cookie: bigint;
      flags: number;
      tableId: number;
      finIdleTimeout: number;
      finHardTimeout: number;
      specs: LearnSpec[];
    }
  | { type: 'exit' }
  | { type: 'dec_ttl' }
  | { type: 'dec_ttl_cnt_ids'; cntIds: number[] }
  | { type: 'fin_timeout'; idleTimeout: number; hardTimeout: number }
  | { type: 'controller'; maxLen: number; controllerId: number; reason: number }
  /** subtype 37: absent properties are left out on the wire (OVS defaults apply) */
  | {
      type: 'controller2';
      maxLen?: number;
      controllerId?: number;
      reason?: number;
      userdata?: Buffer;
      pause?: boolean;
      meterId?: number;
    }
  | { type: 'stack_push'; field: FieldRef; ofs: number; nBits: number }
  | { type: 'stack_pop'; field: FieldRef; ofs: number; nBits: number }
  | { type: 'sample'; probability: number; collectorSetId: number; obsDomainId: number; obsPointId: number }
  | {
      type: 'sample2';
      probability: number;
      collectorSetId: number;
      obsDomainId: number;
      obsPointId: number;
      samplingPort: number;
    }
  | {
      type: 'sample3';
      probability: number;
      collectorSetId: number;
      obsDomainId: number;
      obsPointId: number;
      samplingPort: number;
      direction: number;
    }
  /** `clause` is 0-based on the wire (ovs-ofctl prints clause+1) */
  | { type: 'conjunction'; id: number; clause: number; nClauses: number }
  | {
      type: 'ct';
      flags: number;
      /** an immediate zone, or the 16 bits of a field that hold it */
      zone: number | { field: FieldRef; ofs: number; nBits: number };
      recircTable: number;
      alg: number;
      actions: Action[];
    }
  | {
      type: 'nat';
      flags: number;
      ipv4Min?: string;
      ipv4Max?: string;
      ipv6Min?: string;
      ipv6Max?: string;
      protoMin?: number;
      protoMax?: number;
    }
  | { type: 'output_trunc'; port: number; maxLen: number }
  | { type: 'clone'; actions: Action[] }
  | { type: 'ct_clear' }
  /** a Nicira action we do not model: the bytes after the subtype, kept for byte-exact round trip */
  | { type: 'nx_unknown'; subtype: number; data: Buffer };

/** type, len, experimenter, subtype */
const NX_HEADER_LEN = 10;
/** the smallest Nicira action: header plus 6 bytes of pad or arguments */
export const NX_ACTION_MIN_LEN = 16;
const LEARN_FIXED_LEN = 32;
const CT_FIXED_LEN = 24;
const NAT_FIXED_LEN = 16;

const LEARN_N_BITS_MASK = 0x3ff;
const LEARN_SRC_IMMEDIATE = 1 << 13;
const LEARN_DST_MASK = 3 << 11;
const LEARN_DST_LOAD = 1 << 11;
const LEARN_DST_OUTPUT = 2 << 11;
const LEARN_KNOWN_BITS = LEARN_N_BITS_MASK | LEARN_SRC_IMMEDIATE | LEARN_DST_MASK;

const NAT_RANGE_IPV4_MIN = 1 << 0;
const NAT_RANGE_IPV4_MAX = 1 << 1;
const NAT_RANGE_IPV6_MIN = 1 << 2;
const NAT_RANGE_IPV6_MAX = 1 << 3;
const NAT_RANGE_PROTO_MIN = 1 << 4;
const NAT_RANGE_PROTO_MAX = 1 << 5;
const NAT_RANGE_KNOWN = 0x3f;

enum NXAC2PT {
  MAX_LEN = 0,
  CONTROLLER_ID = 1,
  REASON = 2,
  USERDATA = 3,
  PAUSE = 4,
  METER_ID = 5,
}

/** payload bytes each controller2 property needs, indexed by property type */
const CONTROLLER2_PROP_MIN_BODY: readonly number[] = [2, 2, 1, 0, 0, 4];

/** Nested action lists (ct, clone) are decoded by the generic action decoder, passed in to avoid an import cycle. */
export type ActionListDecoder = (r: Reader) => Action[];
export type ActionListEncoder = (w: Writer, actions: readonly Action[]) => void;

function badLength(what: string, len: number, expected: string, at: number): OfDecodeError {
  return new OfDecodeError('bad_length', `${what}: length ${len}, expected ${expected}`, { offset: at });
}

function expectLen(len: number, exact: number, what: string, at: number): void {
  if (len !== exact) throw badLength(what, len, String(exact), at);
}

function expectMinLen(len: number, min: number, what: string, at: number): void {
  if (len < min) throw badLength(what, len, `at least ${min}`, at);
}

/** A 4-byte NXM/OXM header naming a field; experimenter (8-byte) headers cannot be represented by FieldRef. */
function fieldRefAt(header: number, at: number): FieldRef {
  if (header >>> 16 === 0xffff) {
    throw new OfDecodeError('bad_action', `experimenter field header 0x${header.toString(16)} is not supported here`, {
      offset: at,
    });
  }
  return fieldRefFromHeader(header);
}

function readFieldHeader(r: Reader, at: number): FieldRef {
  return fieldRefAt(r.u32(), at);
}

/**
 * Decodes the Nicira action whose 16-bit subtype has just been read.
 * `r` is positioned after the subtype; `end` is the absolute end of the action, `at` its offset for errors.
 */
export function decodeNiciraAction(
  r: Reader,
  subtype: number,
  len: number,
  end: number,
  at: number,
  decodeList: ActionListDecoder,
): NiciraAction {
  switch (subtype) {
    case NXAST.RESUBMIT: {
      expectLen(len, 16, 'resubmit', at);
      return { type: 'resubmit', inPort: r.u16() };
    }
    case NXAST.RESUBMIT_TABLE:
    case NXAST.RESUBMIT_TABLE_CT: {
      expectLen(len, 16, 'resubmit_table', at);
      const inPort = r.u16();
      const tableId = r.u8();
      return { type: subtype === NXAST.RESUBMIT_TABLE ? 'resubmit_table' : 'resubmit_table_ct', inPort, tableId };
    }
    case NXAST.SET_TUNNEL: {
      expectLen(len, 16, 'set_tunnel', at);
      r.skip(2);
      return { type: 'set_tunnel', tunId: r.u32() };
    }
    case NXAST.SET_TUNNEL64: {
      expectLen(len, 24, 'set_tunnel64', at);
      r.skip(6);
      return { type: 'set_tunnel64', tunId: r.u64() };
    }
    case NXAST.POP_QUEUE:
      expectLen(len, 16, 'pop_queue', at);
      return { type: 'pop_queue' };
    case NXAST.REG_MOVE: {
      expectLen(len, 24, 'reg_move', at);
      const nBits = r.u16();
      const srcOfs = r.u16();
      const dstOfs = r.u16();
      const src = readFieldHeader(r, at);
      const dst = readFieldHeader(r, at);
      return { type: 'reg_move', src, dst, nBits, srcOfs, dstOfs };
    }
    case NXAST.REG_LOAD: {
      expectLen(len, 24, 'reg_load', at);
      const ofsNbits = r.u16();
      const dst = readFieldHeader(r, at);
      return { type: 'reg_load', dst, ofs: ofsNbits >>> 6, nBits: (ofsNbits & 0x3f) + 1, value: r.u64() };
    }
    case NXAST.REG_LOAD2:
      return { type: 'reg_load2', field: decodeOxmPadded(r, end, 'reg_load2', at) };
    case NXAST.NOTE:
      return { type: 'note', note: r.copy(len - NX_HEADER_LEN) };
    case NXAST.OUTPUT_REG: {
      expectLen(len, 24, 'output_reg', at);
      const ofsNbits = r.u16();
      const src = readFieldHeader(r, at);
      return { type: 'output_reg', src, ofs: ofsNbits >>> 6, nBits: (ofsNbits & 0x3f) + 1, maxLen: r.u16() };
    }
    case NXAST.OUTPUT_REG2: {
      expectLen(len, 24, 'output_reg2', at);
      const ofsNbits = r.u16();
      const maxLen = r.u16();
      const src = readFieldHeader(r, at);
      return { type: 'output_reg2', src, ofs: ofsNbits >>> 6, nBits: (ofsNbits & 0x3f) + 1, maxLen };
    }
    case NXAST.LEARN:
      expectMinLen(len, LEARN_FIXED_LEN, 'learn', at);
      return decodeLearn(r, end);
    case NXAST.EXIT:
      expectLen(len, 16, 'exit', at);
      return { type: 'exit' };
    case NXAST.DEC_TTL:
      expectLen(len, 16, 'dec_ttl', at);
      return { type: 'dec_ttl' };
    case NXAST.DEC_TTL_CNT_IDS: {
      const count = r.u16();
      const needed = NX_ACTION_MIN_LEN + 2 * count;
      if (len !== pad8(needed)) throw badLength('dec_ttl_cnt_ids', len, `${pad8(needed)} for ${count} ids`, at);
      r.skip(4);
      const cntIds: number[] = [];
      for (let i = 0; i < count; i++) cntIds.push(r.u16());
      return { type: 'dec_ttl_cnt_ids', cntIds };
    }
    case NXAST.FIN_TIMEOUT: {
      expectLen(len, 16, 'fin_timeout', at);
      const idleTimeout = r.u16();
      return { type: 'fin_timeout', idleTimeout, hardTimeout: r.u16() };
    }
    case NXAST.CONTROLLER: {
      expectLen(len, 16, 'controller', at);
      const maxLen = r.u16();
      const controllerId = r.u16();
      return { type: 'controller', maxLen, controllerId, reason: r.u8() };
    }
    case NXAST.CONTROLLER2:
      expectMinLen(len, NX_ACTION_MIN_LEN, 'controller2', at);
      r.skip(6);
      return decodeController2(new Reader(r.buf, r.pos, end, r.base));
    case NXAST.STACK_PUSH:
    case NXAST.STACK_POP: {
      expectLen(len, 24, 'stack', at);
      const ofs = r.u16();
      const field = readFieldHeader(r, at);
      return { type: subtype === NXAST.STACK_PUSH ? 'stack_push' : 'stack_pop', field, ofs, nBits: r.u16() };
    }
    case NXAST.SAMPLE: {
      expectLen(len, 24, 'sample', at);
      const probability = r.u16();
      const collectorSetId = r.u32();
      const obsDomainId = r.u32();
      return { type: 'sample', probability, collectorSetId, obsDomainId, obsPointId: r.u32() };
    }
    case NXAST.SAMPLE2:
    case NXAST.SAMPLE3: {
      expectLen(len, 32, 'sample2', at);
      const probability = r.u16();
      const collectorSetId = r.u32();
      const obsDomainId = r.u32();
      const obsPointId = r.u32();
      const samplingPort = r.u16();
      if (subtype === NXAST.SAMPLE2) {
        return { type: 'sample2', probability, collectorSetId, obsDomainId, obsPointId, samplingPort };
      }
      return { type: 'sample3', probability, collectorSetId, obsDomainId, obsPointId, samplingPort, direction: r.u8() };
    }
    case NXAST.CONJUNCTION: {
      expectLen(len, 16, 'conjunction', at);
      const clause = r.u8();
      const nClauses = r.u8();
      return { type: 'conjunction', id: r.u32(), clause, nClauses };
    }
    case NXAST.CT: {
      expectMinLen(len, CT_FIXED_LEN, 'ct', at);
      const flags = r.u16();
      const zoneHeader = r.u32();
      const zoneOfsNbits = r.u16();
      const zone =
        zoneHeader === 0
          ? zoneOfsNbits
          : { field: fieldRefAt(zoneHeader, at), ofs: zoneOfsNbits >>> 6, nBits: (zoneOfsNbits & 0x3f) + 1 };
      const recircTable = r.u8();
      r.skip(3);
      const alg = r.u16();
      const actions = decodeList(new Reader(r.buf, r.pos, end, r.base));
      return { type: 'ct', flags, zone, recircTable, alg, actions };
    }
    case NXAST.NAT:
      expectMinLen(len, NAT_FIXED_LEN, 'nat', at);
      return decodeNat(r, end, at);
    case NXAST.OUTPUT_TRUNC: {
      expectLen(len, 16, 'output_trunc', at);
      const port = r.u16();
      return { type: 'output_trunc', port, maxLen: r.u32() };
    }
    case NXAST.CLONE:
      r.skip(6);
      return { type: 'clone', actions: decodeList(new Reader(r.buf, r.pos, end, r.base)) };
    case NXAST.CT_CLEAR:
      expectLen(len, 16, 'ct_clear', at);
      return { type: 'ct_clear' };
    default:
      return { type: 'nx_unknown', subtype, data: r.copy(len - NX_HEADER_LEN) };
  }
}

/**
 * Decodes the one OXM TLV that fills the rest of a set_field or reg_load2 action,
 * which may be followed only by the padding to 8 bytes.
 */
export function decodeOxmPadded(r: Reader, end: number, what: string, at: number): OxmTlv {
  const window = new Reader(r.buf, r.pos, end, r.base);
  const tlv = decodeOxm(window, 'shortest');
  if (window.remaining >= 8) {
    throw new OfDecodeError('bad_length', `${what}: ${window.remaining} bytes follow the OXM, more than padding`, {
      offset: at,
    });
  }
  return tlv;
}

function decodeLearn(r: Reader, end: number): NiciraAction {
  const idleTimeout = r.u16();
  const hardTimeout = r.u16();
  const priority = r.u16();
  const cookie = r.u64();
  const flags = r.u16();
  const tableId = r.u8();
  r.skip(1);
  const finIdleTimeout = r.u16();
  const finHardTimeout = r.u16();
  const specs: LearnSpec[] = [];
  while (end - r.pos >= 2) {
    const specAt = r.offset;
    const header = r.u16();
    if (header === 0) break; // the rest is padding
    const reserved = (header & ~LEARN_KNOWN_BITS) !== 0 || (header & LEARN_DST_MASK) === LEARN_DST_MASK;
    if (reserved || (header & LEARN_N_BITS_MASK) === 0) {
      throw new OfDecodeError('bad_action', `learn spec header 0x${header.toString(16)} is invalid`, { offset: specAt });
    }
    const nBits = header & LEARN_N_BITS_MASK;
    const immediate = (header & LEARN_SRC_IMMEDIATE) !== 0;
    const dstType = header & LEARN_DST_MASK;
    const srcLen = immediate ? learnImmediateBytes(nBits) : 6;
    const dstLen = dstType === LEARN_DST_OUTPUT ? 0 : 6;
    if (end - r.pos < srcLen + dstLen) {
      throw new OfDecodeError('bad_length', `learn spec needs ${srcLen + dstLen} bytes, ${end - r.pos} left in the action`, {
        offset: specAt,
      });
    }
    let src: LearnSource;
    if (immediate) {
      let value = 0n;
      for (let i = 0; i < srcLen; i++) value = (value << 8n) | BigInt(r.u8());
      src = { value };
    } else {
      const field = readFieldHeader(r, specAt);
      src = { field, ofs: r.u16() };
    }
    if (dstType === LEARN_DST_OUTPUT) {
      if (immediate) throw new OfDecodeError('bad_action', 'learn output spec needs a field source', { offset: specAt });
      specs.push({ type: 'output', nBits, src });
      continue;
    }
    const dst = readFieldHeader(r, specAt);
    const dstOfs = r.u16();
    specs.push({ type: dstType === LEARN_DST_LOAD ? 'load' : 'match', nBits, src, dst, dstOfs });
  }
  return {
    type: 'learn', idleTimeout, hardTimeout, priority, cookie, flags, tableId, finIdleTimeout, finHardTimeout, specs,
  };
}

function learnImmediateBytes(nBits: number): number {
  return 2 * Math.ceil(nBits / 16);
}

function decodeNat(r: Reader, end: number, at: number): NiciraAction {
  r.skip(2);
  const flags = r.u16();
  const present = r.u16();
  if ((present & ~NAT_RANGE_KNOWN) !== 0) {
    throw new OfDecodeError('bad_action', `nat range_present 0x${present.toString(16)} has unknown bits`, { offset: at });
  }
  const need =
    ((present & NAT_RANGE_IPV4_MIN) !== 0 ? 4 : 0) +
    ((present & NAT_RANGE_IPV4_MAX) !== 0 ? 4 : 0) +
    ((present & NAT_RANGE_IPV6_MIN) !== 0 ? 16 : 0) +
    ((present & NAT_RANGE_IPV6_MAX) !== 0 ? 16 : 0) +
    ((present & NAT_RANGE_PROTO_MIN) !== 0 ? 2 : 0) +
    ((present & NAT_RANGE_PROTO_MAX) !== 0 ? 2 : 0);
  if (end - r.pos < need) {
    throw new OfDecodeError('bad_length', `nat ranges need ${need} bytes, ${end - r.pos} left in the action`, { offset: at });
  }
  const nat: NiciraAction & { type: 'nat' } = { type: 'nat', flags };
  if (present & NAT_RANGE_IPV4_MIN) nat.ipv4Min = formatIpv4(r.bytes(4));
  if (present & NAT_RANGE_IPV4_MAX) nat.ipv4Max = formatIpv4(r.bytes(4));
  if (present & NAT_RANGE_IPV6_MIN) nat.ipv6Min = formatIpv6(r.bytes(16));
  if (present & NAT_RANGE_IPV6_MAX) nat.ipv6Max = formatIpv6(r.bytes(16));
  if (present & NAT_RANGE_PROTO_MIN) nat.protoMin = r.u16();
  if (present & NAT_RANGE_PROTO_MAX) nat.protoMax = r.u16();
  return nat;
}

/** `r` is a window over the properties */
function decodeController2(r: Reader): NiciraAction {
  const c: NiciraAction & { type: 'controller2' } = { type: 'controller2' };
  while (r.remaining > 0) {
    const propAt = r.offset;
    if (r.remaining < 4) {
      throw new OfDecodeError('bad_length', `${r.remaining} bytes cannot hold a controller2 property`, { offset: propAt });
    }
    const type = r.u16();
    const len = r.u16();
    if (len < 4 || pad8(len) - 4 > r.remaining) {
      throw new OfDecodeError('bad_length', `controller2 property length ${len} does not fit`, { offset: propAt });
    }
    const body = len - 4;
    const next = r.pos + pad8(len) - 4;
    const minBody = CONTROLLER2_PROP_MIN_BODY[type];
    if (minBody === undefined) {
      throw new OfDecodeError('bad_action', `unknown controller2 property type ${type}`, { offset: propAt });
    }
    if (body < minBody) throw badLength(`controller2 property ${type}`, len, `at least ${4 + minBody}`, propAt);
    switch (type) {
      case NXAC2PT.MAX_LEN:
        c.maxLen = r.u16();
        break;
      case NXAC2PT.CONTROLLER_ID:
        c.controllerId = r.u16();
        break;
      case NXAC2PT.REASON:
        c.reason = r.u8();
        break;
      case NXAC2PT.USERDATA:
        c.userdata = r.copy(body);
        break;
      case NXAC2PT.PAUSE:
        c.pause = true;
        break;
      case NXAC2PT.METER_ID:
        c.meterId = r.u32();
        break;
    }
    r.pos = next;
  }
  return c;
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

function ofsNbits(ofs: number, nBits: number, what: string): number {
  if (!Number.isInteger(ofs) || ofs < 0 || ofs > 0x3ff || !Number.isInteger(nBits) || nBits < 1 || nBits > 64) {
    throw new OfEncodeError(`${what}: offset ${ofs} / ${nBits} bits cannot be packed (offset 0..1023, 1..64 bits)`, {
      field: what,
    });
  }
  return (ofs << 6) | (nBits - 1);
}

function fieldHeader(ref: FieldRef, what: string): number {
  const h = ref?.header;
  if (typeof h !== 'number' || !Number.isInteger(h) || h < 0 || h > 0xffffffff) {
    throw new OfEncodeError(`${what}: not a field reference`, { field: what });
  }
  return h;
}

/**
 * Encodes one Nicira action, header included, into `w`; returns false if `a` is not a Nicira action.
 * Lengths and padding are computed here.
 */
export function encodeNiciraAction(w: Writer, a: Action, encodeList: ActionListEncoder): boolean {
  const start = w.pos;
  switch (a.type) {
    case 'resubmit':
      nxHeader(w, NXAST.RESUBMIT, 16);
      w.u16(a.inPort).zeros(4);
      return true;
    case 'resubmit_table':
    case 'resubmit_table_ct':
      nxHeader(w, a.type === 'resubmit_table' ? NXAST.RESUBMIT_TABLE : NXAST.RESUBMIT_TABLE_CT, 16);
      w.u16(a.inPort).u8(a.tableId).zeros(3);
      return true;
    case 'set_tunnel':
      nxHeader(w, NXAST.SET_TUNNEL, 16);
      w.zeros(2).u32(a.tunId);
      return true;
    case 'set_tunnel64':
      nxHeader(w, NXAST.SET_TUNNEL64, 24);
      w.zeros(6).u64(a.tunId);
      return true;
    case 'pop_queue':
      nxHeader(w, NXAST.POP_QUEUE, 16);
      w.zeros(6);
      return true;
    case 'reg_move':
      nxHeader(w, NXAST.REG_MOVE, 24);
      w.u16(a.nBits).u16(a.srcOfs).u16(a.dstOfs);
      w.u32(fieldHeader(a.src, 'reg_move.src')).u32(fieldHeader(a.dst, 'reg_move.dst'));
      return true;
    case 'reg_load':
      nxHeader(w, NXAST.REG_LOAD, 24);
      w.u16(ofsNbits(a.ofs, a.nBits, 'reg_load')).u32(fieldHeader(a.dst, 'reg_load.dst')).u64(a.value);
      return true;
    case 'reg_load2':
      nxHeader(w, NXAST.REG_LOAD2, 0);
      encodeOxm(w, a.field, 'shortest');
      break;
    case 'note':
      nxHeader(w, NXAST.NOTE, 0);
      w.bytes(a.note);
      // a note shorter than 6 bytes still fills the minimal 16-byte action
      if (w.pos - start < NX_ACTION_MIN_LEN) w.zeros(NX_ACTION_MIN_LEN - (w.pos - start));
      break;
    case 'output_reg':
      nxHeader(w, NXAST.OUTPUT_REG, 24);
      w.u16(ofsNbits(a.ofs, a.nBits, 'output_reg')).u32(fieldHeader(a.src, 'output_reg.src')).u16(a.maxLen).zeros(6);
      return true;
    case 'output_reg2':
      nxHeader(w, NXAST.OUTPUT_REG2, 24);
      w.u16(ofsNbits(a.ofs, a.nBits, 'output_reg2')).u16(a.maxLen).u32(fieldHeader(a.src, 'output_reg2.src')).zeros(6);
      return true;
    case 'learn':
      nxHeader(w, NXAST.LEARN, 0);
      encodeLearn(w, a);
      break;
    case 'exit':
      nxHeader(w, NXAST.EXIT, 16);
      w.zeros(6);
      return true;
    case 'dec_ttl':
      nxHeader(w, NXAST.DEC_TTL, 16);
      w.zeros(6);
      return true;
    case 'dec_ttl_cnt_ids':
      if (a.cntIds.length > 0xffff) throw new OfEncodeError('dec_ttl_cnt_ids: too many ids', { field: 'cntIds' });
      nxHeader(w, NXAST.DEC_TTL_CNT_IDS, 0);
      w.u16(a.cntIds.length).zeros(4);
      for (const id of a.cntIds) w.u16(id);
      break;
    case 'fin_timeout':
      nxHeader(w, NXAST.FIN_TIMEOUT, 16);
      w.u16(a.idleTimeout).u16(a.hardTimeout).zeros(2);
      return true;
    case 'controller':
      nxHeader(w, NXAST.CONTROLLER, 16);
      w.u16(a.maxLen).u16(a.controllerId).u8(a.reason).zeros(1);
      return true;
    case 'controller2':
      nxHeader(w, NXAST.CONTROLLER2, 0);
      w.zeros(6);
      encodeController2(w, a);
      break;
    case 'stack_push':
    case 'stack_pop':
      nxHeader(w, a.type === 'stack_push' ? NXAST.STACK_PUSH : NXAST.STACK_POP, 24);
      w.u16(a.ofs).u32(fieldHeader(a.field, a.type)).u16(a.nBits).zeros(6);
      return true;
    case 'sample':
      nxHeader(w, NXAST.SAMPLE, 24);
      w.u16(a.probability).u32(a.collectorSetId).u32(a.obsDomainId).u32(a.obsPointId);
      return true;
    case 'sample2':
    case 'sample3':
      nxHeader(w, a.type === 'sample2' ? NXAST.SAMPLE2 : NXAST.SAMPLE3, 32);
      w.u16(a.probability).u32(a.collectorSetId).u32(a.obsDomainId).u32(a.obsPointId).u16(a.samplingPort);
      w.u8(a.type === 'sample3' ? a.direction : 0).zeros(5);
      return true;
    case 'conjunction':
      nxHeader(w, NXAST.CONJUNCTION, 16);
      w.u8(a.clause).u8(a.nClauses).u32(a.id);
      return true;
    case 'ct': {
      nxHeader(w, NXAST.CT, 0);
      w.u16(a.flags);
      if (typeof a.zone === 'number') w.u32(0).u16(a.zone);
      else w.u32(fieldHeader(a.zone.field, 'ct.zone')).u16(ofsNbits(a.zone.ofs, a.zone.nBits, 'ct.zone'));
      w.u8(a.recircTable).zeros(3).u16(a.alg);
      encodeList(w, a.actions);
      break;
    }
    case 'nat':
      nxHeader(w, NXAST.NAT, 0);
      encodeNat(w, a);
      break;
    case 'output_trunc':
      nxHeader(w, NXAST.OUTPUT_TRUNC, 16);
      w.u16(a.port).u32(a.maxLen);
      return true;
    case 'clone':
      nxHeader(w, NXAST.CLONE, 0);
      w.zeros(6);
      encodeList(w, a.actions);
      break;
    case 'ct_clear':
      nxHeader(w, NXAST.CT_CLEAR, 16);
      w.zeros(6);
      return true;
    case 'nx_unknown':
      nxHeader(w, a.subtype, 0);
      w.bytes(a.data);
      if (w.pos - start < NX_ACTION_MIN_LEN) w.zeros(NX_ACTION_MIN_LEN - (w.pos - start));
      break;
    default:
      return false;
  }
  // variable-length actions: pad to 8 and fill in the length
  w.padTo(8, start);
  w.patchU16(start + 2, w.pos - start);
  return true;
}

/** type, len (0 when patched later), experimenter, subtype */
function nxHeader(w: Writer, subtype: number, len: number): void {
  w.u16(0xffff).u16(len).u32(NX_VENDOR_ID).u16(subtype);
}

function encodeLearn(w: Writer, a: NiciraAction & { type: 'learn' }): void {
  w.u16(a.idleTimeout).u16(a.hardTimeout).u16(a.priority).u64(a.cookie).u16(a.flags).u8(a.tableId).zeros(1);
  w.u16(a.finIdleTimeout).u16(a.finHardTimeout);
  for (const spec of a.specs) {
    const { nBits, src } = spec;
    if (!Number.isInteger(nBits) || nBits < 1 || nBits > LEARN_N_BITS_MASK) {
      throw new OfEncodeError(`learn spec: ${nBits} bits is outside 1..${LEARN_N_BITS_MASK}`, { field: 'learn.specs' });
    }
    const immediate = 'value' in src;
    if (immediate && spec.type === 'output') {
      throw new OfEncodeError('learn output spec needs a field source', { field: 'learn.specs' });
    }
    const dstBits = spec.type === 'match' ? 0 : spec.type === 'load' ? LEARN_DST_LOAD : LEARN_DST_OUTPUT;
    w.u16(nBits | (immediate ? LEARN_SRC_IMMEDIATE : 0) | dstBits);
    if (immediate) {
      const bytes = learnImmediateBytes(nBits);
      if (src.value < 0n || src.value >> BigInt(bytes * 8) !== 0n) {
        throw new OfEncodeError(`learn spec: immediate ${src.value} does not fit ${nBits} bits`, { field: 'learn.specs' });
      }
      for (let i = bytes - 1; i >= 0; i--) w.u8(Number((src.value >> BigInt(i * 8)) & 0xffn));
    } else {
      w.u32(fieldHeader(src.field, 'learn.src')).u16(src.ofs);
    }
    if (spec.type !== 'output') w.u32(fieldHeader(spec.dst, 'learn.dst')).u16(spec.dstOfs);
  }
}

function encodeNat(w: Writer, a: NiciraAction & { type: 'nat' }): void {
  const present =
    (a.ipv4Min !== undefined ? NAT_RANGE_IPV4_MIN : 0) |
    (a.ipv4Max !== undefined ? NAT_RANGE_IPV4_MAX : 0) |
    (a.ipv6Min !== undefined ? NAT_RANGE_IPV6_MIN : 0) |
    (a.ipv6Max !== undefined ? NAT_RANGE_IPV6_MAX : 0) |
    (a.protoMin !== undefined ? NAT_RANGE_PROTO_MIN : 0) |
    (a.protoMax !== undefined ? NAT_RANGE_PROTO_MAX : 0);
  w.zeros(2).u16(a.flags).u16(present);
  if (a.ipv4Min !== undefined) w.bytes(parseIpv4(a.ipv4Min));
  if (a.ipv4Max !== undefined) w.bytes(parseIpv4(a.ipv4Max));
  if (a.ipv6Min !== undefined) w.bytes(parseIpv6(a.ipv6Min));
  if (a.ipv6Max !== undefined) w.bytes(parseIpv6(a.ipv6Max));
  if (a.protoMin !== undefined) w.u16(a.protoMin);
  if (a.protoMax !== undefined) w.u16(a.protoMax);
}

/** Properties in the order OVS writes them; each is padded to 8 bytes, the padding not counted in its length. */
function encodeController2(w: Writer, a: NiciraAction & { type: 'controller2' }): void {
  if (a.maxLen !== undefined) w.u16(NXAC2PT.MAX_LEN).u16(8).u16(a.maxLen).zeros(2);
  if (a.controllerId !== undefined) w.u16(NXAC2PT.CONTROLLER_ID).u16(8).u16(a.controllerId).zeros(2);
  if (a.reason !== undefined) w.u16(NXAC2PT.REASON).u16(5).u8(a.reason).zeros(3);
  if (a.userdata !== undefined) {
    if (a.userdata.length > 0xffff - 4) throw new OfEncodeError('controller2 userdata is too long', { field: 'userdata' });
    const start = w.pos;
    w.u16(NXAC2PT.USERDATA).u16(4 + a.userdata.length).bytes(a.userdata).padTo(8, start);
  }
  if (a.pause) w.u16(NXAC2PT.PAUSE).u16(4).zeros(4);
  if (a.meterId !== undefined) w.u16(NXAC2PT.METER_ID).u16(8).u32(a.meterId);
}
