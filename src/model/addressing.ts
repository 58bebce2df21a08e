import { createHash } from 'node:crypto';
import { formatIpv6, parseIpv6, parseMac } from '../openflow/addr';

/** 0..255 without leading zeros (some tools read `010` as octal) */
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** a dotted-quad IPv4 address, every octet in range */
export const IPV4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function parseIpv4(text: string): number | undefined {
  const m = IPV4_RE.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

export interface Ipv4Cidr {
  network: number;
  prefix: number;
}

export function parseCidr(text: string): Ipv4Cidr | undefined {
  const [addr, len] = text.split('/');
  const ip = parseIpv4(addr ?? '');
  const prefix = Number(len);
  if (ip === undefined || len === undefined || !/^(3[0-2]|[12]?\d)$/.test(len)) return undefined;
  const mask = prefixMask(prefix);
  if ((ip & mask) >>> 0 !== ip) return undefined; // host bits set: ambiguous, reject
  return { network: ip, prefix };
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrContains(c: Ipv4Cidr, ip: number): boolean {
  return ((ip & prefixMask(c.prefix)) >>> 0) === c.network;
}

export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = prefixMask(p);
  return ((a.network & m) >>> 0) === ((b.network & m) >>> 0);
}

export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * A subnet's router MAC, derived from its VPC and subnet names: locally administered, unicast,
 * identical on every hypervisor and after every restart.
 */
export function routerMac(vpc: string, subnet: string): string {
  const h = createHash('sha256').update(`zonemesh-router:${vpc}/${subnet}`).digest();
  const bytes = [0x0a, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A floating IP's MAC, derived from the address alone: every gateway announces the same one. */
export function floatingIpMac(ip: string): string {
  const h = createHash('sha256').update(`zonemesh-floating-ip:${ip}`).digest();
  const bytes = [0x0e, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A datapath id derived from the hypervisor name, for models that do not pin one. */
export function derivedDatapathId(hypervisor: string): bigint {
  const h = createHash('sha256').update(`zonemesh-dpid:${hypervisor}`).digest();
  return h.readBigUInt64BE(0) & 0x0000ffffffffffffn;
}

/** An IPv6 address as a 128-bit number; undefined when the text is not one (no zone ids, no IPv4 tails) */
export function parseIpv6Address(text: string): bigint | undefined {
  if (!/^[0-9a-f:]+$/i.test(text)) return undefined;
  try {
    return BigInt(`0x${parseIpv6(text).toString('hex')}`);
  } catch {
    return undefined;
  }
}

/** RFC 5952 text, as every switch and tool prints it */
export function formatIpv6Address(value: bigint): string {
  return formatIpv6(Buffer.from(value.toString(16).padStart(32, '0'), 'hex'));
}

export interface Ipv6Cidr {
  network: bigint;
  prefix: number;
}

const IPV6_ALL_ONES = (1n << 128n) - 1n;

function ipv6PrefixMask(prefix: number): bigint {
  return (IPV6_ALL_ONES << BigInt(128 - prefix)) & IPV6_ALL_ONES;
}

/** 'ADDR/N' with no host bits set, like parseCidr for IPv4 */
export function parseIpv6Cidr(text: string): Ipv6Cidr | undefined {
  const [addr, len] = text.split('/');
  const ip = parseIpv6Address(addr ?? '');
  if (ip === undefined || len === undefined || !/^(12[0-8]|1[01]\d|[1-9]?\d)$/.test(len)) return undefined;
  const prefix = Number(len);
  if ((ip & ipv6PrefixMask(prefix)) !== ip) return undefined;
  return { network: ip, prefix };
}

export function ipv6CidrContains(c: Ipv6Cidr, ip: bigint): boolean {
  return (ip & ipv6PrefixMask(c.prefix)) === c.network;
}

export function ipv6CidrsOverlap(a: Ipv6Cidr, b: Ipv6Cidr): boolean {
  const m = ipv6PrefixMask(Math.min(a.prefix, b.prefix));
  return (a.network & m) === (b.network & m);
}

/** The modified EUI-64 interface id of a MAC (RFC 4291 §2.5.1): ff:fe in the middle, universal/local bit flipped. */
export function eui64InterfaceId(mac: string): bigint {
  const b = parseMac(mac);
  const id = Buffer.from([b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!]);
  return id.readBigUInt64BE(0);
}

/** The SLAAC address a MAC takes in a /64 (what Linux configures with addr_gen_mode eui64) */
export function slaacAddress(prefix: Ipv6Cidr, mac: string): string {
  return formatIpv6Address(prefix.network | eui64InterfaceId(mac));
}

const LINK_LOCAL: Ipv6Cidr = { network: 0xfe80n << 112n, prefix: 64 };

/** fe80::/64 with the MAC's EUI-64: a VM's link-local address, and the router's from its router MAC */
export function linkLocalAddress(mac: string): string {
  return slaacAddress(LINK_LOCAL, mac);
}
