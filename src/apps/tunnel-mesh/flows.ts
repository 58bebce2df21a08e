import type { Action } from '../../openflow';
import type { Hypervisor } from '../../model';
import { TUNNEL_OFPORT, conntrackZone, linkLocalAddress } from '../../model';
import type { Flow, FlowBuilder } from '../../sdk/flow';
import { type OwnerDef, type OwnerGroup, type SwitchFlows, compileOwners } from '../../sdk/incremental';
import type { Pipeline, TableSpec } from '../../sdk/pipeline';
import {
  ETH,
  ICMPV6,
  IP_PROTO,
  MULTICAST,
  type OverlayView,
  type PortView,
  REG,
  type SubnetView,
  type VpcView,
  ctCommit,
  moveField,
  nextTable,
  onHosts,
  output,
  ownerFlows,
  portFamilies,
  setReg,
  vpcGroups,
} from '../overlay';
import { EGRESS_KEY_FIELD } from './geneve-option';

/**
 * The L2 overlay: which VPC a packet belongs to, whether its sender may send it, where its
 * destination MAC lives, and the Geneve tunnel that takes it there: VNI = the VPC, the egress key
 * in a Geneve option (tun_metadata0, mapped by geneve-option.ts). Receiving hypervisors deliver by
 * (VNI, egress key) alone.
 */
export const TUNNEL_MESH_APP_ID = 16;

export const TUNNEL_MESH_TABLES: readonly TableSpec[] = [
  { name: 'classify', stage: 'classify', miss: 'drop', matches: ['in_port'] },
  {
    name: 'spoofguard',
    stage: 'spoofguard',
    miss: 'drop',
    dropReason: 'spoofguard',
    matches: ['in_port', 'eth_src', 'eth_type', 'ipv4_src', 'arp_spa', 'arp_sha', 'ip_proto', 'ipv6_src', 'icmpv6_type', 'ipv6_nd_target'],
  },
  { name: 'l2.lookup', stage: 'l2', miss: 'drop', matches: ['metadata', 'eth_dst'], maskable: ['eth_dst'] },
  { name: 'output', stage: 'output', miss: 'drop', matches: ['metadata', REG.egress] },
  { name: 'tunnel.in', stage: 'output', miss: 'drop', matches: ['tunnel_id', EGRESS_KEY_FIELD, 'eth_type'] },
];

const PRIORITY = { exact: 100, ipFirst: 100, other: 90, flood: 50, ndOwn: 120, ndRefused: 110 } as const;

export function tunnelMeshGroups(pipeline: Pipeline, view: OverlayView): OwnerGroup[] {
  return [
    { key: 'global', token: view.hypervisors, owners: () => [globalOwner(pipeline, view.hypervisors)] },
    ...vpcGroups(pipeline, view, vpcOwners),
  ];
}

/** every owner's flows, for tests, benchmarks and `zonemesh flows` */
export function compileTunnelMesh(pipeline: Pipeline, view: OverlayView) {
  return compileOwners(tunnelMeshGroups(pipeline, view));
}

function globalOwner(pipeline: Pipeline, hypervisors: readonly Hypervisor[]): OwnerDef {
  return {
    key: 'global',
    signature: [hypervisors],
    compile: () => {
      const f = ownerFlows(pipeline, TUNNEL_MESH_APP_ID, 'global');
      const flows = [
        f('classify').priority(PRIORITY.exact).match({ in_port: TUNNEL_OFPORT }).goto('tunnel.in').build(),
        // broadcast and multicast stay in the sender's subnet: its flood key becomes the egress key
        f('l2.lookup').priority(PRIORITY.flood).match({ eth_dst: MULTICAST }).apply(moveField(REG.srcSubnet, REG.egress, 32)).goto('output').build(),
      ];
      return onHosts(hypervisors, flows);
    },
  };
}

function* vpcOwners(pipeline: Pipeline, vpc: VpcView): Iterable<OwnerDef> {
  for (const port of vpc.ports) {
    yield { key: `port:${port.port.name}`, signature: [port, vpc.hosts], compile: () => portFlows(pipeline, port, vpc.hosts) };
  }
  for (const subnet of vpc.subnets) {
    const key = `flood:${vpc.vpc.name}/${subnet.subnet.name}`;
    yield { key, signature: [subnet], compile: () => floodFlows(pipeline, key, subnet) };
  }
}

function toTunnel(vni: number, egressKey: number, remote: Hypervisor): Action[] {
  return [
    { type: 'set_field', field: { field: 'tunnel_id', value: BigInt(vni) } },
    { type: 'set_field', field: { field: EGRESS_KEY_FIELD, value: egressKey } },
    ...toHost(remote),
  ];
}

/** what a tunnelled packet for (vni, egress key) matches on arrival */
function fromTunnel(vni: number, egressKey: number) {
  return { tunnel_id: BigInt(vni), [EGRESS_KEY_FIELD]: egressKey };
}

const TO_TUNNEL = output(TUNNEL_OFPORT);

const toHostActions = new WeakMap<Hypervisor, readonly Action[]>();

/** set the tunnel's destination and send: one list per hypervisor, shared by every flow tunnelling there */
function toHost(remote: Hypervisor): readonly Action[] {
  let actions = toHostActions.get(remote);
  if (!actions) toHostActions.set(remote, (actions = [{ type: 'set_field', field: { field: 'tun_ipv4_dst', value: remote.tunnelIp } }, TO_TUNNEL]));
  return actions;
}

/**
 * A port's flows. Every hypervisor of the VPC learns its MAC (l2) and how to reach it (a tunnel);
 * its own hypervisor, once the interface exists, also classifies, guards and delivers to it.
 */
function portFlows(pipeline: Pipeline, p: PortView, hosts: readonly Hypervisor[]) {
  const f = ownerFlows(pipeline, TUNNEL_MESH_APP_ID, `port:${p.port.name}`);
  const vpc = BigInt(p.vni);
  const l2 = f('l2.lookup')
    .priority(PRIORITY.exact)
    .match({ metadata: vpc, eth_dst: p.port.mac })
    .apply(setReg(REG.egress, p.key), setReg(REG.dstSubnet, p.subnetKey))
    .goto(nextTable(pipeline, 'l2.lookup'))
    .build();
  const tunnelled = f('output').priority(PRIORITY.exact).match({ metadata: vpc, [REG.egress]: p.key }).apply(...toTunnel(p.vni, p.key, p.host));
  const remote = [l2, tunnelled.build()];
  if (p.ofport === undefined) return onHosts(hosts.filter((h) => h !== p.host), remote);

  const { mac, ip } = p.port;
  const port = p.ofport;
  // the spread last: a spread followed by more properties is V8's slow path (docs/writing-apps.md)
  const tunnelIn = (eth_type?: number) => f('tunnel.in').match(eth_type === undefined ? fromTunnel(p.vni, p.key) : { eth_type, ...fromTunnel(p.vni, p.key) });
  const local: Flow[] = [
    f('classify')
      .priority(PRIORITY.exact)
      .match({ in_port: port })
      .writeMetadata(vpc)
      .apply(setReg(REG.srcSubnet, p.subnetKey), setReg(REG.srcPort, p.key))
      .goto('spoofguard')
      .build(),
    ...(ip === undefined
      ? []
      : [
          f('spoofguard').priority(PRIORITY.exact).match({ in_port: port, eth_src: mac, eth_type: ETH.ip, ipv4_src: ip }).goto(nextTable(pipeline, 'spoofguard')).build(),
          f('spoofguard')
            .priority(PRIORITY.exact)
            .match({ in_port: port, eth_src: mac, eth_type: ETH.arp, arp_spa: ip, arp_sha: mac })
            .goto(nextTable(pipeline, 'spoofguard'))
            .build(),
        ]),
    ...ipv6Spoofguard(pipeline, () => f('spoofguard'), p),
    l2,
    f('output').priority(PRIORITY.exact).match({ metadata: vpc, [REG.egress]: p.key }).apply(output(port)).build(),
    // policy ran at the source; committing here lets the replies pass this hypervisor's conntrack
    ...portFamilies(p).map((eth_type) =>
      tunnelIn(eth_type).priority(PRIORITY.ipFirst).apply(ctCommit(conntrackZone(p.vni)), output(port)).build(),
    ),
    tunnelIn().priority(PRIORITY.other).apply(output(port)).build(),
  ];
  return onHosts(hosts, remote, [[p.host.datapathId, local]]);
}

/**
 * A subnet's flood domain on each hypervisor hosting it: its local ports, plus one tunnelled copy
 * to each other hypervisor hosting the subnet. A hypervisor without a present port gets nothing.
 */
function floodFlows(pipeline: Pipeline, owner: string, s: SubnetView) {
  const f = ownerFlows(pipeline, TUNNEL_MESH_APP_ID, owner);
  const out: SwitchFlows[] = [];
  for (const host of s.hosts) {
    const local = s.ports.filter((p) => p.host === host && p.ofport !== undefined).map((p) => output(p.ofport!));
    if (local.length === 0) continue;
    // one copy per other host; the tunnel key is set once, before the first
    const copies: Action[] = [];
    for (const other of s.hosts) if (other !== host) copies.push(...(copies.length ? toHost(other) : toTunnel(s.vni, s.key, other)));
    const flood = f('output')
      .priority(PRIORITY.exact)
      .match({ metadata: BigInt(s.vni), [REG.egress]: s.key })
      .apply(...local, ...copies)
      .build();
    out.push({ dpids: [host.datapathId], flows: [flood, f('tunnel.in').priority(PRIORITY.exact).match(fromTunnel(s.vni, s.key)).apply(...local).build()] });
  }
  return out;
}

/**
 * A dual-stack port may send IPv6 from its own address and its link-local one, and DAD probes and
 * RS from :: (a DAD probe is answered by nobody, so the address stays its own). It may not send RAs (the router
 * does), nor NAs for any address but its own: both would take other VMs' traffic.
 */
function ipv6Spoofguard(pipeline: Pipeline, guard: () => FlowBuilder, p: PortView): Flow[] {
  if (p.ipv6 === undefined) return [];
  const pass = nextTable(pipeline, 'spoofguard');
  const port = { in_port: p.ofport!, eth_src: p.port.mac };
  const icmp6 = { eth_type: ETH.ipv6, ip_proto: IP_PROTO.icmp6, ...port };
  const own = [p.ipv6, linkLocalAddress(p.port.mac)];
  return [
    ...own.map((ipv6_src) => guard().priority(PRIORITY.exact).match({ eth_type: ETH.ipv6, ipv6_src, ...port }).goto(pass).build()),
    ...[ICMPV6.ns, ICMPV6.rs].map((icmpv6_type) => guard().priority(PRIORITY.exact).match({ ipv6_src: '::', icmpv6_type, ...icmp6 }).goto(pass).build()),
    guard().priority(PRIORITY.ndRefused).match({ icmpv6_type: ICMPV6.ra, ...icmp6 }).build(),
    guard().priority(PRIORITY.ndRefused).match({ icmpv6_type: ICMPV6.na, ...icmp6 }).build(),
    ...own.flatMap((ipv6_src) =>
      own.map((ipv6_nd_target) => guard().priority(PRIORITY.ndOwn).match({ ipv6_src, icmpv6_type: ICMPV6.na, ipv6_nd_target, ...icmp6 }).goto(pass).build()),
    ),
  ];
}
