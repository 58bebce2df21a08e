import { formatIpv6Address, ipv6CidrContains, ipv6CidrsOverlap, linkLocalAddress, parseCidr, parseIpv6Address, parseIpv6Cidr, slaacAddress } from './addressing';
import { unknownKeyProblem } from './suggest';
import type { AclProtocol, Subnet, SubnetIpv6, VmPort } from './types';

/**
 * The IPv6 side of the model: derived addresses and the validation of the `ipv6` fields. Each check
 * is a function of its own values and reports through `report`, so validate.ts calls it in one line.
 */

type Report = (path: string, problem: string) => void;

/** a port's IPv6 address: its own, else EUI-64 from its MAC on a SLAAC subnet, else none */
export function portIpv6(port: Pick<VmPort, 'ipv6' | 'mac'>, subnet: Pick<Subnet, 'ipv6'>): string | undefined {
  if (port.ipv6 !== undefined) return port.ipv6;
  const prefix = subnet.ipv6?.slaac ? parseIpv6Cidr(subnet.ipv6.prefix) : undefined;
  return prefix && slaacAddress(prefix, port.mac);
}

/** the router's address on a subnet: link-local from its router MAC, the same on every hypervisor */
export function routerLinkLocal(subnet: Pick<Subnet, 'routerMac'>): string {
  return linkLocalAddress(subnet.routerMac);
}

const SUBNET_IPV6_KEYS = ['prefix', 'slaac', 'dns'] as const;
/** what fits a DHCPv6 Reply many times over; resolvers use 3 (glibc MAXNS) */
export const MAX_IPV6_DNS_SERVERS = 8;
/** SLAAC builds a 64-bit interface id, so its prefix is a /64 (RFC 4862 §5.5.3) */
const SLAAC_PREFIX_LENGTH = 64;

/** `ipv6.dns`: 1..MAX_IPV6_DNS_SERVERS global IPv6 addresses, in RFC 5952 text; undefined when absent or unusable */
function subnetIpv6Dns(value: unknown, path: string, report: Report): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_IPV6_DNS_SERVERS) {
    report(path, `must be a list of 1 to ${MAX_IPV6_DNS_SERVERS} IPv6 addresses`);
    return undefined;
  }
  const addresses = value.map((ip, i) => {
    const parsed = typeof ip === 'string' ? parseIpv6Address(ip) : undefined;
    if (parsed === undefined) report(`${path}[${i}]`, `'${String(ip)}' is not an IPv6 address`);
    // link-local is ambiguous off-link and multicast/unspecified is no server (RFC 3646 §3: unicast)
    else if (parsed === 0n || parsed >> 120n === 0xffn || parsed >> 118n === 0x3fan) report(`${path}[${i}]`, `${String(ip)} is not a unicast address a VM can reach`);
    return parsed;
  });
  return addresses.every((a) => a !== undefined) ? addresses.map(formatIpv6Address) : undefined;
}

/** A subnet's `ipv6: { prefix, slaac, dns }`; undefined (with a problem reported) when absent or unusable. */
export function subnetIpv6(value: unknown, path: string, report: Report): SubnetIpv6 | undefined {
  if (value === undefined) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    report(path, 'must be an object { prefix: ADDR/64, slaac: true|false }');
    return undefined;
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!(SUBNET_IPV6_KEYS as readonly string[]).includes(key)) report(`${path}.${key}`, unknownKeyProblem(key, SUBNET_IPV6_KEYS));
  const { prefix, slaac = true } = o;
  const dns = subnetIpv6Dns(o.dns, `${path}.dns`, report);
  if (typeof slaac !== 'boolean') report(`${path}.slaac`, 'must be true or false');
  if (typeof prefix !== 'string') {
    report(`${path}.prefix`, prefix === undefined ? 'is required' : 'must be a string such as 2001:db8:1::/64');
    return undefined;
  }
  const cidr = parseIpv6Cidr(prefix);
  if (!cidr) {
    report(`${path}.prefix`, `'${prefix}' is not an IPv6 prefix with no host bits`);
    return undefined;
  }
  if (slaac === true && cidr.prefix !== SLAAC_PREFIX_LENGTH) report(`${path}.prefix`, `${prefix} is a /${cidr.prefix}: SLAAC needs a /64`);
  return { prefix, slaac: slaac === true, ...(dns && { dns }) };
}

/** IPv6 prefixes of one VPC's subnets must not overlap, as their IPv4 CIDRs must not */
export function overlappingIpv6Prefixes(subnets: readonly { subnet: Pick<Subnet, 'ipv6'>; path: string }[], report: Report): void {
  subnets.forEach((s, i) => {
    const mine = s.subnet.ipv6 && parseIpv6Cidr(s.subnet.ipv6.prefix);
    if (!mine) return;
    const other = subnets.slice(0, i).find((o) => {
      const theirs = o.subnet.ipv6 && parseIpv6Cidr(o.subnet.ipv6.prefix);
      return theirs && ipv6CidrsOverlap(mine, theirs);
    });
    if (other) report(`${s.path}.ipv6.prefix`, `${s.subnet.ipv6!.prefix} overlaps ${other.subnet.ipv6!.prefix} (${other.path}) in the same VPC`);
  });
}

/** A port's own `ipv6`: an address in its subnet's prefix. */
export function portIpv6Address(value: unknown, path: string, subnet: Pick<Subnet, 'name' | 'ipv6'> | undefined, report: Report): string | undefined {
  if (value === undefined) return undefined;
  const ip = typeof value === 'string' ? parseIpv6Address(value) : undefined;
  if (ip === undefined) {
    report(path, `'${String(value)}' is not an IPv6 address`);
    return undefined;
  }
  const text = value as string;
  if (subnet && !subnet.ipv6) report(path, `subnet ${subnet.name} has no ipv6 prefix`);
  const prefix = subnet?.ipv6 && parseIpv6Cidr(subnet.ipv6.prefix);
  if (prefix && !ipv6CidrContains(prefix, ip)) report(path, `${text} is outside subnet ${subnet!.name} (${subnet!.ipv6!.prefix})`);
  return text;
}

/** Two ports of a VPC with one IPv6 address, given or derived (an address given equal to another port's EUI-64). */
export function duplicateIpv6Addresses(ports: readonly { port: VmPort; subnet: Subnet | undefined }[], report: Report): void {
  const seen = new Map<string, number>();
  ports.forEach(({ port, subnet }, i) => {
    const ip = subnet && portIpv6(port, subnet);
    const value = ip === undefined ? undefined : parseIpv6Address(ip);
    if (value === undefined) return;
    const key = `${port.vpc}/${value}`;
    const first = seen.get(key);
    const how = port.ipv6 === undefined ? ' (EUI-64 of its MAC)' : '';
    if (first === undefined) seen.set(key, i);
    else report(`ports[${i}].${port.ipv6 === undefined ? 'mac' : 'ipv6'}`, `duplicate IPv6 address ${ip}${how} in the VPC (first at ports[${first}])`);
  });
}

/** An ACL remote CIDR may be IPv4 or IPv6; `icmp` goes with IPv4 and `icmp6` with IPv6. */
export function aclRemoteCidr(cidr: string, protocol: AclProtocol, path: string, report: Report): void {
  const v4 = parseCidr(cidr);
  const v6 = !v4 && parseIpv6Cidr(cidr);
  if (!v4 && !v6) report(path, `'${cidr}' is not an IPv4 or IPv6 CIDR with no host bits`);
  else if (v4 && protocol === 'icmp6') report(path, `${cidr} is IPv4: icmp6 needs an IPv6 CIDR`);
  else if (v6 && protocol === 'icmp') report(path, `${cidr} is IPv6: use protocol icmp6`);
}
