import { type Subnet, linkLocalAddress, parseIpv6Cidr, formatIpv6Address } from '../../model';
import { routerAdvertisement } from '../../packet';
import { OVERLAY_MTU } from '../../sdk/model';

/**
 * The router's advertisements (RFC 4861 §6): sent by the controller as packet-outs, on each
 * dual-stack port of a switch when the port appears and every RA_INTERVAL_MS, and in answer to a
 * port's RS (sent up by l3.gateway). Prefix and flags from the model (SLAAC, else M and O for
 * DHCPv6; O with SLAAC when the subnet has IPv6 DNS servers, for stateless DHCPv6), MTU 1400 (the overlay's), source the router's link-local address.
 */

/** RFC 4861 §6.2.1 MaxRtrAdvInterval is 4..1800 s (default 600); a new VM gets one at once anyway */
export const RA_INTERVAL_MS = 200_000;
/** RFC 4861 AdvDefaultLifetime: 3 × MaxRtrAdvInterval (default 1800 s) */
const ROUTER_LIFETIME_S = 1800;
/** RFC 4861 §6.2.1 defaults for the prefix: 30 days valid, 7 days preferred */
const VALID_LIFETIME_S = 2_592_000;
const PREFERRED_LIFETIME_S = 604_800;
const HOP_LIMIT = 64;
/** RFC 4861 §6.2.6: solicited RAs to one solicitor at most every MIN_DELAY_BETWEEN_RAS (3 s) */
export const MIN_DELAY_BETWEEN_RAS_MS = 3_000;

export interface Solicitor {
  mac: string;
  /** its link-local address, or :: before it has one (then the answer goes to all nodes) */
  ip: string;
}

/** the RA of a dual-stack subnet, to all nodes or to one solicitor; undefined for an IPv4-only subnet */
export function subnetRouterAdvertisement(subnet: Subnet, to?: Solicitor): Buffer | undefined {
  const prefix = subnet.ipv6 && parseIpv6Cidr(subnet.ipv6.prefix);
  if (!prefix) return undefined;
  const unicast = to && to.ip !== '::' ? { dstMac: to.mac, dstIp: to.ip } : {};
  return routerAdvertisement({
    routerMac: subnet.routerMac,
    routerIp: linkLocalAddress(subnet.routerMac),
    ...unicast,
    prefix: formatIpv6Address(prefix.network),
    prefixLength: prefix.prefix,
    slaac: subnet.ipv6!.slaac,
    otherConfig: subnet.ipv6!.dns !== undefined,
    mtu: OVERLAY_MTU,
    routerLifetime: ROUTER_LIFETIME_S,
    validLifetime: VALID_LIFETIME_S,
    preferredLifetime: PREFERRED_LIFETIME_S,
    curHopLimit: HOP_LIMIT,
  });
}

/** The most (switch, port) pairs whose last answer is remembered; the oldest is forgotten first. */
const MAX_REMEMBERED = 65_536;

/** At most one solicited RA per (switch, port) per MIN_DELAY_BETWEEN_RAS_MS: what bounds the packet-ins a VM can make us answer. */
export class SolicitationLimiter {
  private readonly last = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  take(dpid: bigint, port: number): boolean {
    const key = `${dpid}/${port}`;
    const now = this.now();
    const before = this.last.get(key);
    if (before !== undefined && now - before < MIN_DELAY_BETWEEN_RAS_MS) return false;
    this.last.delete(key); // re-inserted last: the map's order is least recently answered first
    this.last.set(key, now);
    if (this.last.size > MAX_REMEMBERED) this.last.delete(this.last.keys().next().value!);
    return true;
  }
}
