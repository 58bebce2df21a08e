// Renders a Match the way `ovs-ofctl -O OpenFlow13 dump-flows --no-names` prints it.
// OVS does not print TLVs in wire order: it folds them into its flow/wildcards structure
// (OXM and NXM spellings of a field share one slot, vlan_vid and vlan_pcp share the TCI,
// ip_dscp and ip_ecn share the TOS byte, xregs split into regs) and prints that in a fixed
// order with protocol shorthands. We do the same, so text from both sides compares equal.
import { formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6, parseMac } from '../addr';
import { fieldSpec, oxmHeader, ValueKind, type Match, type OxmTlv, type UnknownOxm } from '../oxm';

/** a value and its mask; unmasked fields carry an all-ones mask of their width */
interface Masked {
  v: bigint;
  m: bigint;
}

const ones = (bits: number) => (1n << BigInt(bits)) - 1n;

/** The OVS flow slot of each field that maps onto one slot as is (the rest are special-cased in collect()). */
const SLOT_OF: Record<string, string> = {
  in_port: 'in_port',
  metadata: 'metadata',
  eth_dst: 'dl_dst',
  nxm_of_eth_dst: 'dl_dst',
  eth_src: 'dl_src',
  nxm_of_eth_src: 'dl_src',
  eth_type: 'dl_type',
  nxm_of_eth_type: 'dl_type',
  ip_proto: 'nw_proto',
  nxm_of_ip_proto: 'nw_proto',
  arp_op: 'nw_proto',
  nxm_of_arp_op: 'nw_proto',
  ipv4_src: 'nw_src',
  nxm_of_ip_src: 'nw_src',
  arp_spa: 'nw_src',
  nxm_of_arp_spa: 'nw_src',
  ipv4_dst: 'nw_dst',
  nxm_of_ip_dst: 'nw_dst',
  arp_tpa: 'nw_dst',
  nxm_of_arp_tpa: 'nw_dst',
  tcp_src: 'tp_src',
  udp_src: 'tp_src',
  sctp_src: 'tp_src',
  nxm_of_tcp_src: 'tp_src',
  nxm_of_udp_src: 'tp_src',
  icmpv4_type: 'tp_src',
  icmpv6_type: 'tp_src',
  nxm_of_icmp_type: 'tp_src',
  tcp_dst: 'tp_dst',
  udp_dst: 'tp_dst',
  sctp_dst: 'tp_dst',
  nxm_of_tcp_dst: 'tp_dst',
  nxm_of_udp_dst: 'tp_dst',
  icmpv4_code: 'tp_dst',
  icmpv6_code: 'tp_dst',
  nxm_of_icmp_code: 'tp_dst',
  arp_sha: 'arp_sha',
  nxm_nx_arp_sha: 'arp_sha',
  ipv6_nd_sll: 'arp_sha',
  arp_tha: 'arp_tha',
  nxm_nx_arp_tha: 'arp_tha',
  ipv6_nd_tll: 'arp_tha',
  ipv6_src: 'ipv6_src',
  ipv6_dst: 'ipv6_dst',
  ipv6_flabel: 'ipv6_label',
  ipv6_nd_target: 'nd_target',
  mpls_label: 'mpls_label',
  mpls_tc: 'mpls_tc',
  mpls_bos: 'mpls_bos',
  tunnel_id: 'tun_id',
  nxm_nx_tun_id: 'tun_id',
  tun_ipv4_src: 'tun_src',
  tun_ipv4_dst: 'tun_dst',
  tun_ipv6_src: 'tun_ipv6_src',
  tun_ipv6_dst: 'tun_ipv6_dst',
  tun_metadata0: 'tun_metadata0',
  ip_frag: 'nw_frag',
  nw_ttl: 'nw_ttl',
  tcp_flags: 'tcp_flags',
  actset_output: 'actset_output',
  pkt_mark: 'pkt_mark',
  conj_id: 'conj_id',
  ct_state: 'ct_state',
  ct_zone: 'ct_zone',
  ct_mark: 'ct_mark',
  ct_label: 'ct_label',
  ct_nw_proto: 'ct_nw_proto',
  ct_nw_src: 'ct_nw_src',
  ct_nw_dst: 'ct_nw_dst',
  ct_ipv6_src: 'ct_ipv6_src',
  ct_ipv6_dst: 'ct_ipv6_dst',
  ct_tp_src: 'ct_tp_src',
  ct_tp_dst: 'ct_tp_dst',
};
for (let i = 0; i < 16; i++) SLOT_OF[`reg${i}`] = `reg${i}`;

const VLAN_CFI = 0x1000n;
const VLAN_VID_MASK = 0x0fffn;
const VLAN_PCP_MASK = 0xe000n;
const IP_DSCP_MASK = 0xfcn;
const IP_ECN_MASK = 0x03n;

const ETH_TYPE_IP = 0x0800n;
const ETH_TYPE_IPV6 = 0x86ddn;
const ETH_TYPE_ARP = 0x0806n;
const ETH_TYPE_RARP = 0x8035n;
const ETH_TYPE_MPLS = 0x8847n;
const ETH_TYPE_MPLS_MCAST = 0x8848n;
const IPPROTO_ICMP = 1n;
const IPPROTO_TCP = 6n;
const IPPROTO_UDP = 17n;
const IPPROTO_ICMPV6 = 58n;
const IPPROTO_SCTP = 132n;

/** OVS folds the fields into slots; `extras` keeps what OVS has no slot for (printed last). */
class Slots {
  private readonly slots = new Map<string, Masked>();
  readonly extras: string[] = [];

  /** OVS semantics: later bits overwrite earlier ones under the new mask; masks accumulate */
  set(slot: string, v: bigint, m: bigint): void {
    const old = this.slots.get(slot) ?? { v: 0n, m: 0n };
    this.slots.set(slot, { v: (old.v & ~m) | (v & m), m: old.m | m });
  }

  /** the slot if any of its bits is matched */
  get(slot: string): Masked | undefined {
    const s = this.slots.get(slot);
    return s && s.m !== 0n ? s : undefined;
  }

  value(slot: string): bigint {
    return this.get(slot)?.v ?? 0n;
  }
}

function tlvBits(tlv: Exclude<OxmTlv, UnknownOxm>): { v: bigint; m: bigint; bits: number } {
  const spec = fieldSpec(tlv.field)!;
  const bits = spec.bytes * 8;
  const v = toBig(tlv.value, spec.kind);
  const m = tlv.mask === undefined ? ones(bits) : toBig(tlv.mask, spec.kind);
  return { v: v & m, m, bits };
}

function toBig(x: number | bigint | string, kind: ValueKind): bigint {
  if (typeof x !== 'string') return BigInt(x);
  const bytes = kind === ValueKind.Mac ? parseMac(x) : kind === ValueKind.Ipv4 ? parseIpv4(x) : parseIpv6(x);
  return BigInt(`0x${bytes.toString('hex')}`);
}

function collect(m: Match): Slots {
  const s = new Slots();
  for (const tlv of m) {
    if (tlv.field === 'unknown') {
      s.extras.push(formatUnknown(tlv));
      continue;
    }
    const { v, m: mask, bits } = tlvBits(tlv);
    const name: string = tlv.field;
    const slot = SLOT_OF[name];
    const xreg = /^(x{1,2})reg(\d)$/.exec(name);
    if (slot) {
      s.set(slot, v, mask);
    } else if (name === 'nxm_of_in_port') {
      // OVS keeps 16-bit ports; the reserved range 0xff00.. is OF1.3's 0xffffff00..
      s.set('in_port', v >= 0xff00n ? v + 0xffff0000n : v, ones(32));
    } else if (name === 'vlan_vid') {
      const vm = mask & (VLAN_VID_MASK | VLAN_CFI);
      s.set('vlan_tci', v & vm, vm);
    } else if (name === 'vlan_pcp') {
      s.set('vlan_tci', ((v << 13n) & VLAN_PCP_MASK) | VLAN_CFI, VLAN_PCP_MASK | VLAN_CFI);
    } else if (name === 'vlan_tci') {
      s.set('vlan_tci', v, mask);
    } else if (name === 'ip_dscp') {
      s.set('nw_tos', v << 2n, IP_DSCP_MASK);
    } else if (name === 'nw_tos') {
      s.set('nw_tos', v, IP_DSCP_MASK);
    } else if (name === 'ip_ecn') {
      s.set('nw_tos', v, IP_ECN_MASK);
    } else if (xreg) {
      // xregN is reg(2N):reg(2N+1), xxregN is reg(4N)..reg(4N+3), most significant first
      const n = xreg[1]!.length === 1 ? 2 : 4;
      const first = Number(xreg[2]) * n;
      for (let i = 0; i < n; i++) {
        const shift = BigInt(32 * (n - 1 - i));
        s.set(`reg${first + i}`, (v >> shift) & 0xffffffffn, (mask >> shift) & 0xffffffffn);
      }
    } else {
      s.extras.push(formatExtra(name, v, mask, bits));
    }
  }
  return s;
}

/** C's %#x: "0" for zero, "0x…" otherwise */
const hexAlt = (v: bigint) => (v === 0n ? '0' : `0x${v.toString(16)}`);

function bigToBytes(v: bigint, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

/** prefix length if `m` is a CIDR mask of `bits` bits, else -1 */
function cidrBits(m: bigint, bits: number): number {
  const inv = ~m & ones(bits);
  if ((inv & (inv + 1n)) !== 0n) return -1;
  return bits - inv.toString(2).replace(/^0$/, '').length;
}

class Out {
  readonly parts: string[] = [];

  put(s: string): void {
    this.parts.push(s);
  }

  /** format_uint32_masked / format_be64_masked: hex, mask only when partial */
  hexMasked(name: string, x: Masked | undefined, bits: number): void {
    if (!x) return;
    this.put(`${name}=${hexAlt(x.v)}${x.m === ones(bits) ? '' : `/${hexAlt(x.m)}`}`);
  }

  /** format_be16_masked: decimal when exact, 0x…/0x… otherwise */
  be16Masked(name: string, x: Masked | undefined): void {
    if (!x) return;
    this.put(x.m === 0xffffn ? `${name}=${x.v}` : `${name}=0x${x.v.toString(16)}/0x${x.m.toString(16)}`);
  }

  ipv4(name: string, x: Masked | undefined): void {
    if (!x) return;
    const addr = formatIpv4(bigToBytes(x.v, 4));
    if (x.m === ones(32)) return this.put(`${name}=${addr}`);
    const cidr = cidrBits(x.m, 32);
    this.put(`${name}=${addr}/${cidr >= 0 ? cidr : formatIpv4(bigToBytes(x.m, 4))}`);
  }

  ipv6(name: string, x: Masked | undefined): void {
    if (!x) return;
    const addr = formatIpv6(bigToBytes(x.v, 16));
    if (x.m === ones(128)) return this.put(`${name}=${addr}`);
    const cidr = cidrBits(x.m, 128);
    this.put(`${name}=${addr}/${cidr >= 0 ? cidr : formatIpv6(bigToBytes(x.m, 16))}`);
  }

  eth(name: string, x: Masked | undefined): void {
    if (!x) return;
    const addr = formatMac(bigToBytes(x.v, 6));
    this.put(x.m === ones(48) ? `${name}=${addr}` : `${name}=${addr}/${formatMac(bigToBytes(x.m, 6))}`);
  }

  decimal(name: string, x: Masked | undefined): void {
    if (x) this.put(`${name}=${x.v}`);
  }
}

const CT_STATE_NAMES = ['new', 'est', 'rel', 'rpl', 'inv', 'trk', 'snat', 'dnat'];
const TCP_FLAG_NAMES = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr', 'ns', '[200]', '[400]', '[800]'];

/** OVS format_flags: names joined by '|', unnamed bits as one hex number, zero as "0" */
function formatFlags(v: bigint, names: readonly string[]): string {
  if (v === 0n) return '0';
  const out: string[] = [];
  let unnamed = 0n;
  for (let bit = 0; v >> BigInt(bit) !== 0n; bit++) {
    if (((v >> BigInt(bit)) & 1n) === 0n) continue;
    const name = names[bit];
    if (name) out.push(name);
    else unnamed |= 1n << BigInt(bit);
  }
  if (unnamed) out.push(`0x${unnamed.toString(16)}`);
  return out.join('|');
}

/** OVS format_flags_masked: every bit of a partial mask as +name / -name */
function formatFlagsMasked(x: Masked, names: readonly string[], maxMask: bigint): string {
  const m = x.m & maxMask;
  if (m === maxMask) return formatFlags(x.v & maxMask, names);
  let out = '';
  for (let bit = 0; m >> BigInt(bit) !== 0n; bit++) {
    if (((m >> BigInt(bit)) & 1n) === 0n) continue;
    out += `${(x.v >> BigInt(bit)) & 1n ? '+' : '-'}${names[bit] ?? '[Unknown]'}`;
  }
  return out;
}

const OFPP_NAMES: Record<number, string> = {
  0xfffffff8: 'IN_PORT',
  0xfffffff9: 'TABLE',
  0xfffffffa: 'NORMAL',
  0xfffffffb: 'FLOOD',
  0xfffffffc: 'ALL',
  0xfffffffd: 'CONTROLLER',
  0xfffffffe: 'LOCAL',
  0xffffffff: 'ANY',
};

/** ofputil_format_port for an OF1.3 port number; OVS shows unnamed reserved ports in its 16-bit numbering */
function formatPort(port: number): string {
  return OFPP_NAMES[port] ?? String(port >= 0xffffff00 ? port - 0xffff0000 : port);
}

function formatExtra(name: string, v: bigint, m: bigint, bits: number): string {
  return m === ones(bits) ? `${name}=${v}` : `${name}=${hexAlt(v)}/${hexAlt(m)}`;
}

function formatUnknown(tlv: UnknownOxm): string {
  const header = oxmHeader(tlv.oxmClass, tlv.oxmField, tlv.hasMask, 0) >>> 8;
  const exp = tlv.experimenter === undefined ? '' : `_0x${tlv.experimenter.toString(16).padStart(8, '0')}`;
  return `oxm_0x${header.toString(16).padStart(6, '0')}${exp}=0x${tlv.payload.toString('hex')}`;
}

/** `ovs-ofctl dump-flows` text for a match ('' when it matches everything) */
export function formatMatch(match: Match): string {
  const s = collect(match);
  const o = new Out();

  o.hexMasked('pkt_mark', s.get('pkt_mark'), 32);
  o.decimal('conj_id', s.get('conj_id'));
  const actset = s.get('actset_output');
  if (actset) o.put(`actset_output=${formatPort(Number(actset.v))}`);
  const ctState = s.get('ct_state');
  if (ctState) o.put(`ct_state=${formatFlagsMasked(ctState, CT_STATE_NAMES, 0xffn)}`);
  o.decimal('ct_zone', s.get('ct_zone'));
  o.hexMasked('ct_mark', s.get('ct_mark'), 32);
  o.hexMasked('ct_label', s.get('ct_label'), 128);
  o.ipv4('ct_nw_src', s.get('ct_nw_src'));
  o.ipv6('ct_ipv6_src', s.get('ct_ipv6_src'));
  o.ipv4('ct_nw_dst', s.get('ct_nw_dst'));
  o.ipv6('ct_ipv6_dst', s.get('ct_ipv6_dst'));
  if (s.get('ct_nw_proto')) {
    o.decimal('ct_nw_proto', s.get('ct_nw_proto'));
    o.be16Masked('ct_tp_src', s.get('ct_tp_src'));
    o.be16Masked('ct_tp_dst', s.get('ct_tp_dst'));
  }

  const dlType = s.value('dl_type');
  const nwProto = s.value('nw_proto');
  const hasProto = s.get('nw_proto') !== undefined;
  const shorthand = s.get('dl_type') ? protocolShorthand(dlType, hasProto ? nwProto : undefined) : undefined;
  if (shorthand) o.put(shorthand.name);

  for (let i = 0; i < 16; i++) o.hexMasked(`reg${i}`, s.get(`reg${i}`), 32);

  o.hexMasked('tun_id', s.get('tun_id'), 64);
  o.ipv4('tun_src', s.get('tun_src'));
  o.ipv4('tun_dst', s.get('tun_dst'));
  o.ipv6('tun_ipv6_src', s.get('tun_ipv6_src'));
  o.ipv6('tun_ipv6_dst', s.get('tun_ipv6_dst'));
  o.hexMasked('tun_metadata0', s.get('tun_metadata0'), 32);
  o.hexMasked('metadata', s.get('metadata'), 64);
  const inPort = s.get('in_port');
  if (inPort) o.put(`in_port=${formatPort(Number(inPort.v))}`);
  formatVlan(o, s.get('vlan_tci'));
  o.eth('dl_src', s.get('dl_src'));
  o.eth('dl_dst', s.get('dl_dst'));
  if (!shorthand && s.get('dl_type')) o.put(`dl_type=0x${dlType.toString(16).padStart(4, '0')}`);

  const isArp = dlType === ETH_TYPE_ARP || dlType === ETH_TYPE_RARP;
  if (dlType === ETH_TYPE_IPV6) {
    o.ipv6('ipv6_src', s.get('ipv6_src'));
    o.ipv6('ipv6_dst', s.get('ipv6_dst'));
    const label = s.get('ipv6_label');
    if (label) {
      const hex5 = (v: bigint) => `0x${v.toString(16).padStart(5, '0')}`;
      o.put(`ipv6_label=${hex5(label.v)}${label.m === ones(32) ? '' : `/${hex5(label.m)}`}`);
    }
  } else if (isArp) {
    o.ipv4('arp_spa', s.get('nw_src'));
    o.ipv4('arp_tpa', s.get('nw_dst'));
  } else {
    o.ipv4('nw_src', s.get('nw_src'));
    o.ipv4('nw_dst', s.get('nw_dst'));
  }
  if (hasProto && !shorthand?.impliesProto) o.put(`${isArp ? 'arp_op' : 'nw_proto'}=${nwProto & 0xffn}`);
  if (isArp) {
    o.eth('arp_sha', s.get('arp_sha'));
    o.eth('arp_tha', s.get('arp_tha'));
  }
  const tos = s.get('nw_tos');
  if (tos && tos.m & IP_DSCP_MASK) o.put(`nw_tos=${tos.v & IP_DSCP_MASK}`);
  if (tos && tos.m & IP_ECN_MASK) o.put(`nw_ecn=${tos.v & IP_ECN_MASK}`);
  o.decimal('nw_ttl', s.get('nw_ttl'));
  o.decimal('mpls_label', s.get('mpls_label'));
  o.decimal('mpls_tc', s.get('mpls_tc'));
  o.decimal('mpls_bos', s.get('mpls_bos'));
  formatFrag(o, s.get('nw_frag'));

  const tpSrc = widen16(s.get('tp_src'));
  const tpDst = widen16(s.get('tp_dst'));
  if ((dlType === ETH_TYPE_IP && nwProto === IPPROTO_ICMP) || (dlType === ETH_TYPE_IPV6 && nwProto === IPPROTO_ICMPV6)) {
    o.be16Masked('icmp_type', tpSrc);
    o.be16Masked('icmp_code', tpDst);
    if (dlType === ETH_TYPE_IPV6) {
      o.ipv6('nd_target', s.get('nd_target'));
      o.eth('nd_sll', s.get('arp_sha'));
      o.eth('nd_tll', s.get('arp_tha'));
    }
  } else {
    o.be16Masked('tp_src', tpSrc);
    o.be16Masked('tp_dst', tpDst);
  }
  const tcpFlags = s.get('tcp_flags');
  if (tcpFlags && (dlType === ETH_TYPE_IP || dlType === ETH_TYPE_IPV6) && nwProto === IPPROTO_TCP) {
    o.put(`tcp_flags=${formatFlagsMasked(tcpFlags, TCP_FLAG_NAMES, 0xfffn)}`);
  }
  return [...o.parts, ...s.extras].join(',');
}

function protocolShorthand(dlType: bigint, nwProto: bigint | undefined): { name: string; impliesProto: boolean } | undefined {
  const byProto = (table: [bigint, string][], plain: string) => {
    const hit = nwProto === undefined ? undefined : table.find(([p]) => p === nwProto);
    return hit ? { name: hit[1], impliesProto: true } : { name: plain, impliesProto: false };
  };
  switch (dlType) {
    case ETH_TYPE_IP:
      return byProto(
        [
          [IPPROTO_ICMP, 'icmp'],
          [IPPROTO_TCP, 'tcp'],
          [IPPROTO_UDP, 'udp'],
          [IPPROTO_SCTP, 'sctp'],
        ],
        'ip',
      );
    case ETH_TYPE_IPV6:
      return byProto(
        [
          [IPPROTO_ICMPV6, 'icmp6'],
          [IPPROTO_TCP, 'tcp6'],
          [IPPROTO_UDP, 'udp6'],
          [IPPROTO_SCTP, 'sctp6'],
        ],
        'ipv6',
      );
    case ETH_TYPE_ARP:
      return { name: 'arp', impliesProto: false };
    case ETH_TYPE_RARP:
      return { name: 'rarp', impliesProto: false };
    case ETH_TYPE_MPLS:
      return { name: 'mpls', impliesProto: false };
    case ETH_TYPE_MPLS_MCAST:
      return { name: 'mplsm', impliesProto: false };
    default:
      return undefined;
  }
}

/** ICMP type/code are 8-bit OXMs but OVS keeps them in the 16-bit transport port slots */
function widen16(x: Masked | undefined): Masked | undefined {
  return x && x.m === 0xffn ? { v: x.v, m: 0xffffn } : x;
}

function formatVlan(o: Out, tci: Masked | undefined): void {
  if (!tci) return;
  const vidMask = tci.m & VLAN_VID_MASK;
  const pcpMask = tci.m & VLAN_PCP_MASK;
  const hex4 = (v: bigint) => `0x${v.toString(16).padStart(4, '0')}`;
  // dl_vlan / dl_vlan_pcp only when a tag is required and VID and PCP are each fully matched or not at all
  const wholeParts = (!vidMask || vidMask === VLAN_VID_MASK) && (!pcpMask || pcpMask === VLAN_PCP_MASK) && (vidMask || pcpMask);
  if (tci.m & VLAN_CFI && tci.v & VLAN_CFI && wholeParts) {
    if (vidMask) o.put(`dl_vlan=${tci.v & VLAN_VID_MASK}`);
    if (pcpMask) o.put(`dl_vlan_pcp=${(tci.v & VLAN_PCP_MASK) >> 13n}`);
  } else {
    o.put(tci.m === 0xffffn ? `vlan_tci=${hex4(tci.v)}` : `vlan_tci=${hex4(tci.v)}/${hex4(tci.m)}`);
  }
}

const FRAG_ANY = 1n;
const FRAG_LATER = 2n;

function formatFrag(o: Out, frag: Masked | undefined): void {
  if (!frag) return;
  const v = frag.v;
  switch (frag.m & 3n) {
    case FRAG_ANY | FRAG_LATER:
      return o.put(`nw_frag=${v & FRAG_ANY ? (v & FRAG_LATER ? 'later' : 'first') : v & FRAG_LATER ? '<error>' : 'no'}`);
    case FRAG_ANY:
      return o.put(`nw_frag=${v & FRAG_ANY ? 'yes' : 'no'}`);
    case FRAG_LATER:
      return o.put(`nw_frag=${v & FRAG_LATER ? 'later' : 'not_later'}`);
  }
}
