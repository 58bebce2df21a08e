/** Wire numbers the parser dispatches on and builders infer. */

export const EthType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
  LLDP: 0x88cc,
  /** Transparent Ethernet Bridging: Geneve's protocol type for an inner Ethernet frame */
  TEB: 0x6558,
} as const;

/** Ethertypes that introduce an 802.1Q tag (0x9100 is the pre-802.1ad QinQ convention). */
export const VLAN_TPIDS: ReadonlySet<number> = new Set([EthType.VLAN, EthType.QINQ, 0x9100]);

export const IpProto = {
  HOP_BY_HOP: 0,
  ICMP: 1,
  IPV4: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  IPV6_ROUTING: 43,
  IPV6_FRAGMENT: 44,
  ICMPV6: 58,
  IPV6_NO_NEXT: 59,
  IPV6_DEST_OPTIONS: 60,
} as const;

/** IPv6 extension headers parsed as 'ipv6-ext' layers. */
export const IPV6_EXTENSION_HEADERS: ReadonlySet<number> = new Set([
  IpProto.HOP_BY_HOP,
  IpProto.IPV6_ROUTING,
  IpProto.IPV6_FRAGMENT,
  IpProto.IPV6_DEST_OPTIONS,
]);

export const UdpPort = { VXLAN: 4789, GENEVE: 6081 } as const;

export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;

export const IcmpType = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
} as const;

export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

/** Neighbour discovery option types (RFC 4861 §4.6). */
export const NdpOptionType = { SOURCE_LLA: 1, TARGET_LLA: 2, PREFIX_INFORMATION: 3, MTU: 5 } as const;

/** the body of an RS (4 reserved bytes) and an RA (hop limit, flags, lifetime, reachable, retrans) before their options */
export const NDP_RS_LEN = 4;
export const NDP_RA_LEN = 12;

/** Bits of TcpLayer.flags (the 12 bits after the data offset). */
export const TcpFlag = {
  FIN: 0x001,
  SYN: 0x002,
  RST: 0x004,
  PSH: 0x008,
  ACK: 0x010,
  URG: 0x020,
  ECE: 0x040,
  CWR: 0x080,
  AE: 0x100,
} as const;

/** VXLAN flag byte with the I bit: the VNI is valid (RFC 7348). */
export const VXLAN_FLAG_VNI = 0x08;
/** The top bit of a Geneve option type marks it critical (RFC 8926 §3.5). */
export const GENEVE_OPTION_CRITICAL = 0x80;

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const ZERO_MAC = '00:00:00:00:00:00';

export const ETHERNET_HEADER_LEN = 14;
export const VLAN_TAG_LEN = 4;
export const ARP_LEN = 28;
export const IPV4_MIN_HEADER_LEN = 20;
export const IPV6_HEADER_LEN = 40;
export const ICMP_HEADER_LEN = 4;
export const ICMP_ECHO_LEN = 4;
export const TCP_MIN_HEADER_LEN = 20;
export const UDP_HEADER_LEN = 8;
export const VXLAN_HEADER_LEN = 8;
export const GENEVE_HEADER_LEN = 8;
