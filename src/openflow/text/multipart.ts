// One-line, ovs-ofctl-like rendering of multipart messages and of the
// buckets, meter bands and queue properties they share with GROUP_MOD, METER_MOD and QUEUE_GET_CONFIG_REPLY.
import { OFPG_ALL, OFPG_ANY, OFPM_ALL, OFPMPF_REPLY_MORE, OFPP, OFPQ_ALL, ONF_VENDOR_ID } from '../constants';
import {
  OFPMF_BURST,
  OFPMF_KBPS,
  OFPMF_PKTPS,
  OFPMF_STATS,
  type Bucket,
  type MeterBand,
  type QueueProp,
} from '../messages/group-meter-queue';
import {
  ONFMP_FLOW_MONITOR,
  type FlowFilter,
  type FlowStats,
  type MultipartMessage,
  type MultipartReplyBody,
  type MultipartRequestBody,
  type MultipartType,
} from '../messages/multipart';
import { formatActions, formatInstructions } from './actions';
import { bitNames, hex, portName, tableName } from './common';
import { formatMatch } from './match';

/** Lists longer than this are summarized by their count alone, to keep the line short. */
const ENTRIES_SHOWN_MAX = 4;

const idOrAll = (id: number, all: number): string => (id === all ? 'ALL' : String(id));
const duration = (sec: number, nsec: number): string => `${sec}.${String(nsec).padStart(9, '0')}s`;
const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** `N nouns`, followed by the entries when there are few enough to read on one line. */
function list<T>(entries: readonly T[], noun: string, format: (e: T) => string): string {
  const count = plural(entries.length, noun);
  return entries.length === 0 || entries.length > ENTRIES_SHOWN_MAX ? count : `${count}: ${entries.map(format).join('; ')}`;
}

/** OVS's name for each multipart type (OFPST_PORT for port statistics). */
function statsName(mpType: MultipartType): string {
  return mpType === 'PORT_STATS' ? 'OFPST_PORT' : `OFPST_${mpType}`;
}

const METER_FLAG_NAMES: readonly [number, string][] = [
  [OFPMF_KBPS, 'kbps'],
  [OFPMF_PKTPS, 'pktps'],
  [OFPMF_BURST, 'burst'],
  [OFPMF_STATS, 'stats'],
];

const meterFlags = (flags: number): string => bitNames(flags, METER_FLAG_NAMES);

export function formatBucket(b: Bucket): string {
  const parts = [`weight:${b.weight}`];
  if (b.watchPort !== OFPP.ANY) parts.push(`watch_port:${portName(b.watchPort)}`);
  if (b.watchGroup !== OFPG_ANY) parts.push(`watch_group:${b.watchGroup}`);
  return `bucket=${parts.join(',')},actions=${formatActions(b.actions)}`;
}

export function formatMeterBand(b: MeterBand): string {
  const common = `rate=${b.rate} burst_size=${b.burstSize}`;
  switch (b.type) {
    case 'drop':
      return `band=drop ${common}`;
    case 'dscp_remark':
      return `band=dscp_remark ${common} prec_level=${b.precLevel}`;
    case 'experimenter':
      return `band=experimenter ${common} experimenter=${hex(b.experimenter)} data_len=${b.data.length}`;
  }
}

export function formatQueueProp(p: QueueProp): string {
  return p.type === 'experimenter' ? `experimenter=${hex(p.experimenter)}/len=${p.data.length}` : `${p.type}=${p.rate}`;
}

function flowFilter(f: FlowFilter): string {
  const parts = [`table=${tableName(f.tableId)}`];
  if (f.outPort !== OFPP.ANY) parts.push(`out_port=${portName(f.outPort)}`);
  if (f.outGroup !== OFPG_ANY) parts.push(`out_group=${f.outGroup}`);
  if (f.cookieMask) parts.push(`cookie=${hex(f.cookie)}/${hex(f.cookieMask)}`);
  const match = formatMatch(f.match);
  if (match) parts.push(match);
  return parts.join(' ');
}

function flowStats(f: FlowStats): string {
  const parts = [`cookie=${hex(f.cookie)}`, `table=${f.tableId}`, `priority=${f.priority}`];
  const match = formatMatch(f.match);
  if (match) parts.push(match);
  parts.push(`actions=${formatInstructions(f.instructions)}`);
  return parts.join(' ');
}

function experimenter(e: { experimenter: number; expType: number; data: Buffer }): string {
  return `experimenter=${hex(e.experimenter)} exp_type=${e.expType} data_len=${e.data.length}`;
}

function requestBody(b: MultipartRequestBody): string {
  switch (b.mpType) {
    case 'DESC':
    case 'TABLE':
    case 'GROUP_DESC':
    case 'GROUP_FEATURES':
    case 'METER_FEATURES':
    case 'PORT_DESC':
      return '';
    case 'FLOW':
    case 'AGGREGATE':
      return flowFilter(b);
    case 'PORT_STATS':
      return `port=${portName(b.portNo)}`;
    case 'QUEUE':
      return `port=${portName(b.portNo)} queue=${idOrAll(b.queueId, OFPQ_ALL)}`;
    case 'GROUP':
      return `group_id=${idOrAll(b.groupId, OFPG_ALL)}`;
    case 'METER':
    case 'METER_CONFIG':
      return `meter=${idOrAll(b.meterId, OFPM_ALL)}`;
    case 'TABLE_FEATURES':
      return b.tables.length ? list(b.tables, 'table', (t) => `table=${t.tableId} name=${JSON.stringify(t.name)}`) : '';
    case 'EXPERIMENTER':
      return experimenter(b);
  }
}

function replyBody(b: MultipartReplyBody): string {
  switch (b.mpType) {
    case 'DESC':
      return [
        `mfr=${JSON.stringify(b.mfrDesc)}`,
        `hw=${JSON.stringify(b.hwDesc)}`,
        `sw=${JSON.stringify(b.swDesc)}`,
        `serial=${JSON.stringify(b.serialNum)}`,
        `dp=${JSON.stringify(b.dpDesc)}`,
      ].join(' ');
    case 'FLOW':
      return list(b.flows, 'flow', flowStats);
    case 'AGGREGATE':
      return `packet_count=${b.packetCount} byte_count=${b.byteCount} flow_count=${b.flowCount}`;
    case 'TABLE':
      return list(b.tables, 'table', (t) =>
        `table=${t.tableId} active=${t.activeCount} lookup=${t.lookupCount} matched=${t.matchedCount}`);
    case 'PORT_STATS':
      return list(b.ports, 'port', (p) =>
        [
          `port=${portName(p.portNo)}`,
          `rx_pkts=${p.rxPackets} rx_bytes=${p.rxBytes} rx_drop=${p.rxDropped} rx_errs=${p.rxErrors}`,
          `tx_pkts=${p.txPackets} tx_bytes=${p.txBytes} tx_drop=${p.txDropped} tx_errs=${p.txErrors}`,
        ].join(' '));
    case 'QUEUE':
      return list(b.queues, 'queue', (q) =>
        `port=${portName(q.portNo)} queue=${q.queueId} tx_pkts=${q.txPackets} tx_bytes=${q.txBytes} tx_errs=${q.txErrors}`);
    case 'GROUP':
      return list(b.groups, 'group', (g) =>
        [
          `group_id=${g.groupId} ref_count=${g.refCount} packet_count=${g.packetCount} byte_count=${g.byteCount}`,
          `duration=${duration(g.durationSec, g.durationNsec)}`,
          ...g.bucketStats.map((c, i) => `bucket${i}:packet_count=${c.packetCount},byte_count=${c.byteCount}`),
        ].join(' '));
    case 'GROUP_DESC':
      return list(b.groups, 'group', (g) => [`group_id=${g.groupId}`, `type=${g.groupType}`, ...g.buckets.map(formatBucket)].join(' '));
    case 'GROUP_FEATURES':
      return [
        `types=${hex(b.types)}`,
        `capabilities=${hex(b.capabilities)}`,
        `max_groups=${b.maxGroups.join(',')}`,
        `actions=${b.actions.map(hex).join(',')}`,
      ].join(' ');
    case 'METER':
      return list(b.meters, 'meter', (m) =>
        [
          `meter=${m.meterId} flow_count=${m.flowCount} packet_in_count=${m.packetInCount} byte_in_count=${m.byteInCount}`,
          `duration=${duration(m.durationSec, m.durationNsec)}`,
          ...m.bandStats.map((c, i) => `band${i}:packet_count=${c.packetCount},byte_count=${c.byteCount}`),
        ].join(' '));
    case 'METER_CONFIG':
      return list(b.meters, 'meter', (m) => [`meter=${m.meterId}`, meterFlags(m.flags), ...m.bands.map(formatMeterBand)].join(' '));
    case 'METER_FEATURES':
      return [
        `max_meter=${b.maxMeter}`,
        `band_types=${hex(b.bandTypes)}`,
        `capabilities=${hex(b.capabilities)}`,
        `max_bands=${b.maxBands}`,
        `max_color=${b.maxColor}`,
      ].join(' ');
    case 'TABLE_FEATURES':
      return list(b.tables, 'table', (t) =>
        `table=${t.tableId} name=${JSON.stringify(t.name)} max_entries=${t.maxEntries} ${plural(t.properties.length, 'property')}`);
    case 'PORT_DESC':
      return list(b.ports, 'port', (p) => `port=${portName(p.portNo)} name=${JSON.stringify(p.name)} addr=${p.hwAddr}`);
    case 'EXPERIMENTER':
      return experimenter(b);
  }
}

/** `OFPST_FLOW reply (xid=0x2): 2 flows: cookie=0x0 table=0 priority=0 actions=drop; …`, on one line. */
export function formatMultipart(msg: MultipartMessage): string {
  const body = msg.body;
  const isRequest = msg.type === 'MULTIPART_REQUEST';
  const name = body.mpType === 'EXPERIMENTER' && body.experimenter === ONF_VENDOR_ID && body.expType === ONFMP_FLOW_MONITOR
    ? 'ONFST_FLOW_MONITOR'
    : statsName(body.mpType);
  const parts: string[] = [];
  // REQ_MORE and REPLY_MORE share bit 0.
  if (msg.flags & OFPMPF_REPLY_MORE) parts.push('flags=[more]');
  const text = isRequest ? requestBody(msg.body) : replyBody(msg.body);
  if (text) parts.push(text);
  const head = `${name} ${isRequest ? 'request' : 'reply'} (xid=${hex(msg.xid)})`;
  return parts.length ? `${head}: ${parts.join(' ')}` : head;
}
