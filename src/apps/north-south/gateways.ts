/**
 * The choice of gateway, made by the switch (docs/north-south.md, Gateways): each hypervisor that is
 * not a gateway has one BFD-enabled Geneve port per gateway of its zone, and its outbound
 * north-south flows output to a `select` group with one bucket per gateway, each watching that
 * gateway's BFD port. OVS takes a bucket out as soon as BFD marks its port down, without the
 * controller. A gateway's own VMs leave by its own segment port (flows.ts, `toOutside`).
 *
 * The BFD ports only carry BFD: they use their own UDP port (GATEWAY_BFD_UDP_PORT), so OVS's tunnel
 * lookup hands every data packet, from gateways too, to the one flow-based tunnel port as before
 * (a port with a fixed `remote_ip` on the data port would take over all traffic from that host).
 * The buckets send through the flow-based port with `tun_dst` set; the BFD port is their liveness.
 */
import { type Action, type Group, type Hypervisor, type NetworkModel, TUNNEL_OFPORT, bucket, groupIdOf, output } from '../../sdk';

/** Geneve's own port is 6081; BFD sessions to and from gateways use the next one */
export const GATEWAY_BFD_UDP_PORT = 6082;
/** BFD every 100 ms, down after 3 missed: 300 ms (OVS's default is 1 s, OVN's ~3 s detection) */
export const GATEWAY_BFD_INTERVAL_MS = 100;
/** OpenFlow select buckets share by weight; equal weights are ECMP */
const BUCKET_WEIGHT = 100;
const PORT_PREFIX = 'zm-gw-';

/** The gateways of a zone, in model order. */
export function zoneGateways(model: NetworkModel, zone: string): Hypervisor[] {
  return model.externalNetworks
    .filter((e) => e.zone === zone)
    .flatMap((e) => e.gateways.map((g) => model.hypervisors.find((h) => h.name === g.hypervisor)))
    .filter((h): h is Hypervisor => h !== undefined);
}

/** Whether a hypervisor is a gateway of its zone. */
export function isGateway(model: NetworkModel, host: Hypervisor): boolean {
  return zoneGateways(model, host.zone).some((g) => g.name === host.name);
}

/**
 * The gateways a hypervisor's outbound north-south traffic goes to: its zone's; none for a gateway,
 * whose own VMs leave by its own segment port (flows.ts, `toOutside`).
 */
export function outboundGateways(model: NetworkModel, host: Hypervisor): Hypervisor[] {
  return isGateway(model, host) ? [] : zoneGateways(model, host.zone);
}

/**
 * The hypervisors `host` runs a BFD session with (BFD needs both ends): a gateway's are the other
 * hypervisors of its zone that send to it, every other hypervisor's its outbound gateways.
 */
export function bfdPeers(model: NetworkModel, host: Hypervisor): Hypervisor[] {
  if (!isGateway(model, host)) return outboundGateways(model, host);
  return model.hypervisors.filter((h) => h.zone === host.zone && outboundGateways(model, h).some((g) => g.name === host.name));
}

/** A BFD port's name: by its peer's tunnel address, so it is stable and at most 14 characters. */
export function gatewayPortName(peer: Hypervisor): string {
  return PORT_PREFIX + peer.tunnelIp.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
}

export function isGatewayPortName(name: string): boolean {
  return name.startsWith(PORT_PREFIX);
}

/** The select group id of a hypervisor's gateways (one per switch, so one key). */
export const GATEWAYS_GROUP_KEY = 'gateways';

/** The actions that send a packet to a live gateway of the hypervisor's zone, in VPC `vni`: the switch picks. */
export function toGateways(appId: number, vni: bigint): Action[] {
  return [
    { type: 'set_field', field: { field: 'tunnel_id', value: vni } },
    { type: 'group', groupId: groupIdOf(appId, GATEWAYS_GROUP_KEY) },
  ];
}

/**
 * The select group of `host`'s outbound gateways: one bucket per gateway whose BFD port the switch
 * has reported (`ofportOf`), which watches it and tunnels to the gateway. Undefined for a host with
 * no gateway to go to.
 */
export function gatewaysGroup(appId: number, model: NetworkModel, host: Hypervisor, ofportOf: (portName: string) => number | undefined): Group | undefined {
  const gateways = outboundGateways(model, host);
  if (gateways.length === 0) return undefined;
  const buckets = gateways.flatMap((g) => {
    const watchPort = ofportOf(gatewayPortName(g));
    if (watchPort === undefined) return [];
    const actions = [{ type: 'set_field' as const, field: { field: 'tun_ipv4_dst' as const, value: g.tunnelIp } }, output(TUNNEL_OFPORT)];
    return [{ ...bucket(actions, BUCKET_WEIGHT), watchPort }];
  });
  return { groupId: groupIdOf(appId, GATEWAYS_GROUP_KEY), groupType: 'select', buckets };
}

/** Every hypervisor's gateways group, by datapath id; `ofport` is the switches' port numbers (placement). */
export function gatewaysGroups(appId: number, model: NetworkModel, ofport: (dpid: bigint, portName: string) => number | undefined): Map<bigint, Group> {
  const out = new Map<bigint, Group>();
  for (const host of model.hypervisors) {
    const group = gatewaysGroup(appId, model, host, (name) => ofport(host.datapathId, name));
    if (group) out.set(host.datapathId, group);
  }
  return out;
}
