/**
 * North-south on OpenFlow (docs/north-south.md), as stateless flows on two kinds of switch.
 *
 * On the VM's own hypervisor, a floating IP is a 1:1 rewrite: a floating IP maps to one VM
 * address, so translating needs no connection state, and with none nothing is lost when a gateway
 * dies or the controller restarts. Outbound: a routed packet (to its subnet's router MAC) from the
 * VM to one of its VPC's routes to the outside, and not to one of the VPC's own subnets, is committed
 * to conntrack in the VPC's zone (so the ACLs find replies and inbound connections established),
 * then leaves with the floating IP and MAC as source, toward a live gateway of the VM's zone
 * (`toOutside`). Inbound: a packet tunnelled from a gateway in the VPC's VNI to the floating IP gets
 * the VM's address, its router's MAC as source and the VM's MAC, and is handed to the `l2` stage as
 * a packet of the VPC from outside it (`intoVpc`): the VPC's ACLs decide whether it reaches the VM.
 *
 * On a gateway hypervisor, the external segment is a port of its bridge (`ExternalGateway.interface`)
 * and the gateway's own address (its BGP source) is on the bridge's LOCAL port. From the segment,
 * `nw_dst=floating IP` goes by tunnel in the VPC's VNI to the VM's hypervisor; from the tunnel,
 * `nw_src=floating IP` goes to the segment's next hop; ARP for a floating IP is answered with its
 * derived MAC; the gateway's own ARP and IP pass between the segment and LOCAL. Nothing on a
 * gateway depends on a connection, so any live gateway of the zone serves any packet.
 */
import {
  type Action,
  type ExternalGateway,
  type ExternalNetwork,
  type Flow,
  FlowBuilder,
  type FloatingIp,
  type Hypervisor,
  type NetworkModel,
  OFPP,
  type OwnerDef,
  type Pipeline,
  type PlacedPort,
  type TableSpec,
  type VmPort,
  NX_CT_F_COMMIT,
  PipelineError,
  TUNNEL_OFPORT,
  arpAnswer,
  bySwitch,
  cidr,
  conntrackZone,
  hasIpv4,
  makeCookie,
  output,
  portHasIpv4,
} from '../../sdk';
import { isGateway, outboundGateways, toGateways } from './gateways';

export const NORTH_SOUTH_APP_ID = 30;
export const GATEWAY_TABLE = 'gw.external';
export const NAT_INBOUND_TABLE = 'nat.inbound';
export const NAT_OUTBOUND_TABLE = 'nat.outbound';

const PORT_MATCHES = ['ip_proto', 'tcp_dst', 'udp_dst'] as const;
export const NORTH_SOUTH_TABLES: readonly TableSpec[] = [
  // what a gateway takes from its segment, its LOCAL port and the tunnel, before the overlay classifies it
  {
    name: GATEWAY_TABLE,
    stage: 'probe',
    miss: 'next',
    matches: ['in_port', 'tunnel_id', 'eth_type', 'ipv4_src', 'ipv4_dst', 'arp_op', 'arp_spa', 'arp_tpa', 'icmpv4_type', ...PORT_MATCHES],
    maskable: ['tcp_dst', 'udp_dst'],
  },
  // from the tunnel, before the overlay classifies it: its delivery knows VM ports, not floating IPs;
  // SNAT replies come back here from conntrack (ct_state +trk), addressed to the VM again
  {
    name: NAT_INBOUND_TABLE,
    stage: 'probe',
    miss: 'next',
    matches: ['in_port', 'tunnel_id', 'eth_type', 'ipv4_dst', 'ct_state', ...PORT_MATCHES],
    maskable: ['ct_state', 'tcp_dst', 'udp_dst'],
  },
  // a VM's routed packets to the outside; SNAT's come back here from conntrack (+trk) with their new source
  { name: NAT_OUTBOUND_TABLE, stage: 'nat', miss: 'next', matches: ['in_port', 'eth_type', 'eth_dst', 'ipv4_src', 'ipv4_dst', 'ip_proto', 'ct_state'], maskable: ['ipv4_dst', 'ct_state'] },
];

const ETH_IP = 0x0800;
const ETH_ARP = 0x0806;
const ARP_REQUEST = 1;
/** the VPC's own subnets outrank its routes to the outside, whatever their prefix lengths */
const PRIORITY = { inbound: 100, inside: 200, outside: 100, gatewayHost: 200, gatewayAddress: 100 } as const;
/** ct_state: a packet not yet through conntrack, and one back from it */
const TRK = 0x20;
export const UNTRACKED = { value: 0, mask: TRK };
export const TRACKED = { value: TRK, mask: TRK };
/** where a packet from the outside, translated to a VM's address, joins the overlay (docs/pipeline.md, Entering a stage) */
const INBOUND_STAGE = 'l2';
/** the routes of a VPC that has a floating IP but no egress of its own */
export const DEFAULT_ROUTES: readonly string[] = ['0.0.0.0/0'];

/** The switches' view the compiler needs: where a VM port is plugged in, and a gateway's segment port. */
export interface NorthSouthPlaces {
  place(port: VmPort): PlacedPort | undefined;
  ofport(dpid: bigint, interfaceName: string): number | undefined;
}

/** A gateway plugged into its external segment: its switch and the segment's port there. */
export interface GatewayAttachment {
  readonly network: ExternalNetwork;
  readonly gateway: ExternalGateway;
  readonly host: Hypervisor;
  readonly uplink: number;
}

/** One owner per bound floating IP: a rebinding moves its flows, on its hypervisor and its gateways, in one change. */
export function floatingIpOwners(pipeline: Pipeline, model: NetworkModel, places: NorthSouthPlaces, attachments: readonly GatewayAttachment[]): OwnerDef[] {
  return model.floatingIps.flatMap((fip) => {
    const port = fip.port === undefined ? undefined : model.ports.find((p) => p.name === fip.port);
    const placed = port && places.place(port);
    if (!placed) return [];
    const key = `fip:${fip.ip}`;
    const gateways = attachments.filter((a) => a.host.zone === placed.hypervisor.zone);
    return [{ key, signature: [model, placed.dpid, placed.ofport, ...gateways.map((a) => a.uplink)], compile: () => bySwitch(floatingIpFlows(pipeline, model, key, fip, placed, gateways)) }];
  });
}

/** One owner per plugged-in gateway: its own address between LOCAL and the segment. */
export function gatewayHostOwners(pipeline: Pipeline, model: NetworkModel, attachments: readonly GatewayAttachment[]): OwnerDef[] {
  return attachments.map((a) => {
    const key = `gateway:${a.network.name}/${a.host.name}`;
    return { key, signature: [model, a.uplink], compile: () => [{ dpids: [a.host.datapathId], flows: gatewayHostFlows(pipeline, key, a) }] };
  });
}

/** The model's gateways whose segment port is on their switch now. */
export function gatewayAttachments(model: NetworkModel, places: NorthSouthPlaces): GatewayAttachment[] {
  return model.externalNetworks.flatMap((network) =>
    network.gateways.flatMap((gateway) => {
      const host = model.hypervisors.find((h) => h.name === gateway.hypervisor);
      const uplink = host && places.ofport(host.datapathId, gateway.interface);
      return host && uplink !== undefined ? [{ network, gateway, host, uplink }] : [];
    }),
  );
}

/**
 * How a VM's translated packet leaves its hypervisor for the outside, the one place that decides.
 * From a gateway, straight out of its own segment port: its VMs need no tunnel, and no other gateway
 * (a tunnel to its own address would loop back, and leaving by the zone's other gateways would cut
 * them off when those die while this one, and so the VM, lives). From any other hypervisor,
 * tunnelled in the VPC's VNI to a live gateway of its zone, which the switch picks (`toGateways`).
 * Undefined while there is no way out (no gateway, or the gateway's segment port not plugged in or
 * without a next-hop MAC).
 */
export function toOutside(model: NetworkModel, placed: PlacedPort, vni: bigint, prefer: string, gateways: readonly GatewayAttachment[]): Action[] | undefined {
  const host = placed.hypervisor;
  if (isGateway(model, host)) {
    const own = attachmentOn(gateways, host.name, prefer);
    return own && toSegment(own);
  }
  return outboundGateways(model, host).length === 0 ? undefined : toGateways(NORTH_SOUTH_APP_ID, vni);
}

/** out of a gateway's segment port to the next hop, or undefined without a next-hop MAC */
export function toSegment(a: GatewayAttachment): Action[] | undefined {
  if (a.network.nextHopMac === undefined) return undefined;
  return [{ type: 'set_field', field: { field: 'eth_dst', value: a.network.nextHopMac } }, output(a.uplink)];
}

/** a gateway's attachment to serve an address: the address's own network if the gateway is on it, else its zone's first */
export function attachmentOn(gateways: readonly GatewayAttachment[], host: string, network: string): GatewayAttachment | undefined {
  const mine = gateways.filter((a) => a.host.name === host);
  return mine.find((a) => a.network.name === network) ?? mine[0];
}

function floatingIpFlows(pipeline: Pipeline, model: NetworkModel, owner: string, fip: FloatingIp, placed: PlacedPort, gateways: readonly GatewayAttachment[]): Map<bigint, Flow[]> {
  const cookie = makeCookie(NORTH_SOUTH_APP_ID, owner);
  const f = (table: string) => new FlowBuilder(pipeline, pipeline.table(table), cookie);
  const { port, ofport } = placed;
  if (!portHasIpv4(port)) return new Map(); // validation refuses a floating IP on an IPv6-only subnet
  const vni = BigInt(model.vpcs.find((v) => v.name === port.vpc)!.vni);
  const subnet = model.subnets.find((s) => s.vpc === port.vpc && s.name === port.subnet)!;
  const routes = model.egress.find((e) => e.vpc === port.vpc)?.routes ?? DEFAULT_ROUTES;
  const routed = { in_port: ofport, eth_type: ETH_IP, eth_dst: subnet.routerMac };
  const toVm = (b: FlowBuilder, ...before: Action[]) => intoVpc(pipeline, b.apply(...before, { type: 'set_field', field: { field: 'ipv4_dst', value: port.ip } }), vni, port, subnet.routerMac);

  const byDpid = new Map<bigint, Flow[]>();
  const add = (dpid: bigint, flows: Flow[]) => byDpid.set(dpid, [...(byDpid.get(dpid) ?? []), ...flows]);
  add(placed.dpid, [toVm(f(NAT_INBOUND_TABLE).priority(PRIORITY.inbound).match({ in_port: TUNNEL_OFPORT, tunnel_id: vni, eth_type: ETH_IP, ipv4_dst: fip.ip }))]);
  // validation guarantees the VM's zone has gateways; a model changing under us may not yet
  const out = toOutside(model, placed, vni, fip.network, gateways);
  if (out) {
    const inside = staysInside(pipeline, model, cookie, placed);
    // committed untranslated, in the zone the ACLs track the VPC in: a reply to an inbound connection
    // the ACLs allowed, and a connection the VM opens whose replies the ACLs then find established
    const commit: Action = { type: 'ct', flags: NX_CT_F_COMMIT, zone: conntrackZone(Number(vni)), recircTable: pipeline.table(NAT_OUTBOUND_TABLE).id, alg: 0, actions: [] };
    const outside = routes.flatMap((route) => [
      f(NAT_OUTBOUND_TABLE).priority(PRIORITY.outside).match({ ...routed, ct_state: UNTRACKED, ...toDestinations(route) }).apply(commit).build(),
      f(NAT_OUTBOUND_TABLE)
        .priority(PRIORITY.outside)
        .match({ ...routed, ct_state: TRACKED, ...toDestinations(route) })
        .apply({ type: 'set_field', field: { field: 'ipv4_src', value: fip.ip } }, { type: 'set_field', field: { field: 'eth_src', value: fip.mac } }, { type: 'dec_nw_ttl' }, ...out)
        .build(),
    ]);
    add(placed.dpid, [...inside, ...outside]);
  }

  // every gateway of the VM's zone serves the address: the edge router spreads it over them
  const toHost: Action[] = [{ type: 'set_field', field: { field: 'tunnel_id', value: vni } }, { type: 'set_field', field: { field: 'tun_ipv4_dst', value: placed.hypervisor.tunnelIp } }, output(TUNNEL_OFPORT)];
  for (const host of new Set(gateways.map((a) => a.host.name))) {
    const a = attachmentOn(gateways, host, fip.network)!;
    const flows = [
      f(GATEWAY_TABLE).priority(PRIORITY.gatewayAddress).match({ in_port: a.uplink, eth_type: ETH_ARP, arp_op: ARP_REQUEST, arp_tpa: fip.ip }).apply(...arpAnswer(fip.mac, fip.ip)).build(),
      a.host.name === placed.hypervisor.name
        ? toVm(f(GATEWAY_TABLE).priority(PRIORITY.gatewayAddress).match({ in_port: a.uplink, eth_type: ETH_IP, ipv4_dst: fip.ip }), { type: 'dec_nw_ttl' })
        : f(GATEWAY_TABLE).priority(PRIORITY.gatewayAddress).match({ in_port: a.uplink, eth_type: ETH_IP, ipv4_dst: fip.ip }).apply({ type: 'dec_nw_ttl' }, ...toHost).build(),
    ];
    const segment = toSegment(a);
    if (segment && a.host.name !== placed.hypervisor.name) {
      flows.push(f(GATEWAY_TABLE).priority(PRIORITY.gatewayAddress).match({ in_port: TUNNEL_OFPORT, tunnel_id: vni, eth_type: ETH_IP, ipv4_src: fip.ip }).apply(...segment).build());
    }
    add(a.host.datapathId, flows);
  }
  return byDpid;
}

/**
 * A packet from the outside, already addressed to VM `port`, handed to the overlay as a routed packet
 * of the VM's VPC (docs/pipeline.md, Entering a stage): the VPC in metadata, the router's MAC as source
 * and the VM's as destination, on to the first table of INBOUND_STAGE. The overlay's registers stay
 * as a packet from a port of ours never has them (zero: no source tier, no source port), so the VPC's
 * ACLs see it as from outside the VPC and judge it by its source address (`remote: { cidr }`).
 */
function intoVpc(pipeline: Pipeline, b: FlowBuilder, vni: bigint, port: VmPort, routerMac: string): Flow {
  return b
    .apply({ type: 'set_field', field: { field: 'eth_src', value: routerMac } }, { type: 'set_field', field: { field: 'eth_dst', value: port.mac } })
    .writeMetadata(vni)
    .goto(pipeline.entryOf(INBOUND_STAGE).name)
    .build();
}

/** A VM's routed packets to its own VPC's subnets go on to the router untranslated, whatever the VPC's routes to the outside. */
export function staysInside(pipeline: Pipeline, model: NetworkModel, cookie: bigint, { port, ofport }: PlacedPort): Flow[] {
  const routerMac = model.subnets.find((s) => s.vpc === port.vpc && s.name === port.subnet)!.routerMac;
  return model.subnets
    .filter((s) => s.vpc === port.vpc)
    .filter(hasIpv4)
    .map((s) =>
      new FlowBuilder(pipeline, pipeline.table(NAT_OUTBOUND_TABLE), cookie)
        .priority(PRIORITY.inside)
        .match({ in_port: ofport, eth_type: ETH_IP, eth_dst: routerMac, ipv4_dst: cidr(s.cidr) })
        .goto(nextOf(pipeline))
        .build(),
    );
}

/** A gateway's own address on its bridge's LOCAL port: its ARP and IP pass between LOCAL and the segment. */
function gatewayHostFlows(pipeline: Pipeline, owner: string, a: GatewayAttachment): Flow[] {
  const f = () => new FlowBuilder(pipeline, pipeline.table(GATEWAY_TABLE), makeCookie(NORTH_SOUTH_APP_ID, owner)).priority(PRIORITY.gatewayHost);
  const ip = a.gateway.ip;
  return [
    f().match({ in_port: a.uplink, eth_type: ETH_ARP, arp_tpa: ip }).apply(output(OFPP.LOCAL)).build(),
    f().match({ in_port: a.uplink, eth_type: ETH_IP, ipv4_dst: ip }).apply(output(OFPP.LOCAL)).build(),
    f().match({ in_port: OFPP.LOCAL, eth_type: ETH_ARP, arp_spa: ip }).apply(output(a.uplink)).build(),
    f().match({ in_port: OFPP.LOCAL, eth_type: ETH_IP, ipv4_src: ip }).apply(output(a.uplink)).build(),
  ];
}

/** a route's destinations as a match: OVS drops an all-zero mask from a flow, so /0 matches no field */
export function toDestinations(route: string): { ipv4_dst?: ReturnType<typeof cidr> } {
  return route.endsWith('/0') ? {} : { ipv4_dst: cidr(route) };
}

/** where a packet that stays inside the VPC goes on: the table after ours */
export function nextOf(pipeline: Pipeline): string {
  const next = pipeline.successor(pipeline.table(NAT_OUTBOUND_TABLE));
  if (!next) throw new PipelineError(`no table follows '${NAT_OUTBOUND_TABLE}': north-south needs the overlay's router after it`);
  return next.name;
}
