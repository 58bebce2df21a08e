import { IpProto } from './constants';
import type { LayerType, ParsedPacket } from './layers';

/** One's-complement sum of the 16-bit big-endian words in buf[start, end), unfolded (RFC 1071). */
export function sum16(buf: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) acc += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) acc += buf[i]! << 8; // odd length: pad with a zero byte
  return acc;
}

/** Folds an unfolded sum to 16 bits and complements it: the value a checksum field holds. */
export function finishChecksum(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

/** The Internet checksum of buf[start, end). */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length): number {
  return finishChecksum(sum16(buf, start, end));
}

/**
 * Unfolded sum of the TCP/UDP/ICMPv6 pseudo-header, reading the addresses from an IP header
 * already on the wire at ipOffset.
 */
export function pseudoHeaderSum(buf: Uint8Array, ipOffset: number, ipVersion: 4 | 6, protocol: number, length: number): number {
  const addresses = ipVersion === 4 ? sum16(buf, ipOffset + 12, ipOffset + 20) : sum16(buf, ipOffset + 8, ipOffset + 40);
  return addresses + protocol + (length & 0xffff) + Math.floor(length / 0x10000);
}

/** Where each checksummed layer keeps its checksum, relative to the layer's start. */
export const CHECKSUM_FIELD_OFFSET = { ipv4: 10, icmp: 2, icmpv6: 2, tcp: 16, udp: 6 } as const;
export type ChecksummedLayer = keyof typeof CHECKSUM_FIELD_OFFSET;

/** The protocol number a pseudo-header carries for each layer that has one. */
export const IP_PROTOCOL_OF = { tcp: IpProto.TCP, udp: IpProto.UDP, icmpv6: IpProto.ICMPV6 } as const;

export interface ChecksumCheck {
  /** index of the layer in ParsedPacket.layers */
  index: number;
  layer: ChecksummedLayer;
  found: number;
  computed: number;
  ok: boolean;
}

export interface ChecksumReport {
  ok: boolean;
  /** one entry per checksum present; a UDP checksum of 0 means "none" and is not checked */
  checks: ChecksumCheck[];
}

function isChecksummed(type: LayerType): type is ChecksummedLayer {
  return type in CHECKSUM_FIELD_OFFSET;
}

/** Recomputes every checksum in a parsed frame, inner tunnels included, and compares it with the one received. */
export function verifyChecksums(packet: ParsedPacket): ChecksumReport {
  const { buf, layers, offsets } = packet;
  const checks: ChecksumCheck[] = [];
  // the innermost IP header so far: it bounds the segment and feeds the pseudo-header
  let ip: { version: 4 | 6; start: number; payloadEnd: number } | undefined;
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index]!;
    const start = offsets[index]!;
    if (layer.type === 'ipv4') ip = { version: 4, start, payloadEnd: start + layer.totalLength };
    if (layer.type === 'ipv6') ip = { version: 6, start, payloadEnd: start + 40 + layer.payloadLength };
    if (!isChecksummed(layer.type) || !ip) continue;
    const field = start + CHECKSUM_FIELD_OFFSET[layer.type];
    const found = (buf[field]! << 8) | buf[field + 1]!;
    if (layer.type === 'udp' && found === 0) continue;
    let end = ip.payloadEnd;
    let acc = 0;
    if (layer.type === 'ipv4') end = start + (buf[start]! & 0x0f) * 4;
    else if (layer.type !== 'icmp') acc = pseudoHeaderSum(buf, ip.start, ip.version, IP_PROTOCOL_OF[layer.type], end - start);
    acc = sum16(buf, field + 2, end, sum16(buf, start, field, acc));
    let computed = finishChecksum(acc);
    if (layer.type === 'udp' && computed === 0) computed = 0xffff; // RFC 768: a computed zero is sent as all ones
    checks.push({ index, layer: layer.type, found, computed, ok: found === computed });
  }
  return { ok: checks.every((c) => c.ok), checks };
}
