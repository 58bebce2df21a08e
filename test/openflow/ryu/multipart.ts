// Owner: multipart helper. Converts MULTIPART_*, GROUP_MOD, METER_MOD and QUEUE_GET_CONFIG_* into Ryu's JSON shape.
import {
  allFieldSpecs,
  decodeOnfFlowMonitorRequests,
  encodeOxm,
  GROUP_TYPES,
  MOD_COMMANDS,
  OFPMP,
  OFPMBT_DROP,
  OFPMBT_DSCP_REMARK,
  OFPMBT_EXPERIMENTER,
  OFPQT_EXPERIMENTER,
  OFPQT_MAX_RATE,
  OFPQT_MIN_RATE,
  ONF_VENDOR_ID,
  ONFMP_FLOW_MONITOR,
  Writer,
  type Bucket,
  type Counters,
  type ExperimenterMultipartBody,
  type Match,
  type MeterBand,
  type MultipartReplyBody,
  type MultipartRequestBody,
  type OfMessage,
  type OxmId,
  type PacketQueue,
  type QueueProp,
  type TableFeatureProp,
  type TableFeatures,
  type TlvId,
} from '../../../src/openflow';
import { actionToRyu, instructionToRyu } from './actions';
import { matchToRyu } from './match';
import { portToRyu } from './messages';

const base64 = (b: Buffer): string => b.toString('base64');

/** Ryu's table-feature property type codes (OFPTFPT_*), by our property name. */
const TFPT_CODES: Record<TableFeatureProp['type'], number> = {
  instructions: 0, instructions_miss: 1, next_tables: 2, next_tables_miss: 3,
  write_actions: 4, write_actions_miss: 5, apply_actions: 6, apply_actions_miss: 7,
  match: 8, wildcards: 10, write_setfield: 12, write_setfield_miss: 13, apply_setfield: 14, apply_setfield_miss: 15,
  experimenter: 0xfffe, experimenter_miss: 0xffff,
};

const REQUEST_CLASS: Record<MultipartRequestBody['mpType'], string> = {
  DESC: 'OFPDescStatsRequest', FLOW: 'OFPFlowStatsRequest', AGGREGATE: 'OFPAggregateStatsRequest',
  TABLE: 'OFPTableStatsRequest', PORT_STATS: 'OFPPortStatsRequest', QUEUE: 'OFPQueueStatsRequest',
  GROUP: 'OFPGroupStatsRequest', GROUP_DESC: 'OFPGroupDescStatsRequest', GROUP_FEATURES: 'OFPGroupFeaturesStatsRequest',
  METER: 'OFPMeterStatsRequest', METER_CONFIG: 'OFPMeterConfigStatsRequest', METER_FEATURES: 'OFPMeterFeaturesStatsRequest',
  TABLE_FEATURES: 'OFPTableFeaturesStatsRequest', PORT_DESC: 'OFPPortDescStatsRequest', EXPERIMENTER: 'OFPExperimenterStatsRequest',
};

const REPLY_CLASS: Record<MultipartReplyBody['mpType'], string> = {
  DESC: 'OFPDescStatsReply', FLOW: 'OFPFlowStatsReply', AGGREGATE: 'OFPAggregateStatsReply',
  TABLE: 'OFPTableStatsReply', PORT_STATS: 'OFPPortStatsReply', QUEUE: 'OFPQueueStatsReply',
  GROUP: 'OFPGroupStatsReply', GROUP_DESC: 'OFPGroupDescStatsReply', GROUP_FEATURES: 'OFPGroupFeaturesStatsReply',
  METER: 'OFPMeterStatsReply', METER_CONFIG: 'OFPMeterConfigStatsReply', METER_FEATURES: 'OFPMeterFeaturesStatsReply',
  TABLE_FEATURES: 'OFPTableFeaturesStatsReply', PORT_DESC: 'OFPPortDescStatsReply', EXPERIMENTER: 'OFPExperimenterStatsReply',
};

function bucketToRyu(b: Bucket): unknown {
  return {
    OFPBucket: { weight: b.weight, watch_port: b.watchPort, watch_group: b.watchGroup, actions: b.actions.map(actionToRyu) },
  };
}

function bandToRyu(b: MeterBand): unknown {
  switch (b.type) {
    case 'drop':
      return { OFPMeterBandDrop: { type: OFPMBT_DROP, rate: b.rate, burst_size: b.burstSize } };
    case 'dscp_remark':
      return { OFPMeterBandDscpRemark: { type: OFPMBT_DSCP_REMARK, rate: b.rate, burst_size: b.burstSize, prec_level: b.precLevel } };
    case 'experimenter':
      return { OFPMeterBandExperimenter: { type: OFPMBT_EXPERIMENTER, rate: b.rate, burst_size: b.burstSize, experimenter: b.experimenter } };
  }
}

function queuePropToRyu(p: QueueProp): unknown {
  switch (p.type) {
    case 'min_rate':
      return { OFPQueuePropMinRate: { property: OFPQT_MIN_RATE, rate: p.rate } };
    case 'max_rate':
      return { OFPQueuePropMaxRate: { property: OFPQT_MAX_RATE, rate: p.rate } };
    case 'experimenter':
      return { OFPQueuePropExperimenter: { property: OFPQT_EXPERIMENTER, experimenter: p.experimenter, data: [...p.data] } };
  }
}

function packetQueueToRyu(q: PacketQueue): unknown {
  return { OFPPacketQueue: { queue_id: q.queueId, port: q.port, properties: q.properties.map(queuePropToRyu) } };
}

function countersToRyu(cls: 'OFPBucketCounter' | 'OFPMeterBandStats', c: Counters): unknown {
  return cls === 'OFPBucketCounter'
    ? { OFPBucketCounter: { packet_count: c.packetCount, byte_count: c.byteCount } }
    : { OFPMeterBandStats: { packet_band_count: c.packetCount, byte_band_count: c.byteCount } };
}

/** Ryu names an OXM id by its field; the id's length bits are not part of the name (switches send 0). */
function oxmIdToRyu(id: OxmId): unknown {
  const oxmClass = id.header >>> 16;
  const oxmField = (id.header >>> 9) & 0x7f;
  const spec = allFieldSpecs().find(
    (s) => s.oxmClass === oxmClass && s.oxmField === oxmField && s.experimenter === id.experimenter,
  );
  return { OFPOxmId: { type: spec?.name ?? `oxm_0x${id.header.toString(16)}`, hasmask: (id.header >>> 8) & 1 } };
}

function tlvIdToRyu(cls: 'OFPInstructionId' | 'OFPActionId', id: TlvId): unknown {
  return { [cls]: { type: id.type } };
}

/** Ryu shows experimenter data as big-endian uint32 words. */
function words(data: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + 4 <= data.length; at += 4) out.push(data.readUInt32BE(at));
  return out;
}

function tablePropToRyu(p: TableFeatureProp): unknown {
  const type = TFPT_CODES[p.type];
  switch (p.type) {
    case 'instructions':
    case 'instructions_miss':
      return { OFPTableFeaturePropInstructions: { type, instruction_ids: p.instructionIds.map((i) => tlvIdToRyu('OFPInstructionId', i)) } };
    case 'next_tables':
    case 'next_tables_miss':
      return { OFPTableFeaturePropNextTables: { type, table_ids: p.tableIds } };
    case 'write_actions':
    case 'write_actions_miss':
    case 'apply_actions':
    case 'apply_actions_miss':
      return { OFPTableFeaturePropActions: { type, action_ids: p.actionIds.map((i) => tlvIdToRyu('OFPActionId', i)) } };
    case 'experimenter':
    case 'experimenter_miss':
      return { OFPTableFeaturePropExperimenter: { type, experimenter: p.experimenter, exp_type: p.expType, data: words(p.data) } };
    default:
      return { OFPTableFeaturePropOxm: { type, oxm_ids: p.oxmIds.map(oxmIdToRyu) } };
  }
}

function tableFeaturesToRyu(t: TableFeatures): unknown {
  return {
    OFPTableFeaturesStats: {
      table_id: t.tableId,
      name: t.name,
      metadata_match: t.metadataMatch,
      metadata_write: t.metadataWrite,
      config: t.config,
      max_entries: t.maxEntries,
      properties: t.properties.map(tablePropToRyu),
    },
  };
}

/** ONF flow monitor requests carry OXM TLVs without an ofp_match header; Ryu reports their byte length. */
function oxmBytes(m: Match): number {
  const w = new Writer();
  for (const tlv of m) encodeOxm(w, tlv);
  return w.pos;
}

function experimenterRequestToRyu(b: ExperimenterMultipartBody, flags: number): unknown {
  const head = { type: OFPMP.EXPERIMENTER, flags, experimenter: b.experimenter, exp_type: b.expType };
  if (b.experimenter === ONF_VENDOR_ID && b.expType === ONFMP_FLOW_MONITOR) {
    const body = decodeOnfFlowMonitorRequests(b.data).map((q) => ({
      ONFFlowMonitorRequest: {
        id: q.id,
        flags: q.flags,
        match_len: oxmBytes(q.match),
        out_port: q.outPort,
        table_id: q.tableId,
        match: matchToRyu(q.match),
      },
    }));
    return { ONFFlowMonitorStatsRequest: { ...head, body } };
  }
  return { OFPExperimenterStatsRequest: { ...head, data: base64(b.data) } };
}

function requestFieldsToRyu(b: MultipartRequestBody): Record<string, unknown> {
  switch (b.mpType) {
    case 'FLOW':
    case 'AGGREGATE':
      return {
        table_id: b.tableId, out_port: b.outPort, out_group: b.outGroup, cookie: b.cookie, cookie_mask: b.cookieMask,
        match: matchToRyu(b.match),
      };
    case 'PORT_STATS':
      return { port_no: b.portNo };
    case 'QUEUE':
      return { port_no: b.portNo, queue_id: b.queueId };
    case 'GROUP':
      return { group_id: b.groupId };
    case 'METER':
    case 'METER_CONFIG':
      return { meter_id: b.meterId };
    case 'TABLE_FEATURES':
      return { body: b.tables.map(tableFeaturesToRyu) };
    default:
      return {};
  }
}

function replyBodyToRyu(b: MultipartReplyBody): unknown {
  switch (b.mpType) {
    case 'DESC':
      return { OFPDescStats: { mfr_desc: b.mfrDesc, hw_desc: b.hwDesc, sw_desc: b.swDesc, serial_num: b.serialNum, dp_desc: b.dpDesc } };
    case 'FLOW':
      return b.flows.map((f) => ({
        OFPFlowStats: {
          table_id: f.tableId, duration_sec: f.durationSec, duration_nsec: f.durationNsec, priority: f.priority,
          idle_timeout: f.idleTimeout, hard_timeout: f.hardTimeout, flags: f.flags, cookie: f.cookie,
          packet_count: f.packetCount, byte_count: f.byteCount, match: matchToRyu(f.match),
          instructions: f.instructions.map(instructionToRyu),
        },
      }));
    case 'AGGREGATE':
      return { OFPAggregateStats: { packet_count: b.packetCount, byte_count: b.byteCount, flow_count: b.flowCount } };
    case 'TABLE':
      return b.tables.map((t) => ({
        OFPTableStats: { table_id: t.tableId, active_count: t.activeCount, lookup_count: t.lookupCount, matched_count: t.matchedCount },
      }));
    case 'PORT_STATS':
      return b.ports.map((p) => ({
        OFPPortStats: {
          port_no: p.portNo, rx_packets: p.rxPackets, tx_packets: p.txPackets, rx_bytes: p.rxBytes, tx_bytes: p.txBytes,
          rx_dropped: p.rxDropped, tx_dropped: p.txDropped, rx_errors: p.rxErrors, tx_errors: p.txErrors,
          rx_frame_err: p.rxFrameErr, rx_over_err: p.rxOverErr, rx_crc_err: p.rxCrcErr, collisions: p.collisions,
          duration_sec: p.durationSec, duration_nsec: p.durationNsec,
        },
      }));
    case 'QUEUE':
      return b.queues.map((q) => ({
        OFPQueueStats: {
          port_no: q.portNo, queue_id: q.queueId, tx_bytes: q.txBytes, tx_packets: q.txPackets, tx_errors: q.txErrors,
          duration_sec: q.durationSec, duration_nsec: q.durationNsec,
        },
      }));
    case 'GROUP':
      return b.groups.map((g) => ({
        OFPGroupStats: {
          group_id: g.groupId, ref_count: g.refCount, packet_count: g.packetCount, byte_count: g.byteCount,
          duration_sec: g.durationSec, duration_nsec: g.durationNsec,
          bucket_stats: g.bucketStats.map((c) => countersToRyu('OFPBucketCounter', c)),
        },
      }));
    case 'GROUP_DESC':
      return b.groups.map((g) => ({
        OFPGroupDescStats: { type: GROUP_TYPES.indexOf(g.groupType), group_id: g.groupId, buckets: g.buckets.map(bucketToRyu) },
      }));
    case 'GROUP_FEATURES':
      return {
        OFPGroupFeaturesStats: { types: b.types, capabilities: b.capabilities, max_groups: b.maxGroups, actions: b.actions },
      };
    case 'METER':
      return b.meters.map((m) => ({
        OFPMeterStats: {
          meter_id: m.meterId, flow_count: m.flowCount, packet_in_count: m.packetInCount, byte_in_count: m.byteInCount,
          duration_sec: m.durationSec, duration_nsec: m.durationNsec,
          band_stats: m.bandStats.map((c) => countersToRyu('OFPMeterBandStats', c)),
        },
      }));
    case 'METER_CONFIG':
      return b.meters.map((m) => ({ OFPMeterConfigStats: { flags: m.flags, meter_id: m.meterId, bands: m.bands.map(bandToRyu) } }));
    case 'METER_FEATURES':
      return [
        {
          OFPMeterFeaturesStats: {
            max_meter: b.maxMeter, band_types: b.bandTypes, capabilities: b.capabilities, max_bands: b.maxBands, max_color: b.maxColor,
          },
        },
      ];
    case 'TABLE_FEATURES':
      return b.tables.map(tableFeaturesToRyu);
    case 'PORT_DESC':
      return b.ports.map(portToRyu);
    case 'EXPERIMENTER':
      return { OFPExperimenterMultipart: { experimenter: b.experimenter, exp_type: b.expType, data: base64(b.data) } };
  }
}

export function multipartToRyu(msg: OfMessage): unknown {
  switch (msg.type) {
    case 'MULTIPART_REQUEST':
      if (msg.body.mpType === 'EXPERIMENTER') return experimenterRequestToRyu(msg.body, msg.flags);
      return {
        [REQUEST_CLASS[msg.body.mpType]]: { type: OFPMP[msg.body.mpType], flags: msg.flags, ...requestFieldsToRyu(msg.body) },
      };
    case 'MULTIPART_REPLY':
      return { [REPLY_CLASS[msg.body.mpType]]: { type: OFPMP[msg.body.mpType], flags: msg.flags, body: replyBodyToRyu(msg.body) } };
    case 'GROUP_MOD':
      return {
        OFPGroupMod: {
          command: MOD_COMMANDS.indexOf(msg.command),
          type: GROUP_TYPES.indexOf(msg.groupType),
          group_id: msg.groupId,
          buckets: msg.buckets.map(bucketToRyu),
        },
      };
    case 'METER_MOD':
      return {
        OFPMeterMod: { command: MOD_COMMANDS.indexOf(msg.command), flags: msg.flags, meter_id: msg.meterId, bands: msg.bands.map(bandToRyu) },
      };
    case 'QUEUE_GET_CONFIG_REQUEST':
      return { OFPQueueGetConfigRequest: { port: msg.port } };
    case 'QUEUE_GET_CONFIG_REPLY':
      return { OFPQueueGetConfigReply: { port: msg.port, queues: msg.queues.map(packetQueueToRyu) } };
    default:
      return undefined;
  }
}
