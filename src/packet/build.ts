import { parseIpv4, parseIpv6, parseMac } from '../openflow/addr';
import { OfEncodeError } from '../openflow/errors';
import { finishChecksum, IP_PROTOCOL_OF, pseudoHeaderSum, sum16 } from './checksum';
import {
  ARP_LEN,
  ETHERNET_HEADER_LEN,
  EthType,
  GENEVE_HEADER_LEN,
  GENEVE_OPTION_CRITICAL,
  ICMP_ECHO_LEN,
  ICMP_HEADER_LEN,
  IPV4_MIN_HEADER_LEN,
  IPV6_HEADER_LEN,
  IpProto,
  NDP_RA_LEN,
  NDP_RS_LEN,
  NdpOptionType,
  TCP_MIN_HEADER_LEN,
  UDP_HEADER_LEN,
  VLAN_TAG_LEN,
  VXLAN_FLAG_VNI,
  VXLAN_HEADER_LEN,
} from './constants';
import { PacketBuildError } from './errors';
import type { LayerSpec, LayerType, NdpOption } from './layers';

/**
 * Encodes a layer stack, outermost first, into one frame. Computes every length and checksum
 * (IPv4 header, ICMP, and ICMPv6/TCP/UDP over the pseudo-header of the nearest IP layer before
 * them) and infers each missing "next" field (ethType, protocol, nextHeader, protocolType) from
 * the layer that follows. A UDP checksum given as 0 stays 0 ("none"). `buildPacket(parsePacket(frame).layers)`
 * gives the frame back (reserved bits aside, which are written as zero).
 */
export function buildPacket(layers: readonly LayerSpec[]): Buffer {
  const starts: number[] = [];
  let length = 0;
  let trailers = 0;
  for (const layer of layers) {
    starts.push(length);
    length += headerLength(layer);
    if (layer.type === 'ethernet') trailers += layer.padding?.length ?? 0;
  }
  const buf = Buffer.alloc(length + trailers);
  // a layer spans to the frame's end less the padding of the Ethernet frames enclosing it
  const ends: number[] = [];
  let end = buf.length;
  layers.forEach((layer, i) => {
    ends.push(end);
    writeHeader(buf, layer, layers[i + 1], starts[i]!, end);
    if (layer.type === 'ethernet' && layer.padding) {
      end -= layer.padding.length;
      layer.padding.copy(buf, end);
    }
  });
  // innermost first: an outer checksum covers the inner ones
  for (let i = layers.length - 1; i >= 0; i--) writeChecksum(buf, layers, starts, i, ends[i]!);
  return buf;
}

function headerLength(layer: LayerSpec): number {
  switch (layer.type) {
    case 'ethernet':
      return ETHERNET_HEADER_LEN;
    case 'vlan':
      return VLAN_TAG_LEN;
    case 'arp':
      return ARP_LEN;
    case 'ipv4':
      return IPV4_MIN_HEADER_LEN + (layer.options?.length ?? 0);
    case 'ipv6':
      return IPV6_HEADER_LEN;
    case 'ipv6-ext':
      return 2 + layer.body.length;
    case 'icmp':
    case 'icmpv6':
      return ICMP_HEADER_LEN;
    case 'icmp-echo':
      return ICMP_ECHO_LEN;
    case 'ndp-ns':
    case 'ndp-na':
      return 20 + ndpOptionsLength(layer.options);
    case 'ndp-rs':
      return NDP_RS_LEN + ndpOptionsLength(layer.options);
    case 'ndp-ra':
      return NDP_RA_LEN + ndpOptionsLength(layer.options);
    case 'tcp':
      return TCP_MIN_HEADER_LEN + (layer.options?.length ?? 0);
    case 'udp':
      return UDP_HEADER_LEN;
    case 'vxlan':
      return VXLAN_HEADER_LEN;
    case 'geneve':
      return GENEVE_HEADER_LEN + (layer.options ?? []).reduce((n, o) => n + 4 + o.data.length, 0);
    case 'raw':
      return layer.data.length;
  }
}

function ndpOptionLength(option: NdpOption): number {
  if (option.type === 'other') return 2 + option.data.length;
  return option.type === 'prefix' ? 32 : 8;
}

function ndpOptionsLength(options: readonly NdpOption[] | undefined): number {
  return (options ?? []).reduce((n, o) => n + ndpOptionLength(o), 0);
}

/** The kinds of "next" field: an ethertype, an IP protocol, or an IPv6 next header (which may announce nothing). */
type NextField = 'ethType' | 'ipProtocol' | 'ipv6Next';

/** The value a layer's "next" field takes to announce `next`, if it can be told from it. */
function nextNumber(field: NextField, next: LayerSpec | undefined): number | undefined {
  if (field === 'ethType') {
    switch (next?.type) {
      case 'vlan':
        return EthType.VLAN;
      case 'arp':
        return EthType.ARP;
      case 'ipv4':
        return EthType.IPV4;
      case 'ipv6':
        return EthType.IPV6;
      case 'ethernet':
        return EthType.TEB;
      default:
        return undefined;
    }
  }
  switch (next?.type) {
    case undefined:
      return field === 'ipv6Next' ? IpProto.IPV6_NO_NEXT : undefined;
    case 'icmp':
      return IpProto.ICMP;
    case 'icmpv6':
      return IpProto.ICMPV6;
    case 'tcp':
      return IpProto.TCP;
    case 'udp':
      return IpProto.UDP;
    case 'ipv4':
      return IpProto.IPV4;
    case 'ipv6':
      return IpProto.IPV6;
    case 'ipv6-ext':
      return next.headerType;
    default:
      return undefined;
  }
}

/** A layer's "next" field: as given, or inferred from the layer after it. */
function nextField(given: number | undefined, field: NextField, next: LayerSpec | undefined, layer: LayerType, name: string): number {
  const value = given ?? nextNumber(field, next);
  if (value === undefined) {
    throw new PacketBuildError(layer, `cannot be inferred from a following ${next?.type ?? 'nothing'}; give it`, name);
  }
  return check(value, field === 'ethType' ? 0xffff : 0xff, layer, name);
}

function check(value: number, max: number, layer: LayerType, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new PacketBuildError(layer, `${value} is not an integer in 0..${max}`, field);
  }
  return value;
}

function address(parse: (s: string) => Buffer, text: string, layer: LayerType, field: string): Buffer {
  try {
    return parse(text);
  } catch (error) {
    if (error instanceof OfEncodeError) throw new PacketBuildError(layer, error.message, field);
    throw error;
  }
}

function writeNdpOptions(buf: Buffer, options: readonly NdpOption[], at: number, layer: LayerType): void {
  for (const option of options) {
    if (option.type === 'other') {
      const length = 2 + option.data.length;
      if (length % 8 !== 0 || length > 255 * 8) {
        throw new PacketBuildError(layer, `option data of ${option.data.length} bytes does not fill whole 8-byte units`, 'options');
      }
      buf[at] = check(option.optionType, 0xff, layer, 'options.optionType');
      buf[at + 1] = length / 8;
      option.data.copy(buf, at + 2);
      at += length;
    } else if (option.type === 'prefix') {
      buf[at] = NdpOptionType.PREFIX_INFORMATION;
      buf[at + 1] = 4;
      buf[at + 2] = check(option.prefixLength, 128, layer, 'options.prefixLength');
      buf[at + 3] = (option.onLink ? 0x80 : 0) | (option.autonomous ? 0x40 : 0);
      buf.writeUInt32BE(check(option.validLifetime, 0xffffffff, layer, 'options.validLifetime'), at + 4);
      buf.writeUInt32BE(check(option.preferredLifetime, 0xffffffff, layer, 'options.preferredLifetime'), at + 8);
      address(parseIpv6, option.prefix, layer, 'options.prefix').copy(buf, at + 16);
      at += 32;
    } else if (option.type === 'mtu') {
      buf[at] = NdpOptionType.MTU;
      buf[at + 1] = 1;
      buf.writeUInt32BE(check(option.mtu, 0xffffffff, layer, 'options.mtu'), at + 4);
      at += 8;
    } else {
      buf[at] = option.type === 'source-lla' ? NdpOptionType.SOURCE_LLA : NdpOptionType.TARGET_LLA;
      buf[at + 1] = 1;
      address(parseMac, option.mac, layer, 'options.mac').copy(buf, at + 2);
      at += 8;
    }
  }
}

/** IPv4 and TCP options: whole 32-bit words, at most 40 bytes. */
function wordOptions(options: Buffer | undefined, layer: 'ipv4' | 'tcp'): Buffer {
  const bytes = options ?? Buffer.alloc(0);
  if (bytes.length % 4 !== 0 || bytes.length > 40) {
    throw new PacketBuildError(layer, `${bytes.length} bytes: not a multiple of 4 up to 40`, 'options');
  }
  return bytes;
}

function checkedLength(length: number, max: number, layer: LayerType, field: string): number {
  if (length > max) throw new PacketBuildError(layer, `${length} bytes, over the ${max} it can hold`, field);
  return length;
}

/** Writes the header of `layer` at `at`; `end` is where its payload ends. */
function writeHeader(buf: Buffer, layer: LayerSpec, next: LayerSpec | undefined, at: number, end: number): void {
  switch (layer.type) {
    case 'ethernet':
      address(parseMac, layer.dst, 'ethernet', 'dst').copy(buf, at);
      address(parseMac, layer.src, 'ethernet', 'src').copy(buf, at + 6);
      buf.writeUInt16BE(nextField(layer.ethType, 'ethType', next, 'ethernet', 'ethType'), at + 12);
      return;
    case 'vlan': {
      const tci = (check(layer.pcp ?? 0, 7, 'vlan', 'pcp') << 13) | (layer.dei ? 0x1000 : 0) | check(layer.vid, 0xfff, 'vlan', 'vid');
      buf.writeUInt16BE(tci, at);
      buf.writeUInt16BE(nextField(layer.ethType, 'ethType', next, 'vlan', 'ethType'), at + 2);
      return;
    }
    case 'arp':
      buf.writeUInt32BE(0x00010800, at); // Ethernet, IPv4
      buf[at + 4] = 6;
      buf[at + 5] = 4;
      buf.writeUInt16BE(check(layer.op, 0xffff, 'arp', 'op'), at + 6);
      address(parseMac, layer.senderMac, 'arp', 'senderMac').copy(buf, at + 8);
      address(parseIpv4, layer.senderIp, 'arp', 'senderIp').copy(buf, at + 14);
      address(parseMac, layer.targetMac, 'arp', 'targetMac').copy(buf, at + 18);
      address(parseIpv4, layer.targetIp, 'arp', 'targetIp').copy(buf, at + 24);
      return;
    case 'ipv4': {
      const options = wordOptions(layer.options, 'ipv4');
      buf[at] = 0x40 | (5 + options.length / 4);
      buf[at + 1] = (check(layer.dscp ?? 0, 63, 'ipv4', 'dscp') << 2) | check(layer.ecn ?? 0, 3, 'ipv4', 'ecn');
      buf.writeUInt16BE(checkedLength(end - at, 0xffff, 'ipv4', 'totalLength'), at + 2);
      buf.writeUInt16BE(check(layer.identification ?? 0, 0xffff, 'ipv4', 'identification'), at + 4);
      const flags = (layer.dontFragment ? 0x4000 : 0) | (layer.moreFragments ? 0x2000 : 0);
      buf.writeUInt16BE(flags | check(layer.fragmentOffset ?? 0, 0x1fff, 'ipv4', 'fragmentOffset'), at + 6);
      buf[at + 8] = check(layer.ttl ?? 64, 0xff, 'ipv4', 'ttl');
      buf[at + 9] = nextField(layer.protocol, 'ipProtocol', next, 'ipv4', 'protocol');
      address(parseIpv4, layer.src, 'ipv4', 'src').copy(buf, at + 12);
      address(parseIpv4, layer.dst, 'ipv4', 'dst').copy(buf, at + 16);
      options.copy(buf, at + IPV4_MIN_HEADER_LEN);
      return;
    }
    case 'ipv6': {
      const trafficClass = check(layer.trafficClass ?? 0, 0xff, 'ipv6', 'trafficClass');
      buf.writeUInt32BE(((6 << 28) | (trafficClass << 20) | check(layer.flowLabel ?? 0, 0xfffff, 'ipv6', 'flowLabel')) >>> 0, at);
      buf.writeUInt16BE(checkedLength(end - at - IPV6_HEADER_LEN, 0xffff, 'ipv6', 'payloadLength'), at + 4);
      buf[at + 6] = nextField(layer.nextHeader, 'ipv6Next', next, 'ipv6', 'nextHeader');
      buf[at + 7] = check(layer.hopLimit ?? 64, 0xff, 'ipv6', 'hopLimit');
      address(parseIpv6, layer.src, 'ipv6', 'src').copy(buf, at + 8);
      address(parseIpv6, layer.dst, 'ipv6', 'dst').copy(buf, at + 24);
      return;
    }
    case 'ipv6-ext': {
      const length = 2 + layer.body.length;
      const fragment = layer.headerType === IpProto.IPV6_FRAGMENT;
      if (fragment ? length !== 8 : length % 8 !== 0 || length > 256 * 8) {
        throw new PacketBuildError('ipv6-ext', `${layer.body.length} bytes do not make a whole extension header`, 'body');
      }
      buf[at] = nextField(layer.nextHeader, 'ipv6Next', next, 'ipv6-ext', 'nextHeader');
      buf[at + 1] = fragment ? 0 : length / 8 - 1;
      layer.body.copy(buf, at + 2);
      return;
    }
    case 'icmp':
    case 'icmpv6':
      buf[at] = check(layer.icmpType, 0xff, layer.type, 'icmpType');
      buf[at + 1] = check(layer.code ?? 0, 0xff, layer.type, 'code');
      return;
    case 'icmp-echo':
      buf.writeUInt16BE(check(layer.identifier, 0xffff, 'icmp-echo', 'identifier'), at);
      buf.writeUInt16BE(check(layer.sequence, 0xffff, 'icmp-echo', 'sequence'), at + 2);
      return;
    case 'ndp-ns':
      address(parseIpv6, layer.target, 'ndp-ns', 'target').copy(buf, at + 4);
      writeNdpOptions(buf, layer.options ?? [], at + 20, 'ndp-ns');
      return;
    case 'ndp-na':
      buf[at] = (layer.router ? 0x80 : 0) | (layer.solicited ? 0x40 : 0) | (layer.override ? 0x20 : 0);
      address(parseIpv6, layer.target, 'ndp-na', 'target').copy(buf, at + 4);
      writeNdpOptions(buf, layer.options ?? [], at + 20, 'ndp-na');
      return;
    case 'ndp-rs':
      writeNdpOptions(buf, layer.options ?? [], at + NDP_RS_LEN, 'ndp-rs');
      return;
    case 'ndp-ra':
      buf[at] = check(layer.curHopLimit ?? 0, 0xff, 'ndp-ra', 'curHopLimit');
      buf[at + 1] = (layer.managed ? 0x80 : 0) | (layer.other ? 0x40 : 0);
      buf.writeUInt16BE(check(layer.routerLifetime ?? 0, 0xffff, 'ndp-ra', 'routerLifetime'), at + 2);
      buf.writeUInt32BE(check(layer.reachableTime ?? 0, 0xffffffff, 'ndp-ra', 'reachableTime'), at + 4);
      buf.writeUInt32BE(check(layer.retransTimer ?? 0, 0xffffffff, 'ndp-ra', 'retransTimer'), at + 8);
      writeNdpOptions(buf, layer.options ?? [], at + NDP_RA_LEN, 'ndp-ra');
      return;
    case 'tcp': {
      const options = wordOptions(layer.options, 'tcp');
      buf.writeUInt16BE(check(layer.srcPort, 0xffff, 'tcp', 'srcPort'), at);
      buf.writeUInt16BE(check(layer.dstPort, 0xffff, 'tcp', 'dstPort'), at + 2);
      buf.writeUInt32BE(check(layer.seq ?? 0, 0xffffffff, 'tcp', 'seq'), at + 4);
      buf.writeUInt32BE(check(layer.ack ?? 0, 0xffffffff, 'tcp', 'ack'), at + 8);
      buf.writeUInt16BE(((5 + options.length / 4) << 12) | check(layer.flags ?? 0, 0xfff, 'tcp', 'flags'), at + 12);
      buf.writeUInt16BE(check(layer.window ?? 0xffff, 0xffff, 'tcp', 'window'), at + 14);
      buf.writeUInt16BE(check(layer.urgentPointer ?? 0, 0xffff, 'tcp', 'urgentPointer'), at + 18);
      options.copy(buf, at + TCP_MIN_HEADER_LEN);
      return;
    }
    case 'udp':
      buf.writeUInt16BE(check(layer.srcPort, 0xffff, 'udp', 'srcPort'), at);
      buf.writeUInt16BE(check(layer.dstPort, 0xffff, 'udp', 'dstPort'), at + 2);
      buf.writeUInt16BE(checkedLength(end - at, 0xffff, 'udp', 'length'), at + 4);
      return;
    case 'vxlan':
      buf[at] = check(layer.flags ?? VXLAN_FLAG_VNI, 0xff, 'vxlan', 'flags');
      buf.writeUInt32BE(check(layer.vni, 0xffffff, 'vxlan', 'vni') * 0x100, at + 4);
      return;
    case 'geneve': {
      const options = layer.options ?? [];
      const optionsLength = headerLength(layer) - GENEVE_HEADER_LEN;
      buf[at] = checkedLength(optionsLength, 63 * 4, 'geneve', 'options') / 4;
      const critical = layer.critical ?? options.some((o) => (o.optionType & GENEVE_OPTION_CRITICAL) !== 0);
      buf[at + 1] = (layer.oam ? 0x80 : 0) | (critical ? 0x40 : 0);
      buf.writeUInt16BE(nextField(layer.protocolType, 'ethType', next, 'geneve', 'protocolType'), at + 2);
      buf.writeUInt32BE(check(layer.vni, 0xffffff, 'geneve', 'vni') * 0x100, at + 4);
      let pos = at + GENEVE_HEADER_LEN;
      for (const option of options) {
        if (option.data.length % 4 !== 0 || option.data.length > 31 * 4) {
          throw new PacketBuildError('geneve', `${option.data.length} bytes: not a multiple of 4 up to 124`, 'options.data');
        }
        buf.writeUInt16BE(check(option.optionClass, 0xffff, 'geneve', 'options.optionClass'), pos);
        buf[pos + 2] = check(option.optionType, 0xff, 'geneve', 'options.optionType');
        buf[pos + 3] = option.data.length / 4;
        option.data.copy(buf, pos + 4);
        pos += 4 + option.data.length;
      }
      return;
    }
    case 'raw':
      layer.data.copy(buf, at);
      return;
  }
}

function writeChecksum(buf: Buffer, layers: readonly LayerSpec[], starts: readonly number[], index: number, end: number): void {
  const layer = layers[index]!;
  const at = starts[index]!;
  const withPseudoHeader = (protocol: number) => sum16(buf, at, end, pseudoHeader(buf, layers, starts, index, protocol, end - at));
  switch (layer.type) {
    case 'ipv4':
      buf.writeUInt16BE(finishChecksum(sum16(buf, at, at + headerLength(layer))), at + 10);
      return;
    case 'icmp':
      buf.writeUInt16BE(finishChecksum(sum16(buf, at, end)), at + 2);
      return;
    case 'icmpv6':
      buf.writeUInt16BE(finishChecksum(withPseudoHeader(IP_PROTOCOL_OF.icmpv6)), at + 2);
      return;
    case 'tcp':
      buf.writeUInt16BE(finishChecksum(withPseudoHeader(IP_PROTOCOL_OF.tcp)), at + 16);
      return;
    case 'udp': {
      if (layer.checksum === 0) return;
      const sum = finishChecksum(withPseudoHeader(IP_PROTOCOL_OF.udp));
      buf.writeUInt16BE(sum === 0 ? 0xffff : sum, at + 6);
      return;
    }
    default:
      return;
  }
}

/** The pseudo-header sum for layers[index], from the nearest IP header before it. */
function pseudoHeader(
  buf: Buffer,
  layers: readonly LayerSpec[],
  starts: readonly number[],
  index: number,
  protocol: number,
  length: number,
): number {
  for (let i = index - 1; i >= 0; i--) {
    const type = layers[i]!.type;
    if (type === 'ipv4' || type === 'ipv6') return pseudoHeaderSum(buf, starts[i]!, type === 'ipv4' ? 4 : 6, protocol, length);
  }
  throw new PacketBuildError(layers[index]!.type, 'needs an IPv4 or IPv6 layer before it for its pseudo-header');
}
