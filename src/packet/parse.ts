import { formatIpv4, formatIpv6, formatMac } from '../openflow/addr';
import {
  ARP_LEN,
  ETHERNET_HEADER_LEN,
  EthType,
  GENEVE_HEADER_LEN,
  ICMP_ECHO_LEN,
  ICMP_HEADER_LEN,
  IPV4_MIN_HEADER_LEN,
  IPV6_EXTENSION_HEADERS,
  IPV6_HEADER_LEN,
  IcmpType,
  Icmpv6Type,
  IpProto,
  NDP_RA_LEN,
  NDP_RS_LEN,
  NdpOptionType,
  TCP_MIN_HEADER_LEN,
  UDP_HEADER_LEN,
  UdpPort,
  VLAN_TAG_LEN,
  VLAN_TPIDS,
  VXLAN_HEADER_LEN,
} from './constants';
import { PacketParseError } from './errors';
import type { EthernetLayer, GeneveOption, Layer, LayerOf, LayerType, NdpOption, ParsedPacket } from './layers';

/** Decodes the whole layer stack of an Ethernet frame. Throws PacketParseError and nothing else. */
export function parsePacket(buf: Buffer): ParsedPacket {
  const packet: ParsedPacket = { buf, layers: [], offsets: [] };
  parseEthernet(packet, 0, buf.length);
  return packet;
}

export type ParseResult = { ok: true; packet: ParsedPacket } | { ok: false; error: PacketParseError };

/** parsePacket for callers that would rather branch than catch. */
export function tryParsePacket(buf: Buffer): ParseResult {
  try {
    return { ok: true, packet: parsePacket(buf) };
  } catch (error) {
    if (error instanceof PacketParseError) return { ok: false, error };
    throw error;
  }
}

/** The first layer of a type at or after index `from`. */
export function findLayer<T extends LayerType>(packet: ParsedPacket, type: T, from = 0): LayerOf<T> | undefined {
  for (let i = from; i < packet.layers.length; i++) {
    const layer = packet.layers[i]!;
    if (layer.type === type) return layer as LayerOf<T>;
  }
  return undefined;
}

/**
 * The hot-path view of a frame: addresses and ethertype only, without decoding the rest.
 * The addresses' text is formatted only when asked for (a MacTable reads the bytes themselves).
 */
export class EthernetHeader {
  constructor(
    private readonly frame: Buffer,
    /** the ethertype after any VLAN tags */
    readonly ethType: number,
    /** VID of the outermost VLAN tag, if tagged */
    readonly vlan: number | undefined,
    /** where the L3 packet starts */
    readonly payloadOffset: number,
  ) {}

  get dst(): string {
    return formatMac(this.frame, 0);
  }

  get src(): string {
    return formatMac(this.frame, 6);
  }

  /** a group address (broadcast or multicast): the I/G bit of the first byte */
  get srcIsGroup(): boolean {
    return (this.frame[6]! & 1) !== 0;
  }
}

/** Reads the Ethernet header of `buf`; throws PacketParseError on a truncated frame or VLAN tag. */
export function ethernetHeader(buf: Buffer): EthernetHeader {
  need(buf, 'ethernet', 0, ETHERNET_HEADER_LEN, buf.length);
  let ethType = u16(buf, 12);
  let at = ETHERNET_HEADER_LEN;
  let vlan: number | undefined;
  while (VLAN_TPIDS.has(ethType)) {
    need(buf, 'vlan', at, VLAN_TAG_LEN, buf.length);
    vlan ??= u16(buf, at) & 0x0fff;
    ethType = u16(buf, at + 2);
    at += VLAN_TAG_LEN;
  }
  return new EthernetHeader(buf, ethType, vlan, at);
}

function u16(buf: Buffer, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function u32(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at);
}

function need(buf: Buffer, layer: LayerType, at: number, n: number, end: number): void {
  if (at + n > end) {
    throw new PacketParseError('truncated', layer, at, `needs ${n} bytes, ${Math.max(0, end - at)} left of ${buf.length}`);
  }
}

function push(packet: ParsedPacket, layer: Layer, at: number): void {
  packet.layers.push(layer);
  packet.offsets.push(at);
}

function pushRaw(packet: ParsedPacket, at: number, end: number): void {
  if (at < end) push(packet, { type: 'raw', data: packet.buf.subarray(at, end) }, at);
}

function parseEthernet(packet: ParsedPacket, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'ethernet', at, ETHERNET_HEADER_LEN, end);
  const eth: EthernetLayer = { type: 'ethernet', dst: formatMac(buf, at), src: formatMac(buf, at + 6), ethType: u16(buf, at + 12) };
  push(packet, eth, at);
  let ethType = eth.ethType;
  let pos = at + ETHERNET_HEADER_LEN;
  while (VLAN_TPIDS.has(ethType)) {
    need(buf, 'vlan', pos, VLAN_TAG_LEN, end);
    const tci = u16(buf, pos);
    ethType = u16(buf, pos + 2);
    push(packet, { type: 'vlan', pcp: tci >> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0x0fff, ethType }, pos);
    pos += VLAN_TAG_LEN;
  }
  const l3End = parseEtherPayload(packet, ethType, pos, end);
  if (l3End < end) eth.padding = buf.subarray(l3End, end);
}

/** Decodes what an ethertype announces; returns where it ended (the rest of the frame is padding). */
function parseEtherPayload(packet: ParsedPacket, ethType: number, at: number, end: number): number {
  switch (ethType) {
    case EthType.ARP:
      return parseArp(packet, at, end);
    case EthType.IPV4:
      return parseIpv4(packet, at, end);
    case EthType.IPV6:
      return parseIpv6(packet, at, end);
    default:
      pushRaw(packet, at, end);
      return end;
  }
}

function parseArp(packet: ParsedPacket, at: number, end: number): number {
  const { buf } = packet;
  need(buf, 'arp', at, 8, end);
  const ethernetIpv4 = u16(buf, at) === 1 && u16(buf, at + 2) === EthType.IPV4 && buf[at + 4] === 6 && buf[at + 5] === 4;
  if (!ethernetIpv4) {
    pushRaw(packet, at, end);
    return end;
  }
  need(buf, 'arp', at, ARP_LEN, end);
  push(
    packet,
    {
      type: 'arp',
      op: u16(buf, at + 6),
      senderMac: formatMac(buf, at + 8),
      senderIp: formatIpv4(buf, at + 14),
      targetMac: formatMac(buf, at + 18),
      targetIp: formatIpv4(buf, at + 24),
    },
    at,
  );
  return at + ARP_LEN;
}

function parseIpv4(packet: ParsedPacket, at: number, end: number): number {
  const { buf } = packet;
  need(buf, 'ipv4', at, IPV4_MIN_HEADER_LEN, end);
  const version = buf[at]! >> 4;
  if (version !== 4) throw new PacketParseError('bad_value', 'ipv4', at, `version ${version}`);
  const headerLen = (buf[at]! & 0x0f) * 4;
  if (headerLen < IPV4_MIN_HEADER_LEN) throw new PacketParseError('bad_value', 'ipv4', at, `header length ${headerLen}`);
  need(buf, 'ipv4', at, headerLen, end);
  const totalLength = u16(buf, at + 2);
  if (totalLength < headerLen) {
    throw new PacketParseError('bad_length', 'ipv4', at + 2, `total length ${totalLength} < header length ${headerLen}`);
  }
  need(buf, 'ipv4', at, totalLength, end);
  const fragment = u16(buf, at + 6);
  const layer: LayerOf<'ipv4'> = {
    type: 'ipv4',
    dscp: buf[at + 1]! >> 2,
    ecn: buf[at + 1]! & 3,
    totalLength,
    identification: u16(buf, at + 4),
    dontFragment: (fragment & 0x4000) !== 0,
    moreFragments: (fragment & 0x2000) !== 0,
    fragmentOffset: fragment & 0x1fff,
    ttl: buf[at + 8]!,
    protocol: buf[at + 9]!,
    checksum: u16(buf, at + 10),
    src: formatIpv4(buf, at + 12),
    dst: formatIpv4(buf, at + 16),
    options: buf.subarray(at + IPV4_MIN_HEADER_LEN, at + headerLen),
  };
  push(packet, layer, at);
  const payloadEnd = at + totalLength;
  if (layer.moreFragments || layer.fragmentOffset !== 0) pushRaw(packet, at + headerLen, payloadEnd);
  else parseIpPayload(packet, 4, layer.protocol, at + headerLen, payloadEnd);
  return payloadEnd;
}

function parseIpv6(packet: ParsedPacket, at: number, end: number): number {
  const { buf } = packet;
  need(buf, 'ipv6', at, IPV6_HEADER_LEN, end);
  const word = u32(buf, at);
  const version = word >>> 28;
  if (version !== 6) throw new PacketParseError('bad_value', 'ipv6', at, `version ${version}`);
  const payloadLength = u16(buf, at + 4);
  need(buf, 'ipv6', at, IPV6_HEADER_LEN + payloadLength, end);
  const nextHeader = buf[at + 6]!;
  push(
    packet,
    {
      type: 'ipv6',
      trafficClass: (word >>> 20) & 0xff,
      flowLabel: word & 0xfffff,
      payloadLength,
      nextHeader,
      hopLimit: buf[at + 7]!,
      src: formatIpv6(buf, at + 8),
      dst: formatIpv6(buf, at + 24),
    },
    at,
  );
  const payloadEnd = at + IPV6_HEADER_LEN + payloadLength;
  parseIpPayload(packet, 6, nextHeader, at + IPV6_HEADER_LEN, payloadEnd);
  return payloadEnd;
}

function parseIpPayload(packet: ParsedPacket, ipVersion: 4 | 6, protocol: number, at: number, end: number): void {
  if (protocol === IpProto.TCP) return parseTcp(packet, at, end);
  if (protocol === IpProto.UDP) return parseUdp(packet, at, end);
  if (ipVersion === 4 && protocol === IpProto.ICMP) return parseIcmp(packet, at, end);
  if (ipVersion === 6 && protocol === IpProto.ICMPV6) return parseIcmpv6(packet, at, end);
  if (ipVersion === 6 && IPV6_EXTENSION_HEADERS.has(protocol)) return parseIpv6Extension(packet, protocol, at, end);
  pushRaw(packet, at, end);
}

function parseIpv6Extension(packet: ParsedPacket, headerType: number, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'ipv6-ext', at, 8, end);
  const fragment = headerType === IpProto.IPV6_FRAGMENT;
  const length = fragment ? 8 : (buf[at + 1]! + 1) * 8;
  need(buf, 'ipv6-ext', at, length, end);
  const nextHeader = buf[at]!;
  push(packet, { type: 'ipv6-ext', headerType, nextHeader, body: buf.subarray(at + 2, at + length) }, at);
  // only the first fragment holds the upper-layer header, and even it cannot be checked alone
  if (fragment && (u16(buf, at + 2) & 0xfff9) !== 0) pushRaw(packet, at + length, end);
  else parseIpPayload(packet, 6, nextHeader, at + length, end);
}

function parseIcmp(packet: ParsedPacket, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'icmp', at, ICMP_HEADER_LEN, end);
  const icmpType = buf[at]!;
  push(packet, { type: 'icmp', icmpType, code: buf[at + 1]!, checksum: u16(buf, at + 2) }, at);
  if (icmpType === IcmpType.ECHO_REQUEST || icmpType === IcmpType.ECHO_REPLY) parseEcho(packet, at + ICMP_HEADER_LEN, end);
  else pushRaw(packet, at + ICMP_HEADER_LEN, end);
}

function parseIcmpv6(packet: ParsedPacket, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'icmpv6', at, ICMP_HEADER_LEN, end);
  const icmpType = buf[at]!;
  push(packet, { type: 'icmpv6', icmpType, code: buf[at + 1]!, checksum: u16(buf, at + 2) }, at);
  const body = at + ICMP_HEADER_LEN;
  switch (icmpType) {
    case Icmpv6Type.ECHO_REQUEST:
    case Icmpv6Type.ECHO_REPLY:
      return parseEcho(packet, body, end);
    case Icmpv6Type.NEIGHBOR_SOLICITATION:
      need(buf, 'ndp-ns', body, 20, end);
      push(packet, { type: 'ndp-ns', target: formatIpv6(buf, body + 4), options: parseNdpOptions(packet, 'ndp-ns', body + 20, end) }, body);
      return;
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT: {
      need(buf, 'ndp-na', body, 20, end);
      const flags = buf[body]!;
      push(
        packet,
        {
          type: 'ndp-na',
          router: (flags & 0x80) !== 0,
          solicited: (flags & 0x40) !== 0,
          override: (flags & 0x20) !== 0,
          target: formatIpv6(buf, body + 4),
          options: parseNdpOptions(packet, 'ndp-na', body + 20, end),
        },
        body,
      );
      return;
    }
    case Icmpv6Type.ROUTER_SOLICITATION:
      need(buf, 'ndp-rs', body, NDP_RS_LEN, end);
      push(packet, { type: 'ndp-rs', options: parseNdpOptions(packet, 'ndp-rs', body + NDP_RS_LEN, end) }, body);
      return;
    case Icmpv6Type.ROUTER_ADVERTISEMENT:
      need(buf, 'ndp-ra', body, NDP_RA_LEN, end);
      push(
        packet,
        {
          type: 'ndp-ra',
          curHopLimit: buf[body]!,
          managed: (buf[body + 1]! & 0x80) !== 0,
          other: (buf[body + 1]! & 0x40) !== 0,
          routerLifetime: u16(buf, body + 2),
          reachableTime: u32(buf, body + 4),
          retransTimer: u32(buf, body + 8),
          options: parseNdpOptions(packet, 'ndp-ra', body + NDP_RA_LEN, end),
        },
        body,
      );
      return;
    default:
      pushRaw(packet, body, end);
  }
}

function parseEcho(packet: ParsedPacket, at: number, end: number): void {
  need(packet.buf, 'icmp-echo', at, ICMP_ECHO_LEN, end);
  push(packet, { type: 'icmp-echo', identifier: u16(packet.buf, at), sequence: u16(packet.buf, at + 2) }, at);
  pushRaw(packet, at + ICMP_ECHO_LEN, end);
}

function parseNdpOptions(packet: ParsedPacket, layer: NdpLayerType, at: number, end: number): NdpOption[] {
  const { buf } = packet;
  const options: NdpOption[] = [];
  while (at < end) {
    need(buf, layer, at, 2, end);
    const optionType = buf[at]!;
    const length = buf[at + 1]! * 8;
    if (length === 0) throw new PacketParseError('bad_length', layer, at + 1, 'option of length 0');
    need(buf, layer, at, length, end);
    const linkLayer = optionType === NdpOptionType.SOURCE_LLA || optionType === NdpOptionType.TARGET_LLA;
    if (linkLayer && length === 8) {
      options.push({ type: optionType === NdpOptionType.SOURCE_LLA ? 'source-lla' : 'target-lla', mac: formatMac(buf, at + 2) });
    } else if (optionType === NdpOptionType.PREFIX_INFORMATION && length === 32) {
      options.push({
        type: 'prefix',
        prefixLength: buf[at + 2]!,
        onLink: (buf[at + 3]! & 0x80) !== 0,
        autonomous: (buf[at + 3]! & 0x40) !== 0,
        validLifetime: u32(buf, at + 4),
        preferredLifetime: u32(buf, at + 8),
        prefix: formatIpv6(buf, at + 16),
      });
    } else if (optionType === NdpOptionType.MTU && length === 8) {
      options.push({ type: 'mtu', mtu: u32(buf, at + 4) });
    } else {
      options.push({ type: 'other', optionType, data: buf.subarray(at + 2, at + length) });
    }
    at += length;
  }
  return options;
}

type NdpLayerType = 'ndp-ns' | 'ndp-na' | 'ndp-rs' | 'ndp-ra';

function parseTcp(packet: ParsedPacket, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'tcp', at, TCP_MIN_HEADER_LEN, end);
  const headerLen = (buf[at + 12]! >> 4) * 4;
  if (headerLen < TCP_MIN_HEADER_LEN) throw new PacketParseError('bad_value', 'tcp', at + 12, `data offset ${headerLen / 4}`);
  need(buf, 'tcp', at, headerLen, end);
  push(
    packet,
    {
      type: 'tcp',
      srcPort: u16(buf, at),
      dstPort: u16(buf, at + 2),
      seq: u32(buf, at + 4),
      ack: u32(buf, at + 8),
      flags: u16(buf, at + 12) & 0x0fff,
      window: u16(buf, at + 14),
      checksum: u16(buf, at + 16),
      urgentPointer: u16(buf, at + 18),
      options: buf.subarray(at + TCP_MIN_HEADER_LEN, at + headerLen),
    },
    at,
  );
  pushRaw(packet, at + headerLen, end);
}

function parseUdp(packet: ParsedPacket, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'udp', at, UDP_HEADER_LEN, end);
  const length = u16(buf, at + 4);
  if (length !== end - at) {
    throw new PacketParseError('bad_length', 'udp', at + 4, `length ${length}, but the IP payload holds ${end - at} bytes`);
  }
  const dstPort = u16(buf, at + 2);
  push(packet, { type: 'udp', srcPort: u16(buf, at), dstPort, length, checksum: u16(buf, at + 6) }, at);
  const payload = at + UDP_HEADER_LEN;
  if (dstPort === UdpPort.VXLAN) parseVxlan(packet, payload, end);
  else if (dstPort === UdpPort.GENEVE) parseGeneve(packet, payload, end);
  else pushRaw(packet, payload, end);
}

function parseVxlan(packet: ParsedPacket, at: number, end: number): void {
  need(packet.buf, 'vxlan', at, VXLAN_HEADER_LEN, end);
  push(packet, { type: 'vxlan', flags: packet.buf[at]!, vni: u32(packet.buf, at + 4) >>> 8 }, at);
  parseEthernet(packet, at + VXLAN_HEADER_LEN, end);
}

function parseGeneve(packet: ParsedPacket, at: number, end: number): void {
  const { buf } = packet;
  need(buf, 'geneve', at, GENEVE_HEADER_LEN, end);
  const version = buf[at]! >> 6;
  if (version !== 0) throw new PacketParseError('bad_value', 'geneve', at, `version ${version}`);
  const optionsEnd = at + GENEVE_HEADER_LEN + (buf[at]! & 0x3f) * 4;
  need(buf, 'geneve', at, optionsEnd - at, end);
  const options: GeneveOption[] = [];
  for (let pos = at + GENEVE_HEADER_LEN; pos < optionsEnd; ) {
    need(buf, 'geneve', pos, 4, optionsEnd);
    const dataEnd = pos + 4 + (buf[pos + 3]! & 0x1f) * 4;
    if (dataEnd > optionsEnd) throw new PacketParseError('bad_length', 'geneve', pos + 3, 'option runs past the options length');
    options.push({ optionClass: u16(buf, pos), optionType: buf[pos + 2]!, data: buf.subarray(pos + 4, dataEnd) });
    pos = dataEnd;
  }
  const protocolType = u16(buf, at + 2);
  push(
    packet,
    {
      type: 'geneve',
      oam: (buf[at + 1]! & 0x80) !== 0,
      critical: (buf[at + 1]! & 0x40) !== 0,
      protocolType,
      vni: u32(buf, at + 4) >>> 8,
      options,
    },
    at,
  );
  if (protocolType === EthType.TEB) return parseEthernet(packet, optionsEnd, end);
  if (protocolType !== EthType.IPV4 && protocolType !== EthType.IPV6) return pushRaw(packet, optionsEnd, end);
  // no Ethernet frame to hold trailing bytes: the inner packet must fill the tunnel payload exactly
  const inner = protocolType === EthType.IPV4 ? 'ipv4' : 'ipv6';
  const innerEnd = inner === 'ipv4' ? parseIpv4(packet, optionsEnd, end) : parseIpv6(packet, optionsEnd, end);
  if (innerEnd !== end) throw new PacketParseError('bad_length', inner, optionsEnd, `${end - innerEnd} bytes after the inner packet`);
}
