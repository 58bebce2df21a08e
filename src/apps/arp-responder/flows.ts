import type { Hypervisor } from '../../model';
import { arpAnswer } from '../../sdk/actions';
import type { FlowCounter } from '../../sdk/counters';
import { type OwnerDef, type OwnerGroup, compileOwners } from '../../sdk/incremental';
import type { Pipeline, TableSpec } from '../../sdk/pipeline';
import { hasIpv4, linkLocalAddress, routerLinkLocal } from '../../model';
import { BROADCAST, ETH, ICMPV6, MULTICAST, type OverlayView, type PortView, REG, type SubnetView, type VpcView, onHosts, ownerFlows, vpcGroups } from '../overlay';
import { ICMP6, ND_MATCH_FIELDS, ndAnswerActions, ndAnswerFinish, ndDropMatches, nsFor } from './nd';

/**
 * Answers broadcast ARP requests on the local bridge, for every VM and gateway of the asker's
 * subnet. No broadcast ARP ever leaves the hypervisor: requests for unknown addresses are dropped.
 * Unicast ARP (a cache refresh) goes on to L2 and reaches the owner, except for gateways, which
 * have no owner: their requests are answered whatever the destination MAC. IPv6 neighbour
 * solicitations are answered the same way (nd.ts).
 */
export const ARP_RESPONDER_APP_ID = 17;

export const ARP_RESPONDER_TABLES: readonly TableSpec[] = [
  {
    name: 'arp.responder',
    stage: 'arp',
    miss: 'next',
    matches: ['metadata', REG.srcSubnet, REG.srcPort, 'eth_type', 'arp_op', 'eth_dst', 'arp_tpa', ...ND_MATCH_FIELDS],
    maskable: ['eth_dst'],
  },
];

const ARP_REQUEST = 1;
const PRIORITY = { ownAddress: 300, ndFinish: 250, answer: 200, broadcast: 100 } as const;
/** owns the one flow that drops broadcast ARP nobody answered */
const UNANSWERED_OWNER = 'global';

/** broadcast ARP for an address the subnet does not have */
export const ARP_RESPONDER_COUNTERS: readonly FlowCounter[] = [{ owner: UNANSWERED_OWNER, count: () => ({ kind: 'drop', reason: 'unknown_arp' }) }];

export function arpResponderGroups(pipeline: Pipeline, view: OverlayView): OwnerGroup[] {
  return [
    { key: 'global', token: view.hypervisors, owners: () => [globalOwner(pipeline, view.hypervisors)] },
    ...vpcGroups(pipeline, view, vpcOwners),
  ];
}

export function compileArpResponder(pipeline: Pipeline, view: OverlayView) {
  return compileOwners(arpResponderGroups(pipeline, view));
}

function globalOwner(pipeline: Pipeline, hypervisors: readonly Hypervisor[]): OwnerDef {
  return {
    key: UNANSWERED_OWNER,
    signature: [hypervisors],
    compile: () => {
      const f = ownerFlows(pipeline, ARP_RESPONDER_APP_ID, UNANSWERED_OWNER);
      const [dad, ...unanswered] = ndDropMatches();
      return onHosts(hypervisors, [
        f('arp.responder').priority(PRIORITY.broadcast).match({ eth_type: ETH.arp, eth_dst: BROADCAST }).build(),
        f('arp.responder').priority(PRIORITY.ownAddress).match(dad!).build(),
        ...unanswered.map((m) => f('arp.responder').priority(PRIORITY.broadcast).match(m).build()),
      ]);
    },
  };
}

function* vpcOwners(pipeline: Pipeline, vpc: VpcView): Iterable<OwnerDef> {
  for (const subnet of vpc.subnets) {
    const key = `gateway:${vpc.vpc.name}/${subnet.subnet.name}`;
    yield { key, signature: [subnet.subnet, subnet.vni, subnet.key, subnet.hosts], compile: () => gatewayFlows(pipeline, key, subnet) };
    for (const port of subnet.ports) {
      yield { key: `port:${port.port.name}`, signature: [port, subnet.hosts], compile: () => portFlows(pipeline, port, subnet.hosts) };
    }
  }
  for (const lb of vpc.loadBalancers) {
    const subnet = vpc.subnetByName.get(lb.subnet)!;
    const key = `vip:${vpc.vpc.name}/${lb.name}`;
    yield { key, signature: [lb, subnet.subnet, subnet.vni, subnet.key, subnet.hosts], compile: () => vipFlows(pipeline, key, subnet, lb.vip) };
  }
}

/**
 * A load balancer's VIP is answered like the subnet's gateway, with the router MAC and whatever the
 * destination MAC: its clients then send to the router MAC, so a VIP packet is a routed one wherever
 * the client is, and the load-balancer app translates it before the router (docs/load-balancers.md).
 */
function vipFlows(pipeline: Pipeline, owner: string, s: SubnetView, vip: string) {
  const f = ownerFlows(pipeline, ARP_RESPONDER_APP_ID, owner);
  const answer = f('arp.responder')
    .priority(PRIORITY.answer)
    .match({ metadata: BigInt(s.vni), [REG.srcSubnet]: s.key, eth_type: ETH.arp, arp_op: ARP_REQUEST, arp_tpa: vip })
    .apply(...arpAnswer(s.subnet.routerMac, vip))
    .build();
  return onHosts(s.hosts, [answer]);
}

/** Every hypervisor of the subnet answers for the port; its own stays silent when the port asks for itself (DAD, announcements). */
function portFlows(pipeline: Pipeline, p: PortView, hosts: readonly Hypervisor[]) {
  const f = ownerFlows(pipeline, ARP_RESPONDER_APP_ID, `port:${p.port.name}`);
  const ip = p.port.ip;
  // a port of an IPv6-only subnet has no IPv4 address: no ARP answers, its ARP is dropped unanswered
  const request = ip === undefined ? undefined : { metadata: BigInt(p.vni), eth_type: ETH.arp, arp_op: ARP_REQUEST, arp_tpa: ip };
  const arp = request && [
    f('arp.responder')
      .priority(PRIORITY.answer)
      .match({ [REG.srcSubnet]: p.subnetKey, eth_dst: BROADCAST, ...request })
      .apply(...arpAnswer(p.port.mac, request.arp_tpa))
      .build(),
  ];
  const addresses6 = p.ipv6 === undefined ? [] : [p.ipv6, linkLocalAddress(p.port.mac)];
  const answers = [
    ...(arp ?? []),
    ...addresses6.flatMap((a) => [
      f('arp.responder')
        .priority(PRIORITY.answer)
        .match({ eth_dst: MULTICAST, ...nsFor(p.vni, p.subnetKey, a) })
        .apply(...ndAnswerActions(pipeline, p.port.mac, a, false))
        .build(),
      ndAnswerFinish(f('arp.responder'), PRIORITY.ndFinish, p.vni, p.port.mac, a),
    ]),
  ];
  if (p.ofport === undefined) return onHosts(hosts, answers);
  const ownIcmp6 = { metadata: BigInt(p.vni), ...ICMP6 };
  const ownAddress = [
    ...(request ? [f('arp.responder').priority(PRIORITY.ownAddress).match({ [REG.srcPort]: p.key, ...request }).build()] : []),
    ...addresses6.map((a) => f('arp.responder').priority(PRIORITY.ownAddress).match({ [REG.srcPort]: p.key, icmpv6_type: ICMPV6.ns, ipv6_nd_target: a, ...ownIcmp6 }).build()),
  ];
  return onHosts(hosts, answers, [[p.host.datapathId, [...ownAddress, ...answers]]]);
}

function gatewayFlows(pipeline: Pipeline, owner: string, s: SubnetView) {
  const f = ownerFlows(pipeline, ARP_RESPONDER_APP_ID, owner);
  const { routerMac } = s.subnet;
  const answer = hasIpv4(s.subnet)
    ? [
        f('arp.responder')
          .priority(PRIORITY.answer)
          .match({ metadata: BigInt(s.vni), [REG.srcSubnet]: s.key, eth_type: ETH.arp, arp_op: ARP_REQUEST, arp_tpa: s.subnet.gateway })
          .apply(...arpAnswer(routerMac, s.subnet.gateway))
          .build(),
      ]
    : [];
  if (!s.subnet.ipv6) return onHosts(s.hosts, answer);
  // the router has no owner port: its NS are answered whatever their destination MAC
  const linkLocal = routerLinkLocal(s.subnet);
  return onHosts(s.hosts, [
    ...answer,
    f('arp.responder').priority(PRIORITY.answer).match(nsFor(s.vni, s.key, linkLocal)).apply(...ndAnswerActions(pipeline, routerMac, linkLocal, true)).build(),
    ndAnswerFinish(f('arp.responder'), PRIORITY.ndFinish, s.vni, routerMac, linkLocal),
  ]);
}
