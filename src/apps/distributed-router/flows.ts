import type { Action } from '../../openflow';
import { OFPP } from '../../openflow';
import type { Hypervisor } from '../../model';
import type { FlowCounter } from '../../sdk/counters';
import type { Flow, FlowBuilder } from '../../sdk/flow';
import { type OwnerDef, type OwnerGroup, compileOwners } from '../../sdk/incremental';
import type { Pipeline, TableSpec } from '../../sdk/pipeline';
import { ETH, IP_PROTO, type OverlayView, type PortView, REG, type SubnetView, type VpcView, moveField, nextTable, onHosts, output, ownerFlows, vpcGroups } from '../overlay';

/**
 * Routing between the subnets of a VPC, done on the source hypervisor: a packet sent to its
 * subnet's router MAC gets the destination subnet's router MAC as source, the destination VM's MAC
 * as destination and one hop less to live, then goes on to L2 as if sent there directly. Gateways
 * answer ping from flows. Expired TTLs and unknown destinations hit dedicated drop flows, whose
 * packet counters are the router's error counters.
 */
export const DISTRIBUTED_ROUTER_APP_ID = 18;

export const DISTRIBUTED_ROUTER_TABLES: readonly TableSpec[] = [
  {
    name: 'l3.gateway',
    stage: 'l3',
    miss: 'drop',
    matches: ['metadata', REG.srcSubnet, 'eth_dst', 'eth_type', 'ip_proto', 'ipv4_dst', 'icmpv4_type', 'icmpv4_code'],
  },
  { name: 'l3.route', stage: 'l3', miss: 'drop', matches: ['metadata', 'eth_type', 'ipv4_dst', 'nw_ttl'] },
];

const TTL_EXPIRED_OWNER = 'drop:ttl-expired';
const NO_ROUTE_OWNER = 'drop:no-route';

/** the dedicated drop flows' packet counters */
export const DISTRIBUTED_ROUTER_COUNTERS: readonly FlowCounter[] = [
  { owner: TTL_EXPIRED_OWNER, count: () => ({ kind: 'drop', reason: 'ttl_expired' }) },
  { owner: NO_ROUTE_OWNER, count: () => ({ kind: 'drop', reason: 'no_route' }) },
];

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
const PRIORITY = { ping: 200, routed: 100, notRouted: 1, ttlExpired: 300, route: 100, noRoute: 1 } as const;

export function distributedRouterGroups(pipeline: Pipeline, view: OverlayView): OwnerGroup[] {
  return [
    { key: 'global', token: view.hypervisors, owners: () => globalOwners(pipeline, view.hypervisors) },
    ...vpcGroups(pipeline, view, vpcOwners),
  ];
}

export function compileDistributedRouter(pipeline: Pipeline, view: OverlayView) {
  return compileOwners(distributedRouterGroups(pipeline, view));
}

/** the echo reply, built in place from the request (OVS adjusts the ICMP checksum for the type change) */
export function echoReply(routerMac: string, gateway: string): Action[] {
  return [
    moveField('eth_src', 'eth_dst', 48),
    { type: 'set_field', field: { field: 'eth_src', value: routerMac } },
    moveField('ipv4_src', 'ipv4_dst', 32),
    { type: 'set_field', field: { field: 'ipv4_src', value: gateway } },
    { type: 'set_field', field: { field: 'icmpv4_type', value: ICMP_ECHO_REPLY } },
    output(OFPP.IN_PORT),
  ];
}

/** the standard OF1.1+ action: OVS rejects Nicira's dec_ttl (NXAST subtype 18) under OpenFlow 1.3 */
const DEC_TTL: Action = { type: 'dec_nw_ttl' };

function globalOwners(pipeline: Pipeline, hypervisors: readonly Hypervisor[]): OwnerDef[] {
  const def = (key: string, flows: (f: (table: string) => FlowBuilder) => Flow[]): OwnerDef => ({
    key,
    signature: [hypervisors],
    compile: () => onHosts(hypervisors, flows(ownerFlows(pipeline, DISTRIBUTED_ROUTER_APP_ID, key))),
  });
  return [
    // not addressed to the router: on to L2 unchanged
    def('not-routed', (f) => [f('l3.gateway').priority(PRIORITY.notRouted).goto(nextTable(pipeline, 'l3.route')).build()]),
    def(TTL_EXPIRED_OWNER, (f) =>
      [0, 1].map((ttl) => f('l3.route').priority(PRIORITY.ttlExpired).match({ eth_type: ETH.ip, nw_ttl: ttl }).build()),
    ),
    def(NO_ROUTE_OWNER, (f) => [f('l3.route').priority(PRIORITY.noRoute).match({ eth_type: ETH.ip }).build()]),
  ];
}

function* vpcOwners(pipeline: Pipeline, vpc: VpcView): Iterable<OwnerDef> {
  for (const subnet of vpc.subnets) {
    const key = `subnet:${vpc.vpc.name}/${subnet.subnet.name}`;
    yield { key, signature: [subnet.subnet, subnet.vni, subnet.key, subnet.hosts], compile: () => gatewayFlows(pipeline, key, subnet) };
  }
  for (const port of vpc.ports) {
    yield { key: `port:${port.port.name}`, signature: [port, vpc.hosts], compile: () => routeFlows(pipeline, port, vpc.hosts) };
  }
}

/** On the hypervisors hosting the subnet (its senders live there): ping the gateway, or route via it. */
function gatewayFlows(pipeline: Pipeline, owner: string, s: SubnetView) {
  const f = ownerFlows(pipeline, DISTRIBUTED_ROUTER_APP_ID, owner);
  const { gateway, routerMac } = s.subnet;
  const toRouter = { metadata: BigInt(s.vni), [REG.srcSubnet]: s.key, eth_dst: routerMac, eth_type: ETH.ip };
  return onHosts(s.hosts, [
    f('l3.gateway')
      .priority(PRIORITY.ping)
      .match({ ...toRouter, ip_proto: IP_PROTO.icmp, ipv4_dst: gateway, icmpv4_type: ICMP_ECHO_REQUEST, icmpv4_code: 0 })
      .apply(...echoReply(routerMac, gateway))
      .build(),
    f('l3.gateway').priority(PRIORITY.routed).match(toRouter).goto('l3.route').build(),
  ]);
}

/** a host route to the port, on every hypervisor of its VPC */
function routeFlows(pipeline: Pipeline, p: PortView, hosts: readonly Hypervisor[]) {
  const f = ownerFlows(pipeline, DISTRIBUTED_ROUTER_APP_ID, `port:${p.port.name}`);
  const route = f('l3.route')
    .priority(PRIORITY.route)
    .match({ metadata: BigInt(p.vni), eth_type: ETH.ip, ipv4_dst: p.port.ip })
    .apply(
      { type: 'set_field', field: { field: 'eth_src', value: p.routerMac } },
      { type: 'set_field', field: { field: 'eth_dst', value: p.port.mac } },
      DEC_TTL,
    )
    .goto(nextTable(pipeline, 'l3.route'))
    .build();
  return onHosts(hosts, [route]);
}
