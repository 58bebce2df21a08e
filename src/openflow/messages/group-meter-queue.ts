// GROUP_MOD, METER_MOD, QUEUE_GET_CONFIG_*, and the buckets, meter bands and
// queue properties that the multipart bodies (GROUP_DESC, METER_CONFIG) share with them.
import { decodeActions, encodeActions, type Action } from '../actions';
import type { AnyMessageCodec, MessageCodec } from '../codec';
import { OfDecodeError, OfEncodeError } from '../errors';
import type { Reader, Writer } from '../wire';
import { expectBodyLength, expectMinBodyLength } from './basic';

// ---- length-prefixed structures ----

/**
 * A window over the next structure, whose own u16 length sits `lenAt` bytes into it.
 * A length below `minLen` or past the container is a 'bad_length' error at the structure's offset.
 */
export function structReader(r: Reader, lenAt: number, minLen: number, what: string): Reader {
  if (r.remaining < lenAt + 2) {
    throw new OfDecodeError('bad_length', `${what}: ${r.remaining} bytes left, too few for its header`, { offset: r.offset });
  }
  const len = r.buf.readUInt16BE(r.pos + lenAt);
  if (len < minLen) {
    throw new OfDecodeError('bad_length', `${what}: length ${len} is less than ${minLen}`, { offset: r.offset });
  }
  return r.sub(len, what);
}

/** Fails with 'bad_length' when a structure's window holds bytes its decoder did not consume. */
function expectConsumed(r: Reader, what: string): void {
  if (r.remaining !== 0) {
    throw new OfDecodeError('bad_length', `${what}: ${r.remaining} bytes past its content`, { offset: r.offset });
  }
}

/** Decodes structures until the window is exhausted. */
export function decodeAll<T>(r: Reader, decodeOne: (r: Reader) => T): T[] {
  const out: T[] = [];
  while (r.remaining > 0) out.push(decodeOne(r));
  return out;
}

/** Writes the length of the structure begun at `start` into its u16 length field at `start + lenAt`. */
export function patchLength(w: Writer, start: number, lenAt: number): void {
  w.patchU16(start + lenAt, w.pos - start);
}

/** The wire code of a name in a table indexed by code, or an encode error naming the field. */
function codeOf<T extends string>(names: readonly T[], name: T, field: string): number {
  const code = names.indexOf(name);
  if (code < 0) throw new OfEncodeError(`unknown ${field} '${String(name)}'`, { field });
  return code;
}

/** The name for a wire code in a table indexed by code, or a 'bad_value' error at `offset`. */
function nameOf<T extends string>(names: readonly T[], code: number, what: string, offset: number): T {
  const name = names[code];
  if (name === undefined) throw new OfDecodeError('bad_value', `${what} ${code} is unknown`, { offset });
  return name;
}

// ---- groups ----

/** Indexed by OFPGT_* code. */
export const GROUP_TYPES = ['all', 'select', 'indirect', 'fast_failover'] as const;
export type GroupType = (typeof GROUP_TYPES)[number];

/** Indexed by OFPGC_* / OFPMC_* code (groups and meters share the three commands). */
export const MOD_COMMANDS = ['add', 'modify', 'delete'] as const;
export type GroupModCommand = (typeof MOD_COMMANDS)[number];
export type MeterModCommand = (typeof MOD_COMMANDS)[number];

export const OFP_BUCKET_FIXED_LEN = 16;
/** fixed parts of the bodies after the 8-byte header */
const OFP_GROUP_MOD_FIXED_LEN = 8;
const OFP_METER_MOD_FIXED_LEN = 8;
const OFP_QUEUE_GET_CONFIG_FIXED_LEN = 8;

/** struct ofp_bucket */
export interface Bucket {
  weight: number;
  watchPort: number;
  watchGroup: number;
  actions: Action[];
}

export function decodeBucket(r: Reader): Bucket {
  const b = structReader(r, 0, OFP_BUCKET_FIXED_LEN, 'ofp_bucket');
  b.skip(2);
  const weight = b.u16();
  const watchPort = b.u32();
  const watchGroup = b.u32();
  b.skip(4);
  return { weight, watchPort, watchGroup, actions: decodeActions(b) };
}

export function encodeBucket(w: Writer, bucket: Bucket): void {
  const start = w.pos;
  w.u16(0).u16(bucket.weight).u32(bucket.watchPort).u32(bucket.watchGroup).zeros(4);
  encodeActions(w, bucket.actions);
  patchLength(w, start, 0);
}

/** A group type byte, decoded; `r` is positioned on it. */
export function decodeGroupType(r: Reader): GroupType {
  const at = r.offset;
  return nameOf(GROUP_TYPES, r.u8(), 'group type', at);
}

export function groupTypeCode(t: GroupType): number {
  return codeOf(GROUP_TYPES, t, 'group type');
}

export interface GroupMod {
  type: 'GROUP_MOD';
  xid: number;
  command: GroupModCommand;
  groupType: GroupType;
  groupId: number;
  buckets: Bucket[];
}

const groupModCodec: MessageCodec<'GROUP_MOD'> = {
  type: 'GROUP_MOD',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_GROUP_MOD_FIXED_LEN, 'ofp_group_mod');
    const commandAt = r.offset;
    const command = nameOf(MOD_COMMANDS, r.u16(), 'group_mod command', commandAt);
    const groupType = decodeGroupType(r);
    r.skip(1);
    const groupId = r.u32();
    return { type: 'GROUP_MOD', xid, command, groupType, groupId, buckets: decodeAll(r, decodeBucket) };
  },
  encode(w, msg) {
    w.u16(codeOf(MOD_COMMANDS, msg.command, 'group_mod command')).u8(groupTypeCode(msg.groupType)).zeros(1);
    w.u32(msg.groupId);
    for (const b of msg.buckets) encodeBucket(w, b);
  },
};

// ---- meters ----

/** meter_mod flags */
export const OFPMF_KBPS = 1 << 0;
export const OFPMF_PKTPS = 1 << 1;
export const OFPMF_BURST = 1 << 2;
export const OFPMF_STATS = 1 << 3;

export const OFPMBT_DROP = 1;
export const OFPMBT_DSCP_REMARK = 2;
export const OFPMBT_EXPERIMENTER = 0xffff;
export const OFP_METER_BAND_LEN = 16;

/** struct ofp_meter_band_* */
export type MeterBand =
  | { type: 'drop'; rate: number; burstSize: number }
  | { type: 'dscp_remark'; rate: number; burstSize: number; precLevel: number }
  /** `data`: experimenter-defined bytes after the 16-byte band header, kept raw */
  | { type: 'experimenter'; rate: number; burstSize: number; experimenter: number; data: Buffer };

export function decodeMeterBand(r: Reader): MeterBand {
  const typeAt = r.offset;
  const b = structReader(r, 2, OFP_METER_BAND_LEN, 'ofp_meter_band');
  const bandType = b.u16();
  b.skip(2);
  const rate = b.u32();
  const burstSize = b.u32();
  let band: MeterBand;
  switch (bandType) {
    case OFPMBT_DROP:
      b.skip(4);
      band = { type: 'drop', rate, burstSize };
      break;
    case OFPMBT_DSCP_REMARK: {
      const precLevel = b.u8();
      b.skip(3);
      band = { type: 'dscp_remark', rate, burstSize, precLevel };
      break;
    }
    case OFPMBT_EXPERIMENTER:
      band = { type: 'experimenter', rate, burstSize, experimenter: b.u32(), data: b.copy(b.remaining) };
      break;
    default:
      throw new OfDecodeError('unknown_type', `meter band type ${bandType}`, { offset: typeAt });
  }
  expectConsumed(b, `meter band ${band.type}`);
  return band;
}

export function encodeMeterBand(w: Writer, band: MeterBand): void {
  const start = w.pos;
  switch (band.type) {
    case 'drop':
      w.u16(OFPMBT_DROP).u16(0).u32(band.rate).u32(band.burstSize).zeros(4);
      break;
    case 'dscp_remark':
      w.u16(OFPMBT_DSCP_REMARK).u16(0).u32(band.rate).u32(band.burstSize).u8(band.precLevel).zeros(3);
      break;
    case 'experimenter':
      w.u16(OFPMBT_EXPERIMENTER).u16(0).u32(band.rate).u32(band.burstSize).u32(band.experimenter).bytes(band.data);
      break;
    default:
      throw new OfEncodeError(`unknown meter band type '${(band as { type: unknown }).type}'`, { field: 'band.type' });
  }
  patchLength(w, start, 2);
}

export interface MeterMod {
  type: 'METER_MOD';
  xid: number;
  command: MeterModCommand;
  /** OFPMF_* bits */
  flags: number;
  meterId: number;
  bands: MeterBand[];
}

const meterModCodec: MessageCodec<'METER_MOD'> = {
  type: 'METER_MOD',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_METER_MOD_FIXED_LEN, 'ofp_meter_mod');
    const commandAt = r.offset;
    const command = nameOf(MOD_COMMANDS, r.u16(), 'meter_mod command', commandAt);
    const flags = r.u16();
    const meterId = r.u32();
    return { type: 'METER_MOD', xid, command, flags, meterId, bands: decodeAll(r, decodeMeterBand) };
  },
  encode(w, msg) {
    w.u16(codeOf(MOD_COMMANDS, msg.command, 'meter_mod command')).u16(msg.flags).u32(msg.meterId);
    for (const b of msg.bands) encodeMeterBand(w, b);
  },
};

// ---- queues ----

export const OFPQT_MIN_RATE = 1;
export const OFPQT_MAX_RATE = 2;
export const OFPQT_EXPERIMENTER = 0xffff;
const OFP_QUEUE_PROP_HEADER_LEN = 8;
const OFP_QUEUE_PROP_RATE_LEN = 16;
const OFP_QUEUE_PROP_EXPERIMENTER_MIN_LEN = 16;
const OFP_PACKET_QUEUE_FIXED_LEN = 16;

/** Queue properties. Rates are in 1/10 of a percent; > 1000 means disabled. */
export type QueueProp =
  | { type: 'min_rate'; rate: number }
  | { type: 'max_rate'; rate: number }
  /**
   * `data`: the bytes after the 16-byte experimenter header. Its length need not be a multiple
   * of 8: some encoders (Ryu's vector 4-36) pack properties unaligned, so we neither pad nor expect padding.
   */
  | { type: 'experimenter'; experimenter: number; data: Buffer };

export function decodeQueueProp(r: Reader): QueueProp {
  const typeAt = r.offset;
  const p = structReader(r, 2, OFP_QUEUE_PROP_HEADER_LEN, 'ofp_queue_prop');
  const len = p.remaining;
  const propType = p.u16();
  p.skip(6);
  let prop: QueueProp;
  switch (propType) {
    case OFPQT_MIN_RATE:
    case OFPQT_MAX_RATE:
      if (len !== OFP_QUEUE_PROP_RATE_LEN) {
        throw new OfDecodeError('bad_length', `queue rate property length ${len} is not ${OFP_QUEUE_PROP_RATE_LEN}`, { offset: typeAt });
      }
      prop = { type: propType === OFPQT_MIN_RATE ? 'min_rate' : 'max_rate', rate: p.u16() };
      p.skip(6);
      break;
    case OFPQT_EXPERIMENTER: {
      if (len < OFP_QUEUE_PROP_EXPERIMENTER_MIN_LEN) {
        throw new OfDecodeError('bad_length', `queue experimenter property length ${len} < ${OFP_QUEUE_PROP_EXPERIMENTER_MIN_LEN}`, { offset: typeAt });
      }
      const experimenter = p.u32();
      p.skip(4);
      prop = { type: 'experimenter', experimenter, data: p.copy(p.remaining) };
      break;
    }
    default:
      throw new OfDecodeError('unknown_type', `queue property type ${propType}`, { offset: typeAt });
  }
  return prop;
}

export function encodeQueueProp(w: Writer, prop: QueueProp): void {
  const start = w.pos;
  switch (prop.type) {
    case 'min_rate':
    case 'max_rate':
      w.u16(prop.type === 'min_rate' ? OFPQT_MIN_RATE : OFPQT_MAX_RATE).u16(0).zeros(4).u16(prop.rate).zeros(6);
      break;
    case 'experimenter':
      w.u16(OFPQT_EXPERIMENTER).u16(0).zeros(4).u32(prop.experimenter).zeros(4).bytes(prop.data);
      break;
    default:
      throw new OfEncodeError(`unknown queue property '${(prop as { type: unknown }).type}'`, { field: 'property.type' });
  }
  patchLength(w, start, 2);
}

/** struct ofp_packet_queue */
export interface PacketQueue {
  queueId: number;
  port: number;
  properties: QueueProp[];
}

export function decodePacketQueue(r: Reader): PacketQueue {
  const q = structReader(r, 8, OFP_PACKET_QUEUE_FIXED_LEN, 'ofp_packet_queue');
  const queueId = q.u32();
  const port = q.u32();
  q.skip(8);
  return { queueId, port, properties: decodeAll(q, decodeQueueProp) };
}

export function encodePacketQueue(w: Writer, q: PacketQueue): void {
  const start = w.pos;
  w.u32(q.queueId).u32(q.port).u16(0).zeros(6);
  for (const p of q.properties) encodeQueueProp(w, p);
  patchLength(w, start, 8);
}

export interface QueueGetConfigRequest {
  type: 'QUEUE_GET_CONFIG_REQUEST';
  xid: number;
  /** a port number, or OFPP_ANY for all ports */
  port: number;
}

export interface QueueGetConfigReply {
  type: 'QUEUE_GET_CONFIG_REPLY';
  xid: number;
  port: number;
  queues: PacketQueue[];
}

const queueGetConfigRequestCodec: MessageCodec<'QUEUE_GET_CONFIG_REQUEST'> = {
  type: 'QUEUE_GET_CONFIG_REQUEST',
  decode(r, xid) {
    expectBodyLength(r, OFP_QUEUE_GET_CONFIG_FIXED_LEN, 'ofp_queue_get_config_request');
    const port = r.u32();
    r.skip(4);
    return { type: 'QUEUE_GET_CONFIG_REQUEST', xid, port };
  },
  encode(w, msg) {
    w.u32(msg.port).zeros(4);
  },
};

const queueGetConfigReplyCodec: MessageCodec<'QUEUE_GET_CONFIG_REPLY'> = {
  type: 'QUEUE_GET_CONFIG_REPLY',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_QUEUE_GET_CONFIG_FIXED_LEN, 'ofp_queue_get_config_reply');
    const port = r.u32();
    r.skip(4);
    return { type: 'QUEUE_GET_CONFIG_REPLY', xid, port, queues: decodeAll(r, decodePacketQueue) };
  },
  encode(w, msg) {
    w.u32(msg.port).zeros(4);
    for (const q of msg.queues) encodePacketQueue(w, q);
  },
};

export type GroupMeterQueueMessage = GroupMod | MeterMod | QueueGetConfigRequest | QueueGetConfigReply;

export const groupMeterQueueCodecs: readonly AnyMessageCodec[] = [
  groupModCodec,
  meterModCodec,
  queueGetConfigRequestCodec,
  queueGetConfigReplyCodec,
];
