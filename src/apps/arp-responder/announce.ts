import type { PacketOut } from '../../openflow';
import { OFP_NO_BUFFER, OFPP } from '../../openflow';
import { gratuitousArp } from '../../packet';
import { type OverlayView, type PortView, output } from '../overlay';

export interface Announcement {
  dpid: bigint;
  message: PacketOut;
}

/**
 * Gratuitous ARPs for ports whose MAC or hypervisor changed between two views: one packet-out per
 * hypervisor hosting the port's subnet, to its local VM ports of that subnet (never to a tunnel).
 */
export function gratuitousArps(before: OverlayView, after: OverlayView): Announcement[] {
  const out: Announcement[] = [];
  for (const vpc of after.vpcs) {
    const old = before.vpcByName.get(vpc.vpc.name);
    if (!old || old === vpc) continue;
    for (const p of vpc.ports) {
      const was = old.portByName.get(p.port.name);
      if (was && was !== p && (was.port.mac !== p.port.mac || was.host.name !== p.host.name)) out.push(...announce(p, vpc.subnetByName.get(p.port.subnet)!.ports));
    }
  }
  return out;
}

function announce(p: PortView, neighbours: readonly PortView[]): Announcement[] {
  const byHost = new Map<bigint, number[]>();
  for (const n of neighbours) {
    if (n === p || n.ofport === undefined) continue;
    const ports = byHost.get(n.host.datapathId) ?? [];
    ports.push(n.ofport);
    byHost.set(n.host.datapathId, ports);
  }
  // a port of an IPv6-only subnet has no IPv4 address to announce (no unsolicited NA yet)
  if (p.port.ip === undefined) return [];
  const data = gratuitousArp(p.port.mac, p.port.ip);
  return [...byHost].map(([dpid, ports]) => ({
    dpid,
    message: { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort: OFPP.CONTROLLER, actions: ports.map(output), data },
  }));
}
