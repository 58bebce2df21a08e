import type { Subnet, VmPort } from './types';

/**
 * Address families: a subnet has IPv4 (`cidr` and `gateway`), IPv6 (`ipv6`) or both, and its ports
 * an `ip` exactly when it has IPv4 (validate.ts). IPv4-only features narrow with these guards.
 */

export type WithIpv4Subnet<S extends Pick<Subnet, 'cidr' | 'gateway'>> = S & { readonly cidr: string; readonly gateway: string };
export type WithIpv4Port<P extends Pick<VmPort, 'ip'>> = P & { readonly ip: string };

export function hasIpv4<S extends Pick<Subnet, 'cidr' | 'gateway'>>(subnet: S): subnet is WithIpv4Subnet<S> {
  return subnet.cidr !== undefined && subnet.gateway !== undefined;
}

export function portHasIpv4<P extends Pick<VmPort, 'ip'>>(port: P): port is WithIpv4Port<P> {
  return port.ip !== undefined;
}
