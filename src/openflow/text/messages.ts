// One-line, ovs-ofctl-like rendering of every OpenFlow 1.3 message, for logs and golden tests.
import {
  OFP_HEADER_LEN,
  OFP_NO_BUFFER,
  OFPBAC,
  OFPBIC,
  OFPBMC,
  OFPBRC,
  OFPET,
  OFPFF_CHECK_OVERLAP,
  OFPFF_NO_BYT_COUNTS,
  OFPFF_NO_PKT_COUNTS,
  OFPFF_RESET_COUNTS,
  OFPFF_SEND_FLOW_REM,
  OFPG_ANY,
  OFPHFC,
  OFPP,
  OFPT,
} from '../constants';
import { OfDecodeError } from '../errors';
import type { OfMessage, OfMessageOf } from '../message';
import type { ErrorMsg, Experimenter, HelloElement } from '../messages/basic';
import type { MultipartMessage } from '../messages/multipart';
import { bundleErrorCode, decodeBundle, isBundle, OFPBF_ATOMIC, OFPBF_ORDERED, OFPBFC, type Bundle } from '../messages/bundle';
import { OFPPS_BLOCKED, OFPPS_LINK_DOWN, OFPPS_LIVE, OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV, OFPPC_PORT_DOWN, type Port } from '../port';
import { formatActions, formatInstructions } from './actions';
import { bitNames, hex, portName, tableName } from './common';
import { formatMatch } from './match';
import { formatBucket, formatMeterBand, formatMultipart, formatQueueProp } from './multipart';

/** OpenFlow wire version to its name: 4 → '1.3'. */
function versionName(v: number): string {
  return v >= 1 && v <= 6 ? `1.${v - 1}` : hex(v);
}

function helloElement(el: HelloElement): string {
  return el.type === 'versionbitmap'
    ? `versions=${el.versions.map(versionName).join(',')}`
    : `element(type=${el.elemType},len=${el.data.length})`;
}

/** Per error type, the OVS name prefix and the code names we know. */
const ERROR_CODE_NAMES: Partial<Record<OFPET, [string, Record<number, string>]>> = {
  [OFPET.HELLO_FAILED]: ['OFPHFC', OFPHFC],
  [OFPET.BAD_REQUEST]: ['OFPBRC', OFPBRC],
  [OFPET.BAD_ACTION]: ['OFPBAC', OFPBAC],
  [OFPET.BAD_INSTRUCTION]: ['OFPBIC', OFPBIC],
  [OFPET.BAD_MATCH]: ['OFPBMC', OFPBMC],
};

/** The offending request's type and xid, read from its header (the data is often cut to 64 bytes). */
function offendingHeader(data: Buffer): string {
  if (data.length < OFP_HEADER_LEN) return `data_len=${data.length}`;
  const name = OFPT[data[1]!] ?? String(data[1]);
  return `offending=OFPT_${name} offending_xid=${hex(data.readUInt32BE(4))} data_len=${data.length}`;
}

/** The error as OVS names it (`OFPBRC_BAD_TYPE`), or its type name and numeric code. */
function errorName(msg: ErrorMsg): string {
  if (msg.errType === OFPET.EXPERIMENTER) {
    const bundleCode = bundleErrorCode(msg);
    return bundleCode === undefined
      ? `type=EXPERIMENTER experimenter=${hex(msg.experimenter ?? 0)} exp_type=${msg.code}`
      : `OFPBFC_${OFPBFC[bundleCode]}`;
  }
  const known = ERROR_CODE_NAMES[msg.errType as OFPET];
  const codeName = known?.[1][msg.code];
  if (known && codeName !== undefined) return `${known[0]}_${codeName}`;
  return `type=${OFPET[msg.errType] ?? msg.errType} code=${msg.code}`;
}

function errorBody(msg: ErrorMsg): string {
  const detail = msg.errType === OFPET.HELLO_FAILED ? `reason=${JSON.stringify(msg.data.toString('ascii'))}` : offendingHeader(msg.data);
  return `${errorName(msg)} ${detail}`;
}

const BUNDLE_FLAG_NAMES: readonly [number, string][] = [
  [OFPBF_ATOMIC, 'atomic'],
  [OFPBF_ORDERED, 'ordered'],
];

function bundleBody(b: Bundle): string {
  const head = `bundle_id=${hex(b.bundleId)}`;
  const flags = `flags=${bitNames(b.flags, BUNDLE_FLAG_NAMES)}`;
  return b.kind === 'control'
    ? `ONF_BUNDLE_CONTROL ${head} type=${b.ctlType} ${flags}`
    : `ONF_BUNDLE_ADD ${head} ${flags} message={${formatMessage(b.message)}}`;
}

function experimenterBody(msg: Experimenter): string {
  if (isBundle(msg)) {
    const b = decodeBundle(msg);
    return b instanceof OfDecodeError ? `ONF_BUNDLE undecodable=${JSON.stringify(b.message)}` : bundleBody(b);
  }
  return `experimenter=${hex(msg.experimenter)} exp_type=${msg.expType} data_len=${msg.data.length}`;
}

const FLOW_MOD_FLAG_NAMES: readonly [number, string][] = [
  [OFPFF_SEND_FLOW_REM, 'send_flow_rem'],
  [OFPFF_CHECK_OVERLAP, 'check_overlap'],
  [OFPFF_RESET_COUNTS, 'reset_counts'],
  [OFPFF_NO_PKT_COUNTS, 'no_packet_counts'],
  [OFPFF_NO_BYT_COUNTS, 'no_byte_counts'],
];

/** Matches and action lists render as ovs-ofctl does: nothing for an empty match. */
function withMatch(parts: string[], matchText: string): string[] {
  return matchText ? [...parts, matchText] : parts;
}

function flowModBody(msg: OfMessageOf<'FLOW_MOD'>): string {
  const parts: string[] = [];
  // 'add' is the default, as in ovs-ofctl's flow syntax.
  if (msg.command !== 'add') parts.push(`command=${msg.command}`);
  parts.push(msg.cookieMask ? `cookie=${hex(msg.cookie)}/${hex(msg.cookieMask)}` : `cookie=${hex(msg.cookie)}`);
  parts.push(`table=${tableName(msg.tableId)}`);
  if (msg.idleTimeout) parts.push(`idle_timeout=${msg.idleTimeout}`);
  if (msg.hardTimeout) parts.push(`hard_timeout=${msg.hardTimeout}`);
  parts.push(`priority=${msg.priority}`);
  if (msg.bufferId !== OFP_NO_BUFFER) parts.push(`buffer_id=${hex(msg.bufferId)}`);
  if (msg.outPort !== OFPP.ANY) parts.push(`out_port=${portName(msg.outPort)}`);
  if (msg.outGroup !== OFPG_ANY) parts.push(`out_group=${msg.outGroup}`);
  if (msg.flags) parts.push(bitNames(msg.flags, FLOW_MOD_FLAG_NAMES));
  return [...withMatch(parts, formatMatch(msg.match)), `actions=${formatInstructions(msg.instructions)}`].join(' ');
}

const PACKET_IN_REASONS = ['no_match', 'action', 'invalid_ttl'];
const FLOW_REMOVED_REASONS = ['idle', 'hard', 'delete', 'group_delete'];
const PORT_STATUS_REASONS = ['add', 'delete', 'modify'];
const ROLES = ['nochange', 'equal', 'master', 'slave'];
const FRAG_MODES = ['normal', 'drop', 'reassemble', 'nx_match'];
/** OFPC_FRAG_MASK: the fragment-handling bits of switch config flags */
const OFPC_FRAG_MASK = 3;

const reasonName = (names: readonly string[], code: number): string => names[code] ?? String(code);

const PORT_CONFIG_NAMES: readonly [number, string][] = [
  [OFPPC_PORT_DOWN, 'port_down'],
  [OFPPC_NO_RECV, 'no_recv'],
  [OFPPC_NO_FWD, 'no_fwd'],
  [OFPPC_NO_PACKET_IN, 'no_packet_in'],
];
const PORT_STATE_NAMES: readonly [number, string][] = [
  [OFPPS_LINK_DOWN, 'link_down'],
  [OFPPS_BLOCKED, 'blocked'],
  [OFPPS_LIVE, 'live'],
];

function portBody(p: Port): string {
  return [
    `port=${portName(p.portNo)}`,
    `name=${JSON.stringify(p.name)}`,
    `addr=${p.hwAddr}`,
    `config=${bitNames(p.config, PORT_CONFIG_NAMES)}`,
    `state=${bitNames(p.state, PORT_STATE_NAMES)}`,
    `curr=${hex(p.curr)}`,
    `speed=${p.currSpeed}/${p.maxSpeed}kbps`,
  ].join(' ');
}

function asyncMask(name: string, [master, slave]: readonly [number, number]): string {
  return `${name}=${hex(master)}/${hex(slave)}`;
}

function body(msg: Exclude<OfMessage, MultipartMessage>): string {
  switch (msg.type) {
    case 'HELLO':
      return msg.elements.map(helloElement).join(' ');
    case 'ERROR':
      return errorBody(msg);
    case 'ECHO_REQUEST':
    case 'ECHO_REPLY':
      return `data_len=${msg.data.length}`;
    case 'EXPERIMENTER':
      return experimenterBody(msg);
    case 'FEATURES_REPLY':
      return [
        `dpid=${msg.datapathId.toString(16).padStart(16, '0')}`,
        `n_tables=${msg.nTables}`,
        `n_buffers=${msg.nBuffers}`,
        `auxiliary_id=${msg.auxiliaryId}`,
        `capabilities=${hex(msg.capabilities)}`,
      ].join(' ');
    case 'GET_CONFIG_REPLY':
    case 'SET_CONFIG': {
      const frags = `frags=${FRAG_MODES[msg.flags & OFPC_FRAG_MASK]}`;
      const otherFlags = msg.flags & ~OFPC_FRAG_MASK ? ` flags=${hex(msg.flags)}` : '';
      return `${frags}${otherFlags} miss_send_len=${msg.missSendLen}`;
    }
    case 'PACKET_IN':
      return withMatch(
        [
          `table=${tableName(msg.tableId)}`,
          `cookie=${hex(msg.cookie)}`,
          `reason=${reasonName(PACKET_IN_REASONS, msg.reason)}`,
          `total_len=${msg.totalLen}`,
          ...(msg.bufferId === OFP_NO_BUFFER ? [] : [`buffer_id=${hex(msg.bufferId)}`]),
        ],
        formatMatch(msg.match),
      ).concat(`data_len=${msg.data.length}`).join(' ');
    case 'FLOW_REMOVED': {
      const nsec = String(msg.durationNsec).padStart(9, '0');
      return withMatch(
        [
          `reason=${reasonName(FLOW_REMOVED_REASONS, msg.reason)}`,
          `cookie=${hex(msg.cookie)}`,
          `table=${tableName(msg.tableId)}`,
          `priority=${msg.priority}`,
          `duration=${msg.durationSec}.${nsec}s`,
          `idle_timeout=${msg.idleTimeout}`,
          `hard_timeout=${msg.hardTimeout}`,
          `n_packets=${msg.packetCount}`,
          `n_bytes=${msg.byteCount}`,
        ],
        formatMatch(msg.match),
      ).join(' ');
    }
    case 'PORT_STATUS':
      return `reason=${reasonName(PORT_STATUS_REASONS, msg.reason)} ${portBody(msg.desc)}`;
    case 'PACKET_OUT': {
      const buffer = msg.bufferId === OFP_NO_BUFFER ? [] : [`buffer_id=${hex(msg.bufferId)}`];
      return [`in_port=${portName(msg.inPort)}`, ...buffer, `actions=${formatActions(msg.actions)}`, `data_len=${msg.data.length}`].join(' ');
    }
    case 'FLOW_MOD':
      return flowModBody(msg);
    case 'GROUP_MOD':
      return [`command=${msg.command}`, `group_id=${msg.groupId}`, `type=${msg.groupType}`, ...msg.buckets.map(formatBucket)].join(' ');
    case 'PORT_MOD':
      return [
        `port=${portName(msg.portNo)}`,
        `addr=${msg.hwAddr}`,
        `config=${hex(msg.config)}/${hex(msg.mask)}`,
        `advertise=${hex(msg.advertise)}`,
      ].join(' ');
    case 'TABLE_MOD':
      return `table=${tableName(msg.tableId)} config=${hex(msg.config)}`;
    case 'QUEUE_GET_CONFIG_REQUEST':
      return `port=${portName(msg.port)}`;
    case 'QUEUE_GET_CONFIG_REPLY':
      return [
        `port=${portName(msg.port)}`,
        ...msg.queues.map((q) => `queue=${q.queueId}@${portName(q.port)}{${q.properties.map(formatQueueProp).join(',')}}`),
      ].join(' ');
    case 'ROLE_REQUEST':
    case 'ROLE_REPLY':
      return `role=${reasonName(ROLES, msg.role)} generation_id=${msg.generationId}`;
    case 'GET_ASYNC_REPLY':
    case 'SET_ASYNC':
      return [
        asyncMask('packet_in', msg.packetInMask),
        asyncMask('port_status', msg.portStatusMask),
        asyncMask('flow_removed', msg.flowRemovedMask),
      ].join(' ');
    case 'METER_MOD':
      return [
        `command=${msg.command}`,
        `meter=${msg.meterId}`,
        `flags=${hex(msg.flags)}`,
        ...msg.bands.map(formatMeterBand),
      ].join(' ');
    case 'FEATURES_REQUEST':
    case 'GET_CONFIG_REQUEST':
    case 'BARRIER_REQUEST':
    case 'BARRIER_REPLY':
    case 'GET_ASYNC_REQUEST':
      return '';
  }
}

/** One line, ovs-ofctl-like: `OFPT_FLOW_MOD xid=0x5 cookie=0x1 table=3 priority=100 ip,nw_dst=10.0.0.5 actions=output:2`. */
export function formatMessage(msg: OfMessage): string {
  // Multipart lines follow ovs-ofctl's own shape: `OFPST_FLOW reply (xid=0x2): …`.
  if (msg.type === 'MULTIPART_REQUEST' || msg.type === 'MULTIPART_REPLY') return formatMultipart(msg);
  const rest = body(msg);
  return `OFPT_${msg.type} xid=${hex(msg.xid)}${rest ? ` ${rest}` : ''}`;
}
