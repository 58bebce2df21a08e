import type { Match } from '../openflow';
import { matchValue } from './match';

const IPV4 = 0x0800;
const IPV6 = 0x86dd;
const ARP = 0x0806;
const MPLS = [0x8847, 0x8848];

type Check = (m: Match) => boolean;
const ethType = (...types: number[]): Check => (m) => types.includes(matchValue(m, 'eth_type') as number);
const ipProto = (proto: number, ...types: number[]): Check => (m) =>
  ethType(...types)(m) && matchValue(m, 'ip_proto') === proto;
const icmpv6Type = (...t: number[]): Check => (m) => ipProto(58, IPV6)(m) && t.includes(matchValue(m, 'icmpv6_type') as number);

/** OpenFlow 1.3 §7.2.3.8: the fields a match must also pin for a field to be legal. */
const PREREQUISITES = new Map<string, { check: Check; needs: string }>(Object.entries({
  vlan_pcp: { check: (m) => m.some((t) => t.field === 'vlan_vid'), needs: 'vlan_vid' },
  ip_dscp: { check: ethType(IPV4, IPV6), needs: 'eth_type=0x0800 or 0x86dd' },
  ip_ecn: { check: ethType(IPV4, IPV6), needs: 'eth_type=0x0800 or 0x86dd' },
  ip_proto: { check: ethType(IPV4, IPV6), needs: 'eth_type=0x0800 or 0x86dd' },
  ipv4_src: { check: ethType(IPV4), needs: 'eth_type=0x0800' },
  ipv4_dst: { check: ethType(IPV4), needs: 'eth_type=0x0800' },
  tcp_src: { check: (m) => ipProto(6, IPV4, IPV6)(m), needs: 'ip_proto=6' },
  tcp_dst: { check: (m) => ipProto(6, IPV4, IPV6)(m), needs: 'ip_proto=6' },
  udp_src: { check: (m) => ipProto(17, IPV4, IPV6)(m), needs: 'ip_proto=17' },
  udp_dst: { check: (m) => ipProto(17, IPV4, IPV6)(m), needs: 'ip_proto=17' },
  sctp_src: { check: (m) => ipProto(132, IPV4, IPV6)(m), needs: 'ip_proto=132' },
  sctp_dst: { check: (m) => ipProto(132, IPV4, IPV6)(m), needs: 'ip_proto=132' },
  icmpv4_type: { check: ipProto(1, IPV4), needs: 'eth_type=0x0800,ip_proto=1' },
  icmpv4_code: { check: ipProto(1, IPV4), needs: 'eth_type=0x0800,ip_proto=1' },
  arp_op: { check: ethType(ARP), needs: 'eth_type=0x0806' },
  arp_spa: { check: ethType(ARP), needs: 'eth_type=0x0806' },
  arp_tpa: { check: ethType(ARP), needs: 'eth_type=0x0806' },
  arp_sha: { check: ethType(ARP), needs: 'eth_type=0x0806' },
  arp_tha: { check: ethType(ARP), needs: 'eth_type=0x0806' },
  ipv6_src: { check: ethType(IPV6), needs: 'eth_type=0x86dd' },
  ipv6_dst: { check: ethType(IPV6), needs: 'eth_type=0x86dd' },
  ipv6_flabel: { check: ethType(IPV6), needs: 'eth_type=0x86dd' },
  ipv6_exthdr: { check: ethType(IPV6), needs: 'eth_type=0x86dd' },
  icmpv6_type: { check: ipProto(58, IPV6), needs: 'eth_type=0x86dd,ip_proto=58' },
  icmpv6_code: { check: ipProto(58, IPV6), needs: 'eth_type=0x86dd,ip_proto=58' },
  ipv6_nd_target: { check: icmpv6Type(135, 136), needs: 'icmpv6_type=135 or 136' },
  ipv6_nd_sll: { check: icmpv6Type(135), needs: 'icmpv6_type=135' },
  ipv6_nd_tll: { check: icmpv6Type(136), needs: 'icmpv6_type=136' },
  mpls_label: { check: ethType(...MPLS), needs: 'eth_type=0x8847 or 0x8848' },
  mpls_tc: { check: ethType(...MPLS), needs: 'eth_type=0x8847 or 0x8848' },
  mpls_bos: { check: ethType(...MPLS), needs: 'eth_type=0x8847 or 0x8848' },
  pbb_isid: { check: ethType(0x88e7), needs: 'eth_type=0x88e7' },
}));

/** The first field whose prerequisite is missing, with what it needs; undefined when the match is legal. */
export function missingPrerequisite(m: Match): { field: string; needs: string } | undefined {
  for (const tlv of m) {
    // a Map: most fields have no rule, and a miss on an object literal walks its prototype chain
    const rule = PREREQUISITES.get(tlv.field);
    if (rule && !rule.check(m)) return { field: tlv.field, needs: rule.needs };
  }
  return undefined;
}
