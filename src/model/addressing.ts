import { createHash } from 'node:crypto';

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
