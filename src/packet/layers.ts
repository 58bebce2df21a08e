/**
 * Decoded layers, one per header, in wire order. Each layer's "next" field (ethType, protocol,
 * nextHeader, protocolType) names the layer after it. MACs are 'aa:bb:cc:dd:ee:ff', IPv4 dotted,
 * IPv6 RFC 5952 text. Buffers are views into the parsed frame, not copies.
 */

export interface EthernetLayer {
  type: 'ethernet';
  dst: string;
  src: string;
  /** the first ethertype/TPID: 0x8100 when a VLAN tag follows */
  ethType: number;
  /** bytes after the frame's L3 packet (minimum-size padding), when there are any */
  padding?: Buffer;
}

/** One 802.1Q tag; its TPID is the previous layer's ethType. */
export interface VlanLayer {
  type: 'vlan';
  pcp: number;
  dei: boolean;
  vid: number;
  ethType: number;
}

/** Ethernet/IPv4 ARP (other hardware or protocol types are left as raw bytes). */
export interface ArpLayer {
  type: 'arp';
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export interface Ipv4Layer {
  type: 'ipv4';
  dscp: number;
  ecn: number;
  totalLength: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** in 8-byte units; a fragment other than the first has its payload left raw */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: string;
  dst: string;
  /** raw option bytes, a multiple of 4 long */
  options: Buffer;
}

export interface Ipv6Layer {
  type: 'ipv6';
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;
}

/** Hop-by-hop (0), routing (43), fragment (44) or destination options (60) header. */
export interface Ipv6ExtensionLayer {
  type: 'ipv6-ext';
  headerType: number;
  nextHeader: number;
  /** everything after the next-header and length bytes (for a fragment header: the 6 bytes after next-header and reserved) */
  body: Buffer;
}

export interface IcmpLayer {
  type: 'icmp';
  icmpType: number;
  code: number;
  checksum: number;
}

export interface Icmpv6Layer {
  type: 'icmpv6';
  icmpType: number;
  code: number;
  checksum: number;
}

/** Body of an ICMP or ICMPv6 echo request/reply; the echoed data follows as a raw layer. */
export interface IcmpEchoLayer {
  type: 'icmp-echo';
  identifier: number;
  sequence: number;
}

export type NdpOption =
  | { type: 'source-lla' | 'target-lla'; mac: string }
  /** RFC 4861 §4.6.2; lifetimes in seconds, 0xffffffff is infinity */
  | { type: 'prefix'; prefix: string; prefixLength: number; onLink: boolean; autonomous: boolean; validLifetime: number; preferredLifetime: number }
  | { type: 'mtu'; mtu: number }
  /** any other option: its type and the bytes after its type and length */
  | { type: 'other'; optionType: number; data: Buffer };

export interface NdpNeighborSolicitationLayer {
  type: 'ndp-ns';
  target: string;
  options: NdpOption[];
}

export interface NdpRouterSolicitationLayer {
  type: 'ndp-rs';
  options: NdpOption[];
}

/** RFC 4861 §4.2; times in the units of the wire (lifetime in seconds, reachable and retrans in ms) */
export interface NdpRouterAdvertisementLayer {
  type: 'ndp-ra';
  curHopLimit: number;
  /** M: addresses by DHCPv6 */
  managed: boolean;
  /** O: other configuration by DHCPv6 */
  other: boolean;
  routerLifetime: number;
  reachableTime: number;
  retransTimer: number;
  options: NdpOption[];
}

export interface NdpNeighborAdvertisementLayer {
  type: 'ndp-na';
  router: boolean;
  solicited: boolean;
  override: boolean;
  target: string;
  options: NdpOption[];
}

export interface TcpLayer {
  type: 'tcp';
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** the 12 bits after the data offset; see TcpFlag */
  flags: number;
  window: number;
  checksum: number;
  urgentPointer: number;
  /** raw option bytes, a multiple of 4 long */
  options: Buffer;
}

export interface UdpLayer {
  type: 'udp';
  srcPort: number;
  dstPort: number;
  length: number;
  /** 0 means the sender computed none (allowed over IPv4, and for tunnels over IPv6); a spec's 0 stays 0 */
  checksum: number;
}

export interface VxlanLayer {
  type: 'vxlan';
  flags: number;
  vni: number;
}

export interface GeneveOption {
  optionClass: number;
  /** the top bit (GENEVE_OPTION_CRITICAL) marks a critical option */
  optionType: number;
  /** a multiple of 4 bytes, at most 124 */
  data: Buffer;
}

export interface GeneveLayer {
  type: 'geneve';
  oam: boolean;
  /** set when any option is critical */
  critical: boolean;
  protocolType: number;
  vni: number;
  options: GeneveOption[];
}

/** Bytes no parser claimed: an unknown protocol's payload, application data, a later fragment. */
export interface RawLayer {
  type: 'raw';
  data: Buffer;
}

export type Layer =
  | EthernetLayer
  | VlanLayer
  | ArpLayer
  | Ipv4Layer
  | Ipv6Layer
  | Ipv6ExtensionLayer
  | IcmpLayer
  | Icmpv6Layer
  | IcmpEchoLayer
  | NdpNeighborSolicitationLayer
  | NdpNeighborAdvertisementLayer
  | NdpRouterSolicitationLayer
  | NdpRouterAdvertisementLayer
  | TcpLayer
  | UdpLayer
  | VxlanLayer
  | GeneveLayer
  | RawLayer;

export type LayerType = Layer['type'];
export type LayerOf<T extends LayerType> = Extract<Layer, { type: T }>;

export interface ParsedPacket {
  /** the frame that was parsed; layers' Buffers are views into it */
  readonly buf: Buffer;
  readonly layers: Layer[];
  /** offsets[i] is where layers[i] starts in buf */
  readonly offsets: number[];
}

/**
 * What buildPacket takes for each layer: the `required` fields, with the rest optional.
 * Lengths and checksums are always computed, and a missing "next" field is inferred from the
 * layer after it, so a parsed layer is also a valid spec.
 */
type Spec<L extends Layer, Required extends keyof L, Computed extends keyof L = never> = Pick<L, 'type' | Required> &
  Partial<Omit<L, 'type' | Required | Computed>>;

export type LayerSpec =
  | Spec<EthernetLayer, 'dst' | 'src'>
  | Spec<VlanLayer, 'vid'>
  | ArpLayer
  | Spec<Ipv4Layer, 'src' | 'dst', 'totalLength' | 'checksum'>
  | Spec<Ipv6Layer, 'src' | 'dst', 'payloadLength'>
  | Spec<Ipv6ExtensionLayer, 'headerType' | 'body'>
  | Spec<IcmpLayer, 'icmpType', 'checksum'>
  | Spec<Icmpv6Layer, 'icmpType', 'checksum'>
  | IcmpEchoLayer
  | Spec<NdpNeighborSolicitationLayer, 'target'>
  | Spec<NdpNeighborAdvertisementLayer, 'target'>
  | Spec<NdpRouterSolicitationLayer, never>
  | Spec<NdpRouterAdvertisementLayer, never>
  | Spec<TcpLayer, 'srcPort' | 'dstPort', 'checksum'>
  | Spec<UdpLayer, 'srcPort' | 'dstPort', 'length'>
  | Spec<VxlanLayer, 'vni'>
  | Spec<GeneveLayer, 'vni'>
  | RawLayer;
