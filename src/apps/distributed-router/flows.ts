import type { Action } from '../../openflow';
import { toController } from '../../sdk/actions';
import { OFPP } from '../../openflow';
import { type Hypervisor, hasIpv4, routerLinkLocal } from '../../model';
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
    matches: ['metadata', REG.srcSubnet, 'eth_dst', 'eth_type', 'ip_proto', 'ipv4_dst', 'icmpv4_type', 'icmpv4_code', 'ipv6_dst', 'icmpv6_type', 'icmpv6_code'],
  },
  { name: 'l3.route', stage: 'l3', miss: 'drop', matches: ['metadata', 'eth_type', 'ipv4_dst', 'ipv6_dst', 'nw_ttl'] },
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
const ICMPV6_ECHO = { request: 128, reply: 129 } as const;
/** nw_ttl is the IPv4 TTL and the IPv6 hop limit alike; dec_nw_ttl decrements either */
const IP_VERSIONS = [ETH.ip, ETH.ipv6] as const;
const PRIORITY = { solicitation: 250, ping: 200, routed: 100, notRouted: 1, ttlExpired: 300, route: 100, noRoute: 1 } as const;
const ROUTER_SOLICITATION = 133;

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

/** the echo reply to a ping6 of the router's link-local address (OVS adjusts the ICMPv6 checksum) */
export function echo6Reply(routerMac: string, routerIp: string): Action[] {
  return [
    moveField('eth_src', 'eth_dst', 48),
    { type: 'set_field', field: { field: 'eth_src', value: routerMac } },
    moveField('ipv6_src', 'ipv6_dst', 128),
    { type: 'set_field', field: { field: 'ipv6_src', value: routerIp } },
    { type: 'set_field', field: { field: 'icmpv6_type', value: ICMPV6_ECHO.reply } },
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
      IP_VERSIONS.flatMap((eth_type) => [0, 1].map((ttl) => f('l3.route').priority(PRIORITY.ttlExpired).match({ eth_type, nw_ttl: ttl }).build())),
    ),
    def(NO_ROUTE_OWNER, (f) => IP_VERSIONS.map((eth_type) => f('l3.route').priority(PRIORITY.noRoute).match({ eth_type }).build())),
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
  const { routerMac } = s.subnet;
  const toRouter = { metadata: BigInt(s.vni), [REG.srcSubnet]: s.key, eth_dst: routerMac };
  const flows: Flow[] = [];
  if (hasIpv4(s.subnet)) {
    const toRouter4 = { eth_type: ETH.ip, ...toRouter };
    flows.push(
      f('l3.gateway')
        .priority(PRIORITY.ping)
        .match({ ip_proto: IP_PROTO.icmp, ipv4_dst: s.subnet.gateway, icmpv4_type: ICMP_ECHO_REQUEST, icmpv4_code: 0, ...toRouter4 })
        .apply(...echoReply(routerMac, s.subnet.gateway))
        .build(),
      f('l3.gateway').priority(PRIORITY.routed).match(toRouter4).goto('l3.route').build(),
    );
  }
  if (s.subnet.ipv6) {
    const toRouter6 = { eth_type: ETH.ipv6, ...toRouter };
    const linkLocal = routerLinkLocal(s.subnet);
    flows.push(
      // an RS goes up to the app, which answers with the subnet's RA (ra.ts); it never goes on to L2
      f('l3.gateway')
        .priority(PRIORITY.solicitation)
        .match({ metadata: BigInt(s.vni), [REG.srcSubnet]: s.key, eth_type: ETH.ipv6, ip_proto: IP_PROTO.icmp6, icmpv6_type: ROUTER_SOLICITATION })
        .apply(toController())
        .build(),
      f('l3.gateway')
        .priority(PRIORITY.ping)
        .match({ ip_proto: IP_PROTO.icmp6, ipv6_dst: linkLocal, icmpv6_type: ICMPV6_ECHO.request, icmpv6_code: 0, ...toRouter6 })
        .apply(...echo6Reply(routerMac, linkLocal))
        .build(),
      f('l3.gateway').priority(PRIORITY.routed).match(toRouter6).goto('l3.route').build(),
    );
  }
  return onHosts(s.hosts, flows);
}

/** a host route to the port, on every hypervisor of its VPC */
function routeFlows(pipeline: Pipeline, p: PortView, hosts: readonly Hypervisor[]) {
  const f = ownerFlows(pipeline, DISTRIBUTED_ROUTER_APP_ID, `port:${p.port.name}`);
  const metadata = BigInt(p.vni);
  const toPort = [
    { type: 'set_field', field: { field: 'eth_src', value: p.routerMac } },
    { type: 'set_field', field: { field: 'eth_dst', value: p.port.mac } },
    DEC_TTL,
  ] as const satisfies readonly Action[];
  const route = (match: Parameters<FlowBuilder['match']>[0]) => f('l3.route').priority(PRIORITY.route).match(match).apply(...toPort).goto(nextTable(pipeline, 'l3.route')).build();
  const routes = p.port.ip === undefined ? [] : [route({ metadata, eth_type: ETH.ip, ipv4_dst: p.port.ip })];
  // only global addresses are routed: link-local ones never leave their link
  if (p.ipv6 !== undefined) routes.push(route({ metadata, eth_type: ETH.ipv6, ipv6_dst: p.ipv6 }));
  return onHosts(hosts, routes);
}
