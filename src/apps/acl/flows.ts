import type { AclRule, Hypervisor } from '../../model';
import { conntrackZone } from '../../model';
import { makeCookie } from '../../sdk/cookie';
import type { FlowCounter } from '../../sdk/counters';
import { FlowBuildError } from '../../sdk/errors';
import type { Flow } from '../../sdk/flow';
import { type OwnerDef, type OwnerGroup, compileOwners } from '../../sdk/incremental';
import { type MatchSpec, cidr } from '../../sdk/match';
import type { Pipeline, TableSpec } from '../../sdk/pipeline';
import { ETH, IP_PROTO, type OverlayView, REG, type VpcView, ctCommit, subnetFamilies, ctTrack, nextTable, onHosts, ownerFlows, vpcGroups } from '../overlay';

/**
 * Stateful security between the tiers (subnets) of a VPC, enforced on the source hypervisor before
 * anything is tunnelled. Rules are ordered: rule i of a VPC gets priority RULE_TOP - i, so two rules
 * never share a priority and the first match wins by construction. Then: within a tier allowed,
 * between tiers denied. Allowed connections are committed to conntrack in the VPC's zone (conntrackZone);
 * established and related packets pass before any rule, so replies need no rule of their own.
 */
export const ACL_APP_ID = 19;

export const ACL_TABLES: readonly TableSpec[] = [
  { name: 'acl.conntrack', stage: 'acl', miss: 'next', matches: ['metadata', 'eth_type'] },
  {
    name: 'acl.rules',
    stage: 'acl',
    miss: 'drop',
    dropReason: 'acl_default_deny',
    matches: ['metadata', 'ct_state', 'eth_type', 'ip_proto', 'ipv4_src', 'ipv4_dst', 'ipv6_src', 'ipv6_dst', 'tcp_dst', 'udp_dst', REG.dstSubnet, REG.srcSubnet, REG.srcPort, REG.egress],
    maskable: ['ct_state', 'ipv4_src', 'ipv4_dst', 'ipv6_src', 'ipv6_dst', 'tcp_dst', 'udp_dst'],
  },
];

/** ct_state bits (OVS) */
const CT = { new: 0x01, est: 0x02, rel: 0x04, inv: 0x10, trk: 0x20 } as const;
const RULE_TOP = 60_000;
const PRIORITY = { invalid: 65_000, established: 64_000, track: 100, sameTierIp: 20, sameTier: 10 } as const;

const CONNTRACK_OWNER = 'conntrack';
const vpcOwnerKey = (vpc: VpcView): string => `vpc:${vpc.vpc.name}`;

/**
 * What each flow of acl.rules counts: its rule's hits, by the rule's name (a rule with a port range
 * has several flows), and conntrack's drop of invalid packets. `view` is the app's current view.
 */
export function aclCounter(view: () => OverlayView | undefined): FlowCounter {
  const conntrack = makeCookie(ACL_APP_ID, CONNTRACK_OWNER);
  let byCookie: { view: OverlayView; vpcs: Map<bigint, VpcView> } | undefined;
  return {
    table: 'acl.rules',
    count: (flow) => {
      if (flow.cookie === conntrack) return flow.priority === PRIORITY.invalid ? { kind: 'drop', reason: 'ct_invalid' } : undefined;
      const current = view();
      if (!current || flow.priority > RULE_TOP || flow.priority <= PRIORITY.sameTierIp) return undefined;
      if (byCookie?.view !== current) byCookie = { view: current, vpcs: new Map(current.vpcs.map((v) => [makeCookie(ACL_APP_ID, vpcOwnerKey(v)), v])) };
      const vpc = byCookie.vpcs.get(flow.cookie);
      const rule = vpc?.acls[RULE_TOP - flow.priority];
      return vpc && rule ? { kind: 'acl_rule', vpc: vpc.vpc.name, rule: rule.name } : undefined;
    },
  };
}

export function aclGroups(pipeline: Pipeline, view: OverlayView): OwnerGroup[] {
  return [
    { key: 'global', token: view.hypervisors, owners: () => [conntrackOwner(pipeline, view.hypervisors)] },
    ...vpcGroups(pipeline, view, vpcOwners),
  ];
}

const vpcOwners = (pipeline: Pipeline, vpc: VpcView) => [vpcOwner(pipeline, vpc)];

export function compileAcl(pipeline: Pipeline, view: OverlayView) {
  return compileOwners(aclGroups(pipeline, view));
}

/**
 * Inclusive port range as value/mask blocks: each block is an aligned power of two, the largest
 * that fits, so a range needs at most 2×16−2 flows (8000-8080 → 8000/0xffe0, 8032/0xfff0, 8048/0xfff0…).
 * Conjunctive matches would only pay off when two dimensions expand at once; a rule has one range.
 */
export function portRangeMasks(from: number, to: number): { value: number; mask: number }[] {
  const blocks: { value: number; mask: number }[] = [];
  for (let lo = from; lo <= to; ) {
    let size = lo & -lo || 0x10000;
    while (lo + size - 1 > to) size >>= 1;
    blocks.push({ value: lo, mask: 0xffff & ~(size - 1) });
    lo += size;
  }
  return blocks;
}

function ctState(set: number): { value: number; mask: number } {
  return { value: set, mask: set };
}

function conntrackOwner(pipeline: Pipeline, hypervisors: readonly Hypervisor[]): OwnerDef {
  return {
    key: CONNTRACK_OWNER,
    signature: [hypervisors],
    compile: () => {
      const f = ownerFlows(pipeline, ACL_APP_ID, CONNTRACK_OWNER);
      const pass = nextTable(pipeline, 'acl.rules');
      return onHosts(hypervisors, [
        f('acl.rules').priority(PRIORITY.invalid).match({ ct_state: ctState(CT.trk | CT.inv) }).build(),
        f('acl.rules').priority(PRIORITY.established).match({ ct_state: ctState(CT.trk | CT.est) }).goto(pass).build(),
        f('acl.rules').priority(PRIORITY.established).match({ ct_state: ctState(CT.trk | CT.rel) }).goto(pass).build(),
      ]);
    },
  };
}

/** Depends on the rules, the tiers' keys, the keys of ports rules name and the hosts: not on every port. */
function vpcOwner(pipeline: Pipeline, vpc: VpcView): OwnerDef {
  const key = vpcOwnerKey(vpc);
  const ruled = vpc.acls.flatMap((a) => (a.port === undefined ? [] : [vpc.portByName.get(a.port)!.key]));
  const signature = [vpc.vpc, vpc.acls, vpc.hosts, ...vpc.subnets.flatMap((s) => [s.subnet, s.key]), ...ruled];
  return { key, signature, compile: () => onHosts(vpc.hosts, vpcFlows(pipeline, key, vpc)) };
}

function vpcFlows(pipeline: Pipeline, owner: string, vpc: VpcView): Flow[] {
  const room = RULE_TOP - PRIORITY.sameTierIp;
  if (vpc.acls.length >= room) throw new FlowBuildError(`VPC ${vpc.vpc.name} has ${vpc.acls.length} ACL rules; at most ${room - 1} fit their priorities`, { table: 'acl.rules' });
  const f = ownerFlows(pipeline, ACL_APP_ID, owner);
  const zone = conntrackZone(vpc.vpc.vni);
  const metadata = BigInt(vpc.vpc.vni);
  const pass = nextTable(pipeline, 'acl.rules');
  const track = ctTrack(zone, pipeline.table('acl.rules').id);
  const flows = familiesOf(vpc).map((eth_type) => f('acl.conntrack').priority(PRIORITY.track).match({ metadata, eth_type }).apply(track).build());
  vpc.acls.forEach((rule, i) => {
    for (const match of ruleMatches(vpc, rule)) {
      const flow = f('acl.rules').priority(RULE_TOP - i).match({ metadata, ...match });
      flows.push(rule.action === 'allow' ? flow.apply(ctCommit(zone)).goto(pass).build() : flow.build());
    }
  });
  for (const s of vpc.subnets) {
    const sameTier = { metadata, [REG.srcSubnet]: s.key, [REG.dstSubnet]: s.key };
    for (const eth_type of subnetFamilies(s.subnet)) {
      flows.push(f('acl.rules').priority(PRIORITY.sameTierIp).match({ eth_type, ...sameTier }).apply(ctCommit(zone)).goto(pass).build());
    }
    flows.push(f('acl.rules').priority(PRIORITY.sameTier).match(sameTier).goto(pass).build());
  }
  return flows;
}

/**
 * One match per port block. An ingress rule of tier X looks at traffic to X (the destination's
 * registers, the remote as source); an egress rule at traffic from X (the remote as destination).
 */
function ruleMatches(vpc: VpcView, rule: AclRule): MatchSpec[] {
  const tier = vpc.subnetByName.get(rule.subnet)!;
  const port = rule.port === undefined ? undefined : vpc.portByName.get(rule.port)!.key;
  const ingress = rule.direction === 'ingress';
  return ruleFamilies(rule, subnetFamilies(tier.subnet)).flatMap((eth_type) => {
    const base: MatchSpec = { eth_type, [ingress ? REG.dstSubnet : REG.srcSubnet]: tier.key };
    if (port !== undefined) base[ingress ? REG.egress : REG.srcPort] = port;
    const { remote } = rule;
    if (remote && 'subnet' in remote) base[ingress ? REG.srcSubnet : REG.dstSubnet] = vpc.subnetByName.get(remote.subnet)!.key;
    else if (remote) base[eth_type === ETH.ipv6 ? (ingress ? 'ipv6_src' : 'ipv6_dst') : ingress ? 'ipv4_src' : 'ipv4_dst'] = cidr(remote.cidr);
    if (rule.protocol === 'any') return [base];
    base.ip_proto = IP_PROTO[rule.protocol];
    if (!rule.ports || rule.protocol === 'icmp' || rule.protocol === 'icmp6') return [base];
    const field = rule.protocol === 'tcp' ? 'tcp_dst' : 'udp_dst';
    return portRangeMasks(rule.ports.from, rule.ports.to).map((block) => ({ [field]: block, ...base }));
  });
}

/** the IP versions a VPC carries: those of any of its subnets */
function familiesOf(vpc: VpcView): number[] {
  const carried = new Set(vpc.subnets.flatMap((s) => subnetFamilies(s.subnet)));
  return [ETH.ip, ETH.ipv6].filter((t) => carried.has(t));
}

/**
 * The IP versions a rule applies to: a CIDR or icmp/icmp6 names one; otherwise (a tier remote or
 * none) all its tier carries, so one rule guards IPv4 and IPv6 alike.
 */
function ruleFamilies(rule: AclRule, tier: readonly number[]): number[] {
  if (rule.protocol === 'icmp') return [ETH.ip];
  if (rule.protocol === 'icmp6') return [ETH.ipv6];
  if (rule.remote && 'cidr' in rule.remote) return [rule.remote.cidr.includes(':') ? ETH.ipv6 : ETH.ip];
  return [...tier];
}
