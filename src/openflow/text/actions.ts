/**
 * Actions and instructions as `ovs-ofctl -O OpenFlow13 dump-flows` prints them
 * (OVS 3.1, lib/ofp-actions.c and lib/learn.c formatters), so golden tests read like dump-flows.
 * Actions OVS does not implement (copy_ttl_*, push/pop_pbb, raw experimenter) get names in the same style.
 */
import type { Action } from '../actions';
import {
  NX_ACTION_SAMPLE_EGRESS,
  NX_ACTION_SAMPLE_INGRESS,
  NX_CT_F_COMMIT,
  NX_CT_F_FORCE,
  NX_CT_RECIRC_NONE,
  NX_LEARN_F_DELETE_LEARNED,
  NX_LEARN_F_SEND_FLOW_REM,
  NX_NAT_F_DST,
  NX_NAT_F_PERSISTENT,
  NX_NAT_F_PROTO_HASH,
  NX_NAT_F_PROTO_RANDOM,
  NX_NAT_F_SRC,
  type LearnSpec,
} from '../nicira';
import type { Instruction } from '../instructions';
import { fieldBits, fieldSpec, type FieldRef, type OxmTlv } from '../oxm';

/** How OVS prints a field's value (ovs-fields(7) "Format"). */
type ValueStyle = 'hex' | 'dec' | 'mac' | 'ipv4' | 'ipv6' | 'port16' | 'port32';

interface OvsField {
  /** OVS's field name, as set_field and learn print it */
  name: string;
  /** the name subfields print: the NXM name when the field has one, else the OXM name */
  subfieldName: string;
  /** OVS's width, which decides whether a subfield prints as `[]` */
  bits: number;
  style: ValueStyle;
}

const NXM0 = 0x0000;
const NXM1 = 0x0001;
const ERICOXM = 0x1000;
const OXM = 0x8000;
const PKT_REGS = 0x8001;

/** [OVS name, bits, style, OXM (class, field) or null, NXM (class, field) or null, subfield name] */
type Row = [string, number, ValueStyle, [number, number] | null, [number, number] | null, string];

/** Fields as ovs-fields(7) of OVS 3.1 lists them. */
const ROWS: Row[] = [
  ['in_port', 16, 'port16', null, [NXM0, 0], 'NXM_OF_IN_PORT'],
  ['in_port_oxm', 32, 'port32', [OXM, 0], null, 'OXM_OF_IN_PORT'],
  ['metadata', 64, 'hex', [OXM, 2], null, 'OXM_OF_METADATA'],
  ['eth_dst', 48, 'mac', [OXM, 3], [NXM0, 1], 'NXM_OF_ETH_DST'],
  ['eth_src', 48, 'mac', [OXM, 4], [NXM0, 2], 'NXM_OF_ETH_SRC'],
  ['eth_type', 16, 'hex', [OXM, 5], [NXM0, 3], 'NXM_OF_ETH_TYPE'],
  ['vlan_vid', 12, 'dec', [OXM, 6], null, 'OXM_OF_VLAN_VID'],
  ['vlan_pcp', 3, 'dec', [OXM, 7], null, 'OXM_OF_VLAN_PCP'],
  ['vlan_tci', 16, 'hex', null, [NXM0, 4], 'NXM_OF_VLAN_TCI'],
  ['ip_dscp', 6, 'dec', [OXM, 8], null, 'OXM_OF_IP_DSCP'],
  ['nw_tos', 8, 'dec', null, [NXM0, 5], 'NXM_OF_IP_TOS'],
  ['nw_ecn', 2, 'dec', [OXM, 9], [NXM1, 28], 'NXM_NX_IP_ECN'],
  ['nw_proto', 8, 'dec', [OXM, 10], [NXM0, 6], 'NXM_OF_IP_PROTO'],
  ['ip_src', 32, 'ipv4', [OXM, 11], [NXM0, 7], 'NXM_OF_IP_SRC'],
  ['ip_dst', 32, 'ipv4', [OXM, 12], [NXM0, 8], 'NXM_OF_IP_DST'],
  ['tcp_src', 16, 'dec', [OXM, 13], [NXM0, 9], 'NXM_OF_TCP_SRC'],
  ['tcp_dst', 16, 'dec', [OXM, 14], [NXM0, 10], 'NXM_OF_TCP_DST'],
  ['udp_src', 16, 'dec', [OXM, 15], [NXM0, 11], 'NXM_OF_UDP_SRC'],
  ['udp_dst', 16, 'dec', [OXM, 16], [NXM0, 12], 'NXM_OF_UDP_DST'],
  ['sctp_src', 16, 'dec', [OXM, 17], null, 'OXM_OF_SCTP_SRC'],
  ['sctp_dst', 16, 'dec', [OXM, 18], null, 'OXM_OF_SCTP_DST'],
  ['icmp_type', 8, 'dec', [OXM, 19], [NXM0, 13], 'NXM_OF_ICMP_TYPE'],
  ['icmp_code', 8, 'dec', [OXM, 20], [NXM0, 14], 'NXM_OF_ICMP_CODE'],
  ['arp_op', 16, 'dec', [OXM, 21], [NXM0, 15], 'NXM_OF_ARP_OP'],
  ['arp_spa', 32, 'ipv4', [OXM, 22], [NXM0, 16], 'NXM_OF_ARP_SPA'],
  ['arp_tpa', 32, 'ipv4', [OXM, 23], [NXM0, 17], 'NXM_OF_ARP_TPA'],
  ['arp_sha', 48, 'mac', [OXM, 24], [NXM1, 17], 'NXM_NX_ARP_SHA'],
  ['arp_tha', 48, 'mac', [OXM, 25], [NXM1, 18], 'NXM_NX_ARP_THA'],
  ['ipv6_src', 128, 'ipv6', [OXM, 26], [NXM1, 19], 'NXM_NX_IPV6_SRC'],
  ['ipv6_dst', 128, 'ipv6', [OXM, 27], [NXM1, 20], 'NXM_NX_IPV6_DST'],
  ['ipv6_label', 20, 'hex', [OXM, 28], [NXM1, 27], 'NXM_NX_IPV6_LABEL'],
  ['icmpv6_type', 8, 'dec', [OXM, 29], [NXM1, 21], 'NXM_NX_ICMPV6_TYPE'],
  ['icmpv6_code', 8, 'dec', [OXM, 30], [NXM1, 22], 'NXM_NX_ICMPV6_CODE'],
  ['nd_target', 128, 'ipv6', [OXM, 31], [NXM1, 23], 'NXM_NX_ND_TARGET'],
  ['nd_sll', 48, 'mac', [OXM, 32], [NXM1, 24], 'NXM_NX_ND_SLL'],
  ['nd_tll', 48, 'mac', [OXM, 33], [NXM1, 25], 'NXM_NX_ND_TLL'],
  ['nd_reserved', 32, 'dec', null, [ERICOXM, 1], 'ERICOXM_OF_ICMPV6_ND_RESERVED'],
  ['nd_options_type', 8, 'dec', null, [ERICOXM, 2], 'ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE'],
  ['mpls_label', 20, 'dec', [OXM, 34], null, 'OXM_OF_MPLS_LABEL'],
  ['mpls_tc', 3, 'dec', [OXM, 35], null, 'OXM_OF_MPLS_TC'],
  ['mpls_bos', 1, 'dec', [OXM, 36], null, 'OXM_OF_MPLS_BOS'],
  ['mpls_ttl', 8, 'dec', null, [NXM1, 30], 'NXM_NX_MPLS_TTL'],
  ['tun_id', 64, 'hex', [OXM, 38], [NXM1, 16], 'NXM_NX_TUN_ID'],
  ['ip_frag', 2, 'hex', null, [NXM1, 26], 'NXM_NX_IP_FRAG'],
  ['nw_ttl', 8, 'dec', null, [NXM1, 29], 'NXM_NX_IP_TTL'],
  ['tun_src', 32, 'ipv4', null, [NXM1, 31], 'NXM_NX_TUN_IPV4_SRC'],
  ['tun_dst', 32, 'ipv4', null, [NXM1, 32], 'NXM_NX_TUN_IPV4_DST'],
  ['pkt_mark', 32, 'hex', null, [NXM1, 33], 'NXM_NX_PKT_MARK'],
  ['tcp_flags', 12, 'hex', null, [NXM1, 34], 'NXM_NX_TCP_FLAGS'],
  ['conj_id', 32, 'dec', null, [NXM1, 37], 'NXM_NX_CONJ_ID'],
  ['tun_metadata0', 32, 'hex', null, [NXM1, 40], 'NXM_NX_TUN_METADATA0'],
  ['tun_gbp_id', 16, 'dec', null, [NXM1, 38], 'NXM_NX_TUN_GBP_ID'],
  ['tun_gbp_flags', 8, 'hex', null, [NXM1, 39], 'NXM_NX_TUN_GBP_FLAGS'],
  ['tun_flags', 1, 'hex', null, [NXM1, 104], 'NXM_NX_TUN_FLAGS'],
  ['ct_state', 32, 'hex', null, [NXM1, 105], 'NXM_NX_CT_STATE'],
  ['ct_zone', 16, 'hex', null, [NXM1, 106], 'NXM_NX_CT_ZONE'],
  ['ct_mark', 32, 'hex', null, [NXM1, 107], 'NXM_NX_CT_MARK'],
  ['ct_label', 128, 'hex', null, [NXM1, 108], 'NXM_NX_CT_LABEL'],
  ['tun_ipv6_src', 128, 'ipv6', null, [NXM1, 109], 'NXM_NX_TUN_IPV6_SRC'],
  ['tun_ipv6_dst', 128, 'ipv6', null, [NXM1, 110], 'NXM_NX_TUN_IPV6_DST'],
  ['ct_nw_proto', 8, 'dec', null, [NXM1, 119], 'NXM_NX_CT_NW_PROTO'],
  ['ct_nw_src', 32, 'ipv4', null, [NXM1, 120], 'NXM_NX_CT_NW_SRC'],
  ['ct_nw_dst', 32, 'ipv4', null, [NXM1, 121], 'NXM_NX_CT_NW_DST'],
  ['ct_ipv6_src', 128, 'ipv6', null, [NXM1, 122], 'NXM_NX_CT_IPV6_SRC'],
  ['ct_ipv6_dst', 128, 'ipv6', null, [NXM1, 123], 'NXM_NX_CT_IPV6_DST'],
  ['ct_tp_src', 16, 'dec', null, [NXM1, 124], 'NXM_NX_CT_TP_SRC'],
  ['ct_tp_dst', 16, 'dec', null, [NXM1, 125], 'NXM_NX_CT_TP_DST'],
];
for (let i = 0; i < 16; i++) ROWS.push([`reg${i}`, 32, 'hex', null, [NXM1, i], `NXM_NX_REG${i}`]);
for (let i = 0; i < 8; i++) ROWS.push([`xreg${i}`, 64, 'hex', [PKT_REGS, i], null, `OXM_OF_PKT_REG${i}`]);
for (let i = 0; i < 4; i++) ROWS.push([`xxreg${i}`, 128, 'hex', null, [NXM1, 111 + i], `NXM_NX_XXREG${i}`]);

/** (class << 7 | field) → OVS field; NXM and OXM headers of one field share the entry */
const OVS_FIELDS = new Map<number, OvsField>();
for (const [name, bits, style, oxm, nxm, subfieldName] of ROWS) {
  const field: OvsField = { name, subfieldName, bits, style };
  if (oxm) OVS_FIELDS.set(classFieldKey(oxm[0], oxm[1]), field);
  if (nxm) OVS_FIELDS.set(classFieldKey(nxm[0], nxm[1]), field);
}

function classFieldKey(oxmClass: number, oxmField: number): number {
  return oxmClass * 128 + oxmField;
}

function ovsFieldOfHeader(header: number): OvsField | undefined {
  return OVS_FIELDS.get(classFieldKey(header >>> 16, (header >>> 9) & 0x7f));
}

/** OVS's view of a TLV's field, or undefined for fields OVS does not know */
function ovsFieldOfTlv(tlv: OxmTlv): OvsField | undefined {
  if (tlv.field === 'unknown') {
    return tlv.oxmClass === 0xffff ? undefined : OVS_FIELDS.get(classFieldKey(tlv.oxmClass, tlv.oxmField));
  }
  const spec = fieldSpec(tlv.field);
  return spec && spec.experimenter === undefined ? OVS_FIELDS.get(classFieldKey(spec.oxmClass, spec.oxmField)) : undefined;
}

/** OVS's hex: '0' for zero, else '0x' and the digits without leading zeros */
function hex(v: number | bigint): string {
  return v === 0 || v === 0n ? '0' : `0x${v.toString(16)}`;
}

const PORT_NAMES: Record<number, string> = {
  0xfff8: 'IN_PORT',
  0xfff9: 'TABLE',
  0xfffa: 'NORMAL',
  0xfffb: 'FLOOD',
  0xfffc: 'ALL',
  0xfffd: 'CONTROLLER',
  0xfffe: 'LOCAL',
  0xffff: 'ANY',
};

/** an OpenFlow 1.0 (16-bit) port number, as Nicira actions carry them */
function port16(port: number): string {
  return PORT_NAMES[port] ?? String(port);
}

/** an OpenFlow 1.1+ (32-bit) port number; reserved ports map onto the 16-bit names */
function port32(port: number): string {
  return port >= 0xfffffff8 ? port16(port - 0xffff0000) : String(port);
}

function subfield(ref: FieldRef, ofs: number, nBits: number): string {
  const ovs = ovsFieldOfHeader(ref.header);
  const name = ovs ? ovs.subfieldName : ref.name;
  const width = ovs ? ovs.bits : fieldBits(ref.header);
  if (ofs === 0 && nBits === width) return `${name}[]`;
  if (nBits === 1) return `${name}[${ofs}]`;
  return `${name}[${ofs}..${ofs + nBits - 1}]`;
}

function bytesHex(b: Uint8Array, sep: string): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(sep);
}

function ipv4Prefix(mask: string): number | undefined {
  const v = mask.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  for (let len = 0; len <= 32; len++) {
    if (v === (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) return len;
  }
  return undefined;
}

/** a set_field value (and mask) in the field's OVS style */
function tlvValue(tlv: OxmTlv, style: ValueStyle | undefined): string {
  if (tlv.field === 'unknown') return `0x${bytesHex(tlv.payload, '')}`;
  const { value, mask } = tlv as { value: number | bigint | string; mask?: number | bigint | string };
  const one = (v: number | bigint | string): string => {
    if (typeof v === 'string') return v;
    switch (style) {
      case 'dec':
        return v.toString();
      case 'port16':
        return port16(Number(v));
      case 'port32':
        return port32(Number(v));
      default:
        return hex(v);
    }
  };
  if (mask === undefined) return one(value);
  if (style === 'ipv4' && typeof mask === 'string') {
    const prefix = ipv4Prefix(mask);
    if (prefix === 32) return one(value);
    return `${value}/${prefix ?? mask}`;
  }
  return `${one(value)}/${typeof mask === 'string' ? mask : hex(mask)}`;
}

/** a learn immediate matched against a whole field: printed in the field's style */
function immediateValue(value: bigint, ovs: OvsField): string {
  switch (ovs.style) {
    case 'dec':
      return value.toString();
    case 'port16':
      return port16(Number(value));
    case 'port32':
      return port32(Number(value));
    case 'mac':
      return bytesHex(Buffer.from(value.toString(16).padStart(12, '0'), 'hex'), ':');
    case 'ipv4': {
      const v = Number(value);
      return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    }
    default:
      return hex(value);
  }
}

const CONTROLLER_REASONS = ['no_match', 'action', 'invalid_ttl', 'action_set', 'group', 'packet_out'];
const OFPR_ACTION = 1;
const NX_CTLR_NO_METER = 0xffffffff;
const OFPP_NONE_16 = 0xffff;
const OFP_DEFAULT_PRIORITY = 0x8000;
const IPPORT_FTP = 21;
const IPPORT_TFTP = 69;

/** NXAST_CONTROLLER and CONTROLLER2 with OVS's defaults filled in */
interface ControllerParams {
  maxLen: number;
  controllerId: number;
  reason: number;
  userdata?: Uint8Array;
  pause: boolean;
  meterId: number;
}

function controllerText(c: ControllerParams): string {
  const userdata = c.userdata !== undefined && c.userdata.length > 0 ? c.userdata : undefined;
  if (c.reason === OFPR_ACTION && c.controllerId === 0 && !userdata && !c.pause && c.meterId === NX_CTLR_NO_METER) {
    return `CONTROLLER:${c.maxLen}`;
  }
  const parts: string[] = [];
  if (c.reason !== OFPR_ACTION) parts.push(`reason=${CONTROLLER_REASONS[c.reason] ?? c.reason}`);
  if (c.maxLen !== 0xffff) parts.push(`max_len=${c.maxLen}`);
  if (c.controllerId !== 0) parts.push(`id=${c.controllerId}`);
  if (userdata) parts.push(`userdata=${bytesHex(userdata, '.')}`);
  if (c.pause) parts.push('pause');
  if (c.meterId !== NX_CTLR_NO_METER) parts.push(`meter_id=${c.meterId}`);
  return `controller(${parts.join(',')})`;
}

interface SampleParams {
  probability: number;
  collectorSetId: number;
  obsDomainId: number;
  obsPointId: number;
}

function sampleText(a: SampleParams, samplingPort: number, direction: number): string {
  const parts = [
    `probability=${a.probability}`,
    `collector_set_id=${a.collectorSetId}`,
    `obs_domain_id=${a.obsDomainId}`,
    `obs_point_id=${a.obsPointId}`,
  ];
  if (samplingPort !== OFPP_NONE_16) parts.push(`sampling_port=${port16(samplingPort)}`);
  if (direction === NX_ACTION_SAMPLE_INGRESS) parts.push('ingress');
  else if (direction === NX_ACTION_SAMPLE_EGRESS) parts.push('egress');
  return `sample(${parts.join(',')})`;
}

function natText(a: Action & { type: 'nat' }): string {
  if ((a.flags & (NX_NAT_F_SRC | NX_NAT_F_DST)) === 0) return 'nat';
  const parts = [a.flags & NX_NAT_F_SRC ? 'src' : 'dst'];
  const hasProto = a.protoMin !== undefined;
  let range = '';
  if (a.ipv4Min !== undefined) {
    range = a.ipv4Min;
    if (a.ipv4Max !== undefined && a.ipv4Max !== a.ipv4Min) range += `-${a.ipv4Max}`;
  } else if (a.ipv6Min !== undefined) {
    const v6 = (ip: string) => (hasProto ? `[${ip}]` : ip);
    range = v6(a.ipv6Min);
    if (a.ipv6Max !== undefined && a.ipv6Max !== a.ipv6Min) range += `-${v6(a.ipv6Max)}`;
  }
  if (range !== '') {
    if (hasProto) {
      range += `:${a.protoMin}`;
      if (a.protoMax !== undefined && a.protoMax !== a.protoMin) range += `-${a.protoMax}`;
    }
    parts[0] += `=${range}`;
    if (a.flags & NX_NAT_F_PERSISTENT) parts.push('persistent');
    if (a.flags & NX_NAT_F_PROTO_HASH) parts.push('hash');
    if (a.flags & NX_NAT_F_PROTO_RANDOM) parts.push('random');
  }
  return `nat(${parts.join(',')})`;
}

function ctText(a: Action & { type: 'ct' }): string {
  const parts: string[] = [];
  if (a.flags & NX_CT_F_COMMIT) parts.push('commit');
  if (a.flags & NX_CT_F_FORCE) parts.push('force');
  if (a.recircTable !== NX_CT_RECIRC_NONE) parts.push(`table=${a.recircTable}`);
  if (typeof a.zone !== 'number') parts.push(`zone=${subfield(a.zone.field, a.zone.ofs, a.zone.nBits)}`);
  else if (a.zone !== 0) parts.push(`zone=${a.zone}`);
  // a leading nat prints outside the exec() envelope
  let nested = a.actions;
  const first = nested[0];
  if (first?.type === 'nat') {
    parts.push(natText(first));
    nested = nested.slice(1);
  }
  if (nested.length > 0) parts.push(`exec(${actionList(nested)})`);
  if (a.alg === IPPORT_FTP) parts.push('alg=ftp');
  else if (a.alg === IPPORT_TFTP) parts.push('alg=tftp');
  else if (a.alg !== 0) parts.push(`alg=${a.alg}`);
  return `ct(${parts.join(',')})`;
}

function learnSpecText(spec: LearnSpec): string {
  const src = spec.src;
  if (spec.type === 'output') {
    return `output:${'value' in src ? hex(src.value) : subfield(src.field, src.ofs, spec.nBits)}`;
  }
  const dst = subfield(spec.dst, spec.dstOfs, spec.nBits);
  if (spec.type === 'load') {
    return `load:${'value' in src ? hex(src.value) : subfield(src.field, src.ofs, spec.nBits)}->${dst}`;
  }
  if ('value' in src) {
    const ovs = ovsFieldOfHeader(spec.dst.header);
    if (ovs && spec.dstOfs === 0 && spec.nBits === ovs.bits) return `${ovs.name}=${immediateValue(src.value, ovs)}`;
    return `${dst}=${hex(src.value)}`;
  }
  const same = src.field.header === spec.dst.header && src.ofs === spec.dstOfs;
  return same ? dst : `${dst}=${subfield(src.field, src.ofs, spec.nBits)}`;
}

function learnText(a: Action & { type: 'learn' }): string {
  const parts = [`table=${a.tableId}`];
  if (a.idleTimeout !== 0) parts.push(`idle_timeout=${a.idleTimeout}`);
  if (a.hardTimeout !== 0) parts.push(`hard_timeout=${a.hardTimeout}`);
  if (a.finIdleTimeout !== 0) parts.push(`fin_idle_timeout=${a.finIdleTimeout}`);
  if (a.finHardTimeout !== 0) parts.push(`fin_hard_timeout=${a.finHardTimeout}`);
  if (a.priority !== OFP_DEFAULT_PRIORITY) parts.push(`priority=${a.priority}`);
  if (a.flags & NX_LEARN_F_SEND_FLOW_REM) parts.push('send_flow_rem');
  if (a.flags & NX_LEARN_F_DELETE_LEARNED) parts.push('delete_learned');
  if (a.cookie !== 0n) parts.push(`cookie=${hex(a.cookie)}`);
  for (const spec of a.specs) parts.push(learnSpecText(spec));
  return `learn(${parts.join(',')})`;
}

function setFieldText(verb: string, tlv: OxmTlv): string {
  const ovs = ovsFieldOfTlv(tlv);
  const name = ovs ? ovs.name : tlv.field === 'unknown' ? `oxm_0x${tlv.oxmClass.toString(16)}:${tlv.oxmField}` : tlv.field;
  return `${verb}:${tlvValue(tlv, ovs?.style)}->${name}`;
}

function ethertype(v: number): string {
  return `0x${v.toString(16).padStart(4, '0')}`;
}

export function formatAction(a: Action): string {
  switch (a.type) {
    case 'output':
      if (a.port < 0xffffff00) return `output:${a.port}`;
      return a.port === 0xfffffffd ? `CONTROLLER:${a.maxLen}` : port32(a.port);
    case 'copy_ttl_out':
    case 'copy_ttl_in':
    case 'dec_mpls_ttl':
    case 'pop_vlan':
    case 'pop_pbb':
    case 'exit':
    case 'pop_queue':
    case 'ct_clear':
    case 'dec_ttl':
      return a.type;
    case 'set_mpls_ttl':
      return `set_mpls_ttl(${a.ttl})`;
    case 'push_vlan':
    case 'push_mpls':
    case 'pop_mpls':
    case 'push_pbb':
      return `${a.type}:${ethertype(a.ethertype)}`;
    case 'set_queue':
      return `set_queue:${a.queueId}`;
    case 'group':
      return `group:${a.groupId}`;
    case 'set_nw_ttl':
      return `mod_nw_ttl:${a.ttl}`;
    case 'dec_nw_ttl':
      return 'dec_ttl';
    case 'set_field':
    case 'reg_load2':
      return setFieldText('set_field', a.field);
    case 'experimenter':
      return `experimenter(${hex(a.experimenter)},${bytesHex(a.data, '')})`;
    case 'resubmit':
      return `resubmit:${port16(a.inPort)}`;
    case 'resubmit_table':
    case 'resubmit_table_ct': {
      const ct = a.type === 'resubmit_table_ct';
      if (a.inPort !== 0xfff8 && a.tableId === 255 && !ct) return `resubmit:${port16(a.inPort)}`;
      const inPort = a.inPort !== 0xfff8 ? port16(a.inPort) : '';
      const table = a.tableId !== 255 ? String(a.tableId) : '';
      return `resubmit(${inPort},${table}${ct ? ',ct' : ''})`;
    }
    case 'set_tunnel':
      return `set_tunnel:${hex(a.tunId)}`;
    case 'set_tunnel64':
      return `set_tunnel64:${hex(a.tunId)}`;
    case 'reg_move':
      return `move:${subfield(a.src, a.srcOfs, a.nBits)}->${subfield(a.dst, a.dstOfs, a.nBits)}`;
    case 'reg_load':
      return `load:${hex(a.value)}->${subfield(a.dst, a.ofs, a.nBits)}`;
    case 'note':
      return `note:${bytesHex(a.note, '.')}`;
    case 'output_reg':
    case 'output_reg2':
      return `output:${subfield(a.src, a.ofs, a.nBits)}`;
    case 'learn':
      return learnText(a);
    case 'dec_ttl_cnt_ids':
      return `dec_ttl(${a.cntIds.join(',')})`;
    case 'fin_timeout': {
      const parts: string[] = [];
      if (a.idleTimeout) parts.push(`idle_timeout=${a.idleTimeout}`);
      if (a.hardTimeout) parts.push(`hard_timeout=${a.hardTimeout}`);
      return `fin_timeout(${parts.join(',')})`;
    }
    case 'controller':
      return controllerText({ ...a, pause: false, meterId: NX_CTLR_NO_METER });
    case 'controller2':
      return controllerText({
        maxLen: a.maxLen ?? 0xffff,
        controllerId: a.controllerId ?? 0,
        reason: a.reason ?? OFPR_ACTION,
        ...(a.userdata && { userdata: a.userdata }),
        pause: a.pause ?? false,
        meterId: a.meterId ?? NX_CTLR_NO_METER,
      });
    case 'stack_push':
      return `push:${subfield(a.field, a.ofs, a.nBits)}`;
    case 'stack_pop':
      return `pop:${subfield(a.field, a.ofs, a.nBits)}`;
    case 'sample':
      return sampleText(a, OFPP_NONE_16, 0);
    case 'sample2':
      return sampleText(a, a.samplingPort, 0);
    case 'sample3':
      return sampleText(a, a.samplingPort, a.direction);
    case 'conjunction':
      return `conjunction(${a.id},${a.clause + 1}/${a.nClauses})`;
    case 'ct':
      return ctText(a);
    case 'nat':
      return natText(a);
    case 'output_trunc':
      return `output(port=${port16(a.port)},max_len=${a.maxLen})`;
    case 'clone':
      return `clone(${actionList(a.actions)})`;
    case 'nx_unknown':
      return `nx_unknown(subtype=${a.subtype},${bytesHex(a.data, '')})`;
  }
}

function actionList(actions: readonly Action[]): string {
  return actions.map(formatAction).join(',');
}

/** an action list as ovs-ofctl prints it; an empty list is `drop` */
export function formatActions(actions: readonly Action[]): string {
  return actions.length === 0 ? 'drop' : actionList(actions);
}

/** OVS prints instructions in execution order, whatever their order on the wire */
const INSTRUCTION_ORDER: Record<Instruction['type'], number> = {
  meter: 0,
  apply_actions: 1,
  clear_actions: 2,
  write_actions: 3,
  write_metadata: 4,
  goto_table: 5,
  experimenter: 6,
};

function formatInstruction(inst: Instruction): string {
  switch (inst.type) {
    case 'meter':
      return `meter:${inst.meterId}`;
    case 'apply_actions':
      return actionList(inst.actions);
    case 'clear_actions':
      return 'clear_actions';
    case 'write_actions':
      return `write_actions(${actionList(inst.actions)})`;
    case 'write_metadata':
      return inst.metadataMask === 0xffffffffffffffffn
        ? `write_metadata:${hex(inst.metadata)}`
        : `write_metadata:${hex(inst.metadata)}/${hex(inst.metadataMask)}`;
    case 'goto_table':
      return `goto_table:${inst.tableId}`;
    case 'experimenter':
      return `experimenter_instruction(${hex(inst.experimenter)},${bytesHex(inst.data, '')})`;
  }
}

/** the `actions=` part of a flow as dump-flows prints it; `drop` when nothing is done */
export function formatInstructions(insts: readonly Instruction[]): string {
  const parts = [...insts]
    .sort((a, b) => INSTRUCTION_ORDER[a.type] - INSTRUCTION_ORDER[b.type])
    .map(formatInstruction)
    .filter((s) => s !== '');
  return parts.length === 0 ? 'drop' : parts.join(',');
}
