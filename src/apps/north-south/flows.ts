/**
 * Floating IPs on the VM's own hypervisor, as stateless 1:1 rewrites (docs/north-south.md): a
 * floating IP maps to one VM address, so translating needs no connection state, and with none
 * nothing is lost when a gateway dies or the controller restarts. Built on the public SDK alone.
 *
 * Outbound: a routed packet (to its subnet's router MAC) from the VM to one of its VPC's routes to
 * the outside, and not to one of the VPC's own subnets, leaves with the floating IP and MAC as
 * source, tunnelled in the VPC's VNI to a live gateway of the VM's zone (the switch's choice: see
 * gateways.ts), which puts it on the external segment. Inbound: a packet tunnelled from a gateway
 * in the VPC's VNI to the floating IP gets the VM's address, its router's MAC as source and the
 * VM's MAC, and goes out of the VM's port.
 */
import {
  type Flow,
  FlowBuilder,
  type FloatingIp,
  type NetworkModel,
  type OwnerDef,
  type OwnerGroup,
  type Pipeline,
  type PlacedPort,
  type TableSpec,
  type VmPort,
  PipelineError,
  TUNNEL_OFPORT,
  cidr,
  compileOwners,
  makeCookie,
  output,
} from '../../sdk';
import { outboundGateways, toGateways } from './gateways';

export const NORTH_SOUTH_APP_ID = 30;
export const NAT_INBOUND_TABLE = 'nat.inbound';
export const NAT_OUTBOUND_TABLE = 'nat.outbound';

export const NORTH_SOUTH_TABLES: readonly TableSpec[] = [
  // from the tunnel, before the overlay classifies it: its delivery knows VM ports, not floating IPs
  { name: NAT_INBOUND_TABLE, stage: 'probe', miss: 'next', matches: ['in_port', 'tunnel_id', 'eth_type', 'ipv4_dst'] },
  { name: NAT_OUTBOUND_TABLE, stage: 'nat', miss: 'next', matches: ['in_port', 'eth_type', 'eth_dst', 'ipv4_dst'], maskable: ['ipv4_dst'] },
];

const ETH_IP = 0x0800;
/** the VPC's own subnets outrank its routes to the outside, whatever their prefix lengths */
const PRIORITY = { inbound: 100, inside: 200, outside: 100 } as const;
/** the routes of a VPC that has a floating IP but no egress of its own */
const DEFAULT_ROUTES: readonly string[] = ['0.0.0.0/0'];

/** The switches' view the compiler needs: where a port is plugged in. */
export type PortPlaces = (port: VmPort) => PlacedPort | undefined;

/** One owner per bound floating IP: a rebinding moves its flows in one change. */
export function northSouthGroups(pipeline: Pipeline, model: NetworkModel, place: PortPlaces): OwnerGroup[] {
  const owners = (): OwnerDef[] =>
    model.floatingIps.flatMap((fip) => {
      const port = fip.port === undefined ? undefined : model.ports.find((p) => p.name === fip.port);
      const placed = port && place(port);
      if (!placed) return [];
      const key = `fip:${fip.ip}`;
      return [{ key, signature: [model, placed.dpid, placed.ofport], compile: () => new Map([[placed.dpid, floatingIpFlows(pipeline, model, key, fip, placed)]]) }];
    });
  // a fresh token: ports get plugged in under the same model, and the owners' signatures tell
  return [{ key: 'floating-ips', token: {}, owners }];
}

/** every owner's flows, for tests and `zonemesh flows` */
export function compileNorthSouth(pipeline: Pipeline, model: NetworkModel, place: PortPlaces) {
  return compileOwners(northSouthGroups(pipeline, model, place));
}

function floatingIpFlows(pipeline: Pipeline, model: NetworkModel, owner: string, fip: FloatingIp, placed: PlacedPort): Flow[] {
  const cookie = makeCookie(NORTH_SOUTH_APP_ID, owner);
  const f = (table: string) => new FlowBuilder(pipeline, pipeline.table(table), cookie);
  const { port, ofport, hypervisor } = placed;
  const vni = BigInt(model.vpcs.find((v) => v.name === port.vpc)!.vni);
  const subnet = model.subnets.find((s) => s.vpc === port.vpc && s.name === port.subnet)!;
  const routes = model.egress.find((e) => e.vpc === port.vpc)?.routes ?? DEFAULT_ROUTES;
  const routed = { in_port: ofport, eth_type: ETH_IP, eth_dst: subnet.routerMac };

  const inbound = f(NAT_INBOUND_TABLE)
    .priority(PRIORITY.inbound)
    .match({ in_port: TUNNEL_OFPORT, tunnel_id: vni, eth_type: ETH_IP, ipv4_dst: fip.ip })
    .apply(
      { type: 'set_field', field: { field: 'ipv4_dst', value: port.ip } },
      { type: 'set_field', field: { field: 'eth_src', value: subnet.routerMac } },
      { type: 'set_field', field: { field: 'eth_dst', value: port.mac } },
      output(ofport),
    )
    .build();
  // validation guarantees the VM's zone has gateways; a lone gateway's own VMs have none to go to
  if (outboundGateways(model, hypervisor).length === 0) return [inbound];
  const inside = model.subnets
    .filter((s) => s.vpc === port.vpc)
    .map((s) => f(NAT_OUTBOUND_TABLE).priority(PRIORITY.inside).match({ ...routed, ipv4_dst: cidr(s.cidr) }).goto(nextOf(pipeline)).build());
  const outside = routes.map((route) =>
    f(NAT_OUTBOUND_TABLE)
      .priority(PRIORITY.outside)
      .match({ ...routed, ...toDestinations(route) })
      .apply(
        { type: 'set_field', field: { field: 'ipv4_src', value: fip.ip } },
        { type: 'set_field', field: { field: 'eth_src', value: fip.mac } },
        { type: 'dec_nw_ttl' },
        ...toGateways(NORTH_SOUTH_APP_ID, vni),
      )
      .build(),
  );
  return [inbound, ...inside, ...outside];
}

/** a route's destinations as a match: OVS drops an all-zero mask from a flow, so /0 matches no field */
function toDestinations(route: string): { ipv4_dst?: ReturnType<typeof cidr> } {
  return route.endsWith('/0') ? {} : { ipv4_dst: cidr(route) };
}

/** where a packet that stays inside the VPC goes on: the table after ours */
function nextOf(pipeline: Pipeline): string {
  const next = pipeline.successor(pipeline.table(NAT_OUTBOUND_TABLE));
  if (!next) throw new PipelineError(`no table follows '${NAT_OUTBOUND_TABLE}': north-south needs the overlay's router after it`);
  return next.name;
}
