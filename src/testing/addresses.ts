import type { VmPort } from '../model/types';
import type { Ipv4SubnetInfo, SubnetInfo } from '../sdk/model';

/** What a test of an IPv4 (or dual-stack) model reads of a port: its IPv4 address, or a clear failure naming it. */
export function ipv4Of(port: Pick<VmPort, 'name' | 'ip'>): string {
  if (port.ip === undefined) throw new Error(`port ${port.name} has no IPv4 address (its subnet is IPv6-only)`);
  return port.ip;
}

/** A subnet's IPv4 numbers, or a clear failure naming an IPv6-only subnet. */
export function ipv4InfoOf(info: SubnetInfo): Ipv4SubnetInfo {
  if (!info.ipv4) throw new Error(`subnet ${info.subnet.vpc}/${info.subnet.name} is IPv6-only: it has no IPv4 numbers`);
  return info.ipv4;
}
