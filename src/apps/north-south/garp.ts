import type { ExternalNetwork, FloatingIp, Hypervisor, NetworkModel } from '../../sdk';

/** A gratuitous ARP one gateway sends for a floating IP on one of its external segments. */
export interface FloatingIpAnnouncement {
  readonly gateway: Hypervisor;
  readonly network: ExternalNetwork;
  /** the gateway's port on the segment (`ExternalGateway.interface`) */
  readonly segmentPort: string;
  readonly fip: FloatingIp;
}

/** the zone serving a floating IP: its port's hypervisor's, whatever network it is drawn from */
function servingZone(model: NetworkModel, fip: FloatingIp): string | undefined {
  const port = fip.port === undefined ? undefined : model.ports.find((p) => p.name === fip.port);
  return port && model.hypervisors.find((h) => h.name === port.hypervisor)?.zone;
}

/**
 * Floating IPs rebound to another port or served from another zone between two models, each with
 * every gateway now serving it on each of its segments in that zone: hosts on a segment that talk
 * to the address directly (not through the edge router's /32) learn where it is at once. The MAC is
 * the floating IP's own (derived from the address), so no neighbour's cache is ever wrong, only refreshed.
 */
export function floatingIpAnnouncements(before: NetworkModel, after: NetworkModel): FloatingIpAnnouncement[] {
  const out: FloatingIpAnnouncement[] = [];
  for (const fip of after.floatingIps) {
    const zone = servingZone(after, fip);
    if (zone === undefined) continue;
    const was = before.floatingIps.find((f) => f.ip === fip.ip);
    if (was && was.port === fip.port && servingZone(before, was) === zone) continue;
    for (const network of after.externalNetworks.filter((e) => e.zone === zone)) {
      for (const g of network.gateways) {
        const gateway = after.hypervisors.find((h) => h.name === g.hypervisor);
        if (gateway) out.push({ gateway, network, segmentPort: g.interface, fip });
      }
    }
  }
  return out;
}
