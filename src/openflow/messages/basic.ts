// Switch-level messages: handshake, keepalive, configuration, role and async.
import { parseMac, formatMac } from '../addr';
import type { AnyMessageCodec, MessageCodec } from '../codec';
import { NX_VENDOR_ID, OFP_HEADER_LEN, OFPET } from '../constants';
import { OfDecodeError, OfEncodeError } from '../errors';
import type { OfMessageOf, OfMessageType } from '../message';
import type { MacAddr } from '../oxm';
import { Reader, type Writer } from '../wire';

/** OFPHET_VERSIONBITMAP elements are decoded; other hello elements are kept raw. */
export type HelloElement =
  | { type: 'versionbitmap'; versions: number[] }
  | { type: 'unknown'; elemType: number; data: Buffer };

export interface Hello { type: 'HELLO'; xid: number; elements: HelloElement[] }

export interface ErrorMsg {
  type: 'ERROR';
  xid: number;
  errType: number;
  /** for OFPET_EXPERIMENTER (0xffff) this is exp_type */
  code: number;
  /** present only for OFPET_EXPERIMENTER */
  experimenter?: number;
  data: Buffer;
}

export interface EchoRequest { type: 'ECHO_REQUEST'; xid: number; data: Buffer }
export interface EchoReply { type: 'ECHO_REPLY'; xid: number; data: Buffer }
export interface Experimenter { type: 'EXPERIMENTER'; xid: number; experimenter: number; expType: number; data: Buffer }

/** where an EXPERIMENTER's body starts in the whole message: after the header, experimenter and exp_type */
const EXPERIMENTER_BODY_OFFSET = OFP_HEADER_LEN + 8;

/** A reader over an EXPERIMENTER's body whose offsets, for errors, count from the start of the whole message. */
export function experimenterBody(exp: Experimenter): Reader {
  return new Reader(exp.data, 0, exp.data.length, -EXPERIMENTER_BODY_OFFSET);
}

/** An Open vSwitch extension message (Nicira experimenter) of `subtype` carrying `data`. */
export function niciraMessage(xid: number, subtype: number, data: Buffer): Experimenter {
  return { type: 'EXPERIMENTER', xid, experimenter: NX_VENDOR_ID, expType: subtype, data };
}
export interface BarrierRequest { type: 'BARRIER_REQUEST'; xid: number }
export interface BarrierReply { type: 'BARRIER_REPLY'; xid: number }
export interface FeaturesRequest { type: 'FEATURES_REQUEST'; xid: number }
export interface FeaturesReply {
  type: 'FEATURES_REPLY';
  xid: number;
  datapathId: bigint;
  nBuffers: number;
  nTables: number;
  auxiliaryId: number;
  capabilities: number;
  reserved: number;
}
export interface RoleRequest { type: 'ROLE_REQUEST'; xid: number; role: number; generationId: bigint }
export interface RoleReply { type: 'ROLE_REPLY'; xid: number; role: number; generationId: bigint }

export interface GetConfigRequest { type: 'GET_CONFIG_REQUEST'; xid: number }
/** flags: OFPC_FRAG_* bits; missSendLen: bytes of a table-miss packet sent to the controller */
export interface GetConfigReply { type: 'GET_CONFIG_REPLY'; xid: number; flags: number; missSendLen: number }
export interface SetConfig { type: 'SET_CONFIG'; xid: number; flags: number; missSendLen: number }

export interface PortMod {
  type: 'PORT_MOD';
  xid: number;
  portNo: number;
  hwAddr: MacAddr;
  /** OFPPC_* bits to set, among those selected by `mask` */
  config: number;
  mask: number;
  /** OFPPF_* bits; 0 leaves the advertisement unchanged */
  advertise: number;
}

export interface TableMod { type: 'TABLE_MOD'; xid: number; tableId: number; config: number }

/** A pair of reason bitmasks: [for MASTER/EQUAL role, for SLAVE role]. */
export type AsyncMask = [number, number];
export interface AsyncConfig { packetInMask: AsyncMask; portStatusMask: AsyncMask; flowRemovedMask: AsyncMask }
export interface GetAsyncRequest { type: 'GET_ASYNC_REQUEST'; xid: number }
export interface GetAsyncReply extends AsyncConfig { type: 'GET_ASYNC_REPLY'; xid: number }
export interface SetAsync extends AsyncConfig { type: 'SET_ASYNC'; xid: number }

export type BasicMessage =
  | Hello | ErrorMsg | EchoRequest | EchoReply | Experimenter | BarrierRequest | BarrierReply
  | FeaturesRequest | FeaturesReply | RoleRequest | RoleReply
  | GetConfigRequest | GetConfigReply | SetConfig | PortMod | TableMod
  | GetAsyncRequest | GetAsyncReply | SetAsync;

// Body sizes (after the 8-byte header), from the OF1.3 structs.
export const OFP_HELLO_ELEM_HEADER_LEN = 4;
export const OFP_ERROR_MSG_BODY_LEN = 4;
export const OFP_ERROR_EXPERIMENTER_BODY_LEN = 8;
export const OFP_EXPERIMENTER_BODY_LEN = 8;
export const OFP_SWITCH_FEATURES_BODY_LEN = 24;
export const OFP_SWITCH_CONFIG_BODY_LEN = 4;
export const OFP_ROLE_BODY_LEN = 16;
export const OFP_PORT_MOD_BODY_LEN = 32;
export const OFP_TABLE_MOD_BODY_LEN = 8;
export const OFP_ASYNC_CONFIG_BODY_LEN = 24;

export const OFPHET_VERSIONBITMAP = 1;

/** A body whose size is fixed by its struct: any other size is a bad length, reported as such. */
export function expectBodyLength(r: Reader, size: number, what: string): void {
  if (r.remaining !== size) {
    throw new OfDecodeError('bad_length', `${what}: body is ${r.remaining} bytes, expected ${size}`, { offset: r.offset });
  }
}

/** A body with a fixed part followed by variable data. */
export function expectMinBodyLength(r: Reader, size: number, what: string): void {
  if (r.remaining < size) {
    throw new OfDecodeError('bad_length', `${what}: body is ${r.remaining} bytes, need at least ${size}`, { offset: r.offset });
  }
}

type EmptyMessageType = {
  [T in OfMessageType]: Exclude<keyof OfMessageOf<T>, 'type' | 'xid'> extends never ? T : never;
}[OfMessageType];

/** Messages that are the header alone. */
function emptyCodec<T extends EmptyMessageType>(type: T): MessageCodec<T> {
  return {
    type,
    decode(r, xid) {
      expectBodyLength(r, 0, type);
      return { type, xid } as OfMessageOf<T>;
    },
    encode() {},
  };
}

// ---- HELLO ----

function decodeVersionBitmap(r: Reader): number[] {
  const versions: number[] = [];
  for (let word = 0; r.remaining >= 4; word++) {
    const bits = r.u32();
    for (let bit = 0; bit < 32; bit++) if (bits & (1 << bit)) versions.push(word * 32 + bit);
  }
  if (r.remaining !== 0) {
    throw new OfDecodeError('bad_length', `hello version bitmap: ${r.remaining} bytes left over, not a whole 32-bit word`, { offset: r.offset });
  }
  return versions;
}

function encodeVersionBitmap(w: Writer, versions: readonly number[]): void {
  if (versions.length === 0) throw new OfEncodeError('hello version bitmap: no versions', { field: 'versions' });
  const words = new Array<number>(Math.floor(Math.max(...versions) / 32) + 1).fill(0);
  for (const v of versions) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7f) throw new OfEncodeError(`hello version ${v} out of range`, { field: 'versions' });
    words[v >> 5] = (words[v >> 5]! | (1 << (v & 31))) >>> 0;
  }
  for (const word of words) w.u32(word);
}

const helloCodec: MessageCodec<'HELLO'> = {
  type: 'HELLO',
  decode(r, xid) {
    const elements: HelloElement[] = [];
    while (r.remaining > 0) {
      const at = r.offset;
      expectMinBodyLength(r, OFP_HELLO_ELEM_HEADER_LEN, 'hello element');
      const elemType = r.u16();
      const len = r.u16();
      if (len < OFP_HELLO_ELEM_HEADER_LEN) {
        throw new OfDecodeError('bad_length', `hello element length ${len} < 4`, { offset: at });
      }
      const body = r.sub(len - OFP_HELLO_ELEM_HEADER_LEN, 'hello element');
      // Elements are padded to 8 bytes; the padding is not counted in `len` (OVS requires it too).
      r.skip((8 - (len % 8)) % 8);
      elements.push(
        elemType === OFPHET_VERSIONBITMAP
          ? { type: 'versionbitmap', versions: decodeVersionBitmap(body) }
          : { type: 'unknown', elemType, data: body.copy(body.remaining) },
      );
    }
    return { type: 'HELLO', xid, elements };
  },
  encode(w, msg) {
    for (const el of msg.elements) {
      const start = w.pos;
      w.u16(el.type === 'versionbitmap' ? OFPHET_VERSIONBITMAP : el.elemType).u16(0);
      if (el.type === 'versionbitmap') encodeVersionBitmap(w, el.versions);
      else w.bytes(el.data);
      w.patchU16(start + 2, w.pos - start);
      w.padTo(8, start);
    }
  },
};

// ---- ERROR ----

const errorCodec: MessageCodec<'ERROR'> = {
  type: 'ERROR',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_ERROR_MSG_BODY_LEN, 'ofp_error_msg');
    const errType = r.u16();
    const code = r.u16();
    if (errType === OFPET.EXPERIMENTER) {
      expectMinBodyLength(r, OFP_ERROR_EXPERIMENTER_BODY_LEN - OFP_ERROR_MSG_BODY_LEN, 'ofp_error_experimenter_msg');
      const experimenter = r.u32();
      return { type: 'ERROR', xid, errType, code, experimenter, data: r.copy(r.remaining) };
    }
    return { type: 'ERROR', xid, errType, code, data: r.copy(r.remaining) };
  },
  encode(w, msg) {
    const isExperimenter = msg.errType === OFPET.EXPERIMENTER;
    if (isExperimenter !== (msg.experimenter !== undefined)) {
      throw new OfEncodeError('error: `experimenter` must be set exactly when errType is OFPET_EXPERIMENTER', { field: 'experimenter' });
    }
    w.u16(msg.errType).u16(msg.code);
    if (msg.experimenter !== undefined) w.u32(msg.experimenter);
    w.bytes(msg.data);
  },
};

// ---- ECHO, EXPERIMENTER ----

function echoCodec<T extends 'ECHO_REQUEST' | 'ECHO_REPLY'>(type: T): MessageCodec<T> {
  return {
    type,
    decode: (r, xid) => ({ type, xid, data: r.copy(r.remaining) }) as OfMessageOf<T>,
    encode: (w, msg: EchoRequest | EchoReply) => void w.bytes(msg.data),
  };
}

const experimenterCodec: MessageCodec<'EXPERIMENTER'> = {
  type: 'EXPERIMENTER',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_EXPERIMENTER_BODY_LEN, 'ofp_experimenter_header');
    return { type: 'EXPERIMENTER', xid, experimenter: r.u32(), expType: r.u32(), data: r.copy(r.remaining) };
  },
  encode(w, msg) {
    w.u32(msg.experimenter).u32(msg.expType).bytes(msg.data);
  },
};

// ---- FEATURES ----

const featuresReplyCodec: MessageCodec<'FEATURES_REPLY'> = {
  type: 'FEATURES_REPLY',
  decode(r, xid) {
    expectBodyLength(r, OFP_SWITCH_FEATURES_BODY_LEN, 'ofp_switch_features');
    const datapathId = r.u64();
    const nBuffers = r.u32();
    const nTables = r.u8();
    const auxiliaryId = r.u8();
    r.skip(2);
    return { type: 'FEATURES_REPLY', xid, datapathId, nBuffers, nTables, auxiliaryId, capabilities: r.u32(), reserved: r.u32() };
  },
  encode(w, msg) {
    w.u64(msg.datapathId).u32(msg.nBuffers).u8(msg.nTables).u8(msg.auxiliaryId).zeros(2);
    w.u32(msg.capabilities).u32(msg.reserved);
  },
};

// ---- SWITCH CONFIG ----

function switchConfigCodec<T extends 'GET_CONFIG_REPLY' | 'SET_CONFIG'>(type: T): MessageCodec<T> {
  return {
    type,
    decode(r, xid) {
      expectBodyLength(r, OFP_SWITCH_CONFIG_BODY_LEN, 'ofp_switch_config');
      return { type, xid, flags: r.u16(), missSendLen: r.u16() } as OfMessageOf<T>;
    },
    encode: (w, msg: GetConfigReply | SetConfig) => void w.u16(msg.flags).u16(msg.missSendLen),
  };
}

// ---- ROLE ----

function roleCodec<T extends 'ROLE_REQUEST' | 'ROLE_REPLY'>(type: T): MessageCodec<T> {
  return {
    type,
    decode(r, xid) {
      expectBodyLength(r, OFP_ROLE_BODY_LEN, 'ofp_role_request');
      const role = r.u32();
      r.skip(4);
      return { type, xid, role, generationId: r.u64() } as OfMessageOf<T>;
    },
    encode: (w, msg: RoleRequest | RoleReply) => void w.u32(msg.role).zeros(4).u64(msg.generationId),
  };
}

// ---- PORT_MOD, TABLE_MOD ----

const portModCodec: MessageCodec<'PORT_MOD'> = {
  type: 'PORT_MOD',
  decode(r, xid) {
    expectBodyLength(r, OFP_PORT_MOD_BODY_LEN, 'ofp_port_mod');
    const portNo = r.u32();
    r.skip(4);
    const hwAddr = formatMac(r.bytes(6));
    r.skip(2);
    const config = r.u32();
    const mask = r.u32();
    const advertise = r.u32();
    r.skip(4);
    return { type: 'PORT_MOD', xid, portNo, hwAddr, config, mask, advertise };
  },
  encode(w, msg) {
    w.u32(msg.portNo).zeros(4).bytes(parseMac(msg.hwAddr)).zeros(2);
    w.u32(msg.config).u32(msg.mask).u32(msg.advertise).zeros(4);
  },
};

const tableModCodec: MessageCodec<'TABLE_MOD'> = {
  type: 'TABLE_MOD',
  decode(r, xid) {
    expectBodyLength(r, OFP_TABLE_MOD_BODY_LEN, 'ofp_table_mod');
    const tableId = r.u8();
    r.skip(3);
    return { type: 'TABLE_MOD', xid, tableId, config: r.u32() };
  },
  encode: (w, msg) => void w.u8(msg.tableId).zeros(3).u32(msg.config),
};

// ---- ASYNC ----

function asyncConfigCodec<T extends 'GET_ASYNC_REPLY' | 'SET_ASYNC'>(type: T): MessageCodec<T> {
  return {
    type,
    decode(r, xid) {
      expectBodyLength(r, OFP_ASYNC_CONFIG_BODY_LEN, 'ofp_async_config');
      const pair = (): AsyncMask => [r.u32(), r.u32()];
      return { type, xid, packetInMask: pair(), portStatusMask: pair(), flowRemovedMask: pair() } as OfMessageOf<T>;
    },
    encode(w, msg: AsyncConfig) {
      for (const [master, slave] of [msg.packetInMask, msg.portStatusMask, msg.flowRemovedMask]) w.u32(master).u32(slave);
    },
  };
}

export const basicCodecs: readonly AnyMessageCodec[] = [
  helloCodec,
  errorCodec,
  echoCodec('ECHO_REQUEST'),
  echoCodec('ECHO_REPLY'),
  experimenterCodec,
  emptyCodec('FEATURES_REQUEST'),
  featuresReplyCodec,
  emptyCodec('GET_CONFIG_REQUEST'),
  switchConfigCodec('GET_CONFIG_REPLY'),
  switchConfigCodec('SET_CONFIG'),
  portModCodec,
  tableModCodec,
  emptyCodec('BARRIER_REQUEST'),
  emptyCodec('BARRIER_REPLY'),
  roleCodec('ROLE_REQUEST'),
  roleCodec('ROLE_REPLY'),
  emptyCodec('GET_ASYNC_REQUEST'),
  asyncConfigCodec('GET_ASYNC_REPLY'),
  asyncConfigCodec('SET_ASYNC'),
];
