// MULTIPART_REQUEST / MULTIPART_REPLY: all OF1.3 multipart types plus experimenter.
import type { AnyMessageCodec, MessageCodec } from '../codec';
import { OFP_HEADER_LEN, OFP_MAX_MESSAGE_LEN, OFPMP, OFPMPF_REPLY_MORE } from '../constants';
import { OfDecodeError, OfEncodeError } from '../errors';
import { decodeInstructions, encodeInstructions, type Instruction } from '../instructions';
import { OFPMT_OXM, decodeMatch, decodeOxm, encodeMatch, encodeOxm, type Match } from '../oxm';
import { decodePort, encodePort, OFP_PORT_LEN, type Port } from '../port';
import { Reader, Writer } from '../wire';
import { expectBodyLength, expectMinBodyLength } from './basic';
import {
  decodeAll,
  decodeBucket,
  decodeGroupType,
  decodeMeterBand,
  encodeBucket,
  encodeMeterBand,
  groupTypeCode,
  patchLength,
  structReader,
  type Bucket,
  type GroupType,
  type MeterBand,
} from './group-meter-queue';
import { decodeTableFeatures, encodeTableFeatures, type TableFeatures } from './table-features';

export * from './table-features';

export type MultipartType = keyof typeof OFPMP;

/** type, flags and padding before every multipart body */
export const OFP_MULTIPART_HEADER_LEN = 8;
const OFP_DESC_STR_LEN = 256;
const OFP_SERIAL_NUM_LEN = 32;
const OFP_DESC_LEN = 4 * OFP_DESC_STR_LEN + OFP_SERIAL_NUM_LEN;
const OFP_FLOW_STATS_REQUEST_FIXED_LEN = 32;
const OFP_FLOW_STATS_FIXED_LEN = 48;
const OFP_AGGREGATE_STATS_REPLY_LEN = 24;
const OFP_TABLE_STATS_LEN = 24;
const OFP_PORT_STATS_LEN = 112;
const OFP_QUEUE_STATS_LEN = 40;
const OFP_GROUP_STATS_FIXED_LEN = 40;
const OFP_BUCKET_COUNTER_LEN = 16;
const OFP_GROUP_DESC_FIXED_LEN = 8;
const OFP_GROUP_FEATURES_LEN = 40;
const OFP_METER_STATS_FIXED_LEN = 40;
const OFP_METER_BAND_STATS_LEN = 16;
const OFP_METER_CONFIG_FIXED_LEN = 8;
const OFP_METER_FEATURES_LEN = 16;
const OFP_EXPERIMENTER_MULTIPART_HEADER_LEN = 8;
/** a request body that is one u32 (port, group or meter id) and padding, or two u32s */
const OFP_ID_REQUEST_LEN = 8;

// ---- request bodies ----

/** Which flows a FLOW or AGGREGATE request selects. */
export interface FlowFilter {
  /** OFPTT_ALL for all tables */
  tableId: number;
  outPort: number;
  outGroup: number;
  cookie: bigint;
  cookieMask: bigint;
  match: Match;
}

export interface FlowStatsRequestBody extends FlowFilter {
  mpType: 'FLOW';
}

export interface AggregateStatsRequestBody extends FlowFilter {
  mpType: 'AGGREGATE';
}

/** raw experimenter multipart body, request or reply */
export interface ExperimenterMultipartBody {
  mpType: 'EXPERIMENTER';
  experimenter: number;
  expType: number;
  data: Buffer;
}

export type MultipartRequestBody =
  | { mpType: 'DESC' }
  | FlowStatsRequestBody
  | AggregateStatsRequestBody
  | { mpType: 'TABLE' }
  | { mpType: 'PORT_STATS'; portNo: number }
  | { mpType: 'QUEUE'; portNo: number; queueId: number }
  | { mpType: 'GROUP'; groupId: number }
  | { mpType: 'GROUP_DESC' }
  | { mpType: 'GROUP_FEATURES' }
  | { mpType: 'METER'; meterId: number }
  | { mpType: 'METER_CONFIG'; meterId: number }
  | { mpType: 'METER_FEATURES' }
  /** an empty list asks for the current features; a non-empty one sets them */
  | { mpType: 'TABLE_FEATURES'; tables: TableFeatures[] }
  | { mpType: 'PORT_DESC' }
  | ExperimenterMultipartBody;

// ---- reply entries ----

export interface FlowStats {
  tableId: number;
  durationSec: number;
  durationNsec: number;
  priority: number;
  idleTimeout: number;
  hardTimeout: number;
  flags: number;
  cookie: bigint;
  packetCount: bigint;
  byteCount: bigint;
  match: Match;
  instructions: Instruction[];
}

export interface TableStats {
  tableId: number;
  activeCount: number;
  lookupCount: bigint;
  matchedCount: bigint;
}

export interface PortStats {
  portNo: number;
  rxPackets: bigint;
  txPackets: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  rxDropped: bigint;
  txDropped: bigint;
  rxErrors: bigint;
  txErrors: bigint;
  rxFrameErr: bigint;
  rxOverErr: bigint;
  rxCrcErr: bigint;
  collisions: bigint;
  durationSec: number;
  durationNsec: number;
}

export interface QueueStats {
  portNo: number;
  queueId: number;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  durationSec: number;
  durationNsec: number;
}

/** per-bucket and per-band counters */
export interface Counters {
  packetCount: bigint;
  byteCount: bigint;
}

export interface GroupStats {
  groupId: number;
  refCount: number;
  packetCount: bigint;
  byteCount: bigint;
  durationSec: number;
  durationNsec: number;
  bucketStats: Counters[];
}

export interface GroupDesc {
  groupType: GroupType;
  groupId: number;
  buckets: Bucket[];
}

export interface MeterStats {
  meterId: number;
  flowCount: number;
  packetInCount: bigint;
  byteInCount: bigint;
  durationSec: number;
  durationNsec: number;
  bandStats: Counters[];
}

export interface MeterConfig {
  /** OFPMF_* bits */
  flags: number;
  meterId: number;
  bands: MeterBand[];
}

export type MultipartReplyBody =
  | { mpType: 'DESC'; mfrDesc: string; hwDesc: string; swDesc: string; serialNum: string; dpDesc: string }
  | { mpType: 'FLOW'; flows: FlowStats[] }
  | { mpType: 'AGGREGATE'; packetCount: bigint; byteCount: bigint; flowCount: number }
  | { mpType: 'TABLE'; tables: TableStats[] }
  | { mpType: 'PORT_STATS'; ports: PortStats[] }
  | { mpType: 'QUEUE'; queues: QueueStats[] }
  | { mpType: 'GROUP'; groups: GroupStats[] }
  | { mpType: 'GROUP_DESC'; groups: GroupDesc[] }
  | {
      mpType: 'GROUP_FEATURES';
      /** bitmap of OFPGT_* supported */
      types: number;
      capabilities: number;
      /** indexed by OFPGT_* code (4 entries) */
      maxGroups: number[];
      /** bitmaps of OFPAT_* supported, indexed by OFPGT_* code (4 entries) */
      actions: number[];
    }
  | { mpType: 'METER'; meters: MeterStats[] }
  | { mpType: 'METER_CONFIG'; meters: MeterConfig[] }
  | { mpType: 'METER_FEATURES'; maxMeter: number; bandTypes: number; capabilities: number; maxBands: number; maxColor: number }
  | { mpType: 'TABLE_FEATURES'; tables: TableFeatures[] }
  | { mpType: 'PORT_DESC'; ports: Port[] }
  | ExperimenterMultipartBody;

export interface MultipartRequest { type: 'MULTIPART_REQUEST'; xid: number; flags: number; body: MultipartRequestBody }
export interface MultipartReply { type: 'MULTIPART_REPLY'; xid: number; flags: number; body: MultipartReplyBody }

export type MultipartMessage = MultipartRequest | MultipartReply;

// ---- shared pieces ----

function decodeFlowFilter(r: Reader): FlowFilter {
  expectMinBodyLength(r, OFP_FLOW_STATS_REQUEST_FIXED_LEN, 'ofp_flow_stats_request');
  const tableId = r.u8();
  r.skip(3);
  const outPort = r.u32();
  const outGroup = r.u32();
  r.skip(4);
  const cookie = r.u64();
  const cookieMask = r.u64();
  return { tableId, outPort, outGroup, cookie, cookieMask, match: decodeMatch(r) };
}

function encodeFlowFilter(w: Writer, f: FlowFilter): void {
  w.u8(f.tableId).zeros(3).u32(f.outPort).u32(f.outGroup).zeros(4).u64(f.cookie).u64(f.cookieMask);
  encodeMatch(w, f.match);
}

function decodeExperimenterBody(r: Reader): ExperimenterMultipartBody {
  expectMinBodyLength(r, OFP_EXPERIMENTER_MULTIPART_HEADER_LEN, 'ofp_experimenter_multipart_header');
  return { mpType: 'EXPERIMENTER', experimenter: r.u32(), expType: r.u32(), data: r.copy(r.remaining) };
}

function encodeExperimenterBody(w: Writer, b: ExperimenterMultipartBody): void {
  w.u32(b.experimenter).u32(b.expType).bytes(b.data);
}

/** A list of fixed-size entries filling the body. */
function decodeFixedList<T>(r: Reader, size: number, what: string, decodeOne: (r: Reader) => T): T[] {
  if (r.remaining % size !== 0) {
    throw new OfDecodeError('bad_length', `${what} list: ${r.remaining} bytes is not a multiple of ${size}`, { offset: r.offset });
  }
  return decodeAll(r, decodeOne);
}

function decodeCounters(r: Reader): Counters {
  return { packetCount: r.u64(), byteCount: r.u64() };
}

function encodeCounters(w: Writer, c: Counters): void {
  w.u64(c.packetCount).u64(c.byteCount);
}

// ---- reply entries ----

function decodeFlowStats(r: Reader): FlowStats {
  const s = structReader(r, 0, OFP_FLOW_STATS_FIXED_LEN, 'ofp_flow_stats');
  s.skip(2);
  const tableId = s.u8();
  s.skip(1);
  const durationSec = s.u32();
  const durationNsec = s.u32();
  const priority = s.u16();
  const idleTimeout = s.u16();
  const hardTimeout = s.u16();
  const flags = s.u16();
  s.skip(4);
  const cookie = s.u64();
  const packetCount = s.u64();
  const byteCount = s.u64();
  const match = decodeMatch(s);
  const instructions = decodeInstructions(s);
  return {
    tableId, durationSec, durationNsec, priority, idleTimeout, hardTimeout, flags, cookie, packetCount, byteCount,
    match, instructions,
  };
}

/**
 * One ofp_flow_stats entry read in place from a FLOW reply: its header fields, and where its match
 * and instructions lie in `buf`, for comparing them as bytes. `decodeWireFlowStats` decodes the rest.
 */
export interface WireFlowStats {
  readonly buf: Buffer;
  /** the entry's first byte in `buf`, and its length */
  readonly at: number;
  readonly length: number;
  readonly tableId: number;
  readonly priority: number;
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly flags: number;
  readonly cookie: bigint;
  /** the ofp_match, header included, padding not: [matchStart, matchEnd) */
  readonly matchStart: number;
  readonly matchEnd: number;
  /** the instructions: [instructionsStart, at + length) */
  readonly instructionsStart: number;
}

/** ofp_match's header: type and length */
const MATCH_HEADER_LEN = 4;

/**
 * The flow stats entries of a FLOW reply's messages (each a whole MULTIPART_REPLY, as a session's
 * `multipartFrames` hands them over), read in place: only the framing is checked (message and
 * entry lengths, the match's type and length), so an entry decodes or fails in `decodeWireFlowStats`.
 */
export function wireFlowStats(frames: readonly Buffer[]): WireFlowStats[] {
  const out: WireFlowStats[] = [];
  for (const buf of frames) {
    if (buf.length < OFP_HEADER_LEN + OFP_MULTIPART_HEADER_LEN || buf.readUInt16BE(2) !== buf.length) {
      throw new OfDecodeError('bad_length', `FLOW reply message of ${buf.length} bytes has length field ${buf.length >= 4 ? buf.readUInt16BE(2) : 'missing'}`);
    }
    const mpType = buf.readUInt16BE(OFP_HEADER_LEN);
    if (mpType !== OFPMP.FLOW) throw new OfDecodeError('bad_value', `multipart reply type ${mpType} in a FLOW reply`, { offset: OFP_HEADER_LEN });
    for (let at = OFP_HEADER_LEN + OFP_MULTIPART_HEADER_LEN; at < buf.length; ) {
      const length = at + 2 <= buf.length ? buf.readUInt16BE(at) : 0;
      if (length < OFP_FLOW_STATS_FIXED_LEN + MATCH_HEADER_LEN || at + length > buf.length) {
        throw new OfDecodeError('bad_length', `ofp_flow_stats: length ${length} with ${buf.length - at} bytes left`, { offset: at });
      }
      const matchStart = at + OFP_FLOW_STATS_FIXED_LEN;
      const matchLength = buf.readUInt16BE(matchStart + 2);
      const instructionsStart = matchStart + ((matchLength + 7) & ~7);
      if (buf.readUInt16BE(matchStart) !== OFPMT_OXM || matchLength < MATCH_HEADER_LEN || instructionsStart > at + length) {
        throw new OfDecodeError('bad_oxm', `ofp_flow_stats: match of type ${buf.readUInt16BE(matchStart)} and length ${matchLength} in an entry of ${length} bytes`, { offset: matchStart });
      }
      out.push({
        buf, at, length,
        tableId: buf[at + 2]!,
        priority: buf.readUInt16BE(at + 12),
        idleTimeout: buf.readUInt16BE(at + 14),
        hardTimeout: buf.readUInt16BE(at + 16),
        flags: buf.readUInt16BE(at + 18),
        cookie: buf.readBigUInt64BE(at + 24),
        matchStart,
        matchEnd: matchStart + matchLength,
        instructionsStart,
      });
      at += length;
    }
  }
  return out;
}

/** The whole entry, decoded (OfDecodeError when its match or instructions are malformed). */
export function decodeWireFlowStats(e: WireFlowStats): FlowStats {
  return decodeFlowStats(new Reader(e.buf, e.at, e.at + e.length));
}

function encodeFlowStats(w: Writer, f: FlowStats): void {
  const start = w.pos;
  w.u16(0).u8(f.tableId).zeros(1).u32(f.durationSec).u32(f.durationNsec);
  w.u16(f.priority).u16(f.idleTimeout).u16(f.hardTimeout).u16(f.flags).zeros(4);
  w.u64(f.cookie).u64(f.packetCount).u64(f.byteCount);
  encodeMatch(w, f.match);
  encodeInstructions(w, f.instructions);
  patchLength(w, start, 0);
}

function decodeTableStats(r: Reader): TableStats {
  const tableId = r.u8();
  r.skip(3);
  return { tableId, activeCount: r.u32(), lookupCount: r.u64(), matchedCount: r.u64() };
}

function encodeTableStats(w: Writer, t: TableStats): void {
  w.u8(t.tableId).zeros(3).u32(t.activeCount).u64(t.lookupCount).u64(t.matchedCount);
}

function decodePortStats(r: Reader): PortStats {
  const portNo = r.u32();
  r.skip(4);
  return {
    portNo,
    rxPackets: r.u64(), txPackets: r.u64(), rxBytes: r.u64(), txBytes: r.u64(),
    rxDropped: r.u64(), txDropped: r.u64(), rxErrors: r.u64(), txErrors: r.u64(),
    rxFrameErr: r.u64(), rxOverErr: r.u64(), rxCrcErr: r.u64(), collisions: r.u64(),
    durationSec: r.u32(), durationNsec: r.u32(),
  };
}

function encodePortStats(w: Writer, p: PortStats): void {
  w.u32(p.portNo).zeros(4);
  w.u64(p.rxPackets).u64(p.txPackets).u64(p.rxBytes).u64(p.txBytes);
  w.u64(p.rxDropped).u64(p.txDropped).u64(p.rxErrors).u64(p.txErrors);
  w.u64(p.rxFrameErr).u64(p.rxOverErr).u64(p.rxCrcErr).u64(p.collisions);
  w.u32(p.durationSec).u32(p.durationNsec);
}

function decodeQueueStats(r: Reader): QueueStats {
  return {
    portNo: r.u32(), queueId: r.u32(), txBytes: r.u64(), txPackets: r.u64(), txErrors: r.u64(),
    durationSec: r.u32(), durationNsec: r.u32(),
  };
}

function encodeQueueStats(w: Writer, q: QueueStats): void {
  w.u32(q.portNo).u32(q.queueId).u64(q.txBytes).u64(q.txPackets).u64(q.txErrors).u32(q.durationSec).u32(q.durationNsec);
}

function decodeGroupStats(r: Reader): GroupStats {
  const s = structReader(r, 0, OFP_GROUP_STATS_FIXED_LEN, 'ofp_group_stats');
  s.skip(4);
  const groupId = s.u32();
  const refCount = s.u32();
  s.skip(4);
  const packetCount = s.u64();
  const byteCount = s.u64();
  const durationSec = s.u32();
  const durationNsec = s.u32();
  const bucketStats = decodeFixedList(s, OFP_BUCKET_COUNTER_LEN, 'ofp_bucket_counter', decodeCounters);
  return { groupId, refCount, packetCount, byteCount, durationSec, durationNsec, bucketStats };
}

function encodeGroupStats(w: Writer, g: GroupStats): void {
  const start = w.pos;
  w.u16(0).zeros(2).u32(g.groupId).u32(g.refCount).zeros(4);
  w.u64(g.packetCount).u64(g.byteCount).u32(g.durationSec).u32(g.durationNsec);
  for (const c of g.bucketStats) encodeCounters(w, c);
  patchLength(w, start, 0);
}

function decodeGroupDesc(r: Reader): GroupDesc {
  const s = structReader(r, 0, OFP_GROUP_DESC_FIXED_LEN, 'ofp_group_desc');
  s.skip(2);
  const groupType = decodeGroupType(s);
  s.skip(1);
  const groupId = s.u32();
  return { groupType, groupId, buckets: decodeAll(s, decodeBucket) };
}

function encodeGroupDesc(w: Writer, g: GroupDesc): void {
  const start = w.pos;
  w.u16(0).u8(groupTypeCode(g.groupType)).zeros(1).u32(g.groupId);
  for (const b of g.buckets) encodeBucket(w, b);
  patchLength(w, start, 0);
}

function decodeMeterStats(r: Reader): MeterStats {
  const s = structReader(r, 4, OFP_METER_STATS_FIXED_LEN, 'ofp_meter_stats');
  const meterId = s.u32();
  s.skip(8);
  const flowCount = s.u32();
  const packetInCount = s.u64();
  const byteInCount = s.u64();
  const durationSec = s.u32();
  const durationNsec = s.u32();
  const bandStats = decodeFixedList(s, OFP_METER_BAND_STATS_LEN, 'ofp_meter_band_stats', decodeCounters);
  return { meterId, flowCount, packetInCount, byteInCount, durationSec, durationNsec, bandStats };
}

function encodeMeterStats(w: Writer, m: MeterStats): void {
  const start = w.pos;
  w.u32(m.meterId).u16(0).zeros(6).u32(m.flowCount).u64(m.packetInCount).u64(m.byteInCount);
  w.u32(m.durationSec).u32(m.durationNsec);
  for (const c of m.bandStats) encodeCounters(w, c);
  patchLength(w, start, 4);
}

function decodeMeterConfig(r: Reader): MeterConfig {
  const s = structReader(r, 0, OFP_METER_CONFIG_FIXED_LEN, 'ofp_meter_config');
  s.skip(2);
  const flags = s.u16();
  const meterId = s.u32();
  return { flags, meterId, bands: decodeAll(s, decodeMeterBand) };
}

function encodeMeterConfig(w: Writer, m: MeterConfig): void {
  const start = w.pos;
  w.u16(0).u16(m.flags).u32(m.meterId);
  for (const b of m.bands) encodeMeterBand(w, b);
  patchLength(w, start, 0);
}

/** A fixed-width u32 array field; its length is part of the wire format. */
function encodeU32Array(w: Writer, values: readonly number[], n: number, field: string): void {
  if (values.length !== n) throw new OfEncodeError(`${field} must have ${n} entries, has ${values.length}`, { field });
  for (const v of values) w.u32(v);
}

// ---- bodies ----

function decodeRequestBody(r: Reader, mpType: MultipartType): MultipartRequestBody {
  switch (mpType) {
    case 'DESC':
    case 'TABLE':
    case 'GROUP_DESC':
    case 'GROUP_FEATURES':
    case 'METER_FEATURES':
    case 'PORT_DESC':
      expectBodyLength(r, 0, `${mpType} request`);
      return { mpType };
    case 'FLOW':
    case 'AGGREGATE':
      return { mpType, ...decodeFlowFilter(r) };
    case 'PORT_STATS': {
      expectBodyLength(r, OFP_ID_REQUEST_LEN, 'ofp_port_stats_request');
      const portNo = r.u32();
      r.skip(4);
      return { mpType, portNo };
    }
    case 'QUEUE':
      expectBodyLength(r, OFP_ID_REQUEST_LEN, 'ofp_queue_stats_request');
      return { mpType, portNo: r.u32(), queueId: r.u32() };
    case 'GROUP': {
      expectBodyLength(r, OFP_ID_REQUEST_LEN, 'ofp_group_stats_request');
      const groupId = r.u32();
      r.skip(4);
      return { mpType, groupId };
    }
    case 'METER':
    case 'METER_CONFIG': {
      expectBodyLength(r, OFP_ID_REQUEST_LEN, 'ofp_meter_multipart_request');
      const meterId = r.u32();
      r.skip(4);
      return { mpType, meterId };
    }
    case 'TABLE_FEATURES':
      return { mpType, tables: decodeAll(r, decodeTableFeatures) };
    case 'EXPERIMENTER':
      return decodeExperimenterBody(r);
  }
}

function encodeRequestBody(w: Writer, b: MultipartRequestBody): void {
  switch (b.mpType) {
    case 'DESC':
    case 'TABLE':
    case 'GROUP_DESC':
    case 'GROUP_FEATURES':
    case 'METER_FEATURES':
    case 'PORT_DESC':
      return;
    case 'FLOW':
    case 'AGGREGATE':
      return encodeFlowFilter(w, b);
    case 'PORT_STATS':
      w.u32(b.portNo).zeros(4);
      return;
    case 'QUEUE':
      w.u32(b.portNo).u32(b.queueId);
      return;
    case 'GROUP':
      w.u32(b.groupId).zeros(4);
      return;
    case 'METER':
    case 'METER_CONFIG':
      w.u32(b.meterId).zeros(4);
      return;
    case 'TABLE_FEATURES':
      for (const t of b.tables) encodeTableFeatures(w, t);
      return;
    case 'EXPERIMENTER':
      return encodeExperimenterBody(w, b);
  }
}

function decodeReplyBody(r: Reader, mpType: MultipartType): MultipartReplyBody {
  switch (mpType) {
    case 'DESC':
      expectBodyLength(r, OFP_DESC_LEN, 'ofp_desc');
      return {
        mpType,
        mfrDesc: r.str(OFP_DESC_STR_LEN),
        hwDesc: r.str(OFP_DESC_STR_LEN),
        swDesc: r.str(OFP_DESC_STR_LEN),
        serialNum: r.str(OFP_SERIAL_NUM_LEN),
        dpDesc: r.str(OFP_DESC_STR_LEN),
      };
    case 'FLOW':
      return { mpType, flows: decodeAll(r, decodeFlowStats) };
    case 'AGGREGATE': {
      expectBodyLength(r, OFP_AGGREGATE_STATS_REPLY_LEN, 'ofp_aggregate_stats_reply');
      const packetCount = r.u64();
      const byteCount = r.u64();
      const flowCount = r.u32();
      r.skip(4);
      return { mpType, packetCount, byteCount, flowCount };
    }
    case 'TABLE':
      return { mpType, tables: decodeFixedList(r, OFP_TABLE_STATS_LEN, 'ofp_table_stats', decodeTableStats) };
    case 'PORT_STATS':
      return { mpType, ports: decodeFixedList(r, OFP_PORT_STATS_LEN, 'ofp_port_stats', decodePortStats) };
    case 'QUEUE':
      return { mpType, queues: decodeFixedList(r, OFP_QUEUE_STATS_LEN, 'ofp_queue_stats', decodeQueueStats) };
    case 'GROUP':
      return { mpType, groups: decodeAll(r, decodeGroupStats) };
    case 'GROUP_DESC':
      return { mpType, groups: decodeAll(r, decodeGroupDesc) };
    case 'GROUP_FEATURES': {
      expectBodyLength(r, OFP_GROUP_FEATURES_LEN, 'ofp_group_features');
      const types = r.u32();
      const capabilities = r.u32();
      const maxGroups = [r.u32(), r.u32(), r.u32(), r.u32()];
      const actions = [r.u32(), r.u32(), r.u32(), r.u32()];
      return { mpType, types, capabilities, maxGroups, actions };
    }
    case 'METER':
      return { mpType, meters: decodeAll(r, decodeMeterStats) };
    case 'METER_CONFIG':
      return { mpType, meters: decodeAll(r, decodeMeterConfig) };
    case 'METER_FEATURES': {
      expectBodyLength(r, OFP_METER_FEATURES_LEN, 'ofp_meter_features');
      const maxMeter = r.u32();
      const bandTypes = r.u32();
      const capabilities = r.u32();
      const maxBands = r.u8();
      const maxColor = r.u8();
      r.skip(2);
      return { mpType, maxMeter, bandTypes, capabilities, maxBands, maxColor };
    }
    case 'TABLE_FEATURES':
      return { mpType, tables: decodeAll(r, decodeTableFeatures) };
    case 'PORT_DESC':
      return { mpType, ports: decodeFixedList(r, OFP_PORT_LEN, 'ofp_port', decodePort) };
    case 'EXPERIMENTER':
      return decodeExperimenterBody(r);
  }
}

function encodeReplyBody(w: Writer, b: MultipartReplyBody): void {
  switch (b.mpType) {
    case 'DESC':
      w.str(b.mfrDesc, OFP_DESC_STR_LEN, 'mfrDesc').str(b.hwDesc, OFP_DESC_STR_LEN, 'hwDesc');
      w.str(b.swDesc, OFP_DESC_STR_LEN, 'swDesc').str(b.serialNum, OFP_SERIAL_NUM_LEN, 'serialNum');
      w.str(b.dpDesc, OFP_DESC_STR_LEN, 'dpDesc');
      return;
    case 'FLOW':
      for (const f of b.flows) encodeFlowStats(w, f);
      return;
    case 'AGGREGATE':
      w.u64(b.packetCount).u64(b.byteCount).u32(b.flowCount).zeros(4);
      return;
    case 'TABLE':
      for (const t of b.tables) encodeTableStats(w, t);
      return;
    case 'PORT_STATS':
      for (const p of b.ports) encodePortStats(w, p);
      return;
    case 'QUEUE':
      for (const q of b.queues) encodeQueueStats(w, q);
      return;
    case 'GROUP':
      for (const g of b.groups) encodeGroupStats(w, g);
      return;
    case 'GROUP_DESC':
      for (const g of b.groups) encodeGroupDesc(w, g);
      return;
    case 'GROUP_FEATURES':
      w.u32(b.types).u32(b.capabilities);
      encodeU32Array(w, b.maxGroups, 4, 'maxGroups');
      encodeU32Array(w, b.actions, 4, 'actions');
      return;
    case 'METER':
      for (const m of b.meters) encodeMeterStats(w, m);
      return;
    case 'METER_CONFIG':
      for (const m of b.meters) encodeMeterConfig(w, m);
      return;
    case 'METER_FEATURES':
      w.u32(b.maxMeter).u32(b.bandTypes).u32(b.capabilities).u8(b.maxBands).u8(b.maxColor).zeros(2);
      return;
    case 'TABLE_FEATURES':
      for (const t of b.tables) encodeTableFeatures(w, t);
      return;
    case 'PORT_DESC':
      for (const p of b.ports) encodePort(w, p);
      return;
    case 'EXPERIMENTER':
      return encodeExperimenterBody(w, b);
  }
}

// ---- codecs ----

/** Reads the multipart header; an unknown type is 'unknown_type' (the runtime answers OFPBRC_BAD_MULTIPART). */
function decodeMultipartHeader(r: Reader): { mpType: MultipartType; flags: number } {
  expectMinBodyLength(r, OFP_MULTIPART_HEADER_LEN, 'ofp_multipart header');
  const at = r.offset;
  const code = r.u16();
  const mpType = OFPMP[code] as MultipartType | undefined;
  if (mpType === undefined) throw new OfDecodeError('unknown_type', `unknown multipart type ${code}`, { offset: at });
  const flags = r.u16();
  r.skip(4);
  return { mpType, flags };
}

function multipartTypeCode(mpType: MultipartType): number {
  const code: unknown = OFPMP[mpType];
  if (typeof code !== 'number') throw new OfEncodeError(`unknown multipart type '${String(mpType)}'`, { field: 'body.mpType' });
  return code;
}

const multipartRequestCodec: MessageCodec<'MULTIPART_REQUEST'> = {
  type: 'MULTIPART_REQUEST',
  decode(r, xid) {
    const { mpType, flags } = decodeMultipartHeader(r);
    return { type: 'MULTIPART_REQUEST', xid, flags, body: decodeRequestBody(r, mpType) };
  },
  encode(w, msg) {
    w.u16(multipartTypeCode(msg.body.mpType)).u16(msg.flags).zeros(4);
    encodeRequestBody(w, msg.body);
  },
};

const multipartReplyCodec: MessageCodec<'MULTIPART_REPLY'> = {
  type: 'MULTIPART_REPLY',
  decode(r, xid) {
    const { mpType, flags } = decodeMultipartHeader(r);
    return { type: 'MULTIPART_REPLY', xid, flags, body: decodeReplyBody(r, mpType) };
  },
  encode(w, msg) {
    w.u16(multipartTypeCode(msg.body.mpType)).u16(msg.flags).zeros(4);
    encodeReplyBody(w, msg.body);
  },
};

export const multipartCodecs: readonly AnyMessageCodec[] = [multipartRequestCodec, multipartReplyCodec];

// ---- replies split over several messages ----

/** The list field of each reply body that is a list of entries. */
const LIST_FIELD = {
  FLOW: 'flows',
  TABLE: 'tables',
  PORT_STATS: 'ports',
  QUEUE: 'queues',
  GROUP: 'groups',
  GROUP_DESC: 'groups',
  METER: 'meters',
  METER_CONFIG: 'meters',
  TABLE_FEATURES: 'tables',
  PORT_DESC: 'ports',
} as const satisfies Partial<Record<MultipartType, string>>;

type ListReplyBody = Extract<MultipartReplyBody, { mpType: keyof typeof LIST_FIELD }>;

function isListBody(body: MultipartReplyBody): body is ListReplyBody {
  return body.mpType in LIST_FIELD;
}

function entriesOf(body: ListReplyBody): unknown[] {
  return (body as unknown as Record<string, unknown[]>)[LIST_FIELD[body.mpType]]!;
}

function withEntries(body: ListReplyBody, entries: unknown[]): ListReplyBody {
  return { ...body, [LIST_FIELD[body.mpType]]: entries } as ListReplyBody;
}

/**
 * Joins the parts of one reply sent as several messages (OFPMPF_REPLY_MORE): list bodies are
 * concatenated, experimenter data is concatenated. All parts must share xid and multipart type
 * (and experimenter id and type); a body that is not a list must come in one part.
 * The result carries the last part's flags.
 */
export function mergeMultipartReplies(parts: readonly MultipartReply[]): MultipartReply {
  const first = parts[0];
  if (!first) throw new OfDecodeError('bad_value', 'no multipart reply parts to merge');
  const ctx = { xid: first.xid };
  for (const p of parts) {
    if (p.xid !== first.xid) throw new OfDecodeError('bad_value', `multipart reply parts mix xids ${first.xid} and ${p.xid}`, ctx);
    if (p.body.mpType !== first.body.mpType) {
      throw new OfDecodeError('bad_value', `multipart reply parts mix types ${first.body.mpType} and ${p.body.mpType}`, ctx);
    }
  }
  if (parts.length === 1) return first;
  const merged = { type: 'MULTIPART_REPLY', xid: first.xid, flags: parts[parts.length - 1]!.flags } as const;
  const bodies = parts.map((p) => p.body);
  const head = first.body;
  if (isListBody(head)) {
    return { ...merged, body: withEntries(head, (bodies as ListReplyBody[]).flatMap(entriesOf)) };
  }
  if (head.mpType === 'EXPERIMENTER') {
    const data: Buffer[] = [];
    for (const b of bodies as ExperimenterMultipartBody[]) {
      if (b.experimenter !== head.experimenter || b.expType !== head.expType) {
        throw new OfDecodeError('bad_value', 'experimenter multipart reply parts mix experimenter ids or types', ctx);
      }
      data.push(b.data);
    }
    return { ...merged, body: { ...head, data: Buffer.concat(data) } };
  }
  throw new OfDecodeError('bad_value', `a ${head.mpType} reply is a single entry and cannot come in ${parts.length} parts`, ctx);
}

/** bytes a body occupies on the wire */
function encodedReplyBodyLength(body: MultipartReplyBody): number {
  const w = new Writer(256);
  encodeReplyBody(w, body);
  return w.pos;
}

/**
 * Splits a reply whose list body would not fit in one message into parts of at most `maxLen`
 * bytes each, OFPMPF_REPLY_MORE set on all but the last (which keeps `msg.flags`); entries are
 * never cut. Other bodies, including experimenter data whose entry boundaries we cannot know,
 * come back whole as one part.
 */
export function splitMultipartReply(msg: MultipartReply, maxLen = OFP_MAX_MESSAGE_LEN): MultipartReply[] {
  const overhead = OFP_HEADER_LEN + OFP_MULTIPART_HEADER_LEN;
  if (!Number.isInteger(maxLen) || maxLen <= overhead || maxLen > OFP_MAX_MESSAGE_LEN) {
    throw new OfEncodeError(`split size ${maxLen} must be an integer in ${overhead + 1}..${OFP_MAX_MESSAGE_LEN}`, { xid: msg.xid });
  }
  const body = msg.body;
  if (!isListBody(body)) return [msg];
  const budget = maxLen - overhead;
  const groups: unknown[][] = [];
  let current: unknown[] = [];
  let used = 0;
  for (const entry of entriesOf(body)) {
    const size = encodedReplyBodyLength(withEntries(body, [entry]));
    if (size > budget) {
      throw new OfEncodeError(`a ${body.mpType} entry of ${size} bytes does not fit in a ${maxLen}-byte message`, { xid: msg.xid });
    }
    if (used + size > budget) {
      groups.push(current);
      current = [];
      used = 0;
    }
    current.push(entry);
    used += size;
  }
  groups.push(current);
  return groups.map((entries, i) => ({
    type: 'MULTIPART_REPLY',
    xid: msg.xid,
    flags: i < groups.length - 1 ? msg.flags | OFPMPF_REPLY_MORE : msg.flags,
    body: withEntries(body, entries),
  }));
}

// ---- ONF flow monitor (experimenter multipart body, OF1.3 extension) ----

export const ONFMP_FLOW_MONITOR = 1870;
const ONF_FLOW_MONITOR_REQUEST_FIXED_LEN = 16;

/** One entry of an ONFMP_FLOW_MONITOR request body. */
export interface OnfFlowMonitorRequest {
  id: number;
  /** ONFFMF_* bits */
  flags: number;
  outPort: number;
  tableId: number;
  /** OXM TLVs only: no ofp_match header; padded to 8 bytes on the wire */
  match: Match;
}

/** Decodes the `data` of an ONF flow monitor request (experimenter 0x4f4e4600, exp_type 1870). */
export function decodeOnfFlowMonitorRequests(data: Buffer): OnfFlowMonitorRequest[] {
  return decodeAll(new Reader(data), (r) => {
    const at = r.offset;
    if (r.remaining < ONF_FLOW_MONITOR_REQUEST_FIXED_LEN) {
      throw new OfDecodeError('bad_length', `ONF flow monitor request: ${r.remaining} bytes left, need ${ONF_FLOW_MONITOR_REQUEST_FIXED_LEN}`, {
        offset: at,
      });
    }
    const id = r.u32();
    const flags = r.u16();
    const matchLen = r.u16();
    const outPort = r.u32();
    const tableId = r.u8();
    r.skip(3);
    const m = r.sub(matchLen, 'ONF flow monitor match');
    const match = decodeAll(m, decodeOxm);
    const pad = (8 - (matchLen % 8)) % 8;
    if (r.remaining < pad) throw new OfDecodeError('bad_length', 'ONF flow monitor match padding overruns the body', { offset: at });
    r.skip(pad);
    return { id, flags, outPort, tableId, match };
  });
}

export function encodeOnfFlowMonitorRequests(requests: readonly OnfFlowMonitorRequest[]): Buffer {
  const w = new Writer(64);
  for (const q of requests) {
    const start = w.pos;
    w.u32(q.id).u16(q.flags).u16(0).u32(q.outPort).u8(q.tableId).zeros(3);
    for (const tlv of q.match) encodeOxm(w, tlv);
    w.patchU16(start + 6, w.pos - start - ONF_FLOW_MONITOR_REQUEST_FIXED_LEN);
    w.padTo(8, start);
  }
  return Buffer.from(w.finish());
}
